//! fdbfaces: fdb's face-match database from Python (pyo3). The Python package `fdbfaces`
//! re-exports this module (`fdbfaces._fdbfaces`) and carries its type stubs.

// The closures run with the GIL released return the library's `FdbError`, whose size is the
// library's business.
#![allow(clippy::result_large_err)]

mod db;
mod errors;
mod image_arg;
mod results;

use pyo3::prelude::*;

#[pymodule]
fn _fdbfaces(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<db::FaceDb>()?;
    m.add_class::<results::SearchResult>()?;
    m.add_class::<results::Match>()?;
    m.add_class::<results::Verification>()?;
    m.add_class::<results::Face>()?;
    m.add_class::<results::EnrollOutcome>()?;
    m.add_class::<results::Person>()?;
    m.add_class::<results::FaceRecord>()?;
    errors::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
