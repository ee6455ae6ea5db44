//! A doorbell camera that greets the people it knows, using fdb as a library.
//!
//! ```sh
//! cargo run --release --example doorbell -- KNOWN_DIR SNAPSHOT...
//! ```
//! KNOWN_DIR holds one folder of photos per household member; each SNAPSHOT is a camera frame.
//! The database lives in a temporary folder, so running the example changes nothing else.

use std::path::{Path, PathBuf};

use fdb::{EnrollOptions, EnrollStatus, FaceDb};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let known = args.next().ok_or("usage: doorbell KNOWN_DIR SNAPSHOT...")?;
    let snapshots: Vec<PathBuf> = args.collect();

    let scratch = std::env::temp_dir().join(format!("fdb-doorbell-{}", std::process::id()));
    let db = FaceDb::open(&scratch)?;

    // Enrol the household: (name, photo) pairs, one folder per person.
    let mut household = Vec::new();
    for person in std::fs::read_dir(&known)? {
        let person = person?.path();
        if !person.is_dir() {
            continue;
        }
        let name = person.file_name().unwrap_or_default().to_string_lossy().into_owned();
        for photo in std::fs::read_dir(&person)? {
            household.push((name.clone(), photo?.path()));
        }
    }
    let reports = db.enroll_many(&household, &EnrollOptions::default(), |_| {})?;
    let enrolled = reports.iter().filter(|r| matches!(r.status, EnrollStatus::Enrolled { .. })).count();
    println!("knows {} people from {enrolled} photos", db.people()?.len());

    // Greet everybody at the door, frame by frame.
    for frame in &snapshots {
        greet(&db, frame);
    }
    drop(db);
    std::fs::remove_dir_all(&scratch)?;
    Ok(())
}

fn greet(db: &FaceDb, frame: &Path) {
    match db.identify_all(frame, 1) {
        Ok(faces) => {
            for face in faces {
                match face.identity {
                    Some(name) => println!("{}: welcome home, {name}", frame.display()),
                    None => println!("{}: a visitor (nearest: {:?})", frame.display(), face.matches.first().map(|m| &m.person)),
                }
            }
        }
        // A frame without a face, or a broken file, is not the end of the doorbell.
        Err(e) => println!("{}: {e}", frame.display()),
    }
}
