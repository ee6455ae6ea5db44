//! Non-maximum suppression in the two flavours facenet-pytorch mixes: torchvision's IoU
//! (areas without +1) for stages 1–2 and the original MATLAB-style 'Min' overlap (areas with
//! +1) after O-Net.

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Overlap {
    /// Intersection over union, box area = (x2 − x1)(y2 − y1), as torchvision.ops.nms.
    Union,
    /// Intersection over the smaller box, box area = (x2 − x1 + 1)(y2 − y1 + 1).
    Min,
}

/// Indices of the boxes kept, best score first. A box is dropped when its overlap with a
/// better kept box exceeds `threshold`.
pub fn nms(boxes: &[[f32; 4]], scores: &[f32], threshold: f32, overlap: Overlap) -> Vec<usize> {
    let plus = match overlap {
        Overlap::Union => 0.0,
        Overlap::Min => 1.0,
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
        assert_eq!(nms(&boxes, &scores, 0.5, Overlap::Union), vec![0, 1, 2]);
        assert_eq!(nms(&boxes, &scores, 0.3, Overlap::Union), vec![0, 2]);
    }

    #[test]
    fn min_overlap_drops_a_box_inside_another() {
        // The small box lies inside the big one: IoU is small but Min overlap is 1.
        let boxes = [[0., 0., 99., 99.], [10., 10., 19., 19.]];
        let scores = [0.5, 0.9];
        assert_eq!(nms(&boxes, &scores, 0.7, Overlap::Union), vec![1, 0]);
        assert_eq!(nms(&boxes, &scores, 0.7, Overlap::Min), vec![1]);
    }
}
