//! The drawing surface every plot shares: plotters draws shapes into an RGB buffer (it has no
//! font feature here: plotters' own text would panic), then the labels a plot returns are
//! rasterised with ab_glyph from DejaVu Sans, which is compiled into the binary so that plots
//! look the same on every machine (its licence is in `assets/fonts`).

use std::path::Path;

use ab_glyph::{point, Font, FontRef, PxScale, ScaleFont};
use plotters::coord::Shift;
use plotters::prelude::{ChartBuilder, DrawingArea, DrawingBackend};
use plotters::style::RGBColor;

static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The series colours, in order: blue, orange, green, red, purple, brown (colour-blind safe
/// enough to tell six curves apart, and never pure RGB so tests can find the drawing colours).
pub const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];
/// Grid lines.
pub const GRID: RGBColor = RGBColor(220, 220, 220);
/// Text.
pub const INK: [u8; 3] = [0, 0, 0];
/// Secondary text.
pub const MUTED: [u8; 3] = [90, 90, 90];

/// Font sizes in pixels.
/// Titles.
pub const TITLE_PX: f32 = 19.0;
/// Axis names and legends.
pub const AXIS_PX: f32 = 15.0;
/// Tick labels and notes.
pub const TICK_PX: f32 = 13.0;

/// A palette colour as the bytes of an RGB pixel.
pub fn rgb(c: RGBColor) -> [u8; 3] {
    [c.0, c.1, c.2]
}

/// A chart on `area` with the margins and label room the single-panel plots (ROC,
/// histograms) share: room above for a title and legend, left and below for tick labels.
pub fn framed<'a, 'b, DB: DrawingBackend>(area: &'a DrawingArea<DB, Shift>) -> ChartBuilder<'a, 'b, DB> {
    let mut builder = ChartBuilder::on(area);
    builder.margin(20).margin_top(60).margin_right(30).x_label_area_size(50).y_label_area_size(60);
    builder
}

/// Text to place: pixel anchor (baseline), horizontal alignment (0 left, 0.5 centre, 1 right),
/// size and colour.
#[derive(Debug, Clone)]
pub struct Label {
    /// One line of text.
    pub text: String,
    /// Left/centre/right anchor and baseline, in pixels.
    pub at: (i32, i32),
    /// 0 left, 0.5 centre, 1 right of the anchor.
    pub align: f32,
    /// Size in pixels.
    pub px: f32,
    /// RGB.
    pub color: [u8; 3],
}

impl Label {
    /// A label (see the fields).
    pub fn new(text: impl Into<String>, at: (i32, i32), align: f32, px: f32, color: [u8; 3]) -> Self {
        Self { text: text.into(), at, align, px, color }
    }
}

fn font() -> FontRef<'static> {
    FontRef::try_from_slice(FONT_BYTES).expect("the bundled DejaVu Sans parses")
}

/// Width in pixels of `text` at `px`.
pub fn text_width(text: &str, px: f32) -> f32 {
    let font = font();
    let scaled = font.as_scaled(PxScale::from(px));
    text.chars().map(|c| scaled.h_advance(scaled.glyph_id(c))).sum()
}

/// Runs `chart` on a white-less RGB buffer of `size`, rasterises the labels it returns and
/// saves the PNG at `path`. Errors name the file.
pub fn render_png(
    path: &Path,
    size: (u32, u32),
    chart: impl FnOnce(&mut [u8]) -> Result<Vec<Label>, String>,
) -> Result<(), String> {
    let image = render(size, chart)?;
    image.save(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The same as [`render_png`], returning the image.
pub fn render(
    size: (u32, u32),
    chart: impl FnOnce(&mut [u8]) -> Result<Vec<Label>, String>,
) -> Result<image::RgbImage, String> {
    let (w, h) = size;
    let mut buffer = vec![0u8; (w * h * 3) as usize];
    let labels = chart(&mut buffer)?;
    let font = font();
    for label in &labels {
        draw_text(&mut buffer, size, &font, label);
    }
    image::RgbImage::from_raw(w, h, buffer).ok_or_else(|| "plot buffer has the wrong size".to_string())
}

/// Rasterises one line of text into an RGB buffer, blending by glyph coverage.
fn draw_text(buffer: &mut [u8], size: (u32, u32), font: &FontRef<'_>, label: &Label) {
    let scaled = font.as_scaled(PxScale::from(label.px));
    let width: f32 = label.text.chars().map(|c| scaled.h_advance(scaled.glyph_id(c))).sum();
    let mut caret = label.at.0 as f32 - width * label.align;
    let (w, h) = (size.0 as i32, size.1 as i32);
    for c in label.text.chars() {
        let id = scaled.glyph_id(c);
        let glyph = id.with_scale_and_position(label.px, point(caret, label.at.1 as f32));
        caret += scaled.h_advance(id);
        let Some(outline) = font.outline_glyph(glyph) else { continue };
        let bounds = outline.px_bounds();
        outline.draw(|gx, gy, coverage| {
            let (x, y) = (bounds.min.x as i32 + gx as i32, bounds.min.y as i32 + gy as i32);
            if (0..w).contains(&x) && (0..h).contains(&y) {
                let at = ((y * w + x) * 3) as usize;
                for (channel, target) in buffer[at..at + 3].iter_mut().zip(label.color) {
                    *channel = (f32::from(*channel) * (1.0 - coverage) + f32::from(target) * coverage).round() as u8;
                }
            }
        });
    }
}

/// Compact tick text: 0.001 → "1e-3", 0.5 → "0.5", 12 → "12".
pub fn tick_text(v: f64) -> String {
    if v != 0.0 && v.abs() < 0.01 {
        format!("1e{}", v.log10().round() as i32)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotters::prelude::*;

    #[test]
    fn labels_are_drawn_with_the_bundled_font_and_errors_name_the_file() {
        let size = (200, 60);
        let blank = render(size, |b| {
            BitMapBackend::with_buffer(b, size).into_drawing_area().fill(&WHITE).map_err(|e| e.to_string())?;
            Ok(vec![])
        })
        .unwrap();
        let text = render(size, |b| {
            BitMapBackend::with_buffer(b, size).into_drawing_area().fill(&WHITE).map_err(|e| e.to_string())?;
            Ok(vec![Label::new("ROC 0.99", (10, 40), 0.0, 24.0, INK)])
        })
        .unwrap();
        let dark = |img: &image::RgbImage| img.pixels().filter(|p| p.0.iter().all(|c| *c < 100)).count();
        assert_eq!(dark(&blank), 0);
        assert!(dark(&text) > 150, "{} dark pixels", dark(&text));
        // Wider text measures wider; centred text starts half its width left of the anchor.
        assert!(text_width("ROC 0.99", 24.0) > text_width("ROC", 24.0) * 2.0);
        let err = render_png(Path::new("/nonexistent/dir/x.png"), size, |_| Ok(vec![])).unwrap_err();
        assert!(err.contains("/nonexistent/dir/x.png"), "{err}");
    }

    #[test]
    fn ticks_read_as_people_write_them() {
        assert_eq!(tick_text(1e-3), "1e-3");
        assert_eq!(tick_text(1e-4), "1e-4");
        assert_eq!(tick_text(0.5), "0.5");
        assert_eq!(tick_text(0.25), "0.25");
        assert_eq!(tick_text(1.0), "1");
        assert_eq!(tick_text(12.0), "12");
    }
}
