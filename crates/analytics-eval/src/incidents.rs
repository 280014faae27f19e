//! Incidents scored against a ground truth of what happened together.
//!
//! A true incident is a set of series and the interval each was disturbed (the simulator's
//! cluster-wide events hit several series of a cluster at once; its other injections are one
//! series each). A found [`Incident`] *matches* a true one when one of its members is on a
//! series of the truth and overlaps its interval, extended by `slack` at the end (a detector
//! sees an event at the earliest when it has started, and a slow one some points later).
//!
//! - precision: found incidents that match some true incident, over all found;
//! - recall: true incidents matched by some found incident, over all true;
//! - for true incidents that span several nodes: how many come out as **one** incident naming
//!   their place (a truth within one cluster: an incident of that cluster, or of its tenant
//!   holding it; a truth across clusters: an incident of the tenant) and holding at least half
//!   of the nodes the truth disturbed; and how many found incidents each such truth is split
//!   into. Truths across clusters are also counted apart (`tenant_wide`).

use analytics_types::{ClusterId, Incident, IncidentMember, IncidentScope, SeriesKey};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

/// One series' part in a true incident.
#[derive(Debug, Clone, PartialEq)]
pub struct TruePart {
    /// The series.
    pub key: SeriesKey,
    /// First disturbed point.
    pub start: DateTime<Utc>,
    /// Last disturbed point.
    pub end: DateTime<Utc>,
}

/// Something that happened: one or more series disturbed together.
#[derive(Debug, Clone, PartialEq)]
pub struct TrueIncident {
    /// The series disturbed and when.
    pub parts: Vec<TruePart>,
}

impl TrueIncident {
    fn nodes(&self) -> Vec<(&ClusterId, &str)> {
        let mut v: Vec<(&ClusterId, &str)> =
            self.parts.iter().map(|p| (&p.key.cluster_id, p.key.node_id.as_str())).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Precision and recall of incidents, and how well multi-node events are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct IncidentScores {
    /// Incidents found.
    pub found: usize,
    /// Found incidents that match a true one.
    pub found_true: usize,
    /// True incidents.
    pub truth: usize,
    /// True incidents some found incident matches.
    pub truth_found: usize,
    /// True incidents spanning two or more nodes.
    pub wide: usize,
    /// Of those, how many come out as one cluster- or tenant-scope incident naming their cluster
    /// and holding at least half of the nodes they disturbed.
    pub wide_as_one: usize,
    /// Found incidents matching each wide true incident, summed (fragments; `wide` if each is one).
    pub wide_pieces: usize,
    /// Of the wide true incidents, those across several clusters of a tenant.
    pub tenant_wide: usize,
    /// Of those, how many come out as one tenant incident holding at least half their nodes.
    pub tenant_wide_as_one: usize,
}

impl IncidentScores {
    /// Found incidents that match a true one, over all found (1 when none is found).
    pub fn precision(&self) -> f64 {
        ratio(self.found_true, self.found)
    }
    /// True incidents found, over all true (1 when there is none).
    pub fn recall(&self) -> f64 {
        ratio(self.truth_found, self.truth)
    }
    /// Wide true incidents that come out as one incident naming their cluster.
    pub fn wide_as_one_rate(&self) -> f64 {
        ratio(self.wide_as_one, self.wide)
    }
    /// Adds another fleet's counts.
    pub fn add(&mut self, o: &IncidentScores) {
        self.found += o.found;
        self.found_true += o.found_true;
        self.truth += o.truth;
        self.truth_found += o.truth_found;
        self.wide += o.wide;
        self.wide_as_one += o.wide_as_one;
        self.wide_pieces += o.wide_pieces;
        self.tenant_wide += o.tenant_wide;
        self.tenant_wide_as_one += o.tenant_wide_as_one;
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

/// The members of `found` that match `truth` (see the module's description).
fn matches(found: &Incident, truth: &TrueIncident, slack: TimeDelta) -> usize {
    found.members().iter().filter(|m| matches_part(m, truth, slack)).count()
}

/// Scores found incidents against the truth; `slack` extends each true interval at its end.
pub fn score_incidents(found: &[Incident], truth: &[TrueIncident], slack: TimeDelta) -> IncidentScores {
    let found_true = found.iter().filter(|f| truth.iter().any(|t| matches(f, t, slack) > 0)).count();
    let truth_found = truth.iter().filter(|t| found.iter().any(|f| matches(f, t, slack) > 0)).count();
    let mut scores = IncidentScores {
        found: found.len(),
        found_true,
        truth: truth.len(),
        truth_found,
        wide: 0,
        wide_as_one: 0,
        wide_pieces: 0,
        tenant_wide: 0,
        tenant_wide_as_one: 0,
    };
    for t in truth.iter().filter(|t| t.nodes().len() >= 2) {
        scores.wide += 1;
        let pieces: Vec<&Incident> = found.iter().filter(|f| matches(f, t, slack) > 0).collect();
        scores.wide_pieces += pieces.len();
        let cluster = &t.parts[0].key.cluster_id;
        let across = t.parts.iter().any(|p| &p.key.cluster_id != cluster);
        let nodes = t.nodes();
        let one = pieces.iter().any(|f| {
            let names_cluster = match f.scope() {
                IncidentScope::Cluster => !across && f.cluster_id() == Some(cluster),
                IncidentScope::Tenant => f.members().iter().any(|m| &m.key.cluster_id == cluster),
                _ => false,
            };
            let held = nodes
                .iter()
                .filter(|(c, n)| {
                    f.members()
                        .iter()
                        .any(|m| &m.key.cluster_id == *c && m.key.node_id.as_str() == *n && matches_part(m, t, slack))
                })
                .count();
            names_cluster && 2 * held >= nodes.len()
        });
        scores.wide_as_one += usize::from(one);
        if across {
            scores.tenant_wide += 1;
            scores.tenant_wide_as_one += usize::from(one);
        }
    }
    scores
}

/// Whether a found member is on a series of the truth and overlaps its interval (plus slack).
fn matches_part(m: &IncidentMember, t: &TrueIncident, slack: TimeDelta) -> bool {
    t.parts.iter().any(|p| p.key == m.key && m.start <= p.end + slack && m.end >= p.start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use analytics_types::{AnomalyLabel, MetricSeries};

    fn t(minute: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + TimeDelta::days(19_800) + TimeDelta::minutes(minute)
    }
    fn key(node: &str, metric: &str) -> SeriesKey {
        MetricSeries::new("acme", "staging", node, metric, vec![], vec![]).unwrap().key()
    }
    fn member(node: &str, metric: &str, from: i64) -> IncidentMember {
        IncidentMember {
            key: key(node, metric),
            start: t(from),
            end: t(from + 2),
            score: 1.0,
            label: AnomalyLabel::Spike,
            peak_value: None,
            baseline: None,
            deviation_sigma: None,
            decades: None,
        }
    }
    fn part(node: &str, metric: &str, from: i64) -> TruePart {
        TruePart { key: key(node, metric), start: t(from), end: t(from + 3) }
    }

    #[test]
    fn counts_matches_and_groupings() {
        let wide = TrueIncident { parts: (1..=4).map(|n| part(&format!("node-{n:02}"), "error_rate", 100)).collect() };
        let single = TrueIncident { parts: vec![part("node-07", "cpu_usage", 500)] };
        let missed = TrueIncident { parts: vec![part("node-08", "cpu_usage", 900)] };
        let found = vec![
            // Three of the four nodes, as one cluster incident.
            Incident::new((1..=3).map(|n| member(&format!("node-{n:02}"), "error_rate", 101)).collect(), 8).unwrap(),
            // The fourth apart.
            Incident::new(vec![member("node-04", "error_rate", 104)], 8).unwrap(),
            // The single one, a few minutes late but within the slack.
            Incident::new(vec![member("node-07", "cpu_usage", 508)], 8).unwrap(),
            // A false one: right series, wrong time.
            Incident::new(vec![member("node-08", "cpu_usage", 300)], 8).unwrap(),
        ];
        let s = score_incidents(&found, &[wide, single, missed], TimeDelta::minutes(10));
        assert_eq!((s.found, s.found_true, s.truth, s.truth_found), (4, 3, 3, 2));
        assert_eq!((s.wide, s.wide_as_one, s.wide_pieces), (1, 1, 2));
        assert_eq!(s.precision(), 0.75);
        assert!((s.recall() - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn a_wide_event_split_into_single_series_is_not_one() {
        let wide = TrueIncident { parts: (1..=4).map(|n| part(&format!("node-{n:02}"), "error_rate", 100)).collect() };
        let found: Vec<Incident> = (1..=4)
            .map(|n| Incident::new(vec![member(&format!("node-{n:02}"), "error_rate", 100)], 8).unwrap())
            .collect();
        let s = score_incidents(&found, &[wide], TimeDelta::minutes(10));
        assert_eq!((s.wide, s.wide_as_one, s.wide_pieces, s.truth_found), (1, 0, 4, 1));
    }
}
