//! One `FaceDb` shared by threads: 8 writers enrol overlapping photos of the same new people
//! (some whole batches, some one photo at a time, in different orders) while 8 readers search.
//! No call fails, every photo is stored exactly once, each person exists once, and every
//! report of a photo names the one face it became.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use common::fixtures;
use fdb::{EnrollOptions, EnrollReport, EnrollStatus, FaceDb, OpenOptions};

const PEOPLE: [&str; 3] = ["Colin_Powell", "Serena_Williams", "Tony_Blair"];
const WRITERS: usize = 8;
const READERS: usize = 8;

#[test]
fn writers_and_readers_share_one_database() {
    let tmp = tempfile::tempdir().unwrap();
    let options = OpenOptions::new().device("cpu").install_models(true);
    let db = FaceDb::open_with(tmp.path().join("db"), options).unwrap();
    db.engine().unwrap(); // loaded once, before the clock starts

    let photos: Vec<(String, PathBuf)> = PEOPLE
        .iter()
        .flat_map(|p| (1..=4).map(move |i| (p.to_string(), fixtures().join("people").join(p).join(format!("{p}_{i:04}.jpg")))))
        .collect();
    let probes = [fixtures().join("people/Tony_Blair/Tony_Blair_0004.jpg"), fixtures().join("strangers/AJ_Cook_0001.jpg")];
    let writing = AtomicBool::new(true);

    let (reports, searches) = std::thread::scope(|s| {
        let readers: Vec<_> = (0..READERS)
            .map(|r| {
                let (db, probes, writing) = (&db, &probes, &writing);
                s.spawn(move || {
                    let mut done = 0;
                    // At least two searches each, and on until the writers are done.
                    while done < 2 || writing.load(Ordering::Relaxed) {
                        let answer = db.search(&probes[(r + done) % 2], 3).expect("a search during enrolment");
                        assert!(answer.matches.len() <= 3);
                        done += 1;
                    }
                    done
                })
            })
            .collect();
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (db, photos) = (&db, &photos);
                s.spawn(move || {
                    // Each writer starts somewhere else in the photos; half enrol them as one
                    // batch, half one at a time.
                    let mut mine = photos.clone();
                    mine.rotate_left(w * 5 % photos.len());
                    if w % 2 == 0 {
                        db.enroll_many(&mine, &EnrollOptions::default(), &fdb::Progress::new()).expect("a batch enrolment")
                    } else {
                        mine.iter()
                            .flat_map(|(name, path)| db.enroll(name, std::slice::from_ref(path)).expect("an enrolment"))
                            .collect::<Vec<EnrollReport>>()
                    }
                })
            })
            .collect();
        // The readers stop once the writers are done, also when a writer failed: the test then
        // fails with the writer's panic instead of waiting for ever.
        let written: Vec<_> = writers.into_iter().map(|w| w.join()).collect();
        writing.store(false, Ordering::Relaxed);
        let searches: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
        let reports: Vec<EnrollReport> = written.into_iter().flat_map(|w| w.unwrap()).collect();
        (reports, searches)
    });

    assert_eq!(reports.len(), WRITERS * photos.len());
    assert!(searches >= 2 * READERS);
    // Each photo became one face, once: one Enrolled report, the rest duplicates of that face.
    let mut face_of: HashMap<&PathBuf, fdb::FaceId> = HashMap::new();
    let mut enrolled = 0;
    for report in &reports {
        let face = match report.status {
            EnrollStatus::Enrolled { face, .. } => {
                enrolled += 1;
                face
            }
            EnrollStatus::Duplicate { face } => face,
            ref other => panic!("{}: {other:?}", report.path.display()),
        };
        assert_eq!(*face_of.entry(&report.path).or_insert(face), face, "{}: two faces", report.path.display());
        let (person, _) = photos.iter().find(|(_, p)| *p == report.path).unwrap();
        assert_eq!(&report.person, person);
    }
    assert_eq!(enrolled, photos.len(), "each photo is enrolled once");

    let people = db.people().unwrap();
    let mut names: Vec<&str> = people.iter().map(|p| p.name.as_str()).collect();
    names.sort();
    assert_eq!(names, PEOPLE);
    for person in PEOPLE {
        let faces = db.faces(person).unwrap();
        assert_eq!(faces.len(), 4, "{person}");
        for face in faces {
            let path = PathBuf::from(&face.source_name);
            assert_eq!(face_of.get(&path), Some(&face.id), "{person}");
        }
    }
    let stats = db.info().unwrap();
    assert_eq!((stats.people, stats.faces), (3, 12));
    assert_eq!(db.store().searchable_faces(), 12);
    assert!(db.check().unwrap().healthy());
    assert_eq!(db.search(&probes[0], 1).unwrap().identity.as_deref(), Some("Tony_Blair"));
}
