#![doc = include_str!("../README.md")]

mod alarm;
mod calibrate;
mod checkpoint;
mod cusum;
mod density;
mod detector;
mod engine;
mod ensemble;
mod error;
mod holt_winters;
mod iforest;
mod lag_change;
mod novelty;
mod record;
mod recurrence;
mod registry;
mod seasonal;
mod spectral;
mod zscore;

pub use alarm::{alarm_events, AlarmConfig, AlarmState, Rest};
pub use calibrate::{score_to_tail, surprise_to_score, tail_to_score, CalibrationConfig, Calibrator, SCORE_DECADES};
pub use cusum::{Cusum, CusumConfig};
pub use density::{Density, DensityConfig};
pub use detector::{Detector, DetectorKind, DetectorState};
pub use engine::{
    AnomalyDetectionEngine, DetectorConfig, DetectorEngine, EngineConfig, EngineStream, Scores, WindowingConfig,
};
pub use ensemble::{Combine, Ensemble, EnsembleConfig};
pub use error::EngineError;
pub use holt_winters::{HoltWinters, HoltWintersConfig};
pub use iforest::{IForest, IForestConfig};
pub use lag_change::{LagChange, LagChangeConfig};
pub use novelty::{Novelty, NoveltyConfig};
pub use record::RecordConfig;
pub use recurrence::RecurrenceConfig;
pub use registry::{parse_config, EngineFactory, EngineInfo, EngineRegistry};
pub use seasonal::{Seasonal, SeasonalConfig};
pub use spectral::{SpectralConfig, SpectralResidual};
pub use zscore::{RobustZ, RobustZConfig};
