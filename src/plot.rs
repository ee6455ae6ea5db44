//! The learning curve of `fdb retrain` as a PNG: loss, active triplets and held-out accuracy per epoch.

use std::path::Path;

use fdb_models::train::EpochLog;
use plotters::prelude::*;

use crate::eval::plot::font_available;

/// Draw the three series against the epoch; text (caption, legend, axes) only where a font is found.
pub fn learning_curve(path: &Path, epochs: &[EpochLog]) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let with_text = font_available();
    let root = BitMapBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let last = epochs.len().max(1) as f64;
    let top = epochs.iter().map(|e| e.loss).fold(1.0f64, f64::max) * 1.05;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(20);
    if with_text {
        builder.caption("fdb retrain: triplet loss, active triplets, held-out accuracy", ("sans-serif", 20));
        builder.x_label_area_size(40).y_label_area_size(50);
    }
    let mut chart = builder.build_cartesian_2d(0.0..last, 0.0..top).map_err(|e| err(&e))?;
    let mut mesh = chart.configure_mesh();
    if with_text {
        mesh.x_desc("epoch");
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw().map_err(|e| err(&e))?;
    let series: [(&str, RGBColor, fn(&EpochLog) -> f64); 3] = [
        ("loss", BLUE, |e| e.loss),
        ("active triplets", GREEN, |e| e.active_fraction),
        ("held-out accuracy", RED, |e| e.val_accuracy),
    ];
    for (name, colour, value) in series {
        let points = epochs.iter().map(move |e| (e.epoch as f64, value(e)));
        let drawn = chart.draw_series(LineSeries::new(points, colour.stroke_width(2))).map_err(|e| err(&e))?;
        if with_text {
            drawn.label(name).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
        }
    }
    if with_text {
        chart.configure_series_labels().background_style(WHITE).border_style(BLACK).draw().map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))
}
