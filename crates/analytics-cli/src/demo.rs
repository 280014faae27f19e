//! `analytics demo`, `analytics engines`, `analytics simulate`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::time::Instant;

use analytics_aggregate::{nodes_of, AggregateConfig, FleetPipeline, FleetReport};
use analytics_engine::EngineRegistry;
use analytics_eval::{score_incidents, TrueIncident, TruePart};
use analytics_sim::{simulate_fleet, write_long_csv, Fleet};
use analytics_types::{AggregatedAnomalyScore, ClusterId, Incident, IncidentScope, TenantId};
use anyhow::{Context, Result};
use chrono::TimeDelta;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::table::Table;
use crate::{read_engine_config, DemoArgs, EnginesArgs, Format, SimulateArgs};

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

/// The JSON form of the demo: contract objects only (plus the node explanations).
#[derive(Serialize)]
struct DemoJson<'a> {
    engine: &'a str,
    anomalies: Vec<&'a analytics_types::AnomalyResult>,
    tenants: &'a [analytics_types::AggregatedAnomalyScore],
    clusters: &'a [analytics_types::AggregatedAnomalyScore],
    nodes: &'a [analytics_types::AggregatedAnomalyScore],
    top_nodes: &'a [analytics_aggregate::RankedNode],
    incidents: &'a [analytics_types::Incident],
}

pub(crate) fn run(args: &DemoArgs) -> Result<()> {
    let fleet_cfg = args.fleet.config()?;
    let engine_cfg = read_engine_config(args.pipeline.config.as_ref())?;
    let engine = EngineRegistry::with_builtins().build(&args.pipeline.engine, &engine_cfg)?;
    let started = Instant::now();
    let fleet = simulate_fleet(&fleet_cfg).context("cannot simulate the fleet")?;
    let simulated = started.elapsed();

    let nodes = (fleet_cfg.tenants * fleet_cfg.clusters_per_tenant * fleet_cfg.nodes_per_cluster) as u64;
    let bar = progress_bar(nodes, "detecting", "nodes");
    let started = Instant::now();
    let report = FleetPipeline::new(engine.as_ref())
        .aggregate(AggregateConfig { strategy: args.pipeline.strategy, ..Default::default() })
        .top(args.pipeline.top)
        .threads(args.pipeline.threads)
        .run(&fleet.series, &|done, _| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    let detected = started.elapsed();

    match args.pipeline.format {
        Format::Json => {
            let json = DemoJson {
                engine: &report.engine,
                anomalies: report.results.iter().filter(|r| r.is_anomaly()).collect(),
                tenants: &report.rollup.tenants,
                clusters: &report.rollup.clusters,
                nodes: &report.rollup.nodes,
                top_nodes: &report.top_nodes,
                incidents: &report.incidents,
            };
            emit(&(serde_json::to_string_pretty(&json)? + "\n"))
        }
        Format::Table => {
            let header = format!(
                "Fleet: {} tenants x {} clusters x {} nodes x {} metrics = {} series of {} points ({} s apart), seed {}.\n\
                 Engine {}, aggregation {}. Simulated in {:.2} s, detected and aggregated in {:.2} s.\n",
                fleet_cfg.tenants,
                fleet_cfg.clusters_per_tenant,
                fleet_cfg.nodes_per_cluster,
                fleet_cfg.metrics,
                fleet.series.len(),
                fleet_cfg.points,
                fleet_cfg.step_seconds,
                fleet_cfg.seed,
                report.engine,
                args.pipeline.strategy,
                simulated.as_secs_f64(),
                detected.as_secs_f64(),
            );
            emit(&(header + &render_fleet(&report) + &render_truth(&report, &fleet)))
        }
    }
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

fn plural(n: usize, thing: &str) -> String {
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

/// How the ranking compares with what the simulator injected.
fn render_truth(report: &FleetReport, fleet: &Fleet) -> String {
    let mut out = String::new();

    let injected: BTreeSet<(String, String, String)> = fleet
        .truth
        .iter()
        .map(|g| (g.key.tenant_id.to_string(), g.key.cluster_id.to_string(), g.key.node_id.to_string()))
        .collect();
    let hits = report
        .top_nodes
        .iter()
        .filter(|n| {
            let s = &n.score;
            injected.contains(&(
                s.tenant_id().to_string(),
                s.cluster_id().map(ToString::to_string).unwrap_or_default(),
                s.node_id().map(ToString::to_string).unwrap_or_default(),
            ))
        })
        .count();
    out += &format!(
        "\nGround truth: {} anomalies injected into {} series on {} nodes; {} of the top {} nodes carry one.\n",
        fleet.truth.len(),
        fleet.truth.iter().map(|g| &g.key).collect::<BTreeSet<_>>().len(),
        injected.len(),
        hits,
        report.top_nodes.len()
    );
    let scores = score_incidents(&report.incidents, &true_incidents(fleet), INCIDENT_SLACK);
    out += &format!(
        "Incidents against the truth: precision {:.2} ({} of {} found are real), recall {:.2} ({} of {} real ones found); \
         {} of {} cluster-wide events come out as one incident naming the cluster.\n",
        scores.precision(),
        scores.found_true,
        scores.found,
        scores.recall(),
        scores.truth_found,
        scores.truth,
        scores.wide_as_one,
        scores.wide
    );
    out
}

/// How late after an injected anomaly's last point a found event still counts as finding it.
pub(crate) const INCIDENT_SLACK: TimeDelta = TimeDelta::minutes(10);

/// What the simulator injected, as true incidents: each cluster-wide event one incident, every
/// other injection one of its own.
pub(crate) fn true_incidents(fleet: &Fleet) -> Vec<TrueIncident> {
    let mut wide: BTreeMap<(&TenantId, &ClusterId), Vec<TruePart>> = BTreeMap::new();
    let mut out = Vec::new();
    for g in &fleet.truth {
        let part = TruePart { key: g.key.clone(), start: g.start, end: g.end };
        if g.cluster_incident {
            wide.entry((&g.key.tenant_id, &g.key.cluster_id)).or_default().push(part);
        } else {
            out.push(TrueIncident { parts: vec![part] });
        }
    }
    out.extend(wide.into_values().map(|parts| TrueIncident { parts }));
    out
}

/// The table's last column for a tenant or cluster: its three worst nodes, each with its score
/// and, when it has one, its rarest labelled anomaly.
fn worst_nodes(group: &AggregatedAnomalyScore, nodes: &[AggregatedAnomalyScore]) -> String {
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

pub(crate) fn engines(args: &EnginesArgs) -> Result<()> {
    let list = EngineRegistry::with_builtins().list();
    match args.format {
        Format::Json => emit(&(serde_json::to_string_pretty(&list)? + "\n")),
        Format::Table => {
            let mut out = String::new();
            for e in &list {
                out += &format!(
                    "{}\n  {}\n  defaults (set any subset with --config FILE.json or FILE.toml):\n",
                    e.name, e.description
                );
                for line in serde_json::to_string_pretty(&e.defaults)?.lines() {
                    out += &format!("    {line}\n");
                }
            }
            emit(&out)
        }
    }
}

pub(crate) fn simulate(args: &SimulateArgs) -> Result<()> {
    let cfg = args.fleet.config()?;
    let fleet = simulate_fleet(&cfg).context("cannot simulate the fleet")?;
    let file = File::create(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    write_long_csv(&fleet.series, BufWriter::new(file))
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    if let Some(path) = &args.truth {
        let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        serde_json::to_writer_pretty(BufWriter::new(file), &fleet.truth)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    emit(&format!(
        "wrote {} series x {} points to {}{}\n",
        fleet.series.len(),
        cfg.points,
        args.out.display(),
        args.truth.as_ref().map_or(String::new(), |p| format!(
            ", {} injected anomalies to {}",
            fleet.truth.len(),
            p.display()
        ))
    ))
}
