//! Genuine and impostor distance histograms with the decision thresholds drawn on them: the
//! picture that answers "why was this stranger accepted" (where the two overlap, and which
//! threshold cuts where).

use std::path::Path;

use plotters::coord::CoordTranslate;
use plotters::prelude::*;

use super::canvas::{self, rgb, tick_text, Label, AXIS_PX, GRID, INK, PALETTE, TICK_PX, TITLE_PX};
use crate::eval::tar::SplitDistances;

/// Picture size in pixels.
pub const SIZE: (u32, u32) = (900, 560);
/// Bins over the distance's range: 0..4 for squared L2, 0..1 for the cosine angle.
const BINS: usize = 80;

fn range_of(distances: &SplitDistances) -> (f64, f64) {
    let max = distances.genuine.iter().chain(&distances.impostor).fold(0.0f64, |a, b| a.max(*b));
    (0.0, if max <= 1.0 { 1.0 } else { 4.0 })
}

/// A vertical line: where, what, and its colour (an index into the palette).
pub struct Marker {
    /// The distance.
    pub at: f64,
    /// Its label.
    pub name: String,
    /// Index into the palette.
    pub colour: usize,
}

/// The share of `values` in each of `BINS` equal bins over `range` (values outside are
/// clamped into the end bins), so that sets of different sizes compare.
pub fn densities(values: &[f64], range: (f64, f64)) -> Vec<f64> {
    let mut counts = vec![0usize; BINS];
    let width = (range.1 - range.0) / BINS as f64;
    for v in values {
        let bin = (((v - range.0) / width).floor().max(0.0) as usize).min(BINS - 1);
        counts[bin] += 1;
    }
    let n = values.len().max(1) as f64;
    counts.into_iter().map(|c| c as f64 / n).collect()
}

/// Draws the histograms and markers into a PNG at `path`.
pub fn write_png(path: &Path, title: &str, distances: &SplitDistances, markers: &[Marker]) -> Result<(), String> {
    canvas::render_png(path, SIZE, |buffer| draw(buffer, title, distances, markers))
}

fn draw(buffer: &mut [u8], title: &str, distances: &SplitDistances, markers: &[Marker]) -> Result<Vec<Label>, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let root = BitMapBackend::with_buffer(buffer, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let range = range_of(distances);
    let genuine = densities(&distances.genuine, range);
    let impostor = densities(&distances.impostor, range);
    let top = genuine.iter().chain(&impostor).fold(0.0f64, |a, b| a.max(*b)) * 1.1 + 1e-9;
    let mut chart = canvas::framed(&root)
        .build_cartesian_2d(range.0..range.1, 0.0..top)
        .map_err(|e| err(&e))?;
    chart.configure_mesh().disable_mesh().x_labels(0).y_labels(0).draw().map_err(|e| err(&e))?;
    let coord = chart.as_coord_spec().clone();
        let px = |x: f64, y: f64| coord.translate(&(x, y));
    let mut labels = Vec::new();
    let ticks = if range.1 > 1.0 { 8 } else { 10 };
    for i in 0..=ticks {
        let x = range.0 + i as f64 * (range.1 - range.0) / ticks as f64;
        chart.draw_series(LineSeries::new([(x, 0.0), (x, top)], GRID)).map_err(|e| err(&e))?;
        let (cx, cy) = px(x, 0.0);
        labels.push(Label::new(tick_text(x), (cx, cy + 20), 0.5, TICK_PX, INK));
    }
    let ((x0, y0), (x1, y1)) = (px(range.0, 0.0), px(range.1, top));
    let axis = if range.1 > 1.0 { "squared L2 distance (0 = identical, 4 = opposite)" } else { "angle / π (0 = identical, 1 = opposite)" };
    labels.push(Label::new(axis, ((x0 + x1) / 2, y0 + 42), 0.5, AXIS_PX, INK));
    labels.push(Label::new("share of pairs", (x0 - 10, y1 - 8), 0.0, TICK_PX, INK));
    labels.push(Label::new(title, ((x0 + x1) / 2, y1 - 30), 0.5, TITLE_PX, INK));

    let width = (range.1 - range.0) / BINS as f64;
    let sets = [("genuine (same person)", &genuine, distances.genuine.len(), PALETTE[0]), ("impostor (different people)", &impostor, distances.impostor.len(), PALETTE[1])];
    for (k, (name, bins, n, colour)) in sets.into_iter().enumerate() {
        let bars = bins.iter().enumerate().map(|(i, h)| {
            let left = range.0 + i as f64 * width;
            Rectangle::new([(left, 0.0), (left + width, *h)], colour.mix(0.45).filled())
        });
        chart.draw_series(bars).map_err(|e| err(&e))?;
        let outline = bins.iter().enumerate().flat_map(|(i, h)| {
            let left = range.0 + i as f64 * width;
            [(left, *h), (left + width, *h)]
        });
        chart.draw_series(LineSeries::new(outline, colour.stroke_width(2))).map_err(|e| err(&e))?;
        labels.push(Label::new(format!("{name}: {n} pairs"), (x1 - 10, y1 + 22 + 20 * k as i32), 1.0, AXIS_PX, rgb(colour)));
    }
    for (k, m) in markers.iter().enumerate() {
        let colour = PALETTE[m.colour % PALETTE.len()];
        chart.draw_series(LineSeries::new([(m.at, 0.0), (m.at, top)], colour.stroke_width(2))).map_err(|e| err(&e))?;
        let (cx, cy) = px(m.at, top);
        let (far, tar) = distances.rates_at(m.at);
        let text = format!("{} {:.3}: TAR {:.3}, FAR {:.4}", m.name, m.at, tar, far);
        // Below the legend; on the far side of the line when it is right of the middle.
        let (x, align) = if cx > (x0 + x1) / 2 { (cx - 6, 1.0) } else { (cx + 6, 0.0) };
        labels.push(Label::new(text, (x, cy + 70 + 18 * k as i32), align, TICK_PX, rgb(colour)));
    }
    root.present().map_err(|e| err(&e))?;
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn densities_share_out_each_value_once() {
        // Bin width 0.05: 0.0 and 0.04 in bin 0, 0.05 in bin 1, 3.99 and 7 (clamped) in the last.
        let d = densities(&[0.0, 0.04, 0.05, 3.99, 7.0], (0.0, 4.0));
        assert_eq!(d.len(), BINS);
        assert_eq!((d[0], d[1], d[BINS - 1]), (0.4, 0.2, 0.4));
        assert!((d.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn both_sets_and_every_threshold_are_drawn() {
        let d: Vec<f64> = (0..400).map(|i| if i % 2 == 0 { 0.6 + i as f64 / 1000.0 } else { 1.6 + i as f64 / 1000.0 }).collect();
        let same: Vec<bool> = (0..400).map(|i| i % 2 == 0).collect();
        let split = SplitDistances::new(&d, &same);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hist.png");
        let markers = [
            Marker { at: 1.275, name: "1:1".into(), colour: 3 },
            Marker { at: 1.0, name: "1:N".into(), colour: 4 },
        ];
        write_png(&path, "distances", &split, &markers).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        for colour in [PALETTE[0], PALETTE[1], PALETTE[3], PALETTE[4]] {
            let n = img.pixels().filter(|p| p.0 == rgb(colour)).count();
            assert!(n > 200, "colour {colour:?}: {n} pixels");
        }
    }
}
