//! The three-stage cascade of facenet-pytorch's `detect_face`, over a batch of images.

use super::nms::{nms, Areas, Overlap};
use super::resample::{area_resize_into, opencv_area_resize_into, Planar};
use super::{Detection, Flavour, Mtcnn};
use crate::facenet::cpu::on_this_thread;
use candle_core::{Result, Tensor};
use image::RgbImage;
use rayon::prelude::*;
use std::collections::BTreeMap;

/// Candidates per R-/O-Net forward pass: keeps the activations cache-sized and bounds memory
/// on photos with many proposals.
const STAGE_BATCH: usize = 128;
/// Same-sized images per P-Net pass: larger batches only grow the im2col buffers past the
/// caches (64 at once was slower per image than one at a time).
const PNET_BATCH: usize = 4;
/// Photos per thread when a call detects in many: each group runs the whole cascade alone.
const GROUP: usize = 4;

/// A face candidate between stages.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    image: usize,
    bbox: [f32; 4],
    score: f32,
    /// Regression offsets predicted for `bbox`, not yet applied.
    reg: [f32; 4],
}

pub(super) fn run(m: &Mtcnn, imgs: &[RgbImage]) -> Result<Vec<Vec<Detection>>> {
    if imgs.len() <= GROUP {
        return cascade(m, imgs);
    }
    // Many photos: each group of them runs the whole cascade on one thread, which keeps its
    // pixels in cache; a single photo spreads its pyramid levels and candidates instead.
    let groups: Vec<Vec<Vec<Detection>>> = imgs
        .par_chunks(GROUP)
        .with_max_len(1)
        .map(|group| on_this_thread(|| cascade(m, group)))
        .collect::<Result<_>>()?;
    Ok(groups.into_iter().flatten().collect())
}

/// The three stages over `imgs`, R- and O-Net batched over the candidates of all of them.
fn cascade(m: &Mtcnn, imgs: &[RgbImage]) -> Result<Vec<Vec<Detection>>> {
    let planes: Vec<Planar> = imgs.iter().map(Planar::from_rgb).collect();
    let candidates = propose(m, &planes)?;
    let candidates = refine(m, &planes, candidates)?;
    let faces = output(m, &planes, candidates)?;
    let mut per_image = vec![Vec::new(); imgs.len()];
    for (image, det) in faces {
        per_image[image].push(det);
    }
    Ok(per_image)
}

/// Scales of the image pyramid: the smallest face maps to P-Net's 12 px window.
fn pyramid(width: usize, height: usize, min_face: f32, factor: f32) -> Vec<f32> {
    let m = 12.0 / min_face;
    let mut min_side = width.min(height) as f32 * m;
    let mut scale = m;
    let mut scales = Vec::new();
    while min_side >= 12.0 {
        scales.push(scale);
        scale *= factor;
        min_side *= factor;
    }
    scales
}

/// One side of a pyramid level.
fn level_side(side: usize, scale: f32, style: Flavour) -> usize {
    match style {
        Flavour::FacenetPytorch => (side as f32 * scale + 1.0) as usize,
        Flavour::Ipazc => (side as f64 * scale as f64).ceil() as usize,
    }
}

/// Stage 1: P-Net over the pyramid, NMS 0.5 per scale then 0.7 across scales, then the
/// regression is applied and boxes squared. Images of equal size share forward passes; the
/// (images, scale) passes run in parallel, each on one thread, since most levels are too small
/// for their layers to gain from splitting.
fn propose(m: &Mtcnn, planes: &[Planar]) -> Result<Vec<Candidate>> {
    let mut by_size: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();
    for (i, p) in planes.iter().enumerate() {
        by_size.entry((p.width, p.height)).or_default().push(i);
    }
    let mut levels = Vec::new();
    for ((w, h), members) in by_size {
        for chunk in members.chunks(PNET_BATCH) {
            for scale in pyramid(w, h, m.config.min_face, m.config.factor) {
                levels.push(((w, h), chunk.to_vec(), scale));
            }
        }
    }
    let found: Vec<Vec<Candidate>> = levels
        .par_iter()
        .with_max_len(1)
        .map(|(size, members, scale)| on_this_thread(|| pnet_level(m, planes, *size, members, *scale)))
        .collect::<Result<_>>()?;
    let mut per_image: Vec<Vec<Candidate>> = vec![Vec::new(); planes.len()];
    for c in found.into_iter().flatten() {
        per_image[c.image].push(c);
    }
    let mut out = Vec::new();
    for found in per_image {
        for mut c in suppress(found, 0.7, Overlap::Union, m.config.flavour.union_areas()) {
            // Stage-1 regression is relative to width without +1, unlike later stages.
            let (w, h) = (c.bbox[2] - c.bbox[0], c.bbox[3] - c.bbox[1]);
            c.bbox = [c.bbox[0] + c.reg[0] * w, c.bbox[1] + c.reg[1] * h, c.bbox[2] + c.reg[2] * w, c.bbox[3] + c.reg[3] * h];
            c.bbox = square(c.bbox);
            out.push(c);
        }
    }
    Ok(out)
}

/// P-Net on one pyramid level of same-sized images: their candidates after the per-scale NMS,
/// image by image.
fn pnet_level(m: &Mtcnn, planes: &[Planar], (w, h): (usize, usize), members: &[usize], scale: f32) -> Result<Vec<Candidate>> {
    let style = m.config.flavour;
    let (sw, sh) = (level_side(w, scale, style), level_side(h, scale, style));
    let mut batch = Vec::with_capacity(members.len() * 3 * sw * sh);
    for &i in members {
        match style {
            Flavour::FacenetPytorch => area_resize_into(&planes[i], (0, 0, w, h), (sw, sh), &mut batch),
            Flavour::Ipazc => opencv_area_resize_into(&planes[i], (sw, sh), true, &mut batch),
        }
    }
    let input = Tensor::from_vec(batch, (members.len(), 3, sh, sw), &m.device)?;
    let (reg, prob) = m.pnet.forward(&input)?;
    let reg = reg.to_host4()?;
    let prob = prob.to_host4()?;
    let (oh, ow) = (reg.dims.2, reg.dims.3);
    let mut out = Vec::new();
    for (n, &image) in members.iter().enumerate() {
        let found = windows(&reg.data, &prob.data, n, (ow, oh), scale, m.config.thresholds[0], image);
        let boxes: Vec<[f32; 4]> = found.iter().map(|c| c.bbox).collect();
        let scores: Vec<f32> = found.iter().map(|c| c.score).collect();
        let keep = nms(&boxes, &scores, 0.5, Overlap::Union, m.config.flavour.union_areas());
        out.extend(keep.into_iter().map(|k| found[k]));
    }
    Ok(out)
}

/// P-Net cells above threshold as boxes in source pixels (stride 2, 12 px cells).
fn windows(reg: &[f32], prob: &[f32], n: usize, (ow, oh): (usize, usize), scale: f32, threshold: f32, image: usize) -> Vec<Candidate> {
    let plane = ow * oh;
    let mut found = Vec::new();
    for y in 0..oh {
        for x in 0..ow {
            let at = y * ow + x;
            let score = prob[(n * 2 + 1) * plane + at];
            if score < threshold {
                continue;
            }
            let (fx, fy) = (x as f32, y as f32);
            let q1 = |v: f32| ((2.0 * v + 1.0) / scale).floor();
            let q2 = |v: f32| ((2.0 * v + 12.0) / scale).floor();
            let r = |k: usize| reg[(n * 4 + k) * plane + at];
            found.push(Candidate { image, bbox: [q1(fx), q1(fy), q2(fx), q2(fy)], score, reg: [r(0), r(1), r(2), r(3)] });
        }
    }
    found
}

/// NMS within each image, keeping the survivors best-first.
fn suppress(cands: Vec<Candidate>, threshold: f32, overlap: Overlap, areas: Areas) -> Vec<Candidate> {
    let mut by_image: BTreeMap<usize, Vec<Candidate>> = BTreeMap::new();
    for c in cands {
        by_image.entry(c.image).or_default().push(c);
    }
    let mut out = Vec::new();
    for (_, group) in by_image {
        let boxes: Vec<[f32; 4]> = group.iter().map(|c| c.bbox).collect();
        let scores: Vec<f32> = group.iter().map(|c| c.score).collect();
        out.extend(nms(&boxes, &scores, threshold, overlap, areas).into_iter().map(|k| group[k]));
    }
    out
}

/// Grows the shorter side so the box becomes a square around the same centre.
fn square(b: [f32; 4]) -> [f32; 4] {
    let (w, h) = (b[2] - b[0], b[3] - b[1]);
    let l = w.max(h);
    let (x1, y1) = (b[0] + w * 0.5 - l * 0.5, b[1] + h * 0.5 - l * 0.5);
    [x1, y1, x1 + l, y1 + l]
}

/// Applies later-stage regression (widths with +1).
fn regress(b: [f32; 4], reg: [f32; 4]) -> [f32; 4] {
    let (w, h) = (b[2] - b[0] + 1.0, b[3] - b[1] + 1.0);
    [b[0] + reg[0] * w, b[1] + reg[1] * h, b[2] + reg[2] * w, b[3] + reg[3] * h]
}

/// The pixel region facenet-pytorch cuts for a box: truncated 1-based corners clipped to the
/// image, or None when nothing of the box lies inside.
fn crop_region(b: [f32; 4], width: usize, height: usize) -> Option<(usize, usize, usize, usize)> {
    let x = (b[0].trunc() as i64).max(1);
    let y = (b[1].trunc() as i64).max(1);
    let ex = (b[2].trunc() as i64).min(width as i64);
    let ey = (b[3].trunc() as i64).min(height as i64);
    (ex > x - 1 && ey > y - 1).then(|| ((x - 1) as usize, (y - 1) as usize, ex as usize, ey as usize))
}

/// Cuts each candidate out of its image at `side × side` as one batch tensor, dropping the
/// candidates that lie outside their image.
fn crops(m: &Mtcnn, planes: &[Planar], cands: Vec<Candidate>, side: usize) -> Result<(Vec<Candidate>, Option<Tensor>)> {
    let mut kept = Vec::with_capacity(cands.len());
    let mut data = Vec::with_capacity(cands.len() * 3 * side * side);
    for mut c in cands {
        let p = &planes[c.image];
        if m.config.flavour == Flavour::Ipazc {
            // ipazc truncates the boxes themselves; regression and landmarks then build on them.
            c.bbox = c.bbox.map(f32::trunc);
        }
        let Some(region) = crop_region(c.bbox, p.width, p.height) else { continue };
        match m.config.flavour {
            Flavour::FacenetPytorch => area_resize_into(p, region, (side, side), &mut data),
            Flavour::Ipazc => {
                // The whole truncated box, 1-based inclusive corners, zeros outside the image.
                let (x, y) = (c.bbox[0].trunc() as i64, c.bbox[1].trunc() as i64);
                let (w, h) = ((c.bbox[2].trunc() as i64 - x + 1) as usize, (c.bbox[3].trunc() as i64 - y + 1) as usize);
                opencv_area_resize_into(&p.zero_padded((x - 1, y - 1), (w, h)), (side, side), false, &mut data);
            }
        }
        kept.push(c);
    }
    if kept.is_empty() {
        return Ok((kept, None));
    }
    let t = Tensor::from_vec(data, (kept.len(), 3, side, side), &m.device)?;
    Ok((kept, Some(t)))
}

/// Cuts the candidates out at `side × side` and runs `net` on them, in chunks of at most
/// `STAGE_BATCH` spread over the cores (each chunk on one thread). Returns the candidates that
/// lie at least partly inside their image and, per output of `net`, its rows for them.
fn rescore<const K: usize>(
    m: &Mtcnn,
    planes: &[Planar],
    cands: &[Candidate],
    side: usize,
    net: impl Fn(&Tensor) -> Result<[Tensor; K]> + Sync,
) -> Result<(Vec<Candidate>, [Vec<Vec<f32>>; K])> {
    let chunk = cands.len().div_ceil(rayon::current_num_threads()).clamp(1, STAGE_BATCH);
    let parts: Vec<(Vec<Candidate>, [Vec<Vec<f32>>; K])> = cands
        .par_chunks(chunk)
        .map(|part| {
            on_this_thread(|| {
                let (kept, Some(input)) = crops(m, planes, part.to_vec(), side)? else {
                    return Ok((Vec::new(), std::array::from_fn(|_| Vec::new())));
                };
                let outs = net(&input)?;
                let mut rows: [Vec<Vec<f32>>; K] = std::array::from_fn(|_| Vec::new());
                for (acc, t) in rows.iter_mut().zip(outs) {
                    *acc = t.to_vec2::<f32>()?;
                }
                Ok((kept, rows))
            })
        })
        .collect::<Result<_>>()?;
    let mut kept = Vec::with_capacity(cands.len());
    let mut rows: [Vec<Vec<f32>>; K] = std::array::from_fn(|_| Vec::with_capacity(cands.len()));
    for (part_kept, part_rows) in parts {
        kept.extend(part_kept);
        for (acc, r) in rows.iter_mut().zip(part_rows) {
            acc.extend(r);
        }
    }
    Ok((kept, rows))
}

/// Stage 2: R-Net rescoring, NMS 0.7, regression, squaring.
fn refine(m: &Mtcnn, planes: &[Planar], cands: Vec<Candidate>) -> Result<Vec<Candidate>> {
    let (cands, [reg, prob]) = rescore(m, planes, &cands, 24, |x| m.rnet.forward(x).map(|(r, p)| [r, p]))?;
    let passed: Vec<Candidate> = cands
        .iter()
        .zip(reg.iter().zip(&prob))
        .filter(|(_, (_, p))| p[1] > m.config.thresholds[1])
        .map(|(c, (r, p))| Candidate { score: p[1], reg: [r[0], r[1], r[2], r[3]], ..*c })
        .collect();
    Ok(suppress(passed, 0.7, Overlap::Union, m.config.flavour.union_areas())
        .into_iter()
        .map(|c| Candidate { bbox: square(regress(c.bbox, c.reg)), ..c })
        .collect())
}

/// Stage 3: O-Net rescoring and landmarks, regression, then NMS 0.7 'Min'.
fn output(m: &Mtcnn, planes: &[Planar], cands: Vec<Candidate>) -> Result<Vec<(usize, Detection)>> {
    let (cands, [reg, marks, prob]) = rescore(m, planes, &cands, 48, |x| m.onet.forward(x).map(|(r, l, p)| [r, l, p]))?;
    let mut found = Vec::new();
    for (i, c) in cands.iter().enumerate() {
        let score = prob[i][1];
        if score <= m.config.thresholds[2] {
            continue;
        }
        // Landmarks are relative to the (pre-regression) box, in 1-based pixels.
        let (w, h) = (c.bbox[2] - c.bbox[0] + 1.0, c.bbox[3] - c.bbox[1] + 1.0);
        let landmarks = std::array::from_fn(|k| [w * marks[i][k] + c.bbox[0] - 1.0, h * marks[i][k + 5] + c.bbox[1] - 1.0]);
        let bbox = regress(c.bbox, [reg[i][0], reg[i][1], reg[i][2], reg[i][3]]);
        found.push((c.image, Detection { bbox, prob: score, landmarks }));
    }
    let mut by_image: BTreeMap<usize, Vec<Detection>> = BTreeMap::new();
    for (image, d) in found {
        by_image.entry(image).or_default().push(d);
    }
    let mut out = Vec::new();
    for (image, dets) in by_image {
        let boxes: Vec<[f32; 4]> = dets.iter().map(|d| d.bbox).collect();
        let scores: Vec<f32> = dets.iter().map(|d| d.prob).collect();
        out.extend(nms(&boxes, &scores, 0.7, Overlap::Min, Areas::Inclusive).into_iter().map(|k| (image, dets[k])));
    }
    Ok(out)
}

/// A 4-d tensor copied to the host, row-major.
struct Flat4 {
    dims: (usize, usize, usize, usize),
    data: Vec<f32>,
}

trait ToHost4 {
    fn to_host4(&self) -> Result<Flat4>;
}

impl ToHost4 for Tensor {
    fn to_host4(&self) -> Result<Flat4> {
        Ok(Flat4 { dims: self.dims4()?, data: self.flatten_all()?.to_vec1::<f32>()? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyramid_for_a_250px_image() {
        // m = 0.6; 150 px first, shrinking by 0.709 while the side stays >= 12.
        let s = pyramid(250, 250, 20.0, 0.709);
        assert_eq!(s.len(), 8);
        assert!((s[0] - 0.6).abs() < 1e-6);
        assert!((s[7] - 0.6 * 0.709f32.powi(7)).abs() < 1e-6);
    }

    #[test]
    fn square_keeps_the_centre() {
        assert_eq!(square([10., 20., 30., 60.]), [0., 20., 40., 60.]);
    }

    #[test]
    fn crop_region_clips_like_facenet_pytorch() {
        assert_eq!(crop_region([-5.7, 3.2, 300.0, 40.9], 250, 200), Some((0, 2, 250, 40)));
        assert_eq!(crop_region([260.0, 3.0, 300.0, 40.0], 250, 200), None);
    }
}
