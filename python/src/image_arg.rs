//! A photo given from Python (a path, encoded bytes or a numpy array), copied into memory that
//! the library can read while the GIL is released.

use std::path::PathBuf;

use fdb::{ImageInput, PixelFormat, RawFrame};
use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes};

use crate::errors::BadFrameError;

/// What the signatures call `Image`: one photo in any of the forms Python code holds it.
pub enum Photo {
    /// A file (`str` or `os.PathLike`).
    Path(PathBuf),
    /// An encoded image (`bytes` or `bytearray`): JPEG, PNG, PNM, BMP, GIF or WebP.
    Encoded(Vec<u8>),
    /// A numpy array's pixels, packed row by row.
    Frame { pixels: Vec<u8>, width: u32, height: u32, format: PixelFormat },
}

impl Photo {
    /// Reads `obj` as a photo; `bgr` says a 3- or 4-channel array is in OpenCV's channel order.
    pub fn extract(obj: &Bound<'_, PyAny>, bgr: bool) -> PyResult<Self> {
        // An array is copied: Python code may write to it while the GIL is released.
        if let Ok(array) = obj.cast::<PyUntypedArray>() {
            return frame(array, bgr);
        }
        if let Ok(bytes) = obj.cast::<PyBytes>() {
            return Ok(Photo::Encoded(bytes.as_bytes().to_vec()));
        }
        if let Ok(bytes) = obj.cast::<PyByteArray>() {
            return Ok(Photo::Encoded(bytes.to_vec()));
        }
        if let Ok(path) = obj.extract::<PathBuf>() {
            return Ok(Photo::Path(path));
        }
        Err(PyTypeError::new_err(format!(
            "an image is a path (str or os.PathLike), encoded bytes, or a numpy uint8 array of shape \
             (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got {}",
            obj.get_type().name()?
        )))
    }

    /// The library's view of the photo.
    pub fn input(&self) -> ImageInput<'_> {
        match self {
            Photo::Path(path) => ImageInput::from(path),
            Photo::Encoded(bytes) => ImageInput::from(bytes),
            Photo::Frame { pixels, width, height, format } => RawFrame::new(pixels, *width, *height, *format).into(),
        }
    }
}

/// An array's pixels in C order with their format, or `BadFrameError` for a shape or dtype
/// that is no photo.
fn frame(array: &Bound<'_, PyUntypedArray>, bgr: bool) -> PyResult<Photo> {
    let shape = array.shape().to_vec();
    let shape_text = format!("({})", shape.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", "));
    let dtype = array.dtype();
    let Ok(typed) = array.cast::<PyArrayDyn<u8>>() else {
        return Err(BadFrameError::new_err(format!("an image array must have dtype uint8, got {dtype} (shape {shape_text})")));
    };
    let format = match (shape.len(), shape.get(2), bgr) {
        (2, _, _) | (3, Some(1), _) => PixelFormat::Gray8,
        (3, Some(3), false) => PixelFormat::Rgb8,
        (3, Some(3), true) => PixelFormat::Bgr8,
        (3, Some(4), false) => PixelFormat::Rgba8,
        (3, Some(4), true) => PixelFormat::Bgra8,
        _ => {
            return Err(BadFrameError::new_err(format!(
                "an image array has shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {shape_text}"
            )))
        }
    };
    let side = |n: usize| u32::try_from(n).map_err(|_| BadFrameError::new_err(format!("an image array of shape {shape_text} is too large")));
    let (height, width) = (side(shape[0])?, side(shape[1])?);
    let view = typed.try_readonly()?;
    let view = view.as_array();
    // Sliced, transposed or reversed (`img[..., ::-1]`) arrays are read through their strides.
    let pixels = match view.as_slice() {
        Some(packed) => packed.to_vec(),
        None => view.iter().copied().collect(),
    };
    Ok(Photo::Frame { pixels, width, height, format })
}

/// Several photos (a list or any iterable); a single photo is a list of one.
pub fn extract_many(obj: &Bound<'_, PyAny>, bgr: bool) -> PyResult<Vec<Photo>> {
    let single = obj.cast::<PyUntypedArray>().is_ok()
        || obj.cast::<PyBytes>().is_ok()
        || obj.cast::<PyByteArray>().is_ok()
        || obj.extract::<PathBuf>().is_ok();
    if single {
        return Ok(vec![Photo::extract(obj, bgr)?]);
    }
    obj.try_iter()?.map(|item| Photo::extract(&item?, bgr)).collect()
}
