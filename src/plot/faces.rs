//! A pair of faces as one picture: each original photo (scaled to the crop's height) with the
//! detector's box drawn on it, beside the aligned crop the embedder saw.

use image::{imageops, Rgb, RgbImage};

/// One photo as the pipeline saw it. `bbox` is `None` where no face was found and the
/// central region stood in.
pub struct FaceView {
    /// The decoded photo.
    pub photo: RgbImage,
    /// The face's box in the photo: x1, y1, x2, y2.
    pub bbox: Option<[f32; 4]>,
    /// The aligned crop the embedder saw.
    pub crop: RgbImage,
}

const HEIGHT: u32 = 160;
const GAP: u32 = 8;
const BOX: Rgb<u8> = Rgb([214, 39, 40]);

/// `[photo A | crop A | crop B | photo B]` on a white strip, each `HEIGHT` high.
pub fn pair_strip(a: &FaceView, b: &FaceView) -> RgbImage {
    let parts = [boxed_photo(a), scaled(&a.crop), scaled(&b.crop), boxed_photo(b)];
    // A narrow gap between a photo and its crop, a wide one between the two faces.
    let gaps = [GAP, 3 * GAP, GAP];
    let width = parts.iter().map(|p| p.width()).sum::<u32>() + gaps.iter().sum::<u32>();
    let mut strip = RgbImage::from_pixel(width, HEIGHT, Rgb([255, 255, 255]));
    let mut x = 0;
    for (i, part) in parts.iter().enumerate() {
        imageops::overlay(&mut strip, part, x as i64, 0);
        x += part.width() + gaps.get(i).copied().unwrap_or(0);
    }
    strip
}

fn scaled(image: &RgbImage) -> RgbImage {
    let (w, h) = image.dimensions();
    let width = ((w as f32 * HEIGHT as f32 / h.max(1) as f32).round() as u32).max(1);
    imageops::resize(image, width, HEIGHT, imageops::FilterType::Triangle)
}

fn boxed_photo(view: &FaceView) -> RgbImage {
    let mut photo = scaled(&view.photo);
    if let Some([x1, y1, x2, y2]) = view.bbox {
        let s = HEIGHT as f32 / view.photo.height().max(1) as f32;
        draw_rect(&mut photo, [x1 * s, y1 * s, x2 * s, y2 * s], 2);
    }
    photo
}

/// A `thickness`-pixel rectangle outline, clipped to the image.
fn draw_rect(image: &mut RgbImage, [x1, y1, x2, y2]: [f32; 4], thickness: i64) {
    let (w, h) = (image.width() as i64, image.height() as i64);
    let (x1, y1, x2, y2) = (x1.round() as i64, y1.round() as i64, x2.round() as i64, y2.round() as i64);
    let mut put = |x: i64, y: i64| {
        if (0..w).contains(&x) && (0..h).contains(&y) {
            image.put_pixel(x as u32, y as u32, BOX);
        }
    };
    for t in 0..thickness {
        for x in x1..=x2 {
            put(x, y1 + t);
            put(x, y2 - t);
        }
        for y in y1..=y2 {
            put(x1 + t, y);
            put(x2 - t, y);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_strip_holds_both_photos_with_their_boxes_and_both_crops() {
        let photo = RgbImage::from_pixel(320, 320, Rgb([0, 0, 0]));
        let crop = RgbImage::from_pixel(160, 160, Rgb([0, 255, 0]));
        let a = FaceView { photo: photo.clone(), bbox: Some([80.0, 80.0, 240.0, 240.0]), crop: crop.clone() };
        let b = FaceView { photo, bbox: None, crop };
        let strip = pair_strip(&a, &b);
        // 160 (photo scaled by 1/2) + 160 + 160 + 160, and the gaps 8 + 24 + 8.
        assert_eq!(strip.dimensions(), (640 + 40, 160));
        // A's box at half scale: (40, 40)–(120, 120), red; B has none.
        assert_eq!(*strip.get_pixel(40, 80), BOX);
        assert_eq!(*strip.get_pixel(120, 41), BOX);
        assert_eq!(*strip.get_pixel(80, 80), Rgb([0, 0, 0]));
        let b_photo_x = 160 + 8 + 160 + 24 + 160 + 8;
        assert!((b_photo_x..b_photo_x + 160).all(|x| *strip.get_pixel(x, 40) != BOX));
        assert_eq!(*strip.get_pixel(160 + 8 + 10, 10), Rgb([0, 255, 0]));
    }
}
