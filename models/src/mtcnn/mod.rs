//! MTCNN face detector (P-Net → R-Net → O-Net cascade) following facenet-pytorch's
//! `detect_face`: minimum face 20 px, thresholds [0.6, 0.7, 0.7], pyramid factor 0.709; by
//! default with the original (ipazc/davidsandberg) pixel handling, see [`Flavour`].

mod cascade;
pub mod fallback;
mod layers;
pub mod nets;
pub mod nms;
mod resample;

use crate::weights::{torch_legacy::read_state_dict, NamedTensor};
use candle_core::{Device, Result};
use candle_nn::VarBuilder;
use image::RgbImage;

pub use fallback::{is_face_crop_shaped, Contrast, FaceSource, FoundFaces};
pub use nets::{ONet, PNet, RNet};

/// The MTCNN tensors of facenet-pytorch's wheel (`data/{p,r,o}net.pt`), named as in
/// `mtcnn.safetensors` (`pnet.conv1.weight`, ...). Errors name the wheel and member.
pub fn read_facenet_pytorch_wheel(wheel: &std::path::Path) -> std::result::Result<Vec<NamedTensor>, String> {
    let fail = |member: &str, e: &dyn std::fmt::Display| format!("{}: {member}: {e}", wheel.display());
    let file = std::fs::File::open(wheel).map_err(|e| fail("", &e))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| fail("", &e))?;
    let mut tensors = Vec::new();
    for net in ["pnet", "rnet", "onet"] {
        let member = format!("facenet_pytorch/data/{net}.pt");
        let mut bytes = Vec::new();
        let mut entry = zip.by_name(&member).map_err(|e| fail(&member, &e))?;
        std::io::Read::read_to_end(&mut entry, &mut bytes).map_err(|e| fail(&member, &e))?;
        let dict = read_state_dict(&bytes).map_err(|e| fail(&member, &e))?;
        tensors.extend(dict.into_iter().map(|t| NamedTensor { name: format!("{net}.{}", t.name), ..t }));
    }
    Ok(tensors)
}

/// One detected face in source-image pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// x1, y1, x2, y2.
    pub bbox: [f32; 4],
    /// The O-Net's face probability.
    pub prob: f32,
    /// Left eye, right eye, nose, left mouth corner, right mouth corner, as [x, y].
    pub landmarks: [[f32; 2]; 5],
}

/// Cascade settings: facenet-pytorch's minimum face, thresholds and factor, with the pixel
/// handling of davidsandberg/ipazc MTCNN (see [`Flavour`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MtcnnConfig {
    /// Smallest face searched for, in pixels (the pyramid's first scale).
    pub min_face: f32,
    /// Face-probability thresholds of P-, R- and O-Net.
    pub thresholds: [f32; 3],
    /// Scale step between pyramid levels.
    pub factor: f32,
    /// The pixel handling (see [`Flavour`]).
    pub flavour: Flavour,
}

impl Default for MtcnnConfig {
    fn default() -> Self {
        Self { min_face: 20.0, thresholds: [0.6, 0.7, 0.7], factor: 0.709, flavour: Flavour::Ipazc }
    }
}

/// How the cascade sizes the pyramid, resamples the image and candidates, and measures box
/// overlap. The networks and thresholds are the same; only these details differ between the
/// two implementations. The default is `Ipazc`: it is what davidsandberg's
/// `align_dataset_mtcnn` (the embedder's training crops) and the e2e reference do, and on
/// libjpeg-turbo's pixels it reproduces the reference's detections on all 23 golden images;
/// facenet-pytorch's handling moves boxes by a few pixels, which costs embedding cosine
/// (13 of 23 at >= 0.99).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// facenet-pytorch: pyramid side `int(side·scale + 1)`, torch area pooling, candidates cut
    /// to the part inside the image, torchvision's IoU (areas `x2 − x1`).
    FacenetPytorch,
    /// ipazc/mtcnn (the e2e reference): pyramid side `ceil(side·scale)`, OpenCV `INTER_AREA`
    /// rounded to 8 bits, candidates zero-padded where they leave the image, MATLAB-style
    /// areas `x2 − x1 + 1` in every NMS.
    Ipazc,
}

impl Flavour {
    /// The box areas of the 'Union' NMS of stages 1 and 2 ('Min' is inclusive in both).
    pub fn union_areas(self) -> nms::Areas {
        match self {
            Flavour::FacenetPytorch => nms::Areas::Exclusive,
            Flavour::Ipazc => nms::Areas::Inclusive,
        }
    }
}

/// The MTCNN detector: the three networks on one device, and the cascade's settings.
pub struct Mtcnn {
    pnet: PNet,
    rnet: RNet,
    onet: ONet,
    device: Device,
    /// The cascade's settings.
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
    pub fn from_tensors(tensors: Vec<NamedTensor>, device: &Device) -> Result<Self> {
        let map = tensors
            .into_iter()
            .map(|t| Ok((t.name, candle_core::Tensor::from_vec(t.data, t.shape, device)?)))
            .collect::<Result<std::collections::HashMap<_, _>>>()?;
        Self::load(VarBuilder::from_tensors(map, candle_core::DType::F32, device))
    }

    /// Builds the detector straight from facenet-pytorch's wheel, for tests and benchmarks on
    /// machines where the models dir is not installed.
    pub fn from_facenet_pytorch_wheel(wheel: &std::path::Path, device: &Device) -> Result<Self> {
        Self::from_tensors(read_facenet_pytorch_wheel(wheel).map_err(candle_core::Error::msg)?, device)
    }

    /// The proposal network (stage 1).
    pub fn pnet(&self) -> &PNet {
        &self.pnet
    }
    /// The refinement network (stage 2).
    pub fn rnet(&self) -> &RNet {
        &self.rnet
    }
    /// The output network (stage 3, with landmarks).
    pub fn onet(&self) -> &ONet {
        &self.onet
    }

    /// The same detector with other cascade settings.
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
