//! Mutated valid files fed to the parsers fdb owns: the photo decoder (mozjpeg, PNG, PNM), the
//! models manifest, the legacy torch reader, a database's vector file with its store, and the
//! portable archive of `fdb export` (the
//! index snapshot and its graph codec are fuzzed in `storage/src/snapshot.rs`). Each case must
//! end in a value or an error, never a panic, and within 5 s. Seeded, so a failure names a case
//! that can be replayed. `FDB_FUZZ_CASES=N` runs N cases a parser instead of CI's default.

mod common;

use std::path::Path;

use common::{copy_dir, fixtures};
use mutations::{cases, fuzz};

#[path = "../storage/src/test_mutations.rs"]
mod mutations;

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn mutated_photos_decode_or_fail_cleanly() {
    let f = fixtures();
    let inputs: Vec<Vec<u8>> = [
        f.join("people/Tony_Blair/Tony_Blair_0001.jpg"),
        f.join("exif6_bob_huggins_0001.jpg"),
        f.join("gray16_48.png"),
        f.join("gray_aitor_gonzalez_0001.pgm"),
        f.join("no_face_shapes.png"),
    ]
    .iter()
    .map(|p| read(p))
    .collect();
    for input in &inputs {
        assert!(fdb_models::imageio::decode_image(input, "valid").is_ok(), "the unmutated photos decode");
    }
    fuzz("photo decoder", &inputs, cases(3000), 17, |bytes| fdb_models::imageio::decode_image(bytes, "mutated").is_ok());
}

#[test]
fn a_mutated_models_manifest_reads_or_fails_cleanly() {
    let installed = fdb_models::weights::ensure_installed(&fdb_models::weights::default_models_dir());
    let Ok(installed) = installed else {
        return common::missing("the installed models (fdb models install)").unwrap_or(());
    };
    let manifest = read(&installed.dir.join(fdb_models::weights::Manifest::FILE));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("manifest.json");
    std::fs::write(&path, &manifest).unwrap();
    assert!(fdb_models::weights::Manifest::read(&path).is_ok(), "the unmutated manifest reads");
    fuzz("models manifest", &[manifest], cases(2000), 18, |bytes| {
        std::fs::write(&path, bytes).unwrap();
        fdb_models::weights::Manifest::read(&path).is_ok()
    });
}

#[test]
fn mutated_torch_weights_read_or_fail_cleanly() {
    let dir = fdb_models::weights::default_models_dir();
    let Some(wheel) = fdb_models::weights::kept_mtcnn_wheel(&dir)
        .or_else(|| fdb_models::weights::keep_mtcnn_wheel(&dir, &fdb_models::weights::WheelOrigin::Pip).ok())
    else {
        return common::missing("the facenet-pytorch wheel (fdb models install keeps it)").unwrap_or(());
    };
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&wheel).unwrap()).unwrap();
    let inputs: Vec<Vec<u8>> = ["pnet", "rnet", "onet"]
        .iter()
        .map(|net| {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut archive.by_name(&format!("facenet_pytorch/data/{net}.pt")).unwrap(), &mut bytes).unwrap();
            assert!(fdb_models::weights::torch_legacy::read_state_dict(&bytes).is_ok(), "the unmutated {net}.pt reads");
            bytes
        })
        .collect();
    fuzz("legacy torch reader", &inputs, cases(1500), 22, |bytes| fdb_models::weights::torch_legacy::read_state_dict(bytes).is_ok());
}

#[test]
fn a_mutated_vector_file_opens_with_its_damage_reported_or_fails_cleanly() {
    let fixture = fixtures().join("db_without_quality");
    let vectors_dir = fixture.join("vectors");
    let file = std::fs::read_dir(&vectors_dir).unwrap().next().unwrap().unwrap().file_name();
    let valid = read(&vectors_dir.join(&file));
    let scratch = tempfile::tempdir().unwrap();
    let mut n = 0;
    let run = fuzz("vector file", &[valid], cases(150), 19, |bytes| {
        n += 1;
        let db = scratch.path().join(format!("db{n}"));
        copy_dir(&fixture, &db);
        std::fs::write(db.join("vectors").join(&file), bytes).unwrap();
        let mut healthy = false;
        if let Ok(store) = fdb_storage::Store::open(&db, fdb_storage::StoreOptions::default()) {
            // Whatever open made of it, reading every face's vector and searching must not panic.
            let damage = store.damage();
            let model = store.active_model().ok().flatten().unwrap_or_default();
            for person in store.people().unwrap_or_default() {
                for face in store.faces_of(person.id).unwrap_or_default() {
                    let _ = store.embedding(face.id, &model);
                }
            }
            let _ = store.search(&[0.0442; 512], 5, None);
            healthy = !damage.needs_repair();
        }
        std::fs::remove_dir_all(&db).unwrap();
        healthy
    });
    assert!(run.accepted < run.cases, "damage to the vector file is noticed");
}

#[test]
fn a_mutated_archive_is_refused_or_read_cleanly() {
    let scratch = tempfile::tempdir().unwrap();
    let db = scratch.path().join("db");
    copy_dir(&fixtures().join("db_without_quality"), &db);
    let archive = scratch.path().join("faces.fdbarchive");
    {
        let store = fdb_storage::Store::open(&db, fdb_storage::StoreOptions::default()).unwrap();
        store.export_archive(&archive).unwrap();
    }
    let valid = read(&archive);
    assert!(fdb_storage::validate_archive(&archive).is_ok(), "the unmutated archive reads");
    let mutated_path = scratch.path().join("mutated.fdbarchive");
    let run = fuzz("archive", &[valid], cases(1000), 23, |bytes| {
        std::fs::write(&mutated_path, bytes).unwrap();
        fdb_storage::validate_archive(&mutated_path).is_ok()
    });
    // Every record has a crc and the trailer counts them: a mutation that still reads can only
    // be one that changed nothing the archive holds (none of the ones drawn here).
    assert_eq!(run.accepted, 0, "a damaged archive was read as whole");
}
