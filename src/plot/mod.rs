//! Every picture fdb draws, in one style: the ROC on a log-scale false-accept axis, distance
//! histograms with the thresholds on them, retraining curves, and face pairs side by side.

pub mod canvas;
pub mod faces;
pub mod histogram;
pub mod learning;
pub mod roc;
