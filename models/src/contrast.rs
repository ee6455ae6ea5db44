//! Contrast normalisation of a photo's luminance, for finding faces in dark or unevenly lit
//! photos. Only luminance (Rec. 601 Y) changes: in YCbCr every channel moves by the same amount
//! as Y, so each pixel's R, G and B are shifted by its Y's change and its colour is kept.

use image::{Rgb, RgbImage};

/// Rec. 601 luma, rounded to 8 bits.
pub fn luma(Rgb([r, g, b]): Rgb<u8>) -> u8 {
    (0.299 * r as f32 + 0.587 * g as f32 + 0.114 * b as f32).round().clamp(0.0, 255.0) as u8
}

/// The 256-bin histogram of an image's luma.
pub fn luma_histogram(img: &RgbImage) -> [u32; 256] {
    let mut h = [0u32; 256];
    for p in img.pixels() {
        h[luma(*p) as usize] += 1;
    }
    h
}

/// Global histogram equalisation of luma: the classic mapping
/// `y ↦ round(255 · (cdf(y) − cdf_min) / (N − cdf_min))`. A one-level image is returned as is.
pub fn equalize_luma(img: &RgbImage) -> RgbImage {
    let table = equalization_table(&luma_histogram(img));
    shift_luma(img, |_, _, y| table[y as usize])
}

/// The equalisation mapping of a histogram (identity when it has a single occupied level).
pub fn equalization_table(hist: &[u32; 256]) -> [u8; 256] {
    let total: u64 = hist.iter().map(|&c| c as u64).sum();
    let cdf_min = hist.iter().find(|&&c| c > 0).copied().unwrap_or(0) as u64;
    let mut table = [0u8; 256];
    if total <= cdf_min {
        for (v, t) in table.iter_mut().enumerate() {
            *t = v as u8;
        }
        return table;
    }
    let mut cdf = 0u64;
    for (v, t) in table.iter_mut().enumerate() {
        cdf += hist[v] as u64;
        let scaled = (cdf.saturating_sub(cdf_min)) as f64 * 255.0 / (total - cdf_min) as f64;
        *t = scaled.round() as u8;
    }
    table
}

/// Contrast-limited adaptive equalisation (CLAHE) of luma on a `tiles × tiles` grid: each tile's
/// histogram is clipped at `clip` times its mean bin count (the excess spread over all bins),
/// equalised, and each pixel's mapping interpolated bilinearly between the four nearest tiles.
pub fn clahe_luma(img: &RgbImage, tiles: u32, clip: f32) -> RgbImage {
    let (w, h) = img.dimensions();
    let tiles = tiles.clamp(1, w.min(h).max(1));
    let (tw, th) = (w.div_ceil(tiles), h.div_ceil(tiles));
    let mut tables = Vec::with_capacity((tiles * tiles) as usize);
    for ty in 0..tiles {
        for tx in 0..tiles {
            let mut hist = [0u32; 256];
            for y in ty * th..((ty + 1) * th).min(h) {
                for x in tx * tw..((tx + 1) * tw).min(w) {
                    hist[luma(*img.get_pixel(x, y)) as usize] += 1;
                }
            }
            tables.push(clipped_table(&mut hist, clip));
        }
    }
    let last = (tiles - 1) as f32;
    shift_luma(img, |x, y, v| {
        // Tile centres sit at (i + 0.5) · tile size; between them the four mappings blend.
        let fx = ((x as f32 + 0.5) / tw as f32 - 0.5).clamp(0.0, last);
        let fy = ((y as f32 + 0.5) / th as f32 - 0.5).clamp(0.0, last);
        let (x0, y0) = (fx.floor() as u32, fy.floor() as u32);
        let (x1, y1) = ((x0 + 1).min(tiles - 1), (y0 + 1).min(tiles - 1));
        let (ax, ay) = (fx - x0 as f32, fy - y0 as f32);
        let at = |tx: u32, ty: u32| tables[(ty * tiles + tx) as usize][v as usize] as f32;
        let top = at(x0, y0) * (1.0 - ax) + at(x1, y0) * ax;
        let bottom = at(x0, y1) * (1.0 - ax) + at(x1, y1) * ax;
        (top * (1.0 - ay) + bottom * ay).round() as u8
    })
}

/// Clips a tile histogram, spreads the excess evenly, and returns its cumulative mapping
/// `y ↦ round(255 · cdf(y) / N)` (CLAHE does not stretch from cdf_min).
fn clipped_table(hist: &mut [u32; 256], clip: f32) -> [u8; 256] {
    let total: u32 = hist.iter().sum();
    let mut table = [0u8; 256];
    if total == 0 {
        return table;
    }
    let limit = ((clip * total as f32 / 256.0).ceil() as u32).max(1);
    let mut excess = 0u32;
    for c in hist.iter_mut() {
        if *c > limit {
            excess += *c - limit;
            *c = limit;
        }
    }
    let (each, rest) = (excess / 256, excess % 256);
    let mut cdf = 0u32;
    for (v, t) in table.iter_mut().enumerate() {
        cdf += hist[v] + each + u32::from((v as u32) < rest);
        *t = (cdf as f32 * 255.0 / total as f32).round().min(255.0) as u8;
    }
    table
}

/// Brightens by `y ↦ 255 · (y / 255)^(1/γ)` with γ chosen so the mean luma lands at mid-grey
/// (no change for a photo that is already as bright or brighter).
pub fn gamma_lift(img: &RgbImage) -> RgbImage {
    let hist = luma_histogram(img);
    let n: u64 = hist.iter().map(|&c| c as u64).sum();
    let mean = hist.iter().enumerate().map(|(v, &c)| v as f64 * c as f64).sum::<f64>() / n.max(1) as f64;
    let m = (mean / 255.0).clamp(1e-3, 1.0);
    // (m)^(1/γ) = 0.5  ⇒  1/γ = ln 0.5 / ln m; never darken.
    let exponent = if m >= 0.5 { 1.0 } else { 0.5f64.ln() / m.ln() };
    let table: Vec<u8> = (0..256).map(|v| (255.0 * (v as f64 / 255.0).powf(exponent)).round() as u8).collect();
    shift_luma(img, |_, _, y| table[y as usize])
}

/// Each pixel's channels moved by `f(x, y, luma) − luma`, clamped to 0..=255.
fn shift_luma(img: &RgbImage, f: impl Fn(u32, u32, u8) -> u8) -> RgbImage {
    let mut out = img.clone();
    for (x, y, p) in out.enumerate_pixels_mut() {
        let y0 = luma(*p);
        let delta = f(x, y, y0) as i16 - y0 as i16;
        *p = Rgb(p.0.map(|c| (c as i16 + delta).clamp(0, 255) as u8));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gray(values: &[u8], w: u32) -> RgbImage {
        RgbImage::from_fn(w, values.len() as u32 / w, |x, y| {
            let v = values[(y * w + x) as usize];
            Rgb([v, v, v])
        })
    }

    #[test]
    fn equalisation_by_hand() {
        // Levels 10, 10, 20, 40: cdf 2, 3, 4, cdf_min 2, N 4.
        // 10 → 0, 20 → round(255 · 1/2) = 128, 40 → 255.
        let out = equalize_luma(&gray(&[10, 20, 10, 40], 2));
        let got: Vec<u8> = out.pixels().map(|p| p[0]).collect();
        assert_eq!(got, vec![0, 128, 0, 255]);
    }

    #[test]
    fn equalisation_moves_every_channel_by_the_luma_change() {
        // Three grey pixels at 40 and one (100, 80, 60): luma 29.9 + 46.96 + 6.84 = 83.7 → 84.
        // Levels 40 ×3, 84 ×1: cdf_min 3, N 4, so 40 → 0 and 84 → 255: the coloured pixel gains
        // 171 in every channel (clamped), the grey ones lose 40.
        let mut img = gray(&[40, 40, 40, 40], 2);
        img.put_pixel(1, 1, Rgb([100, 80, 60]));
        let out = equalize_luma(&img);
        assert_eq!(out.get_pixel(1, 1), &Rgb([255, 251, 231]));
        assert_eq!(out.get_pixel(0, 0), &Rgb([0, 0, 0]));
    }

    #[test]
    fn a_flat_image_is_left_alone() {
        let img = gray(&[77; 9], 3);
        assert_eq!(equalize_luma(&img), img);
    }

    #[test]
    fn gamma_lift_brings_the_mean_to_mid_grey() {
        // All pixels at 64: exponent ln 0.5 / ln(64/255) ≈ 0.502 → 255 · (0.251)^0.502 ≈ 127.5.
        let out = gamma_lift(&gray(&[64; 4], 2));
        assert!((127..=128).contains(&out.get_pixel(0, 0)[0]), "{:?}", out.get_pixel(0, 0));
        let bright = gray(&[200; 4], 2);
        assert_eq!(gamma_lift(&bright), bright);
    }

    #[test]
    fn clahe_on_one_tile_without_clipping_is_cumulative_equalisation() {
        // One tile, a clip too high to bite: mapping round(255 · cdf / N).
        // Levels 10, 10, 20, 40 → cdf 2, 3, 4 of 4 → 128, 191, 255.
        let out = clahe_luma(&gray(&[10, 20, 10, 40], 2), 1, 1000.0);
        let got: Vec<u8> = out.pixels().map(|p| p[0]).collect();
        assert_eq!(got, vec![128, 191, 128, 255]);
    }

    #[test]
    fn clahe_clipping_limits_the_stretch() {
        // 64 pixels at 50, 64 at 52: unclipped, 50 → 128 and 52 → 255. Clip 2 → limit
        // ceil(2 · 128 / 256) = 1 per bin; the 126 excess are spread over the 256 bins
        // (0 each, the first 126 bins one more). cdf(50) = 51 + 1 = 52 → round(255·52/128) = 104.
        let mut values = vec![50u8; 64];
        values.extend([52u8; 64]);
        let out = clahe_luma(&gray(&values, 16), 1, 2.0);
        assert_eq!(out.get_pixel(0, 0)[0], 104);
    }
}
