//! Spike density: finds a change in how often, or how strongly, a series misbehaves, where single
//! points look ordinary. A cluster of spikes in a series that always had some spikes, or a burst
//! of volatility, is invisible point by point and obvious in aggregate.
//!
//! Each point's robust z (against the rolling median and MAD of the previous `window` points,
//! capped at `cap`) is averaged over the last `short` points (exponentially weighted); the raw
//! score is how far that short average stands above its own long-run mean, in units of its
//! long-run standard deviation (both exponentially weighted over about `long` points, and learnt
//! only from points that are not themselves far out). This is the idea behind Numenta's anomaly
//! likelihood, applied to robust deviations.

use std::mem::size_of;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::checkpoint;
use crate::detector::{Detector, DetectorState};
use crate::detectors::zscore::{RollingMedian, MAX_WINDOW};
use crate::EngineError;

/// Parameters of the spike-density detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DensityConfig {
    /// Points in the rolling window of the underlying robust z.
    pub window: usize,
    /// Largest |z| one point can contribute.
    pub cap: f64,
    /// Points in the short average (its exponential weight is 2 / (short + 1)).
    pub short: usize,
    /// Points in the long-run statistics of the short average.
    pub long: usize,
}

impl Default for DensityConfig {
    fn default() -> Self {
        Self { window: 120, cap: 10.0, short: 20, long: 1000 }
    }
}

impl DensityConfig {
    pub(crate) fn check(&self) -> Result<(), EngineError> {
        if !(8..=MAX_WINDOW).contains(&self.window) {
            return Err(EngineError::bad_param("window", self.window, "between 8 and 65535 points"));
        }
        if !(self.cap > 0.0 && self.cap.is_finite()) {
            return Err(EngineError::bad_param("cap", self.cap, "positive"));
        }
        if self.short < 2 || self.long <= 2 * self.short {
            return Err(EngineError::bad_param("long", self.long, "more than twice short, short at least 2"));
        }
        Ok(())
    }
}

/// The spike-density detector.
#[derive(Debug, Clone)]
pub struct Density {
    cfg: DensityConfig,
}

impl Density {
    /// Builds the detector after checking its parameters.
    pub fn new(cfg: DensityConfig) -> Result<Self, EngineError> {
        cfg.check()?;
        Ok(Self { cfg })
    }
}

impl Density {
    /// The rolling window whose robust z the detector reads, as configured.
    pub(crate) fn window(&self) -> RollingMedian {
        RollingMedian::new(self.cfg.window, self.cfg.window / 4)
    }

    /// The part of the detector after the robust z: its short and long averages.
    pub(crate) fn averages(&self) -> Averages {
        Averages {
            cap: self.cfg.cap,
            short_w: 2.0 / (self.cfg.short as f64 + 1.0),
            long_w: 2.0 / (self.cfg.long as f64 + 1.0),
            short: 0.0,
            mean: 0.0,
            var: 0.0,
            n: 0,
            warmup: 2 * self.cfg.short,
        }
    }
}

impl Detector for Density {
    fn name(&self) -> &'static str {
        crate::DetectorKind::SpikeDensity.as_str()
    }
    fn resume(&self, saved: &[u8]) -> Result<Box<dyn DetectorState>, EngineError> {
        Ok(Box::new(checkpoint::decode::<DensityState>(self.name(), saved)?))
    }

    fn start(&self) -> Box<dyn DetectorState> {
        Box::new(DensityState { z: self.window(), averages: self.averages() })
    }
}

/// Spike density after the robust z: how far the short average of |z| stands above its own
/// long-run mean. Split out so that an ensemble that also runs the robust z-score over the
/// same window computes that z once for both.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Averages {
    cap: f64,
    short_w: f64,
    long_w: f64,
    short: f64,
    mean: f64,
    var: f64,
    n: usize,
    warmup: usize,
}

impl Averages {
    /// Takes the next point's robust z (None while the window warms up) and gives the raw score.
    pub(crate) fn update(&mut self, z: Option<f64>) -> Option<f64> {
        let u = z?.abs().min(self.cap);
        self.n += 1;
        self.short += self.short_w * (u - self.short);
        if self.n <= self.warmup {
            // Learn the long-run statistics quickly at first (running mean and variance).
            let w = 1.0 / self.n as f64;
            let d = self.short - self.mean;
            self.mean += w * d;
            self.var += w * (d * d - self.var);
            return None;
        }
        let sd = self.var.sqrt().max(1e-3);
        let raw = ((self.short - self.mean) / sd).max(0.0);
        // Learn from ordinary stretches only, so a long burst stays visible.
        if raw < 3.0 {
            let d = self.short - self.mean;
            self.mean += self.long_w * d;
            self.var += self.long_w * (d * d - self.var);
        }
        Some(raw)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct DensityState {
    z: RollingMedian,
    averages: Averages,
}

impl DetectorState for DensityState {
    fn update(&mut self, _t: DateTime<Utc>, x: f64) -> Option<f64> {
        let z = self.z.z(x);
        self.z.push(x);
        self.averages.update(z)
    }

    fn save(&self) -> Result<Vec<u8>, EngineError> {
        checkpoint::encode(crate::DetectorKind::SpikeDensity.as_str(), self)
    }

    fn state_bytes(&self) -> usize {
        size_of::<Self>() + self.z.heap_bytes()
    }
}
