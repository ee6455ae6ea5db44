//! Folder-per-person datasets (LFW, Extended Yale B, ...) and random pairs
//! drawn from them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::pairs::ImagePair;
use super::EvalError;

const IMAGE_EXTENSIONS: [&str; 9] = [
    "jpg", "jpeg", "png", "pgm", "ppm", "pnm", "bmp", "gif", "webp",
];

/// One person's images, sorted by path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonImages {
    /// The person's folder name.
    pub name: String,
    /// Their images.
    pub images: Vec<PathBuf>,
}

/// Every sub-folder of `dir` with at least one image, sorted by name.
pub fn list_people(dir: &Path) -> Result<Vec<PersonImages>, EvalError> {
    let mut people = Vec::new();
    for folder in sorted_entries(dir)? {
        if !folder.is_dir() {
            continue;
        }
        let images: Vec<PathBuf> = sorted_entries(&folder)?
            .into_iter()
            .filter(|p| is_image(p))
            .collect();
        if !images.is_empty() {
            let name = folder
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            people.push(PersonImages { name, images });
        }
    }
    if people.is_empty() {
        return Err(EvalError::Dataset {
            dir: dir.to_path_buf(),
            reason: "no person folders with images".into(),
        });
    }
    Ok(people)
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, EvalError> {
    let read = std::fs::read_dir(dir).map_err(|e| EvalError::io(dir, e))?;
    let mut paths = read
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| EvalError::io(dir, e))?;
    paths.sort();
    Ok(paths)
}

fn is_image(path: &Path) -> bool {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    path.is_file() && ext.is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()))
}

/// `n` distinct random pairs, `round(n * same_ratio)` of them same-person,
/// shuffled so every fold gets a mix. Same pairs: a uniform person with at
/// least two images, two distinct images of theirs; different pairs: two
/// distinct uniform persons, one uniform image each. Deterministic per `seed`.
pub fn random_pairs(
    dir: &Path,
    n: usize,
    same_ratio: f64,
    seed: u64,
) -> Result<Vec<ImagePair>, EvalError> {
    let fail = |reason: String| EvalError::Dataset {
        dir: dir.to_path_buf(),
        reason,
    };
    if !(0.0..=1.0).contains(&same_ratio) {
        return Err(EvalError::Invalid(format!(
            "same ratio {same_ratio} is not in [0, 1]"
        )));
    }
    let people = list_people(dir)?;
    let n_same = (n as f64 * same_ratio).round() as usize;
    let n_diff = n - n_same;
    let several: Vec<&PersonImages> = people.iter().filter(|p| p.images.len() >= 2).collect();
    if n_same > 0 && several.is_empty() {
        return Err(fail(
            "no person has two images, so there are no same-person pairs".into(),
        ));
    }
    if n_diff > 0 && people.len() < 2 {
        return Err(fail(
            "fewer than two people, so there are no different-person pairs".into(),
        ));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut seen = HashSet::new();
    let mut pairs = Vec::with_capacity(n);
    // Draws until enough distinct pairs; a bounded number of attempts turns an
    // impossible request (more pairs than exist) into an error instead of a hang.
    let mut draw =
        |count: usize, same: bool, pairs: &mut Vec<ImagePair>| -> Result<(), EvalError> {
            let (mut made, mut attempts) = (0, 0);
            while made < count {
                attempts += 1;
                if attempts > 100 * count + 1000 {
                    let kind = if same {
                        "same-person"
                    } else {
                        "different-person"
                    };
                    return Err(fail(format!(
                        "could only draw {made} of {count} distinct {kind} pairs"
                    )));
                }
                let (left, right) = if same {
                    let person = several[rng.gen_range(0..several.len())];
                    let two: Vec<&PathBuf> = person.images.choose_multiple(&mut rng, 2).collect();
                    (two[0].clone(), two[1].clone())
                } else {
                    let a = rng.gen_range(0..people.len());
                    let b = (a + rng.gen_range(1..people.len())) % people.len();
                    (
                        people[a].images.choose(&mut rng).unwrap().clone(),
                        people[b].images.choose(&mut rng).unwrap().clone(),
                    )
                };
                let unordered = if left <= right {
                    (left.clone(), right.clone())
                } else {
                    (right.clone(), left.clone())
                };
                if seen.insert(unordered) {
                    pairs.push(ImagePair { left, right, same });
                    made += 1;
                }
            }
            Ok(())
        };
    draw(n_same, true, &mut pairs)?;
    draw(n_diff, false, &mut pairs)?;
    pairs.shuffle(&mut rng);
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(people: &[(&str, usize)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, count) in people {
            std::fs::create_dir(dir.path().join(name)).unwrap();
            for i in 1..=*count {
                std::fs::write(
                    dir.path().join(name).join(format!("{name}_{i:04}.jpg")),
                    b"x",
                )
                .unwrap();
            }
        }
        std::fs::write(dir.path().join("README.txt"), b"not a person").unwrap();
        dir
    }

    #[test]
    fn lists_people_sorted_with_images_only() {
        let dir = fixture(&[("Bob", 2), ("Alice", 3)]);
        std::fs::write(dir.path().join("Bob/notes.txt"), b"x").unwrap();
        let people = list_people(dir.path()).unwrap();
        assert_eq!(
            people.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            vec!["Alice", "Bob"]
        );
        assert_eq!(people[1].images.len(), 2);
        assert!(list_people(&dir.path().join("nope"))
            .unwrap_err()
            .to_string()
            .contains("nope"));
    }

    #[test]
    fn random_pairs_are_labelled_distinct_and_reproducible() {
        let dir = fixture(&[("A", 4), ("B", 3), ("C", 1), ("D", 5)]);
        let pairs = random_pairs(dir.path(), 30, 0.4, 7).unwrap();
        assert_eq!(pairs.len(), 30);
        assert_eq!(pairs.iter().filter(|p| p.same).count(), 12);
        for p in &pairs {
            assert_ne!(p.left, p.right);
            assert_eq!(p.left.parent() == p.right.parent(), p.same, "{p:?}");
        }
        let unique: HashSet<_> = pairs
            .iter()
            .map(|p| {
                (
                    p.left.clone().min(p.right.clone()),
                    p.left.clone().max(p.right.clone()),
                )
            })
            .collect();
        assert_eq!(unique.len(), 30);
        assert_eq!(pairs, random_pairs(dir.path(), 30, 0.4, 7).unwrap());
        assert_ne!(pairs, random_pairs(dir.path(), 30, 0.4, 8).unwrap());
        // The first 15 are not all one label: the shuffle mixes the folds.
        assert!(pairs[..15].iter().any(|p| p.same) && pairs[..15].iter().any(|p| !p.same));
    }

    #[test]
    fn impossible_requests_are_errors() {
        // Only one same pair exists (A has 2 images).
        let dir = fixture(&[("A", 2), ("B", 1)]);
        let err = random_pairs(dir.path(), 4, 0.5, 1).unwrap_err().to_string();
        assert!(
            err.contains("could only draw 1 of 2 distinct same-person pairs"),
            "{err}"
        );
        assert!(random_pairs(dir.path(), 4, 1.5, 1).is_err());
    }
}
