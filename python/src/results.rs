//! The answers as Python objects: read-only attributes, named as the library's fields and the
//! CLI's `--json` keys.

use numpy::{PyArray1, PyArray3, PyArrayMethods};
use pyo3::prelude::*;

/// A box as (x1, y1, x2, y2) in the photo's pixels.
pub type BBox = (f32, f32, f32, f32);
/// Five landmarks (eyes, nose, mouth corners) as (x, y).
pub type Landmarks = Vec<(f32, f32)>;

fn bbox(b: [f32; 4]) -> BBox {
    (b[0], b[1], b[2], b[3])
}

fn landmarks(l: &[[f32; 2]; 5]) -> Landmarks {
    l.iter().map(|p| (p[0], p[1])).collect()
}

/// An aligned crop as an (H, W, 3) RGB uint8 array.
pub fn crop_array<'py>(py: Python<'py>, crop: &image::RgbImage) -> PyResult<Bound<'py, PyArray3<u8>>> {
    let (w, h) = (crop.width() as usize, crop.height() as usize);
    PyArray1::from_slice(py, crop.as_raw()).reshape([h, w, 3])
}

/// One person in a search answer: the best of their faces.
#[pyclass(module = "fdbfaces", frozen, get_all)]
pub struct Match {
    /// The person's name.
    pub person: String,
    /// Their face nearest the probe (an id for `FaceDb.face`).
    pub face: u64,
    /// Squared L2 between unit embeddings, 0..4.
    pub distance: f32,
    /// Cosine similarity, 1 - distance / 2.
    pub similarity: f32,
    /// The matched face's quality; None for a face stored without one.
    pub quality: Option<f32>,
}

#[pymethods]
impl Match {
    fn __repr__(&self) -> String {
        format!("Match(person={:?}, face={}, distance={:.4})", self.person, self.face, self.distance)
    }
}

impl From<fdb::Match> for Match {
    fn from(m: fdb::Match) -> Self {
        Self { person: m.person, face: m.face, distance: m.distance, similarity: m.similarity, quality: m.quality }
    }
}

/// The answer to "who is this?" for one face of a photo.
#[pyclass(module = "fdbfaces", frozen, get_all)]
pub struct SearchResult {
    /// The person the face is taken to be, or None for unknown.
    pub identity: Option<String>,
    /// The best match per person, nearest first.
    pub matches: Vec<Py<Match>>,
    /// The probe face: (x1, y1, x2, y2) in the photo.
    pub bbox: BBox,
    /// How the face was found: "detected", "detected_after_contrast", ..., "whole_image".
    pub source: String,
    /// The probe face's quality, in [0, 1].
    pub quality: f32,
    /// The quality is below the floor, so the answer is unknown whatever the distances.
    pub low_quality: bool,
    /// The 1:N threshold this answer used (squared L2).
    pub threshold: f32,
    /// Whose impostor distances the threshold was read from: "gallery", "evaluation" or "lfw".
    pub calibration: String,
    /// The chance, by that calibration, that a stranger is accepted at this threshold.
    pub expected_far: f64,
}

#[pymethods]
impl SearchResult {
    fn __repr__(&self) -> String {
        let nearest = self.matches.first().map(|m| m.get().__repr__()).unwrap_or_else(|| "None".into());
        format!("SearchResult(identity={}, nearest={nearest}, threshold={:.4})", py_opt_str(&self.identity), self.threshold)
    }
}

impl SearchResult {
    pub fn new(py: Python<'_>, r: fdb::SearchResult) -> PyResult<Self> {
        Ok(Self {
            identity: r.identity,
            matches: r.matches.into_iter().map(|m| Py::new(py, Match::from(m))).collect::<PyResult<_>>()?,
            bbox: bbox(r.bbox),
            source: r.source,
            quality: r.quality,
            low_quality: r.low_quality,
            threshold: r.threshold,
            calibration: serde_name(&r.calibration),
            expected_far: r.expected_far,
        })
    }
}

/// The answer to "are these the same person?".
#[pyclass(module = "fdbfaces", frozen, get_all)]
pub struct Verification {
    /// True when the distance is under the threshold (and neither face is below the quality floor).
    pub same: bool,
    /// Squared L2 between the two unit embeddings, 0..4.
    pub distance: f32,
    /// Cosine similarity, 1 - distance / 2.
    pub similarity: f32,
    /// The 1:1 threshold compared with.
    pub threshold: f32,
    /// A face is below the quality floor: the answer is unknown, never `same`.
    pub low_quality: bool,
    /// Each face's quality.
    pub qualities: (f32, f32),
    /// How each face was found.
    pub sources: (String, String),
    /// Whose impostor distances say what the threshold lets through.
    pub calibration: String,
    /// The chance, by that calibration, that two different people pass this threshold.
    pub expected_far: f64,
}

#[pymethods]
impl Verification {
    fn __repr__(&self) -> String {
        format!("Verification(same={}, distance={:.4}, threshold={:.4})", py_bool(self.same), self.distance, self.threshold)
    }
}

impl From<fdb::Verification> for Verification {
    fn from(v: fdb::Verification) -> Self {
        let [s0, s1] = v.sources;
        Self {
            same: v.same,
            distance: v.distance,
            similarity: v.similarity,
            threshold: v.threshold,
            low_quality: v.low_quality,
            qualities: (v.qualities[0], v.qualities[1]),
            sources: (s0, s1),
            calibration: serde_name(&v.calibration),
            expected_far: v.expected_far,
        }
    }
}

/// One face of a photo, found, aligned and embedded as the database embeds faces.
#[pyclass(module = "fdbfaces", frozen)]
pub struct Face {
    pub inner: fdb::FaceEmbedding,
}

#[pymethods]
impl Face {
    /// (x1, y1, x2, y2) in the photo's pixels.
    #[getter]
    fn bbox(&self) -> BBox {
        bbox(self.inner.bbox)
    }

    /// Five landmarks (left eye, right eye, nose, mouth corners) as (x, y) in the photo's pixels.
    #[getter]
    fn landmarks(&self) -> Landmarks {
        landmarks(&self.inner.landmarks)
    }

    /// The face's quality score, in [0, 1].
    #[getter]
    fn quality(&self) -> f32 {
        self.inner.quality
    }

    /// The detector's probability for the face.
    #[getter]
    fn detector_score(&self) -> f32 {
        self.inner.detector_score
    }

    /// How the face was found: "detected", ..., or "whole_image".
    #[getter]
    fn source(&self) -> &'static str {
        self.inner.source.as_str()
    }

    /// The face that enrolment and search take from the photo (the largest, most central).
    #[getter]
    fn primary(&self) -> bool {
        self.inner.primary
    }

    /// The unit embedding as a float32 array (a new array at each access).
    #[getter]
    fn vector<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        PyArray1::from_slice(py, &self.inner.vector)
    }

    /// The aligned crop the vector was computed from, (H, W, 3) RGB uint8.
    #[getter]
    fn crop<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray3<u8>>> {
        crop_array(py, &self.inner.crop)
    }

    /// The embedder and recipe that made the vector; only the same database's vectors compare.
    #[getter]
    fn vectors_id(&self) -> &str {
        &self.inner.vectors_id
    }

    fn __repr__(&self) -> String {
        let [x1, y1, x2, y2] = self.inner.bbox;
        format!(
            "Face(bbox=({x1:.0}, {y1:.0}, {x2:.0}, {y2:.0}), quality={:.3}, primary={})",
            self.inner.quality,
            py_bool(self.inner.primary)
        )
    }
}

/// What happened to one photo of an enrolment.
#[pyclass(module = "fdbfaces", frozen, get_all)]
pub struct EnrollOutcome {
    /// The photo: its file, or a description of a photo given from memory.
    pub path: String,
    /// The person it was enrolled as.
    pub person: String,
    /// "enrolled", "duplicate" (the same photo is stored already), "no_face" or "failed".
    pub status: String,
    /// The stored face's id (enrolled or duplicate).
    pub face: Option<u64>,
    /// The face's quality (enrolled).
    pub quality: Option<f32>,
    /// How the face was found (enrolled).
    pub source: Option<String>,
    /// Why not (no_face or failed), naming the photo.
    pub reason: Option<String>,
}

#[pymethods]
impl EnrollOutcome {
    /// True when the photo's face is in the database (enrolled now or before).
    #[getter]
    fn ok(&self) -> bool {
        self.face.is_some()
    }

    fn __repr__(&self) -> String {
        match (&self.face, &self.reason) {
            (Some(face), _) => format!("EnrollOutcome({:?}, {}, face={face})", self.path, self.status),
            (None, reason) => format!("EnrollOutcome({:?}, {}, reason={reason:?})", self.path, self.status),
        }
    }
}

impl From<fdb::EnrollReport> for EnrollOutcome {
    fn from(r: fdb::EnrollReport) -> Self {
        use fdb::EnrollStatus as S;
        let (status, face, quality, source, reason) = match r.status {
            S::Enrolled { face, source, quality, .. } => ("enrolled", Some(face), Some(quality), Some(source), None),
            S::Duplicate { face } => ("duplicate", Some(face), None, None, None),
            S::NoFace { reason } => ("no_face", None, None, None, Some(reason)),
            S::Failed { reason } => ("failed", None, None, None, Some(reason)),
        };
        Self { path: r.path.display().to_string(), person: r.person, status: status.into(), face, quality, source, reason }
    }
}

/// An enrolled person.
#[pyclass(module = "fdbfaces", frozen, get_all)]
pub struct Person {
    /// The person's id.
    pub id: u64,
    /// The name, unique in the database.
    pub name: String,
    /// When the person was created, milliseconds since the Unix epoch.
    pub created_ms: u64,
}

#[pymethods]
impl Person {
    fn __repr__(&self) -> String {
        format!("Person({:?}, id={})", self.name, self.id)
    }
}

impl From<fdb_storage::Person> for Person {
    fn from(p: fdb_storage::Person) -> Self {
        Self { id: p.id.0, name: p.name, created_ms: p.created_ms }
    }
}

/// A stored face's record.
#[pyclass(module = "fdbfaces", frozen, get_all)]
pub struct FaceRecord {
    /// The face's id.
    pub id: u64,
    /// Whose face it is (the person's id).
    pub person_id: u64,
    /// Where the face came from, as given at enrolment.
    pub source_name: String,
    /// (x1, y1, x2, y2) in the source photo's pixels.
    pub bbox: BBox,
    /// Five landmarks as (x, y) in the source photo's pixels.
    pub landmarks: Landmarks,
    /// The detector's probability for the face.
    pub detector_score: f32,
    /// The quality score given at enrolment; None for a face stored without one.
    pub quality: Option<f32>,
    /// When the face was stored, milliseconds since the Unix epoch.
    pub created_ms: u64,
}

#[pymethods]
impl FaceRecord {
    fn __repr__(&self) -> String {
        format!("FaceRecord(id={}, person_id={}, source_name={:?})", self.id, self.person_id, self.source_name)
    }
}

impl From<fdb_storage::Face> for FaceRecord {
    fn from(f: fdb_storage::Face) -> Self {
        Self {
            id: f.id.0,
            person_id: f.person.0,
            source_name: f.source_name,
            bbox: bbox(f.bbox),
            landmarks: landmarks(&f.landmarks),
            detector_score: f.score,
            quality: f.quality,
            created_ms: f.created_ms,
        }
    }
}

/// A value's name as the library serialises it (the CLI's `--json`).
fn serde_name(value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}

/// An optional string as Python prints it.
fn py_opt_str(s: &Option<String>) -> String {
    s.as_ref().map_or_else(|| "None".into(), |s| format!("{s:?}"))
}

fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}
