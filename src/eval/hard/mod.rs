//! The hard-conditions evaluation: LFW photos made hard the way real users' photos are (tight
//! crops, grayscale, darkness, light from one side, low resolution), searched through the real
//! product path (`FaceDb` enrol and search on a scratch database). `fdb eval hard` runs it.
//!
//! Protocol: each enrolled person's gallery is clean photos; every other photo of theirs is
//! altered by one condition and searched; strangers (never enrolled) are altered and searched
//! too. A probe counts as found when the search answers at all, rank-1 when its nearest person is
//! right, and as a right or wrong accept by the decision (the identity) the search returns.

pub mod alter;
pub mod plan;
pub mod run;
pub mod tally;

use serde::{Deserialize, Serialize};

pub use plan::{plan, HardSetPlan, Sizes, Split};
pub use run::{run_hard, HardRunOptions};
pub use tally::{HardReport, ProbeOutcome, StrangerTally, Tally};

/// What was done to a probe photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Condition {
    /// Cut at the box the detector found in the clean photo.
    TightBox,
    /// Cut 10% inside that box on every side (the face touches the frame).
    TightInside,
    /// Rec. 601 luma.
    Grayscale,
    /// Darkened by a γ drawn from 2–4.
    GammaDark,
    /// Multiplied by a horizontal or diagonal ramp from 1.0 to 0.05.
    OneSidedLight,
    /// Shrunk until the face is 40 px wide, then scaled back up.
    LowRes,
    /// A tight crop at the box, grayscale, lit from one side and darkened: the domain of
    /// tight grayscale crops lit from many directions where fdb was seen to fail.
    TightDarkGray,
}

impl Condition {
    /// Every condition, in report order.
    pub const ALL: [Condition; 7] = [
        Condition::TightBox,
        Condition::TightInside,
        Condition::Grayscale,
        Condition::GammaDark,
        Condition::OneSidedLight,
        Condition::LowRes,
        Condition::TightDarkGray,
    ];

    /// The condition's name in reports and file names (snake_case).
    pub fn name(self) -> &'static str {
        match self {
            Condition::TightBox => "tight_box",
            Condition::TightInside => "tight_inside",
            Condition::Grayscale => "grayscale",
            Condition::GammaDark => "gamma_dark",
            Condition::OneSidedLight => "one_sided_light",
            Condition::LowRes => "low_res",
            Condition::TightDarkGray => "tight_dark_gray",
        }
    }

    /// Written as a one-channel image (the decoder's gray path is part of what is tested).
    pub fn is_gray(self) -> bool {
        matches!(self, Condition::Grayscale | Condition::TightDarkGray)
    }
}
