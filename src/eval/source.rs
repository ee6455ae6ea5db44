//! Where embeddings come from: an abstract batch embedder, so the evaluator
//! needs no model. The facade wires it to the real detector + embedder.

use std::collections::HashMap;
use std::path::PathBuf;

use super::cache::EmbeddingCache;
use super::distance::{combine_flip, FlipMode};
use super::pairs::ImagePair;
use super::EvalError;

/// What produced an embedding; part of the cache key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct SourceId {
    /// Model identity, e.g. "facenet-20180408-102900".
    pub model: String,
    /// Face alignment, e.g. "crop" or "warp".
    pub align: String,
}

/// A batch embedder: one L2-normalised embedding (or a reason) per image path.
pub trait EmbedSource {
    fn id(&self) -> SourceId;
    /// Embeds the faces of `paths`; with `mirrored`, of the horizontally mirrored crops.
    fn embed(&mut self, paths: &[PathBuf], mirrored: bool) -> Vec<Result<Vec<f32>, String>>;
}

/// An [`EmbedSource`] from a closure `(paths, mirrored) -> results`.
pub struct FnSource<F> {
    id: SourceId,
    embed: F,
}

impl<F: FnMut(&[PathBuf], bool) -> Vec<Result<Vec<f32>, String>>> FnSource<F> {
    pub fn new(id: SourceId, embed: F) -> Self {
        FnSource { id, embed }
    }
}

impl<F: FnMut(&[PathBuf], bool) -> Vec<Result<Vec<f32>, String>>> EmbedSource for FnSource<F> {
    fn id(&self) -> SourceId {
        self.id.clone()
    }
    fn embed(&mut self, paths: &[PathBuf], mirrored: bool) -> Vec<Result<Vec<f32>, String>> {
        (self.embed)(paths, mirrored)
    }
}

/// Embeddings of both sides of every pair, in pair order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PairEmbeddings {
    pub left: Vec<Vec<f32>>,
    pub right: Vec<Vec<f32>>,
    pub same: Vec<bool>,
}

/// How [`embed_pairs`] runs.
pub struct EmbedRun<'a> {
    pub flip: FlipMode,
    pub batch_size: usize,
    pub cache: Option<&'a mut EmbeddingCache>,
    /// Called with (images done, images to embed) after each batch.
    pub progress: &'a mut dyn FnMut(usize, usize),
}

/// Embeds each distinct image once (through the cache when given), combines
/// mirrored embeddings per `flip`, and fails listing every image that failed.
pub fn embed_pairs(pairs: &[ImagePair], source: &mut dyn EmbedSource, run: EmbedRun) -> Result<PairEmbeddings, EvalError> {
    let mut unique: Vec<PathBuf> = pairs.iter().flat_map(|p| [p.left.clone(), p.right.clone()]).collect();
    unique.sort();
    unique.dedup();
    let EmbedRun { flip, batch_size, mut cache, progress } = run;
    let views: &[bool] = if flip.needs_mirror() { &[false, true] } else { &[false] };
    let mut per_view = Vec::new();
    for &mirrored in views {
        per_view.push(embed_images(&unique, mirrored, source, batch_size, cache.as_deref_mut(), progress)?);
    }
    if let Some(cache) = cache {
        cache.save()?;
    }
    let combined: HashMap<&PathBuf, Vec<f32>> = unique
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let original = &per_view[0][i];
            let e = per_view.get(1).map_or_else(|| original.clone(), |m| combine_flip(original, &m[i], flip));
            (p, e)
        })
        .collect();
    Ok(PairEmbeddings {
        left: pairs.iter().map(|p| combined[&p.left].clone()).collect(),
        right: pairs.iter().map(|p| combined[&p.right].clone()).collect(),
        same: pairs.iter().map(|p| p.same).collect(),
    })
}

fn embed_images(
    paths: &[PathBuf],
    mirrored: bool,
    source: &mut dyn EmbedSource,
    batch_size: usize,
    mut cache: Option<&mut EmbeddingCache>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<Vec<f32>>, EvalError> {
    let id = source.id();
    let mut out: Vec<Option<Vec<f32>>> = paths.iter().map(|p| cache.as_deref().and_then(|c| c.get(&id, p, mirrored))).collect();
    let todo: Vec<usize> = (0..paths.len()).filter(|i| out[*i].is_none()).collect();
    let mut failures = Vec::new();
    for (done, chunk) in todo.chunks(batch_size.max(1)).enumerate() {
        let batch: Vec<PathBuf> = chunk.iter().map(|i| paths[*i].clone()).collect();
        let results = source.embed(&batch, mirrored);
        if results.len() != batch.len() {
            return Err(EvalError::Invalid(format!("embed source returned {} results for {} images", results.len(), batch.len())));
        }
        for (i, result) in chunk.iter().zip(results) {
            match result {
                Ok(e) => {
                    if let Some(c) = cache.as_deref_mut() {
                        c.insert(&id, &paths[*i], mirrored, e.clone());
                    }
                    out[*i] = Some(e);
                }
                Err(why) => failures.push((paths[*i].clone(), why)),
            }
        }
        progress((done * batch_size.max(1) + chunk.len()).min(todo.len()), todo.len());
    }
    if !failures.is_empty() {
        // Keep what succeeded so a rerun after fixing the failures is quick.
        if let Some(c) = cache {
            c.save()?;
        }
        return Err(EvalError::Embedding { failures });
    }
    Ok(out.into_iter().map(|e| e.expect("every image is cached or embedded")).collect())
}
