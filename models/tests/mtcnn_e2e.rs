//! The whole detector and the facenet crop against golden/e2e (a reference MTCNN on LFW).
//!
//! The reference is ipazc/mtcnn on OpenCV fed libjpeg-turbo's pixels. fdb decodes JPEG with
//! libjpeg-turbo's code and its default cascade handles pixels and overlaps like ipazc, so it
//! reproduces the reference's detections, and every image meets the per-image
//! criteria (box IoU >= 0.9, landmarks within 3 px, embedding cosine >= 0.99).

mod mtcnn_support;

use fdb_models::align::{choose_face, crop_box, crop_facenet, resize_linear};
use fdb_models::imageio::load_image;
use fdb_models::mtcnn::Detection;
use image::RgbImage;
use mtcnn_support::{e2e_shared, golden_images, installed_models, iou, mtcnn, GoldenImage};

fn file_name(g: &GoldenImage) -> &str {
    g.path.rsplit('/').next().unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// fdb's chosen face for a golden image.
fn chosen(img: &RgbImage, faces: &[Detection], g: &GoldenImage) -> Detection {
    faces[choose_face(faces, img.width(), img.height()).unwrap_or_else(|| panic!("{}: no face", g.path))]
}

/// (box IoU, worst landmark distance in px) of a face against the reference's chosen face.
fn agreement(face: &Detection, g: &GoldenImage) -> (f32, f32) {
    let px = face
        .landmarks
        .iter()
        .zip(g.chosen_landmarks.unwrap())
        .map(|(a, b)| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt())
        .fold(0f32, f32::max);
    (iou(face.bbox, g.chosen_box.unwrap()), px)
}

fn detected_golden() -> Option<(std::path::PathBuf, Vec<GoldenImage>)> {
    let shared = e2e_shared()?;
    let golden: Vec<_> = golden_images(&shared).into_iter().filter(|g| !g.fallback).collect();
    assert!(golden.len() >= 20, "golden set shrank to {}", golden.len());
    Some((shared, golden))
}

/// On libjpeg-turbo's pixels fdb's cascade gives the reference's detection to float noise.
#[test]
fn detection_on_reference_pixels_equals_reference() {
    let (Some((_, golden)), Some(m)) = (detected_golden(), mtcnn()) else { return };
    let dir = mtcnn_support::fixture("libjpeg_decoded");
    let mut checked = 0;
    for g in &golden {
        let Ok(decoded) = image::open(dir.join(file_name(g).replace(".jpg", ".png"))) else { continue };
        let img = decoded.into_rgb8();
        let face = chosen(&img, &m.detect(&img).unwrap(), g);
        let (overlap, px) = agreement(&face, g);
        println!("{}: IoU {overlap:.5}, landmarks within {px:.4} px", g.path);
        assert!(overlap > 0.999 && px < 0.05, "{}: IoU {overlap}, {px} px", g.path);
        checked += 1;
    }
    assert_eq!(checked, 3, "libjpeg-decoded fixtures missing");
}

/// The per-image criteria (IoU >= 0.9, landmarks within 3 px) on fdb's own decoding.
#[test]
fn chosen_face_matches_reference_box_and_landmarks() {
    let (Some((shared, golden)), Some(m)) = (detected_golden(), mtcnn()) else { return };
    let lfw = shared.join("datasets/lfw/images");
    let imgs: Vec<_> = golden.iter().map(|g| load_image(&lfw.join(&g.path)).unwrap()).collect();
    let found = m.detect_many(&imgs).unwrap();
    let mut failures = Vec::new();
    for ((g, img), faces) in golden.iter().zip(&imgs).zip(&found) {
        let (overlap, px) = agreement(&chosen(img, faces, g), g);
        println!("{}: {} faces (ref {}), IoU {overlap:.3}, landmarks within {px:.2} px", g.path, faces.len(), g.detections);
        if overlap < 0.9 || px > 3.0 {
            failures.push(format!("{}: IoU {overlap}, landmarks {px} px", g.path));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// fdb's detection + crop, embedded by fdb's FaceNet, against the reference embedding:
/// cosine >= 0.99 on every image.
#[test]
fn embedding_of_fdb_crop_matches_reference() {
    let (Some((shared, golden)), Some(m), Some(models)) = (detected_golden(), mtcnn(), installed_models()) else { return };
    let embedder = fdb_models::facenet::Embedder::load(&models.facenet, &candle_core::Device::Cpu).unwrap();
    let lfw = shared.join("datasets/lfw/images");
    let mut crops = Vec::new();
    for g in &golden {
        let img = load_image(&lfw.join(&g.path)).unwrap();
        let face = chosen(&img, &m.detect(&img).unwrap(), g);
        crops.push(crop_facenet(&img, &face, 160, 32));
    }
    let embeddings = embedder.embed(&crops).unwrap();
    let mut failures = Vec::new();
    for (g, e) in golden.iter().zip(&embeddings) {
        let cosine = e.iter().zip(&g.embedding).map(|(a, b)| a * b).sum::<f32>();
        println!("{}: cosine {cosine:.4}", g.path);
        if cosine < 0.99 {
            failures.push(format!("{}: cosine {cosine}", g.path));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn batched_detection_equals_single_detection() {
    let (Some(shared), Some(m)) = (e2e_shared(), mtcnn()) else { return };
    let lfw = shared.join("datasets/lfw/images");
    let imgs: Vec<_> = golden_images(&shared).iter().take(6).map(|g| load_image(&lfw.join(&g.path)).unwrap()).collect();
    let batched = m.detect_many(&imgs).unwrap();
    for (img, many) in imgs.iter().zip(batched) {
        let single = m.detect(img).unwrap();
        assert_eq!(single.len(), many.len());
        for (a, b) in single.iter().zip(&many) {
            for k in 0..4 {
                assert!((a.bbox[k] - b.bbox[k]).abs() < 1e-3, "{:?} vs {:?}", a.bbox, b.bbox);
            }
        }
    }
}

/// The resize on libjpeg-turbo's pixels saved by PIL as fixtures (so it runs without fdb's
/// decoder), verified against the golden `decoded_rgb_sha256`, must equal the reference crop
/// up to rounding.
#[test]
fn facenet_crop_reproduces_reference_crops() {
    let Some(shared) = e2e_shared() else { return };
    let dir = mtcnn_support::fixture("libjpeg_decoded");
    let mut checked = 0;
    for g in golden_images(&shared) {
        let name = g.path.rsplit('/').next().unwrap().replace(".jpg", ".png");
        let Ok(decoded) = image::open(dir.join(&name)) else { continue };
        let img = decoded.into_rgb8();
        assert_eq!(sha256_hex(img.as_raw()), g.decoded_sha256, "{name} is not the reference decode");
        let face = fdb_models::mtcnn::Detection { bbox: g.chosen_box.unwrap(), prob: 1.0, landmarks: [[0.0; 2]; 5] };
        assert_eq!(crop_box(face.bbox, img.width(), img.height(), 32), g.crop_box, "{name}");
        let ours = crop_facenet(&img, &face, 160, 32);
        let want = image::open(shared.join("golden/e2e").join(&g.crop_png)).unwrap().into_rgb8();
        let diffs: Vec<u8> = ours.as_raw().iter().zip(want.as_raw()).map(|(a, b)| a.abs_diff(*b)).collect();
        let max = *diffs.iter().max().unwrap();
        let off = diffs.iter().filter(|&&d| d > 0).count() as f64 / diffs.len() as f64;
        println!("{name}: max pixel difference to the reference crop {max}, {:.2}% of values differ", off * 100.0);
        assert!(max <= 1 && off < 0.05, "{name}: crop differs from cv2 INTER_LINEAR (max {max}, {off})");
        checked += 1;
    }
    assert_eq!(checked, 3, "libjpeg-decoded fixtures missing");
}

/// fdb decodes every golden JPEG to exactly the reference's pixels (libjpeg-turbo's).
#[test]
fn jpeg_decoding_equals_libjpeg_turbo() {
    let Some(shared) = e2e_shared() else { return };
    let lfw = shared.join("datasets/lfw/images");
    let golden = golden_images(&shared);
    assert_eq!(golden.len(), 24);
    for g in &golden {
        let img = load_image(&lfw.join(&g.path)).unwrap();
        assert_eq!(sha256_hex(img.as_raw()), g.decoded_sha256, "{}", g.path);
    }
}

/// With fdb's own decoding the crops at the reference's boxes equal the reference crops up to
/// the resize's rounding.
#[test]
fn facenet_crop_from_fdb_decoding_matches() {
    let Some(shared) = e2e_shared() else { return };
    let lfw = shared.join("datasets/lfw/images");
    let (mut worst, mut total, mut count) = (0u8, 0u64, 0u64);
    for g in golden_images(&shared) {
        let img = load_image(&lfw.join(&g.path)).unwrap();
        let [x1, y1, x2, y2] = g.crop_box;
        let region = image::imageops::crop_imm(&img, x1, y1, x2 - x1, y2 - y1).to_image();
        let ours = resize_linear(&region, 160, 160);
        let want = image::open(shared.join("golden/e2e").join(&g.crop_png)).unwrap().into_rgb8();
        for (a, b) in ours.as_raw().iter().zip(want.as_raw()) {
            worst = worst.max(a.abs_diff(*b));
            total += a.abs_diff(*b) as u64;
            count += 1;
        }
    }
    let mean = total as f64 / count as f64;
    println!("fdb-decoded crops vs reference: max {worst}, mean {mean:.4}");
    assert!(mean < 0.01 && worst <= 1, "max {worst}, mean {mean}");
}
