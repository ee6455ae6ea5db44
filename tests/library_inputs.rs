//! The library takes a photo in any form (`ImageInput`): a path, encoded bytes, a decoded
//! image, a camera's raw frame with a padded stride. One photo in every form is one photo:
//! the same embedding and answers, and one face when it is enrolled twice. A frame that does not fit its
//! buffer is a typed error, never a panic.

mod common;

use std::path::PathBuf;

use common::fixtures;
use fdb::{EnrollStatus, FaceDb, FdbError, FrameError, ImageInput, OpenOptions, PixelFormat, RawFrame};
use image::{DynamicImage, RgbImage};

fn photo(person: &str, i: usize) -> PathBuf {
    fixtures().join("people").join(person).join(format!("{person}_{i:04}.jpg"))
}

fn open(dir: &std::path::Path) -> FaceDb {
    FaceDb::open_with(dir.join("db"), OpenOptions::new().device("cpu").install_models(true)).unwrap()
}

fn enrol_fixtures(db: &FaceDb) {
    for person in ["Colin_Powell", "Serena_Williams", "Tony_Blair"] {
        let photos: Vec<PathBuf> = (1..=3).map(|i| photo(person, i)).collect();
        for report in db.enroll(person, &photos).unwrap() {
            assert!(matches!(report.status, EnrollStatus::Enrolled { .. }), "{report:?}");
        }
    }
}

/// `image`'s rows as BGR, each followed by `pad` bytes of junk.
fn bgr_with_padding(image: &RgbImage, pad: usize) -> (Vec<u8>, usize) {
    let stride = image.width() as usize * 3 + pad;
    let mut buffer = Vec::with_capacity(stride * image.height() as usize);
    for row in image.rows() {
        for px in row {
            buffer.extend_from_slice(&[px[2], px[1], px[0]]);
        }
        buffer.extend(std::iter::repeat_n(0xAB, pad));
    }
    (buffer, stride)
}

#[test]
fn one_photo_in_every_form_gets_one_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let db = open(tmp.path());
    enrol_fixtures(&db);

    let path = photo("Tony_Blair", 4);
    let bytes = std::fs::read(&path).unwrap();
    // The pixels fdb itself decodes the file to (libjpeg-turbo), so every form holds the same ones.
    let rgb: RgbImage = fdb_models::imageio::load_image(&path).unwrap();
    let dynamic = DynamicImage::ImageRgb8(rgb.clone());
    let (bgr, stride) = bgr_with_padding(&rgb, 7);
    let frame = RawFrame::bgr(&bgr, rgb.width(), rgb.height()).with_stride(stride);

    let inputs: Vec<(&str, ImageInput<'_>)> = vec![
        ("path", path.as_path().into()),
        ("bytes", (&bytes).into()),
        ("RgbImage", (&rgb).into()),
        ("DynamicImage", (&dynamic).into()),
        ("BGR frame", frame.into()),
    ];
    let by_path = db.search(&path, 3).unwrap();
    let embedded = db.embed(&path).unwrap().remove(0);
    assert_eq!(by_path.identity.as_deref(), Some("Tony_Blair"));
    for (form, input) in &inputs {
        let answer = db.search(input, 3).unwrap();
        assert_eq!(answer.identity, by_path.identity, "{form}");
        assert_eq!(answer.bbox, by_path.bbox, "{form}");
        assert_eq!(answer.matches.len(), by_path.matches.len(), "{form}");
        for (m, p) in answer.matches.iter().zip(&by_path.matches) {
            assert_eq!((&m.person, m.face), (&p.person, p.face), "{form}");
            assert!((m.distance - p.distance).abs() < 1e-5, "{form}: {} vs {}", m.distance, p.distance);
        }
        let e = db.embed(input).unwrap().remove(0);
        let most = e.vector.iter().zip(&embedded.vector).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
        assert!(most < 1e-5, "{form}: the embeddings differ by {most}");
        assert_eq!((e.bbox, e.quality), (embedded.bbox, embedded.quality), "{form}");
        // verify takes any two forms.
        let v = db.verify(input, &path).unwrap();
        assert!(v.distance < 1e-5 && v.same, "{form}: {v:?}");
    }
    assert_eq!(db.identify_all(&bytes, 1).unwrap()[0].identity.as_deref(), Some("Tony_Blair"));
}

#[test]
fn enrolment_dedupes_bytes_like_files_and_pixels_whatever_their_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let db = open(tmp.path());
    let path = photo("Serena_Williams", 1);
    let Some(EnrollStatus::Enrolled { face, .. }) = db.enroll("Serena", &[&path]).unwrap().pop().map(|r| r.status) else {
        panic!("the file is enrolled")
    };
    // The same file's bytes are the same photo.
    let bytes = std::fs::read(&path).unwrap();
    let again = db.enroll("Serena", &[&bytes]).unwrap().remove(0);
    assert_eq!(again.status, EnrollStatus::Duplicate { face });
    assert_eq!(again.path, PathBuf::from(format!("<encoded image, {} bytes>", bytes.len())));

    // Decoded pixels are hashed as pixels: an RgbImage and the same frame as padded BGR are one face.
    let rgb = fdb_models::imageio::load_image(&photo("Serena_Williams", 2)).unwrap();
    let (bgr, stride) = bgr_with_padding(&rgb, 5);
    let frame = RawFrame::bgr(&bgr, rgb.width(), rgb.height()).with_stride(stride);
    let items: Vec<(String, ImageInput<'_>)> =
        vec![("Serena".into(), (&rgb).into()), ("Serena".into(), frame.into())];
    let reports = db.enroll_many(&items, &Default::default(), &fdb::Progress::new()).unwrap();
    let EnrollStatus::Enrolled { face: from_pixels, .. } = reports[0].status else { panic!("{reports:?}") };
    assert_eq!(reports[1].status, EnrollStatus::Duplicate { face: from_pixels });
    let later = db.enroll("Serena", &[frame]).unwrap().remove(0);
    assert_eq!(later.status, EnrollStatus::Duplicate { face: from_pixels });
    assert_eq!(db.faces("Serena").unwrap().len(), 2);
    assert_eq!(db.store().face(from_pixels).unwrap().unwrap().source_name, format!("<{}x{} RGB image>", rgb.width(), rgb.height()));
}

#[test]
fn frames_that_do_not_fit_their_buffer_are_typed_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let db = open(tmp.path());
    let buffer = vec![0u8; 100 * 100 * 3];
    let bad = [
        (RawFrame::rgb(&buffer, 100, 101), FrameError::BufferTooShort { len: 30_000, needed: 30_300 }),
        (RawFrame::rgb(&buffer, 0, 100), FrameError::Empty { width: 0, height: 100 }),
        (RawFrame::bgr(&buffer, 100, 0), FrameError::Empty { width: 100, height: 0 }),
        (
            RawFrame::bgr(&buffer, 100, 100).with_stride(299),
            FrameError::StrideTooSmall { stride: 299, row: 300, format: PixelFormat::Bgr8 },
        ),
        (
            RawFrame::new(&buffer, 100, 100, PixelFormat::Bgra8),
            FrameError::BufferTooShort { len: 30_000, needed: 40_000 },
        ),
    ];
    for (frame, expected) in bad {
        match db.search(frame, 1) {
            Err(FdbError::Frame(e)) => assert_eq!(e, expected),
            other => panic!("{frame:?}: {other:?}"),
        }
        match db.verify(frame, &photo("Tony_Blair", 1)) {
            Err(FdbError::Frame(e)) => assert_eq!(e, expected),
            other => panic!("{frame:?}: {other:?}"),
        }
        // In an enrolment a bad frame fails alone; the batch goes on.
        let reports = db.enroll("Tony", &[ImageInput::from(frame), photo("Tony_Blair", 1).into()]).unwrap();
        assert!(
            matches!(&reports[0].status, EnrollStatus::Failed { error } if matches!(**error, FdbError::Frame(ref e) if *e == expected)),
            "{reports:?}"
        );
        assert!(matches!(reports[1].status, EnrollStatus::Enrolled { .. } | EnrollStatus::Duplicate { .. }), "{reports:?}");
    }
}

#[test]
fn a_closed_database_reopens_with_its_faces_and_its_index() {
    let tmp = tempfile::tempdir().unwrap();
    let db = open(tmp.path());
    let bytes = std::fs::read(photo("Tony_Blair", 1)).unwrap();
    db.enroll("Tony_Blair", &[ImageInput::from(&bytes[..])]).unwrap();
    db.close().unwrap();
    let db = open(tmp.path()); // waits for sled to let go of its lock, as any open does
    assert_eq!(db.store().index_load(), fdb_storage::IndexLoad::Snapshot { added: 0 }, "close saved the index");
    let answer = db.search(photo("Tony_Blair", 2), 1).unwrap();
    assert_eq!(answer.identity.as_deref(), Some("Tony_Blair"), "{answer:?}");
}
