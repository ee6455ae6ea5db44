//! The learning curve of `fdb retrain`: one panel per quantity, each on its own axis (triplet
//! loss; the shares of active triplets and of semi-hard fallbacks; held-out verification and
//! rank-1), epochs ticked, the held-out score before training drawn as a reference, and the
//! switch decision in the title. Several runs share the panels.

use std::path::Path;

use fdb_models::train::EpochLog;
use plotters::coord::CoordTranslate;
use plotters::prelude::*;

use super::canvas::{self, rgb, tick_text, Label, AXIS_PX, GRID, INK, MUTED, PALETTE, TICK_PX, TITLE_PX};

/// Picture size in pixels.
pub const SIZE: (u32, u32) = (900, 900);

/// One run of `fdb retrain`: its name, its epochs, the held-out verification accuracy before
/// training, and whether the database switched to the result.
pub struct Run<'a> {
    /// The run's name (its model id).
    pub name: String,
    /// One log per epoch.
    pub epochs: &'a [EpochLog],
    /// Held-out verification accuracy before training.
    pub before: f64,
    /// Whether the database switched to the result.
    pub switched: bool,
}

type Value = fn(&EpochLog) -> f64;

struct Panel {
    title: &'static str,
    series: &'static [(&'static str, Value)],
}

const PANELS: [Panel; 3] = [
    Panel { title: "triplet loss", series: &[("loss", |e| e.loss)] },
    Panel {
        title: "share of triplets",
        series: &[("active (loss > 0)", |e| e.active_fraction), ("no semi-hard negative", |e| e.fallback_fraction)],
    },
    Panel {
        title: "held-out people",
        series: &[("verification accuracy", |e| e.val_accuracy), ("rank-1", |e| e.val_rank1)],
    },
];

/// The most runs one picture draws (the latest): each adds a legend line per panel.
pub const MAX_DRAWN: usize = 4;

/// Draws the runs (the last `MAX_DRAWN` of them) into a PNG at `path`.
pub fn write_png(path: &Path, runs: &[Run<'_>]) -> Result<(), String> {
    let runs = &runs[runs.len().saturating_sub(MAX_DRAWN)..];
    canvas::render_png(path, SIZE, |buffer| draw(buffer, runs))
}

/// A run's name in a legend: the last step of its model id ("ft1796303242" of
/// "facenet-…+ft1796303242"), or the whole name when it has no steps.
fn short_name(name: &str) -> &str {
    name.rsplit('+').next().unwrap_or(name)
}

fn draw(buffer: &mut [u8], runs: &[Run<'_>]) -> Result<Vec<Label>, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let root = BitMapBackend::with_buffer(buffer, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut labels = Vec::new();
    let decision = match runs {
        [one] => {
            let last = one.epochs.last().map(|e| e.val_accuracy).unwrap_or(one.before);
            let verdict = if one.switched { "switched to it" } else { "kept the old model" };
            format!("held-out verification {:.4} → {:.4}: {verdict}", one.before, last)
        }
        _ => {
            let switched = runs.iter().filter(|r| r.switched).count();
            format!("the last {} runs ({switched} switched to)", runs.len())
        }
    };
    labels.push(Label::new(format!("fdb retrain: {decision}"), (SIZE.0 as i32 / 2, 30), 0.5, TITLE_PX, INK));
    let body = root.margin(45, 0, 0, 0);
    let panels = body.split_evenly((PANELS.len(), 1));
    let last_epoch = runs.iter().map(|r| r.epochs.len()).max().unwrap_or(1).max(1);
    for (area, panel) in panels.iter().zip(&PANELS) {
        let values = || runs.iter().flat_map(|r| r.epochs.iter().flat_map(|e| panel.series.iter().map(move |(_, v)| v(e))));
        let (mut lo, mut hi) = values().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
        if panel.title == "held-out people" {
            for r in runs {
                lo = lo.min(r.before);
                hi = hi.max(r.before);
            }
        }
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        let pad = ((hi - lo) * 0.1).max(1e-3);
        let (lo, hi) = (lo - pad, hi + pad);
        let mut chart = ChartBuilder::on(area)
            .margin(10)
            .margin_right(30)
            .x_label_area_size(35)
            .y_label_area_size(70)
            .build_cartesian_2d(0.5..last_epoch as f64 + 0.5, lo..hi)
            .map_err(|e| err(&e))?;
        chart.configure_mesh().disable_mesh().x_labels(0).y_labels(0).draw().map_err(|e| err(&e))?;
        let coord = chart.as_coord_spec().clone();
        let px = |x: f64, y: f64| coord.translate(&(x, y));
        let step = (last_epoch / 10).max(1);
        for epoch in (1..=last_epoch).filter(|e| (e - 1) % step == 0 || *e == last_epoch) {
            let x = epoch as f64;
            chart.draw_series(LineSeries::new([(x, lo), (x, hi)], GRID)).map_err(|e| err(&e))?;
            let (cx, cy) = px(x, lo);
            labels.push(Label::new(epoch.to_string(), (cx, cy + 18), 0.5, TICK_PX, INK));
        }
        for i in 0..=4 {
            let y = lo + (hi - lo) * i as f64 / 4.0;
            chart.draw_series(LineSeries::new([(0.5, y), (last_epoch as f64 + 0.5, y)], GRID)).map_err(|e| err(&e))?;
            let (cx, cy) = px(0.5, y);
            let text = if (hi - lo) < 0.05 { format!("{y:.4}") } else { tick_text((y * 100.0).round() / 100.0) };
            labels.push(Label::new(text, (cx - 8, cy + 5), 1.0, TICK_PX, INK));
        }
        let ((x0, _), (x1, y1)) = (px(0.5, lo), px(last_epoch as f64 + 0.5, hi));
        labels.push(Label::new(panel.title, (x0 + 8, y1 + 18), 0.0, AXIS_PX, INK));
        let (_, yb) = px(0.5, lo);
        labels.push(Label::new("epoch", (x1, yb + 32), 1.0, TICK_PX, MUTED));
        for (r, run) in runs.iter().enumerate() {
            // One legend line per run, right-aligned under the panel's top edge.
            let mut legend_x = x1 - 10;
            let legend_y = y1 + 18 + 16 * r as i32;
            for (s, (name, value)) in panel.series.iter().enumerate().rev() {
                let colour = PALETTE[(r * panel.series.len() + s) % PALETTE.len()];
                let points = run.epochs.iter().map(|e| (e.epoch as f64, value(e)));
                let style = if s == 0 { colour.stroke_width(2) } else { colour.stroke_width(1) };
                chart.draw_series(LineSeries::new(points, style)).map_err(|e| err(&e))?;
                let points = run.epochs.iter().map(|e| Circle::new((e.epoch as f64, value(e)), 3, colour.filled()));
                chart.draw_series(points).map_err(|e| err(&e))?;
                let text = if runs.len() > 1 { format!("{} {name}", short_name(&run.name)) } else { (*name).to_string() };
                labels.push(Label::new(&text, (legend_x, legend_y), 1.0, TICK_PX, rgb(colour)));
                legend_x -= canvas::text_width(&text, TICK_PX) as i32 + 16;
            }
            if panel.title == "held-out people" {
                let colour = PALETTE[(r * panel.series.len()) % PALETTE.len()];
                let before = [(0.5, run.before), (last_epoch as f64 + 0.5, run.before)];
                chart.draw_series(DashedLineSeries::new(before, 6, 4, colour.into())).map_err(|e| err(&e))?;
                let (_, cy) = px(0.5, run.before);
                let text = match runs.len() {
                    1 => format!("before training {:.4}", run.before),
                    _ => format!("{} before {:.4}", short_name(&run.name), run.before),
                };
                labels.push(Label::new(text, (x0 + 8 + 190 * r as i32, cy - 4), 0.0, TICK_PX, rgb(colour)));
            }
        }
    }
    root.present().map_err(|e| err(&e))?;
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epochs(n: usize) -> Vec<EpochLog> {
        (1..=n)
            .map(|i| EpochLog {
                epoch: i,
                loss: 0.2 / i as f64,
                active_fraction: 0.05 / i as f64,
                fallback_fraction: 0.9,
                val_accuracy: 0.99 + 0.0005 * i as f64,
                val_rank1: 0.98,
            })
            .collect()
    }

    #[test]
    fn several_runs_share_the_panels_each_in_its_own_colour() {
        // The second run's loss is half the first's, so neither line hides the other.
        let a = epochs(5);
        let b: Vec<EpochLog> = epochs(8).into_iter().map(|e| EpochLog { loss: e.loss / 2.0, ..e }).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curves.png");
        let runs = [
            Run { name: "m+ft1".into(), epochs: &a, before: 0.99, switched: true },
            Run { name: "m+ft1+ft2".into(), epochs: &b, before: 0.992, switched: false },
        ];
        write_png(&path, &runs).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        // The loss panel has one series: run 1 in the first colour, run 2 in the second.
        let top = |c| img.enumerate_pixels().filter(|(_, y, p)| *y < SIZE.1 / 3 && p.0 == rgb(c)).count();
        assert!(top(PALETTE[0]) > 100 && top(PALETTE[1]) > 100, "{} {}", top(PALETTE[0]), top(PALETTE[1]));
        assert_eq!(short_name("m+ft1+ft2"), "ft2");
        assert_eq!(short_name("semi-hard"), "semi-hard");
    }

    #[test]
    fn each_quantity_gets_its_own_panel_and_colour() {
        let e = epochs(10);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curve.png");
        write_png(&path, &[Run { name: "semi-hard".into(), epochs: &e, before: 0.99, switched: true }]).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), SIZE);
        // The loss (first colour) falls from the top to the bottom of its own panel: its
        // pixels span most of the top third's height, which a shared 0..1 axis would flatten.
        let rows: Vec<u32> = img.enumerate_pixels().filter(|(_, y, p)| *y < SIZE.1 / 3 + 15 && p.0 == rgb(PALETTE[0])).map(|(_, y, _)| y).collect();
        let span = rows.iter().max().unwrap() - rows.iter().min().unwrap();
        assert!(span > 150, "loss spans {span} px");
        assert!(img.pixels().filter(|p| p.0 == rgb(PALETTE[1])).count() > 100);
    }
}
