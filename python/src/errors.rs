//! fdb's errors as Python exceptions: a base `FdbError` and one subclass per kind a caller
//! handles differently. The whole mapping from the library's kinds is `to_py_err`.

use fdb_models::imageio::ImageError as LibImageError;
use fdb_storage::StoreError;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

/// Declares each exception under its Python name, and `register`, which adds them all to the module.
macro_rules! exceptions {
    ($($name:ident($base:ty): $doc:literal;)*) => {
        $(create_exception!(fdbfaces, $name, $base, $doc);)*

        /// Adds the exceptions to the module.
        pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
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

/// The exception for a library error, with the library's message.
pub fn to_py_err(e: fdb::FdbError) -> PyErr {
    use fdb::FdbError as E;
    let msg = e.to_string();
    match &e {
        E::Image(LibImageError::Io { .. }) => ImageReadError::new_err(msg),
        E::Image(LibImageError::TooLarge { .. }) => ImageTooLargeError::new_err(msg),
        E::Image(_) => CorruptImageError::new_err(msg),
        E::Frame(_) => BadFrameError::new_err(msg),
        E::NoFace { .. } | E::SeveralFaces { .. } => NoFaceError::new_err(msg),
        E::UnknownPerson(_) => UnknownPersonError::new_err(msg),
        E::Storage(StoreError::NotFound(_)) => NotFoundError::new_err(msg),
        E::Storage(StoreError::Locked { .. }) => LockedError::new_err(msg),
        E::Invalid(_) | E::Storage(StoreError::InvalidArgument(_) | StoreError::NameTaken(_)) => {
            InvalidArgumentError::new_err(msg)
        }
        E::Storage(_) | E::NeedsRepair { .. } => DatabaseError::new_err(msg),
        E::Models(_) | E::Embed(_) | E::Inference(_) | E::BadDevice(_) | E::DeviceUnavailable(_) => {
            ModelError::new_err(msg)
        }
        // A kind the library adds later is still an fdb error, with its message.
        _ => FdbError::new_err(msg),
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
