//! Multi-scale change: how unusual the change of a series is over the last 1, 2, 4, ... steps.
//!
//! For each lag `k` in `1, 2, 4, ..., 2^(scales - 1)` the detector keeps the difference
//! `d_k = x_t - x_(t-k)` against its own typical size, an exponentially weighted mean absolute
//! difference learnt online; the raw score is the largest `|d_k| / (1.2533 x typical size)` over
//! the lags. A jump shows at lag 1, a ramp over a few hours at the lag of its length, and a
//! level a series has always wandered across scores nothing, since its differences are usual.
//! This is the idea of Salesforce Merlion's multiple z-score detector ("ZMS"), made online and
//! robust: Merlion normalises each lag by the mean and variance of a training set once; here
//! each lag's scale keeps learning, and a difference counts at most three times the scale
//! towards it, so an incident does not teach the detector that incidents are normal.
//!
//! State: the last `2^(scales - 1)` values and one scale per lag: 240 bytes at the default of
//! five lags, up to 16 steps.

use std::mem::size_of;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::detector::{Detector, DetectorState};
use crate::EngineError;

/// Most lags: up to `2^(MAX_SCALES - 1)` steps.
const MAX_SCALES: usize = 8;
/// Values kept for the longest lag.
const RING: usize = 1 << (MAX_SCALES - 1);

/// Parameters of the multi-scale change detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LagChangeConfig {
    /// Number of lags: 1, 2, 4, ..., `2^(scales - 1)` steps (1 to 8).
    pub scales: usize,
    /// Weight of each new difference in its lag's typical size (about `1 / smoothing` points).
    pub smoothing: f64,
    /// Points before scoring starts (each lag's scale needs differences to learn from).
    pub warmup: usize,
}

impl Default for LagChangeConfig {
    fn default() -> Self {
        Self { scales: 5, smoothing: 0.01, warmup: 30 }
    }
}

impl LagChangeConfig {
    pub(crate) fn check(&self) -> Result<(), EngineError> {
        if !(1..=MAX_SCALES).contains(&self.scales) {
            return Err(EngineError::bad_param("scales", self.scales, "between 1 and 8"));
        }
        if !(self.smoothing > 0.0 && self.smoothing < 1.0) {
            return Err(EngineError::bad_param("smoothing", self.smoothing, "in (0, 1)"));
        }
        Ok(())
    }
}

/// The multi-scale change detector.
#[derive(Debug, Clone)]
pub struct LagChange {
    cfg: LagChangeConfig,
}

impl LagChange {
    /// Builds the detector after checking its parameters.
    pub fn new(cfg: LagChangeConfig) -> Result<Self, EngineError> {
        cfg.check()?;
        Ok(Self { cfg })
    }
}

impl Detector for LagChange {
    fn name(&self) -> &'static str {
        "lag_change"
    }
    fn start(&self) -> Box<dyn DetectorState> {
        Box::new(LagChangeState::new(&self.cfg))
    }
}

/// Per-series state: a ring of past values, one typical difference per lag.
#[derive(Debug, Clone)]
pub(crate) struct LagChangeState {
    ring: Box<[f64]>,
    /// Index of the newest value in the ring.
    head: usize,
    /// Points seen (saturating).
    n: u32,
    scale: [f64; MAX_SCALES],
    scales: u8,
    warmup: u32,
    smoothing: f64,
}

impl LagChangeState {
    pub(crate) fn new(cfg: &LagChangeConfig) -> Self {
        let len = 1usize << (cfg.scales - 1);
        Self {
            ring: vec![f64::NAN; len.min(RING)].into_boxed_slice(),
            head: 0,
            n: 0,
            scale: [0.0; MAX_SCALES],
            scales: cfg.scales as u8,
            warmup: cfg.warmup as u32,
            smoothing: cfg.smoothing,
        }
    }
}

impl DetectorState for LagChangeState {
    fn update(&mut self, _t: DateTime<Utc>, x: f64) -> Option<f64> {
        let len = self.ring.len();
        let seen = self.n as usize;
        let mut score = 0.0f64;
        for s in 0..usize::from(self.scales) {
            let lag = 1usize << s;
            if lag > seen {
                break;
            }
            let past = self.ring[(self.head + len + 1 - lag) % len];
            let d = (x - past).abs();
            let typical = self.scale[s];
            // The first differences of a lag set its scale as their running mean; afterwards
            // it follows an exponential average of differences capped at three scales.
            let k = (seen + 1 - lag) as f64;
            if k <= 1.0 / self.smoothing {
                self.scale[s] += (d - typical) / k;
            } else {
                let sigma = 1.2533 * typical;
                let capped = if sigma > 0.0 { d.min(3.0 * sigma) } else { d };
                self.scale[s] += self.smoothing * (capped - typical);
            }
            if seen >= self.warmup as usize {
                let sigma = (1.2533 * typical).max(1e-9 * past.abs().max(x.abs()).max(1.0));
                score = score.max(d / sigma);
            }
        }
        self.head = (self.head + 1) % len;
        self.ring[self.head] = x;
        self.n = self.n.saturating_add(1);
        (seen >= self.warmup as usize).then_some(score)
    }

    fn state_bytes(&self) -> usize {
        size_of::<Self>() + self.ring.len() * size_of::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn run(values: &[f64]) -> Vec<Option<f64>> {
        let d = LagChange::new(LagChangeConfig::default()).unwrap();
        let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let ts: Vec<_> = (0..values.len()).map(|i| t0 + chrono::Duration::minutes(i as i64)).collect();
        d.score_batch(&ts, values)
    }

    fn noise(i: usize) -> f64 {
        ((i * 2_654_435_761) % 10_007) as f64 / 10_007.0 - 0.5
    }

    #[test]
    fn a_jump_scores_at_once_and_is_learnt_from_only_in_part() {
        let mut v: Vec<f64> = (0..600).map(|i| 10.0 + noise(i)).collect();
        v[400..].iter_mut().for_each(|x| *x += 8.0);
        let s = run(&v);
        assert!(s[..30].iter().all(Option::is_none), "warming up");
        let before = s[100..399].iter().map(|x| x.unwrap()).fold(0.0, f64::max);
        assert!(before < 6.0, "noise scores {before}");
        assert!(s[400].unwrap() > 15.0, "the jump scores {:?}", s[400]);
        // Once every lag has seen the jump pass, the new level is ordinary.
        let after = s[430..].iter().map(|x| x.unwrap()).fold(0.0, f64::max);
        assert!(after < 6.0, "after the jump {after}");
    }

    #[test]
    fn a_ramp_shows_at_the_longer_lags() {
        // Noise of about 0.3 a step; then a ramp of 0.4 a step for 16 steps (a climb of 6.4):
        // no single step is unusual, the climb over 16 is.
        let mut v: Vec<f64> = (0..600).map(|i| 10.0 + noise(i)).collect();
        for (k, x) in v[400..].iter_mut().enumerate() {
            *x += 0.4 * (k.min(16) as f64);
        }
        let s = run(&v);
        let noise_top = s[100..399].iter().map(|x| x.unwrap()).fold(0.0, f64::max);
        let ramp_top = s[400..420].iter().map(|x| x.unwrap()).fold(0.0, f64::max);
        assert!(ramp_top > 1.5 * noise_top, "ramp {ramp_top} vs noise {noise_top}");
    }

    #[test]
    fn a_flat_series_scores_a_change_very_high_and_state_is_small() {
        let mut v = vec![5.0; 300];
        v[200] = 6.0;
        let s = run(&v);
        assert_eq!(s[199], Some(0.0));
        assert!(s[200].unwrap() > 1e6);
        assert_eq!(LagChangeState::new(&LagChangeConfig::default()).state_bytes(), 240);
        assert!(LagChange::new(LagChangeConfig { scales: 9, ..LagChangeConfig::default() }).is_err());
    }
}
