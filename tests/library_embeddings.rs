//! The embedding-level calls: `embed` a photo's faces, `add_face` one of them, then
//! `search_embedding`, `search_face` and `verify_embeddings` give the answers `search` and
//! `verify` give on the photos; `face` returns what was stored.

mod common;

use std::path::PathBuf;

use common::fixtures;
use fdb::{EnrollStatus, FaceDb, FdbError, OpenOptions, PersonId};

fn photo(person: &str, i: usize) -> PathBuf {
    fixtures().join("people").join(person).join(format!("{person}_{i:04}.jpg"))
}

fn open(dir: &std::path::Path) -> FaceDb {
    FaceDb::open_with(dir.join("db"), OpenOptions::new().device("cpu").install_models(true)).unwrap()
}

fn close(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn embed_add_face_and_search_embedding_name_the_person() {
    let tmp = tempfile::tempdir().unwrap();
    let db = open(tmp.path());
    for person in ["Colin_Powell", "Serena_Williams"] {
        let photos: Vec<PathBuf> = (1..=3).map(|i| photo(person, i)).collect();
        db.enroll(person, &photos).unwrap();
    }
    // Tony Blair arrives as vectors only.
    let mut tony = Vec::new();
    for i in 1..=3 {
        let faces = db.embed(photo("Tony_Blair", i)).unwrap();
        assert_eq!(faces.len(), 1, "{faces:?}");
        assert!(faces[0].primary && faces[0].quality > 0.0 && faces[0].detector_score > 0.9, "{faces:?}");
        assert_eq!(faces[0].crop.dimensions(), (160, 160));
        assert!((faces[0].vector.iter().map(|v| v * v).sum::<f32>() - 1.0).abs() < 1e-4);
        let status = db.add_face("Tony_Blair", &faces[0]).unwrap();
        let EnrollStatus::Enrolled { face, .. } = status else { panic!("{status:?}") };
        tony.push((face, faces.into_iter().next().unwrap()));
    }
    assert_eq!(db.faces("Tony_Blair").unwrap().len(), 3);

    let probe = photo("Tony_Blair", 4);
    let by_photo = db.search(&probe, 3).unwrap();
    let embedded = db.embed(&probe).unwrap().remove(0);
    let by_vector = db.search_embedding(&embedded.vector, 3).unwrap();
    let by_face = db.search_face(&embedded, 3).unwrap();
    assert_eq!(by_photo.identity.as_deref(), Some("Tony_Blair"));
    for answer in [&by_vector, &by_face] {
        assert_eq!(answer.identity, by_photo.identity);
        assert_eq!((answer.threshold, answer.calibration, answer.expected_far), (by_photo.threshold, by_photo.calibration, by_photo.expected_far));
        assert_eq!(answer.matches.len(), by_photo.matches.len());
        for (m, p) in answer.matches.iter().zip(&by_photo.matches) {
            assert_eq!((&m.person, m.face), (&p.person, p.face));
            assert!((m.distance - p.distance).abs() < 1e-5, "{} vs {}", m.distance, p.distance);
        }
    }
    assert_eq!((by_face.bbox, by_face.quality, &by_face.source), (by_photo.bbox, by_photo.quality, &by_photo.source));
    assert_eq!(by_vector.source, "embedding");
    // A stranger's vector is nobody.
    let stranger = db.embed(fixtures().join("strangers/AJ_Cook_0001.jpg")).unwrap().remove(0);
    assert_eq!(db.search_embedding(&stranger.vector, 1).unwrap().identity, None);

    // What was stored: the crop and the vector it came from; re-embedding the crop gives it back.
    let (id, added) = &tony[0];
    let stored = db.face(*id).unwrap().expect("the face is stored");
    assert_eq!((stored.person.as_str(), stored.record.quality), ("Tony_Blair", Some(added.quality)));
    assert_eq!(stored.record.source_name, photo("Tony_Blair", 1).display().to_string());
    assert_eq!(stored.crop, added.crop);
    let vector = stored.vector.expect("a vector by the current model");
    assert!(close(&vector, &added.vector) < 1e-6);
    let engine = db.engine().unwrap();
    let again = engine.embed_recipe(&[stored.crop.clone()], db.models().recipe().unwrap()).unwrap().remove(0);
    assert!(close(&again, &vector) < 1e-4);
    assert!(db.face(fdb::FaceId(u64::MAX)).unwrap().is_none());

    // The same face again, by embedding or as its photo, is a duplicate; a person by id works.
    assert_eq!(db.add_face("Tony_Blair", added).unwrap(), EnrollStatus::Duplicate { face: *id });
    assert_eq!(db.enroll("Tony_Blair", &[photo("Tony_Blair", 1)]).unwrap()[0].status, EnrollStatus::Duplicate { face: *id });
    let colin = db.people().unwrap().into_iter().find(|p| p.name == "Colin_Powell").unwrap();
    let colin_4 = db.embed(photo("Colin_Powell", 4)).unwrap().remove(0);
    assert!(matches!(db.add_face(colin.id, &colin_4).unwrap(), EnrollStatus::Enrolled { .. }));
    assert_eq!(db.faces("Colin_Powell").unwrap().len(), 4);
    assert!(matches!(db.add_face(PersonId(u64::MAX), &stranger), Err(FdbError::UnknownPerson(_))));
    // Vectors of another model or recipe are refused, not compared.
    let mut foreign = stranger.clone();
    foreign.vectors_id = "another-model+flip".into();
    let ours = db.models().vectors_id().unwrap();
    for refused in [db.add_face("x", &foreign).unwrap_err(), db.search_face(&foreign, 1).unwrap_err()] {
        match refused {
            FdbError::ModelMismatch { expected, found } => assert_eq!((expected, found.as_str()), (ours.clone(), "another-model+flip")),
            other => panic!("{other}"),
        }
    }
    assert_eq!(db.people().unwrap().len(), 3);
}

#[test]
fn verify_embeddings_agrees_with_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let db = open(tmp.path());
    let pairs = [
        (photo("Tony_Blair", 1), photo("Tony_Blair", 2)),
        (photo("Serena_Williams", 1), photo("Serena_Williams", 3)),
        (photo("Colin_Powell", 2), photo("Colin_Powell", 4)),
        (photo("Tony_Blair", 1), photo("Colin_Powell", 1)),
        (photo("Serena_Williams", 2), photo("Tony_Blair", 3)),
        (photo("Colin_Powell", 3), fixtures().join("strangers/Aaron_Eckhart_0001.jpg")),
    ];
    let mut same = 0;
    for (a, b) in &pairs {
        let by_photo = db.verify(a, b).unwrap();
        let (ea, eb) = (db.embed(a).unwrap().remove(0), db.embed(b).unwrap().remove(0));
        let by_vector = db.verify_embeddings(&ea, &eb).unwrap();
        let what = format!("{} / {}", a.display(), b.display());
        assert_eq!(by_vector.same, by_photo.same, "{what}");
        assert!((by_vector.distance - by_photo.distance).abs() < 1e-5, "{what}: {by_vector:?} {by_photo:?}");
        assert_eq!((by_vector.threshold, by_vector.calibration), (by_photo.threshold, by_photo.calibration), "{what}");
        assert_eq!((&by_vector.sources, by_vector.qualities, by_vector.low_quality), (&by_photo.sources, by_photo.qualities, by_photo.low_quality));
        same += usize::from(by_photo.same);
    }
    assert_eq!(same, 3, "the first three pairs are one person each, the last three are not");
}

#[test]
fn a_group_photo_embeds_every_face_primary_first() {
    let tmp = tempfile::tempdir().unwrap();
    let db = open(tmp.path());
    let group = fixtures().join("group_simon_cowell_0001.jpg");
    let faces = db.embed(&group).unwrap();
    assert!(faces.len() > 1, "{faces:?}");
    assert!(faces[0].primary && faces[1..].iter().all(|f| !f.primary));
    // The primary face is the one search and enrolment take.
    db.enroll("Simon", &[&group]).unwrap();
    assert_eq!(db.search(&group, 1).unwrap().bbox, faces[0].bbox);
    assert_eq!(db.add_face("Simon", &faces[0]).unwrap(), EnrollStatus::Duplicate { face: db.faces("Simon").unwrap()[0].id });
    // The others are faces of their own: each can be stored.
    assert!(matches!(db.add_face("Someone", &faces[1]).unwrap(), EnrollStatus::Enrolled { .. }));
    assert_ne!(faces[0].source_sha256, faces[1].source_sha256);
    // A photo without a face gives no faces, not an error.
    assert!(db.embed(fixtures().join("no_face_shapes.png")).unwrap().is_empty());
}

/// `embed_aligned`: a crop the caller aligned gets the vector `embed` gives the photo it came
/// from (the same crop, the same recipe), is stored by `add_face` once (its pixels are its
/// identity), and a crop of another size is refused by name.
#[test]
fn aligned_crops_embed_like_the_photos_they_were_cut_from() {
    let tmp = tempfile::tempdir().unwrap();
    let db = open(tmp.path());
    let from_photo = db.embed(photo("Tony_Blair", 1)).unwrap().remove(0);
    let aligned = db.embed_aligned(&[("tony-crop.png".into(), from_photo.crop.clone())]).unwrap().remove(0);
    assert!(close(&aligned.vector, &from_photo.vector) < 1e-5, "{}", close(&aligned.vector, &from_photo.vector));
    assert!(aligned.whole_image() && aligned.primary && aligned.source_name == "tony-crop.png");
    assert!(matches!(db.add_face("Tony_Blair", &aligned).unwrap(), EnrollStatus::Enrolled { .. }));
    assert!(matches!(db.add_face("Tony_Blair", &aligned).unwrap(), EnrollStatus::Duplicate { .. }));
    let answer = db.search_face(&db.embed(photo("Tony_Blair", 2)).unwrap()[0], 1).unwrap();
    assert_eq!(answer.matches[0].person, "Tony_Blair");
    let small = image::RgbImage::new(100, 120);
    let err = db.embed_aligned(&[("small.png".into(), small)]).unwrap_err().to_string();
    assert!(err.contains("small.png") && err.contains("100x120"), "{err}");
}
