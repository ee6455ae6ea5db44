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
    /// Face detection and alignment, e.g. "crop/mtcnn-ipazc" or "warp/mtcnn-ipazc".
    pub align: String,
}

/// A batch embedder: one L2-normalised embedding (or a reason) per image path.
pub trait EmbedSource {
    /// Names the model and alignment behind the embeddings (the cache's key).
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
    /// A source named `id` that embeds with `embed`.
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
    /// Embeddings of the pairs' first images.
    pub left: Vec<Vec<f32>>,
    /// Embeddings of the pairs' second images.
    pub right: Vec<Vec<f32>>,
    /// Per pair, true for a same-person pair.
    pub same: Vec<bool>,
}

/// How [`embed_pairs`] / [`embed_paths`] run.
pub struct EmbedRun<'a> {
    /// Whether, and how, the mirrored crop's embedding is folded in.
    pub flip: FlipMode,
    /// Images per call of the source.
    pub batch_size: usize,
    /// Where embeddings are looked up first and stored after.
    pub cache: Option<&'a mut EmbeddingCache>,
    /// Called with (images embedded so far, images to embed) after each batch;
    /// cached images are not counted.
    pub progress: Box<dyn FnMut(usize, usize) + 'a>,
}

impl<'a> EmbedRun<'a> {
    /// Batches of 64, no cache, no progress report.
    pub fn new(flip: FlipMode) -> Self {
        EmbedRun {
            flip,
            batch_size: 64,
            cache: None,
            progress: Box::new(|_, _| {}),
        }
    }

    /// Looks embeddings up in `cache` first and stores new ones there.
    pub fn with_cache(self, cache: &'a mut EmbeddingCache) -> Self {
        EmbedRun {
            cache: Some(cache),
            ..self
        }
    }

    /// Images per call of the source.
    pub fn with_batch_size(self, batch_size: usize) -> Self {
        EmbedRun { batch_size, ..self }
    }

    /// Calls `progress` with (images embedded so far, images to embed) after each batch.
    pub fn with_progress(self, progress: impl FnMut(usize, usize) + 'a) -> Self {
        EmbedRun {
            progress: Box::new(progress),
            ..self
        }
    }
}

/// Embeds each distinct image once (through the cache when given), combines
/// mirrored embeddings per `flip`, and fails listing every image that failed.
pub fn embed_pairs(
    pairs: &[ImagePair],
    source: &mut dyn EmbedSource,
    run: EmbedRun,
) -> Result<PairEmbeddings, EvalError> {
    let mut unique: Vec<PathBuf> = pairs
        .iter()
        .flat_map(|p| [p.left.clone(), p.right.clone()])
        .collect();
    unique.sort();
    unique.dedup();
    let embeddings = embed_paths(&unique, source, run)?;
    let by_path: HashMap<&PathBuf, &Vec<f32>> = unique.iter().zip(&embeddings).collect();
    Ok(PairEmbeddings {
        left: pairs.iter().map(|p| by_path[&p.left].clone()).collect(),
        right: pairs.iter().map(|p| by_path[&p.right].clone()).collect(),
        same: pairs.iter().map(|p| p.same).collect(),
    })
}

/// One embedding per path (flip-combined), in order; cached ones are reused and
/// new ones stored. Fails listing every image that could not be embedded.
pub fn embed_paths(
    paths: &[PathBuf],
    source: &mut dyn EmbedSource,
    run: EmbedRun,
) -> Result<Vec<Vec<f32>>, EvalError> {
    let EmbedRun {
        flip,
        batch_size,
        mut cache,
        mut progress,
    } = run;
    let id = source.id();
    let views: &[bool] = if flip.needs_mirror() {
        &[false, true]
    } else {
        &[false]
    };
    // out[view][i]; None until embedded.
    let mut out: Vec<Vec<Option<Vec<f32>>>> = views
        .iter()
        .map(|&m| {
            paths
                .iter()
                .map(|p| cache.as_deref().and_then(|c| c.get(&id, p, m)))
                .collect()
        })
        .collect();
    let todo: Vec<(usize, usize)> = (0..views.len())
        .flat_map(|v| (0..paths.len()).map(move |i| (v, i)))
        .filter(|&(v, i)| out[v][i].is_none())
        .collect();
    let mut failures = Vec::new();
    let mut done = 0;
    for (v, &mirrored) in views.iter().enumerate() {
        let jobs: Vec<usize> = todo.iter().filter(|j| j.0 == v).map(|j| j.1).collect();
        for chunk in jobs.chunks(batch_size.max(1)) {
            let batch: Vec<PathBuf> = chunk.iter().map(|i| paths[*i].clone()).collect();
            let results = source.embed(&batch, mirrored);
            if results.len() != batch.len() {
                return Err(EvalError::Invalid(format!(
                    "embed source returned {} results for {} images",
                    results.len(),
                    batch.len()
                )));
            }
            for (&i, result) in chunk.iter().zip(results) {
                match result {
                    Ok(e) => {
                        if let Some(c) = cache.as_deref_mut() {
                            c.insert(&id, &paths[i], mirrored, e.clone());
                        }
                        out[v][i] = Some(e);
                    }
                    Err(why) => failures.push((paths[i].clone(), why)),
                }
            }
            done += chunk.len();
            progress(done, todo.len());
        }
    }
    // Saved even on failure, so a rerun after fixing the bad images is quick.
    if let Some(c) = cache {
        c.save()?;
    }
    if !failures.is_empty() {
        return Err(EvalError::Embedding { failures });
    }
    let mut views_out = out
        .into_iter()
        .map(|view| view.into_iter().map(|e| e.expect("embedded or cached")));
    let originals = views_out.next().expect("at least one view");
    Ok(match views_out.next() {
        Some(mirrored) => originals
            .zip(mirrored)
            .map(|(o, m)| combine_flip(&o, &m, flip))
            .collect(),
        None => originals.collect(),
    })
}
