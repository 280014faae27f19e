#![doc = include_str!("../README.md")]

mod alarm;
mod calibrate;
mod detector;
mod engine;
mod error;
mod registry;
mod zscore;

pub use alarm::{alarm_events, AlarmConfig, AlarmState};
pub use calibrate::{score_to_tail, tail_to_score, CalibrationConfig, Calibrator, SCORE_DECADES};
pub use detector::{Detector, DetectorState};
pub use engine::{AnomalyDetectionEngine, DetectorEngine, EngineConfig, EngineStream, Scores, WindowingConfig};
pub use error::EngineError;
pub use registry::{parse_config, EngineFactory, EngineInfo, EngineRegistry};
pub use zscore::{RobustZ, RobustZConfig};
