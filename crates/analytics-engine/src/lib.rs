#![doc = include_str!("../README.md")]

mod checkpoint;
mod detector;
mod detectors;
mod engine;
mod ensemble;
mod error;
mod registry;
mod scoring;

pub use detector::{Detector, DetectorKind, DetectorState};
pub use detectors::cusum::{Cusum, CusumConfig};
pub use detectors::density::{Density, DensityConfig};
pub use detectors::holt_winters::{HoltWinters, HoltWintersConfig};
pub use detectors::iforest::{IForest, IForestConfig};
pub use detectors::lag_change::{LagChange, LagChangeConfig};
pub use detectors::novelty::{Novelty, NoveltyConfig};
pub use detectors::seasonal::{Seasonal, SeasonalConfig};
pub use detectors::spectral::{SpectralConfig, SpectralResidual};
pub use detectors::zscore::{RobustZ, RobustZConfig};
pub use engine::{
    AnomalyDetectionEngine, DetectorConfig, DetectorEngine, EngineConfig, EngineStream, Scores, WindowingConfig,
};
pub use ensemble::record::RecordConfig;
pub use ensemble::recurrence::RecurrenceConfig;
pub use ensemble::{Combine, Ensemble, EnsembleConfig};
pub use error::EngineError;
pub use registry::{parse_config, EngineFactory, EngineInfo, EngineRegistry};
pub use scoring::alarm::{alarm_events, AlarmConfig, AlarmState, Rest};
pub use scoring::calibrate::{
    score_to_tail, surprise_to_score, tail_to_score, CalibrationConfig, Calibrator, SCORE_DECADES,
};
pub use scoring::calibrated::Calibrated;
