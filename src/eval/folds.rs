//! Fold boundaries of sklearn's `KFold(n_splits=k, shuffle=False)`: contiguous
//! blocks in input order, the first `n % k` folds one element larger.

use std::ops::Range;

/// The test-set ranges of each fold, in order.
pub fn kfold_ranges(n: usize, k: usize) -> Vec<Range<usize>> {
    let (base, extra) = (n / k, n % k);
    let mut start = 0;
    (0..k)
        .map(|fold| {
            let len = base + usize::from(fold < extra);
            let range = start..start + len;
            start += len;
            range
        })
        .collect()
}

/// Indices outside `test`, i.e. the training set of that fold.
pub fn train_indices(n: usize, test: &Range<usize>) -> impl Iterator<Item = usize> + '_ {
    (0..n).filter(move |i| !test.contains(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_sklearn_kfold() {
        // sklearn: KFold(10).split(range(23)) -> sizes [3,3,3,2,2,2,2,2,2,2].
        let folds = kfold_ranges(23, 10);
        let sizes: Vec<usize> = folds.iter().map(|r| r.len()).collect();
        assert_eq!(sizes, vec![3, 3, 3, 2, 2, 2, 2, 2, 2, 2]);
        assert_eq!(folds[0], 0..3);
        assert_eq!(folds[3], 9..11);
        assert_eq!(folds[9], 21..23);
        assert_eq!(train_indices(23, &folds[0]).next(), Some(3));
        assert_eq!(train_indices(23, &folds[3]).count(), 21);
    }

    #[test]
    fn lfw_folds_are_600_each() {
        assert!(kfold_ranges(6000, 10).iter().all(|r| r.len() == 600));
    }
}
