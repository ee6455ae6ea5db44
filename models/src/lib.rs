//! fdb-models: the networks behind fdb, written in candle, and everything that turns
//! pixels into embeddings: weight install, detection, alignment, embedding, training.

pub mod facenet;
pub mod train;
pub mod weights;
pub mod align;
pub mod imageio;
pub mod mtcnn;
#[cfg(test)]
mod test_tensors;
