//! `fdb eval … --report DIR`: the evaluation as pictures a person tunes by. The ROC on a log
//! FAR axis, the distance histograms with the thresholds, the metrics, and the worst false
//! accepts and false rejects as faces (each photo with the detector's box, and the aligned
//! crops the embedder saw), on one HTML page with its PNGs beside it.

use std::path::{Path, PathBuf};

use image::RgbImage;

use crate::engine::{Alignment, Engine, FaceChoice, Photo};
use crate::error::{FdbError, Result};
use crate::eval::mistakes::{self, Mistake};
use crate::eval::page::{self, Block, PairItem};
use crate::eval::{EvalReport, IdentifyReport, ImagePair};
use crate::eval::engine_source::central_region;
use crate::plot::faces::{pair_strip, FaceView};
use crate::plot::histogram::{self, Marker};
use crate::plot::roc::{self, RocSeries};

/// One evaluated configuration (a model, or a metric) and its name in the legends.
pub struct NamedReport<'a> {
    /// Its name in legends and tables.
    pub name: String,
    /// The evaluation.
    pub report: &'a EvalReport,
}

/// The database's own thresholds, drawn on the histogram when there is a database.
#[derive(Debug, Clone, Copy)]
pub struct ProductThresholds {
    /// The 1:1 threshold.
    pub verify: f32,
    /// The 1:N threshold and the gallery size (faces) it is for.
    pub search: Option<(f32, usize)>,
}

/// The log-scale ROC of every run, each with its accuracy-optimal threshold marked.
pub fn write_roc(path: &Path, title: &str, runs: &[NamedReport<'_>]) -> Result<()> {
    let series: Vec<RocSeries> = runs
        .iter()
        .map(|r| RocSeries { name: r.name.clone(), distances: r.report.split_distances(), threshold: Some(r.report.threshold) })
        .collect();
    roc::write_png(path, title, &series).map_err(|e| FdbError::Invalid(format!("plot {e}")))
}

/// Writes `DIR/index.html` with `roc.png`, `distances.png` and `mistakes/*.png`; the
/// mistakes are those of the first run, at its accuracy-optimal threshold.
pub fn write_report(
    dir: &Path,
    engine: &Engine,
    alignment: Alignment,
    pairs: &[ImagePair],
    runs: &[NamedReport<'_>],
    product: Option<ProductThresholds>,
    worst: usize,
) -> Result<PathBuf> {
    let first = runs.first().ok_or_else(|| FdbError::Invalid("a report needs an evaluation".into()))?;
    let io = |path: &Path, e: std::io::Error| FdbError::Io { path: path.to_path_buf(), source: e };
    std::fs::create_dir_all(dir.join("mistakes")).map_err(|e| io(dir, e))?;
    let title = format!("fdb evaluation: {} pairs", first.report.pairs);
    write_roc(&dir.join("roc.png"), &title, runs)?;

    let split = first.report.split_distances();
    let (eer_threshold, eer) = split.equal_error();
    let mut markers = vec![
        Marker { at: first.report.threshold, name: "accuracy-optimal".into(), colour: 3 },
        Marker { at: eer_threshold, name: format!("EER {eer:.4} at"), colour: 2 },
    ];
    if let Some(p) = product {
        markers.push(Marker { at: f64::from(p.verify), name: "1:1 (verify)".into(), colour: 4 });
        if let Some((t, faces)) = p.search {
            markers.push(Marker { at: f64::from(t), name: format!("1:N ({faces} faces)"), colour: 5 });
        }
    }
    histogram::write_png(&dir.join("distances.png"), &format!("{}: distances of the pairs", first.name), &split, &markers)
        .map_err(|e| FdbError::Invalid(format!("plot {e}")))?;

    let mut blocks = vec![Block::Heading("Metrics".into()), metrics_table(runs)];
    blocks.push(Block::Image { file: "roc.png".into(), caption: "ROC: true-accept rate against the false-accept rate on a log scale; dots at FAR 1e-4, 1e-3 and 1e-2 where the impostor pairs suffice, × at the accuracy-optimal threshold".into() });
    blocks.push(Block::Image { file: "distances.png".into(), caption: "Genuine and impostor distances with the thresholds; TAR and FAR read at each".into() });
    if product.is_none() {
        blocks.push(Block::Text("No database at --db: the product's 1:1 and 1:N thresholds are not drawn.".into()));
    }
    let (accepts, rejects) = mistakes::worst(&first.report.distances, &first.report.same, first.report.threshold, worst);
    let threshold = first.report.threshold;
    for (id, heading, list) in [
        ("false-accepts", format!("Worst false accepts at {threshold:.3}: different people taken for one"), &accepts),
        ("false-rejects", format!("Worst false rejects at {threshold:.3}: one person taken for two"), &rejects),
    ] {
        blocks.push(Block::Heading(heading));
        let items = mistake_items(dir, id, engine, alignment, pairs, list)?;
        blocks.push(Block::Pairs { id: id.into(), items });
    }
    page::write(dir, &title, &blocks).map_err(|e| FdbError::Invalid(e.to_string()))
}

fn metrics_table(runs: &[NamedReport<'_>]) -> Block {
    let header = ["run", "accuracy", "threshold", "AUC", "EER", "TAR@1e-4", "TAR@1e-3", "TAR@1e-2"];
    let rows = runs
        .iter()
        .map(|r| {
            let split = r.report.split_distances();
            let mut row = vec![
                r.name.clone(),
                format!("{:.4} ± {:.4}", r.report.accuracy_mean, r.report.accuracy_std),
                format!("{:.3}", r.report.threshold),
                format!("{:.4}", r.report.auc),
                format!("{:.4}", r.report.eer),
            ];
            for far in roc::MARKED_FARS {
                let t = split.tar_at_far(far);
                row.push(if t.resolvable { format!("{:.4}", t.tar) } else { format!("n/a ({} impostors)", split.impostor.len()) });
            }
            row
        })
        .collect();
    Block::Table { id: "metrics".into(), header: header.iter().map(|h| h.to_string()).collect(), rows }
}

fn mistake_items(
    dir: &Path,
    id: &str,
    engine: &Engine,
    alignment: Alignment,
    pairs: &[ImagePair],
    list: &[Mistake],
) -> Result<Vec<PairItem>> {
    let mut items = Vec::new();
    for (k, m) in list.iter().enumerate() {
        let pair = &pairs[m.pair];
        let views = face_views(engine, alignment, &[pair.left.clone(), pair.right.clone()]);
        let (left, right) = match (&views[0], &views[1]) {
            (Ok(l), Ok(r)) => (l, r),
            (Err(e), _) | (_, Err(e)) => {
                items.push(PairItem { file: String::new(), lines: vec![format!("pair {}: {e}", m.pair)] });
                continue;
            }
        };
        let file = format!("mistakes/{id}-{:02}.png", k + 1);
        let path = dir.join(&file);
        pair_strip(left, right).save(&path).map_err(|e| FdbError::Invalid(format!("{}: {e}", path.display())))?;
        let fallback = |v: &FaceView| if v.bbox.is_none() { " (no face found: central region)" } else { "" };
        items.push(PairItem {
            file,
            lines: vec![
                format!("distance {:.4} ({} pair {})", m.distance, if pair.same { "same-person" } else { "different-person" }, m.pair + 1),
                format!("{}{}", pair.left.display(), fallback(left)),
                format!("{}{}", pair.right.display(), fallback(right)),
            ],
        });
    }
    Ok(items)
}

/// A probe whose nearest enrolled face is somebody else's.
pub struct WrongMatch {
    /// The probe photo.
    pub probe: PathBuf,
    /// Whose it is.
    pub truth: String,
    /// The enrolled photo it came nearest to.
    pub matched: PathBuf,
    /// Whose that is.
    pub matched_person: String,
    /// Their distance.
    pub distance: f32,
}

/// Writes `DIR/index.html` for `fdb eval identify`: rank-1 and rank-5, and the probes matched
/// to the wrong person (nearest first) as faces beside the enrolled photo they matched.
pub fn write_identify_report(
    dir: &Path,
    engine: &Engine,
    alignment: Alignment,
    title: &str,
    report: &IdentifyReport,
    wrong_total: usize,
    wrong: &[WrongMatch],
) -> Result<PathBuf> {
    let io = |path: &Path, e: std::io::Error| FdbError::Io { path: path.to_path_buf(), source: e };
    std::fs::create_dir_all(dir.join("mistakes")).map_err(|e| io(dir, e))?;
    let mut items = Vec::new();
    for (k, m) in wrong.iter().enumerate() {
        let views = face_views(engine, alignment, &[m.probe.clone(), m.matched.clone()]);
        let lines = vec![
            format!("distance {:.4}: {} taken for {}", m.distance, m.truth, m.matched_person),
            format!("probe {}", m.probe.display()),
            format!("enrolled {}", m.matched.display()),
        ];
        match (&views[0], &views[1]) {
            (Ok(probe), Ok(matched)) => {
                let file = format!("mistakes/wrong-person-{:02}.png", k + 1);
                let path = dir.join(&file);
                pair_strip(probe, matched).save(&path).map_err(|e| FdbError::Invalid(format!("{}: {e}", path.display())))?;
                items.push(PairItem { file, lines });
            }
            (Err(e), _) | (_, Err(e)) => items.push(PairItem { file: String::new(), lines: [lines, vec![e.to_string()]].concat() }),
        }
    }
    let table = Block::Table {
        id: "metrics".into(),
        header: ["probes", "rank-1", "rank-5", "wrong nearest person"].iter().map(|h| h.to_string()).collect(),
        rows: vec![vec![
            report.probes.to_string(),
            format!("{:.4}", report.rank1),
            format!("{:.4}", report.rank5),
            wrong_total.to_string(),
        ]],
    };
    let blocks = [
        Block::Heading("Metrics".into()),
        table,
        Block::Heading(format!("Probes matched to the wrong person, nearest first ({} shown)", wrong.len())),
        Block::Pairs { id: "wrong-person".into(), items },
    ];
    page::write(dir, title, &blocks).map_err(|e| FdbError::Invalid(e.to_string()))
}

/// Each photo as the evaluator saw it: the face facenet's alignment takes, or the central
/// region when there is none (as the evaluation did).
pub fn face_views(engine: &Engine, alignment: Alignment, paths: &[PathBuf]) -> Vec<Result<FaceView>> {
    paths
        .iter()
        .map(|path| {
            let photo: Photo = Engine::decode_files(std::slice::from_ref(path)).remove(0)?;
            let found = engine.find_faces(&[&photo], FaceChoice::One { strict: false }, alignment, crate::engine::WholeImage::Never)?.remove(0);
            let (bbox, crop): (Option<[f32; 4]>, RgbImage) = match found {
                Ok(mut faces) => {
                    let face = faces.remove(0);
                    (Some(face.detection.bbox), face.crop)
                }
                Err(_) => (None, central_region(&photo.image)),
            };
            Ok(FaceView { photo: photo.image, bbox, crop })
        })
        .collect()
}
