//! The learning curve of `fdb retrain` as a PNG: loss, active triplets and held-out accuracy per epoch.

use std::path::Path;

use fdb_models::train::EpochLog;
use plotters::prelude::*;

use crate::eval::plot::{render_png, Label};

const SIZE: (u32, u32) = (900, 600);

/// The three series against the epoch, on one 0..max(1, loss) axis; labels where a font is found.
pub fn learning_curve(path: &Path, epochs: &[EpochLog]) -> Result<(), String> {
    render_png(path, SIZE, |buffer| draw(buffer, epochs)).map_err(|e| format!("{}: {e}", path.display()))
}

fn draw(buffer: &mut [u8], epochs: &[EpochLog]) -> Result<Vec<Label>, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let root = BitMapBackend::with_buffer(buffer, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let last = epochs.len().max(1) as f64;
    let top = epochs.iter().map(|e| e.loss).fold(1.0f64, f64::max) * 1.05;
    let mut chart = ChartBuilder::on(&root)
        .margin(20)
        .margin_top(60)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..last, 0.0..top)
        .map_err(|e| err(&e))?;
    // No plotters text: it has no font feature here (see eval::plot).
    chart.configure_mesh().x_labels(0).y_labels(0).draw().map_err(|e| err(&e))?;
    let series: [(&str, RGBColor, fn(&EpochLog) -> f64); 3] = [
        ("triplet loss", BLUE, |e| e.loss),
        ("active triplets", GREEN, |e| e.active_fraction),
        ("held-out accuracy", RED, |e| e.val_accuracy),
    ];
    let mut labels = Vec::new();
    let px = |x: f64, y: f64| chart.backend_coord(&(x, y));
    let ((x0, y0), (x1, y1)) = (px(0.0, 0.0), px(last, top));
    for (i, (name, colour, _)) in series.iter().enumerate() {
        labels.push(Label { text: (*name).into(), at: (x0 + 10 + 180 * i as i32, y1 - 15), align: 0.0, px: 16.0, color: [colour.0, colour.1, colour.2] });
    }
    labels.push(Label { text: format!("epoch (1..{})", epochs.len()), at: ((x0 + x1) / 2, y0 + 30), align: 0.5, px: 15.0, color: [0, 0, 0] });
    labels.push(Label { text: format!("{top:.2}"), at: (x0 - 6, y1 + 5), align: 1.0, px: 13.0, color: [0, 0, 0] });
    labels.push(Label { text: "0".into(), at: (x0 - 6, y0), align: 1.0, px: 13.0, color: [0, 0, 0] });
    for (_, colour, value) in series {
        let points = epochs.iter().map(move |e| (e.epoch as f64, value(e)));
        chart.draw_series(LineSeries::new(points, colour.stroke_width(2))).map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_curve_is_drawn_in_its_colours() {
        let epochs: Vec<EpochLog> = (1..=5)
            .map(|i| EpochLog {
                epoch: i,
                loss: 0.2 / i as f64,
                active_fraction: 0.5 / i as f64,
                fallback_fraction: 0.1,
                val_accuracy: 0.9 + 0.01 * i as f64,
                val_rank1: 0.9,
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curve.png");
        learning_curve(&path, &epochs).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), SIZE);
        for colour in [[0, 0, 255], [0, 255, 0], [255, 0, 0]] {
            assert!(img.pixels().filter(|p| p.0 == colour).count() > 50, "{colour:?} missing");
        }
    }
}
