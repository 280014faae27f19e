//! The engine crate's error type.

use chrono::{DateTime, Utc};

/// Errors of engines and the registry. `UnknownEngine`, `BadConfig`, `WrongSeries` and
/// `WindowOutsideSeries` are the caller's mistakes; `Internal` is a bug of ours.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// No engine of that name is registered.
    #[error("unknown engine {name:?}; known engines: {known}")]
    UnknownEngine {
        /// The name asked for.
        name: String,
        /// Every registered name, comma-separated.
        known: String,
    },
    /// The configuration could not be parsed or a parameter is out of range.
    #[error("bad configuration for engine {engine:?}: {message}")]
    BadConfig {
        /// The engine.
        engine: String,
        /// What is wrong, naming the field.
        message: String,
    },
    /// A parameter is out of its range.
    #[error("parameter {field} is {value}; it must be {expected}")]
    BadParameter {
        /// The parameter's name.
        field: &'static str,
        /// Its value, as text.
        value: String,
        /// The range it must be in.
        expected: &'static str,
    },
    /// `explain` was given a result of another series.
    #[error("the result is for {result}, not for series {series}")]
    WrongSeries {
        /// The series given.
        series: String,
        /// The series the result names.
        result: String,
    },
    /// `explain` was given a result whose window lies after the series' end.
    #[error("the result's window starting {window_start} lies after the series' last point")]
    WindowOutsideSeries {
        /// The window's start.
        window_start: DateTime<Utc>,
    },
    /// Explanation failed.
    #[error(transparent)]
    Explain(#[from] analytics_explain::ExplainError),
    /// A saved stream state cannot be resumed: it is damaged, or was saved by another engine
    /// or another configuration (start that series afresh).
    #[error("cannot resume engine {engine:?} from its saved state: {message}")]
    BadCheckpoint {
        /// The engine asked to resume.
        engine: String,
        /// What does not match.
        message: String,
    },
    /// A bug: an internal invariant broke.
    #[error("internal error (a bug, please report it): {0}")]
    Internal(String),
}

impl EngineError {
    pub(crate) fn bad_param(field: &'static str, value: impl ToString, expected: &'static str) -> Self {
        EngineError::BadParameter { field, value: value.to_string(), expected }
    }
}
