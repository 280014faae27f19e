//! The series the service tracks: one engine stream each, fed point by point, with the recent
//! points, scores and events the API shows; rankings and live incidents computed from them.
//!
//! Late and repeated points are handled as Prometheus' storage handles samples: a point older
//! than the series' newest is out of order and dropped; a point at the newest's timestamp is a
//! duplicate and dropped (the first value kept). Both are counted. After a restart, or a poll
//! retried after a source error, the overlap with what a series has already taken is expected
//! and lands in the duplicate count.

use std::collections::{BTreeMap, VecDeque};

use analytics_engine::{AnomalyDetectionEngine, EngineStream};
use analytics_explain::{classify, explain_series, ShapeConfig};
use analytics_types::{AnomalyLabel, SeriesKey};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ServeError;

/// Most closed events kept per series.
pub(crate) const EVENTS_KEPT: usize = 16;

/// One point as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// When.
    pub t: DateTime<Utc>,
    /// The value polled.
    pub value: f64,
    /// Its calibrated anomaly score.
    pub score: f64,
    /// The evidence behind the score: `-log10` of its tail probability, not capped as the
    /// score is at 1 (10 decades); it orders points that both score 1.
    pub decades: f64,
}

/// An alarm event of a series, closed, with its sentence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// First point of the event.
    pub start: DateTime<Utc>,
    /// Last point of the event.
    pub end: DateTime<Utc>,
    /// Highest score in it.
    pub peak: f64,
    /// Its shape.
    pub label: AnomalyLabel,
    /// What happened, in a sentence.
    pub explanation: String,
}

/// A series' current anomaly: from its first point at or above the anomalous score to its
/// last, and the highest score between.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Hot {
    pub(crate) since: DateTime<Utc>,
    pub(crate) last: DateTime<Utc>,
    pub(crate) peak: f64,
    /// The most evidence of its points, in decades.
    pub(crate) decades: f64,
}

/// A tracked series.
#[derive(Debug)]
pub(crate) struct Tracked {
    stream: Box<dyn EngineStream>,
    /// Points taken since the stream started (the engine's event indices count from there).
    points: u64,
    /// The newest points, oldest first, at most `keep`.
    pub(crate) recent: VecDeque<Point>,
    /// Closed events, oldest first, at most [`EVENTS_KEPT`].
    pub(crate) events: VecDeque<Event>,
    /// Its current anomaly, if any.
    pub(crate) hot: Option<Hot>,
}

impl Tracked {
    pub(crate) fn last(&self) -> Option<&Point> {
        self.recent.back()
    }
}

/// What is saved of a series at a checkpoint. Kept points are saved as (seconds, nanoseconds,
/// value, score): compact, where the API's RFC 3339 text would triple their size.
#[derive(Serialize, Deserialize)]
struct Saved {
    stream: Vec<u8>,
    points: u64,
    recent: Vec<(i64, u32, f64, f64, f64)>,
    events: Vec<Event>,
    hot: Option<Hot>,
}

/// Points dropped while feeding, by reason.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Dropped {
    /// Older than the series' newest point.
    pub out_of_order: u64,
    /// At the series' newest timestamp.
    pub duplicate: u64,
}

/// Every tracked series.
#[derive(Debug)]
pub(crate) struct Fleet {
    pub(crate) series: BTreeMap<SeriesKey, Tracked>,
    keep: usize,
    anomalous_score: f64,
    resolve: chrono::TimeDelta,
    shape: ShapeConfig,
    pub(crate) dropped: Dropped,
    pub(crate) points_total: u64,
}

/// A live series as the rankings, roll-ups and incidents read it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Live<'a> {
    pub(crate) key: &'a SeriesKey,
    pub(crate) series: &'a Tracked,
    pub(crate) newest: &'a Point,
    pub(crate) hot: bool,
    pub(crate) standing: f64,
    pub(crate) decades: f64,
}

/// A ranking row: a tenant, cluster, node or series and how it stands now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Standing {
    /// The name at this level (tenant, cluster, node or metric).
    pub name: String,
    /// Highest standing score of its series: a series in an anomaly stands at the anomaly's
    /// peak until it resolves, any other at its newest point's score.
    pub score: f64,
    /// The evidence behind that standing, in decades (uncapped: it orders rows that all score 1).
    pub decades: f64,
    /// Series in an anomaly (a point at or above `anomalous_score` within `resolve_seconds`).
    pub anomalous: usize,
    /// Series tracked (not stale).
    pub series: usize,
}

impl Fleet {
    pub(crate) fn new(keep: usize, anomalous_score: f64, resolve_seconds: i64) -> Self {
        Self {
            series: BTreeMap::new(),
            keep,
            anomalous_score,
            resolve: chrono::TimeDelta::seconds(resolve_seconds),
            shape: ShapeConfig::default(),
            dropped: Dropped::default(),
            points_total: 0,
        }
    }

    /// Feeds one series' points (in time order, as polled); returns the events that closed.
    pub(crate) fn feed(
        &mut self,
        engine: &dyn AnomalyDetectionEngine,
        key: &SeriesKey,
        points: &[(DateTime<Utc>, f64)],
    ) -> Vec<Event> {
        let keep = self.keep;
        let tracked = self.series.entry(key.clone()).or_insert_with(|| Tracked {
            stream: engine.stream(),
            points: 0,
            recent: VecDeque::with_capacity(keep.min(64)),
            events: VecDeque::new(),
            hot: None,
        });
        let mut closed = Vec::new();
        for &(t, value) in points {
            if let Some(last) = tracked.recent.back() {
                if t < last.t {
                    self.dropped.out_of_order += 1;
                    continue;
                }
                if t == last.t {
                    self.dropped.duplicate += 1;
                    continue;
                }
            }
            let (score, event) = tracked.stream.update(t, value);
            tracked.points += 1;
            self.points_total += 1;
            if tracked.recent.len() == keep {
                tracked.recent.pop_front();
            }
            let decades = tracked.stream.decades();
            tracked.recent.push_back(Point { t, value, score, decades });
            if tracked.hot.is_some_and(|h| t - h.last > self.resolve) {
                tracked.hot = None;
            }
            if score >= self.anomalous_score {
                let h = tracked.hot.get_or_insert(Hot { since: t, last: t, peak: score, decades });
                h.last = t;
                h.peak = h.peak.max(score);
                h.decades = h.decades.max(decades);
            }
            if let Some(range) = event {
                if let Some(e) = describe(key, tracked, range, &self.shape) {
                    if tracked.events.len() == EVENTS_KEPT {
                        tracked.events.pop_front();
                    }
                    tracked.events.push_back(e.clone());
                    closed.push(e);
                }
            }
        }
        closed
    }

    /// Drops the series with no point since `before`; returns how many.
    pub(crate) fn forget(&mut self, before: DateTime<Utc>) -> usize {
        let n = self.series.len();
        self.series.retain(|_, s| s.last().is_some_and(|p| p.t >= before));
        n - self.series.len()
    }

    /// Every series' state, encoded, with its newest timestamp and point count.
    pub(crate) fn save(&self) -> Result<Vec<analytics_io::Checkpoint>, ServeError> {
        let mut out = Vec::with_capacity(self.series.len());
        for (key, s) in &self.series {
            let Some(last) = s.last() else { continue };
            let saved = Saved {
                stream: s.stream.save()?,
                points: s.points,
                recent: s
                    .recent
                    .iter()
                    .map(|p| (p.t.timestamp(), p.t.timestamp_subsec_nanos(), p.value, p.score, p.decades))
                    .collect(),
                events: s.events.iter().cloned().collect(),
                hot: s.hot,
            };
            let state = postcard::to_allocvec(&saved)
                .map_err(|e| ServeError::Internal(format!("the state of {key} does not encode: {e}")))?;
            out.push(analytics_io::Checkpoint { key: key.clone(), last_timestamp: last.t, points: s.points, state });
        }
        Ok(out)
    }

    /// Restores a checkpoint; an error names the series (the caller starts it afresh).
    pub(crate) fn restore(
        &mut self,
        engine: &dyn AnomalyDetectionEngine,
        checkpoint: &analytics_io::Checkpoint,
    ) -> Result<(), ServeError> {
        let bad = |message: String| ServeError::Checkpoint { series: checkpoint.key.to_string(), message };
        let saved: Saved = postcard::from_bytes(&checkpoint.state).map_err(|e| bad(format!("undecodable: {e}")))?;
        let stream = engine.resume(&saved.stream).map_err(|e| bad(e.to_string()))?;
        let mut recent = VecDeque::with_capacity(saved.recent.len());
        for (secs, nanos, value, score, decades) in saved.recent {
            let t = DateTime::from_timestamp(secs, nanos)
                .ok_or_else(|| bad(format!("a kept point's time {secs} is out of range")))?;
            recent.push_back(Point { t, value, score, decades });
        }
        while recent.len() > self.keep {
            recent.pop_front();
        }
        let tracked = Tracked { stream, points: saved.points, recent, events: saved.events.into(), hot: saved.hot };
        self.series.insert(checkpoint.key.clone(), tracked);
        Ok(())
    }

    /// The series not stale at `now`: each with its newest point, whether it is in an anomaly,
    /// and its standing score (the anomaly's peak while it lasts, else the newest score).
    pub(crate) fn live(&self, now: DateTime<Utc>, stale_seconds: i64) -> impl Iterator<Item = Live<'_>> {
        let since = now - chrono::TimeDelta::seconds(stale_seconds);
        let resolve = self.resolve;
        self.series.iter().filter_map(move |(key, s)| {
            let newest = s.last().filter(|p| p.t >= since)?;
            let (hot, standing, decades) = match s.hot.filter(|h| now - h.last <= resolve) {
                Some(h) => (true, h.peak.max(newest.score), h.decades.max(newest.decades)),
                None => (false, newest.score, newest.decades),
            };
            Some(Live { key, series: s, newest, hot, standing, decades })
        })
    }
}

/// The event over the stream's point indices `range`, measured on the points still kept.
fn describe(key: &SeriesKey, s: &Tracked, range: std::ops::Range<usize>, shape: &ShapeConfig) -> Option<Event> {
    let first_kept = s.points - s.recent.len() as u64;
    let to_pos = |i: usize| (i as u64).saturating_sub(first_kept) as usize;
    let (a, b) = (to_pos(range.start), to_pos(range.end).min(s.recent.len()));
    if a >= b {
        return None;
    }
    let ts: Vec<DateTime<Utc>> = s.recent.iter().map(|p| p.t).collect();
    let vs: Vec<f64> = s.recent.iter().map(|p| p.value).collect();
    let peak = s.recent.range(a..b).map(|p| p.score).fold(0.0, f64::max);
    let (label, explanation) = match classify(&ts, &vs, a..b, None, shape) {
        Ok(shape) => (shape.label, explain_series(key, None, &shape)),
        Err(_) => (AnomalyLabel::Spike, format!("{} on {} scored {peak:.2}", key.metric_name, key.node_id)),
    };
    Some(Event { start: ts[a], end: ts[b - 1], peak, label, explanation })
}

/// The scope of a live incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// One series.
    Series,
    /// Several series of one node.
    Node,
    /// Series on two or more nodes of one cluster.
    Cluster,
    /// Cluster incidents in two or more clusters of one tenant at once.
    Tenant,
}

/// An incident open now: the series in an anomaly (a point at or above the anomalous score
/// within the last `resolve_seconds`), grouped by cluster when they span two or more nodes of
/// it, else by node, else the one series; and cluster incidents in two or more clusters of one
/// tenant at once make one tenant incident.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveIncident {
    /// Series, node or cluster.
    pub scope: Scope,
    /// Tenant.
    pub tenant: String,
    /// Cluster.
    pub cluster: String,
    /// Node (empty for a cluster incident).
    pub node: String,
    /// Metric (a series incident only; empty otherwise).
    pub metric: String,
    /// Highest score among its members.
    pub score: f64,
    /// The most evidence among its members, in decades.
    pub decades: f64,
    /// When its earliest member's anomaly began.
    pub since: DateTime<Utc>,
    /// Its members: `node/metric` with their scores, highest first.
    pub members: Vec<(String, f64)>,
    /// What is happening, in a sentence.
    pub summary: String,
}

impl LiveIncident {
    /// A stable identity: scope and place.
    pub fn id(&self) -> String {
        format!("{:?}/{}/{}/{}/{}", self.scope, self.tenant, self.cluster, self.node, self.metric)
    }
}

/// A series in an incident: its key, peak score and when its anomaly began.
type Member<'a> = (&'a SeriesKey, f64, DateTime<Utc>, f64);

/// The incidents open at `now`, broadest and highest first.
pub(crate) fn live_incidents(fleet: &Fleet, now: DateTime<Utc>, stale_seconds: i64) -> Vec<LiveIncident> {
    let mut groups: BTreeMap<(&str, &str), Vec<Member<'_>>> = BTreeMap::new();
    // The live nodes of each cluster, for "on 3 of 8 nodes".
    let mut cluster_nodes: BTreeMap<(&str, &str), std::collections::BTreeSet<&str>> = BTreeMap::new();
    for l in fleet.live(now, stale_seconds) {
        let k = l.key;
        cluster_nodes.entry((k.tenant_id.as_str(), k.cluster_id.as_str())).or_default().insert(k.node_id.as_str());
        if let Some(h) = l.series.hot.filter(|_| l.hot) {
            groups
                .entry((k.tenant_id.as_str(), k.cluster_id.as_str()))
                .or_default()
                .push((k, h.peak, h.since, h.decades));
        }
    }
    let mut out = Vec::new();
    for ((tenant, cluster), mut members) in groups {
        // Worst first: highest score, then most evidence.
        members.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.3.total_cmp(&a.3)).then(a.0.cmp(b.0)));
        let nodes: std::collections::BTreeSet<&str> = members.iter().map(|m| m.0.node_id.as_str()).collect();
        let make = |scope: Scope, node: &str, metric: &str, ms: &[Member<'_>]| {
            let metrics: std::collections::BTreeSet<&str> = ms.iter().map(|m| m.0.metric_name.as_str()).collect();
            let metrics: Vec<&str> = metrics.into_iter().collect();
            let (worst, score) = (ms[0].0, ms[0].1);
            let since = ms.iter().map(|m| m.2).min().unwrap_or(now);
            let value = fleet.series[worst].last().map_or(String::new(), |p| format!(" at {}", short(p.value)));
            let when = since.format("%Y-%m-%d %H:%M UTC");
            let summary = match scope {
                // (Tenant incidents are made from cluster ones, by `merge_tenants`.)
                Scope::Cluster | Scope::Tenant => {
                    let of = cluster_nodes.get(&(tenant, cluster)).map_or(0, std::collections::BTreeSet::len);
                    format!(
                        "{tenant}/{cluster}: {} on {} of {of} nodes since {when}; worst {} ({}{value}, score {score:.2})",
                        join(&metrics),
                        nodes.len(),
                        worst.node_id,
                        worst.metric_name
                    )
                }
                Scope::Node => format!(
                    "{tenant}/{cluster}/{node}: {} since {when}; worst {}{value} (score {score:.2})",
                    join(&metrics),
                    worst.metric_name
                ),
                Scope::Series => format!("{tenant}/{cluster}/{node}: {metric} since {when}{value} (score {score:.2})"),
            };
            LiveIncident {
                scope,
                tenant: tenant.to_owned(),
                cluster: cluster.to_owned(),
                node: node.to_owned(),
                metric: metric.to_owned(),
                score,
                decades: ms.iter().map(|m| m.3).fold(0.0, f64::max),
                since,
                members: ms.iter().map(|m| (format!("{}/{}", m.0.node_id, m.0.metric_name), m.1)).collect(),
                summary,
            }
        };
        if nodes.len() >= 2 {
            out.push(make(Scope::Cluster, "", "", &members));
            continue;
        }
        let node = members[0].0.node_id.as_str();
        if members.len() == 1 {
            out.push(make(Scope::Series, node, members[0].0.metric_name.as_str(), &members));
        } else {
            out.push(make(Scope::Node, node, "", &members));
        }
    }
    let mut out = merge_tenants(out, &cluster_nodes);
    rank(&mut out);
    out
}

/// Replaces the cluster incidents of a tenant with two or more of them by one tenant incident.
fn merge_tenants(
    incidents: Vec<LiveIncident>,
    cluster_nodes: &BTreeMap<(&str, &str), std::collections::BTreeSet<&str>>,
) -> Vec<LiveIncident> {
    let mut by_tenant: BTreeMap<String, Vec<LiveIncident>> = BTreeMap::new();
    let mut out = Vec::new();
    for inc in incidents {
        if inc.scope == Scope::Cluster {
            by_tenant.entry(inc.tenant.clone()).or_default().push(inc);
        } else {
            out.push(inc);
        }
    }
    for (tenant, mut clusters) in by_tenant {
        if clusters.len() < 2 {
            out.append(&mut clusters);
            continue;
        }
        rank(&mut clusters);
        let of = cluster_nodes.keys().filter(|(t, _)| *t == tenant).count();
        let parts: Vec<String> = clusters
            .iter()
            .map(|c| {
                let metrics: std::collections::BTreeSet<&str> =
                    c.members.iter().filter_map(|(m, _)| m.split_once('/').map(|(_, metric)| metric)).collect();
                let metrics: Vec<&str> = metrics.into_iter().collect();
                let nodes: std::collections::BTreeSet<&str> =
                    c.members.iter().filter_map(|(m, _)| m.split_once('/').map(|(node, _)| node)).collect();
                let total = cluster_nodes
                    .get(&(tenant.as_str(), c.cluster.as_str()))
                    .map_or(0, std::collections::BTreeSet::len);
                format!("{}: {} on {} of {total} nodes", c.cluster, join(&metrics), nodes.len())
            })
            .collect();
        let since = clusters.iter().map(|c| c.since).min().unwrap_or_default();
        let score = clusters.iter().map(|c| c.score).fold(0.0, f64::max);
        let summary = format!(
            "{tenant}: {} of {of} clusters at once since {} ({}); worst {}/{}",
            clusters.len(),
            since.format("%Y-%m-%d %H:%M UTC"),
            parts.join("; "),
            clusters[0].cluster,
            clusters[0].summary.split_once("; worst ").map_or("", |(_, w)| w)
        );
        out.push(LiveIncident {
            scope: Scope::Tenant,
            tenant: tenant.clone(),
            cluster: String::new(),
            node: String::new(),
            metric: String::new(),
            score,
            decades: clusters.iter().map(|c| c.decades).fold(0.0, f64::max),
            since,
            members: clusters
                .iter()
                .flat_map(|c| c.members.iter().map(move |(m, s)| (format!("{}/{m}", c.cluster), *s)))
                .collect(),
            summary,
        });
    }
    out
}

/// Orders incidents broadest first (cluster, node, series), then by score, then by evidence.
pub(crate) fn rank(incidents: &mut [LiveIncident]) {
    incidents.sort_by(|a, b| {
        b.scope
            .cmp(&a.scope)
            .then(b.score.total_cmp(&a.score))
            .then(b.decades.total_cmp(&a.decades))
            .then(a.id().cmp(&b.id()))
    });
}

/// A value with three significant digits, or as an integer when that is longer.
fn short(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else {
        let digits = (2 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
        format!("{v:.digits$}")
    }
}

/// "a", "a and b", "a, b and c".
fn join(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use analytics_engine::EngineRegistry;

    fn key(node: &str, metric: &str) -> SeriesKey {
        let t = DateTime::UNIX_EPOCH;
        analytics_types::MetricSeries::new("acme", "prod", node, metric, vec![t], vec![1.0]).unwrap().key()
    }

    /// Late and repeated points are dropped as Prometheus' storage drops samples: older than the
    /// newest is out of order, at the newest's timestamp a duplicate (the first value kept).
    #[test]
    fn late_and_repeated_points_are_dropped_and_counted() {
        let engine = EngineRegistry::with_builtins().build("robust_zscore", &serde_json::json!({})).unwrap();
        let mut fleet = Fleet::new(10, 0.5, 300);
        let t = |m: i64| DateTime::UNIX_EPOCH + chrono::TimeDelta::minutes(m);
        let k = key("n1", "cpu");
        fleet.feed(engine.as_ref(), &k, &[(t(1), 1.0), (t(2), 2.0), (t(2), 9.0), (t(1), 9.0), (t(3), 3.0)]);
        fleet.feed(engine.as_ref(), &k, &[(t(3), 3.0), (t(4), 4.0)]);
        assert_eq!(fleet.dropped, Dropped { out_of_order: 1, duplicate: 2 });
        let kept: Vec<(DateTime<Utc>, f64)> = fleet.series[&k].recent.iter().map(|p| (p.t, p.value)).collect();
        assert_eq!(kept, vec![(t(1), 1.0), (t(2), 2.0), (t(3), 3.0), (t(4), 4.0)]);
        assert_eq!(fleet.points_total, 4);
    }

    /// Incidents group the series in an anomaly: two nodes of a cluster make a cluster
    /// incident, several metrics of one node a node incident, one series a series incident; an
    /// anomaly resolves `resolve_seconds` after its last anomalous point.
    #[test]
    fn incidents_take_the_broadest_scope_their_members_span() {
        let mut fleet = Fleet::new(10, 0.5, 300);
        let engine = EngineRegistry::with_builtins().build("robust_zscore", &serde_json::json!({})).unwrap();
        let t0 = DateTime::UNIX_EPOCH + chrono::TimeDelta::days(1);
        let hot = |f: &mut Fleet, node: &str, metric: &str, at: i64| {
            let k = key(node, metric);
            f.feed(engine.as_ref(), &k, &[(t0 + chrono::TimeDelta::seconds(at), 1.0)]);
            f.series.get_mut(&k).unwrap().hot =
                Some(Hot { since: t0, last: t0 + chrono::TimeDelta::seconds(at), peak: 0.9, decades: 9.0 });
        };
        hot(&mut fleet, "n1", "cpu", 0);
        let now = t0 + chrono::TimeDelta::seconds(60);
        let one = live_incidents(&fleet, now, 900);
        assert_eq!((one.len(), one[0].scope), (1, Scope::Series));
        assert_eq!(one[0].summary, "acme/prod/n1: cpu since 1970-01-02 00:00 UTC at 1.00 (score 0.90)");
        hot(&mut fleet, "n1", "mem", 10);
        assert_eq!(live_incidents(&fleet, now, 900)[0].scope, Scope::Node);
        hot(&mut fleet, "n2", "cpu", 20);
        let cluster = live_incidents(&fleet, now, 900);
        assert_eq!((cluster.len(), cluster[0].scope), (1, Scope::Cluster));
        assert!(cluster[0]
            .summary
            .starts_with("acme/prod: cpu and mem on 2 of 2 nodes since 1970-01-02 00:00 UTC; worst n1"));
        // Two nodes of a second cluster too: one tenant incident.
        for node in ["m1", "m2"] {
            let k =
                analytics_types::MetricSeries::new("acme", "staging", node, "cpu", vec![t0], vec![1.0]).unwrap().key();
            fleet.feed(engine.as_ref(), &k, &[(t0 + chrono::TimeDelta::seconds(30), 1.0)]);
            fleet.series.get_mut(&k).unwrap().hot =
                Some(Hot { since: t0, last: t0 + chrono::TimeDelta::seconds(30), peak: 0.8, decades: 8.0 });
        }
        let tenant = live_incidents(&fleet, now, 900);
        assert_eq!((tenant.len(), tenant[0].scope), (1, Scope::Tenant));
        assert_eq!(tenant[0].members.len(), 5);
        assert!(
            tenant[0].summary.starts_with(
                "acme: 2 of 2 clusters at once since 1970-01-02 00:00 UTC (prod: cpu and mem on 2 of 2 nodes; staging: cpu on 2 of 2 nodes); worst prod/n1"
            ),
            "{}",
            tenant[0].summary
        );
        for node in ["m1", "m2"] {
            let k =
                analytics_types::MetricSeries::new("acme", "staging", node, "cpu", vec![t0], vec![1.0]).unwrap().key();
            fleet.series.remove(&k);
        }
        // 300 s after the last anomalous point, the anomalies have resolved.
        assert_eq!(live_incidents(&fleet, t0 + chrono::TimeDelta::seconds(319), 900).len(), 1);
        assert!(live_incidents(&fleet, t0 + chrono::TimeDelta::seconds(321), 900).is_empty());
    }
}
