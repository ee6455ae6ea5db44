//! Frozen TensorFlow GraphDef → Inception-ResNet-v1 tensors (embedder helper owns this).
