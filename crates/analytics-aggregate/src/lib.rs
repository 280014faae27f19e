#![doc = include_str!("../README.md")]

mod incidents;
mod pipeline;
mod rollup;

pub use incidents::{find_incidents, IncidentConfig};
pub use pipeline::{explain_node, nodes_of, FleetPipeline, FleetReport, RankedNode, StageSeconds, StreamingRun};
pub use rollup::{combine, roll_up, summarise, top_n, AggregateConfig, MetricSummary, Rollup};

/// Errors of aggregation and of the fleet pipeline.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AggregateError {
    /// A per-metric weight is negative or not finite.
    #[error("weight for metric {metric:?} is {value}; weights must be finite and non-negative")]
    BadWeight {
        /// The metric.
        metric: String,
        /// The weight given.
        value: f64,
    },
    /// A parameter is out of range.
    #[error("{field} is {value}; expected {expected}")]
    BadParameter {
        /// The parameter.
        field: &'static str,
        /// The value given.
        value: String,
        /// What it must be.
        expected: &'static str,
    },
    /// The same series appeared twice in the input.
    #[error("series {key} appears more than once in the input")]
    DuplicateSeries {
        /// The series, as tenant/cluster/node/metric.
        key: String,
    },
    /// An engine failed on a series.
    #[error(transparent)]
    Engine(#[from] analytics_engine::EngineError),
    /// The thread pool could not be built.
    #[error("could not start the thread pool: {0}")]
    ThreadPool(String),
    /// A bug: an aggregate broke its contract.
    #[error("internal error (a bug, please report it): {0}")]
    Internal(String),
}

impl AggregateError {
    fn internal(e: analytics_types::ContractError) -> Self {
        AggregateError::Internal(e.to_string())
    }
}
