//! LFW pair lists: `pairs.txt` (View 2, header "10 300": 10 sets of 300 same
//! then 300 different pairs) and the View 1 files (`pairsDevTest.txt`, header
//! a single count N: N same then N different pairs).

use std::path::{Path, PathBuf};

use super::EvalError;

/// One image of a pair list: `DIR/name/name_%04d.jpg`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// The person's folder name.
    pub name: String,
    /// The image's number within the folder (from 1).
    pub number: u32,
}

/// A line of a pair list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairSpec {
    /// The first image.
    pub left: ImageRef,
    /// The second image.
    pub right: ImageRef,
    /// True for a same-person pair.
    pub same: bool,
}

/// The header of a pair list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PairsHeader {
    /// View 2: `sets` × (`per_set` same + `per_set` different).
    Sets {
        /// How many sets (folds).
        sets: usize,
        /// Same pairs per set (and as many different ones).
        per_set: usize,
    },
    /// View 1: `count` same + `count` different.
    Count(usize),
}

impl PairsHeader {
    /// How many pairs the header announces.
    pub fn expected_pairs(self) -> usize {
        match self {
            PairsHeader::Sets { sets, per_set } => 2 * sets * per_set,
            PairsHeader::Count(count) => 2 * count,
        }
    }
}

/// A pair list: its header and its pairs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairsFile {
    /// The header (View 2's sets, or View 1's count).
    pub header: PairsHeader,
    /// In file order. Evaluate [`PairsFile::fold_order`], not this.
    pub pairs: Vec<PairSpec>,
}

impl PairsFile {
    /// The pairs in the order whose contiguous blocks are the folds.
    ///
    /// View 2 keeps file order, so each fold is one of its sets (facenet's protocol).
    /// View 1 lists all its same pairs before all its different ones, so contiguous folds
    /// would each hold one label, and a threshold trained on the others could not be
    /// judged; there the two halves are interleaved, giving every fold both labels.
    pub fn fold_order(&self) -> Vec<PairSpec> {
        match self.header {
            PairsHeader::Sets { .. } => self.pairs.clone(),
            PairsHeader::Count(count) => {
                let (same, different) = self.pairs.split_at(count);
                same.iter()
                    .zip(different)
                    .flat_map(|(s, d)| [s.clone(), d.clone()])
                    .collect()
            }
        }
    }
}

/// A pair of image files with its label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImagePair {
    /// The first image file.
    pub left: PathBuf,
    /// The second image file.
    pub right: PathBuf,
    /// True for a same-person pair.
    pub same: bool,
}

/// Reads and checks a pair list (line count must match the header).
pub fn read_pairs(path: &Path) -> Result<PairsFile, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|e| EvalError::io(path, e))?;
    parse_pairs(&text, path)
}

/// Parses pair-list text; `path` only names the source in errors.
pub fn parse_pairs(text: &str, path: &Path) -> Result<PairsFile, EvalError> {
    let syntax = |line: usize, reason: String| EvalError::PairsSyntax {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty());
    let (header_line, header_text) = lines
        .next()
        .ok_or_else(|| syntax(1, "empty pair list".into()))?;
    let header = parse_header(header_text).map_err(|r| syntax(header_line, r))?;
    let pairs = lines
        .map(|(n, l)| parse_pair(l).map_err(|r| syntax(n, r)))
        .collect::<Result<Vec<_>, _>>()?;
    if pairs.len() != header.expected_pairs() {
        let last = text.lines().count();
        return Err(syntax(
            last,
            format!(
                "header {header_text:?} announces {} pairs but the file has {}",
                header.expected_pairs(),
                pairs.len()
            ),
        ));
    }
    Ok(PairsFile { header, pairs })
}

fn parse_header(text: &str) -> Result<PairsHeader, String> {
    let numbers: Vec<usize> = text
        .split_whitespace()
        .map(|f| {
            f.parse()
                .map_err(|_| format!("header field {f:?} is not a count"))
        })
        .collect::<Result<_, _>>()?;
    match numbers[..] {
        [sets, per_set] => Ok(PairsHeader::Sets { sets, per_set }),
        [count] => Ok(PairsHeader::Count(count)),
        _ => Err(format!(
            "header {text:?} must be \"SETS PER_SET\" or \"COUNT\""
        )),
    }
}

fn parse_pair(text: &str) -> Result<PairSpec, String> {
    let f: Vec<&str> = text.split_whitespace().collect();
    let number = |s: &str| {
        s.parse::<u32>()
            .map_err(|_| format!("image number {s:?} is not a positive integer"))
    };
    let image = |name: &str, n: &str| {
        Ok::<_, String>(ImageRef {
            name: name.to_string(),
            number: number(n)?,
        })
    };
    match f[..] {
        [name, a, b] => Ok(PairSpec {
            left: image(name, a)?,
            right: image(name, b)?,
            same: true,
        }),
        [name1, a, name2, b] => Ok(PairSpec {
            left: image(name1, a)?,
            right: image(name2, b)?,
            same: false,
        }),
        _ => Err(format!(
            "expected 3 fields (same person) or 4 (different people), found {}",
            f.len()
        )),
    }
}

/// `DIR/name/name_%04d.jpg`, or `.png` when only that exists (facenet's
/// `add_extension`, for aligned copies of LFW).
pub fn image_path(dir: &Path, image: &ImageRef) -> PathBuf {
    let stem = dir
        .join(&image.name)
        .join(format!("{}_{:04}", image.name, image.number));
    let jpg = stem.with_extension("jpg");
    let png = stem.with_extension("png");
    if !jpg.exists() && png.exists() {
        png
    } else {
        jpg
    }
}

/// Resolves every pair to files under `dir`. Missing images are an error that
/// lists them all: skipping pairs, as facenet does, would shift the folds.
pub fn resolve_lfw_pairs(dir: &Path, pairs: &[PairSpec]) -> Result<Vec<ImagePair>, EvalError> {
    let resolved: Vec<ImagePair> = pairs
        .iter()
        .map(|p| ImagePair {
            left: image_path(dir, &p.left),
            right: image_path(dir, &p.right),
            same: p.same,
        })
        .collect();
    let mut missing: Vec<PathBuf> = resolved
        .iter()
        .flat_map(|p| [&p.left, &p.right])
        .filter(|p| !p.is_file())
        .cloned()
        .collect();
    missing.sort();
    missing.dedup();
    if missing.is_empty() {
        Ok(resolved)
    } else {
        Err(EvalError::MissingImages {
            dir: dir.to_path_buf(),
            count: missing.len(),
            missing,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = "2 1\nAlice\t1\t2\nAlice 1 Bob 3\n\nBob 2 3\nCarol 1 Alice 2\n";

    #[test]
    fn parses_same_and_different_lines_in_order() {
        let file = parse_pairs(FIXTURE, Path::new("fixture.txt")).unwrap();
        assert_eq!(
            file.header,
            PairsHeader::Sets {
                sets: 2,
                per_set: 1
            }
        );
        let same: Vec<bool> = file.pairs.iter().map(|p| p.same).collect();
        assert_eq!(same, vec![true, false, true, false]);
        assert_eq!(
            file.pairs[1].right,
            ImageRef {
                name: "Bob".into(),
                number: 3
            }
        );
        assert_eq!(
            file.pairs[2].left,
            ImageRef {
                name: "Bob".into(),
                number: 2
            }
        );
    }

    #[test]
    fn view1_header_is_a_count() {
        let file = parse_pairs("1\nA 1 2\nA 1 B 1\n", Path::new("dev.txt")).unwrap();
        assert_eq!(file.header, PairsHeader::Count(1));
        assert_eq!(file.pairs.len(), 2);
    }

    #[test]
    fn view1_folds_interleave_same_and_different_pairs() {
        let text = "3\nA 1 2\nB 1 2\nC 1 2\nA 1 B 1\nB 2 C 1\nC 2 A 2\n";
        let file = parse_pairs(text, Path::new("dev.txt")).unwrap();
        let order = file.fold_order();
        let names: Vec<(&str, bool)> = order.iter().map(|p| (p.left.name.as_str(), p.same)).collect();
        assert_eq!(
            names,
            [("A", true), ("A", false), ("B", true), ("B", false), ("C", true), ("C", false)]
        );
        // Three folds of two: each holds one same and one different pair.
        for fold in crate::eval::folds::kfold_ranges(order.len(), 3) {
            assert_eq!(order[fold].iter().filter(|p| p.same).count(), 1);
        }
    }

    #[test]
    fn view2_folds_keep_file_order() {
        let file = parse_pairs(FIXTURE, Path::new("fixture.txt")).unwrap();
        assert_eq!(file.fold_order(), file.pairs);
    }

    #[test]
    fn errors_name_file_and_line() {
        let err = parse_pairs("1 1\nA 1 2\nA x B 1\n", Path::new("bad.txt"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("bad.txt:3:"), "{err}");
        assert!(err.contains("\"x\""), "{err}");
        let err = parse_pairs("1 1\nA 1 2 3 4 5\n", Path::new("bad.txt"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.txt:2: expected 3 fields"), "{err}");
        let err = parse_pairs("1 2\nA 1 2\nA 1 B 1\n", Path::new("short.txt"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("announces 4 pairs but the file has 2"),
            "{err}"
        );
        assert!(parse_pairs("", Path::new("empty.txt")).is_err());
    }

    #[test]
    fn missing_images_are_listed_by_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("Alice")).unwrap();
        std::fs::write(dir.path().join("Alice/Alice_0001.jpg"), b"x").unwrap();
        std::fs::write(dir.path().join("Alice/Alice_0002.png"), b"x").unwrap();
        let file = parse_pairs("1 1\nAlice 1 2\nAlice 1 Bob 7\n", Path::new("p.txt")).unwrap();
        let err = resolve_lfw_pairs(dir.path(), &file.pairs).unwrap_err();
        match &err {
            EvalError::MissingImages { count, missing, .. } => {
                assert_eq!(*count, 1);
                assert!(missing[0].ends_with("Bob/Bob_0007.jpg"));
            }
            other => panic!("unexpected {other}"),
        }
        assert!(err.to_string().contains("Bob_0007.jpg"));
        // The .png fallback resolves Alice_0002.
        let ok = resolve_lfw_pairs(dir.path(), &file.pairs[..1]).unwrap();
        assert!(ok[0].right.ends_with("Alice/Alice_0002.png"));
    }
}
