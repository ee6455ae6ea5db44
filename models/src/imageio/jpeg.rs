//! JPEG decoding with libjpeg-turbo's own code (the `mozjpeg` crate, built from its C sources).
//!
//! The reference pipeline decoded with libjpeg-turbo (as PIL does). Its ISLOW IDCT, "fancy"
//! chroma upsampling and YCbCr tables differ from other decoders in the last bit of many
//! pixels, and on the e2e goldens those bits moved six detections past their tolerances.
//! This decoder gives libjpeg-turbo's pixels exactly.

use super::ImageError;
use image::RgbImage;
use mozjpeg::{ColorSpace, Decompress};

/// Decodes `bytes` to RGB as libjpeg-turbo does. `Ok(None)` for CMYK/YCCK files, which
/// libjpeg does not convert to RGB: the caller decodes those another way.
pub(super) fn decode(bytes: &[u8], name: &str) -> Result<Option<RgbImage>, ImageError> {
    // libjpeg pads a truncated file with grey and only warns; a photo cut short must be
    // an error instead, as it is for PIL.
    if !reaches_end_of_image(bytes) {
        return Err(ImageError::Truncated {
            file: name.to_owned(),
            reason: "the data stops before the JPEG end-of-image marker".into(),
        });
    }
    // libjpeg reports fatal errors by unwinding (without the panic hook) with its message.
    let decoded = std::panic::catch_unwind(|| -> std::io::Result<Option<(u32, u32, Vec<u8>)>> {
        let header = Decompress::new_mem(bytes)?;
        if matches!(header.color_space(), ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK) {
            return Ok(None);
        }
        let mut pixels = header.rgb()?;
        let (width, height) = (pixels.width() as u32, pixels.height() as u32);
        let rgb: Vec<u8> = pixels.read_scanlines()?;
        pixels.finish()?;
        Ok(Some((width, height, rgb)))
    });
    let corrupt = |reason: String| ImageError::Corrupt { file: name.to_owned(), reason };
    match decoded {
        Ok(Ok(Some((width, height, rgb)))) => RgbImage::from_raw(width, height, rgb)
            .map(Some)
            .ok_or_else(|| corrupt("the decoded pixels do not fill the image".into())),
        Ok(Ok(None)) => Ok(None),
        Ok(Err(e)) => Err(corrupt(e.to_string())),
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("libjpeg failed");
            Err(corrupt(message.trim_start_matches("libjpeg fatal error: ").to_owned()))
        }
    }
}

/// Whether the marker structure reaches EOI (FF D9): segments are skipped by their lengths
/// (so thumbnails inside APP1 do not count) and entropy-coded data is scanned to its next
/// marker (FF 00 is a stuffed byte, FF D0–D7 a restart marker).
fn reaches_end_of_image(bytes: &[u8]) -> bool {
    const SOS: u8 = 0xDA;
    const EOI: u8 = 0xD9;
    let standalone = |m: u8| (0xD0..=0xD7).contains(&m) || m == 0x01;
    let mut i = 2; // after SOI
    while i + 1 < bytes.len() {
        if bytes[i] != 0xFF {
            return false;
        }
        let marker = bytes[i + 1];
        match marker {
            0xFF => i += 1, // fill byte
            EOI => return true,
            m if standalone(m) => i += 2,
            _ => {
                let Some(len) = bytes.get(i + 2..i + 4).map(|l| u16::from_be_bytes([l[0], l[1]]) as usize) else {
                    return false;
                };
                i += 2 + len;
                if marker == SOS {
                    while i + 1 < bytes.len() && !(bytes[i] == 0xFF && bytes[i + 1] != 0 && !standalone(bytes[i + 1])) {
                        i += 1;
                    }
                }
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 16×8 JPEG of two flat colours, written by the `image` crate's encoder.
    fn tiny_jpeg() -> Vec<u8> {
        let img = RgbImage::from_fn(16, 8, |x, _| if x < 8 { image::Rgb([200, 30, 30]) } else { image::Rgb([20, 40, 220]) });
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95).encode_image(&img).unwrap();
        out
    }

    #[test]
    fn whole_files_reach_their_end_marker_and_cut_ones_do_not() {
        let whole = tiny_jpeg();
        assert!(reaches_end_of_image(&whole));
        for cut in [whole.len() - 1, whole.len() - 2, whole.len() / 2, 20, 3] {
            assert!(!reaches_end_of_image(&whole[..cut]), "cut at {cut}");
        }
        // Bytes after EOI (some cameras append data) do not make a file incomplete.
        let mut trailer = whole.clone();
        trailer.extend_from_slice(b"\0\0vendor trailer");
        assert!(reaches_end_of_image(&trailer));
    }

    #[test]
    fn decodes_colours_and_names_the_file_on_errors() {
        let whole = tiny_jpeg();
        let img = decode(&whole, "tiny.jpg").unwrap().unwrap();
        assert_eq!(img.dimensions(), (16, 8));
        let (left, right) = (img.get_pixel(2, 4).0, img.get_pixel(13, 4).0);
        assert!(left[0] > 150 && left[2] < 80, "{left:?}");
        assert!(right[2] > 150 && right[0] < 80, "{right:?}");

        let cut = decode(&whole[..whole.len() - 40], "cut.jpg").unwrap_err();
        assert!(matches!(cut, ImageError::Truncated { .. }), "{cut}");
        assert!(cut.to_string().starts_with("cut.jpg: truncated image"), "{cut}");

        // A valid header followed by a wrong marker: libjpeg's fatal error, caught.
        let mut bad = whole[..20].to_vec();
        bad.extend_from_slice(&[0xFF, 0xC3, 0x00, 0x04, 0x00, 0x00, 0xFF, 0xD9]);
        let err = decode(&bad, "bad.jpg").unwrap_err();
        assert!(matches!(err, ImageError::Corrupt { .. }), "{err}");
        assert!(err.to_string().starts_with("bad.jpg: corrupt image"), "{err}");
    }
}
