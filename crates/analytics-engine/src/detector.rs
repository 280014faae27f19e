//! The detector abstraction: a raw anomaly score per point, computed causally.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::EngineError;

/// Turns a series into one raw score per point, causally: the score at `t` uses only the points
/// up to and including `t`. Higher is more anomalous; the scale is the detector's own (the
/// engine's calibration maps it to [0, 1]).
///
/// A detector is a recipe; the per-series state lives in a [`DetectorState`] made by
/// [`Detector::start`]. The batch path ([`Detector::score_batch`]) and the streaming path
/// (feeding a state point by point) must give the same numbers; the provided `score_batch`
/// runs the streaming state, and a detector that overrides it for speed must keep that promise
/// (the crate's tests check every built-in detector).
pub trait Detector: Send + Sync + fmt::Debug {
    /// Short name, e.g. `robust_zscore`.
    fn name(&self) -> &'static str;

    /// A fresh streaming state for one series.
    fn start(&self) -> Box<dyn DetectorState>;

    /// Whether the raw score is already calibrated (an ensemble of calibrated members): decades
    /// of tail probability over ten, the score before it is capped at 1, so that the engine
    /// must not calibrate it again.
    fn is_calibrated(&self) -> bool {
        false
    }

    /// A streaming state saved by [`DetectorState::save`], resumed: it goes on exactly as the
    /// saved state would have. Refused (`BadCheckpoint`) when the bytes were not saved by this
    /// detector.
    fn resume(&self, saved: &[u8]) -> Result<Box<dyn DetectorState>, EngineError>;

    /// One raw score per point; `None` while the detector is still warming up.
    fn score_batch(&self, timestamps: &[DateTime<Utc>], values: &[f64]) -> Vec<Option<f64>> {
        let mut state = self.start();
        timestamps.iter().zip(values).map(|(&t, &x)| state.update(t, x)).collect()
    }
}

/// The streaming state of a detector for one series: small and bounded.
pub trait DetectorState: Send + fmt::Debug {
    /// Takes the next point and returns its raw score, or `None` while still warming up.
    fn update(&mut self, t: DateTime<Utc>, x: f64) -> Option<f64>;

    /// Heap and inline bytes this state holds (for capacity planning).
    fn state_bytes(&self) -> usize;

    /// The state as bytes, for [`Detector::resume`] (a service's checkpoint).
    fn save(&self) -> Result<Vec<u8>, EngineError>;
}
