//! The pairs an evaluation gets wrong at a threshold, worst first: different people accepted
//! (false accepts, nearest first) and the same person rejected (false rejects, farthest first).

/// A wrongly decided pair: its index in the pairs, and its distance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mistake {
    /// Index into the evaluated pairs.
    pub pair: usize,
    /// The pair's distance.
    pub distance: f64,
}

/// At most `n` false accepts and `n` false rejects at `threshold` (same when `d < threshold`).
/// A NaN distance is never accepted, so a genuine pair with one is the worst reject.
pub fn worst(distances: &[f64], same: &[bool], threshold: f64, n: usize) -> (Vec<Mistake>, Vec<Mistake>) {
    let pairs = distances.iter().zip(same).enumerate().map(|(pair, (d, s))| (Mistake { pair, distance: *d }, *s));
    let (mut accepts, mut rejects): (Vec<Mistake>, Vec<Mistake>) = (Vec::new(), Vec::new());
    for (m, s) in pairs {
        let accepted = m.distance < threshold;
        if !s && accepted {
            accepts.push(m);
        } else if s && !accepted {
            rejects.push(m);
        }
    }
    let key = |m: &Mistake| if m.distance.is_nan() { f64::INFINITY } else { m.distance };
    accepts.sort_by(|a, b| key(a).total_cmp(&key(b)).then(a.pair.cmp(&b.pair)));
    rejects.sort_by(|a, b| key(b).total_cmp(&key(a)).then(a.pair.cmp(&b.pair)));
    accepts.truncate(n);
    rejects.truncate(n);
    (accepts, rejects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_come_first_and_right_answers_never_appear() {
        // threshold 1.0: pair 0 different at 0.9 and pair 3 different at 0.2 are accepted
        // (0.2 worst); pairs 1 (1.5) and 4 (NaN) are same-person rejects (NaN worst); pair 2
        // (same, 0.5) and pair 5 (different, 1.7) are right.
        let d = [0.9, 1.5, 0.5, 0.2, f64::NAN, 1.7];
        let same = [false, true, true, false, true, false];
        let (fa, fr) = worst(&d, &same, 1.0, 10);
        assert_eq!(fa.iter().map(|m| m.pair).collect::<Vec<_>>(), vec![3, 0]);
        assert_eq!(fr.iter().map(|m| m.pair).collect::<Vec<_>>(), vec![4, 1]);
        let (fa, fr) = worst(&d, &same, 1.0, 1);
        assert_eq!((fa[0].pair, fr[0].pair), (3, 4));
        // Exactly at the threshold is a reject ("same when d < threshold").
        let (fa, fr) = worst(&[1.0, 1.0], &[true, false], 1.0, 5);
        assert_eq!((fa.len(), fr.len()), (0, 1));
    }
}
