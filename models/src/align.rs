//! Turning a detection into the 160×160 crop the embedder expects.
//!
//! The default is davidsandberg/facenet's `align_dataset_mtcnn.py --image_size 160
//! --margin 32`: widen the box by margin/2 per side, truncate and clip it to the image, and
//! resize bilinearly (bit-exact with OpenCV's 8-bit INTER_LINEAR). A 5-point similarity warp
//! is offered as an alternative for evaluation.

use crate::mtcnn::Detection;
use image::{Rgb, RgbImage};

/// ArcFace's five landmark positions in a 112×112 crop (eyes, nose, mouth corners).
pub const TEMPLATE_112: [[f32; 2]; 5] =
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]];

/// facenet's choice of one face: the largest box area minus twice the squared distance of the
/// box centre from the image centre.
pub fn choose_face(faces: &[Detection], width: u32, height: u32) -> Option<usize> {
    let (cx, cy) = (width as f64 / 2.0, height as f64 / 2.0);
    let merit = |d: &Detection| {
        let b = d.bbox.map(f64::from);
        let area = (b[2] - b[0]) * (b[3] - b[1]);
        let (dx, dy) = ((b[0] + b[2]) / 2.0 - cx, (b[1] + b[3]) / 2.0 - cy);
        area - 2.0 * (dx * dx + dy * dy)
    };
    (0..faces.len()).max_by(|&a, &b| merit(&faces[a]).total_cmp(&merit(&faces[b])))
}

/// The pixel rectangle [x1, y1, x2) × [y1, y2) facenet cuts: box ± margin/2, clipped, truncated.
/// Always at least one pixel, so a box outside the image still yields a crop.
pub fn crop_box(bbox: [f32; 4], width: u32, height: u32, margin: u32) -> [u32; 4] {
    let half = margin as f32 / 2.0;
    let (w, h) = (width as f32, height as f32);
    let x1 = (bbox[0] - half).clamp(0.0, w - 1.0) as u32;
    let y1 = (bbox[1] - half).clamp(0.0, h - 1.0) as u32;
    let x2 = ((bbox[2] + half).min(w) as u32).max(x1 + 1);
    let y2 = ((bbox[3] + half).min(h) as u32).max(y1 + 1);
    [x1, y1, x2, y2]
}

/// facenet's crop: box plus margin, clipped, resized to `image_size` square.
pub fn crop_facenet(img: &RgbImage, face: &Detection, image_size: u32, margin: u32) -> RgbImage {
    let [x1, y1, x2, y2] = crop_box(face.bbox, img.width(), img.height(), margin);
    let region = image::imageops::crop_imm(img, x1, y1, x2 - x1, y2 - y1).to_image();
    resize_linear(&region, image_size, image_size)
}

/// OpenCV's fixed-point bilinear weights for one axis: for each output index, the source
/// index pair and their 11-bit weights (half-pixel centres, edge pixels clamped).
fn linear_taps(src: u32, dst: u32) -> Vec<(usize, usize, i32, i32)> {
    // OpenCV derives the step from the inverse ratio; kept so rounding matches.
    let scale = 1.0 / (dst as f64 / src as f64);
    (0..dst)
        .map(|d| {
            let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let mut s = f.floor() as i64;
            let mut frac = f - s as f32;
            if s < 0 {
                (s, frac) = (0, 0.0);
            }
            if s >= src as i64 - 1 {
                (s, frac) = (src as i64 - 1, 0.0);
            }
            let s = s as usize;
            let next = (s + 1).min(src as usize - 1);
            (s, next, ((1.0 - frac) * 2048.0).round() as i32, (frac * 2048.0).round() as i32)
        })
        .collect()
}

/// Bilinear resize reproducing OpenCV's `cv2.resize(..., INTER_LINEAR)` on 8-bit images:
/// 11-bit horizontal and vertical weights and its rounding of the vertical pass.
pub fn resize_linear(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    let xt = linear_taps(img.width(), width);
    let yt = linear_taps(img.height(), height);
    let src_w = img.width() as usize;
    let raw = img.as_raw();
    let hpass = |row: usize| -> Vec<i32> {
        let line = &raw[row * src_w * 3..(row + 1) * src_w * 3];
        xt.iter()
            .flat_map(|&(s0, s1, a0, a1)| (0..3).map(move |c| line[s0 * 3 + c] as i32 * a0 + line[s1 * 3 + c] as i32 * a1))
            .collect()
    };
    let mut out = Vec::with_capacity((width * height * 3) as usize);
    for &(r0, r1, b0, b1) in &yt {
        let (s0, s1) = (hpass(r0), hpass(r1));
        for (v0, v1) in s0.iter().zip(&s1) {
            let v = (((b0 * (v0 >> 4)) >> 16) + ((b1 * (v1 >> 4)) >> 16) + 2) >> 2;
            out.push(v.clamp(0, 255) as u8);
        }
    }
    RgbImage::from_raw(width, height, out).expect("buffer sized to the image")
}

/// Least-squares similarity (rotation, uniform scale, translation) mapping `from` onto `to`:
/// returns (a, b, tx, ty) with x' = a·x − b·y + tx, y' = b·x + a·y + ty.
pub fn similarity(from: &[[f32; 2]; 5], to: &[[f32; 2]; 5]) -> (f32, f32, f32, f32) {
    let mean = |p: &[[f32; 2]; 5]| {
        let s = p.iter().fold([0.0; 2], |acc, q| [acc[0] + q[0], acc[1] + q[1]]);
        [s[0] / 5.0, s[1] / 5.0]
    };
    let (mf, mt) = (mean(from), mean(to));
    let (mut dot, mut cross, mut var) = (0.0, 0.0, 0.0);
    for (f, t) in from.iter().zip(to) {
        let (fx, fy, tx, ty) = (f[0] - mf[0], f[1] - mf[1], t[0] - mt[0], t[1] - mt[1]);
        dot += fx * tx + fy * ty;
        cross += fx * ty - fy * tx;
        var += fx * fx + fy * fy;
    }
    let (a, b) = if var > 0.0 { (dot / var, cross / var) } else { (1.0, 0.0) };
    (a, b, mt[0] - (a * mf[0] - b * mf[1]), mt[1] - (b * mf[0] + a * mf[1]))
}

/// Warps the face so its five landmarks land on ArcFace's template scaled to `size`;
/// pixels from outside the image are black.
pub fn warp_5pt(img: &RgbImage, face: &Detection, size: u32) -> RgbImage {
    let k = size as f32 / 112.0;
    let template = TEMPLATE_112.map(|[x, y]| [x * k, y * k]);
    let (a, b, tx, ty) = similarity(&face.landmarks, &template);
    // Invert x' = M x + t to sample the source for every output pixel.
    let det = a * a + b * b;
    RgbImage::from_fn(size, size, |u, v| {
        let (du, dv) = (u as f32 - tx, v as f32 - ty);
        let x = (a * du + b * dv) / det;
        let y = (-b * du + a * dv) / det;
        sample_bilinear(img, x, y)
    })
}

fn sample_bilinear(img: &RgbImage, x: f32, y: f32) -> Rgb<u8> {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let at = |xi: f32, yi: f32| -> [f32; 3] {
        if xi < 0.0 || yi < 0.0 || xi >= img.width() as f32 || yi >= img.height() as f32 {
            return [0.0; 3];
        }
        img.get_pixel(xi as u32, yi as u32).0.map(f32::from)
    };
    let (p00, p10, p01, p11) = (at(x0, y0), at(x0 + 1.0, y0), at(x0, y0 + 1.0), at(x0 + 1.0, y0 + 1.0));
    Rgb(std::array::from_fn(|c| {
        let top = p00[c] * (1.0 - fx) + p10[c] * fx;
        let bottom = p01[c] * (1.0 - fx) + p11[c] * fx;
        (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(bbox: [f32; 4]) -> Detection {
        Detection { bbox, prob: 0.99, landmarks: [[0.0; 2]; 5] }
    }

    #[test]
    fn choose_face_prefers_central_over_larger() {
        // 200x200 image. A: 40x40 centred (merit 1600). B: 50x50 centred at (30,30):
        // 2500 - 2*(70²+70²) < 0. facenet picks A although B is larger.
        let faces = [face([5.0, 5.0, 55.0, 55.0]), face([80.0, 80.0, 120.0, 120.0])];
        assert_eq!(choose_face(&faces, 200, 200), Some(1));
        assert_eq!(choose_face(&[], 200, 200), None);
    }

    #[test]
    fn crop_box_truncates_and_clips() {
        // x1 = 10.9-16 < 0 -> 0; y1 = 30.7-16 = 14.7 -> 14; x2 = min(99.5+16, 100) = 100; y2 = 80.2+16 -> 96.
        assert_eq!(crop_box([10.9, 30.7, 99.5, 80.2], 100, 120, 32), [0, 14, 100, 96]);
    }

    #[test]
    fn resize_linear_matches_hand_computed_opencv_values() {
        // 2x1 -> 4x1: source centres map to f = -0.25, 0.25, 0.75, 1.25; ends clamp.
        let img = RgbImage::from_fn(2, 1, |x, _| Rgb([if x == 0 { 0 } else { 200 }; 3]));
        let out = resize_linear(&img, 4, 1);
        let row: Vec<u8> = out.pixels().map(|p| p[0]).collect();
        // 0.25*200 = 50, 0.75*200 = 150.
        assert_eq!(row, vec![0, 50, 150, 200]);
        // Identity size leaves the image untouched.
        let same = resize_linear(&img, 2, 1);
        assert_eq!(same, img);
    }

    #[test]
    fn similarity_recovers_a_known_transform() {
        // Rotate by 90°, scale 2, translate (3, 4): x' = -2y + 3, y' = 2x + 4.
        let from = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [2.0, 3.0], [5.0, -1.0]];
        let to = from.map(|[x, y]| [-2.0 * y + 3.0, 2.0 * x + 4.0]);
        let (a, b, tx, ty) = similarity(&from, &to);
        for (got, want) in [a, b, tx, ty].iter().zip([0.0, 2.0, 3.0, 4.0]) {
            assert!((got - want).abs() < 1e-4, "{got} vs {want}");
        }
    }

    #[test]
    fn warp_5pt_puts_landmarks_on_the_template() {
        // A white dot at each landmark of an identity-placed face lands at the template spots.
        let mut img = RgbImage::new(160, 160);
        let k = 160.0 / 112.0;
        let marks = TEMPLATE_112.map(|[x, y]| [(x * k).round(), (y * k).round()]);
        for [x, y] in marks {
            img.put_pixel(x as u32, y as u32, Rgb([255; 3]));
        }
        let det = Detection { bbox: [0.0, 0.0, 160.0, 160.0], prob: 1.0, landmarks: marks };
        let out = warp_5pt(&img, &det, 160);
        for [x, y] in marks {
            assert!(out.get_pixel(x as u32, y as u32)[0] > 200);
        }
    }
}
