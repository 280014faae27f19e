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
//! Lags up to 16 steps compare single points. A longer lag (32, 64 or 128 steps, with 6 to 8
//! scales) compares the mean of the last 16 points with the mean of a complete block of 16
//! points that many steps back (block-aligned, so within 16 steps of the lag): a slow climb
//! shows in the means while the noise of single points averages out by a factor of four, and
//! the state keeps eight block means instead of 112 more points.
//!
//! State: the last `min(16, 2^(scales - 1))` values, up to eight block means and one scale per
//! lag: 264 bytes at the default of five lags, up to 16 steps; 328 bytes with eight.

use std::mem::size_of;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::checkpoint;
use crate::detector::{Detector, DetectorState};
use crate::EngineError;

/// Most lags: up to `2^(MAX_SCALES - 1)` steps.
const MAX_SCALES: usize = 8;
/// The longest lag.
const RING: usize = 1 << (MAX_SCALES - 1);
/// Points kept one by one (lags up to this many steps are exact); longer lags compare means of
/// blocks of this many points.
const BLOCK: usize = 16;

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
        crate::DetectorKind::LagChange.as_str()
    }
    fn resume(&self, saved: &[u8]) -> Result<Box<dyn DetectorState>, EngineError> {
        Ok(Box::new(checkpoint::decode::<LagChangeState>(self.name(), saved)?))
    }

    fn start(&self) -> Box<dyn DetectorState> {
        Box::new(LagChangeState::new(&self.cfg))
    }
}

/// Per-series state: a ring of the last values (at most [`BLOCK`]), the means of the last
/// complete blocks of [`BLOCK`] points (for lags beyond it), one typical difference per lag.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LagChangeState {
    ring: Box<[f64]>,
    /// Index of the newest value in the ring.
    head: usize,
    /// Points seen (saturating).
    n: u32,
    scale: [f64; MAX_SCALES],
    /// Means of the last complete blocks, newest first (empty unless a lag exceeds a block).
    blocks: Box<[f64]>,
    /// Complete blocks seen, up to `blocks.len()`.
    full_blocks: u8,
    /// Sum of the current block's points so far.
    block_sum: f64,
    scales: u8,
    warmup: u32,
    smoothing: f64,
}

impl LagChangeState {
    pub(crate) fn new(cfg: &LagChangeConfig) -> Self {
        let longest = 1usize << (cfg.scales - 1);
        Self {
            ring: vec![f64::NAN; longest.min(BLOCK)].into_boxed_slice(),
            head: 0,
            n: 0,
            scale: [0.0; MAX_SCALES],
            blocks: vec![f64::NAN; if longest > BLOCK { (longest / BLOCK).min(RING / BLOCK) } else { 0 }]
                .into_boxed_slice(),
            full_blocks: 0,
            block_sum: 0.0,
            scales: cfg.scales as u8,
            warmup: cfg.warmup as u32,
            smoothing: cfg.smoothing,
        }
    }

    /// Learns `d` into lag `s`'s typical size (its running mean for the first `1 / smoothing`
    /// differences, then an exponential average of differences capped at three scales), and
    /// returns `d` in scales of the size before it (None while warming up).
    fn measure(&mut self, s: usize, d: f64, k: f64, magnitude: f64, scoring: bool) -> Option<f64> {
        let typical = self.scale[s];
        if k <= 1.0 / self.smoothing {
            self.scale[s] += (d - typical) / k;
        } else {
            let sigma = 1.2533 * typical;
            let capped = if sigma > 0.0 { d.min(3.0 * sigma) } else { d };
            self.scale[s] += self.smoothing * (capped - typical);
        }
        scoring.then(|| d / (1.2533 * typical).max(1e-9 * magnitude.max(1.0)))
    }
}

impl DetectorState for LagChangeState {
    fn update(&mut self, _t: DateTime<Utc>, x: f64) -> Option<f64> {
        let len = self.ring.len();
        let seen = self.n as usize;
        let scoring = seen >= self.warmup as usize;
        let mut score = 0.0f64;
        for s in 0..usize::from(self.scales) {
            let lag = 1usize << s;
            if lag > len || lag > seen {
                break;
            }
            let past = self.ring[(self.head + len + 1 - lag) % len];
            let d = (x - past).abs();
            if let Some(z) = self.measure(s, d, (seen + 1 - lag) as f64, past.abs().max(x.abs()), scoring) {
                score = score.max(z);
            }
        }
        self.head = (self.head + 1) % len;
        self.ring[self.head] = x;
        // Lags beyond a block: the mean of the last block of points against the mean of the
        // complete block that many points back (block-aligned: within a block of the lag).
        if !self.blocks.is_empty() {
            self.block_sum += x;
            if (seen + 1).is_multiple_of(BLOCK) {
                self.blocks.copy_within(..self.blocks.len() - 1, 1);
                self.blocks[0] = self.block_sum / BLOCK as f64;
                self.block_sum = 0.0;
                self.full_blocks = self.full_blocks.saturating_add(1).min(self.blocks.len() as u8);
            }
            if seen + 1 >= BLOCK {
                let recent = self.ring.iter().sum::<f64>() / BLOCK as f64;
                for s in 5..usize::from(self.scales) {
                    let back = (1usize << s) / BLOCK;
                    if back > usize::from(self.full_blocks) {
                        break;
                    }
                    let past = self.blocks[back - 1];
                    let d = (recent - past).abs();
                    // Differences of this lag so far: one a point since its block came.
                    let k = (seen + 2 - BLOCK * back) as f64;
                    if let Some(z) = self.measure(s, d, k, past.abs().max(recent.abs()), scoring) {
                        score = score.max(z);
                    }
                }
            }
        }
        self.n = self.n.saturating_add(1);
        scoring.then_some(score)
    }

    fn save(&self) -> Result<Vec<u8>, EngineError> {
        checkpoint::encode(crate::DetectorKind::LagChange.as_str(), self)
    }

    fn state_bytes(&self) -> usize {
        size_of::<Self>() + (self.ring.len() + self.blocks.len()) * size_of::<f64>()
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

    /// A climb of 0.05 a step for 128 steps (6.4 in all, against noise of about 0.3 a step):
    /// no step and no 16 steps are unusual; the block means 128 steps apart are.
    #[test]
    fn a_slow_climb_shows_at_the_block_lags() {
        let mut v: Vec<f64> = (0..1500).map(|i| 10.0 + noise(i)).collect();
        for (k, x) in v[1200..].iter_mut().enumerate() {
            *x += 0.05 * (k.min(128) as f64);
        }
        let d = |scales| LagChange::new(LagChangeConfig { scales, ..LagChangeConfig::default() }).unwrap();
        let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let ts: Vec<_> = (0..v.len()).map(|i| t0 + chrono::Duration::minutes(i as i64)).collect();
        let top = |scales, r: std::ops::Range<usize>| {
            d(scales).score_batch(&ts, &v)[r].iter().map(|x| x.unwrap()).fold(0.0, f64::max)
        };
        let (noise5, climb5) = (top(5, 300..1199), top(5, 1200..1340));
        let (noise8, climb8) = (top(8, 300..1199), top(8, 1200..1340));
        assert!(climb5 < 1.5 * noise5, "16 steps see no climb: {climb5} vs {noise5}");
        assert!(climb8 > 2.0 * noise8, "128 steps do: {climb8} vs {noise8}");
        // Batch and streaming agree (the provided batch path feeds one state).
        let mut state = d(8).start();
        let streamed: Vec<_> = ts.iter().zip(&v).map(|(&t, &x)| state.update(t, x)).collect();
        assert_eq!(streamed, d(8).score_batch(&ts, &v));
    }

    #[test]
    fn a_flat_series_scores_a_change_very_high_and_state_is_small() {
        let mut v = vec![5.0; 300];
        v[200] = 6.0;
        let s = run(&v);
        assert_eq!(s[199], Some(0.0));
        assert!(s[200].unwrap() > 1e6);
        assert_eq!(LagChangeState::new(&LagChangeConfig::default()).state_bytes(), 264);
        let eight = LagChangeConfig { scales: 8, ..LagChangeConfig::default() };
        assert_eq!(LagChangeState::new(&eight).state_bytes(), 328);
        assert!(LagChange::new(LagChangeConfig { scales: 9, ..LagChangeConfig::default() }).is_err());
    }
}
