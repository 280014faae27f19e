//! `analytics demo`, `analytics engines`, `analytics simulate`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::BufWriter;
use std::time::Instant;

use analytics_aggregate::{AggregateConfig, FleetPipeline, FleetReport};
use analytics_engine::EngineRegistry;
use analytics_eval::{score_incidents, TrueIncident, TruePart};
use analytics_sim::{simulate_fleet, write_long_csv, Fleet};
use analytics_types::{ClusterId, TenantId};
use anyhow::{Context, Result};
use chrono::TimeDelta;

use crate::output::{emit, progress_bar, render_fleet, FleetJson};
use crate::{read_engine_config, DemoArgs, EnginesArgs, Format, SimulateArgs};

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
        Format::Json => emit(&(serde_json::to_string_pretty(&FleetJson::of(&report))? + "\n")),
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
        scores.wide_as_one - scores.tenant_wide_as_one,
        scores.wide - scores.tenant_wide
    );
    if scores.tenant_wide > 0 {
        out += &format!(
            "{} of {} tenant-wide events come out as one incident naming the tenant.\n",
            scores.tenant_wide_as_one, scores.tenant_wide
        );
    }
    out
}

/// How late after an injected anomaly's last point a found event still counts as finding it.
pub(crate) const INCIDENT_SLACK: TimeDelta = TimeDelta::minutes(10);

/// What the simulator injected, as true incidents: each cluster-wide and each tenant-wide
/// event one incident, every other injection one of its own.
pub(crate) fn true_incidents(fleet: &Fleet) -> Vec<TrueIncident> {
    let mut wide: BTreeMap<(&TenantId, Option<&ClusterId>), Vec<TruePart>> = BTreeMap::new();
    let mut out = Vec::new();
    for g in &fleet.truth {
        let part = TruePart { key: g.key.clone(), start: g.start, end: g.end };
        if g.tenant_incident {
            wide.entry((&g.key.tenant_id, None)).or_default().push(part);
        } else if g.cluster_incident {
            wide.entry((&g.key.tenant_id, Some(&g.key.cluster_id))).or_default().push(part);
        } else {
            out.push(TrueIncident { parts: vec![part] });
        }
    }
    out.extend(wide.into_values().map(|parts| TrueIncident { parts }));
    out
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
