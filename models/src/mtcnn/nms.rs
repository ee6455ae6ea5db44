//! Non-maximum suppression with the two overlap measures of MTCNN ('Union' for stages 1–2,
//! 'Min' after O-Net) and the two area conventions its implementations use: the original
//! MATLAB-style `x2 − x1 + 1` (ipazc, and facenet-pytorch's 'Min') and torchvision's
//! `x2 − x1` (facenet-pytorch's 'Union').

/// How the overlap of two boxes is measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Overlap {
    /// Intersection over union.
    Union,
    /// Intersection over the smaller box.
    Min,
}

/// How a box's width is measured from its corners.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Areas {
    /// `x2 − x1 + 1`: corners are pixel indices, both inside the box.
    Inclusive,
    /// `x2 − x1`, as torchvision.ops.nms.
    Exclusive,
}

/// Indices of the boxes kept, best score first. A box is dropped when its overlap with a
/// better kept box exceeds `threshold`.
pub fn nms(boxes: &[[f32; 4]], scores: &[f32], threshold: f32, overlap: Overlap, areas: Areas) -> Vec<usize> {
    let plus = match areas {
        Areas::Inclusive => 1.0,
        Areas::Exclusive => 0.0,
    };
    let area = |b: &[f32; 4]| (b[2] - b[0] + plus) * (b[3] - b[1] + plus);
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut suppressed = vec![false; boxes.len()];
    let mut keep = Vec::new();
    for (rank, &i) in order.iter().enumerate() {
        if suppressed[i] {
            continue;
        }
        keep.push(i);
        let a = &boxes[i];
        for &j in &order[rank + 1..] {
            if suppressed[j] {
                continue;
            }
            let b = &boxes[j];
            let w = (a[2].min(b[2]) - a[0].max(b[0]) + plus).max(0.0);
            let h = (a[3].min(b[3]) - a[1].max(b[1]) + plus).max(0.0);
            let inter = w * h;
            let o = match overlap {
                Overlap::Union => inter / (area(a) + area(b) - inter),
                Overlap::Min => inter / area(a).min(area(b)),
            };
            if o > threshold {
                suppressed[j] = true;
            }
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_suppresses_only_above_threshold() {
        // Box 1 overlaps box 0 with IoU 50/150 = 0.333; box 2 is disjoint.
        let boxes = [[0., 0., 10., 10.], [5., 0., 15., 10.], [20., 20., 30., 30.]];
        let scores = [0.9, 0.8, 0.7];
        assert_eq!(nms(&boxes, &scores, 0.5, Overlap::Union, Areas::Exclusive), vec![0, 1, 2]);
        assert_eq!(nms(&boxes, &scores, 0.3, Overlap::Union, Areas::Exclusive), vec![0, 2]);
    }

    #[test]
    fn inclusive_areas_count_the_edge_pixels() {
        // Exclusive: 50 / 150 = 0.333. Inclusive: 6·11 / (2·121 − 66) = 66 / 176 = 0.375.
        let boxes = [[0., 0., 10., 10.], [5., 0., 15., 10.]];
        let scores = [0.9, 0.8];
        assert_eq!(nms(&boxes, &scores, 0.35, Overlap::Union, Areas::Exclusive), vec![0, 1]);
        assert_eq!(nms(&boxes, &scores, 0.35, Overlap::Union, Areas::Inclusive), vec![0]);
    }

    #[test]
    fn min_overlap_drops_a_box_inside_another() {
        // The small box lies inside the big one: IoU is small but Min overlap is 1.
        let boxes = [[0., 0., 99., 99.], [10., 10., 19., 19.]];
        let scores = [0.5, 0.9];
        assert_eq!(nms(&boxes, &scores, 0.7, Overlap::Union, Areas::Inclusive), vec![1, 0]);
        assert_eq!(nms(&boxes, &scores, 0.7, Overlap::Min, Areas::Inclusive), vec![1]);
    }
}
