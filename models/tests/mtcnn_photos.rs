//! Photos the detector must handle: several people, grayscale PGM, EXIF-rotated JPEG, no
//! face, 16-bit PNG, broken and oversized files, and tight face crops.

mod mtcnn_support;

use fdb_models::align::{choose_face, crop_box};
use fdb_models::imageio::{decode_image, load_image, ImageError};
use fdb_models::mtcnn::FaceSource;
use mtcnn_support::{e2e_shared, fixture, golden_images, iou, mtcnn, shared_with};

/// The reference box of one golden LFW image; a visible skip (or a failure under
/// `FDB_REQUIRE_DATA=1`) without ../shared.
fn golden_box(name: &str) -> Option<[f32; 4]> {
    let shared = shared_with(&["golden/e2e/golden_e2e.json"])?;
    let found = golden_images(&shared).into_iter().find(|g| g.path.ends_with(name));
    Some(found.and_then(|g| g.chosen_box).unwrap_or_else(|| panic!("golden_e2e.json has no face for {name}")))
}

#[test]
fn finds_every_face_in_a_group_photo() {
    let Some(m) = mtcnn() else { return };
    let img = load_image(&fixture("group_simon_cowell_0001.jpg")).unwrap();
    let faces = m.detect(&img).unwrap();
    // The reference finds 6 faces: Simon Cowell and five smaller ones behind him.
    assert!(faces.len() >= 5 && faces.len() <= 7, "{} faces", faces.len());
    assert!(faces.iter().all(|f| f.prob > 0.7));
    let main = &faces[choose_face(&faces, img.width(), img.height()).unwrap()];
    assert!(main.bbox[2] - main.bbox[0] > 70.0, "chose a background face: {:?}", main.bbox);
}

#[test]
fn grayscale_pgm_becomes_rgb_and_has_its_face() {
    let img = load_image(&fixture("gray_aitor_gonzalez_0001.pgm")).unwrap();
    assert_eq!(img.dimensions(), (250, 250));
    assert!(img.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
    let Some(m) = mtcnn() else { return };
    let faces = m.detect(&img).unwrap();
    let face = &faces[choose_face(&faces, 250, 250).expect("a face in the PGM")];
    if let Some(want) = golden_box("Aitor_Gonzalez_0001.jpg") {
        assert!(iou(face.bbox, want) > 0.85, "{:?} vs {want:?}", face.bbox);
    }
}

#[test]
fn exif_orientation_is_applied() {
    // Stored rotated 90° counter-clockwise with orientation 6 ("rotate 90° clockwise").
    let img = load_image(&fixture("exif6_bob_huggins_0001.jpg")).unwrap();
    let Some(m) = mtcnn() else { return };
    let faces = m.detect(&img).unwrap();
    let face = &faces[choose_face(&faces, img.width(), img.height()).expect("a face")];
    let [l_eye, r_eye, _, l_mouth, _] = face.landmarks;
    assert!(l_eye[0] < r_eye[0] && l_eye[1] < l_mouth[1], "face not upright: {:?}", face.landmarks);
    if let Some(want) = golden_box("Bob_Huggins_0001.jpg") {
        assert!(iou(face.bbox, want) > 0.85, "{:?} vs {want:?}", face.bbox);
    }
}

#[test]
fn a_picture_without_a_face_yields_none_and_no_fallback_face() {
    let img = load_image(&fixture("no_face_shapes.png")).unwrap();
    let Some(m) = mtcnn() else { return };
    assert!(m.detect(&img).unwrap().is_empty());
    for allow in [false, true] {
        // Landscape-shaped, so never taken for a tight face crop.
        let found = m.detect_with_fallback(&img, allow).unwrap();
        assert_eq!(found.source, FaceSource::NotFound);
        assert!(found.faces.is_empty());
    }
}

#[test]
fn sixteen_bit_png_is_scaled_to_eight_bits() {
    // Written as v8 * 257 from an 8-bit gray image whose values are known.
    let img = load_image(&fixture("gray16_48.png")).unwrap();
    assert_eq!(img.dimensions(), (48, 48));
    assert_eq!(img.get_pixel(0, 0).0, [91; 3]);
    assert_eq!(img.get_pixel(24, 24).0, [96; 3]);
    assert_eq!(img.get_pixel(10, 47).0, [161; 3]);
}

#[test]
fn bad_files_are_clear_errors_naming_the_file() {
    let bomb = std::fs::read(fixture("bomb_100000x100000.png")).unwrap();
    let err = decode_image(&bomb, "bomb.png").err().expect("bomb rejected");
    assert!(matches!(err, ImageError::TooLarge { width: 100000, height: 100000, .. }), "{err}");
    assert!(err.to_string().contains("bomb.png"));

    assert!(matches!(decode_image(b"", "empty.jpg"), Err(ImageError::Empty { .. })));
    let err = decode_image(b"plain text, not pixels", "notes.txt").unwrap_err();
    assert!(matches!(err, ImageError::NotAnImage { .. }) && err.to_string().contains("notes.txt"), "{err}");

    let png = std::fs::read(fixture("no_face_shapes.png")).unwrap();
    let err = decode_image(&png[..png.len() / 2], "cut.png").err().expect("cut PNG rejected");
    assert!(matches!(err, ImageError::Truncated { .. } | ImageError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("cut.png"));

    let err = load_image(std::path::Path::new("/nonexistent/face.jpg")).err().expect("missing file");
    assert!(matches!(err, ImageError::Io { .. }) && err.to_string().contains("/nonexistent/face.jpg"));
}

/// Tight crops cut from LFW inside the reference face box (10% off every side, so the face
/// touches the frame): the plain detector often misses them, pad-and-retry must find them.
#[test]
fn tight_crops_are_found_after_padding() {
    let (Some(shared), Some(m)) = (e2e_shared(), mtcnn()) else { return };
    let lfw = shared.join("datasets/lfw/images");
    let (mut plain, mut padded, mut total) = (0, 0, 0);
    for g in golden_images(&shared) {
        let Some(b) = g.chosen_box else { continue };
        let img = load_image(&lfw.join(&g.path)).unwrap();
        let [x1, y1, x2, y2] = crop_box(shrink(b, 0.1), img.width(), img.height(), 0);
        let crop = image::imageops::crop_imm(&img, x1, y1, x2 - x1, y2 - y1).to_image();
        let found = m.detect_with_fallback(&crop, false).unwrap();
        total += 1;
        plain += usize::from(found.source == FaceSource::Detected);
        padded += usize::from(!found.faces.is_empty());
        if let Some(face) = found.faces.first() {
            // The face found is the crop's own: centred in it and at least as wide.
            let (w, h) = (crop.width() as f32, crop.height() as f32);
            let (cx, cy) = ((face.bbox[0] + face.bbox[2]) / 2.0, (face.bbox[1] + face.bbox[3]) / 2.0);
            let centred = (cx - w / 2.0).abs() < w / 4.0 && (cy - h / 2.0).abs() < h / 4.0;
            assert!(centred && face.bbox[2] - face.bbox[0] > 0.8 * w, "{}: {:?} in {w}x{h}", g.path, face.bbox);
        }
    }
    println!("tight crops: {plain}/{total} found as given, {padded}/{total} with pad-and-retry");
    assert!(padded * 10 >= total * 9, "pad-and-retry found only {padded}/{total}");
    assert!(padded >= plain);
}

fn shrink(b: [f32; 4], fraction: f32) -> [f32; 4] {
    let (dx, dy) = ((b[2] - b[0]) * fraction, (b[3] - b[1]) * fraction);
    [b[0] + dx, b[1] + dy, b[2] - dx, b[3] - dy]
}

#[test]
fn whole_image_fallback_only_when_allowed_and_flagged() {
    let Some(m) = mtcnn() else { return };
    // A flat portrait-shaped grey card: no face, but shaped like a face crop.
    let card = image::RgbImage::from_pixel(120, 150, image::Rgb([128, 128, 128]));
    let refused = m.detect_with_fallback(&card, false).unwrap();
    assert_eq!((refused.source, refused.faces.len()), (FaceSource::NotFound, 0));
    let allowed = m.detect_with_fallback(&card, true).unwrap();
    assert_eq!(allowed.source, FaceSource::WholeImage);
    assert_eq!(allowed.faces[0].bbox, [0.0, 0.0, 120.0, 150.0]);
    assert_eq!(allowed.faces[0].prob, 0.0);
}

/// The larger measurement behind the tight-crop table of docs/benchmarks.md: tight crops from the first
/// `FDB_TIGHT_CROPS` (default 300) LFW images, cut at fdb's own box and 10% inside it.
/// Run with `cargo test --release -p fdb-models --test mtcnn_photos -- --ignored --nocapture`.
#[test]
#[ignore]
fn tight_crop_rates_on_lfw() {
    let (Some(shared), Some(m)) = (e2e_shared(), mtcnn()) else { return };
    let n: usize = std::env::var("FDB_TIGHT_CROPS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let mut people: Vec<_> = std::fs::read_dir(shared.join("datasets/lfw/images")).unwrap().map(|e| e.unwrap().path()).collect();
    people.sort();
    let files = people.iter().filter_map(|d| std::fs::read_dir(d).ok()?.next()?.ok().map(|e| e.path())).take(n);
    let mut counts = [[0usize; 2]; 2]; // [inset][plain, padded]
    let mut total = 0;
    for file in files {
        let img = load_image(&file).unwrap();
        let faces = m.detect(&img).unwrap();
        let Some(i) = choose_face(&faces, img.width(), img.height()) else { continue };
        total += 1;
        for (k, inset) in [0.0, 0.1].into_iter().enumerate() {
            let [x1, y1, x2, y2] = crop_box(shrink(faces[i].bbox, inset), img.width(), img.height(), 0);
            let crop = image::imageops::crop_imm(&img, x1, y1, x2 - x1, y2 - y1).to_image();
            let found = m.detect_with_fallback(&crop, false).unwrap();
            counts[k][0] += usize::from(found.source == FaceSource::Detected);
            counts[k][1] += usize::from(!found.faces.is_empty());
        }
    }
    for (k, name) in ["box", "10% inside box"].iter().enumerate() {
        println!("tight crops ({name}): {}/{total} as given, {}/{total} with pad-and-retry", counts[k][0], counts[k][1]);
    }
    assert!(counts[1][1] >= counts[1][0]);
}

/// Which contrast normalisation the detector's retry should use: for every photo under
/// `FDB_HARD_PROBES` (the altered photos `fdb eval hard --out DIR` writes, e.g. DIR/probes)
/// where the plain pass finds nothing, the retry chain with each normaliser.
/// Run with `FDB_HARD_PROBES=DIR cargo test --release -p fdb-models --test mtcnn_photos -- --ignored --nocapture contrast_retry`.
#[test]
#[ignore]
fn contrast_retry_rates_on_hard_probes() {
    use fdb_models::mtcnn::Contrast;
    let (Some(dir), Some(m)) = (std::env::var_os("FDB_HARD_PROBES"), mtcnn()) else { return };
    let mut files = Vec::new();
    for sub in std::fs::read_dir(&dir).unwrap() {
        let sub = sub.unwrap().path();
        if sub.is_dir() {
            files.extend(std::fs::read_dir(&sub).unwrap().map(|e| e.unwrap().path()));
        }
    }
    files.sort();
    let modes = [Contrast::Equalize, Contrast::Clahe, Contrast::GammaLift];
    let mut missed = 0;
    let mut counts = vec![std::collections::BTreeMap::<&str, usize>::new(); modes.len()];
    for file in &files {
        let img = load_image(file).unwrap();
        if !m.detect(&img).unwrap().is_empty() {
            continue;
        }
        missed += 1;
        for (k, mode) in modes.iter().enumerate() {
            let found = m.retry(&img, *mode, false).unwrap();
            *counts[k].entry(found.source.as_str()).or_default() += 1;
        }
    }
    println!("{} photos, {missed} with no face on the plain pass", files.len());
    for (mode, c) in modes.iter().zip(&counts) {
        println!("{mode:?}: {c:?}");
    }
}
