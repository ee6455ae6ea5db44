//! `FaceDb`: the database handle. Every call that runs the networks or searches releases the
//! GIL, so Python threads search and enrol at once.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use numpy::{PyArray1, PyArray3};
use pyo3::prelude::*;

use crate::errors::{DatabaseError, InvalidArgumentError, NotFoundError, OrPyErr};
use crate::image_arg::{extract_many, Photo};
use crate::results::{crop_array, EnrollOutcome, Face, FaceRecord, Person, SearchResult, Verification};

/// A face database: one directory, shared by the threads of this process.
///
/// Open it with ``FaceDb("faces.db")`` (created when missing) and close it with ``close()``
/// or a ``with`` block; another process opening it meanwhile waits ``lock_wait`` seconds and
/// then gets ``LockedError``.
///
/// Every ``image`` argument is a path (``str`` or ``os.PathLike``), encoded bytes (JPEG, PNG,
/// PNM, BMP, GIF, WebP), or a numpy uint8 array: (H, W, 3) RGB, (H, W, 4) RGBA, or (H, W) or
/// (H, W, 1) grey. OpenCV's ``cv2.imread`` gives BGR: pass ``bgr=True`` (or ``img[..., ::-1]``).
#[pyclass(module = "fdbfaces", frozen)]
pub struct FaceDb {
    /// None once closed. Calls clone the Arc and release this lock before they run.
    db: Mutex<Option<Arc<fdb::FaceDb>>>,
    path: PathBuf,
}

impl FaceDb {
    /// The open database, or `DatabaseError` once it is closed.
    fn handle(&self) -> PyResult<Arc<fdb::FaceDb>> {
        self.slot().clone().ok_or_else(|| DatabaseError::new_err(format!("{}: the database is closed", self.path.display())))
    }

    /// The handle's slot (a panic elsewhere leaves it usable: it only holds an `Arc`).
    fn slot(&self) -> MutexGuard<'_, Option<Arc<fdb::FaceDb>>> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A stored face, or `NotFoundError`.
    fn stored_face(&self, py: Python<'_>, id: u64) -> PyResult<fdb::StoredFace> {
        self.run(py, |db| db.face(id))?.ok_or_else(|| NotFoundError::new_err(format!("no face {id} in the database")))
    }

    /// Runs `f` on the database with the GIL released.
    fn run<T: Send>(&self, py: Python<'_>, f: impl FnOnce(&fdb::FaceDb) -> fdb::Result<T> + Send) -> PyResult<T> {
        let db = self.handle()?;
        py.detach(move || f(&db)).py_err()
    }
}

#[pymethods]
impl FaceDb {
    /// Opens (or, with ``create=True``, creates) the database at ``path``; None: ``$FDB_DB``,
    /// else ``~/.local/share/fdb/db``. ``device``: "cpu", "cuda" or "cuda:N" (default: cuda
    /// when available). ``models_dir``: where the weights are (default ``$FDB_MODELS_DIR``,
    /// else ``~/.cache/fdb/models``); with ``install_models`` they are installed on first use.
    #[new]
    #[pyo3(signature = (path=None, *, create=true, lock_wait=3.0, device=None, models_dir=None, install_models=true))]
    fn new(
        py: Python<'_>,
        path: Option<PathBuf>,
        create: bool,
        lock_wait: f64,
        device: Option<String>,
        models_dir: Option<PathBuf>,
        install_models: bool,
    ) -> PyResult<Self> {
        let lock_wait = Duration::try_from_secs_f64(lock_wait)
            .map_err(|_| InvalidArgumentError::new_err(format!("lock_wait must be seconds >= 0, got {lock_wait}")))?;
        let mut options = fdb::OpenOptions { create, lock_wait, device, install_models, ..fdb::OpenOptions::default() };
        if let Some(dir) = models_dir {
            options.models_dir = dir;
        }
        let path = path.unwrap_or_else(fdb::default_db_path);
        let open_path = path.clone();
        let db = py.detach(move || fdb::FaceDb::open_with(open_path, options)).py_err()?;
        Ok(Self { db: Mutex::new(Some(Arc::new(db))), path })
    }

    /// The database directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// True once ``close()`` has run.
    #[getter]
    fn closed(&self) -> bool {
        self.slot().is_none()
    }

    /// Saves the index, flushes every write and gives the lock back (after calls running in
    /// other threads finish). Later calls raise ``DatabaseError``; closing twice does nothing.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let Some(mut db) = self.slot().take() else { return Ok(()) };
        py.detach(move || loop {
            match Arc::try_unwrap(db) {
                Ok(db) => return db.close(),
                Err(shared) => {
                    db = shared;
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        })
        .py_err()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    /// Enrols each image's face (the largest, most central one) as ``name``; the person is
    /// created with their first face. Returns one ``EnrollOutcome`` per image, in order: a
    /// photo without a usable face or unreadable is reported there, not raised. The same photo
    /// enrolled twice is stored once ("duplicate").
    #[pyo3(signature = (name, images, *, bgr=false))]
    fn enroll(&self, py: Python<'_>, name: &str, images: &Bound<'_, PyAny>, bgr: bool) -> PyResult<Vec<EnrollOutcome>> {
        let photos = extract_many(images, bgr)?;
        let reports = self.run(py, move |db| {
            let inputs: Vec<fdb::ImageInput<'_>> = photos.iter().map(Photo::input).collect();
            db.enroll(name, &inputs)
        })?;
        Ok(reports.into_iter().map(EnrollOutcome::from).collect())
    }

    /// Who is the most central face in ``image``? The ``k`` nearest people, the best face of
    /// each, and ``identity`` when the nearest is under the 1:N threshold. Raises
    /// ``NoFaceError`` for a photo without a face.
    #[pyo3(signature = (image, k=5, *, bgr=false))]
    fn search(&self, py: Python<'_>, image: &Bound<'_, PyAny>, k: usize, bgr: bool) -> PyResult<SearchResult> {
        let photo = Photo::extract(image, bgr)?;
        let result = self.run(py, move |db| db.search(photo.input(), k))?;
        SearchResult::new(py, result)
    }

    /// ``search`` for every face of a group photo, one answer per face.
    #[pyo3(signature = (image, k=5, *, bgr=false))]
    fn identify_all(&self, py: Python<'_>, image: &Bound<'_, PyAny>, k: usize, bgr: bool) -> PyResult<Vec<SearchResult>> {
        let photo = Photo::extract(image, bgr)?;
        let results = self.run(py, move |db| db.identify_all(photo.input(), k))?;
        results.into_iter().map(|r| SearchResult::new(py, r)).collect()
    }

    /// Are the most central faces of ``a`` and ``b`` the same person? At ``threshold``
    /// (squared L2), else at the database's 1:1 threshold.
    #[pyo3(signature = (a, b, *, threshold=None, bgr=false))]
    fn verify(
        &self,
        py: Python<'_>,
        a: &Bound<'_, PyAny>,
        b: &Bound<'_, PyAny>,
        threshold: Option<f32>,
        bgr: bool,
    ) -> PyResult<Verification> {
        let (a, b) = (Photo::extract(a, bgr)?, Photo::extract(b, bgr)?);
        let v = self.run(py, move |db| match threshold {
            Some(t) => db.verify_at(a.input(), b.input(), t),
            None => db.verify(a.input(), b.input()),
        })?;
        Ok(v.into())
    }

    /// Every face in ``image``: box, landmarks, quality, aligned crop and vector (float32), the
    /// primary face (the one enrolment and search take) first. No face: an empty list.
    #[pyo3(signature = (image, *, bgr=false))]
    fn embed(&self, py: Python<'_>, image: &Bound<'_, PyAny>, bgr: bool) -> PyResult<Vec<Face>> {
        let photo = Photo::extract(image, bgr)?;
        let faces = self.run(py, move |db| db.embed(photo.input()))?;
        Ok(faces.into_iter().map(|inner| Face { inner }).collect())
    }

    /// Stores a face from ``embed`` as ``name``'s, as enrolment stores it.
    fn add_face(&self, py: Python<'_>, name: &str, face: PyRef<'_, Face>) -> PyResult<EnrollOutcome> {
        let embedding = face.inner.clone();
        let status = self.run(py, move |db| db.add_face(name, &embedding))?;
        let path = face.inner.source_name.clone().into();
        Ok(fdb::EnrollReport { path, person: name.to_string(), status }.into())
    }

    /// ``search`` for a face from ``embed``: the same answer.
    #[pyo3(signature = (face, k=5))]
    fn search_face(&self, py: Python<'_>, face: PyRef<'_, Face>, k: usize) -> PyResult<SearchResult> {
        let embedding = face.inner.clone();
        let result = self.run(py, move |db| db.search_face(&embedding, k))?;
        SearchResult::new(py, result)
    }

    /// Who is this vector (from ``Face.vector``, this database's model)? The same decision as
    /// ``search``; the answer has no box and no quality floor applies.
    #[pyo3(signature = (vector, k=5))]
    fn search_vector(&self, py: Python<'_>, vector: Vec<f32>, k: usize) -> PyResult<SearchResult> {
        let result = self.run(py, move |db| db.search_embedding(&vector, k))?;
        SearchResult::new(py, result)
    }

    /// Everyone enrolled, in creation order.
    fn people(&self, py: Python<'_>) -> PyResult<Vec<Person>> {
        Ok(self.run(py, |db| db.people())?.into_iter().map(Person::from).collect())
    }

    /// A person's faces, in id order; ``UnknownPersonError`` when there is no such person.
    fn faces(&self, py: Python<'_>, name: &str) -> PyResult<Vec<FaceRecord>> {
        Ok(self.run(py, |db| db.faces(name))?.into_iter().map(FaceRecord::from).collect())
    }

    /// A stored face's record; None when there is no such face.
    fn face(&self, py: Python<'_>, id: u64) -> PyResult<Option<FaceRecord>> {
        Ok(self.run(py, |db| db.face(id))?.map(|f| FaceRecord::from(f.record)))
    }

    /// A stored face's aligned crop, (H, W, 3) RGB uint8; ``NotFoundError`` for no such face.
    fn face_crop<'py>(&self, py: Python<'py>, id: u64) -> PyResult<Bound<'py, PyArray3<u8>>> {
        crop_array(py, &self.stored_face(py, id)?.crop)
    }

    /// A stored face's vector by the database's model, float32; ``NotFoundError`` for no such
    /// face, None for a face whose vector is missing (``fdb repair`` re-embeds it).
    fn face_vector<'py>(&self, py: Python<'py>, id: u64) -> PyResult<Option<Bound<'py, PyArray1<f32>>>> {
        Ok(self.stored_face(py, id)?.vector.map(|v| PyArray1::from_vec(py, v)))
    }

    /// Renames a person.
    fn rename(&self, py: Python<'_>, old: &str, new: &str) -> PyResult<()> {
        self.run(py, |db| db.rename(old, new))
    }

    /// Removes a person and their faces; returns how many faces went.
    fn remove_person(&self, py: Python<'_>, name: &str) -> PyResult<usize> {
        self.run(py, |db| db.remove_person(name))
    }

    /// Removes one face by id.
    fn remove_face(&self, py: Python<'_>, id: u64) -> PyResult<()> {
        self.run(py, |db| db.remove_face(id))
    }

    /// Counts, model, thresholds and size on disk, as ``fdb --json stats`` prints them.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let stats = self.run(py, |db| db.stats())?;
        let json = serde_json::to_string(&stats).map_err(|e| DatabaseError::new_err(e.to_string()))?;
        py.import("json")?.call_method1("loads", (json,))
    }

    fn __repr__(&self) -> String {
        format!("FaceDb({:?}{})", self.path.display().to_string(), if self.closed() { ", closed" } else { "" })
    }
}
