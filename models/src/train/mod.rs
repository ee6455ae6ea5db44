//! Fine-tuning the embedder with FaceNet's method: triplet loss on L2-normalised embeddings,
//! with negatives mined online in each batch.
//!
//! The CPU default trains the head (the 1792→512 bottleneck) on cached trunk features, so a
//! run over thousands of faces takes minutes; `top` trains the last Block8s and the head on
//! cached activations at a cut, and `network` every layer (for a GPU).

pub mod augment;
pub mod head;
pub mod metrics;
pub mod mining;
pub mod network;
pub mod schedule;
pub mod top;
pub mod triplet;

pub use head::{evaluate, mined_loss, train_head, EpochLog, FeatureSet, HeadWeights, MinedLoss, Optim, TrainConfig};
pub use schedule::{cosine_rate, PeopleSampling};
pub use mining::{mine, Mining, MiningStats, Triplet};
pub use triplet::triplet_loss;
