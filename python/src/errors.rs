//! fdb's errors as Python exceptions: a base `FdbError` and one subclass per kind a caller
//! handles differently. The whole mapping from the library's kinds is `to_py_err`.

use fdb_models::imageio::ImageError as LibImageError;
use fdb_storage::StoreError;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyType;

/// Declares each exception under its Python name, and `register`, which adds them all to the module.
macro_rules! exceptions {
    ($($name:ident($base:ty): $doc:literal;)*) => {
        $(create_exception!(fdbfaces, $name, $base, $doc);)*

        /// Adds the exception classes to the module.
        fn add_classes(m: &Bound<'_, PyModule>) -> PyResult<()> {
            $(m.add(stringify!($name), m.py().get_type::<$name>())?;)*
            Ok(())
        }
    };
}

exceptions! {
    FdbError(PyException): "Every error fdb raises.";
    ImageError(FdbError): "A photo cannot be used (the message names it and says why).";
    ImageReadError(ImageError): "A photo's file is missing or cannot be read.";
    CorruptImageError(ImageError): "A photo's bytes are empty, no image format, damaged, truncated, or an unsupported variant.";
    ImageTooLargeError(ImageError): "A photo exceeds the decode limits (checked before decoding).";
    BadFrameError(ImageError): "An array whose shape or dtype fdb cannot read as a photo, or a frame with no pixels.";
    NoFaceError(FdbError): "A readable photo with no usable face.";
    NotFoundError(FdbError): "No person or face by that name or id.";
    UnknownPersonError(NotFoundError): "No person by that name.";
    LockedError(FdbError): "Another process holds the database, still after the lock wait.";
    DatabaseError(FdbError): "The database failed, is closed, is not a database, is newer than this fdb, or needs `fdb repair`.";
    ModelError(FdbError): "The networks' weights are missing, or a network or device failed.";
    InvalidArgumentError(FdbError): "An argument out of its range (the message says which).";
}

/// Adds the exceptions to the module, with the class defaults of the attributes `to_py_err`
/// sets: None where the package raises an error itself (a closed database, a missing face).
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    add_classes(m)?;
    let py = m.py();
    py.get_type::<FdbError>().setattr("kind", py.None())?;
    py.get_type::<LockedError>().setattr("pid", py.None())?;
    Ok(())
}

/// The exception for a library error, with the library's message, `kind` (`FdbError::kind`)
/// and, for `LockedError`, the holder's `pid`.
pub fn to_py_err(e: fdb::FdbError) -> PyErr {
    Python::attach(|py| {
        let err = PyErr::from_type(exception_class(py, &e), e.to_string());
        let value = err.value(py);
        // Plain attributes of a fresh exception instance: setting them cannot fail in practice,
        // and the exception is still the right one without them.
        let _ = value.setattr("kind", e.kind());
        if let fdb::FdbError::Locked { pid, .. } = e {
            let _ = value.setattr("pid", pid);
        }
        err
    })
}

/// The class a library error is raised as: by its kind, except where a kind covers errors a
/// caller handles differently (an unreadable file or an oversized photo among image errors, a
/// bad argument among storage errors).
fn exception_class<'py>(py: Python<'py>, e: &fdb::FdbError) -> Bound<'py, PyType> {
    use fdb::FdbError as E;
    match e {
        E::Image(LibImageError::Io { .. }) => return py.get_type::<ImageReadError>(),
        E::Image(LibImageError::TooLarge { .. }) => return py.get_type::<ImageTooLargeError>(),
        E::Storage(StoreError::InvalidArgument(_) | StoreError::NameTaken(_)) => {
            return py.get_type::<InvalidArgumentError>()
        }
        E::Storage(StoreError::NotFound(_)) => return py.get_type::<NotFoundError>(),
        _ => {}
    }
    match e.kind() {
        "image" => py.get_type::<CorruptImageError>(),
        "frame" => py.get_type::<BadFrameError>(),
        "no_face" | "several_faces" | "low_quality" => py.get_type::<NoFaceError>(),
        "unknown_person" => py.get_type::<UnknownPersonError>(),
        "not_found" => py.get_type::<NotFoundError>(),
        "locked" => py.get_type::<LockedError>(),
        // A face from another model or recipe is an argument this database cannot take.
        "invalid" | "model_mismatch" => py.get_type::<InvalidArgumentError>(),
        // `corrupt`: damaged stored data (an unreadable photo is `image`, above).
        "storage" | "no_database" | "corrupt" | "needs_repair" | "read_only" => py.get_type::<DatabaseError>(),
        "models" | "model_not_installed" | "embed" | "inference" | "device" => py.get_type::<ModelError>(),
        // `cancelled`, `io` and kinds the library adds later: still fdb errors, with `kind`.
        _ => py.get_type::<FdbError>(),
    }
}

/// `?` on a library result inside a Python method.
pub trait OrPyErr<T> {
    /// The value, or the error as its Python exception.
    fn py_err(self) -> PyResult<T>;
}

impl<T> OrPyErr<T> for fdb::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py_err)
    }
}
