#![doc = include_str!("../README.md")]

mod shape;
mod text;

// Re-exported from analytics-numerics, where the detectors read them too (this crate's paths
// are kept for its users).
pub use analytics_numerics::seasonality::{
    autocorrelation, detect_period, median_step_seconds, Period, CALENDAR_PERIODS,
};
pub use analytics_numerics::stats;
pub use shape::{classify, Shape, ShapeConfig};
pub use text::{explain_incident, explain_series, format_duration, format_value, unit_of, worst_member};

/// An explanation was asked of an event that does not fit its series.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExplainError {
    /// The event's index range is empty or runs past the series.
    #[error("event {start}..{end} does not fit a series of {len} points")]
    BadEvent {
        /// First index of the event.
        start: usize,
        /// One past its last index.
        end: usize,
        /// Length of the series.
        len: usize,
    },
    /// Timestamps and values differ in length.
    #[error("timestamps has {timestamps} entries but values has {values}")]
    LengthMismatch {
        /// Number of timestamps.
        timestamps: usize,
        /// Number of values.
        values: usize,
    },
}
