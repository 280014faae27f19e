//! Incidents: anomalous events that start together, grouped across metrics, nodes and clusters.
//!
//! Each anomalous result names its event (first point and duration, in its evidence; a result
//! without one stands for its window). The events of a series that touch several windows are
//! one event. Within a cluster, events are taken in order of start, and an event joins the
//! current group when it starts within `join_seconds` of the group's latest start: a wave of
//! starts is one incident, however long its events last, so that one long event cannot chain
//! everything after it into one group. Groups of different clusters of one tenant that each
//! touch two or more nodes and start within `join_seconds` of each other are merged: that is
//! a tenant-wide incident. The scope of an incident is the smallest group holding its members
//! (series, node, cluster, tenant); see [`analytics_types::Incident`].
//!
//! Incidents are ordered breadth first: most nodes, then most events, then highest score, then
//! most evidence (decades of tail probability, uncapped), then earliest. A concurrent change on many nodes is what an on-call engineer looks at first, and
//! it is what scores alone cannot show when several saturate at 1.

use std::collections::BTreeMap;

use analytics_explain::explain_incident;
use analytics_types::{
    AggregatedAnomalyScore, AnomalyResult, ClusterId, ContractError, Incident, IncidentMember, SeriesKey, TenantId,
};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::rollup::most;
use crate::AggregateError;

/// How anomalous events are grouped into incidents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IncidentConfig {
    /// Events whose starts follow each other within this many seconds are one incident.
    pub join_seconds: i64,
}

impl Default for IncidentConfig {
    fn default() -> Self {
        Self { join_seconds: 300 }
    }
}

impl IncidentConfig {
    /// Checks the parameters.
    pub fn check(&self) -> Result<(), AggregateError> {
        if self.join_seconds < 0 {
            return Err(AggregateError::BadParameter {
                field: "incidents.join_seconds",
                value: self.join_seconds.to_string(),
                expected: "0 or more seconds",
            });
        }
        Ok(())
    }
}

/// Groups the anomalous results into incidents. `nodes` is the node-level roll-up (every node
/// analysed, anomalous or not), for how many nodes a cluster or tenant holds; `unit` gives a
/// metric's unit for the sentences, when known.
pub fn find_incidents(
    results: &[AnomalyResult],
    nodes: &[AggregatedAnomalyScore],
    config: &IncidentConfig,
    unit: &dyn Fn(&str) -> Option<&'static str>,
) -> Result<Vec<Incident>, AggregateError> {
    config.check()?;
    let join = TimeDelta::seconds(config.join_seconds);
    // Nodes per cluster and per tenant.
    let mut per_cluster: BTreeMap<(&TenantId, &ClusterId), usize> = BTreeMap::new();
    let mut per_tenant: BTreeMap<&TenantId, usize> = BTreeMap::new();
    for n in nodes.iter().filter(|n| n.node_id().is_some()) {
        if let Some(c) = n.cluster_id() {
            *per_cluster.entry((n.tenant_id(), c)).or_default() += 1;
            *per_tenant.entry(n.tenant_id()).or_default() += 1;
        }
    }

    // One member per event: the events of a series keyed by their start; an event that touches
    // several windows keeps its highest window score.
    let mut events: BTreeMap<(SeriesKey, DateTime<Utc>), IncidentMember> = BTreeMap::new();
    for r in results.iter().filter(|r| r.is_anomaly()) {
        let evidence = r.evidence();
        let (start, end) = evidence.and_then(|e| e.event_span()).unwrap_or((r.window_start(), r.window_end()));
        let member = IncidentMember {
            key: r.key(),
            start,
            end,
            score: r.anomaly_score(),
            label: r.anomaly_label(),
            peak_value: evidence.map(|e| e.peak_value),
            baseline: evidence.map(|e| e.baseline),
            deviation_sigma: evidence.map(|e| e.deviation_sigma),
            decades: r.decades(),
        };
        // An event that touches several windows keeps its highest score and evidence.
        events
            .entry((member.key.clone(), start))
            .and_modify(|m| {
                m.score = m.score.max(member.score);
                m.decades = most(m.decades, member.decades);
            })
            .or_insert(member);
    }

    // Per cluster, waves of starts.
    let mut by_cluster: BTreeMap<(TenantId, ClusterId), Vec<IncidentMember>> = BTreeMap::new();
    for ((key, _), m) in events {
        by_cluster.entry((key.tenant_id, key.cluster_id)).or_default().push(m);
    }
    let mut groups: BTreeMap<TenantId, Vec<Vec<IncidentMember>>> = BTreeMap::new();
    for ((tenant, _), mut members) in by_cluster {
        members.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.key.cmp(&b.key)));
        groups.entry(tenant).or_default().extend(waves(members, join));
    }

    let mut incidents = Vec::new();
    for (tenant, cluster_groups) in groups {
        for members in merge_across_clusters(cluster_groups, join) {
            let first = &members[0].key;
            let clusters_touched = members.iter().any(|m| m.key.cluster_id != first.cluster_id);
            let in_scope = if clusters_touched {
                per_tenant.get(&tenant).copied()
            } else {
                per_cluster.get(&(&tenant, &first.cluster_id)).copied()
            };
            let nodes_touched = distinct_nodes(&members);
            let incident = Incident::new(members, in_scope.unwrap_or(0).max(nodes_touched)).map_err(internal)?;
            let sentence = explain_incident(&incident, unit);
            incidents.push(incident.with_summary(sentence).map_err(internal)?);
        }
    }
    incidents.sort_by(|a, b| {
        b.nodes_affected()
            .cmp(&a.nodes_affected())
            .then(b.members().len().cmp(&a.members().len()))
            .then(b.score().total_cmp(&a.score()))
            .then(b.decades().total_cmp(&a.decades()))
            .then(a.start().cmp(&b.start()))
            .then_with(|| a.place().cmp(&b.place()))
    });
    Ok(incidents)
}

fn internal(e: ContractError) -> AggregateError {
    AggregateError::Internal(e.to_string())
}

fn distinct_nodes(members: &[IncidentMember]) -> usize {
    let mut nodes: Vec<(&ClusterId, &str)> =
        members.iter().map(|m| (&m.key.cluster_id, m.key.node_id.as_str())).collect();
    nodes.sort_unstable();
    nodes.dedup();
    nodes.len()
}

/// Splits members sorted by start into waves: a member joins the current wave when it starts
/// within `join` of the wave's latest start.
fn waves(members: Vec<IncidentMember>, join: TimeDelta) -> Vec<Vec<IncidentMember>> {
    let mut out: Vec<Vec<IncidentMember>> = Vec::new();
    for m in members {
        match out.last_mut() {
            Some(wave) if wave.last().is_some_and(|last| m.start - last.start <= join) => wave.push(m),
            _ => out.push(vec![m]),
        }
    }
    out
}

/// Merges one tenant's cluster waves that each touch two or more nodes and start within `join`
/// of each other; every other wave stays as it is.
fn merge_across_clusters(mut groups: Vec<Vec<IncidentMember>>, join: TimeDelta) -> Vec<Vec<IncidentMember>> {
    groups.sort_by(|a, b| a[0].start.cmp(&b[0].start).then_with(|| a[0].key.cmp(&b[0].key)));
    let mut out: Vec<Vec<IncidentMember>> = Vec::new();
    // Index in `out` of the open multi-node group and its latest start.
    let mut open: Option<(usize, DateTime<Utc>)> = None;
    for g in groups {
        if distinct_nodes(&g) < 2 {
            out.push(g);
            continue;
        }
        let latest = g.iter().map(|m| m.start).max().unwrap_or(g[0].start);
        match open {
            Some((i, last)) if g[0].start - last <= join => {
                out[i].extend(g);
                out[i].sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.key.cmp(&b.key)));
                open = Some((i, last.max(latest)));
            }
            _ => {
                open = Some((out.len(), latest));
                out.push(g);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use analytics_types::{AggregationStrategy, AnomalyLabel, Evidence, IncidentScope, MetricSeries};

    fn t(minute: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + TimeDelta::days(19_800) + TimeDelta::minutes(minute)
    }

    fn key(cluster: &str, node: &str, metric: &str) -> SeriesKey {
        MetricSeries::new("acme", cluster, node, metric, vec![], vec![]).unwrap().key()
    }

    /// An anomalous hourly window holding an event of `len` minutes from `minute`.
    fn result(cluster: &str, node: &str, metric: &str, minute: i64, len: i64, score: f64) -> AnomalyResult {
        let hour = minute / 60 * 60;
        let evidence = Evidence {
            deviation_sigma: 10.0 * score,
            peak_value: 2.0,
            peak_time: t(minute),
            baseline: 1.0,
            sigma: 0.1,
            level_before: 1.0,
            level_after: Some(1.0),
            expected_seasonal: None,
            period_seconds: None,
            duration_seconds: len * 60,
            num_points: len as usize,
            event_start: Some(t(minute)),
            level_during: None,
            spread_before: None,
            spread_during: None,
        };
        AnomalyResult::new(key(cluster, node, metric), t(hour), t(hour + 60), score, AnomalyLabel::Spike)
            .unwrap()
            .with_evidence(evidence)
            .unwrap()
            .with_decades(12.0 * score)
            .unwrap()
    }

    fn nodes(clusters: &[&str], per: usize) -> Vec<AggregatedAnomalyScore> {
        let mut v = Vec::new();
        for c in clusters {
            for n in 1..=per {
                let node = format!("node-{n:02}");
                v.push(
                    AggregatedAnomalyScore::new("acme", Some(c), Some(&node), AggregationStrategy::Max, 0.0, 6, 0)
                        .unwrap(),
                );
            }
        }
        v
    }

    fn find(results: &[AnomalyResult], nodes: &[AggregatedAnomalyScore]) -> Vec<Incident> {
        find_incidents(results, nodes, &IncidentConfig::default(), &|_| None).unwrap()
    }

    #[test]
    fn a_cluster_wide_wave_is_one_incident_naming_the_cluster_first() {
        let mut results: Vec<AnomalyResult> = (1..=8)
            .flat_map(|n| {
                let node = format!("node-{n:02}");
                [
                    result("staging", &node, "error_rate", 1006 + n % 2, 2, 1.0),
                    result("staging", &node, "request_latency_ms", 1006, 3, 0.9),
                ]
            })
            .collect();
        // Unrelated: one series hours earlier, with a higher deviation.
        results.push(result("staging", "node-03", "cpu_usage", 300, 30, 1.0));
        let found = find(&results, &nodes(&["staging", "prod"], 8));
        assert_eq!(found.len(), 2);
        let wide = &found[0];
        assert_eq!(wide.scope(), IncidentScope::Cluster);
        assert_eq!((wide.nodes_affected(), wide.nodes_in_scope(), wide.members().len()), (8, 8, 16));
        assert_eq!((wide.start(), wide.end()), (t(1006), t(1009)));
        assert!(
            wide.summary().starts_with("acme/staging: error_rate and request_latency_ms on 8 of 8 nodes from "),
            "{}",
            wide.summary()
        );
        assert_eq!(found[1].scope(), IncidentScope::Series);
    }

    #[test]
    fn an_event_across_two_windows_is_one_member() {
        // A 30-minute event from 00:50 touches the windows of hour 0 and hour 1.
        let a = result("staging", "node-01", "cpu_usage", 50, 30, 0.7);
        let b = AnomalyResult::new(a.key(), t(60), t(120), 0.9, AnomalyLabel::Spike)
            .unwrap()
            .with_evidence(a.evidence().unwrap().clone())
            .unwrap()
            .with_decades(15.0)
            .unwrap();
        let found = find(&[a, b], &nodes(&["staging"], 8));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].members().len(), 1);
        assert_eq!(found[0].score(), 0.9);
        // Its evidence is the larger of the two windows' (8.4 decades in hour 0, 15 in hour 1).
        assert_eq!(found[0].members()[0].decades, Some(15.0));
    }

    #[test]
    fn a_long_event_does_not_chain_later_starts() {
        let results = [
            result("staging", "node-01", "cpu_usage", 0, 600, 1.0),
            result("staging", "node-02", "cpu_usage", 2, 5, 1.0),
            result("staging", "node-03", "cpu_usage", 200, 5, 1.0),
        ];
        let found = find(&results, &nodes(&["staging"], 8));
        let sizes: Vec<usize> = found.iter().map(|i| i.members().len()).collect();
        assert_eq!(sizes, [2, 1]);
    }

    #[test]
    fn waves_in_two_clusters_at_once_are_one_tenant_incident() {
        let mut results = Vec::new();
        for c in ["prod", "staging"] {
            for n in 1..=3 {
                results.push(result(c, &format!("node-{n:02}"), "error_rate", 100 + n, 2, 1.0));
            }
        }
        // A single node elsewhere at the same time stays apart.
        results.push(result("test", "node-01", "disk_write_mbps", 101, 2, 1.0));
        let found = find(&results, &nodes(&["prod", "staging", "test"], 4));
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].scope(), IncidentScope::Tenant);
        assert_eq!((found[0].nodes_affected(), found[0].nodes_in_scope()), (6, 12));
        assert!(
            found[0].summary().contains("on 6 of 12 nodes in 2 clusters (prod and staging)"),
            "{}",
            found[0].summary()
        );
        assert_eq!(found[1].scope(), IncidentScope::Series);
    }

    #[test]
    fn nothing_anomalous_gives_no_incident_and_a_bad_join_is_refused() {
        let normal =
            AnomalyResult::new(key("staging", "node-01", "cpu_usage"), t(0), t(60), 0.1, AnomalyLabel::Normal).unwrap();
        assert!(find(&[normal], &nodes(&["staging"], 2)).is_empty());
        let err = find_incidents(&[], &[], &IncidentConfig { join_seconds: -1 }, &|_| None).unwrap_err();
        assert_eq!(err.to_string(), "incidents.join_seconds is -1; expected 0 or more seconds");
    }
}
