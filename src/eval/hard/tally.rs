//! Counting a hard-conditions run: per probe what came back, and the rates per condition.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Condition, Split};

/// What one search answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeOutcome {
    /// The altered photo that was searched.
    pub path: PathBuf,
    /// The clean LFW photo it was made from.
    pub original: PathBuf,
    /// Who it is; `None` for a stranger.
    pub person: Option<String>,
    /// What was done to the photo.
    pub condition: Condition,
    /// The search answered (a face was found, or the whole image stood for one).
    pub found: bool,
    /// How the face was found, as the answer flags it (absent when the answer does not say).
    pub source: Option<String>,
    /// The nearest enrolled person, if a face was found.
    pub nearest: Option<String>,
    /// The distance to that person.
    pub distance: Option<f32>,
    /// The decision: a name, or `None` for unknown.
    pub identity: Option<String>,
    /// The probe's quality score, when the answer gives one.
    pub quality: Option<f32>,
    /// The answer was "unknown" because the probe's quality was below the floor.
    pub low_quality: bool,
}

/// Enrolled people's probes: counts (rates are these over `probes`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    /// Probes searched.
    pub probes: usize,
    /// Probes where a face was found (or the whole image stood for one).
    pub found: usize,
    /// Probes whose nearest person was right.
    pub rank1: usize,
    /// Probes accepted as the right person.
    pub right_accepts: usize,
    /// Probes accepted as somebody else.
    pub wrong_accepts: usize,
    /// Probes answered "unknown" because their quality was below the floor.
    pub unknown_low_quality: usize,
    /// How many answers came by each face source.
    pub sources: BTreeMap<String, usize>,
}

impl Tally {
    fn add(&mut self, o: &ProbeOutcome) {
        self.probes += 1;
        if !o.found {
            return;
        }
        self.found += 1;
        let truth = o.person.as_deref();
        self.rank1 += usize::from(o.nearest.is_some() && o.nearest.as_deref() == truth);
        match o.identity.as_deref() {
            Some(name) if Some(name) == truth => self.right_accepts += 1,
            Some(_) => self.wrong_accepts += 1,
            None => {}
        }
        self.unknown_low_quality += usize::from(o.low_quality);
        if let Some(s) = &o.source {
            *self.sources.entry(s.clone()).or_default() += 1;
        }
    }

    /// `count` as a fraction of the probes (0 with no probes).
    pub fn rate(&self, count: usize) -> f64 {
        if self.probes == 0 {
            0.0
        } else {
            count as f64 / self.probes as f64
        }
    }
}

/// Strangers: how many were searched, answered, and accepted as somebody.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StrangerTally {
    /// Strangers searched.
    pub strangers: usize,
    /// Strangers where a face was found.
    pub found: usize,
    /// Strangers accepted as somebody (false accepts).
    pub accepted: usize,
}

impl StrangerTally {
    fn add(&mut self, o: &ProbeOutcome) {
        self.strangers += 1;
        self.found += usize::from(o.found);
        self.accepted += usize::from(o.identity.is_some());
    }
}

/// The result of `fdb eval hard`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HardReport {
    /// Which half of the people the run drew from.
    pub split: Split,
    /// The seed of the draw.
    pub seed: u64,
    /// People enrolled.
    pub people: usize,
    /// Gallery photos tried.
    pub gallery_images: usize,
    /// Gallery photos that failed to enrol.
    pub gallery_failed: usize,
    /// Clean gallery photos enrolled with a quality below the floor (enrol warns about them).
    pub gallery_low_quality: usize,
    /// The quality floor the searches used.
    pub quality_floor: f32,
    /// Probes dropped because the detector found no face in the clean photo (no box to alter by).
    pub skipped_no_clean_face: usize,
    /// The 1:N threshold the searches used (the last answer's).
    pub search_threshold: Option<f32>,
    /// All enrolled people's probes together.
    pub overall: Tally,
    /// The same, per condition.
    pub per_condition: BTreeMap<Condition, Tally>,
    /// All strangers together.
    pub strangers: StrangerTally,
    /// The same, per condition.
    pub strangers_per_condition: BTreeMap<Condition, StrangerTally>,
    /// Wall-clock seconds of the run.
    pub seconds: f64,
}

impl HardReport {
    /// Tallies the outcomes of a run.
    pub fn new(split: Split, seed: u64, outcomes: &[ProbeOutcome]) -> Self {
        let mut report = HardReport {
            split,
            seed,
            people: 0,
            gallery_images: 0,
            gallery_failed: 0,
            gallery_low_quality: 0,
            quality_floor: 0.0,
            skipped_no_clean_face: 0,
            search_threshold: None,
            overall: Tally::default(),
            per_condition: BTreeMap::new(),
            strangers: StrangerTally::default(),
            strangers_per_condition: BTreeMap::new(),
            seconds: 0.0,
        };
        for o in outcomes {
            if o.person.is_some() {
                report.overall.add(o);
                report.per_condition.entry(o.condition).or_default().add(o);
            } else {
                report.strangers.add(o);
                report.strangers_per_condition.entry(o.condition).or_default().add(o);
            }
        }
        report
    }
}

impl std::fmt::Display for HardReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "hard conditions, {:?} split, seed {}: {} people, {} gallery photos ({} failed to enrol, {} below the quality floor {:.2}), search threshold {}",
            self.split,
            self.seed,
            self.people,
            self.gallery_images,
            self.gallery_failed,
            self.gallery_low_quality,
            self.quality_floor,
            self.search_threshold.map_or("-".into(), |t| format!("{t:.3}"))
        )?;
        writeln!(
            f,
            "{:<16} {:>6} {:>13} {:>13} {:>13} {:>13} {:>11} {:>16}",
            "condition", "probes", "found", "rank-1", "right accept", "wrong accept", "low quality", "strangers acc."
        )?;
        let pct = |t: &Tally, n: usize| format!("{n} {:>5.1}%", 100.0 * t.rate(n));
        let row = |f: &mut std::fmt::Formatter<'_>, name: &str, t: &Tally, s: Option<&StrangerTally>| {
            let strangers = s.map_or("-".to_string(), |s| format!("{}/{}", s.accepted, s.strangers));
            writeln!(
                f,
                "{:<16} {:>6} {:>13} {:>13} {:>13} {:>13} {:>11} {:>16}",
                name,
                t.probes,
                pct(t, t.found),
                pct(t, t.rank1),
                pct(t, t.right_accepts),
                pct(t, t.wrong_accepts),
                t.unknown_low_quality,
                strangers
            )
        };
        for (c, t) in &self.per_condition {
            row(f, c.name(), t, self.strangers_per_condition.get(c))?;
        }
        row(f, "all", &self.overall, Some(&self.strangers))?;
        let sources: Vec<String> = self.overall.sources.iter().map(|(k, v)| format!("{k} {v}")).collect();
        if !sources.is_empty() {
            writeln!(f, "face sources (enrolled people's probes): {}", sources.join(", "))?;
        }
        writeln!(
            f,
            "strangers: {} searched, {} answered, {} accepted as somebody ({:.1}%); {} probes skipped (no face in the clean photo); {:.0} s",
            self.strangers.strangers,
            self.strangers.found,
            self.strangers.accepted,
            if self.strangers.strangers == 0 { 0.0 } else { 100.0 * self.strangers.accepted as f64 / self.strangers.strangers as f64 },
            self.skipped_no_clean_face,
            self.seconds
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(person: Option<&str>, found: bool, nearest: Option<&str>, identity: Option<&str>) -> ProbeOutcome {
        ProbeOutcome {
            path: PathBuf::new(),
            original: PathBuf::new(),
            person: person.map(Into::into),
            condition: Condition::GammaDark,
            found,
            source: found.then(|| "detected".to_string()),
            nearest: nearest.map(Into::into),
            distance: None,
            identity: identity.map(Into::into),
            quality: None,
            low_quality: false,
        }
    }

    #[test]
    fn counts_by_hand() {
        let outcomes = [
            outcome(Some("A"), true, Some("A"), Some("A")), // right accept, rank-1
            outcome(Some("A"), true, Some("A"), None),      // rank-1, unknown
            outcome(Some("B"), true, Some("A"), Some("A")), // wrong accept
            outcome(Some("B"), false, None, None),          // not found
            outcome(None, true, Some("A"), Some("A")),      // stranger accepted
            outcome(None, false, None, None),               // stranger, no face
        ];
        let r = HardReport::new(Split::Tune, 1, &outcomes);
        let t = &r.overall;
        assert_eq!((t.probes, t.found, t.rank1, t.right_accepts, t.wrong_accepts), (4, 3, 2, 1, 1));
        assert_eq!(t.sources["detected"], 3);
        assert_eq!(r.strangers, StrangerTally { strangers: 2, found: 1, accepted: 1 });
        assert_eq!(r.per_condition[&Condition::GammaDark], *t);
        assert_eq!(t.rate(t.found), 0.75);
    }
}
