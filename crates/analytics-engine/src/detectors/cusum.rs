//! CUSUM change-point detection (Page, 1954): accumulates standardised deviations from a slowly
//! learnt level, so a sustained shift of level or slope, even a small one, builds up evidence
//! point after point until it stands out; a single spike does not.
//!
//! `S+ = max(0, S+ + z - k)`, `S- = max(0, S- - z - k)` with `z` the deviation from an
//! exponentially weighted level in units of an exponentially weighted mean absolute deviation;
//! the raw score is `max(S+, S-)`. When it passes `reset`, the change is taken as the new normal:
//! the sums restart and the level jumps to the current value (a change is reported once, not for
//! as long as it lasts).

use std::mem::size_of;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::checkpoint;
use crate::detector::{Detector, DetectorState};
use crate::EngineError;

/// Parameters of the CUSUM detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CusumConfig {
    /// Slack per point, in deviations (shifts smaller than about 2k are ignored).
    pub k: f64,
    /// Sum at which the change is accepted and the detector restarts.
    pub reset: f64,
    /// Weight of each new point in the level and spread.
    pub smoothing: f64,
    /// Points before scoring starts.
    pub warmup: usize,
}

impl Default for CusumConfig {
    fn default() -> Self {
        Self { k: 0.5, reset: 12.0, smoothing: 0.02, warmup: 30 }
    }
}

impl CusumConfig {
    pub(crate) fn check(&self) -> Result<(), EngineError> {
        if !(self.k >= 0.0 && self.k.is_finite()) {
            return Err(EngineError::bad_param("k", self.k, "finite and non-negative"));
        }
        if !(self.reset > 0.0 && self.reset.is_finite()) {
            return Err(EngineError::bad_param("reset", self.reset, "positive"));
        }
        if !(self.smoothing > 0.0 && self.smoothing < 1.0) {
            return Err(EngineError::bad_param("smoothing", self.smoothing, "in (0, 1)"));
        }
        Ok(())
    }
}

/// The CUSUM detector.
#[derive(Debug, Clone)]
pub struct Cusum {
    cfg: CusumConfig,
}

impl Cusum {
    /// Builds the detector after checking its parameters.
    pub fn new(cfg: CusumConfig) -> Result<Self, EngineError> {
        cfg.check()?;
        Ok(Self { cfg })
    }
}

impl Detector for Cusum {
    fn name(&self) -> &'static str {
        crate::DetectorKind::Cusum.as_str()
    }
    fn resume(&self, saved: &[u8]) -> Result<Box<dyn DetectorState>, EngineError> {
        Ok(Box::new(checkpoint::decode::<CusumState>(self.name(), saved)?))
    }

    fn start(&self) -> Box<dyn DetectorState> {
        Box::new(CusumState { cfg: self.cfg.clone(), level: f64::NAN, spread: 0.0, pos: 0.0, neg: 0.0, n: 0 })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CusumState {
    cfg: CusumConfig,
    level: f64,
    spread: f64,
    pos: f64,
    neg: f64,
    n: usize,
}

impl DetectorState for CusumState {
    fn update(&mut self, _t: DateTime<Utc>, x: f64) -> Option<f64> {
        self.n += 1;
        if self.n <= self.cfg.warmup || self.level.is_nan() {
            // Warm-up: running mean and mean absolute deviation, uncapped.
            let w = 1.0 / self.n as f64;
            if self.level.is_nan() {
                self.level = x;
            }
            let dev = x - self.level;
            self.level += w * dev;
            self.spread += w * (dev.abs() - self.spread);
            return None;
        }
        let a = self.cfg.smoothing;
        let dev = x - self.level;
        let scale = (1.2533 * self.spread).max(1e-9 * self.level.abs().max(1.0));
        let z = (dev / scale).clamp(-50.0, 50.0);
        self.pos = (self.pos + z - self.cfg.k).max(0.0);
        self.neg = (self.neg - z - self.cfg.k).max(0.0);
        let score = self.pos.max(self.neg);
        if score > self.cfg.reset {
            // The change is the new normal: restart the sums at the new level.
            self.pos = 0.0;
            self.neg = 0.0;
            self.level = x;
        } else {
            // Learn robustly: a deviation counts at most three spreads.
            let capped = dev.clamp(-3.0 * scale, 3.0 * scale);
            self.level += a * capped;
            self.spread += a * (capped.abs() - self.spread);
        }
        Some(score)
    }

    fn save(&self) -> Result<Vec<u8>, EngineError> {
        checkpoint::encode(crate::DetectorKind::Cusum.as_str(), self)
    }

    fn state_bytes(&self) -> usize {
        size_of::<Self>()
    }
}
