//! Forecasting detector: additive Holt-Winters (level, trend, and a daily seasonal profile in
//! time-of-day bins), scoring each point by its one-step-ahead forecast error against the robust
//! spread of recent errors.
//!
//! `forecast = level + trend + season[bin]`; after the point, `level += alpha e`,
//! `trend += beta (level change - trend)`, `season[bin] += gamma (x - level - season[bin])`
//! (error-correction form). Bins come from the timestamp, so gaps keep the phase. Where the
//! series has no daily cycle the seasonal terms stay near zero and this is Holt's linear trend.

use std::mem::size_of;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::checkpoint;
use crate::detector::{Detector, DetectorState};
use crate::detectors::zscore::{RollingMedian, MAX_WINDOW};
use crate::EngineError;

/// Parameters of the Holt-Winters detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HoltWintersConfig {
    /// Level smoothing.
    pub alpha: f64,
    /// Trend smoothing.
    pub beta: f64,
    /// Seasonal smoothing.
    pub gamma: f64,
    /// Seasonal period in seconds.
    pub period_seconds: i64,
    /// Seasonal bin width in seconds.
    pub bin_seconds: i64,
    /// Forecast errors kept for the robust scale.
    pub residual_window: usize,
}

impl Default for HoltWintersConfig {
    fn default() -> Self {
        Self { alpha: 0.3, beta: 0.01, gamma: 0.2, period_seconds: 86_400, bin_seconds: 300, residual_window: 64 }
    }
}

impl HoltWintersConfig {
    pub(crate) fn check(&self) -> Result<(), EngineError> {
        for (field, v) in [("alpha", self.alpha), ("beta", self.beta), ("gamma", self.gamma)] {
            if !(0.0..=1.0).contains(&v) {
                return Err(EngineError::bad_param(field, v, "in [0, 1]"));
            }
        }
        if self.bin_seconds <= 0 || self.period_seconds < 2 * self.bin_seconds {
            return Err(EngineError::bad_param("period_seconds", self.period_seconds, "at least two bins"));
        }
        if !(8..=MAX_WINDOW).contains(&self.residual_window) {
            return Err(EngineError::bad_param("residual_window", self.residual_window, "between 8 and 65535"));
        }
        Ok(())
    }
}

/// The Holt-Winters forecasting detector.
#[derive(Debug, Clone)]
pub struct HoltWinters {
    cfg: HoltWintersConfig,
}

impl HoltWinters {
    /// Builds the detector after checking its parameters.
    pub fn new(cfg: HoltWintersConfig) -> Result<Self, EngineError> {
        cfg.check()?;
        Ok(Self { cfg })
    }
}

impl Detector for HoltWinters {
    fn name(&self) -> &'static str {
        crate::DetectorKind::HoltWinters.as_str()
    }
    fn resume(&self, saved: &[u8]) -> Result<Box<dyn DetectorState>, EngineError> {
        Ok(Box::new(checkpoint::decode::<HwState>(self.name(), saved)?))
    }

    fn start(&self) -> Box<dyn DetectorState> {
        let bins = (self.cfg.period_seconds / self.cfg.bin_seconds).max(2) as usize;
        Box::new(HwState {
            cfg: self.cfg.clone(),
            level: f64::NAN,
            trend: 0.0,
            season: vec![0.0; bins],
            residuals: RollingMedian::new(self.cfg.residual_window, self.cfg.residual_window / 2),
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct HwState {
    cfg: HoltWintersConfig,
    level: f64,
    trend: f64,
    season: Vec<f64>,
    residuals: RollingMedian,
}

impl DetectorState for HwState {
    fn update(&mut self, t: DateTime<Utc>, x: f64) -> Option<f64> {
        let b = ((t.timestamp().rem_euclid(self.cfg.period_seconds) / self.cfg.bin_seconds) as usize)
            .min(self.season.len() - 1);
        if self.level.is_nan() {
            self.level = x;
            return None;
        }
        let forecast = self.level + self.trend + self.season[b];
        let e = x - forecast;
        let old_level = self.level;
        self.level = old_level + self.trend + self.cfg.alpha * e;
        self.trend += self.cfg.beta * (self.level - old_level - self.trend);
        self.season[b] += self.cfg.gamma * (x - self.level - self.season[b]);
        let z = self.residuals.z(e).map(f64::abs);
        self.residuals.push(e);
        z
    }

    fn save(&self) -> Result<Vec<u8>, EngineError> {
        checkpoint::encode(crate::DetectorKind::HoltWinters.as_str(), self)
    }

    fn state_bytes(&self) -> usize {
        size_of::<Self>() + self.season.capacity() * size_of::<f64>() + self.residuals.heap_bytes()
    }
}
