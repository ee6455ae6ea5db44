//! Pair lists on the real LFW files, the embedding pipeline (cache, flip,
//! failures) with a fake embedder, and the report outputs.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use fdb::eval::report::write_roc_csv;
use fdb::eval::source::EmbedRun;
use fdb::eval::{
    embed_pairs, evaluate, read_pairs, resolve_lfw_pairs, EmbedSource,
    EmbeddingCache, EvalError, EvalOptions, FlipMode, FnSource, ImagePair, SourceId,
};

mod common;

#[test]
fn lfw_pairs_txt_has_6000_pairs_over_7701_images() {
    let Some(shared) = common::shared_with(&["datasets/lfw/pairs.txt", "datasets/lfw/images"]) else { return };
    let lfw = shared.join("datasets/lfw");
    let file = read_pairs(&lfw.join("pairs.txt")).unwrap();
    assert_eq!(file.pairs.len(), 6000);
    // File order: each set of 600 is 300 same then 300 different.
    for fold in file.pairs.chunks(600) {
        assert!(fold[..300].iter().all(|p| p.same) && fold[300..].iter().all(|p| !p.same));
    }
    let pairs = resolve_lfw_pairs(&lfw.join("images"), &file.pairs).unwrap();
    let mut images: Vec<&PathBuf> = pairs.iter().flat_map(|p| [&p.left, &p.right]).collect();
    images.sort();
    images.dedup();
    assert_eq!(images.len(), 7701);
    assert!(pairs[0]
        .left
        .ends_with("Abel_Pacheco/Abel_Pacheco_0001.jpg"));
    assert!(pairs[0]
        .right
        .ends_with("Abel_Pacheco/Abel_Pacheco_0004.jpg"));

    let dev = read_pairs(&lfw.join("pairsDevTest.txt")).unwrap();
    assert_eq!(
        (dev.pairs.len(), dev.pairs.iter().filter(|p| p.same).count()),
        (1000, 500)
    );
    // Against the wrong directory every image is reported missing, by name.
    match resolve_lfw_pairs(&lfw, &file.pairs[..2]) {
        Err(EvalError::MissingImages {
            count: 4, missing, ..
        }) => assert!(missing[0].ends_with("Abel_Pacheco/Abel_Pacheco_0001.jpg")),
        other => panic!("expected 4 missing images, got {other:?}"),
    }
}

/// Ten people of two images in a temp dir; the fake embedder maps a file to a direction
/// given by its contents (one byte), mirrored crops to a slightly rotated one.
fn fixture() -> (tempfile::TempDir, Vec<ImagePair>) {
    let dir = tempfile::tempdir().unwrap();
    let mut pairs = Vec::new();
    for person in 0..10u8 {
        let folder = dir.path().join(format!("p{person}"));
        std::fs::create_dir(&folder).unwrap();
        for i in 0..2u8 {
            std::fs::write(folder.join(format!("{i}.jpg")), [person * 10 + i]).unwrap();
        }
        let (a, b) = (folder.join("0.jpg"), folder.join("1.jpg"));
        pairs.push(ImagePair {
            left: a.clone(),
            right: b,
            same: true,
        });
        let other = dir
            .path()
            .join(format!("p{}", (person + 1) % 10))
            .join("0.jpg");
        pairs.push(ImagePair {
            left: a,
            right: other,
            same: false,
        });
    }
    (dir, pairs)
}

fn fake_embedding(path: &Path, mirrored: bool) -> Result<Vec<f32>, String> {
    let byte = *std::fs::read(path)
        .map_err(|e| e.to_string())?
        .first()
        .ok_or("empty file")?;
    // Person p sits at angle p*0.5 rad, image i adds 0.05 rad; mirroring adds 0.01.
    let angle = f32::from(byte / 10) * 0.5
        + f32::from(byte % 10) * 0.05
        + if mirrored { 0.01 } else { 0.0 };
    Ok(vec![angle.cos(), angle.sin()])
}

fn fake_source() -> impl EmbedSource {
    FnSource::new(id(), |paths: &[PathBuf], m| {
        paths.iter().map(|p| fake_embedding(p, m)).collect()
    })
}

fn id() -> SourceId {
    SourceId {
        model: "fake".into(),
        align: "crop".into(),
    }
}

#[test]
fn cache_makes_the_second_run_embed_nothing() {
    let (dir, pairs) = fixture();
    let calls = RefCell::new(0usize);
    let mut source = FnSource::new(id(), |paths: &[PathBuf], mirrored| {
        *calls.borrow_mut() += paths.len();
        paths.iter().map(|p| fake_embedding(p, mirrored)).collect()
    });
    let cache_path = dir.path().join("emb.cache");
    let mut progress_seen = Vec::new();
    let mut cache = EmbeddingCache::open(&cache_path).unwrap();
    let first = embed_pairs(
        &pairs,
        &mut source,
        EmbedRun::new(FlipMode::Concat)
            .with_batch_size(7)
            .with_cache(&mut cache)
            .with_progress(|d, t| progress_seen.push((d, t))),
    )
    .unwrap();
    // 20 distinct images, each embedded plain and mirrored once; progress counts both.
    assert_eq!(*calls.borrow(), 40);
    assert_eq!(progress_seen.last(), Some(&(40, 40)));
    assert_eq!(first.left[0].len(), 4, "concat flip doubles the dimension");

    let mut cache = EmbeddingCache::open(&cache_path).unwrap();
    assert_eq!(cache.len(), 40);
    let again = embed_pairs(
        &pairs,
        &mut source,
        EmbedRun::new(FlipMode::Concat)
            .with_batch_size(7)
            .with_cache(&mut cache),
    )
    .unwrap();
    assert_eq!(*calls.borrow(), 40, "all from the cache");
    assert_eq!(again, first);

    // A changed file (other size) is a cache miss.
    std::fs::write(dir.path().join("p3/1.jpg"), [31u8, 0]).unwrap();
    embed_pairs(
        &pairs,
        &mut source,
        EmbedRun::new(FlipMode::None)
            .with_batch_size(7)
            .with_cache(&mut cache),
    )
    .unwrap();
    assert_eq!(*calls.borrow(), 41);

    // A corrupt cache file is an error naming it.
    std::fs::write(&cache_path, b"garbage").unwrap();
    let err = EmbeddingCache::open(&cache_path).err().unwrap().to_string();
    assert!(err.contains("emb.cache"), "{err}");
}

#[test]
fn failed_images_are_reported_by_name() {
    let (dir, pairs) = fixture();
    std::fs::write(dir.path().join("p4/0.jpg"), []).unwrap();
    let mut source = fake_source();
    let err = embed_pairs(
        &pairs,
        &mut source,
        EmbedRun::new(FlipMode::None).with_batch_size(4),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("1 image(s)") && text.contains("p4/0.jpg (empty file)"),
        "{text}"
    );
}

#[test]
fn sum_flip_and_outputs() {
    let (dir, pairs) = fixture();
    let mut source = fake_source();
    let emb = embed_pairs(&pairs, &mut source, EmbedRun::new(FlipMode::Sum)).unwrap();
    // Sum of two unit vectors 0.01 rad apart, normalised: the bisector at +0.005 rad.
    let expected = 0.005f32;
    assert!((emb.left[0][1].atan2(emb.left[0][0]) - expected).abs() < 1e-6);

    let options = EvalOptions {
        flip: FlipMode::Sum,
        folds: 5,
        ..EvalOptions::default()
    };
    let report = evaluate(&emb, &options).unwrap();
    // Same pairs are 0.05 rad apart (sq L2 = 2-2cos(0.05) ~ 0.0025), different ones 0.5 rad
    // (~0.245, or 4.5 rad for p9 vs p0): every threshold in (0.0025, 0.245] separates them.
    assert_eq!(report.accuracy_mean, 1.0);
    assert!(
        report
            .fold_thresholds
            .iter()
            .all(|t| (*t - 0.01).abs() < 1e-12),
        "{:?}",
        report.fold_thresholds
    );
    assert_eq!(report.auc, 1.0);

    // The one-call form takes the flip mode from the options, whatever the run says.
    let run = EmbedRun::new(FlipMode::None).with_batch_size(3);
    assert_eq!(
        fdb::eval::evaluate_pairs(&pairs, &mut source, run, &options).unwrap(),
        report
    );

    let table = report.to_string();
    assert!(
        table.contains("accuracy         1.00000 ± 0.00000")
            && table.contains("flip sum+normalise"),
        "{table}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&serde_json::to_string(&report).unwrap()).unwrap();
    assert_eq!(json["options"]["metric"], "squared-l2");
    assert_eq!(json["roc"].as_array().unwrap().len(), 400);

    let csv = dir.path().join("roc.csv");
    write_roc_csv(&report, &csv).unwrap();
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 401);
    assert_eq!(text.lines().next(), Some("threshold,fpr,tpr"));
    assert!(
        write_roc_csv(&report, &dir.path().join("no/such/dir/roc.csv"))
            .unwrap_err()
            .to_string()
            .contains("no/such/dir")
    );

    let png = dir.path().join("roc.png");
    // Every pair's held-out distance is kept for the pictures, and the log-scale ROC draws.
    assert_eq!((report.distances.len(), report.same.len()), (report.pairs, report.pairs));
    let split = report.split_distances();
    assert_eq!(split.genuine.len() + split.impostor.len(), report.pairs);
    let series = fdb::plot::roc::RocSeries { name: "plain".into(), distances: split, threshold: Some(report.threshold) };
    fdb::plot::roc::write_png(&png, "pipeline", &[series]).unwrap();
    let img = image::open(&png).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), fdb::plot::roc::SIZE);
    let curve = fdb::plot::canvas::rgb(fdb::plot::canvas::PALETTE[0]);
    assert!(img.pixels().filter(|p| p.0 == curve).count() > 100);
}

#[test]
fn identification_on_a_folder_dataset() {
    let (dir, _) = fixture();
    // p0 gets a third image that looks like p5 (angle 2.5 rad): a rank-1 miss.
    std::fs::write(dir.path().join("p0/2.jpg"), [50u8]).unwrap();
    let people = fdb::eval::list_people(dir.path()).unwrap();
    let split = fdb::eval::split_gallery(&people, 1);
    assert_eq!((split.gallery.len(), split.probes.len()), (10, 11));
    let mut source = fake_source();
    let run = EmbedRun::new(FlipMode::None).with_batch_size(8);
    let report =
        fdb::eval::identify_exhaustive(&split, &mut source, run, fdb::eval::Metric::SquaredL2)
            .unwrap();
    // Probe "p0/2" is nearest p5 (0 rad), then p4/p6 (0.5), p3/p7 (1.0): p0 (2.5 rad away) is not in
    // the top 5 identities. The 10 other probes sit 0.05 rad from their own gallery image.
    assert_eq!(report.probes, 11);
    assert!(
        (report.rank1 - 10.0 / 11.0).abs() < 1e-12 && (report.rank5 - 10.0 / 11.0).abs() < 1e-12,
        "{report:?}"
    );
}

/// The golden end-to-end pairs: their pairs.txt index, fold (1-based there) and
/// squared L2 distance of the reference embeddings (`l2sq`).
#[test]
fn golden_pairs_match_pairs_txt_folds_and_distances() {
    let Some(shared) = common::shared_with(&["golden/e2e/golden_e2e.json", "datasets/lfw/pairs.txt"]) else { return };
    let golden_path = shared.join("golden/e2e/golden_e2e.json");
    let text = std::fs::read_to_string(&golden_path).unwrap_or_else(|e| panic!("{}: {e}", golden_path.display()));
    let golden: serde_json::Value = serde_json::from_str(&text).unwrap();
    let lfw = shared.join("datasets/lfw");
    let file = read_pairs(&lfw.join("pairs.txt")).unwrap();
    let pairs = resolve_lfw_pairs(&lfw.join("images"), &file.pairs).unwrap();
    let folds = fdb::eval::folds::kfold_ranges(pairs.len(), 10);
    let embedding = |i: &serde_json::Value| -> Vec<f64> {
        let image = &golden["images"][i.as_u64().unwrap() as usize];
        let values = image["embedding"].as_array().unwrap();
        // Stored as the network's f32 values; facenet evaluates them in f64.
        values
            .iter()
            .map(|v| f64::from(v.as_f64().unwrap() as f32))
            .collect()
    };
    for g in golden["pairs"].as_array().unwrap() {
        let index = g["pairs_txt_index"].as_u64().unwrap() as usize;
        let paths = g["paths"].as_array().unwrap();
        assert!(pairs[index].left.ends_with(paths[0].as_str().unwrap()));
        assert!(pairs[index].right.ends_with(paths[1].as_str().unwrap()));
        let fold = g["fold"].as_u64().unwrap() as usize - 1;
        assert!(
            folds[fold].contains(&index),
            "pair {index} not in fold {fold}"
        );
        let images = g["images"].as_array().unwrap();
        let d = fdb::eval::distance::distance(
            &embedding(&images[0]),
            &embedding(&images[1]),
            fdb::eval::Metric::SquaredL2,
        );
        let expected = g["l2sq"].as_f64().unwrap();
        assert!(
            (d - expected).abs() < 1e-12,
            "pair {index}: {d} vs {expected}"
        );
    }
}
