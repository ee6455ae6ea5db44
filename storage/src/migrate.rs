//! Bringing a database written by an older fdb to the current schema, at open.
//!
//! Schema 1 kept each model's vectors in a sled tree `emb/<model>`, and each tombstone's vector
//! as its value in the tombstones tree; schema 2 keeps them in vector files (`vector_file`).
//! The migration writes every file (synced), then flips the version, then drops the old trees:
//! a crash before the flip leaves schema 1 whole, to be migrated again at the next open; one
//! after it leaves trees that the next open drops.
//!
//! Schema 3 appended an optional quality score to face records. Nothing is rewritten: records
//! without it are read as schema-2 records (`faces::decode_face`); the version is raised so that
//! an older fdb refuses the database instead of calling its newer records corrupt.

use crate::codec;
use crate::error::Result;
use crate::store::{Trees, META_ACTIVE_MODEL, META_SCHEMA, SCHEMA_VERSION};
use crate::vector_file::{self, VectorFiles};

const EMB_TREE_PREFIX: &str = "emb/";
/// Vectors per append while copying.
const BATCH: usize = 5_000;

pub(crate) fn to_current(db: &sled::Db, t: &Trees, vectors: &VectorFiles, found: u32) -> Result<()> {
    if found < 2 {
        let active = t.meta.get(META_ACTIVE_MODEL)?.map(|m| String::from_utf8_lossy(&m).into_owned());
        for (name, model) in emb_trees(db) {
            let tree = db.open_tree(&name)?;
            // A deleted face's vector was kept for the index graph, under its tombstone.
            let tombstones = if Some(&model) == active.as_ref() { Some(t.tombstones.iter()) } else { None };
            let mut rows: Vec<(u64, Vec<f32>)> = Vec::new();
            let mut made = false;
            for kv in tree.iter().chain(tombstones.into_iter().flatten()) {
                let (k, v) = kv?;
                let face = codec::key_id(&k, "embeddings")?;
                rows.push((face, codec::bytes_to_f32s(&v, &format!("embedding of face {face} by {model:?}"))?));
                if rows.len() == BATCH {
                    copy(vectors, &model, &mut rows, &mut made)?;
                }
            }
            copy(vectors, &model, &mut rows, &mut made)?;
        }
        t.meta.insert(META_SCHEMA, &SCHEMA_VERSION.to_be_bytes())?;
        db.flush()?;
        for k in t.tombstones.iter().keys() {
            t.tombstones.insert(k?, &[])?; // the vectors now live in the files
        }
    }
    if found < SCHEMA_VERSION {
        t.meta.insert(META_SCHEMA, &SCHEMA_VERSION.to_be_bytes())?;
    }
    for (name, _) in emb_trees(db) {
        db.drop_tree(name)?;
    }
    db.flush()?;
    Ok(())
}

/// Appends `rows` to the model's file, made afresh (dropping a half-written copy) at the first call.
fn copy(vectors: &VectorFiles, model: &str, rows: &mut Vec<(u64, Vec<f32>)>, made: &mut bool) -> Result<()> {
    let Some(dim) = rows.first().map(|(_, v)| v.len()) else {
        return Ok(());
    };
    if !*made {
        vectors.recreate(model, dim)?;
        *made = true;
    }
    vectors.append(model, dim, &vector_file::borrowed(rows))?;
    rows.clear();
    Ok(())
}

/// (tree name, model) of every schema-1 embeddings tree.
fn emb_trees(db: &sled::Db) -> Vec<(sled::IVec, String)> {
    db.tree_names()
        .into_iter()
        .filter_map(|n| {
            let model = std::str::from_utf8(&n).ok()?.strip_prefix(EMB_TREE_PREFIX)?.to_string();
            Some((n, model))
        })
        .collect()
}
