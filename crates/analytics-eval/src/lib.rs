#![doc = include_str!("../README.md")]

mod asd;
mod csv;
mod error;
mod metrics;
mod nab;

pub use asd::{hit_rate, AsdServer, Interpretation};
pub use error::EvalError;
pub use metrics::{best_point_adjusted_f1, segments, Accumulator, Prf};
pub use nab::{
    normalise, probation_len, results_path, NabCorpus, NabFile, NabScorer, Profile, ProfileScore, ThresholdScore,
    PROBATION_FRACTION, PROFILES,
};
