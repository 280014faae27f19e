//! What the API and `/metrics` serve between two polls, computed once after each poll: the
//! scores only change when a poll feeds new points, so requests read this snapshot instead of
//! walking every series under the fleet's lock.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use chrono::{DateTime, Utc};

use crate::fleet::{Fleet, Live, Standing};

/// One metric family of `/metrics`: its samples, by tenant, already formatted.
#[derive(Debug, Default)]
pub(crate) struct Family {
    pub(crate) name: &'static str,
    pub(crate) help: &'static str,
    pub(crate) by_tenant: BTreeMap<String, String>,
}

/// The rankings at every level and the score families of `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// Rows one level below each prefix: `[]` (tenants), `[t]`, `[t, c]`, `[t, c, n]`.
    pub(crate) rankings: HashMap<Vec<String>, Vec<Standing>>,
    /// The score families, in page order.
    pub(crate) families: Vec<Family>,
    /// Live series.
    pub(crate) live: usize,
}

/// A label value escaped as the text format wants (backslash, double quote, newline).
pub(crate) fn esc(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// A sample value: Go's spelling of the special values, shortest round-trip text otherwise.
pub(crate) fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

impl Snapshot {
    /// The snapshot of `fleet` at `now`.
    pub(crate) fn of(fleet: &Fleet, now: DateTime<Utc>, stale_seconds: i64) -> Self {
        let live: Vec<Live<'_>> = fleet.live(now, stale_seconds).collect();
        let mut rankings: HashMap<Vec<&str>, BTreeMap<&str, Standing>> = HashMap::new();
        let mut groups: [BTreeMap<Vec<&str>, (f64, usize)>; 3] = Default::default();
        let mut scores = Family {
            name: "anomaly_score",
            help: "Calibrated anomaly score of a series' newest point, in [0, 1].",
            by_tenant: BTreeMap::new(),
        };
        for l in &live {
            let k = l.key;
            let parts = [k.tenant_id.as_str(), k.cluster_id.as_str(), k.node_id.as_str(), k.metric_name.as_str()];
            for depth in 0..4 {
                let row =
                    rankings.entry(parts[..depth].to_vec()).or_default().entry(parts[depth]).or_insert_with(|| {
                        Standing { name: parts[depth].to_owned(), score: 0.0, decades: 0.0, anomalous: 0, series: 0 }
                    });
                row.score = row.score.max(l.standing);
                row.decades = row.decades.max(l.decades);
                row.series += 1;
                row.anomalous += usize::from(l.hot);
            }
            for (level, g) in groups.iter_mut().enumerate() {
                let e = g.entry(parts[..3 - level].to_vec()).or_insert((0.0, 0));
                e.0 = e.0.max(l.standing);
                e.1 += usize::from(l.hot);
            }
            let lines = scores.by_tenant.entry(parts[0].to_owned()).or_default();
            let _ = writeln!(
                lines,
                "anomaly_score{{tenant=\"{}\",cluster=\"{}\",node=\"{}\",metric=\"{}\"}} {}",
                esc(parts[0]),
                esc(parts[1]),
                esc(parts[2]),
                esc(parts[3]),
                num(l.newest.score)
            );
        }
        let mut families = vec![scores];
        let names = ["tenant", "cluster", "node"];
        let levels: [(&str, &str, &str, &str); 3] = [
            (
                "anomaly_node_score",
                "Highest standing score among a node's series (an anomaly's peak until it resolves).",
                "anomaly_node_anomalous_series",
                "Series of a node in an anomaly (a point at or above anomalous_score within resolve_seconds).",
            ),
            (
                "anomaly_cluster_score",
                "Highest standing score among a cluster's series (an anomaly's peak until it resolves).",
                "anomaly_cluster_anomalous_series",
                "Series of a cluster in an anomaly (a point at or above anomalous_score within resolve_seconds).",
            ),
            (
                "anomaly_tenant_score",
                "Highest standing score among a tenant's series (an anomaly's peak until it resolves).",
                "anomaly_tenant_anomalous_series",
                "Series of a tenant in an anomaly (a point at or above anomalous_score within resolve_seconds).",
            ),
        ];
        for ((score_name, score_help, count_name, count_help), g) in levels.into_iter().zip(&groups) {
            let mut score = Family { name: score_name, help: score_help, by_tenant: BTreeMap::new() };
            let mut count = Family { name: count_name, help: count_help, by_tenant: BTreeMap::new() };
            for (parts, (s, n)) in g {
                let labels: Vec<String> = parts.iter().zip(names).map(|(v, n)| format!("{n}=\"{}\"", esc(v))).collect();
                let labels = labels.join(",");
                let _ = writeln!(
                    score.by_tenant.entry(parts[0].to_owned()).or_default(),
                    "{score_name}{{{labels}}} {}",
                    num(*s)
                );
                let _ =
                    writeln!(count.by_tenant.entry(parts[0].to_owned()).or_default(), "{count_name}{{{labels}}} {n}");
            }
            families.push(score);
            families.push(count);
        }
        let rankings = rankings
            .into_iter()
            .map(|(prefix, rows)| {
                let mut rows: Vec<Standing> = rows.into_values().collect();
                rows.sort_by(|a, b| {
                    b.score
                        .total_cmp(&a.score)
                        .then(b.decades.total_cmp(&a.decades))
                        .then(b.anomalous.cmp(&a.anomalous))
                        .then(a.name.cmp(&b.name))
                });
                (prefix.into_iter().map(str::to_owned).collect(), rows)
            })
            .collect();
        Self { rankings, families, live: live.len() }
    }

    /// Rankings one level below `prefix`: highest standing score first, then most evidence (so
    /// that rows scoring 1 keep an order), then most series in an anomaly, then name.
    pub(crate) fn standings(&self, prefix: &[&str]) -> Vec<Standing> {
        let key: Vec<String> = prefix.iter().map(|s| (*s).to_owned()).collect();
        self.rankings.get(&key).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::Hot;
    use analytics_engine::EngineRegistry;

    /// Rows that all stand at a score of 1 keep an order: by their evidence in decades.
    #[test]
    fn rows_scoring_one_are_ordered_by_their_evidence() {
        let engine = EngineRegistry::with_builtins().build("robust_zscore", &serde_json::json!({})).unwrap();
        let mut fleet = Fleet::new(10, 0.5, 300);
        let t0 = DateTime::UNIX_EPOCH + chrono::TimeDelta::days(1);
        for (node, decades) in [("n1", 12.0), ("n2", 30.0), ("n3", 0.0)] {
            let key =
                analytics_types::MetricSeries::new("acme", "prod", node, "cpu", vec![t0], vec![1.0]).unwrap().key();
            fleet.feed(engine.as_ref(), &key, &[(t0, 1.0)]);
            if decades > 0.0 {
                fleet.series.get_mut(&key).unwrap().hot = Some(Hot { since: t0, last: t0, peak: 1.0, decades });
            }
        }
        let snap = Snapshot::of(&fleet, t0, 900);
        let rows = snap.standings(&["acme", "prod"]);
        let order: Vec<(&str, f64, f64, usize)> =
            rows.iter().map(|r| (r.name.as_str(), r.score, r.decades, r.anomalous)).collect();
        assert_eq!(order, vec![("n2", 1.0, 30.0, 1), ("n1", 1.0, 12.0, 1), ("n3", 0.0, 0.0, 0)]);
        assert_eq!(snap.standings(&[])[0].decades, 30.0);
        assert!(snap.families[0].by_tenant["acme"]
            .contains("anomaly_score{tenant=\"acme\",cluster=\"prod\",node=\"n2\",metric=\"cpu\"} 0\n"));
    }
}
