//! `analytics detect`: fetch series from a source, detect, aggregate, explain, store, print.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;

use analytics_aggregate::{AggregateConfig, FleetPipeline, FleetReport};
use analytics_engine::EngineRegistry;
use analytics_io::{FileFormat, FileOptions, FileSource, MetricSource, ResultStore, RunRecord, Selector, TimeRange};
use analytics_types::{IncidentScope, MetricSeries, SeriesKey, TenantId};
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::output::{emit, progress_bar, render_fleet, spinner, FleetJson};
use crate::sim_source::SimSource;
use crate::{read_engine_config, DetectArgs, Format};

/// Nodes whose anomalous series keep their values in the store, for `analytics report`.
const SAMPLED_NODES: usize = 50;

/// Where the data comes from, parsed from `--source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SourceSpec {
    File(PathBuf),
    Sim,
    Prometheus(String),
}

pub(crate) fn parse_source(s: &str) -> Result<SourceSpec, String> {
    if s == "sim" {
        Ok(SourceSpec::Sim)
    } else if let Some(p) = s.strip_prefix("file:") {
        Ok(SourceSpec::File(PathBuf::from(p)))
    } else if let Some(u) = s.strip_prefix("prometheus:") {
        Ok(SourceSpec::Prometheus(u.to_owned()))
    } else {
        Err(format!("{s:?} is not a source; use file:PATH, sim, or prometheus:URL"))
    }
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    analytics_io::parse_timestamp(s).map(|(t, _)| t)
}

pub(crate) fn time_arg(s: &str) -> Result<DateTime<Utc>, String> {
    parse_time(s)
}

#[derive(Serialize)]
struct DetectJson<'a> {
    #[serde(flatten)]
    fleet: FleetJson<'a>,
    source: String,
    run_id: Option<i64>,
    store: Option<String>,
    repairs: Vec<String>,
}

async fn fetch(args: &DetectArgs) -> Result<(Vec<MetricSeries>, String, Vec<String>)> {
    let tenant = args.tenant.as_deref().map(TenantId::new).transpose().context("--tenant")?;
    let range = TimeRange { from: args.from, to: args.to };
    match &args.source {
        SourceSpec::File(path) => {
            let options = FileOptions {
                format: args.input_format,
                tenant: args.tenant.clone(),
                cluster: args.cluster.clone(),
                node: args.node.clone(),
                metric: args.metric.clone(),
                lenient: args.lenient,
                threads: args.pipeline.threads,
            };
            let source = FileSource::new(path, options);
            // For NAB and wide files the identifiers name the series instead of selecting them.
            let names_series = matches!(source.format()?, FileFormat::Nab | FileFormat::Wide);
            let selector = if names_series { Selector::all() } else { selector(args) };
            let (p, t) = (source.clone(), if names_series { None } else { tenant });
            let spin = spinner(format!("reading {}", source.describe()));
            let read = tokio::task::spawn_blocking(move || p.read(t.as_ref(), &selector, &range)).await;
            spin.finish_and_clear();
            let (series, report) = read??;
            let repairs = if args.lenient { report.summary() } else { Vec::new() };
            Ok((series, source.describe(), repairs))
        }
        SourceSpec::Sim => {
            let source = SimSource::new(&args.fleet.config()?)?;
            let series = source.get_metric_series(tenant.as_ref(), &selector(args), &range).await?;
            Ok((series, source.describe(), Vec::new()))
        }
        SourceSpec::Prometheus(url) => {
            let source = crate::prom::source(url, args)?;
            let spin = spinner(format!("querying {}", source.describe()));
            let read = source.get_metric_series(tenant.as_ref(), &selector(args), &range).await;
            spin.finish_and_clear();
            let series = read?;
            Ok((series, source.describe(), Vec::new()))
        }
    }
}

fn selector(args: &DetectArgs) -> Selector {
    Selector { cluster: args.cluster.clone(), node: args.node.clone(), metric: args.metric.clone() }
}

/// Series kept for the report's plots in streaming mode: the anomalous series with the highest
/// scores seen so far (50 nodes of 6 metrics).
const STREAMING_SAMPLES: usize = 300;

type Streamed = (FleetReport, Vec<MetricSeries>, Totals, String, Vec<String>);

/// `detect --streaming` on a file: batches of whole nodes go through the streaming fleet path,
/// so memory holds one batch; the most anomalous series seen are kept for the report.
fn run_streaming(args: &DetectArgs, path: &std::path::Path, pipeline: &FleetPipeline<'_>) -> Result<Streamed> {
    let tenant = args.tenant.as_deref().map(TenantId::new).transpose().context("--tenant")?;
    let options = FileOptions { format: args.input_format, lenient: args.lenient, ..Default::default() };
    let source = FileSource::new(path, options);
    let mut run = pipeline.start_streaming()?;
    let mut kept: Vec<(f64, MetricSeries)> = Vec::new();
    let mut totals = Totals { series: 0, points: 0, start: None, end: None };
    let bar = progress_bar(0, "detecting", "series");
    let range = TimeRange { from: args.from, to: args.to };
    let mut sink = |batch: Vec<MetricSeries>| -> Result<()> {
        totals.add(&batch);
        let summaries = run.push(&batch)?;
        let anomalous: std::collections::BTreeMap<&SeriesKey, f64> =
            summaries.iter().filter(|m| m.anomalies > 0).map(|m| (&m.key, m.score)).collect();
        for s in batch {
            if let Some(&score) = anomalous.get(&s.key()) {
                kept.push((score, s));
            }
        }
        kept.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.key().cmp(&b.1.key())));
        kept.truncate(STREAMING_SAMPLES);
        bar.set_length(run.series_seen() as u64);
        bar.set_position(run.series_seen() as u64);
        Ok(())
    };
    let report = source.read_in_batches(args.batch_nodes, tenant.as_ref(), &selector(args), &range, &mut sink)?;
    bar.finish_and_clear();
    let repairs = if args.lenient { report.summary() } else { Vec::new() };
    anyhow::ensure!(totals.series > 0, "{}: no series matched the selection", source.describe());
    let fleet = run.finish()?;
    Ok((fleet, kept.into_iter().map(|(_, s)| s).collect(), totals, source.describe(), repairs))
}

/// What `--fail-on` turns into a non-zero exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum FailOn {
    /// Any anomalous window (a result the engine's alarm rule marks anomalous).
    Anomaly,
    /// Any incident wider than one series: anomalous events on several metrics of a node, or
    /// on several nodes, that started together.
    Incident,
}

/// What a run found, for `--fail-on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Found {
    anomalies: usize,
    /// Incidents of node, cluster or tenant scope.
    wide_incidents: usize,
}

impl Found {
    fn of(report: &FleetReport) -> Self {
        Found {
            anomalies: report.results.iter().filter(|r| r.is_anomaly()).count(),
            wide_incidents: report.incidents.iter().filter(|i| i.scope() != IncidentScope::Series).count(),
        }
    }
}

/// `--fail-on` was met: `main` prints this and exits with status 3, after the output and the
/// store were written as usual.
#[derive(Debug)]
pub(crate) struct FailOnMet {
    on: FailOn,
    count: usize,
}

impl std::fmt::Display for FailOnMet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = if self.count == 1 { "" } else { "s" };
        match self.on {
            FailOn::Anomaly => write!(f, "--fail-on anomaly: {} anomalous window{s} found", self.count),
            FailOn::Incident => {
                write!(f, "--fail-on incident: {} incident{s} wider than one series found", self.count)
            }
        }
    }
}

impl std::error::Error for FailOnMet {}

/// The exit status of a met `--fail-on` condition.
pub(crate) const FAIL_ON_STATUS: u8 = 3;

pub(crate) fn run(args: &DetectArgs) -> Result<()> {
    let engine_cfg = read_engine_config(args.pipeline.config.as_ref())?;
    let engine = EngineRegistry::with_builtins().build(&args.pipeline.engine, &engine_cfg)?;
    let found = if args.streaming {
        streaming(args, engine.as_ref(), &engine_cfg)?
    } else {
        whole(args, engine.as_ref(), &engine_cfg)?
    };
    let count = match args.fail_on {
        Some(FailOn::Anomaly) => found.anomalies,
        Some(FailOn::Incident) => found.wide_incidents,
        None => 0,
    };
    match args.fail_on {
        Some(on) if count > 0 => Err(FailOnMet { on, count }.into()),
        _ => Ok(()),
    }
}

/// Detect over the whole selection read at once; what it found.
fn whole(
    args: &DetectArgs,
    engine: &dyn analytics_engine::AnomalyDetectionEngine,
    engine_cfg: &serde_json::Value,
) -> Result<Found> {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    let started_at = Utc::now();
    let t = Instant::now();
    let (series, source, repairs) = runtime.block_on(fetch(args))?;
    let read_seconds = t.elapsed().as_secs_f64();
    if series.is_empty() {
        bail!("{source}: no series matched the selection");
    }
    for line in &repairs {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("repaired: {line}");
        }
    }
    let nodes: BTreeSet<(&TenantId, _, _)> =
        series.iter().map(|s| (s.tenant_id(), s.cluster_id(), s.node_id())).collect();
    let bar = progress_bar(nodes.len() as u64, "detecting", "nodes");
    let (report, stages) = FleetPipeline::new(engine)
        .aggregate(AggregateConfig { strategy: args.pipeline.strategy, ..Default::default() })
        .top(args.pipeline.top)
        .threads(args.pipeline.threads)
        .run_timed(&series, &|done, _| bar.set_position(done as u64))?;
    bar.finish_and_clear();

    let t = Instant::now();
    let stored = match &args.store {
        Some(path) if !args.no_store => {
            Some((path.clone(), store(path, &report, &series, Totals::of(&series), &source, engine_cfg, started_at)?))
        }
        _ => None,
    };
    let store_seconds = t.elapsed().as_secs_f64();
    match args.pipeline.format {
        Format::Json => emit(
            &(serde_json::to_string_pretty(&DetectJson {
                fleet: FleetJson::of(&report),
                source,
                run_id: stored.as_ref().map(|s| s.1),
                store: stored.as_ref().map(|s| s.0.display().to_string()),
                repairs,
            })? + "\n"),
        )?,
        Format::Table => {
            let points: usize = series.iter().map(MetricSeries::len).sum();
            let stored_in = if stored.is_some() { format!(", stored in {store_seconds:.2} s") } else { String::new() };
            let mut out = format!(
                "Source: {source}: {} series on {} nodes, {points} points.\nEngine {}, aggregation {}. Read in {read_seconds:.2} s, detected in {:.2} s, aggregated in {:.2} s{stored_in}.\n",
                series.len(),
                nodes.len(),
                report.engine,
                args.pipeline.strategy,
                stages.detect,
                stages.aggregate
            );
            out += &render_fleet(&report);
            if let Some((path, id)) = &stored {
                out += &format!(
                    "\nStored as run {id} in {} (see it with `analytics report --store {}`).\n",
                    path.display(),
                    path.display()
                );
            }
            emit(&out)?;
        }
    }
    Ok(Found::of(&report))
}

fn streaming(
    args: &DetectArgs,
    engine: &dyn analytics_engine::AnomalyDetectionEngine,
    engine_cfg: &serde_json::Value,
) -> Result<Found> {
    let SourceSpec::File(path) = &args.source else {
        bail!("--streaming reads files (file:PATH); other sources are read whole");
    };
    let started_at = Utc::now();
    let pipeline = FleetPipeline::new(engine)
        .aggregate(AggregateConfig { strategy: args.pipeline.strategy, ..Default::default() })
        .top(args.pipeline.top)
        .threads(args.pipeline.threads);
    let t = Instant::now();
    let (report, kept, totals, source, repairs) = run_streaming(args, path, &pipeline)?;
    let seconds = t.elapsed().as_secs_f64();
    for line in &repairs {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("repaired: {line}");
        }
    }
    let stored = match &args.store {
        Some(db) if !args.no_store => {
            Some((db.clone(), store(db, &report, &kept, totals, &source, engine_cfg, started_at)?))
        }
        _ => None,
    };
    let mut out = format!(
        "Source: {} (streamed in batches of {} nodes): {} series, {} points. Engine {}, aggregation {}. Detected and aggregated in {seconds:.2} s.\n",
        source,
        args.batch_nodes, totals.series, totals.points, report.engine, args.pipeline.strategy
    );
    out += &render_fleet(&report);
    if let Some((db, id)) = &stored {
        out += &format!("\nStored as run {id} in {} (anomalous windows only).\n", db.display());
    }
    emit(&out)?;
    Ok(Found::of(&report))
}

/// Writes the run, its results and aggregates, and the values of the anomalous series of the
/// worst nodes (for plots).
/// What a run covered: series, points, first and last instant.
#[derive(Debug, Clone, Copy)]
struct Totals {
    series: usize,
    points: usize,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
}

impl Totals {
    fn add(&mut self, series: &[MetricSeries]) {
        self.series += series.len();
        self.points += series.iter().map(MetricSeries::len).sum::<usize>();
        let first = series.iter().filter_map(|s| s.timestamps().first()).min().copied();
        let last = series.iter().filter_map(|s| s.timestamps().last()).max().copied();
        self.start = self.start.into_iter().chain(first).min();
        self.end = self.end.into_iter().chain(last).max();
    }

    fn of(series: &[MetricSeries]) -> Self {
        let mut t = Totals { series: 0, points: 0, start: None, end: None };
        t.add(series);
        t
    }
}

fn store(
    path: &std::path::Path,
    report: &FleetReport,
    series: &[MetricSeries],
    totals: Totals,
    source: &str,
    config: &serde_json::Value,
    started_at: DateTime<Utc>,
) -> Result<i64> {
    let mut store = ResultStore::open(path)?;
    let run = RunRecord {
        id: 0,
        engine: report.engine.clone(),
        config: config.to_string(),
        source: source.to_owned(),
        range_start: totals.start.unwrap_or(started_at),
        range_end: totals.end.unwrap_or(started_at),
        started_at,
        finished_at: Utc::now(),
        series: totals.series,
        points: totals.points,
    };
    let worst: BTreeSet<(String, String, String)> = analytics_aggregate::top_n(&report.rollup.nodes, SAMPLED_NODES)
        .iter()
        .map(|n| {
            (
                n.tenant_id().to_string(),
                n.cluster_id().map(ToString::to_string).unwrap_or_default(),
                n.node_id().map(ToString::to_string).unwrap_or_default(),
            )
        })
        .collect();
    let anomalous: BTreeSet<SeriesKey> = report.results.iter().filter(|r| r.is_anomaly()).map(|r| r.key()).collect();
    let samples: Vec<&MetricSeries> = series
        .iter()
        .filter(|s| {
            anomalous.contains(&s.key())
                && worst.contains(&(s.tenant_id().to_string(), s.cluster_id().to_string(), s.node_id().to_string()))
        })
        .collect();
    let aggregates: Vec<_> =
        report.rollup.tenants.iter().chain(&report.rollup.clusters).chain(&report.rollup.nodes).cloned().collect();
    Ok(store.write_run(&run, report.results.iter().cloned(), &aggregates, &report.incidents, &samples)?)
}
