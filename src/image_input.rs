//! [`ImageInput`]: every way a photo reaches [`FaceDb`](crate::FaceDb): a file, encoded bytes
//! (any format fdb decodes), a decoded `image` buffer, or a camera's raw frame with its stride.
//!
//! ```no_run
//! use fdb::{FaceDb, RawFrame};
//!
//! let db = FaceDb::open("faces.db")?;
//! db.search("probe.jpg", 5)?; // a path
//! let jpeg = std::fs::read("probe.jpg")?;
//! db.search(&jpeg, 5)?; // encoded bytes
//! let (width, height, stride) = (640, 480, 640 * 3 + 64);
//! let bgr = vec![0u8; stride * height as usize]; // a camera's buffer, rows padded to `stride`
//! db.search(RawFrame::bgr(&bgr, width, height).with_stride(stride), 5)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Enrolment is idempotent by content, and what "the same content" means depends on the input:
//! a file and encoded bytes are hashed as their bytes (so a JPEG enrolled as a path is a
//! duplicate when it comes again as bytes); decoded pixels (an `RgbImage`, a `DynamicImage`, a
//! raw frame) are hashed as [`pixel_sha256`] does, over the RGB pixels whatever their layout (so
//! one frame given as BGR with padding and as an `RgbImage` is one face).

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

use fdb_models::imageio;
use image::{DynamicImage, RgbImage};
use rayon::prelude::*;

use crate::engine::{decode_file, sha256, Photo};
use crate::error::Result;

/// A photo given to fdb: from a file, from memory, or from a camera.
///
/// Every call that takes a photo (`enroll`, `search`, `identify_all`, `verify`, `embed`) takes
/// `impl Into<ImageInput>`, so a `&str`, `&Path`, `PathBuf`, `&[u8]`, `&Vec<u8>`, `&RgbImage`,
/// `&DynamicImage` or [`RawFrame`] can be passed as it is.
#[derive(Clone)]
#[non_exhaustive]
pub enum ImageInput<'a> {
    /// A file, read and decoded (EXIF orientation applied); errors name it.
    Path(Cow<'a, Path>),
    /// An encoded image in memory (JPEG, PNG, PNM, BMP, GIF or WebP; EXIF orientation applied).
    Encoded(&'a [u8]),
    /// Decoded 8-bit RGB pixels.
    Rgb(&'a RgbImage),
    /// A decoded image of any pixel type, converted to 8-bit RGB.
    Dynamic(&'a DynamicImage),
    /// Uncompressed pixels with their layout (camera and video buffers).
    Raw(RawFrame<'a>),
}

impl ImageInput<'_> {
    /// How the photo is named in errors and reports: the file's path, or a description in angle
    /// brackets for a photo in memory (`<encoded image, 5123 bytes>`, `<640x480 bgr8 frame>`).
    pub fn label(&self) -> String {
        match self {
            ImageInput::Path(p) => p.display().to_string(),
            ImageInput::Encoded(bytes) => format!("<encoded image, {} bytes>", bytes.len()),
            ImageInput::Rgb(image) => format!("<{}x{} RGB image>", image.width(), image.height()),
            ImageInput::Dynamic(image) => format!("<{}x{} image>", image.width(), image.height()),
            ImageInput::Raw(f) => format!("<{}x{} {} frame>", f.width, f.height, f.format.name()),
        }
    }

    /// The file, for a photo given as one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            ImageInput::Path(p) => Some(p),
            _ => None,
        }
    }

    /// Reads and decodes the photo into 8-bit RGB, with the sha256 enrolment dedupes by (see
    /// the module's documentation). A raw frame is validated first ([`FdbError::Frame`](crate::FdbError::Frame)).
    pub fn decode(&self) -> Result<Photo> {
        let label = || PathBuf::from(self.label());
        match self {
            ImageInput::Path(p) => decode_file(p),
            ImageInput::Encoded(bytes) => {
                let image = imageio::decode_image(bytes, &self.label())?;
                Ok(Photo { path: label(), bytes_sha256: sha256(bytes), image })
            }
            ImageInput::Rgb(image) => pixels(label(), (*image).clone()),
            ImageInput::Dynamic(image) => pixels(label(), image.to_rgb8()),
            ImageInput::Raw(frame) => pixels(label(), frame.to_rgb()?),
        }
    }
}

fn pixels(path: PathBuf, image: RgbImage) -> Result<Photo> {
    let (width, height) = image.dimensions();
    if width == 0 || height == 0 {
        return Err(FrameError::Empty { width, height }.into());
    }
    Ok(Photo { path, bytes_sha256: pixel_sha256(&image), image })
}

/// The sha256 enrolment dedupes decoded pixels by: width and height (each `u32`
/// little-endian), then the rows of 8-bit RGB pixels, tightly packed.
pub fn pixel_sha256(image: &RgbImage) -> [u8; 32] {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    hasher.update(image.width().to_le_bytes());
    hasher.update(image.height().to_le_bytes());
    hasher.update(image.as_raw());
    hasher.finalize().into()
}

/// Decodes photos on all cores; each result is the photo or the reason it is unusable.
pub fn decode_all(inputs: &[ImageInput<'_>]) -> Vec<Result<Photo>> {
    inputs.par_iter().map(ImageInput::decode).collect()
}

impl fmt::Debug for ImageInput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// The channel layout of a raw frame's pixels, 8 bits per channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PixelFormat {
    /// Red, green, blue.
    Rgb8,
    /// Blue, green, red (OpenCV's and many cameras' order).
    Bgr8,
    /// Red, green, blue, alpha (alpha is ignored).
    Rgba8,
    /// Blue, green, red, alpha (alpha is ignored).
    Bgra8,
    /// One luma channel.
    Gray8,
}

impl PixelFormat {
    /// Bytes per pixel.
    pub fn channels(self) -> usize {
        match self {
            PixelFormat::Rgb8 | PixelFormat::Bgr8 => 3,
            PixelFormat::Rgba8 | PixelFormat::Bgra8 => 4,
            PixelFormat::Gray8 => 1,
        }
    }

    /// The format's name, lower case (`bgr8`).
    pub fn name(self) -> &'static str {
        match self {
            PixelFormat::Rgb8 => "rgb8",
            PixelFormat::Bgr8 => "bgr8",
            PixelFormat::Rgba8 => "rgba8",
            PixelFormat::Bgra8 => "bgra8",
            PixelFormat::Gray8 => "gray8",
        }
    }

    /// One pixel's bytes as RGB.
    fn rgb(self, px: &[u8]) -> [u8; 3] {
        match self {
            PixelFormat::Rgb8 | PixelFormat::Rgba8 => [px[0], px[1], px[2]],
            PixelFormat::Bgr8 | PixelFormat::Bgra8 => [px[2], px[1], px[0]],
            PixelFormat::Gray8 => [px[0]; 3],
        }
    }
}

/// Uncompressed pixels as a camera or a video decoder hands them over: `height` rows of `width`
/// pixels in `format`, each row starting `stride` bytes after the one before (a stride wider
/// than the row is padding, which is skipped). Nothing is checked until fdb reads it; then a
/// frame that does not fit its buffer is a [`FrameError`], never a panic.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct RawFrame<'a> {
    /// The buffer: at least `stride × (height − 1) + width × channels` bytes.
    pub pixels: &'a [u8],
    /// Pixels per row.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Bytes from the start of one row to the start of the next.
    pub stride: usize,
    /// The channel layout.
    pub format: PixelFormat,
}

impl<'a> RawFrame<'a> {
    /// A frame whose rows are packed without padding (stride = width × channels).
    pub fn new(pixels: &'a [u8], width: u32, height: u32, format: PixelFormat) -> Self {
        let stride = (width as usize).saturating_mul(format.channels());
        Self { pixels, width, height, stride, format }
    }

    /// Packed RGB rows.
    pub fn rgb(pixels: &'a [u8], width: u32, height: u32) -> Self {
        Self::new(pixels, width, height, PixelFormat::Rgb8)
    }

    /// Packed BGR rows.
    pub fn bgr(pixels: &'a [u8], width: u32, height: u32) -> Self {
        Self::new(pixels, width, height, PixelFormat::Bgr8)
    }

    /// Packed 8-bit grey rows.
    pub fn gray(pixels: &'a [u8], width: u32, height: u32) -> Self {
        Self::new(pixels, width, height, PixelFormat::Gray8)
    }

    /// The same frame with rows `stride` bytes apart.
    pub fn with_stride(mut self, stride: usize) -> Self {
        self.stride = stride;
        self
    }

    /// Whether the frame's sizes are usable and fit its buffer.
    pub fn check(&self) -> std::result::Result<(), FrameError> {
        let (width, height) = (self.width, self.height);
        if width == 0 || height == 0 {
            return Err(FrameError::Empty { width, height });
        }
        let too_large = FrameError::TooLarge { width, height };
        let row = (width as usize).checked_mul(self.format.channels()).ok_or(too_large.clone())?;
        if self.stride < row {
            return Err(FrameError::StrideTooSmall { stride: self.stride, row, format: self.format });
        }
        let needed =
            self.stride.checked_mul(height as usize - 1).and_then(|n| n.checked_add(row)).ok_or(too_large)?;
        if self.pixels.len() < needed {
            return Err(FrameError::BufferTooShort { len: self.pixels.len(), needed });
        }
        Ok(())
    }

    /// The frame as 8-bit RGB (padding dropped, alpha ignored, grey repeated in each channel).
    pub fn to_rgb(&self) -> std::result::Result<RgbImage, FrameError> {
        self.check()?;
        let channels = self.format.channels();
        let row = self.width as usize * channels;
        let mut out = Vec::with_capacity(self.width as usize * self.height as usize * 3);
        for y in 0..self.height as usize {
            let start = y * self.stride;
            for px in self.pixels[start..start + row].chunks_exact(channels) {
                out.extend_from_slice(&self.format.rgb(px));
            }
        }
        Ok(RgbImage::from_raw(self.width, self.height, out).expect("width × height × 3 bytes"))
    }
}

impl fmt::Debug for RawFrame<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawFrame")
            .field("bytes", &self.pixels.len())
            .field("width", &self.width)
            .field("height", &self.height)
            .field("stride", &self.stride)
            .field("format", &self.format)
            .finish()
    }
}

/// Why a raw frame (or a decoded image) cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A side is zero pixels long.
    #[error("a {width}x{height} frame has no pixels")]
    Empty {
        /// Pixels per row.
        width: u32,
        /// Rows.
        height: u32,
    },
    /// Rows overlap: the stride is shorter than a row of pixels.
    #[error("stride {stride} is less than a row of {format:?} pixels ({row} bytes)")]
    StrideTooSmall {
        /// The stride given.
        stride: usize,
        /// The bytes of one row, width × channels.
        row: usize,
        /// The pixel format.
        format: PixelFormat,
    },
    /// The buffer ends before the last row does.
    #[error("the buffer holds {len} bytes, but the frame needs {needed}")]
    BufferTooShort {
        /// The buffer's length.
        len: usize,
        /// stride × (height − 1) + width × channels.
        needed: usize,
    },
    /// The frame's size overflows this machine's addresses.
    #[error("a {width}x{height} frame is too large")]
    TooLarge {
        /// Pixels per row.
        width: u32,
        /// Rows.
        height: u32,
    },
}

// ---- conversions ----

impl<'a> From<&'a Path> for ImageInput<'a> {
    fn from(p: &'a Path) -> Self {
        ImageInput::Path(Cow::Borrowed(p))
    }
}

impl<'a> From<&'a PathBuf> for ImageInput<'a> {
    fn from(p: &'a PathBuf) -> Self {
        ImageInput::Path(Cow::Borrowed(p))
    }
}

impl From<PathBuf> for ImageInput<'_> {
    fn from(p: PathBuf) -> Self {
        ImageInput::Path(Cow::Owned(p))
    }
}

impl<'a> From<&'a str> for ImageInput<'a> {
    fn from(p: &'a str) -> Self {
        ImageInput::Path(Cow::Borrowed(Path::new(p)))
    }
}

impl<'a> From<&'a String> for ImageInput<'a> {
    fn from(p: &'a String) -> Self {
        ImageInput::Path(Cow::Borrowed(Path::new(p)))
    }
}

impl From<String> for ImageInput<'_> {
    fn from(p: String) -> Self {
        ImageInput::Path(Cow::Owned(PathBuf::from(p)))
    }
}

impl<'a> From<&'a [u8]> for ImageInput<'a> {
    fn from(bytes: &'a [u8]) -> Self {
        ImageInput::Encoded(bytes)
    }
}

impl<'a, const N: usize> From<&'a [u8; N]> for ImageInput<'a> {
    fn from(bytes: &'a [u8; N]) -> Self {
        ImageInput::Encoded(bytes)
    }
}

impl<'a> From<&'a Vec<u8>> for ImageInput<'a> {
    fn from(bytes: &'a Vec<u8>) -> Self {
        ImageInput::Encoded(bytes)
    }
}

impl<'a> From<&'a RgbImage> for ImageInput<'a> {
    fn from(image: &'a RgbImage) -> Self {
        ImageInput::Rgb(image)
    }
}

impl<'a> From<&'a DynamicImage> for ImageInput<'a> {
    fn from(image: &'a DynamicImage) -> Self {
        ImageInput::Dynamic(image)
    }
}

impl<'a> From<RawFrame<'a>> for ImageInput<'a> {
    fn from(frame: RawFrame<'a>) -> Self {
        ImageInput::Raw(frame)
    }
}

impl<'i, 'a: 'i> From<&'i RawFrame<'a>> for ImageInput<'i> {
    fn from(frame: &'i RawFrame<'a>) -> Self {
        ImageInput::Raw(*frame)
    }
}

/// References to what an input borrows from (the items of `&[&str]`, `&[&[u8]]`, …).
macro_rules! from_double_ref {
    ($($t:ty),*) => {$(
        impl<'i, 'a: 'i> From<&'i &'a $t> for ImageInput<'i> {
            fn from(p: &'i &'a $t) -> Self {
                ImageInput::from(*p)
            }
        }
    )*};
}

from_double_ref!(str, Path, PathBuf, String, [u8], Vec<u8>, RgbImage, DynamicImage);

/// Borrows an input again (so a slice of inputs can be enrolled).
impl<'i, 'a: 'i> From<&'i ImageInput<'a>> for ImageInput<'i> {
    fn from(input: &'i ImageInput<'a>) -> Self {
        match input {
            ImageInput::Path(p) => ImageInput::Path(Cow::Borrowed(p.as_ref())),
            ImageInput::Encoded(b) => ImageInput::Encoded(b),
            ImageInput::Rgb(i) => ImageInput::Rgb(i),
            ImageInput::Dynamic(i) => ImageInput::Dynamic(i),
            ImageInput::Raw(f) => ImageInput::Raw(*f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FdbError;

    #[test]
    fn frames_are_read_through_their_stride_and_format() {
        // 2x2 BGR with 2 bytes of padding per row.
        let bgr = [1, 2, 3, 4, 5, 6, 0, 0, 7, 8, 9, 10, 11, 12, 0, 0];
        let rgb = RawFrame::bgr(&bgr, 2, 2).with_stride(8).to_rgb().unwrap();
        assert_eq!(rgb.as_raw(), &[3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10]);
        // The last row needs no padding.
        assert!(RawFrame::bgr(&bgr[..14], 2, 2).with_stride(8).check().is_ok());
        let gray = RawFrame::gray(&[10, 20], 2, 1).to_rgb().unwrap();
        assert_eq!(gray.as_raw(), &[10, 10, 10, 20, 20, 20]);
        let rgba = RawFrame::new(&[1, 2, 3, 255], 1, 1, PixelFormat::Rgba8).to_rgb().unwrap();
        assert_eq!(rgba.as_raw(), &[1, 2, 3]);
    }

    #[test]
    fn bad_frames_are_typed_errors() {
        let buf = [0u8; 12];
        assert_eq!(RawFrame::rgb(&buf, 0, 2).check(), Err(FrameError::Empty { width: 0, height: 2 }));
        assert_eq!(RawFrame::rgb(&buf, 2, 0).check(), Err(FrameError::Empty { width: 2, height: 0 }));
        assert_eq!(
            RawFrame::rgb(&buf, 2, 2).with_stride(5).check(),
            Err(FrameError::StrideTooSmall { stride: 5, row: 6, format: PixelFormat::Rgb8 })
        );
        assert_eq!(RawFrame::rgb(&buf, 2, 3).check(), Err(FrameError::BufferTooShort { len: 12, needed: 18 }));
        assert_eq!(
            RawFrame::rgb(&buf, u32::MAX, 2).with_stride(usize::MAX).check(),
            Err(FrameError::TooLarge { width: u32::MAX, height: 2 })
        );
        let err = ImageInput::from(RawFrame::rgb(&buf, 2, 3)).decode().unwrap_err();
        assert!(matches!(err, FdbError::Frame(FrameError::BufferTooShort { .. })), "{err}");
        let empty = RgbImage::new(0, 0);
        assert!(matches!(ImageInput::from(&empty).decode(), Err(FdbError::Frame(FrameError::Empty { .. }))));
    }

    #[test]
    fn pixels_hash_the_same_whatever_their_layout() {
        let bgr = [1, 2, 3, 4, 5, 6, 0, 0, 7, 8, 9, 10, 11, 12, 0, 0];
        let from_frame = ImageInput::from(RawFrame::bgr(&bgr, 2, 2).with_stride(8)).decode().unwrap();
        let image = RgbImage::from_raw(2, 2, vec![3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10]).unwrap();
        let from_image = ImageInput::from(&image).decode().unwrap();
        let dynamic = DynamicImage::ImageRgb8(image.clone());
        let from_dynamic = ImageInput::from(&dynamic).decode().unwrap();
        assert_eq!(from_frame.bytes_sha256, from_image.bytes_sha256);
        assert_eq!(from_frame.bytes_sha256, from_dynamic.bytes_sha256);
        assert_eq!(from_frame.image, image);
        // Another size with the same bytes is another photo.
        let tall = RgbImage::from_raw(1, 4, image.as_raw().clone()).unwrap();
        assert_ne!(pixel_sha256(&tall), pixel_sha256(&image));
        assert_eq!(ImageInput::from(RawFrame::bgr(&bgr, 2, 2)).label(), "<2x2 bgr8 frame>");
    }

    #[test]
    fn encoded_bytes_are_hashed_like_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.png");
        let image = RgbImage::from_pixel(3, 2, image::Rgb([9, 8, 7]));
        image.save(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let from_file = ImageInput::from(path.as_path()).decode().unwrap();
        let from_bytes = ImageInput::from(&bytes).decode().unwrap();
        assert_eq!(from_file.bytes_sha256, from_bytes.bytes_sha256);
        assert_eq!(from_file.image, from_bytes.image);
        let err = ImageInput::from(&b"not an image"[..]).decode().unwrap_err();
        assert!(err.to_string().starts_with("<encoded image, 12 bytes>"), "{err}");
    }
}
