//! `MetricSeries`: one metric of one node, as timestamps and values.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{ClusterId, ContractError, MetricName, NodeId, SeriesKey, TenantId};

/// One metric of one node: strictly ascending UTC timestamps and finite values of equal length.
///
/// The fields are private so that a constructed series is always valid; deserialisation runs
/// the same checks as [`MetricSeries::new`].
///
/// ```
/// use analytics_types::MetricSeries;
/// use chrono::{TimeZone, Utc};
///
/// let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
/// let ts = vec![t0, t0 + chrono::Duration::minutes(1)];
/// let series = MetricSeries::new("acme", "prod", "node-7", "cpu_usage", ts, vec![41.0, 42.5])?;
/// assert_eq!(series.len(), 2);
///
/// let err = MetricSeries::new("acme", "prod", "node-7", "cpu_usage", vec![t0, t0], vec![1.0, 2.0])
///     .unwrap_err();
/// assert!(err.to_string().contains("duplicate"));
/// # Ok::<(), analytics_types::ContractError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawMetricSeries")]
pub struct MetricSeries {
    tenant_id: TenantId,
    cluster_id: ClusterId,
    node_id: NodeId,
    metric_name: MetricName,
    timestamps: Vec<DateTime<Utc>>,
    values: Vec<f64>,
}

/// The unchecked JSON form; converted to [`MetricSeries`] only through validation.
#[derive(Deserialize)]
struct RawMetricSeries {
    tenant_id: TenantId,
    cluster_id: ClusterId,
    node_id: NodeId,
    metric_name: MetricName,
    timestamps: Vec<DateTime<Utc>>,
    values: Vec<f64>,
}

impl TryFrom<RawMetricSeries> for MetricSeries {
    type Error = ContractError;
    fn try_from(raw: RawMetricSeries) -> Result<Self, Self::Error> {
        let key = SeriesKey {
            tenant_id: raw.tenant_id,
            cluster_id: raw.cluster_id,
            node_id: raw.node_id,
            metric_name: raw.metric_name,
        };
        Self::from_key(key, raw.timestamps, raw.values)
    }
}

/// Checks that timestamps are strictly ascending; names the first index at fault.
pub fn check_timestamps(timestamps: &[DateTime<Utc>]) -> Result<(), ContractError> {
    for (index, pair) in timestamps.windows(2).enumerate() {
        let (previous, current) = (pair[0], pair[1]);
        if current == previous {
            return Err(ContractError::DuplicateTimestamp { index: index + 1, timestamp: current });
        }
        if current < previous {
            return Err(ContractError::UnsortedTimestamps { index: index + 1, previous, current });
        }
    }
    Ok(())
}

impl MetricSeries {
    /// Validates and builds a series from its identifiers, timestamps and values.
    pub fn new(
        tenant_id: impl Into<String>,
        cluster_id: impl Into<String>,
        node_id: impl Into<String>,
        metric_name: impl Into<String>,
        timestamps: Vec<DateTime<Utc>>,
        values: Vec<f64>,
    ) -> Result<Self, ContractError> {
        let key = SeriesKey {
            tenant_id: TenantId::new(tenant_id)?,
            cluster_id: ClusterId::new(cluster_id)?,
            node_id: NodeId::new(node_id)?,
            metric_name: MetricName::new(metric_name)?,
        };
        Self::from_key(key, timestamps, values)
    }

    /// Validates and builds a series for an already-validated key.
    pub fn from_key(key: SeriesKey, timestamps: Vec<DateTime<Utc>>, values: Vec<f64>) -> Result<Self, ContractError> {
        if timestamps.len() != values.len() {
            return Err(ContractError::LengthMismatch { timestamps: timestamps.len(), values: values.len() });
        }
        if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(ContractError::NonFiniteValue { index, value });
        }
        check_timestamps(&timestamps)?;
        let SeriesKey { tenant_id, cluster_id, node_id, metric_name } = key;
        Ok(Self { tenant_id, cluster_id, node_id, metric_name, timestamps, values })
    }

    /// The tenant owning the series.
    pub fn tenant_id(&self) -> &TenantId {
        &self.tenant_id
    }
    /// The cluster of the node.
    pub fn cluster_id(&self) -> &ClusterId {
        &self.cluster_id
    }
    /// The node emitting the metric.
    pub fn node_id(&self) -> &NodeId {
        &self.node_id
    }
    /// The metric's name.
    pub fn metric_name(&self) -> &MetricName {
        &self.metric_name
    }
    /// The series' identity as one key (cloned).
    pub fn key(&self) -> SeriesKey {
        SeriesKey {
            tenant_id: self.tenant_id.clone(),
            cluster_id: self.cluster_id.clone(),
            node_id: self.node_id.clone(),
            metric_name: self.metric_name.clone(),
        }
    }
    /// Strictly ascending UTC timestamps.
    pub fn timestamps(&self) -> &[DateTime<Utc>] {
        &self.timestamps
    }
    /// Finite values, one per timestamp.
    pub fn values(&self) -> &[f64] {
        &self.values
    }
    /// Number of points.
    pub fn len(&self) -> usize {
        self.values.len()
    }
    /// Whether the series has no points.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
    /// Takes the series apart into key, timestamps and values.
    pub fn into_parts(self) -> (SeriesKey, Vec<DateTime<Utc>>, Vec<f64>) {
        let key = SeriesKey {
            tenant_id: self.tenant_id,
            cluster_id: self.cluster_id,
            node_id: self.node_id,
            metric_name: self.metric_name,
        };
        (key, self.timestamps, self.values)
    }
}
