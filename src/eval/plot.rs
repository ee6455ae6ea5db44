//! The ROC curve as a PNG: plotters (bitmap backend, no font features) draws
//! into a buffer, then labels are rasterised with ab_glyph from a TrueType
//! font found at run time. Without a font the plot is drawn without text
//! rather than failing on a bare machine.

use std::path::{Path, PathBuf};

use ab_glyph::{point, Font, FontVec, PxScale, ScaleFont};
use plotters::prelude::*;

use super::report::EvalReport;
use super::{EvalError, Metric};

/// Fonts tried in order; `FDB_PLOT_FONT` comes first when set.
const SYSTEM_FONTS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

const SIZE: (u32, u32) = (800, 800);
const BLACK_RGB: [u8; 3] = [0, 0, 0];
const RED_RGB: [u8; 3] = [255, 0, 0];

fn system_font() -> Option<FontVec> {
    let env = std::env::var_os("FDB_PLOT_FONT").map(PathBuf::from);
    env.into_iter()
        .chain(SYSTEM_FONTS.iter().map(PathBuf::from))
        .find_map(|path| FontVec::try_from_vec(std::fs::read(path).ok()?).ok())
}

/// Draws the mean ROC curve (FPR on x, TPR on y) with the operating point marked.
pub fn write_roc_png(report: &EvalReport, path: &Path) -> Result<(), EvalError> {
    render_png(path, SIZE, |buffer| draw_chart(report, buffer)).map_err(|reason| EvalError::Plot {
        path: path.to_path_buf(),
        reason,
    })
}

/// Text to place: pixel anchor, horizontal alignment (0 left, 0.5 centre, 1 right), size, colour.
pub(crate) struct Label {
    pub text: String,
    pub at: (i32, i32),
    pub align: f32,
    pub px: f32,
    pub color: [u8; 3],
}

/// Runs `chart` on an RGB buffer of `size`, rasterises the labels it returns when a font is
/// found, and saves the PNG. Shared by every plot fdb draws.
pub(crate) fn render_png(
    path: &Path,
    size: (u32, u32),
    chart: impl FnOnce(&mut [u8]) -> Result<Vec<Label>, String>,
) -> Result<(), String> {
    render_png_with(path, size, system_font().as_ref(), chart)
}

fn render_png_with(
    path: &Path,
    size: (u32, u32),
    font: Option<&FontVec>,
    chart: impl FnOnce(&mut [u8]) -> Result<Vec<Label>, String>,
) -> Result<(), String> {
    let (w, h) = size;
    let mut buffer = vec![0u8; (w * h * 3) as usize];
    let labels = chart(&mut buffer)?;
    if let Some(font) = font {
        for label in &labels {
            draw_text(&mut buffer, size, font, label);
        }
    }
    let image = image::RgbImage::from_raw(w, h, buffer).ok_or("plot buffer has the wrong size")?;
    image.save(path).map_err(|e| e.to_string())
}

/// Axes, curve and operating point; returns the labels to rasterise.
fn draw_chart(report: &EvalReport, buffer: &mut [u8]) -> Result<Vec<Label>, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let root = BitMapBackend::with_buffer(buffer, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .margin(20)
        .margin_top(50)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0f64..1.0, 0.0f64..1.0)
        .map_err(|e| err(&e))?;
    // plotters without a font feature panics on any text, so the mesh draws no
    // labels and the grid lines at the labelled ticks are drawn here.
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(0)
        .y_labels(0)
        .draw()
        .map_err(|e| err(&e))?;
    let grid = RGBColor(210, 210, 210);
    for i in 1..=5 {
        let v = f64::from(i) * 0.2;
        let lines = [[(v, 0.0), (v, 1.0)], [(0.0, v), (1.0, v)]];
        for line in lines {
            chart
                .draw_series(LineSeries::new(line, grid))
                .map_err(|e| err(&e))?;
        }
    }
    let curve = report.roc.iter().map(|p| (p.fpr, p.tpr));
    chart
        .draw_series(LineSeries::new(curve, BLUE.stroke_width(2)))
        .map_err(|e| err(&e))?;
    let op = report.operating_point;
    let disc = Circle::new((op.fpr, op.tpr), 7, RED.filled());
    chart
        .draw_series(std::iter::once(disc))
        .map_err(|e| err(&e))?;

    let px = |x: f64, y: f64| chart.backend_coord(&(x, y));
    let label = |text: String, at: (i32, i32), align: f32, px: f32, color: [u8; 3]| Label {
        text,
        at,
        align,
        px,
        color,
    };
    let mut labels = Vec::new();
    for i in 0..=5 {
        let v = f64::from(i) * 0.2;
        let (x, y) = px(v, 0.0);
        labels.push(label(format!("{v:.1}"), (x, y + 20), 0.5, 14.0, BLACK_RGB));
        let (x, y) = px(0.0, v);
        labels.push(label(
            format!("{v:.1}"),
            (x - 8, y + 5),
            1.0,
            14.0,
            BLACK_RGB,
        ));
    }
    let ((x0, y0), (x1, y1)) = (px(0.0, 0.0), px(1.0, 1.0));
    labels.push(label(
        "false positive rate".into(),
        ((x0 + x1) / 2, y0 + 42),
        0.5,
        15.0,
        BLACK_RGB,
    ));
    labels.push(label(
        "TPR".into(),
        (x0 - 30, (y0 + y1) / 2),
        1.0,
        15.0,
        BLACK_RGB,
    ));
    let o = &report.options;
    let metric = match o.metric {
        Metric::SquaredL2 => "squared L2",
        Metric::Cosine => "cosine",
    };
    let mean = if o.subtract_mean {
        ", mean subtracted"
    } else {
        ""
    };
    let caption = format!(
        "ROC: accuracy {:.4}, AUC {:.4}, EER {:.4} ({metric}{mean})",
        report.accuracy_mean, report.auc, report.eer
    );
    labels.push(label(
        caption,
        ((x0 + x1) / 2, y1 - 20),
        0.5,
        20.0,
        BLACK_RGB,
    ));
    let (ox, oy) = px(op.fpr.min(0.55), op.tpr);
    let text = format!(
        "threshold {:.3}: TPR {:.4}, FPR {:.4}",
        op.threshold, op.tpr, op.fpr
    );
    labels.push(label(
        text,
        (ox + 15, (oy + 40).min(y0 - 10)),
        0.0,
        17.0,
        RED_RGB,
    ));
    root.present().map_err(|e| err(&e))?;
    Ok(labels)
}

/// Rasterises one line of text into the RGB buffer, blending by glyph coverage.
fn draw_text(buffer: &mut [u8], size: (u32, u32), font: &FontVec, label: &Label) {
    let scaled = font.as_scaled(PxScale::from(label.px));
    let width: f32 = label
        .text
        .chars()
        .map(|c| scaled.h_advance(scaled.glyph_id(c)))
        .sum();
    let mut caret = label.at.0 as f32 - width * label.align;
    let (w, h) = (size.0 as i32, size.1 as i32);
    for c in label.text.chars() {
        let id = scaled.glyph_id(c);
        let glyph = id.with_scale_and_position(label.px, point(caret, label.at.1 as f32));
        caret += scaled.h_advance(id);
        let Some(outline) = font.outline_glyph(glyph) else {
            continue;
        };
        let bounds = outline.px_bounds();
        outline.draw(|gx, gy, coverage| {
            let (x, y) = (
                bounds.min.x as i32 + gx as i32,
                bounds.min.y as i32 + gy as i32,
            );
            if (0..w).contains(&x) && (0..h).contains(&y) {
                let at = ((y * w + x) * 3) as usize;
                for (channel, target) in buffer[at..at + 3].iter_mut().zip(label.color) {
                    let blended =
                        f32::from(*channel) * (1.0 - coverage) + f32::from(target) * coverage;
                    *channel = blended.round() as u8;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{evaluate, EvalOptions, PairEmbeddings};

    fn separable_report() -> EvalReport {
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
        evaluate(
            &emb,
            &EvalOptions {
                folds: 2,
                ..EvalOptions::default()
            },
        )
        .unwrap()
    }

    fn dark_pixels(path: &Path) -> usize {
        let img = image::open(path).unwrap().to_rgb8();
        img.pixels().filter(|p| p.0.iter().all(|c| *c < 80)).count()
    }

    #[test]
    fn draws_without_a_font_and_text_adds_ink() {
        let report = separable_report();
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain.png");
        render_png_with(&plain, SIZE, None, |b| draw_chart(&report, b)).unwrap();
        let img = image::open(&plain).unwrap().to_rgb8();
        // Perfect separation: the operating point (red disc) sits at the top-left corner
        // of the plot area (x0 = 20 + 60 label area, y = 50 top margin).
        let red: Vec<(u32, u32)> = img
            .enumerate_pixels()
            .filter(|(_, _, p)| p.0 == [255, 0, 0])
            .map(|(x, y, _)| (x, y))
            .collect();
        assert!(!red.is_empty());
        assert!(
            red.iter().all(|(x, y)| *x < 100 && *y < 70),
            "{:?}",
            &red[..3]
        );
        if let Some(font) = system_font() {
            let labelled = dir.path().join("labelled.png");
            render_png_with(&labelled, SIZE, Some(&font), |b| draw_chart(&report, b)).unwrap();
            assert!(dark_pixels(&labelled) > dark_pixels(&plain) + 500);
        } else {
            println!("skipping the text half: no system font");
        }
        let err = write_roc_png(&report, &dir.path().join("missing/dir/roc.png"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing/dir/roc.png"), "{err}");
    }
}
