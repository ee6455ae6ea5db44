//! 4-bit codes of unit vectors, for ranking points during the graph walk.
//!
//! A search reads a few thousand scattered rows, and on these machines each row costs a memory
//! round trip, so the walk's speed is set by the bytes per row: 256 bytes for 512 dimensions
//! here, against 512 for int8 and 2048 for f32. The ranking this gives is approximate (a
//! squared-L2 error of ~0.01 where neighbours differ by tenths), and the points the walk keeps
//! are re-ranked with the exact f32 distance, so recall does not depend on it.
//!
//! Each dimension is quantised around its mean over the indexed points, in steps of a fixed
//! fraction of its spread, to 15 levels: `x ≈ mean + (u - 8) · step` with `u` in 1..=15. Then
//! `q·x ≈ q·mean + Σ (q_i · step_i) · u_i - 8 Σ q_i · step_i`, and only the middle sum depends on
//! the point, so a query ranks points by `Σ w_i · u_i` with `w_i = q_i · step_i` rounded to int8.

/// Dimensions per block: a block is 32 bytes, dimension `j` of the block in the low nibble of
/// byte `j` and dimension `32 + j` in its high nibble (so a 32-byte load unpacks without shuffles).
const BLOCK_DIMS: usize = 64;
pub(crate) const BLOCK_BYTES: usize = BLOCK_DIMS / 2;
/// Levels span ±CLIP standard deviations of a dimension; 2.7 is the classic optimum for 16 levels
/// of a Gaussian (rounding error against clipping error).
const CLIP: f32 = 2.7;
const MID: i32 = 8;

/// How the vectors of one index are coded.
pub(crate) struct NibbleCodes {
    dim: usize,
    mean: Vec<f32>,
    step: Vec<f32>,
}

/// A query prepared for scoring: its weights in block order, padded to whole blocks.
pub(crate) struct QueryWeights(Vec<i8>);

impl NibbleCodes {
    /// Fits the per-dimension mean and step to `rows` (`n × dim`, row-major).
    pub(crate) fn fit(rows: &[f32], dim: usize) -> Self {
        let n = (rows.len() / dim.max(1)).max(1) as f64;
        let mut sum = vec![0f64; dim];
        let mut sum_sq = vec![0f64; dim];
        for row in rows.chunks_exact(dim) {
            for (i, &x) in row.iter().enumerate() {
                sum[i] += x as f64;
                sum_sq[i] += (x as f64) * (x as f64);
            }
        }
        let mean: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
        let step = (0..dim)
            .map(|i| {
                let var = (sum_sq[i] / n - (sum[i] / n).powi(2)).max(0.0);
                let step = (CLIP as f64 * var.sqrt() / (MID - 1) as f64) as f32;
                // A constant dimension: any step codes it exactly at the mean.
                if step > 0.0 { step } else { 1.0 }
            })
            .collect();
        NibbleCodes { dim, mean, step }
    }

    /// Bytes per coded row.
    pub(crate) fn row_bytes(&self) -> usize {
        self.dim.div_ceil(BLOCK_DIMS) * BLOCK_BYTES
    }

    /// Appends the code of `v` (length `dim`) to `out`.
    pub(crate) fn encode_into(&self, v: &[f32], out: &mut Vec<u8>) {
        let level = |i: usize| -> u8 {
            match v.get(i) {
                Some(&x) => ((x - self.mean[i]) / self.step[i]).round().clamp(1.0 - MID as f32, (MID - 1) as f32) as i32 as u8,
                None => 0, // padding dimension: the mean, with weight 0
            }
            .wrapping_add(MID as u8)
        };
        for block in 0..self.row_bytes() / BLOCK_BYTES {
            let base = block * BLOCK_DIMS;
            out.extend((0..BLOCK_BYTES).map(|j| level(base + j) | level(base + BLOCK_BYTES + j) << 4));
        }
    }

    pub(crate) fn query(&self, q: &[f32]) -> QueryWeights {
        let padded = self.row_bytes() * 2;
        let w: Vec<f32> = (0..padded).map(|i| q.get(i).map_or(0.0, |x| x * self.step[i])).collect();
        let max_abs = w.iter().fold(0f32, |m, x| m.max(x.abs()));
        let scale = if max_abs > 0.0 { 127.0 / max_abs } else { 0.0 };
        QueryWeights(w.iter().map(|x| (x * scale).round() as i8).collect())
    }
}

/// `Σ w_i · u_i` over a coded row: larger means nearer. Exact in i32 (|sum| ≤ 127 · 15 · dim).
pub(crate) fn score(q: &QueryWeights, row: &[u8]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, and `score_avx2` reads only within both slices.
            return unsafe { score_avx2(&q.0, row) };
        }
    }
    score_plain(&q.0, row)
}

fn score_plain(w: &[i8], row: &[u8]) -> i32 {
    let mut sum = 0i32;
    for (bytes, w) in row.chunks_exact(BLOCK_BYTES).zip(w.chunks_exact(BLOCK_DIMS)) {
        let (w_lo, w_hi) = w.split_at(BLOCK_BYTES);
        for j in 0..BLOCK_BYTES {
            sum += (bytes[j] & 0x0f) as i32 * w_lo[j] as i32 + (bytes[j] >> 4) as i32 * w_hi[j] as i32;
        }
    }
    sum
}

/// One block per step: both nibble halves unpacked by mask and shift, multiplied with
/// `maddubs` (u8 × i8 pairs summed to i16: at most 2 · 15 · 127 per pair, twice, fits) and
/// widened to i32 with `madd`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn score_avx2(w: &[i8], row: &[u8]) -> i32 {
    use std::arch::x86_64::*;
    let blocks = (row.len() / BLOCK_BYTES).min(w.len() / BLOCK_DIMS);
    let mask = _mm256_set1_epi8(0x0f);
    let ones = _mm256_set1_epi16(1);
    let mut acc = _mm256_setzero_si256();
    for b in 0..blocks {
        let v = _mm256_loadu_si256(row.as_ptr().add(b * BLOCK_BYTES) as *const __m256i);
        let lo = _mm256_and_si256(v, mask);
        let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(v), mask);
        let w_lo = _mm256_loadu_si256(w.as_ptr().add(b * BLOCK_DIMS) as *const __m256i);
        let w_hi = _mm256_loadu_si256(w.as_ptr().add(b * BLOCK_DIMS + BLOCK_BYTES) as *const __m256i);
        let pairs = _mm256_add_epi16(_mm256_maddubs_epi16(lo, w_lo), _mm256_maddubs_epi16(hi, w_hi));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, ones));
    }
    let halves = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256::<1>(acc));
    let pairs = _mm_add_epi32(halves, _mm_shuffle_epi32::<0b01_00_11_10>(halves));
    let one = _mm_add_epi32(pairs, _mm_shuffle_epi32::<0b10_11_00_01>(pairs));
    _mm_cvtsi128_si32(one)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn unit_rows(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut rows = Vec::with_capacity(n * dim);
        for _ in 0..n {
            let v: Vec<f32> = (0..dim).map(|_| rng.gen_range(-1.0f32..1.0) + 0.2).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            rows.extend(v.iter().map(|x| x / norm));
        }
        rows
    }

    #[test]
    fn a_hand_computed_block() {
        // dim 3, padded to one block of 64: mean 0, step 0.5 in every dimension.
        let codes = NibbleCodes { dim: 3, mean: vec![0.0; 3], step: vec![0.5; 3] };
        let mut row = Vec::new();
        codes.encode_into(&[1.0, -0.5, 9.0], &mut row);
        assert_eq!(row.len(), 32);
        // levels 2, -1, and 9 clipped to 7, each + 8; padding is level 0 + 8.
        assert_eq!(&row[..4], &[10 | 8 << 4, 7 | 8 << 4, 15 | 8 << 4, 8 | 8 << 4]);
        let q = codes.query(&[2.0, 1.0, 0.0]);
        // w = (1.0, 0.5, 0) scaled to (127, 64, 0)
        assert_eq!(&q.0[..3], &[127, 64, 0]);
        // Only dimensions 0 and 1 have weight: 127 · 10 + 64 · 7.
        let expected = 1718;
        assert_eq!(score_plain(&q.0, &row), expected);
        assert_eq!(score(&q, &row), expected);
    }

    #[test]
    fn the_vector_kernel_equals_the_plain_loop() {
        for dim in [64, 100, 512] {
            let rows = unit_rows(50, dim, dim as u64);
            let codes = NibbleCodes::fit(&rows, dim);
            let mut coded = Vec::new();
            rows.chunks_exact(dim).for_each(|r| codes.encode_into(r, &mut coded));
            let q = codes.query(&rows[..dim]);
            for row in coded.chunks_exact(codes.row_bytes()) {
                assert_eq!(score(&q, row), score_plain(&q.0, row));
            }
        }
    }

    #[test]
    fn scores_rank_like_the_exact_distance() {
        let dim = 512;
        let rows = unit_rows(400, dim, 7);
        let codes = NibbleCodes::fit(&rows, dim);
        let mut coded = Vec::new();
        rows.chunks_exact(dim).for_each(|r| codes.encode_into(r, &mut coded));
        let query = &unit_rows(1, dim, 8)[..];
        let q = codes.query(query);
        let exact: Vec<f32> = rows.chunks_exact(dim).map(|r| r.iter().zip(query).map(|(a, b)| a * b).sum()).collect();
        let approx: Vec<f32> = coded.chunks_exact(codes.row_bytes()).map(|r| score(&q, r) as f32).collect();
        // Spearman-style check: the approximate order agrees with the exact one almost everywhere.
        let rank = |v: &[f32]| {
            let mut idx: Vec<usize> = (0..v.len()).collect();
            idx.sort_by(|&a, &b| v[b].total_cmp(&v[a]));
            let mut r = vec![0usize; v.len()];
            idx.iter().enumerate().for_each(|(pos, &i)| r[i] = pos);
            r
        };
        let (re, ra) = (rank(&exact), rank(&approx));
        let d2: f64 = re.iter().zip(&ra).map(|(a, b)| (*a as f64 - *b as f64).powi(2)).sum();
        let n = rows.len() as f64 / dim as f64;
        let rho = 1.0 - 6.0 * d2 / (n * (n * n - 1.0));
        assert!(rho > 0.99, "rank correlation {rho}");
        // The exact nearest is within the approximate top 3.
        let best = re.iter().position(|&r| r == 0).unwrap();
        assert!(ra[best] < 3, "exact nearest ranks {} by code", ra[best]);
    }
}
