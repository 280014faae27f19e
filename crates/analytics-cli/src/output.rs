//! What every command prints: stdout that tolerates a closed pipe, progress on stderr, and the
//! fleet's incidents, rankings and explanations as text tables.

use std::io::Write;

use analytics_aggregate::{nodes_of, FleetReport};
use analytics_types::{AggregatedAnomalyScore, Incident, IncidentScope};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::table::Table;

/// The JSON form of a fleet report: contract objects (the anomalous results, every level's
/// aggregates, the incidents) and the explained top nodes.
#[derive(serde::Serialize)]
pub(crate) struct FleetJson<'a> {
    engine: &'a str,
    anomalies: Vec<&'a analytics_types::AnomalyResult>,
    tenants: &'a [AggregatedAnomalyScore],
    clusters: &'a [AggregatedAnomalyScore],
    nodes: &'a [AggregatedAnomalyScore],
    top_nodes: &'a [analytics_aggregate::RankedNode],
    incidents: &'a [Incident],
}

impl<'a> FleetJson<'a> {
    pub(crate) fn of(report: &'a FleetReport) -> Self {
        Self {
            engine: &report.engine,
            anomalies: report.results.iter().filter(|r| r.is_anomaly()).collect(),
            tenants: &report.rollup.tenants,
            clusters: &report.rollup.clusters,
            nodes: &report.rollup.nodes,
            top_nodes: &report.top_nodes,
            incidents: &report.incidents,
        }
    }
}

/// Writes to stdout, treating a closed pipe (`analytics demo | head`) as a normal end.
pub(crate) fn emit(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}

pub(crate) fn progress_bar(total: u64, what: &str, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{msg:>10}} [{{bar:40}}] {{pos}}/{{len}} {unit}, {{elapsed}} elapsed, ~{{eta}} left"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

/// A spinner with elapsed time for work whose size is not known up front (reading a file or
/// querying a server); like the bars, it draws only when stderr is a terminal.
pub(crate) fn spinner(what: String) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg}, {elapsed} elapsed")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(what);
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

/// Incidents shown before the rankings.
const INCIDENTS_SHOWN: usize = 10;

/// The incidents, broadest first: a count by scope, then one line each for the first few.
pub(crate) fn render_incidents(incidents: &[Incident]) -> String {
    let count = |scope: IncidentScope| incidents.iter().filter(|i| i.scope() == scope).count();
    let mut out = format!(
        "\nINCIDENTS: {} ({} tenant-wide, {} cluster-wide, {} on one node, {} on one series){}\n",
        incidents.len(),
        count(IncidentScope::Tenant),
        count(IncidentScope::Cluster),
        count(IncidentScope::Node),
        count(IncidentScope::Series),
        if incidents.len() > INCIDENTS_SHOWN { format!("; the {INCIDENTS_SHOWN} broadest") } else { String::new() }
    );
    for (i, incident) in incidents.iter().take(INCIDENTS_SHOWN).enumerate() {
        out += &format!(
            "{:>2}. [{}, {} on {} of {} nodes, score {:.3}] {}\n",
            i + 1,
            incident.scope(),
            plural(incident.members().len(), "event"),
            incident.nodes_affected(),
            incident.nodes_in_scope(),
            incident.score(),
            incident.summary()
        );
    }
    out
}

pub(crate) fn plural(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

/// The evidence behind a score, as the tail probability of its rarest labelled anomaly
/// (`1e-23`: one point in 10^23 of the series' own history); `-` when it has none.
pub(crate) fn rarest(decades: Option<f64>) -> String {
    decades.filter(|d| *d > 0.0).map_or_else(|| "-".to_owned(), |d| format!("1e-{:.0}", d))
}

/// The incidents, the tenant, cluster and top-node tables and the explanations of the top nodes.
pub(crate) fn render_fleet(report: &FleetReport) -> String {
    let mut out = render_incidents(&report.incidents);
    let mut tenants = Table::new(
        &["tenant", "score", "rarest", "metrics", "anomalies", "why"],
        &["score", "rarest", "metrics", "anomalies"],
    );
    // Each table in the order of what it ranks: score, then anomalous windows (as the top nodes).
    let by_rank = |scores: &[AggregatedAnomalyScore]| analytics_aggregate::top_n(scores, scores.len());
    for t in &by_rank(&report.rollup.tenants) {
        tenants.row(vec![
            t.tenant_id().to_string(),
            format!("{:.3}", t.aggregate_score()),
            rarest(t.decades()),
            t.num_metrics_analyzed().to_string(),
            t.num_anomalies_detected().to_string(),
            worst_nodes(t, &report.rollup.nodes),
        ]);
    }
    out += "\nTENANTS\n";
    out += &tenants.render();

    let mut clusters = Table::new(
        &["tenant", "cluster", "score", "rarest", "metrics", "anomalies", "why"],
        &["score", "rarest", "metrics", "anomalies"],
    );
    for c in &by_rank(&report.rollup.clusters) {
        clusters.row(vec![
            c.tenant_id().to_string(),
            c.cluster_id().map(ToString::to_string).unwrap_or_default(),
            format!("{:.3}", c.aggregate_score()),
            rarest(c.decades()),
            c.num_metrics_analyzed().to_string(),
            c.num_anomalies_detected().to_string(),
            worst_nodes(c, &report.rollup.nodes),
        ]);
    }
    out += "\nCLUSTERS\n";
    out += &clusters.render();

    out += &format!("\nTOP {} NODES\n", report.top_nodes.len());
    let mut nodes = Table::new(
        &["#", "tenant", "cluster", "node", "score", "rarest", "metrics", "anomalies"],
        &["#", "score", "rarest", "metrics", "anomalies"],
    );
    for (i, n) in report.top_nodes.iter().enumerate() {
        let s = &n.score;
        nodes.row(vec![
            (i + 1).to_string(),
            s.tenant_id().to_string(),
            s.cluster_id().map(ToString::to_string).unwrap_or_default(),
            s.node_id().map(ToString::to_string).unwrap_or_default(),
            format!("{:.3}", s.aggregate_score()),
            rarest(s.decades()),
            s.num_metrics_analyzed().to_string(),
            s.num_anomalies_detected().to_string(),
        ]);
    }
    out += &nodes.render();
    out += "(rarest: the tail probability of the rarest labelled anomaly; equal scores rank by it)\n";
    out += "\nWHY\n";
    for (i, n) in report.top_nodes.iter().enumerate() {
        out += &format!("{:>2}. {}\n", i + 1, n.explanation);
    }
    out
}

/// The table's last column for a tenant or cluster: its three worst nodes, each with its score
/// and, when it has one, its rarest labelled anomaly.
pub(crate) fn worst_nodes(group: &AggregatedAnomalyScore, nodes: &[AggregatedAnomalyScore]) -> String {
    let worst: Vec<String> = nodes_of(group, nodes)
        .iter()
        .take(3)
        .map(|n| {
            let node = n.node_id().map_or("?", |x| x.as_str());
            let name = match group.cluster_id() {
                Some(_) => node.to_owned(),
                None => format!("{}/{node}", n.cluster_id().map_or("?", |c| c.as_str())),
            };
            match n.decades().filter(|d| *d > 0.0) {
                Some(d) => format!("{name} ({:.3}, {})", n.aggregate_score(), rarest(Some(d))),
                None => format!("{name} ({:.3})", n.aggregate_score()),
            }
        })
        .collect();
    format!("worst: {}", worst.join(", "))
}
