//! Metric -> node -> cluster -> tenant roll-ups and the top-N of nodes.

use std::collections::BTreeMap;

use analytics_types::{
    AggregatedAnomalyScore, AggregationStrategy, AnomalyResult, ClusterId, NodeId, SeriesKey, TenantId,
};
use serde::{Deserialize, Serialize};

use crate::AggregateError;

/// How to roll scores up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AggregateConfig {
    /// The strategy used at every level.
    pub strategy: AggregationStrategy,
    /// Per-metric weights for `weighted` (metric name -> weight); unlisted metrics weigh 1.
    pub weights: BTreeMap<String, f64>,
}

impl Default for AggregateConfig {
    fn default() -> Self {
        Self { strategy: AggregationStrategy::Max, weights: BTreeMap::new() }
    }
}

impl AggregateConfig {
    /// Checks that every weight is finite and non-negative.
    pub fn check(&self) -> Result<(), AggregateError> {
        match self.weights.iter().find(|(_, w)| !(w.is_finite() && **w >= 0.0)) {
            Some((metric, &value)) => Err(AggregateError::BadWeight { metric: metric.clone(), value }),
            None => Ok(()),
        }
    }

    fn weight(&self, metric: &str) -> f64 {
        self.weights.get(metric).copied().unwrap_or(1.0)
    }
}

/// One metric series' verdict over the analysed range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricSummary {
    /// The series.
    pub key: SeriesKey,
    /// Highest score of its results.
    pub score: f64,
    /// The evidence of its rarest anomalous result (labelled anything but `normal`), in decades
    /// of tail probability, uncapped; None when no anomalous result recorded any.
    pub decades: Option<f64>,
    /// Results labelled anything but `normal`.
    pub anomalies: usize,
    /// Its most anomalous result (highest score among the non-normal ones, else the highest).
    pub worst: Option<AnomalyResult>,
}

/// Groups results by series and summarises each. Output is sorted by series key.
pub fn summarise(results: &[AnomalyResult]) -> Vec<MetricSummary> {
    let mut by_key: BTreeMap<SeriesKey, MetricSummary> = BTreeMap::new();
    for r in results {
        let entry = by_key.entry(r.key()).or_insert_with(|| MetricSummary {
            key: r.key(),
            score: 0.0,
            decades: None,
            anomalies: 0,
            worst: None,
        });
        entry.score = entry.score.max(r.anomaly_score());
        if r.is_anomaly() {
            entry.decades = most(entry.decades, r.decades());
        }
        entry.anomalies += usize::from(r.is_anomaly());
        let better = match &entry.worst {
            None => true,
            Some(w) => {
                let rank = |x: &AnomalyResult| (x.is_anomaly(), x.anomaly_score(), x.decades().unwrap_or(0.0));
                rank(r) > rank(w)
            }
        };
        if better {
            entry.worst = Some(r.clone());
        }
    }
    by_key.into_values().collect()
}

/// The larger of two optional evidences.
pub(crate) fn most(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Combines child scores with their weights under a strategy. Empty input scores 0.
pub fn combine(strategy: AggregationStrategy, scores: &[(f64, f64)]) -> f64 {
    if scores.is_empty() {
        return 0.0;
    }
    let value = match strategy {
        AggregationStrategy::Max => scores.iter().map(|s| s.0).fold(0.0, f64::max),
        AggregationStrategy::Mean => scores.iter().map(|s| s.0).sum::<f64>() / scores.len() as f64,
        AggregationStrategy::Weighted => {
            let total: f64 = scores.iter().map(|s| s.1).sum();
            if total > 0.0 {
                scores.iter().map(|(s, w)| s * w).sum::<f64>() / total
            } else {
                0.0
            }
        }
        AggregationStrategy::P95 => {
            let mut v: Vec<f64> = scores.iter().map(|s| s.0).collect();
            v.sort_by(f64::total_cmp);
            let pos = 0.95 * (v.len() - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
        }
    };
    value.clamp(0.0, 1.0)
}

/// Every level's aggregates, each sorted by its ids.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rollup {
    /// One per node.
    pub nodes: Vec<AggregatedAnomalyScore>,
    /// One per cluster.
    pub clusters: Vec<AggregatedAnomalyScore>,
    /// One per tenant.
    pub tenants: Vec<AggregatedAnomalyScore>,
}

/// A child's score, its weight (sum of its metric weights), its counts and its evidence.
#[derive(Debug, Clone, Copy, Default)]
struct Acc {
    weight: f64,
    metrics: usize,
    anomalies: usize,
    decades: Option<f64>,
}

/// One level's aggregates, and each parent's (score, totals) for the level above.
type Level<K> = (Vec<AggregatedAnomalyScore>, BTreeMap<K, (f64, Acc)>);

fn build<K: Ord + Clone>(
    children: &BTreeMap<K, Vec<(f64, Acc)>>,
    strategy: AggregationStrategy,
    make: impl Fn(&K, f64, usize, usize) -> Result<AggregatedAnomalyScore, analytics_types::ContractError>,
) -> Result<Level<K>, AggregateError> {
    let mut out = Vec::with_capacity(children.len());
    let mut up = BTreeMap::new();
    for (key, kids) in children {
        let pairs: Vec<(f64, f64)> = kids.iter().map(|(s, a)| (*s, a.weight)).collect();
        let score = combine(strategy, &pairs);
        let acc = kids.iter().fold(Acc::default(), |t, (_, a)| Acc {
            weight: t.weight + a.weight,
            metrics: t.metrics + a.metrics,
            anomalies: t.anomalies + a.anomalies,
            decades: most(t.decades, a.decades),
        });
        let mut aggregate = make(key, score, acc.metrics, acc.anomalies).map_err(AggregateError::internal)?;
        if let Some(d) = acc.decades {
            aggregate = aggregate.with_decades(d).map_err(AggregateError::internal)?;
        }
        out.push(aggregate);
        up.insert(key.clone(), (score, acc));
    }
    Ok((out, up))
}

/// Rolls metric summaries up to nodes, clusters and tenants. Each level combines the level below
/// it (node = strategy over its metrics; cluster = over its nodes; tenant = over its clusters);
/// for `weighted`, a node or cluster weighs the sum of its metrics' weights. Whatever the
/// strategy, an aggregate's evidence (`decades`) is that of its rarest labelled anomaly: the
/// most of its children's. Tenants never mix: every key below a tenant includes the tenant.
pub fn roll_up(metrics: &[MetricSummary], cfg: &AggregateConfig) -> Result<Rollup, AggregateError> {
    cfg.check()?;
    let s = cfg.strategy;
    let mut per_node: BTreeMap<(TenantId, ClusterId, NodeId), Vec<(f64, Acc)>> = BTreeMap::new();
    for m in metrics {
        let k = &m.key;
        per_node.entry((k.tenant_id.clone(), k.cluster_id.clone(), k.node_id.clone())).or_default().push((
            m.score,
            Acc { weight: cfg.weight(k.metric_name.as_str()), metrics: 1, anomalies: m.anomalies, decades: m.decades },
        ));
    }
    let (nodes, node_up) = build(&per_node, s, |(t, c, n), score, nm, na| {
        AggregatedAnomalyScore::from_ids(t.clone(), Some(c.clone()), Some(n.clone()), s, score, nm, na)
    })?;
    let mut per_cluster: BTreeMap<(TenantId, ClusterId), Vec<(f64, Acc)>> = BTreeMap::new();
    for ((t, c, _), v) in node_up {
        per_cluster.entry((t, c)).or_default().push(v);
    }
    let (clusters, cluster_up) = build(&per_cluster, s, |(t, c), score, nm, na| {
        AggregatedAnomalyScore::from_ids(t.clone(), Some(c.clone()), None, s, score, nm, na)
    })?;
    let mut per_tenant: BTreeMap<TenantId, Vec<(f64, Acc)>> = BTreeMap::new();
    for ((t, _), v) in cluster_up {
        per_tenant.entry(t).or_default().push(v);
    }
    let (tenants, _) = build(&per_tenant, s, |t, score, nm, na| {
        AggregatedAnomalyScore::from_ids(t.clone(), None, None, s, score, nm, na)
    })?;
    Ok(Rollup { nodes, clusters, tenants })
}

/// The `n` highest-scoring of `scores`, highest first. Equal scores (common at the top: scores
/// reach 1 for tail probabilities of 1e-10 and below) are ordered by their evidence (the decades
/// of tail probability of their rarest labelled anomaly, uncapped: the rarer first; none counts
/// as 0, so a node with labelled anomalies outranks one whose maximum is a single unlabelled
/// point), then by anomalous windows, most first; full ties are broken by tenant, cluster, node
/// id.
pub fn top_n(scores: &[AggregatedAnomalyScore], n: usize) -> Vec<AggregatedAnomalyScore> {
    let mut v: Vec<&AggregatedAnomalyScore> = scores.iter().collect();
    v.sort_by(|a, b| {
        b.aggregate_score()
            .total_cmp(&a.aggregate_score())
            .then_with(|| b.decades().unwrap_or(0.0).total_cmp(&a.decades().unwrap_or(0.0)))
            .then_with(|| b.num_anomalies_detected().cmp(&a.num_anomalies_detected()))
            .then_with(|| a.tenant_id().cmp(b.tenant_id()))
            .then_with(|| a.cluster_id().cmp(&b.cluster_id()))
            .then_with(|| a.node_id().cmp(&b.node_id()))
    });
    v.into_iter().take(n).cloned().collect()
}
