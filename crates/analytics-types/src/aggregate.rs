//! `AggregatedAnomalyScore`: a roll-up of results to a node, a cluster or a tenant.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::result::{check_decades, check_score};
use crate::{ClusterId, ContractError, NodeId, TenantId};

/// How child scores are combined into a parent's score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AggregationStrategy {
    /// The largest child score: one bad metric makes a bad node.
    Max,
    /// The arithmetic mean of child scores.
    Mean,
    /// The mean weighted by per-metric weights (default weight 1).
    Weighted,
    /// The 95th percentile of child scores (linear interpolation between ranks).
    P95,
}

impl AggregationStrategy {
    /// Every strategy, in a fixed order.
    pub const ALL: [AggregationStrategy; 4] =
        [AggregationStrategy::Max, AggregationStrategy::Mean, AggregationStrategy::Weighted, AggregationStrategy::P95];

    /// The lowercase name used in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            AggregationStrategy::Max => "max",
            AggregationStrategy::Mean => "mean",
            AggregationStrategy::Weighted => "weighted",
            AggregationStrategy::P95 => "p95",
        }
    }
}

impl fmt::Display for AggregationStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AggregationStrategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AggregationStrategy::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| format!("unknown strategy {s:?}; expected max, mean, weighted or p95"))
    }
}

/// Which level of the hierarchy an aggregate describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AggregateLevel {
    /// A whole tenant.
    Tenant,
    /// One cluster of a tenant.
    Cluster,
    /// One node of a cluster.
    Node,
}

/// A score rolled up to a node, a cluster or a tenant.
///
/// `cluster_id` and `node_id` are absent for a tenant-level score; a node-level score must
/// name its cluster. `aggregate_score` is in [0, 1].
///
/// ```
/// use analytics_types::{AggregatedAnomalyScore, AggregationStrategy, ContractError};
///
/// let node = AggregatedAnomalyScore::new(
///     "acme", Some("prod"), Some("node-7"), AggregationStrategy::Max, 0.97, 6, 2,
/// )?;
/// assert_eq!(node.cluster_id().map(|c| c.as_str()), Some("prod"));
/// let err = AggregatedAnomalyScore::new(
///     "acme", None, Some("node-7"), AggregationStrategy::Max, 0.97, 6, 2,
/// ).unwrap_err();
/// assert!(matches!(err, ContractError::NodeWithoutCluster { .. }));
/// # Ok::<(), ContractError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawAggregate")]
pub struct AggregatedAnomalyScore {
    tenant_id: TenantId,
    cluster_id: Option<ClusterId>,
    node_id: Option<NodeId>,
    aggregation_strategy: AggregationStrategy,
    aggregate_score: f64,
    num_metrics_analyzed: usize,
    num_anomalies_detected: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    decades: Option<f64>,
}

#[derive(Deserialize)]
struct RawAggregate {
    tenant_id: TenantId,
    #[serde(default)]
    cluster_id: Option<ClusterId>,
    #[serde(default)]
    node_id: Option<NodeId>,
    aggregation_strategy: AggregationStrategy,
    aggregate_score: f64,
    num_metrics_analyzed: usize,
    num_anomalies_detected: usize,
    #[serde(default)]
    decades: Option<f64>,
}

impl TryFrom<RawAggregate> for AggregatedAnomalyScore {
    type Error = ContractError;
    fn try_from(r: RawAggregate) -> Result<Self, Self::Error> {
        let a = AggregatedAnomalyScore::from_ids(
            r.tenant_id,
            r.cluster_id,
            r.node_id,
            r.aggregation_strategy,
            r.aggregate_score,
            r.num_metrics_analyzed,
            r.num_anomalies_detected,
        )?;
        match r.decades {
            Some(d) => a.with_decades(d),
            None => Ok(a),
        }
    }
}

impl AggregatedAnomalyScore {
    /// Validates and builds an aggregate from string identifiers.
    pub fn new(
        tenant_id: &str,
        cluster_id: Option<&str>,
        node_id: Option<&str>,
        aggregation_strategy: AggregationStrategy,
        aggregate_score: f64,
        num_metrics_analyzed: usize,
        num_anomalies_detected: usize,
    ) -> Result<Self, ContractError> {
        Self::from_ids(
            TenantId::new(tenant_id)?,
            cluster_id.map(ClusterId::new).transpose()?,
            node_id.map(NodeId::new).transpose()?,
            aggregation_strategy,
            aggregate_score,
            num_metrics_analyzed,
            num_anomalies_detected,
        )
    }

    /// Validates and builds an aggregate from already-validated identifiers.
    pub fn from_ids(
        tenant_id: TenantId,
        cluster_id: Option<ClusterId>,
        node_id: Option<NodeId>,
        aggregation_strategy: AggregationStrategy,
        aggregate_score: f64,
        num_metrics_analyzed: usize,
        num_anomalies_detected: usize,
    ) -> Result<Self, ContractError> {
        if let (None, Some(node)) = (&cluster_id, &node_id) {
            return Err(ContractError::NodeWithoutCluster { node_id: node.to_string() });
        }
        check_score("aggregate_score", aggregate_score)?;
        Ok(Self {
            tenant_id,
            cluster_id,
            node_id,
            aggregation_strategy,
            aggregate_score,
            num_metrics_analyzed,
            num_anomalies_detected,
            decades: None,
        })
    }

    /// Attaches the evidence behind the score: the tail probability of the rarest point among
    /// what was rolled up, in decades, uncapped (see `AnomalyResult::with_decades`). Finite and
    /// at least 0.
    pub fn with_decades(mut self, decades: f64) -> Result<Self, ContractError> {
        self.decades = Some(check_decades(decades)?);
        Ok(self)
    }

    /// The evidence behind the score in decades, uncapped, if recorded.
    pub fn decades(&self) -> Option<f64> {
        self.decades
    }

    /// The tenant.
    pub fn tenant_id(&self) -> &TenantId {
        &self.tenant_id
    }
    /// The cluster, for cluster- and node-level scores.
    pub fn cluster_id(&self) -> Option<&ClusterId> {
        self.cluster_id.as_ref()
    }
    /// The node, for node-level scores.
    pub fn node_id(&self) -> Option<&NodeId> {
        self.node_id.as_ref()
    }
    /// Which level of the hierarchy this score describes.
    pub fn level(&self) -> AggregateLevel {
        match (&self.cluster_id, &self.node_id) {
            (_, Some(_)) => AggregateLevel::Node,
            (Some(_), None) => AggregateLevel::Cluster,
            (None, None) => AggregateLevel::Tenant,
        }
    }
    /// The strategy used.
    pub fn aggregation_strategy(&self) -> AggregationStrategy {
        self.aggregation_strategy
    }
    /// The score in [0, 1].
    pub fn aggregate_score(&self) -> f64 {
        self.aggregate_score
    }
    /// Number of metric series below this level that were analysed.
    pub fn num_metrics_analyzed(&self) -> usize {
        self.num_metrics_analyzed
    }
    /// Number of results below this level labelled anything but `normal`.
    pub fn num_anomalies_detected(&self) -> usize {
        self.num_anomalies_detected
    }
}
