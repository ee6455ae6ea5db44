//! MTCNN face detector (P-Net → R-Net → O-Net cascade) following facenet-pytorch's
//! `detect_face`: minimum face 20 px, thresholds [0.6, 0.7, 0.7], pyramid factor 0.709.

mod cascade;
pub mod fallback;
pub mod nets;
pub mod nms;
mod resample;

use candle_core::{Device, Result};
use candle_nn::VarBuilder;
use image::RgbImage;

pub use fallback::{FaceSource, FoundFaces};
pub use nets::{ONet, PNet, RNet};

/// One detected face in source-image pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// x1, y1, x2, y2.
    pub bbox: [f32; 4],
    pub prob: f32,
    /// Left eye, right eye, nose, left mouth corner, right mouth corner, as [x, y].
    pub landmarks: [[f32; 2]; 5],
}

/// Cascade settings; the defaults are facenet-pytorch's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MtcnnConfig {
    pub min_face: f32,
    pub thresholds: [f32; 3],
    pub factor: f32,
}

impl Default for MtcnnConfig {
    fn default() -> Self {
        Self { min_face: 20.0, thresholds: [0.6, 0.7, 0.7], factor: 0.709 }
    }
}

pub struct Mtcnn {
    pnet: PNet,
    rnet: RNet,
    onet: ONet,
    device: Device,
    pub config: MtcnnConfig,
}

impl Mtcnn {
    /// Loads the networks from a VarBuilder over `mtcnn.safetensors` (prefixes `pnet.`,
    /// `rnet.`, `onet.`); runs on the VarBuilder's device.
    pub fn load(vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            pnet: PNet::load(vb.pp("pnet"))?,
            rnet: RNet::load(vb.pp("rnet"))?,
            onet: ONet::load(vb.pp("onet"))?,
            device: vb.device().clone(),
            config: MtcnnConfig::default(),
        })
    }

    /// Loads `mtcnn.safetensors` from disk.
    pub fn from_file(path: &std::path::Path, device: &Device) -> Result<Self> {
        // SAFETY: the weights file is not modified while mapped (it is written atomically once).
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[path], candle_core::DType::F32, device)? };
        Self::load(vb)
    }

    /// Builds the detector from converted tensors named `pnet.*`, `rnet.*`, `onet.*` (what
    /// the weight install writes), without a file in between.
    pub fn from_tensors(tensors: Vec<crate::weights::NamedTensor>, device: &Device) -> Result<Self> {
        let map = tensors
            .into_iter()
            .map(|t| Ok((t.name, candle_core::Tensor::from_vec(t.data, t.shape, device)?)))
            .collect::<Result<std::collections::HashMap<_, _>>>()?;
        Self::load(VarBuilder::from_tensors(map, candle_core::DType::F32, device))
    }

    pub fn pnet(&self) -> &PNet {
        &self.pnet
    }
    pub fn rnet(&self) -> &RNet {
        &self.rnet
    }
    pub fn onet(&self) -> &ONet {
        &self.onet
    }

    pub fn with_config(mut self, config: MtcnnConfig) -> Self {
        self.config = config;
        self
    }

    /// Every face in one image.
    pub fn detect(&self, img: &RgbImage) -> Result<Vec<Detection>> {
        Ok(self.detect_many(std::slice::from_ref(img))?.pop().unwrap_or_default())
    }

    /// Every face in each image; R-Net and O-Net run once over the candidates of all images.
    pub fn detect_many(&self, imgs: &[RgbImage]) -> Result<Vec<Vec<Detection>>> {
        cascade::run(self, imgs)
    }
}
