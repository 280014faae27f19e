//! The default ensemble: several detectors that see different kinds of anomaly, each calibrated
//! on its own history, combined by taking the most surprising.
//!
//! Default members: the robust rolling z-score (spikes), the seasonal baseline (values out of
//! place for the time of day or week) and spike density (clusters of spikes, bursts of
//! volatility); context novelty (patterns never seen on this series), CUSUM, multi-scale change
//! and Holt-Winters can be added.
//! Each member's raw score goes through its own calibrator, so all speak in the same unit (the
//! tail probability of that member on this series); by default the ensemble reports the smallest
//! member tail probability times the number of members (Bonferroni's correction for asking
//! several members), as a score the engine does not calibrate again.
//!
//! With `bonferroni` and `max`, the record rule ([`RecordConfig`]) is asked too, as one more
//! member: a point beyond the whole range the series has shown (after its first day) is news,
//! by how far beyond. The combined surprise then passes through the recurrence memory
//! ([`RecurrenceConfig`], off by default): what the same time of day showed at the top of the
//! scale on the previous days is taken off, so a daily job is news once, and so is what
//! continues a rhythm of top-scale events (a job every few hours is news twice).
//!
//! The rules live beside the ensemble, each a [`rule::ScoreRule`]: [`record`], [`per_day`] and
//! [`recurrence`].
//!
//! The robust z-score and spike density both read the robust z of each point against the same
//! rolling window; when both take part with the same window (as by default), the ensemble keeps
//! that window once and hands its z to both: the same numbers, half the work and state.
//!
//! The batch path ([`Detector::score_batch`]) runs member by member over stretches of the series,
//! then combines: the streaming state's numbers to the bit, about 15% faster
//! (docs/performance.md).

pub(crate) mod per_day;
pub(crate) mod record;
pub(crate) mod recurrence;
pub(crate) mod rule;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use self::per_day::{Pace, PerDay};
use self::record::{Range, RecordConfig, Records};
use self::recurrence::{Memory, Recurrence, RecurrenceConfig};
use self::rule::{apply, ScoreRule};
use crate::checkpoint;
use crate::detector::{Detector, DetectorState};
use crate::detectors::cusum::{Cusum, CusumConfig};
use crate::detectors::density::{Averages, Density, DensityConfig};
use crate::detectors::holt_winters::{HoltWinters, HoltWintersConfig};
use crate::detectors::lag_change::{LagChange, LagChangeConfig};
use crate::detectors::novelty::{Novelty, NoveltyConfig};
use crate::detectors::seasonal::{Seasonal, SeasonalConfig};
use crate::detectors::zscore::{RobustZ, RobustZConfig, RollingMedian};
use crate::scoring::calibrate::{surprise_to_score, CalibrationConfig, History, Scale, SCORE_DECADES};
use crate::{DetectorKind, EngineError};

/// Parameters of the ensemble: each member's, and which members take part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnsembleConfig {
    /// Members taking part, by name: robust_zscore, seasonal_baseline, spike_density,
    /// context_novelty, cusum, lag_change, holt_winters (each a [`DetectorKind`] that
    /// [`DetectorKind::is_member`]).
    pub members: Vec<DetectorKind>,
    /// The robust z-score member.
    pub robust_zscore: RobustZConfig,
    /// The seasonal baseline member.
    pub seasonal_baseline: SeasonalConfig,
    /// The CUSUM member.
    pub cusum: CusumConfig,
    /// The multi-scale change member.
    pub lag_change: LagChangeConfig,
    /// The Holt-Winters member.
    pub holt_winters: HoltWintersConfig,
    /// The spike-density member.
    pub spike_density: DensityConfig,
    /// The context-novelty member.
    pub context_novelty: NoveltyConfig,
    /// Calibration of each member's raw score.
    pub member_calibration: CalibrationConfig,
    /// How member scores combine: `max` (the most surprising member) or `mean` (the mean of
    /// member scores, i.e. of their -log10 tail probabilities, as in Fisher's method: agreement
    /// between members counts).
    pub combine: Combine,
    /// Memory of top-scale events by time of day: a daily repeat scores only by how much it is
    /// worse (with the `bonferroni` and `max` combinations).
    pub recurrence: RecurrenceConfig,
    /// A point beyond the whole range the series has shown is news (with the `bonferroni` and
    /// `max` combinations, where it counts as one more member).
    pub record: RecordConfig,
    /// Bonferroni's correction over a day's points too (with the `bonferroni` combination), from
    /// this many points a day: once a series has been watched for a day, its surprise is
    /// lowered by `log10` of its points per day over this number, so that a score means as many
    /// false alarms per day on hourly data as on minute data (a series with this many points a
    /// day is scored as without the correction). 0 turns it off: a score then means as many
    /// false alarms per point.
    pub per_day_reference: f64,
}

/// How the ensemble combines its members' calibrated scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Combine {
    /// The largest member score.
    Max,
    /// The mean of member scores.
    Mean,
    /// The largest member raw score, uncalibrated (for members that all score robust z).
    MaxRaw,
    /// The smallest member tail probability times the number of members (Bonferroni), as a
    /// score: already calibrated, so the engine does not calibrate it again.
    Bonferroni,
}

impl Default for EnsembleConfig {
    fn default() -> Self {
        Self {
            // Chosen by leave-one-corpus-out over eval/candidates.toml (docs/evaluation.md):
            // context novelty and the multi-scale change member each helped some corpora and
            // cost others, so neither is a default member.
            members: vec![DetectorKind::RobustZscore, DetectorKind::SeasonalBaseline, DetectorKind::SpikeDensity],
            robust_zscore: RobustZConfig::default(),
            // In the ensemble the seasonal member watches short departures from the daily cycle
            // (the z-score member keeps the longer view): a shorter residual memory, 15-minute
            // bins (each expected value averages more points; 96 bins instead of 288), and no
            // weekly profile (it needs a full week of history before it predicts anything).
            // Measured on NAB (when it was chosen, before the bit-read calibration bins and the
            // recurrence memory): 69.07 / 59.29 / 74.61 with the member's own defaults, 70.28 /
            // 60.96 / 75.44 with these; the per-series state drops by 9.4 KiB.
            seasonal_baseline: SeasonalConfig {
                periods_seconds: vec![86_400],
                bin_seconds: 900,
                residual_window: 32,
                ..SeasonalConfig::default()
            },
            cusum: CusumConfig::default(),
            lag_change: LagChangeConfig::default(),
            holt_winters: HoltWintersConfig::default(),
            spike_density: DensityConfig::default(),
            // In the ensemble the novelty member mostly tells when a series first leaves the range
            // it learnt, which pairs of 16 levels see as well as triples of 8: NAB unchanged
            // (74.22 / 68.69 / 77.85), ASD point-adjusted F1 0.755 -> 0.758 and HitRate@150%
            // 0.891 -> 0.884, for a table of 324 contexts (162 bytes) instead of 1,000 (500).
            context_novelty: NoveltyConfig { levels: 16, order: 2, ..NoveltyConfig::default() },
            member_calibration: CalibrationConfig::default(),
            combine: Combine::Bonferroni,
            // The recurrence memory helped NAB, ASD and JumpStarter and cost shared/msft, whose
            // experts label repeated incidents each time: off unless configured.
            recurrence: RecurrenceConfig { bin_seconds: 0, ..RecurrenceConfig::default() },
            record: RecordConfig::default(),
            per_day_reference: 0.0,
        }
    }
}

impl crate::engine::DetectorConfig for EnsembleConfig {
    /// The ensemble rests six hours after an alarm (a rest in time means the same on minute and
    /// hourly data; chosen with 10 and 30 points by leave-one-corpus-out, docs/evaluation.md).
    fn default_alarm() -> crate::scoring::alarm::AlarmConfig {
        crate::scoring::alarm::AlarmConfig { rest_seconds: 6 * 3600, ..crate::scoring::alarm::AlarmConfig::default() }
    }
}

/// The ensemble detector.
#[derive(Debug)]
pub struct Ensemble {
    members: Vec<Member>,
    /// The window that the robust z-score and spike-density members share, when both take part
    /// with the same window (by default they do): its z is computed once per point for both.
    shared: Option<RollingMedian>,
    /// What every series' state reads and none changes.
    common: Arc<Common>,
}

/// The parts of an ensemble that every series' state reads and none changes: kept once per
/// engine, not once per series.
#[derive(Debug)]
struct Common {
    /// The members' calibration.
    scale: Scale,
    combine: Combine,
    /// log10 of the number asked: the members, and the record rule when it is on (Bonferroni's
    /// factor, in decades).
    members_decades: f64,
    /// The recurrence rule (with the `bonferroni` and `max` combinations, unless turned off).
    recurrence: Option<Recurrence>,
    /// The record rule (with the `bonferroni` and `max` combinations, unless turned off).
    records: Option<Records>,
    /// How many members take part (the combination waits for all of them).
    members: usize,
    /// The correction per day ([`EnsembleConfig::per_day_reference`], with the `bonferroni`
    /// combination, unless turned off).
    per_day: Option<PerDay>,
}

/// What the members said about one point, gathered for the combination.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    /// Members past their warm-up.
    ready: usize,
    /// Sum of their scores (for `mean`).
    sum: f64,
    /// Their largest raw score (for `maxraw`).
    best_raw: f64,
    /// Their largest surprise (for `max` and `bonferroni`).
    most: f64,
}

impl Tally {
    /// Adds a member's raw score (None while it warms up) and its calibrated surprise.
    fn add(&mut self, raw: Option<f64>, surprise: f64) {
        if let Some(r) = raw {
            self.sum += surprise_to_score(surprise);
            self.best_raw = self.best_raw.max(r);
            self.most = self.most.max(surprise);
            self.ready += 1;
        }
    }
}

impl Common {
    /// The ensemble's score of the point `x` at `t` from its members' tally and this series'
    /// range, recurrence memory and pace (updated here, for every point, in time order): None
    /// until every member is past its warm-up, so that the combination means the same thing
    /// from point to point.
    fn combine(
        &self,
        memory: &mut Memory,
        range: &mut Range,
        t: DateTime<Utc>,
        x: f64,
        pace: &mut Option<Box<Pace>>,
        mut tally: Tally,
    ) -> Option<f64> {
        // The rules that read every point, warm-up or not.
        tally.most = apply(self.records.as_ref(), range, t, x, tally.most);
        tally.most = apply(self.per_day.as_ref(), pace, t, x, tally.most);
        if tally.ready < self.members {
            return None;
        }
        let mut discount = |surprise: f64| apply(self.recurrence.as_ref(), memory, t, x, surprise);
        Some(match self.combine {
            Combine::Max => surprise_to_score(discount(tally.most)),
            Combine::Mean => tally.sum / tally.ready as f64,
            Combine::MaxRaw => tally.best_raw,
            // The smallest tail times the number of members, in decades; over ten, not capped
            // at 1, so that the engine keeps the evidence of a score of 1 (it caps the score).
            Combine::Bonferroni => (discount(tally.most - self.members_decades) / SCORE_DECADES).max(0.0),
        })
    }
}

/// What `members` may hold, for the message that refuses anything else (a test checks it names
/// every [`DetectorKind::is_member`]).
const MEMBERS: &str =
    "robust_zscore, seasonal_baseline, spike_density, context_novelty, cusum, lag_change or holt_winters";

/// A member of the ensemble, as built.
#[derive(Debug)]
enum Member {
    /// A detector with a state of its own.
    Own(Box<dyn Detector>),
    /// The robust z-score, read from the shared window.
    SharedZ,
    /// Spike density, fed the robust z of the shared window.
    SharedDensity(Density),
}

impl Ensemble {
    /// Whether the combined score is already calibrated (with `bonferroni`: decades of tail
    /// probability over ten, the score before its cap at 1), so that an engine must not
    /// calibrate it again; with `max`, `mean` and `max_raw` it is a raw score like any
    /// detector's.
    pub fn is_calibrated(&self) -> bool {
        self.common.combine == Combine::Bonferroni
    }

    /// Builds the members named in the configuration.
    pub fn new(cfg: EnsembleConfig) -> Result<Self, EngineError> {
        cfg.member_calibration.check()?;
        cfg.recurrence.check()?;
        cfg.record.check()?;
        if cfg.members.is_empty() {
            return Err(EngineError::bad_param("members", "[]", "at least one member"));
        }
        if !(cfg.per_day_reference >= 0.0 && cfg.per_day_reference.is_finite()) {
            return Err(EngineError::bad_param(
                "per_day_reference",
                cfg.per_day_reference,
                "0 (off) or a positive number of points per day",
            ));
        }
        let z = RobustZ::new(cfg.robust_zscore.clone())?;
        let density = Density::new(cfg.spike_density.clone())?;
        let has = |kind: DetectorKind| cfg.members.contains(&kind);
        let shared = (has(DetectorKind::RobustZscore)
            && has(DetectorKind::SpikeDensity)
            && z.window().same_shape(&density.window()))
        .then(|| z.window());
        let members = cfg
            .members
            .iter()
            .map(|&kind| -> Result<Member, EngineError> {
                Ok(match kind {
                    DetectorKind::RobustZscore if shared.is_some() => Member::SharedZ,
                    DetectorKind::SpikeDensity if shared.is_some() => Member::SharedDensity(density.clone()),
                    DetectorKind::RobustZscore => Member::Own(Box::new(z.clone())),
                    DetectorKind::SpikeDensity => Member::Own(Box::new(density.clone())),
                    DetectorKind::SeasonalBaseline => {
                        Member::Own(Box::new(Seasonal::new(cfg.seasonal_baseline.clone())?))
                    }
                    DetectorKind::Cusum => Member::Own(Box::new(Cusum::new(cfg.cusum.clone())?)),
                    DetectorKind::LagChange => Member::Own(Box::new(LagChange::new(cfg.lag_change.clone())?)),
                    DetectorKind::HoltWinters => Member::Own(Box::new(HoltWinters::new(cfg.holt_winters.clone())?)),
                    DetectorKind::ContextNovelty => Member::Own(Box::new(Novelty::new(cfg.context_novelty.clone())?)),
                    DetectorKind::SpectralResidual | DetectorKind::IsolationForest => {
                        return Err(EngineError::bad_param("members", kind, MEMBERS));
                    }
                })
            })
            .collect::<Result<_, _>>()?;
        let (recurrence, records) = match cfg.combine {
            Combine::Bonferroni | Combine::Max => {
                (Recurrence::new(&cfg.recurrence, SCORE_DECADES), Records::new(&cfg.record))
            }
            Combine::Mean | Combine::MaxRaw => (None, None),
        };
        // The record rule is one more question asked of each point.
        let asked = cfg.members.len() + usize::from(records.is_some());
        let common = Common {
            scale: Scale::new(cfg.member_calibration),
            combine: cfg.combine,
            members: cfg.members.len(),
            members_decades: (asked as f64).log10(),
            recurrence,
            records,
            per_day: if cfg.combine == Combine::Bonferroni { PerDay::new(cfg.per_day_reference) } else { None },
        };
        Ok(Self { members, shared, common: Arc::new(common) })
    }
}

impl Detector for Ensemble {
    fn name(&self) -> &'static str {
        "ensemble"
    }

    fn start(&self) -> Box<dyn DetectorState> {
        Box::new(self.new_state())
    }

    fn resume(&self, saved: &[u8]) -> Result<Box<dyn DetectorState>, EngineError> {
        let saved: SavedEnsemble = checkpoint::decode(self.name(), saved)?;
        if saved.members.len() != self.members.len() || saved.shared.is_some() != self.shared.is_some() {
            let message = format!("{} members saved, {} configured", saved.members.len(), self.members.len());
            return Err(checkpoint::bad(self.name(), message));
        }
        let mut members = Vec::with_capacity(saved.members.len());
        for (member, (state, history)) in self.members.iter().zip(saved.members) {
            let state = match (member, state) {
                (Member::Own(d), SavedMember::Own(bytes)) => MemberState::Own(d.resume(&bytes)?),
                (Member::SharedZ, SavedMember::SharedZ) => MemberState::SharedZ,
                (Member::SharedDensity(_), SavedMember::SharedDensity(a)) => MemberState::SharedDensity(Box::new(a)),
                _ => return Err(checkpoint::bad(self.name(), "the members saved differ from those configured".into())),
            };
            members.push((state, history));
        }
        Ok(Box::new(EnsembleState {
            members,
            shared: saved.shared,
            common: Arc::clone(&self.common),
            memory: saved.memory,
            range: saved.range,
            pace: saved.pace,
        }))
    }

    /// The streaming state's numbers, computed member by member: the members do not depend on
    /// each other until they are combined, so over each stretch of 2,048 points each member's
    /// detector runs as one loop, then its calibrator as another, and the stretch's tallies are
    /// then combined point by point (the recurrence memory in time order). The same updates of
    /// the same state as [`Detector::start`]'s, in another order, so the same numbers to the
    /// bit; the stretches bound the extra memory (72 bytes a point of a stretch) however long
    /// the series.
    fn score_batch(&self, timestamps: &[DateTime<Utc>], values: &[f64]) -> Vec<Option<f64>> {
        let mut state = self.new_state();
        let mut scores = Vec::with_capacity(values.len());
        for (ts, xs) in timestamps.chunks(BATCH_STRETCH).zip(values.chunks(BATCH_STRETCH)) {
            state.score_stretch(ts, xs, &mut scores);
        }
        scores
    }
}

/// Points the batch path scores member by member before it combines them.
const BATCH_STRETCH: usize = 2048;

impl Ensemble {
    /// A fresh state for one series.
    fn new_state(&self) -> EnsembleState {
        let start = |m: &Member| match m {
            Member::Own(d) => MemberState::Own(d.start()),
            Member::SharedZ => MemberState::SharedZ,
            Member::SharedDensity(d) => MemberState::SharedDensity(Box::new(d.averages())),
        };
        EnsembleState {
            members: self.members.iter().map(|m| (start(m), History::default())).collect(),
            // A new window of the same shape, not a clone: a clone of an empty vector drops its
            // capacity, and growing by doubling would reserve 128 places for 120 values.
            shared: self.shared.as_ref().map(RollingMedian::empty_like),
            common: Arc::clone(&self.common),
            memory: Memory::default(),
            range: Range::default(),
            pace: None,
        }
    }
}

#[derive(Debug)]
enum MemberState {
    Own(Box<dyn DetectorState>),
    SharedZ,
    /// Boxed: held inline, its 64 bytes of averages would widen every member's entry.
    SharedDensity(Box<Averages>),
}

impl MemberState {
    /// The member's raw score of `x` at `t`, given the shared window's z of it (None while the
    /// member, or the window, warms up).
    fn raw(&mut self, t: DateTime<Utc>, x: f64, z: Option<f64>) -> Option<f64> {
        match self {
            MemberState::Own(s) => s.update(t, x),
            MemberState::SharedZ => z.map(f64::abs),
            MemberState::SharedDensity(averages) => averages.update(z),
        }
    }
}

/// A member's saved state.
#[derive(Serialize, Deserialize)]
enum SavedMember {
    Own(Vec<u8>),
    SharedZ,
    SharedDensity(Averages),
}

/// An [`EnsembleState`] as saved: everything but the engine's shared part.
#[derive(Serialize, Deserialize)]
struct SavedEnsemble {
    members: Vec<(SavedMember, History)>,
    shared: Option<RollingMedian>,
    memory: Memory,
    range: Range,
    pace: Option<Box<Pace>>,
}

#[derive(Debug)]
struct EnsembleState {
    /// Each member's state and calibration history.
    members: Vec<(MemberState, History)>,
    shared: Option<RollingMedian>,
    /// The engine's calibration, combination and recurrence rule, one for all series.
    common: Arc<Common>,
    /// This series' recurrence memory (empty when the rule is off).
    memory: Memory,
    /// The range this series has shown (for the record rule).
    range: Range,
    /// How many points a day this series has (for the correction per day; made at the first
    /// point when the correction is on, absent otherwise).
    pace: Option<Box<Pace>>,
}

impl EnsembleState {
    /// Scores the next points of the series member by member (see [`Ensemble`]'s
    /// `score_batch`), appending them to `scores`.
    fn score_stretch(&mut self, timestamps: &[DateTime<Utc>], values: &[f64], scores: &mut Vec<Option<f64>>) {
        // The shared window's z of each point, against the points before it.
        let zs: Vec<Option<f64>> = match &mut self.shared {
            Some(w) => values
                .iter()
                .map(|&x| {
                    let z = w.z(x);
                    w.push(x);
                    z
                })
                .collect(),
            None => Vec::new(),
        };
        let mut tallies = vec![Tally::default(); values.len()];
        let mut raws: Vec<Option<f64>> = Vec::with_capacity(values.len());
        let scale = &self.common.scale;
        for (state, history) in &mut self.members {
            // The member's raw scores, then its calibration: two loops, each kept tight.
            raws.clear();
            // `MemberState::raw` over the stretch, its match taken out of the loop (inside, the
            // batch measured 5.42 -> 5.01 M points per second).
            match state {
                MemberState::Own(s) => raws.extend(timestamps.iter().zip(values).map(|(&t, &x)| s.update(t, x))),
                MemberState::SharedZ => raws.extend(zs.iter().map(|z| z.map(f64::abs))),
                MemberState::SharedDensity(averages) => raws.extend(zs.iter().map(|&z| averages.update(z))),
            }
            for (tally, &raw) in tallies.iter_mut().zip(&raws) {
                tally.add(raw, history.update_surprise(scale, raw.unwrap_or(0.0), raw.is_none()));
            }
        }
        let (common, memory, range, pace) = (&self.common, &mut self.memory, &mut self.range, &mut self.pace);
        scores.extend(
            timestamps
                .iter()
                .zip(values)
                .zip(tallies)
                .map(|((&t, &x), tally)| common.combine(memory, range, t, x, pace, tally)),
        );
    }
}

impl DetectorState for EnsembleState {
    fn update(&mut self, t: DateTime<Utc>, x: f64) -> Option<f64> {
        let mut tally = Tally::default();
        // The shared window's z of this point, against the points before it (None while it
        // warms up). The window takes the point as soon as its z is read: the members need only
        // the z, so the window's stores overlap their arithmetic instead of waiting for it.
        let z = self.shared.as_mut().and_then(|w| {
            let z = w.z(x);
            w.push(x);
            z
        });
        for (state, history) in &mut self.members {
            let raw = state.raw(t, x, z);
            // Surprise: -log10 of the member's tail probability on this series.
            tally.add(raw, history.update_surprise(&self.common.scale, raw.unwrap_or(0.0), raw.is_none()));
        }
        self.common.combine(&mut self.memory, &mut self.range, t, x, &mut self.pace, tally)
    }

    fn save(&self) -> Result<Vec<u8>, EngineError> {
        let mut members = Vec::with_capacity(self.members.len());
        for (state, history) in &self.members {
            let state = match state {
                MemberState::Own(s) => SavedMember::Own(s.save()?),
                MemberState::SharedZ => SavedMember::SharedZ,
                MemberState::SharedDensity(a) => SavedMember::SharedDensity((**a).clone()),
            };
            members.push((state, history.clone()));
        }
        let saved = SavedEnsemble {
            members,
            shared: self.shared.clone(),
            memory: self.memory.clone(),
            range: self.range.clone(),
            pace: self.pace.clone(),
        };
        checkpoint::encode("ensemble", &saved)
    }

    fn state_bytes(&self) -> usize {
        use std::mem::size_of;
        // What each member's entry points to (the entries themselves, histories included, are
        // counted with the vector; the scale is the engine's, not the series').
        let boxed = |s: &MemberState| match s {
            MemberState::Own(s) => s.state_bytes(),
            MemberState::SharedZ => 0,
            MemberState::SharedDensity(_) => size_of::<Averages>(),
        };
        size_of::<Self>()
            + self.shared.as_ref().map_or(0, RollingMedian::heap_bytes)
            + self.members.capacity() * size_of::<(MemberState, History)>()
            + self.members.iter().map(|(s, _)| boxed(s)).sum::<usize>()
            + Records::heap_bytes(&self.range)
            + Recurrence::heap_bytes(&self.memory)
            + PerDay::heap_bytes(&self.pace)
    }
}

/// A state after `points` of a noisy daily cycle, its recurrence memory then filled with as many
/// top-scale events as it keeps: the largest a state with that memory grows (for the engine's
/// test of the state per series).
#[cfg(test)]
pub(crate) fn fullest_state(ensemble: &Ensemble, points: i64) -> Box<dyn DetectorState> {
    use self::recurrence::CAPACITY;
    let common = Arc::clone(&ensemble.common);
    let Some(rule) = &common.recurrence else { panic!("an ensemble with a recurrence memory is needed") };
    let mut state = ensemble.new_state();
    let t0 = DateTime::UNIX_EPOCH + chrono::TimeDelta::days(20_000);
    let mut noise = 11u64;
    for i in 0..points {
        noise = noise.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let x = 50.0 + 10.0 * (i as f64 * std::f64::consts::TAU / 1440.0).sin() + (noise >> 11) as f64 / 2f64.powi(53);
        state.update(t0 + chrono::TimeDelta::minutes(i), x);
    }
    // Ten minutes apart (distinct bins), all within the days remembered.
    let last = (t0 + chrono::TimeDelta::minutes(points)).timestamp();
    for k in 0..CAPACITY as i64 {
        state.memory.discount(rule, last + 600 * k, 1e3);
    }
    assert_eq!(state.memory.len(), CAPACITY);
    Box::new(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same ensemble with every member on a window of its own.
    fn unshared(cfg: &EnsembleConfig) -> Ensemble {
        let mut e = Ensemble::new(cfg.clone()).unwrap();
        e.shared = None;
        for m in &mut e.members {
            match m {
                Member::SharedZ => *m = Member::Own(Box::new(RobustZ::new(cfg.robust_zscore.clone()).unwrap())),
                Member::SharedDensity(d) => *m = Member::Own(Box::new(d.clone())),
                Member::Own(_) => {}
            }
        }
        e
    }

    #[test]
    fn members_are_named_by_their_kind_and_others_refused() {
        let listed: Vec<&str> = MEMBERS.split([',', ' ']).filter(|w| !w.is_empty() && *w != "or").collect();
        let members: Vec<&str> = DetectorKind::ALL.iter().filter(|k| k.is_member()).map(|k| k.as_str()).collect();
        assert_eq!(listed, members);
        let cfg: EnsembleConfig = serde_json::from_str(r#"{"members": ["robust_zscore", "cusum"]}"#).unwrap();
        assert_eq!(cfg.members, vec![DetectorKind::RobustZscore, DetectorKind::Cusum]);
        let cfg = EnsembleConfig { members: vec![DetectorKind::SpectralResidual], ..EnsembleConfig::default() };
        let err = Ensemble::new(cfg).unwrap_err().to_string();
        assert!(err.starts_with("parameter members is spectral_residual; it must be robust_zscore, "), "{err}");
        assert!(serde_json::from_str::<EnsembleConfig>(r#"{"members": ["zscore"]}"#).is_err());
    }

    #[test]
    fn a_shared_window_gives_the_members_own_numbers() {
        let cfg = EnsembleConfig::default();
        let shared = Ensemble::new(cfg.clone()).unwrap();
        assert!(shared.shared.is_some(), "the default members share their window");
        let t0 = DateTime::UNIX_EPOCH;
        let ts: Vec<_> = (0..3000).map(|i| t0 + chrono::TimeDelta::minutes(i)).collect();
        // Noise from a small LCG, a daily-ish cycle and a burst of spikes.
        let mut state = 7u64;
        let xs: Vec<f64> = (0..3000)
            .map(|i| {
                state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                let noise = (state >> 11) as f64 / (1u64 << 53) as f64;
                let burst = if (2000..2040).contains(&i) && i % 3 == 0 { 8.0 } else { 0.0 };
                10.0 + (i as f64 / 229.0).sin() + noise + burst
            })
            .collect();
        let a = shared.score_batch(&ts, &xs);
        let b = unshared(&cfg).score_batch(&ts, &xs);
        assert_eq!(a, b);
        assert!(a.iter().flatten().any(|&s| s > 0.4), "the burst is found");
        // A different density window is not shared.
        let other = EnsembleConfig { spike_density: DensityConfig { window: 60, ..DensityConfig::default() }, ..cfg };
        assert!(Ensemble::new(other).unwrap().shared.is_none());
    }

    #[test]
    fn a_burst_beyond_everything_seen_is_news_on_a_bursty_series() {
        // Four days at one minute of request counts with a heavy tail (exponential, mean 40:
        // bursts of five or six times the usual are routine), then on day four one of 700, far
        // beyond the largest before.
        let t0 = DateTime::UNIX_EPOCH + chrono::TimeDelta::days(19_000);
        let n = 4 * 1440;
        let big = 3 * 1440 + 700;
        let ts: Vec<_> = (0..n).map(|i| t0 + chrono::TimeDelta::minutes(i)).collect();
        let mut state = 5u64;
        let xs: Vec<f64> = (0..n)
            .map(|i| {
                state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                let u = ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
                if i == big {
                    700.0
                } else {
                    -40.0 * u.ln()
                }
            })
            .collect();
        let highest = xs[..big as usize].iter().fold(0.0f64, |a, &b| a.max(b));
        let score = |cfg: EnsembleConfig| Ensemble::new(cfg).unwrap().score_batch(&ts, &xs)[big as usize].unwrap();
        let with = score(EnsembleConfig::default());
        let off = RecordConfig { decades_per_range: 0.0, ..RecordConfig::default() };
        let without = score(EnsembleConfig { record: off, ..EnsembleConfig::default() });
        // 700 lies 1.4 widths of the range beyond the highest value before (293): 21 decades
        // by the rule, a score of 1; the members alone say 0.66 (their calibrators have seen
        // many large values).
        assert!(highest < 300.0, "{highest}");
        assert!(with >= 1.0, "with the record rule: {with}");
        assert!(without < 0.9, "without it: {without}");
        // The streaming path keeps the range as the batch does.
        let e = Ensemble::new(EnsembleConfig::default()).unwrap();
        let mut stream = e.start();
        let streamed: Vec<Option<f64>> = ts.iter().zip(&xs).map(|(&t, &x)| stream.update(t, x)).collect();
        assert!(e.score_batch(&ts, &xs).iter().zip(&streamed).all(|(a, b)| a.map(f64::to_bits) == b.map(f64::to_bits)));
    }

    #[test]
    fn the_member_by_member_batch_gives_the_streaming_numbers_to_the_bit() {
        // Five days at one minute: noise, a daily cycle, a spike at the same time every day (the
        // recurrence memory recalls it), a record on day three and a burst on day four.
        let t0 = DateTime::UNIX_EPOCH + chrono::TimeDelta::days(19_000);
        let n = 5 * 1440;
        let ts: Vec<_> = (0..n).map(|i| t0 + chrono::TimeDelta::minutes(i)).collect();
        let mut state = 3u64;
        let xs: Vec<f64> = (0..n)
            .map(|i| {
                state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                let noise = (state >> 11) as f64 / (1u64 << 53) as f64;
                let daily = if i % 1440 == 600 { 40.0 } else { 0.0 };
                let burst = if (4 * 1440 + 100..4 * 1440 + 160).contains(&i) && i % 4 == 0 { 15.0 } else { 0.0 };
                // And on day three, a record: far above the daily spike, the highest so far.
                let record = if i == 3 * 1440 + 900 { 120.0 } else { 0.0 };
                20.0 + 5.0 * (i as f64 * std::f64::consts::TAU / 1440.0).sin() + noise + daily + burst + record
            })
            .collect();
        let base = EnsembleConfig::default();
        let configs = [
            base.clone(),
            EnsembleConfig { combine: Combine::Max, ..base.clone() },
            EnsembleConfig { combine: Combine::Mean, ..base.clone() },
            EnsembleConfig { combine: Combine::MaxRaw, ..base.clone() },
            // Windows of their own (nothing shared), and two more members.
            EnsembleConfig {
                spike_density: DensityConfig { window: 60, ..DensityConfig::default() },
                members: [
                    DetectorKind::RobustZscore,
                    DetectorKind::SpikeDensity,
                    DetectorKind::SeasonalBaseline,
                    DetectorKind::Cusum,
                    DetectorKind::HoltWinters,
                ]
                .to_vec(),
                ..base
            },
        ];
        for cfg in configs {
            let e = Ensemble::new(cfg.clone()).unwrap();
            let mut stream = e.start();
            let streamed: Vec<Option<f64>> = ts.iter().zip(&xs).map(|(&t, &x)| stream.update(t, x)).collect();
            let batch = e.score_batch(&ts, &xs);
            assert!(batch.iter().zip(&streamed).all(|(a, b)| a.map(f64::to_bits) == b.map(f64::to_bits)), "{cfg:?}");
            assert!(batch.iter().flatten().any(|&s| s > 0.4), "something scores: {cfg:?}");
        }
    }

    #[test]
    fn the_day_correction_scores_hourly_data_per_day() {
        // Twenty days of noise, hourly and at five minutes.
        let t0 = DateTime::UNIX_EPOCH + chrono::TimeDelta::days(19_000);
        let series = |step_minutes: i64, n: i64| -> (Vec<DateTime<Utc>>, Vec<f64>) {
            let mut state = 5u64;
            let ts = (0..n).map(|i| t0 + chrono::TimeDelta::minutes(i * step_minutes)).collect();
            let xs = (0..n)
                .map(|_| {
                    state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                    10.0 + (state >> 11) as f64 / (1u64 << 53) as f64
                })
                .collect();
            (ts, xs)
        };
        let per_day = EnsembleConfig { per_day_reference: 288.0, ..EnsembleConfig::default() };
        let with = Ensemble::new(per_day.clone()).unwrap();
        let without = Ensemble::new(EnsembleConfig::default()).unwrap();
        // Five-minute data has the reference's 288 points a day: the same numbers to the bit.
        let (ts, xs) = series(5, 20 * 288);
        let same = with
            .score_batch(&ts, &xs)
            .iter()
            .zip(&without.score_batch(&ts, &xs))
            .all(|(a, b)| a.map(f64::to_bits) == b.map(f64::to_bits));
        assert!(same);
        // Hourly data: once a day has been seen (the time is read every 16 points: by the 32nd
        // point), each surprise is log10(288 / 24) = 1.08 decades higher, a score 0.108 higher.
        let (ts, xs) = series(60, 20 * 24);
        let (a, b) = (with.score_batch(&ts, &xs), without.score_batch(&ts, &xs));
        let lift = (288.0f64 / 24.0).log10() / SCORE_DECADES;
        let mut compared = 0;
        for (i, (a, b)) in a.iter().zip(&b).enumerate() {
            match (a, b) {
                (Some(a), Some(b)) if i < 32 => assert_eq!(a.to_bits(), b.to_bits(), "point {i}"),
                (Some(a), Some(b)) if *b > 0.0 => {
                    assert!((a - b - lift).abs() < 1e-6, "point {i}: {a} against {b}");
                    compared += 1;
                }
                (Some(a), Some(_)) => assert!(*a <= lift + 1e-6, "point {i}: {a}"),
                (a, b) => assert_eq!(a.is_some(), b.is_some(), "point {i}"),
            }
        }
        assert!(compared > 100, "{compared}");
        // The pace is part of the state: streamed, and resumed from a state saved within the
        // first day, the numbers are the batch's.
        let mut stream = with.start();
        let mut streamed = Vec::new();
        for (k, (&t, &x)) in ts.iter().zip(&xs).enumerate() {
            if k == 20 {
                stream = with.resume(&stream.save().unwrap()).unwrap();
            }
            streamed.push(stream.update(t, x));
        }
        assert!(a.iter().zip(&streamed).all(|(a, b)| a.map(f64::to_bits) == b.map(f64::to_bits)));
        // A reference that is not a number of points is refused, naming the field.
        let bad = Ensemble::new(EnsembleConfig { per_day_reference: -1.0, ..EnsembleConfig::default() });
        assert!(bad.unwrap_err().to_string().contains("per_day_reference"));
    }
}
