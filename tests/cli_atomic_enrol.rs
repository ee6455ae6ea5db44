//! A person exists only with their first face: `kill -9` during `fdb enroll` used to leave
//! people with no faces (32 in 5 kills), counted in the people total. And open removes the
//! empty people that older versions left behind.

mod common;

use std::time::Duration;

use common::*;

fn people_without_faces(db: &std::path::Path) -> (usize, Vec<String>) {
    let (code, list) = fdb_json(db, &["list"]);
    assert_eq!(code, Some(0), "{list}");
    let rows = list.as_array().unwrap();
    let empty = rows.iter().filter(|p| p["faces"] == 0).map(|p| p["name"].as_str().unwrap().to_string()).collect();
    (rows.len(), empty)
}

/// Bytes in the database's vector files (they grow when a chunk of faces is about to commit).
fn vector_bytes(db: &std::path::Path) -> u64 {
    std::fs::read_dir(db.join("vectors"))
        .map(|d| d.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

#[test]
fn kill_9_during_an_enrolment_leaves_no_person_without_a_face() {
    let Some(images) = lfw_images() else { return };
    // One photo each of 300 different people: every chunk of the enrolment creates people.
    let photos: Vec<String> = lfw_people(&images)
        .into_iter()
        .take(300)
        .map(|(name, _)| lfw_image(&images, &name, 1).display().to_string())
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let args: Vec<&str> = std::iter::once("enroll").chain(photos.iter().map(String::as_str)).collect();
    let mut kills = 0;
    for round in 0..5 {
        let mut child = fdb_background(&db, &args);
        // The kill lands as a chunk's vectors reach the disk, just before its faces commit: the
        // moment an fdb that created people on their own left them without faces (31-32 people
        // a kill with the previous fdb).
        let before = vector_bytes(&db);
        while child.try_wait().unwrap().is_none() && vector_bytes(&db) == before {
            std::thread::sleep(Duration::from_millis(1));
        }
        if child.try_wait().unwrap().is_some() {
            break; // everybody is enrolled
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        let (people, empty) = people_without_faces(&db);
        assert!(empty.is_empty(), "kill {round} left {} of {people} people without faces: {empty:?}", empty.len());
    }
    assert!(kills >= 3, "only {kills} kills landed");
}

#[test]
fn open_removes_people_an_older_version_left_without_faces() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let tony = fixtures().join("people/Tony_Blair/Tony_Blair_0001.jpg").display().to_string();
    assert_eq!(fdb_json(&db, &["enroll", &tony]).0, Some(0));
    {
        // What an older fdb did before it stored the face, then was killed.
        let store = fdb_storage::Store::open(&db, fdb_storage::StoreOptions::default()).unwrap();
        store.add_person("Ghost", Default::default()).unwrap();
        assert_eq!(store.person_count(), 2);
    }
    let (_, info) = fdb_json(&db, &["info"]);
    assert_eq!(info["stats"]["people"].as_u64(), Some(1), "{info}");
    let (people, empty) = people_without_faces(&db);
    assert_eq!((people, empty.len()), (1, 0));
}
