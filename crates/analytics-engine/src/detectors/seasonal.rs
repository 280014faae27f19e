//! Seasonal baseline: a point is compared with the value usual at the same phase of the cycle
//! (time of day, or time of week), learnt online; the cycle is chosen automatically.
//!
//! For each candidate period (a day and a week by default) the detector keeps one expected value
//! per phase bin (bins of `max(step, bin_seconds)`), the exponentially weighted mean of that bin
//! over previous cycles (today's points are accumulated apart and folded in when the cycle turns,
//! so an anomaly never becomes its own baseline the same day). Each candidate, and a flat
//! "recent level" model, keeps an exponentially weighted mean absolute error; the point is scored
//! against the model that currently predicts best: that is the automatic period detection, done
//! causally. The recent-level competitor is deliberately slow (about 50 points): a fast one
//! follows any smooth cycle closely and would always win, blind to out-of-phase values; and a
//! residual counts at most three times a model's error towards its track record, so an anomaly
//! does not hand the choice to the other model while it lasts. The raw score is the robust z of
//! the chosen model's residual against its last `residual_window` residuals (centred on their
//! median, so a persistent small offset of the cycle fades instead of alarming for a day; the
//! price is that the return to normal after a break longer than half that window scores too).
//! Phase comes from the timestamp, so gaps and irregular sampling need no special
//! care: a point lands in the bin of its time of day.

use std::mem::size_of;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::checkpoint;
use crate::detector::{Detector, DetectorState};
use crate::detectors::zscore::{RollingMedian, MAX_WINDOW};
use crate::EngineError;

/// Parameters of the seasonal baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeasonalConfig {
    /// Candidate periods in seconds (a day and a week).
    pub periods_seconds: Vec<i64>,
    /// Narrowest phase bin in seconds (a day at 300 s is 288 bins); a week uses bins 7 times wider.
    pub bin_seconds: i64,
    /// Weight of the newest cycle in a bin's expected value.
    pub cycle_weight: f64,
    /// Residuals kept for the robust scale.
    pub residual_window: usize,
    /// Smoothing of the models' mean absolute errors (per point).
    pub error_smoothing: f64,
}

impl Default for SeasonalConfig {
    fn default() -> Self {
        Self {
            periods_seconds: vec![86_400, 604_800],
            bin_seconds: 300,
            cycle_weight: 0.5,
            residual_window: 64,
            error_smoothing: 0.01,
        }
    }
}

impl SeasonalConfig {
    pub(crate) fn check(&self) -> Result<(), EngineError> {
        if self.periods_seconds.is_empty() || self.periods_seconds.iter().any(|&p| p < 2 * self.bin_seconds.max(1)) {
            return Err(EngineError::bad_param(
                "periods_seconds",
                format!("{:?}", self.periods_seconds),
                "non-empty, each at least two bins",
            ));
        }
        if self.bin_seconds <= 0 {
            return Err(EngineError::bad_param("bin_seconds", self.bin_seconds, "positive"));
        }
        if !(self.cycle_weight > 0.0 && self.cycle_weight <= 1.0) {
            return Err(EngineError::bad_param("cycle_weight", self.cycle_weight, "in (0, 1]"));
        }
        if !(8..=MAX_WINDOW).contains(&self.residual_window) {
            return Err(EngineError::bad_param("residual_window", self.residual_window, "between 8 and 65535"));
        }
        if !(self.error_smoothing > 0.0 && self.error_smoothing < 1.0) {
            return Err(EngineError::bad_param("error_smoothing", self.error_smoothing, "in (0, 1)"));
        }
        Ok(())
    }
}

/// The seasonal baseline detector.
#[derive(Debug, Clone)]
pub struct Seasonal {
    cfg: SeasonalConfig,
}

impl Seasonal {
    /// Builds the detector after checking its parameters.
    pub fn new(cfg: SeasonalConfig) -> Result<Self, EngineError> {
        cfg.check()?;
        Ok(Self { cfg })
    }
}

impl Detector for Seasonal {
    fn name(&self) -> &'static str {
        crate::DetectorKind::SeasonalBaseline.as_str()
    }
    fn resume(&self, saved: &[u8]) -> Result<Box<dyn DetectorState>, EngineError> {
        Ok(Box::new(checkpoint::decode::<SeasonalState>(self.name(), saved)?))
    }

    fn start(&self) -> Box<dyn DetectorState> {
        Box::new(SeasonalState::new(&self.cfg))
    }
}

/// One candidate cycle's learnt profile.
///
/// Time only moves forward, so within one cycle the phase bins are visited in order, each in one
/// run of consecutive points. The points of the current run are summed apart and folded into
/// their bin's expected value when the run ends (the next point falls in another bin or another
/// cycle): by the time the same bin comes round again, a cycle later, it holds exactly what a
/// fold of every bin at the turn of the cycle would have given, with one accumulator instead of
/// one per bin.
///
/// Expected values are held in single precision as offsets from the first one learnt (the
/// origin): 4 bytes a bin. An offset keeps the precision of the series' own variation, not of
/// its level: a series near 10^12 that varies by 10 loses nothing; it would take a drift of
/// some ten million times the variation away from the origin to blur it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cycle {
    period: i64,
    bin: i64,
    /// The first expected value learnt (NaN before).
    origin: f64,
    /// Expected value per bin from previous cycles, less the origin (NaN: not seen yet).
    offsets: Vec<f32>,
    /// The current run: its cycle (timestamp / period; `i64::MIN` before the first point), its
    /// bin, and the sum and count of its points.
    run_cycle: i64,
    run_bin: usize,
    run_sum: f64,
    run_count: u32,
    error: f64,
    seen: bool,
}

impl Cycle {
    fn new(period: i64, bin: i64) -> Self {
        let n = (period / bin).max(2) as usize;
        Self {
            period,
            bin,
            origin: f64::NAN,
            offsets: vec![f32::NAN; n],
            run_cycle: i64::MIN,
            run_bin: 0,
            run_sum: 0.0,
            run_count: 0,
            error: 0.0,
            seen: false,
        }
    }

    /// Starts the run of timestamp `t` (folding the one before into its bin) and returns its
    /// bin.
    fn roll(&mut self, t: i64, weight: f64) -> usize {
        let cycle = t.div_euclid(self.period);
        let b = ((t.rem_euclid(self.period) / self.bin) as usize).min(self.offsets.len() - 1);
        if cycle != self.run_cycle || b != self.run_bin {
            if self.run_count > 0 {
                let mean = self.run_sum / f64::from(self.run_count);
                if self.origin.is_nan() {
                    self.origin = mean;
                }
                let e = self.expected(self.run_bin);
                let e = if e.is_nan() { mean } else { e + weight * (mean - e) };
                self.offsets[self.run_bin] = (e - self.origin) as f32;
            }
            (self.run_cycle, self.run_bin, self.run_sum, self.run_count) = (cycle, b, 0.0, 0);
        }
        b
    }

    /// Adds `x` to the current run (after [`Cycle::roll`] has started the run of its time).
    fn learn(&mut self, x: f64) {
        self.run_sum += x;
        self.run_count += 1;
    }

    /// The expected value of bin `b` (NaN: not seen yet).
    fn expected(&self, b: usize) -> f64 {
        self.origin + f64::from(self.offsets[b])
    }
}

/// Weight of each point in the recent-level model (about 50 points of memory). Slow on purpose:
/// a fast level follows any smooth cycle to within its lag and would always beat the cycle at
/// predicting the next point, while being blind to exactly what this detector is for.
const LEVEL_WEIGHT: f64 = 0.02;

/// A residual's contribution to a model's mean absolute error, capped at three times that error:
/// an anomaly must not erase a model's track record (or the model would lose the choice exactly
/// while the anomaly lasts, and the return to normal would be scored against the wrong model).
fn capped(r: f64, error: f64) -> f64 {
    if error > 0.0 {
        r.abs().min(3.0 * error)
    } else {
        r.abs()
    }
}

/// Per-series state of the seasonal baseline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SeasonalState {
    cycles: Vec<Cycle>,
    level: f64,
    level_error: f64,
    residuals: RollingMedian,
    weight: f64,
    smoothing: f64,
    points: u64,
}

impl SeasonalState {
    pub(crate) fn new(cfg: &SeasonalConfig) -> Self {
        let cycles = cfg
            .periods_seconds
            .iter()
            .map(|&p| {
                // Keep at most 288 bins per cycle: a week uses proportionally wider bins.
                let bin = cfg.bin_seconds.max(p / 288);
                Cycle::new(p, bin)
            })
            .collect();
        Self {
            cycles,
            level: f64::NAN,
            level_error: 0.0,
            residuals: RollingMedian::new(cfg.residual_window, cfg.residual_window / 2),
            weight: cfg.cycle_weight,
            smoothing: cfg.error_smoothing,
            points: 0,
        }
    }
}

impl DetectorState for SeasonalState {
    fn update(&mut self, t: DateTime<Utc>, x: f64) -> Option<f64> {
        let secs = t.timestamp();
        self.points += 1;
        // Predictions of every model, before learning from x.
        let level_pred = if self.level.is_nan() { x } else { self.level };
        let mut best = (self.level_error, x - level_pred);
        for c in &mut self.cycles {
            let b = c.roll(secs, self.weight);
            let exp = c.expected(b);
            if !exp.is_nan() {
                let r = x - exp;
                // A cycle competes once it has predicted for a while (its error is warmed up).
                if c.seen && c.error < 0.8 * best.0 {
                    best = (c.error, r);
                }
                c.error = if c.seen { c.error + self.smoothing * (capped(r, c.error) - c.error) } else { r.abs() };
                c.seen = true;
            }
            c.learn(x);
        }
        let level_r = x - level_pred;
        self.level_error = if self.points == 1 {
            0.0
        } else {
            self.level_error + self.smoothing * (capped(level_r, self.level_error) - self.level_error)
        };
        self.level = if self.level.is_nan() { x } else { self.level + LEVEL_WEIGHT * (x - self.level) };
        let residual = best.1;
        let z = self.residuals.z(residual).map(f64::abs);
        self.residuals.push(residual);
        z
    }

    fn save(&self) -> Result<Vec<u8>, EngineError> {
        checkpoint::encode(crate::DetectorKind::SeasonalBaseline.as_str(), self)
    }

    fn state_bytes(&self) -> usize {
        size_of::<Self>()
            + self.residuals.heap_bytes()
            + self.cycles.iter().map(|c| size_of::<Cycle>() + c.offsets.len() * size_of::<f32>()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The profile kept the obvious way: a sum and count per bin for the current cycle, every
    /// bin folded in when the cycle turns.
    struct PerBin {
        period: i64,
        bin: i64,
        expected: Vec<f64>,
        sum: Vec<f64>,
        count: Vec<u32>,
        current: i64,
    }

    impl PerBin {
        /// The expected value that a point at `t` is compared with; then learns `x`.
        fn update(&mut self, t: i64, x: f64, weight: f64) -> f64 {
            let cycle = t.div_euclid(self.period);
            if cycle != self.current {
                for b in 0..self.expected.len() {
                    if self.count[b] > 0 {
                        let mean = self.sum[b] / f64::from(self.count[b]);
                        let e = &mut self.expected[b];
                        *e = if e.is_nan() { mean } else { *e + weight * (mean - *e) };
                    }
                }
                self.sum.iter_mut().for_each(|s| *s = 0.0);
                self.count.iter_mut().for_each(|c| *c = 0);
                self.current = cycle;
            }
            let b = ((t.rem_euclid(self.period) / self.bin) as usize).min(self.expected.len() - 1);
            let exp = self.expected[b];
            self.sum[b] += x;
            self.count[b] += 1;
            exp
        }
    }

    #[test]
    fn one_running_sum_and_offsets_give_the_profile_of_a_sum_per_bin() {
        // Bins that divide the day, and bins that do not (the last bin then runs to the end of
        // the cycle, longer than the others).
        for (period, bin) in [(86_400, 900), (86_400, 7_000), (3_600, 1_000)] {
            let weight = 0.5;
            let mut runs = Cycle::new(period, bin);
            let n = (period / bin) as usize;
            let mut reference = PerBin {
                period,
                bin,
                expected: vec![f64::NAN; n],
                sum: vec![0.0; n],
                count: vec![0; n],
                current: i64::MIN,
            };
            // Irregular steps from 1 s to 3 h, with a few gaps of two days, and repeated
            // timestamps: well over a year of time.
            let mut state = 7u64;
            let mut t = 1_700_000_123i64;
            for i in 0..20_000 {
                state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                let r = state >> 33;
                t += match r % 100 {
                    0 => 2 * 86_400,
                    1..=4 => 0,
                    5..=9 => 3 * 3_600,
                    _ => 1 + (r % 120) as i64,
                };
                let x = (r % 1000) as f64 / 7.0 + (t % 86_400) as f64 / 1e3;
                let b = runs.roll(t, weight);
                let (got, want) = (runs.expected(b), reference.update(t, x, weight));
                // Equal but for the single-precision offsets (values up to about 230).
                let equal = (got.is_nan() && want.is_nan()) || (got - want).abs() <= 1e-4;
                assert!(equal, "period {period}, bin {bin}, point {i}: {got} vs {want}");
                runs.learn(x);
            }
            assert!(reference.expected.iter().all(|e| !e.is_nan()), "every bin was learnt");
        }
    }

    #[test]
    fn a_high_level_keeps_the_precision_of_its_variation() {
        // 10^12 bytes varying by +-10 over the day, one point a minute for three days: the
        // profile must hold the variation (f32 alone would round 10^12 to steps of 65,536).
        let mut c = Cycle::new(86_400, 900);
        let level = 1e12;
        let value = |t: i64| level + 10.0 * ((t % 86_400) as f64 / 86_400.0 * std::f64::consts::TAU).sin();
        for t in (0..3 * 86_400).step_by(60) {
            c.roll(t, 0.5);
            c.learn(value(t));
        }
        for b in 0..96 {
            // The bin's mean of the 15 one-minute values, the same every day.
            let want = (0..15).map(|m| value(b as i64 * 900 + 60 * m)).sum::<f64>() / 15.0;
            let got = c.expected(b);
            assert!((got - want).abs() < 1e-3, "bin {b}: {got} vs {want}");
        }
    }
}
