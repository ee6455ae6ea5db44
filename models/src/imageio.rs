//! Decoding photos into 8-bit RGB: JPEG, PNG, PGM/PPM, BMP, GIF and WebP; grayscale, alpha and
//! 16-bit images are converted, EXIF orientation is applied, and dimension and allocation
//! limits turn decompression bombs into errors before any pixel buffer is allocated.
//! JPEGs are decoded by libjpeg-turbo's code (see `jpeg`), except CMYK ones, which the `image`
//! crate converts.

mod jpeg;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};
use std::io::Cursor;
use std::path::Path;

/// Largest accepted width or height.
pub const MAX_SIDE: u32 = 16_384;
/// Largest decoded pixel buffer in bytes (a 8k × 8k 16-bit RGBA photo fits).
pub const MAX_DECODED_BYTES: u64 = 512 << 20;

/// Why a photo could not be read; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file has no bytes.
    #[error("{file}: the file is empty")]
    Empty {
        /// The file.
        file: String,
    },
    /// The bytes are no known image format.
    #[error("{file}: not an image (no known image format signature)")]
    NotAnImage {
        /// The file.
        file: String,
    },
    /// A format or a variant of one that fdb does not decode.
    #[error("{file}: unsupported image: {reason}")]
    Unsupported {
        /// The file.
        file: String,
        /// What is not supported.
        reason: String,
    },
    /// The decoder found damage.
    #[error("{file}: corrupt image: {reason}")]
    Corrupt {
        /// The file.
        file: String,
        /// What the decoder said.
        reason: String,
    },
    /// The file ends before the image does.
    #[error("{file}: truncated image: {reason}")]
    Truncated {
        /// The file.
        file: String,
        /// Where it ends.
        reason: String,
    },
    /// The image exceeds the size limits (checked before decoding: decompression bombs).
    #[error("{file}: image of {width}x{height} exceeds the limit of {limit}")]
    TooLarge {
        /// The file.
        file: String,
        /// The image's width.
        width: u32,
        /// The image's height.
        height: u32,
        /// The limit it exceeds.
        limit: String,
    },
    /// The file cannot be read.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// The file.
        file: String,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// Reads and decodes an image file.
pub fn load_image(path: &Path) -> Result<RgbImage, ImageError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ImageError::Io { file: file.clone(), source })?;
    decode_image(&bytes, &file)
}

/// Decodes an in-memory image; `name` identifies it in errors.
pub fn decode_image(bytes: &[u8], name: &str) -> Result<RgbImage, ImageError> {
    let file = || name.to_owned();
    if bytes.is_empty() {
        return Err(ImageError::Empty { file: file() });
    }
    let format = image::guess_format(bytes).map_err(|_| ImageError::NotAnImage { file: file() })?;
    // The header is read without limits so an oversized image is reported with its size;
    // the limits then guard the decode itself.
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.no_limits();
    let mut decoder = reader.into_decoder().map_err(|e| classify(e, name, None))?;
    let (width, height) = decoder.dimensions();
    check_size(width, height, decoder.total_bytes(), name)?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    decoder.set_limits(limits).map_err(|e| classify(e, name, Some((width, height))))?;
    // A broken EXIF block should not cost the photo: fall back to no rotation.
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let exact_jpeg = match format {
        ImageFormat::Jpeg => jpeg::decode(bytes, name)?,
        _ => None,
    };
    let mut img = match exact_jpeg {
        Some(rgb) => DynamicImage::ImageRgb8(rgb),
        None => DynamicImage::from_decoder(decoder).map_err(|e| classify(e, name, Some((width, height))))?,
    };
    img.apply_orientation(orientation);
    Ok(img.into_rgb8())
}

fn check_size(width: u32, height: u32, decoded_bytes: u64, name: &str) -> Result<(), ImageError> {
    let too_large = |limit: String| ImageError::TooLarge { file: name.to_owned(), width, height, limit };
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(too_large(format!("{MAX_SIDE} pixels per side")));
    }
    // The RGB8 copy is allocated too, so both buffers must fit.
    let rgb_bytes = width as u64 * height as u64 * 3;
    if decoded_bytes.max(rgb_bytes) > MAX_DECODED_BYTES {
        return Err(too_large(format!("{} MiB decoded", MAX_DECODED_BYTES >> 20)));
    }
    if width == 0 || height == 0 {
        return Err(ImageError::Corrupt { file: name.to_owned(), reason: format!("{width}x{height} pixels") });
    }
    Ok(())
}

fn classify(err: image::ImageError, name: &str, size: Option<(u32, u32)>) -> ImageError {
    use image::ImageError as E;
    let file = name.to_owned();
    match err {
        E::Limits(l) => {
            let (width, height) = size.unwrap_or((0, 0));
            ImageError::TooLarge { file, width, height, limit: l.to_string() }
        }
        E::Unsupported(u) => ImageError::Unsupported { file, reason: u.to_string() },
        E::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            ImageError::Truncated { file, reason: e.to_string() }
        }
        E::IoError(e) => ImageError::Corrupt { file, reason: e.to_string() },
        other => {
            let reason = other.to_string();
            // Decoders report running out of data in their own words.
            if ["eof", "end of file", "truncat", "unexpected end", "no more bytes", "exhausted"]
                .iter()
                .any(|w| reason.to_lowercase().contains(w))
            {
                ImageError::Truncated { file, reason }
            } else {
                ImageError::Corrupt { file, reason }
            }
        }
    }
}
