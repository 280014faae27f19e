//! The detector abstraction: a raw anomaly score per point, computed causally.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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

/// The built-in detectors, by the one name each goes by: in engine configurations (the
/// ensemble's `members`), in the registry, and as [`Detector::name`]. Serialised as that name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectorKind {
    /// Robust rolling z-score ([`crate::RobustZ`]).
    RobustZscore,
    /// Seasonal baseline ([`crate::Seasonal`]).
    SeasonalBaseline,
    /// Spike density ([`crate::Density`]).
    SpikeDensity,
    /// Context novelty ([`crate::Novelty`]).
    ContextNovelty,
    /// CUSUM change points ([`crate::Cusum`]).
    Cusum,
    /// Multi-scale change ([`crate::LagChange`]).
    LagChange,
    /// Holt-Winters forecast errors ([`crate::HoltWinters`]).
    HoltWinters,
    /// Spectral residual ([`crate::SpectralResidual`]); not an ensemble member (one FFT pair a
    /// point).
    SpectralResidual,
    /// Isolation forest ([`crate::IForest`]); not an ensemble member (tens of KiB a series).
    IsolationForest,
}

impl DetectorKind {
    /// Every built-in detector.
    pub const ALL: [DetectorKind; 9] = [
        DetectorKind::RobustZscore,
        DetectorKind::SeasonalBaseline,
        DetectorKind::SpikeDensity,
        DetectorKind::ContextNovelty,
        DetectorKind::Cusum,
        DetectorKind::LagChange,
        DetectorKind::HoltWinters,
        DetectorKind::SpectralResidual,
        DetectorKind::IsolationForest,
    ];

    /// The name, as configurations and the registry spell it.
    pub const fn as_str(self) -> &'static str {
        match self {
            DetectorKind::RobustZscore => "robust_zscore",
            DetectorKind::SeasonalBaseline => "seasonal_baseline",
            DetectorKind::SpikeDensity => "spike_density",
            DetectorKind::ContextNovelty => "context_novelty",
            DetectorKind::Cusum => "cusum",
            DetectorKind::LagChange => "lag_change",
            DetectorKind::HoltWinters => "holt_winters",
            DetectorKind::SpectralResidual => "spectral_residual",
            DetectorKind::IsolationForest => "isolation_forest",
        }
    }

    /// Whether the ensemble can hold it: every detector with a small state of a few hundred
    /// bytes to a few KiB and at least a few million points a second.
    pub const fn is_member(self) -> bool {
        !matches!(self, DetectorKind::SpectralResidual | DetectorKind::IsolationForest)
    }
}

impl fmt::Display for DetectorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_serialises_as_its_name() {
        for kind in DetectorKind::ALL {
            let json = serde_json::to_string(&kind).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<DetectorKind>(&json).ok(), Some(kind));
        }
        let err = serde_json::from_str::<DetectorKind>("\"zscore\"").unwrap_err().to_string();
        assert!(err.starts_with("unknown variant `zscore`, expected one of `robust_zscore`"), "{err}");
    }
}
