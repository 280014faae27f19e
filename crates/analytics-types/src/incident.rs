//! `Incident`: anomalous events that happened together, on one series, one node, one cluster or
//! across a tenant, with their members and a sentence an on-call engineer can act on.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::result::check_score;
use crate::{AnomalyLabel, ClusterId, ContractError, NodeId, SeriesKey, TenantId};

/// How far an incident reaches: the smallest group that holds every member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentScope {
    /// One series.
    Series,
    /// Several metrics of one node.
    Node,
    /// Several nodes of one cluster.
    Cluster,
    /// Nodes of several clusters of one tenant.
    Tenant,
}

impl IncidentScope {
    /// The lowercase name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentScope::Series => "series",
            IncidentScope::Node => "node",
            IncidentScope::Cluster => "cluster",
            IncidentScope::Tenant => "tenant",
        }
    }
}

impl fmt::Display for IncidentScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One anomalous event of one series inside an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentMember {
    /// The series.
    pub key: SeriesKey,
    /// First point of the event.
    pub start: DateTime<Utc>,
    /// End of the event: its last point plus one sampling step.
    pub end: DateTime<Utc>,
    /// The highest calibrated score of the windows the event touches, in [0, 1].
    pub score: f64,
    /// The event's shape.
    pub label: AnomalyLabel,
    /// The value at the event's largest deviation, when the result carried evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_value: Option<f64>,
    /// The value expected there, when the result carried evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
    /// The largest deviation in robust standard deviations (signed), when the result carried
    /// evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deviation_sigma: Option<f64>,
    /// The event's evidence in decades of tail probability, uncapped, when recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decades: Option<f64>,
}

/// Anomalous events that overlap in time, grouped: what happened together, where, and when.
///
/// Invariants, checked on construction and when read from JSON: at least one member; every
/// member inside the scope (its tenant, and its cluster, node or series as the scope names);
/// the scope is the smallest that holds them all; `start` and `end` are the earliest member start
/// and latest member end; scores in [0, 1]; `nodes_in_scope` at least the nodes affected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawIncident")]
pub struct Incident {
    scope: IncidentScope,
    tenant_id: TenantId,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster_id: Option<ClusterId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    node_id: Option<NodeId>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    score: f64,
    nodes_affected: usize,
    nodes_in_scope: usize,
    members: Vec<IncidentMember>,
    summary: String,
}

#[derive(Deserialize)]
struct RawIncident {
    scope: IncidentScope,
    tenant_id: TenantId,
    #[serde(default)]
    cluster_id: Option<ClusterId>,
    #[serde(default)]
    node_id: Option<NodeId>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    score: f64,
    nodes_affected: usize,
    nodes_in_scope: usize,
    members: Vec<IncidentMember>,
    summary: String,
}

impl TryFrom<RawIncident> for Incident {
    type Error = ContractError;
    fn try_from(r: RawIncident) -> Result<Self, Self::Error> {
        let built = Incident::new(r.members, r.nodes_in_scope)?.with_summary(r.summary)?;
        let claimed = (r.scope, &r.tenant_id, r.cluster_id.as_ref(), r.node_id.as_ref());
        let found = (built.scope, &built.tenant_id, built.cluster_id.as_ref(), built.node_id.as_ref());
        if claimed != found {
            return Err(ContractError::IncidentScope {
                claimed: format!("{} {}", r.scope, scope_path(&r.tenant_id, r.cluster_id.as_ref(), r.node_id.as_ref())),
                found: format!("{} {}", built.scope, built.place()),
            });
        }
        for (field, claimed, found) in [("start", r.start, built.start), ("end", r.end, built.end)] {
            if claimed != found {
                return Err(ContractError::IncidentBounds { field, claimed, found });
            }
        }
        if r.score != built.score || r.nodes_affected != built.nodes_affected {
            return Err(ContractError::IncidentTotals {
                score: r.score,
                nodes_affected: r.nodes_affected,
                found_score: built.score,
                found_nodes: built.nodes_affected,
            });
        }
        Ok(built)
    }
}

fn scope_path(tenant: &TenantId, cluster: Option<&ClusterId>, node: Option<&NodeId>) -> String {
    let mut s = tenant.to_string();
    for part in [cluster.map(ClusterId::as_str), node.map(NodeId::as_str)].into_iter().flatten() {
        s.push('/');
        s.push_str(part);
    }
    s
}

impl Incident {
    /// Builds an incident from its members: the scope, bounds, score and nodes affected are
    /// derived from them. `nodes_in_scope` is how many nodes the scope holds (for "8 of 8
    /// nodes"). Its summary is a plain count ("2 events on 2 of 8 nodes of acme/staging")
    /// until [`Incident::with_summary`] gives it a sentence.
    ///
    /// ```
    /// use analytics_types::{AnomalyLabel, Incident, IncidentMember, IncidentScope, MetricSeries};
    /// use chrono::{TimeZone, Utc};
    ///
    /// let t = Utc.with_ymd_and_hms(2024, 3, 5, 16, 46, 0).unwrap();
    /// let member = |node: &str| -> Result<IncidentMember, analytics_types::ContractError> {
    ///     let key = MetricSeries::new("acme", "staging", node, "error_rate", vec![t], vec![1.9])?.key();
    ///     Ok(IncidentMember { key, start: t, end: t + chrono::Duration::minutes(2), score: 1.0,
    ///         label: AnomalyLabel::Spike, peak_value: None, baseline: None, deviation_sigma: None, decades: None })
    /// };
    /// let incident = Incident::new(vec![member("node-01")?, member("node-02")?], 8)?;
    /// assert_eq!(incident.scope(), IncidentScope::Cluster);
    /// assert_eq!(incident.summary(), "2 events on 2 of 8 nodes of acme/staging");
    /// # Ok::<(), analytics_types::ContractError>(())
    /// ```
    pub fn new(members: Vec<IncidentMember>, nodes_in_scope: usize) -> Result<Self, ContractError> {
        let Some(first) = members.first() else {
            return Err(ContractError::EmptyIncident);
        };
        for m in &members {
            check_score("members.score", m.score)?;
            if m.start > m.end {
                return Err(ContractError::IncidentMemberReversed {
                    key: m.key.to_string(),
                    start: m.start,
                    end: m.end,
                });
            }
            for (field, value) in [
                ("peak_value", m.peak_value),
                ("baseline", m.baseline),
                ("deviation_sigma", m.deviation_sigma),
                ("decades", m.decades),
            ] {
                if let Some(value) = value.filter(|v| !v.is_finite()) {
                    return Err(ContractError::NonFiniteEvidence { field, value });
                }
            }
        }
        let tenant_id = first.key.tenant_id.clone();
        if let Some(m) = members.iter().find(|m| m.key.tenant_id != tenant_id) {
            return Err(ContractError::IncidentTenants {
                first: tenant_id.to_string(),
                other: m.key.tenant_id.to_string(),
            });
        }
        let clusters: BTreeSet<&ClusterId> = members.iter().map(|m| &m.key.cluster_id).collect();
        let nodes: BTreeSet<(&ClusterId, &NodeId)> =
            members.iter().map(|m| (&m.key.cluster_id, &m.key.node_id)).collect();
        let series: BTreeSet<&SeriesKey> = members.iter().map(|m| &m.key).collect();
        let scope = if series.len() == 1 {
            IncidentScope::Series
        } else if nodes.len() == 1 {
            IncidentScope::Node
        } else if clusters.len() == 1 {
            IncidentScope::Cluster
        } else {
            IncidentScope::Tenant
        };
        let cluster_id = (scope != IncidentScope::Tenant).then(|| first.key.cluster_id.clone());
        let node_id = matches!(scope, IncidentScope::Series | IncidentScope::Node).then(|| first.key.node_id.clone());
        if nodes_in_scope < nodes.len() {
            return Err(ContractError::IncidentNodes { nodes_in_scope, nodes_affected: nodes.len() });
        }
        let start = members.iter().map(|m| m.start).min().unwrap_or(first.start);
        let end = members.iter().map(|m| m.end).max().unwrap_or(first.end);
        let score = members.iter().map(|m| m.score).fold(0.0, f64::max);
        let nodes_affected = nodes.len();
        let summary = format!(
            "{} on {} of {} of {}",
            count(members.len(), "event"),
            nodes_affected,
            count(nodes_in_scope, "node"),
            scope_path(&tenant_id, cluster_id.as_ref(), node_id.as_ref())
        );
        Ok(Self {
            scope,
            tenant_id,
            cluster_id,
            node_id,
            start,
            end,
            score,
            nodes_affected,
            nodes_in_scope,
            members,
            summary,
        })
    }

    /// Replaces the summary with `summary` (not empty).
    pub fn with_summary(mut self, summary: String) -> Result<Self, ContractError> {
        if summary.trim().is_empty() {
            return Err(ContractError::EmptySummary);
        }
        self.summary = summary;
        Ok(self)
    }

    /// How far it reaches.
    pub fn scope(&self) -> IncidentScope {
        self.scope
    }
    /// The tenant.
    pub fn tenant_id(&self) -> &TenantId {
        &self.tenant_id
    }
    /// The cluster, unless the incident spans several.
    pub fn cluster_id(&self) -> Option<&ClusterId> {
        self.cluster_id.as_ref()
    }
    /// The node, when the incident is on one node.
    pub fn node_id(&self) -> Option<&NodeId> {
        self.node_id.as_ref()
    }
    /// The scope as a path: `tenant`, `tenant/cluster` or `tenant/cluster/node`.
    pub fn place(&self) -> String {
        scope_path(&self.tenant_id, self.cluster_id.as_ref(), self.node_id.as_ref())
    }
    /// First point of the earliest member.
    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }
    /// End of the latest member.
    pub fn end(&self) -> DateTime<Utc> {
        self.end
    }
    /// The highest member score.
    pub fn score(&self) -> f64 {
        self.score
    }
    /// The most evidence among the members, in decades of tail probability (0 when none
    /// recorded any).
    pub fn decades(&self) -> f64 {
        self.members.iter().filter_map(|m| m.decades).fold(0.0, f64::max)
    }
    /// Distinct nodes among the members.
    pub fn nodes_affected(&self) -> usize {
        self.nodes_affected
    }
    /// Nodes the scope holds (the cluster's nodes for a cluster incident, and so on).
    pub fn nodes_in_scope(&self) -> usize {
        self.nodes_in_scope
    }
    /// The events, as given.
    pub fn members(&self) -> &[IncidentMember] {
        &self.members
    }
    /// The sentence that describes it.
    pub fn summary(&self) -> &str {
        &self.summary
    }
}

fn count(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}
