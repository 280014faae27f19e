#![doc = include_str!("../README.md")]

use analytics_types::{MetricSeries, SeriesKey, TenantId};
use chrono::{DateTime, Utc};

mod alertmanager;
mod benchmark;
mod error;
mod file;
mod prometheus;
mod scores;
mod store;
mod timestamp;

pub use alertmanager::{Alert, AlertmanagerClient};
pub use benchmark::{
    discover_corpora, nab_results_path, read_corpus, read_nab_corpus, read_nab_results, read_node, read_nodes,
};
pub use error::IoError;
pub use file::{FileFormat, FileOptions, FileSource, RepairReport, Repairs};
pub use prometheus::{
    decode_query_range, Decoded, LabelMapping, PrometheusConfig, PrometheusSource, CONCURRENT_QUERIES,
    MAX_POINTS_PER_QUERY, MIN_STEPS_PER_QUERY,
};
pub use scores::{write_nab_result, write_node_scores};
pub use store::{Checkpoint, Counts, ResultStore, RunRecord, SCHEMA_VERSION};
pub use timestamp::{parse_timestamp, TimestampFormat};

/// Which series of a tenant to fetch: each field, when set, must match exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    /// Only this cluster.
    pub cluster: Option<String>,
    /// Only this node.
    pub node: Option<String>,
    /// Only this metric.
    pub metric: Option<String>,
}

impl Selector {
    /// Everything.
    pub fn all() -> Self {
        Self::default()
    }

    /// Whether a series is selected.
    pub fn matches(&self, key: &SeriesKey) -> bool {
        self.cluster.as_deref().is_none_or(|c| c == key.cluster_id.as_str())
            && self.node.as_deref().is_none_or(|n| n == key.node_id.as_str())
            && self.metric.as_deref().is_none_or(|m| m == key.metric_name.as_str())
    }
}

/// A half-open time range `[from, to)`; an open end is unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    /// First instant included.
    pub from: Option<DateTime<Utc>>,
    /// First instant excluded.
    pub to: Option<DateTime<Utc>>,
}

impl TimeRange {
    /// The whole of time.
    pub fn all() -> Self {
        Self::default()
    }

    /// Whether `t` lies in the range.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.from.is_none_or(|f| t >= f) && self.to.is_none_or(|e| t < e)
    }
}

/// Where metrics come from: the integration contract of the platform.
///
/// `get_metric_series(tenant, selector, time range)` returns every series of the tenant (every
/// tenant when `None`) that the selector matches, restricted to the range, ordered by series key.
#[async_trait::async_trait]
pub trait MetricSource: Send + Sync {
    /// Fetches the selected series.
    async fn get_metric_series(
        &self,
        tenant: Option<&TenantId>,
        selector: &Selector,
        range: &TimeRange,
    ) -> Result<Vec<MetricSeries>, IoError>;

    /// What this source reads, for messages (`file fleet.csv`, `prometheus http://...`).
    fn describe(&self) -> String;
}
