#![doc = include_str!("../README.md")]

mod aggregate;
pub mod benchmark;
mod error;
mod ids;
mod incident;
mod result;
mod series;

pub use aggregate::{AggregateLevel, AggregatedAnomalyScore, AggregationStrategy};
pub use error::ContractError;
pub use ids::{ClusterId, MetricName, NodeId, SeriesKey, TenantId};
pub use incident::{Incident, IncidentMember, IncidentScope};
pub use result::{AnomalyLabel, AnomalyResult, Evidence};
pub use series::{check_timestamps, MetricSeries};
