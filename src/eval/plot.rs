//! The ROC curve as a PNG (plotters bitmap backend). Text needs a TrueType
//! font, loaded at run time from common system paths; without one the plot is
//! drawn without any text rather than failing on a bare machine.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use super::report::EvalReport;
use super::EvalError;
use super::Metric;

/// Fonts tried in order; `FDB_PLOT_FONT` comes first when set.
const SYSTEM_FONTS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

/// Registers a font for plotters once; false when none could be loaded.
pub(crate) fn font_available() -> bool {
    static LOADED: OnceLock<bool> = OnceLock::new();
    *LOADED.get_or_init(|| {
        let env = std::env::var_os("FDB_PLOT_FONT").map(PathBuf::from);
        env.into_iter()
            .chain(SYSTEM_FONTS.iter().map(PathBuf::from))
            .any(|path| {
                let Ok(bytes) = std::fs::read(&path) else {
                    return false;
                };
                // plotters keeps fonts for the whole process: leaking once is the intended use.
                register_font(
                    "sans-serif",
                    FontStyle::Normal,
                    Box::leak(bytes.into_boxed_slice()),
                )
                .is_ok()
            })
    })
}

/// Draws the mean ROC curve (FPR on x, TPR on y) with the operating point marked.
pub fn write_roc_png(report: &EvalReport, path: &Path) -> Result<(), EvalError> {
    draw(report, path, font_available()).map_err(|reason| EvalError::Plot {
        path: path.to_path_buf(),
        reason,
    })
}

fn draw(report: &EvalReport, path: &Path, with_text: bool) -> Result<(), String> {
    let root = BitMapBackend::new(path, (800, 800)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| e.to_string();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(20);
    if with_text {
        let o = &report.options;
        let metric = match o.metric {
            Metric::SquaredL2 => "squared L2",
            Metric::Cosine => "cosine",
        };
        let caption = format!(
            "ROC: accuracy {:.4}, AUC {:.4}, EER {:.4} ({metric}{})",
            report.accuracy_mean,
            report.auc,
            report.eer,
            if o.subtract_mean {
                ", mean subtracted"
            } else {
                ""
            }
        );
        builder
            .caption(caption, ("sans-serif", 20))
            .x_label_area_size(40)
            .y_label_area_size(50);
    } else {
        builder.x_label_area_size(5).y_label_area_size(5);
    }
    let mut chart = builder
        .build_cartesian_2d(0.0f64..1.0, 0.0f64..1.0)
        .map_err(|e| err(&e))?;
    let mut mesh = chart.configure_mesh();
    if with_text {
        mesh.x_desc("false positive rate")
            .y_desc("true positive rate");
    } else {
        mesh.disable_x_mesh()
            .disable_y_mesh()
            .x_labels(0)
            .y_labels(0);
    }
    mesh.draw().map_err(|e| err(&e))?;
    chart
        .draw_series(LineSeries::new(
            report.roc.iter().map(|p| (p.fpr, p.tpr)),
            BLUE.stroke_width(2),
        ))
        .map_err(|e| err(&e))?;
    let op = report.operating_point;
    chart
        .draw_series(std::iter::once(Circle::new(
            (op.fpr, op.tpr),
            7,
            RED.filled(),
        )))
        .map_err(|e| err(&e))?;
    if with_text {
        let label = format!(
            "threshold {:.3}: TPR {:.4}, FPR {:.4}",
            op.threshold, op.tpr, op.fpr
        );
        let at = (op.fpr.min(0.55) + 0.03, (op.tpr - 0.06).max(0.05));
        chart
            .draw_series(std::iter::once(Text::new(
                label,
                at,
                ("sans-serif", 18).into_font().color(&RED),
            )))
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{evaluate, EvalOptions, PairEmbeddings};

    #[test]
    fn draws_without_a_font() {
        // Two folds of 2-d unit vectors: same pairs 0.1 rad apart, different ones 2 rad.
        let unit = |a: f32| vec![a.cos(), a.sin()];
        let mut emb = PairEmbeddings::default();
        for i in 0..8 {
            let same = i % 2 == 0;
            emb.left.push(unit(i as f32));
            emb.right
                .push(unit(i as f32 + if same { 0.1 } else { 2.0 }));
            emb.same.push(same);
        }
        let report = evaluate(
            &emb,
            &EvalOptions {
                folds: 2,
                ..EvalOptions::default()
            },
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain.png");
        draw(&report, &path, false).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        // Perfect separation: the operating point (red) sits at the top-left corner.
        let red: Vec<(u32, u32)> = img
            .enumerate_pixels()
            .filter(|(_, _, p)| p.0 == [255, 0, 0])
            .map(|(x, y, _)| (x, y))
            .collect();
        assert!(!red.is_empty());
        assert!(
            red.iter().all(|(x, y)| *x < 60 && *y < 60),
            "{:?}",
            &red[..3]
        );
        let err = write_roc_png(&report, &dir.path().join("missing/dir/roc.png"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing/dir/roc.png"), "{err}");
    }
}
