//! The ROC the field reads: true-accept rate against a log-scale false-accept axis (1e-4…1),
//! TAR at FAR 1e-4, 1e-3 and 1e-2 marked, the chosen threshold's point, several curves in one
//! plot.

use std::path::Path;

use plotters::coord::combinators::IntoLogRange;
use plotters::prelude::*;

use super::canvas::{self, rgb, tick_text, Label, AXIS_PX, GRID, INK, PALETTE, TICK_PX, TITLE_PX};
use crate::eval::tar::{SplitDistances, TarAtFar};

/// Picture size in pixels.
pub const SIZE: (u32, u32) = (900, 700);
/// The FAR targets marked on every curve.
pub const MARKED_FARS: [f64; 3] = [1e-4, 1e-3, 1e-2];
const FAR_MIN: f64 = 1e-4;

/// One curve: its name, its distances, and the threshold the product uses on it.
pub struct RocSeries {
    /// Its legend entry.
    pub name: String,
    /// The pairs' distances.
    pub distances: SplitDistances,
    /// The threshold to mark with a cross.
    pub threshold: Option<f64>,
}

impl RocSeries {
    /// TAR at each of [`MARKED_FARS`].
    pub fn marks(&self) -> Vec<TarAtFar> {
        MARKED_FARS.iter().map(|f| self.distances.tar_at_far(*f)).collect()
    }
}

/// Draws the curves into a PNG at `path`.
pub fn write_png(path: &Path, title: &str, series: &[RocSeries]) -> Result<(), String> {
    canvas::render_png(path, SIZE, |buffer| draw(buffer, title, series))
}

fn draw(buffer: &mut [u8], title: &str, series: &[RocSeries]) -> Result<Vec<Label>, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let root = BitMapBackend::with_buffer(buffer, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    // A TAR axis from the worst marked TAR (rounded down to 0.1) to 1: the interesting part.
    let lowest = series
        .iter()
        .flat_map(|s| s.distances.curve().into_iter().filter(|(far, _)| *far >= FAR_MIN).map(|(_, tar)| tar).take(1))
        .fold(1.0f64, f64::min);
    let y_min = ((lowest - 0.02) * 10.0).floor().clamp(0.0, 9.0) / 10.0;
    let mut chart = canvas::framed(&root)
        .build_cartesian_2d((FAR_MIN..1.0f64).log_scale(), y_min..1.0f64)
        .map_err(|e| err(&e))?;
    // The axes by hand: plotters' mesh on a log axis draws its own labels, which need a font.
    let axes = [(FAR_MIN, 1.0), (FAR_MIN, y_min), (1.0, y_min)];
    chart.draw_series(LineSeries::new(axes, BLACK)).map_err(|e| err(&e))?;
    let mut labels = Vec::new();
    // Pixel positions for labels (plotters' log coordinates cannot be cloned out of the chart).
    let (xr, yr) = chart.plotting_area().get_pixel_range();
    let px = move |x: f64, y: f64| {
        let fx = (x.ln() - FAR_MIN.ln()) / -FAR_MIN.ln();
        let fy = (y - y_min) / (1.0 - y_min);
        (xr.start + (fx * f64::from(xr.end - xr.start)).round() as i32, yr.end - (fy * f64::from(yr.end - yr.start)).round() as i32)
    };
    let x_ticks = [1e-4, 1e-3, 1e-2, 1e-1, 1.0];
    // Ticks every 0.05 on a short axis, every 0.1 on a long one.
    let y_step = if 1.0 - y_min <= 0.3 { 0.05 } else { 0.1 };
    let y_steps = ((1.0 - y_min) / y_step).round() as usize;
    let y_ticks: Vec<f64> = (0..=y_steps).map(|i| y_min + i as f64 * (1.0 - y_min) / y_steps.max(1) as f64).collect();
    for &x in &x_ticks {
        chart.draw_series(LineSeries::new([(x, y_min), (x, 1.0)], GRID)).map_err(|e| err(&e))?;
        let (cx, cy) = px(x, y_min);
        labels.push(Label::new(tick_text(x), (cx, cy + 20), 0.5, TICK_PX, INK));
    }
    for &y in &y_ticks {
        chart.draw_series(LineSeries::new([(FAR_MIN, y), (1.0, y)], GRID)).map_err(|e| err(&e))?;
        let (cx, cy) = px(FAR_MIN, y);
        labels.push(Label::new(format!("{y:.2}"), (cx - 8, cy + 5), 1.0, TICK_PX, INK));
    }
    let ((x0, y0), (x1, y1)) = (px(FAR_MIN, y_min), px(1.0, 1.0));
    labels.push(Label::new("false-accept rate (log scale)", ((x0 + x1) / 2, y0 + 42), 0.5, AXIS_PX, INK));
    labels.push(Label::new("true-accept rate (TAR)", (x0 - 10, y1 - 8), 0.0, TICK_PX, INK));
    labels.push(Label::new(title, ((x0 + x1) / 2, y1 - 30), 0.5, TITLE_PX, INK));

    for (i, s) in series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let points = steps(&s.distances.curve());
        chart.draw_series(LineSeries::new(points, colour.stroke_width(2))).map_err(|e| err(&e))?;
        let marks = s.marks();
        for m in marks.iter().filter(|m| m.resolvable) {
            chart.draw_series(std::iter::once(Circle::new((m.far, m.tar), 5, colour.filled()))).map_err(|e| err(&e))?;
        }
        if let Some(t) = s.threshold {
            let (far, tar) = s.distances.rates_at(t);
            if far >= FAR_MIN {
                let cross = Cross::new((far, tar), 8, colour.stroke_width(3));
                chart.draw_series(std::iter::once(cross)).map_err(|e| err(&e))?;
            }
        }
        // Legend, bottom right: name, then TAR at each marked FAR.
        let tars: Vec<String> = marks
            .iter()
            .map(|m| {
                let value = if m.resolvable { format!("{:.3}", m.tar) } else { "n/a".into() };
                format!("@{}: {value}", tick_text(m.far))
            })
            .collect();
        let line_y = y0 - 20 - 44 * (series.len() - 1 - i) as i32;
        labels.push(Label::new(&s.name, (x1 - 10, line_y - 20), 1.0, AXIS_PX, rgb(colour)));
        let threshold = s.threshold.map(|t| format!("   × threshold {t:.3}")).unwrap_or_default();
        labels.push(Label::new(format!("TAR {}{threshold}", tars.join("  ")), (x1 - 10, line_y), 1.0, TICK_PX, rgb(colour)));
    }
    root.present().map_err(|e| err(&e))?;
    Ok(labels)
}

/// The corners as a staircase: each TAR holds until the next impostor lets the FAR step up.
fn steps(corners: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut points = Vec::with_capacity(corners.len() * 2);
    for (i, &(far, tar)) in corners.iter().enumerate() {
        if i > 0 {
            points.push((far, corners[i - 1].1));
        }
        points.push((far, tar));
    }
    points.retain(|(far, _)| *far >= FAR_MIN);
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str, gap: f64) -> RocSeries {
        // 2,000 impostors spread over 1..2, 500 genuine over (1 - gap)..(2 - gap).
        let mut d = Vec::new();
        let mut same = Vec::new();
        for i in 0..2000 {
            d.push(1.0 + i as f64 / 2000.0);
            same.push(false);
        }
        for i in 0..500 {
            d.push(1.0 - gap + i as f64 / 500.0);
            same.push(true);
        }
        RocSeries { name: name.into(), distances: SplitDistances::new(&d, &same), threshold: Some(1.2) }
    }

    #[test]
    fn two_curves_are_drawn_in_their_colours_with_their_marks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roc.png");
        let (a, b) = (series("base", 0.5), series("retrained", 0.8));
        // By hand: FAR 1e-3 of 2,000 impostors lets 2 in, threshold = the third impostor,
        // 1.001; genuine below it: 1 - 0.5 + i/500 < 1.001 → i ≤ 250 → 251 of 500.
        let m = a.marks()[1];
        assert_eq!(m.threshold, 1.0 + 2.0 / 2000.0);
        assert!((m.tar - 251.0 / 500.0).abs() < 1e-12, "{}", m.tar);
        assert!(!a.marks()[0].resolvable && a.marks()[1].resolvable);
        write_png(&path, "two models", &[a, b]).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), SIZE);
        for colour in [PALETTE[0], PALETTE[1]] {
            let n = img.pixels().filter(|p| p.0 == rgb(colour)).count();
            assert!(n > 300, "colour {colour:?}: {n} pixels");
        }
    }
}
