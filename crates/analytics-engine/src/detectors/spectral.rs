//! Spectral residual (Ren et al., "Time-Series Anomaly Detection Service at Microsoft", KDD 2019):
//! the saliency map of computer vision applied to a series. The log amplitude spectrum of a
//! window, minus its local average, keeps what is unexpected in the spectrum; transformed back
//! (with the original phase), it highlights the points that stand out from the window's shape.
//! The score of a point is its saliency relative to the mean saliency of the `score_window`
//! points before it in the same saliency map: `(S - mean) / mean`.
//!
//! Causally, for each new point: the last `window` points, extended by `extend` estimated points
//! (so the newest point is not at the edge of the transform), go through an FFT; the log
//! amplitude minus its 3-point moving average is exponentiated with the original phase and
//! transformed back; the newest point's saliency, relative to the mean saliency of the
//! `score_window` points before it in that map, is the raw score. Cost: one FFT pair of `window + extend` points per
//! point, O(w log w).

use std::collections::VecDeque;
use std::fmt;
use std::mem::size_of;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};
use serde::{Deserialize, Serialize};

use crate::checkpoint;
use crate::detector::{Detector, DetectorState};
use crate::EngineError;

/// Parameters of the spectral residual detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpectralConfig {
    /// Points in each transformed window.
    pub window: usize,
    /// Estimated points appended after the newest one.
    pub extend: usize,
    /// Points before the newest whose mean saliency it is compared with.
    pub score_window: usize,
}

impl Default for SpectralConfig {
    fn default() -> Self {
        Self { window: 64, extend: 5, score_window: 21 }
    }
}

impl SpectralConfig {
    pub(crate) fn check(&self) -> Result<(), EngineError> {
        if self.window < 16 {
            return Err(EngineError::bad_param("window", self.window, "at least 16 points"));
        }
        if self.extend == 0 || self.extend >= self.window {
            return Err(EngineError::bad_param("extend", self.extend, "between 1 and window - 1"));
        }
        if self.score_window < 3 || self.score_window >= self.window {
            return Err(EngineError::bad_param("score_window", self.score_window, "between 3 and window - 1"));
        }
        Ok(())
    }
}

/// The spectral residual detector.
#[derive(Clone)]
pub struct SpectralResidual {
    cfg: SpectralConfig,
    forward: Arc<dyn Fft<f64>>,
    inverse: Arc<dyn Fft<f64>>,
}

impl fmt::Debug for SpectralResidual {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpectralResidual").field("cfg", &self.cfg).finish()
    }
}

impl SpectralResidual {
    /// Builds the detector (and its FFT plans) after checking its parameters.
    pub fn new(cfg: SpectralConfig) -> Result<Self, EngineError> {
        cfg.check()?;
        let n = cfg.window + cfg.extend;
        let mut planner = FftPlanner::new();
        Ok(Self { forward: planner.plan_fft_forward(n), inverse: planner.plan_fft_inverse(n), cfg })
    }
}

impl Detector for SpectralResidual {
    fn name(&self) -> &'static str {
        crate::DetectorKind::SpectralResidual.as_str()
    }
    /// Only the window of values is saved: the FFT plans come from the detector and the
    /// buffers are scratch, rewritten by every score.
    fn resume(&self, saved: &[u8]) -> Result<Box<dyn DetectorState>, EngineError> {
        let values: VecDeque<f64> = checkpoint::decode(self.name(), saved)?;
        if values.len() > self.cfg.window {
            let message = format!("{} values saved for a window of {}", values.len(), self.cfg.window);
            return Err(checkpoint::bad(self.name(), message));
        }
        let mut state = self.fresh();
        state.values.extend(values);
        Ok(Box::new(state))
    }

    fn start(&self) -> Box<dyn DetectorState> {
        Box::new(self.fresh())
    }
}

impl SpectralResidual {
    fn fresh(&self) -> SrState {
        let n = self.cfg.window + self.cfg.extend;
        SrState {
            cfg: self.cfg.clone(),
            forward: Arc::clone(&self.forward),
            inverse: Arc::clone(&self.inverse),
            values: VecDeque::with_capacity(self.cfg.window),
            buf: vec![Complex::new(0.0, 0.0); n],
            scratch: vec![
                Complex::new(0.0, 0.0);
                self.forward.get_inplace_scratch_len().max(self.inverse.get_inplace_scratch_len())
            ],
            log_amp: vec![0.0; n],
        }
    }
}

struct SrState {
    cfg: SpectralConfig,
    forward: Arc<dyn Fft<f64>>,
    inverse: Arc<dyn Fft<f64>>,
    values: VecDeque<f64>,
    buf: Vec<Complex<f64>>,
    scratch: Vec<Complex<f64>>,
    log_amp: Vec<f64>,
}

impl fmt::Debug for SrState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrState").field("points", &self.values.len()).finish()
    }
}

impl SrState {
    /// The newest point's saliency relative to the mean saliency of the points before it.
    fn score(&mut self) -> f64 {
        let w = self.values.len();
        let n = self.buf.len();
        // Estimate the next point as the reference implementation does: from the points before
        // the newest (so a spike cannot raise its own extension), the second of them plus the
        // sum of the slopes from each to the last of them.
        let look = 5.min(w - 2);
        let before = |k: usize| self.values[w - 2 - look + k]; // k = 0..=look, before(look) = values[w - 2]
        let last = before(look);
        let slope_sum: f64 = (0..look).map(|k| (last - before(k)) / (look - k) as f64).sum();
        let next = before(1) + slope_sum;
        for (i, c) in self.buf.iter_mut().enumerate() {
            *c = Complex::new(if i < w { self.values[i] } else { next }, 0.0);
        }
        self.forward.process_with_scratch(&mut self.buf, &mut self.scratch);
        for (l, c) in self.log_amp.iter_mut().zip(&self.buf) {
            *l = (c.norm() + 1e-12).ln();
        }
        for i in 0..n {
            // Spectral residual: log amplitude minus its 3-point moving average.
            let lo = i.saturating_sub(1);
            let hi = (i + 1).min(n - 1);
            let avg = self.log_amp[lo..=hi].iter().sum::<f64>() / (hi - lo + 1) as f64;
            let residual = self.log_amp[i] - avg;
            let amp = self.buf[i].norm();
            let phase = if amp > 0.0 { self.buf[i] / amp } else { Complex::new(1.0, 0.0) };
            self.buf[i] = phase * residual.exp();
        }
        self.inverse.process_with_scratch(&mut self.buf, &mut self.scratch);
        let z = self.cfg.score_window;
        let newest = self.buf[w - 1].norm();
        let mean = self.buf[w - 1 - z..w - 1].iter().map(|c| c.norm()).sum::<f64>() / z as f64;
        if mean > 0.0 {
            ((newest - mean) / mean).max(0.0)
        } else {
            0.0
        }
    }
}

impl DetectorState for SrState {
    fn update(&mut self, _t: DateTime<Utc>, x: f64) -> Option<f64> {
        if self.values.len() == self.cfg.window {
            self.values.pop_front();
        }
        self.values.push_back(x);
        if self.values.len() < self.cfg.window {
            return None;
        }
        Some(self.score())
    }

    fn save(&self) -> Result<Vec<u8>, EngineError> {
        checkpoint::encode(crate::DetectorKind::SpectralResidual.as_str(), &self.values)
    }

    fn state_bytes(&self) -> usize {
        size_of::<Self>()
            + (self.values.capacity() + self.log_amp.capacity()) * size_of::<f64>()
            + (self.buf.capacity() + self.scratch.capacity()) * size_of::<Complex<f64>>()
    }
}
