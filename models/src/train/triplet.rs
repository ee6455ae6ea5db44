//! The triplet loss of FaceNet (Schroff et al. 2015, eq. 1).

use candle_core::{Result, Tensor, D};

/// Mean over triplets of max(0, ‖a−p‖² − ‖a−n‖² + α), for `[T, D]` anchors, positives and negatives.
pub fn triplet_loss(anchor: &Tensor, positive: &Tensor, negative: &Tensor, alpha: f64) -> Result<Tensor> {
    let d_ap = (anchor - positive)?.sqr()?.sum(D::Minus1)?;
    let d_an = (anchor - negative)?.sqr()?.sum(D::Minus1)?;
    ((d_ap - d_an)? + alpha)?.relu()?.mean_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn loss_and_gradient_match_a_hand_computation() -> Result<()> {
        let dev = Device::Cpu;
        // Triplet 1: a=(1,0) p=(0.6,0.8) n=(0,1): d_ap = 0.16+0.64 = 0.8, d_an = 2 → 0.8−2+0.2 < 0 → 0.
        // Triplet 2: a=(1,0) p=(0,1) n=(0.8,0.6): d_ap = 2, d_an = 0.04+0.36 = 0.4 → 2−0.4+0.2 = 1.8.
        let a = Var::from_vec(vec![1f32, 0., 1., 0.], (2, 2), &dev)?;
        let p = Tensor::from_vec(vec![0.6f32, 0.8, 0., 1.], (2, 2), &dev)?;
        let n = Tensor::from_vec(vec![0f32, 1., 0.8, 0.6], (2, 2), &dev)?;
        let loss = triplet_loss(a.as_tensor(), &p, &n, 0.2)?;
        assert!((loss.to_scalar::<f32>()? - 0.9).abs() < 1e-6); // mean of 0 and 1.8
        // d/da of (‖a−p‖² − ‖a−n‖²)/2 for the active triplet = (2(a−p) − 2(a−n))/2 = n − p = (0.8, −0.4);
        // the inactive triplet contributes nothing.
        let grads = loss.backward()?;
        let g = grads.get(a.as_tensor()).expect("a is a variable").to_vec2::<f32>()?;
        assert_eq!(g[0], vec![0.0, 0.0]);
        assert!((g[1][0] - 0.8).abs() < 1e-6 && (g[1][1] + 0.4).abs() < 1e-6, "{g:?}");
        Ok(())
    }
}
