//! `analytics bench`: how fast the whole job runs on this machine, for a fleet of a given size.
//!
//! Simulates a fleet (6 metrics per node, 100 nodes per cluster), runs detection and
//! aggregation, and reports wall time per stage, points per second overall and per thread, peak
//! memory (the operating system's high-water mark of this process), and the state one series
//! holds in streaming mode. `--streaming` generates and processes the fleet in batches of nodes,
//! so memory follows the batch, not the fleet. `--sweep` runs each size and thread count in a
//! fresh process (so each has its own peak memory) and prints the table.

use std::time::Instant;

use analytics_aggregate::{AggregateConfig, FleetPipeline};
use analytics_engine::EngineRegistry;
use analytics_sim::{simulate_fleet, simulate_node, FleetConfig};
use anyhow::{Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::output::emit;
use crate::table::Table;
use crate::{read_engine_config, BenchArgs, Format};

/// One measurement.
#[derive(Debug, Serialize, Deserialize)]
struct Measurement {
    engine: String,
    series: usize,
    points_per_series: usize,
    points: u64,
    threads: usize,
    streaming: bool,
    generate_seconds: f64,
    detect_seconds: f64,
    aggregate_seconds: f64,
    wall_seconds: f64,
    points_per_second: f64,
    points_per_second_per_thread: f64,
    peak_memory_mib: f64,
    input_mib: f64,
    state_bytes_per_series: usize,
    anomalous_windows: usize,
}

/// The fleet shape for about `series` series: 6 metrics a node, 100 nodes a cluster.
fn shape(series: usize, points: usize) -> FleetConfig {
    let nodes = series.div_ceil(6).max(1);
    let nodes_per_cluster = nodes.min(100);
    let clusters = nodes.div_ceil(nodes_per_cluster);
    let tenants = if clusters >= 10 { 10 } else { 1 };
    FleetConfig {
        tenants,
        clusters_per_tenant: clusters.div_ceil(tenants),
        nodes_per_cluster,
        metrics: 6,
        points,
        anomaly_probability: 0.05,
        incident_probability: 0.1,
        ..FleetConfig::default()
    }
}

/// The peak resident memory of this process, from /proc/self/status (VmHWM), in MiB.
fn peak_memory_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn measure(args: &BenchArgs) -> Result<Measurement> {
    let engine = EngineRegistry::with_builtins().build(&args.engine, &read_engine_config(args.config.as_ref())?)?;
    let cfg = shape(args.series, args.points);
    let n_series = cfg.num_series();
    let threads = args.threads.unwrap_or_else(rayon::current_num_threads);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().context("cannot start the thread pool")?;
    let pipeline = FleetPipeline::new(engine.as_ref()).aggregate(AggregateConfig::default()).threads(Some(threads));
    let points = (n_series * args.points) as u64;
    let bar = crate::output::progress_bar(n_series as u64, "bench", "series");
    let wall = Instant::now();
    let (generate, detect, aggregate, anomalous) = if args.streaming {
        // Nodes in batches: generated, detected and summarised, then dropped.
        let nodes: Vec<(usize, usize, usize)> = (0..cfg.tenants)
            .flat_map(|t| {
                (0..cfg.clusters_per_tenant).flat_map(move |c| (0..cfg.nodes_per_cluster).map(move |n| (t, c, n)))
            })
            .collect();
        let generate = std::cell::Cell::new(0.0);
        let batches = nodes.chunks(args.batch_nodes.max(1)).map(|chunk| {
            let t = Instant::now();
            let series: Result<Vec<_>, _> = pool.install(|| {
                chunk
                    .par_iter()
                    .map(|&(t, c, n)| simulate_node(&cfg, t, c, n).map(|(s, _)| s))
                    .collect::<Result<Vec<_>, _>>()
            });
            generate.set(generate.get() + t.elapsed().as_secs_f64());
            series
                .map(|v| v.into_iter().flatten().collect::<Vec<_>>())
                .map_err(|e| analytics_aggregate::AggregateError::Internal(e.to_string()))
        });
        let t = Instant::now();
        let report = pipeline.run_batches(batches, &|done| bar.set_position(done as u64))?;
        let total = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let rollup = analytics_aggregate::roll_up(&report.metrics, &AggregateConfig::default())?;
        let aggregate = t.elapsed().as_secs_f64();
        std::hint::black_box(rollup);
        (generate.get(), total - generate.get() - aggregate, aggregate, report.results.len())
    } else {
        let t = Instant::now();
        let fleet = simulate_fleet(&cfg)?;
        let generate = t.elapsed().as_secs_f64();
        let (report, stages) =
            pipeline.run_timed(&fleet.series, &|done, _| bar.set_position((done * cfg.metrics) as u64))?;
        (generate, stages.detect, stages.aggregate, report.results.iter().filter(|r| r.is_anomaly()).count())
    };
    let wall = wall.elapsed().as_secs_f64();
    bar.finish_and_clear();
    // The state of one series in streaming mode, after a whole series.
    let (one, _) = simulate_node(&cfg, 0, 0, 0)?;
    let mut stream = engine.stream();
    for (t, x) in one[0].timestamps().iter().zip(one[0].values()) {
        stream.update(*t, *x);
    }
    let detect_points = points as f64 / detect;
    Ok(Measurement {
        engine: engine.name().to_owned(),
        series: n_series,
        points_per_series: args.points,
        points,
        threads,
        streaming: args.streaming,
        generate_seconds: generate,
        detect_seconds: detect,
        aggregate_seconds: aggregate,
        wall_seconds: wall,
        points_per_second: detect_points,
        points_per_second_per_thread: detect_points / threads as f64,
        peak_memory_mib: peak_memory_mib(),
        // A series in memory: 12 bytes per timestamp and 8 per value.
        input_mib: points as f64 * 20.0 / (1024.0 * 1024.0),
        state_bytes_per_series: stream.state_bytes(),
        anomalous_windows: anomalous,
    })
}

fn render(ms: &[Measurement]) -> String {
    const COLUMNS: [&str; 12] = [
        "series",
        "points",
        "threads",
        "mode",
        "generate s",
        "detect s",
        "aggregate s",
        "wall s",
        "points/s",
        "points/s/thread",
        "peak MiB",
        "input MiB",
    ];
    // Every column but the mode is a number, aligned right.
    let numbers: Vec<&str> = COLUMNS.into_iter().filter(|c| *c != "mode").collect();
    let mut t = Table::new(&COLUMNS, &numbers);
    for m in ms {
        t.row(vec![
            m.series.to_string(),
            m.points.to_string(),
            m.threads.to_string(),
            if m.streaming { "streaming" } else { "in memory" }.into(),
            format!("{:.2}", m.generate_seconds),
            format!("{:.2}", m.detect_seconds),
            format!("{:.3}", m.aggregate_seconds),
            format!("{:.2}", m.wall_seconds),
            format!("{:.2}M", m.points_per_second / 1e6),
            format!("{:.2}M", m.points_per_second_per_thread / 1e6),
            format!("{:.0}", m.peak_memory_mib),
            format!("{:.0}", m.input_mib),
        ]);
    }
    let engine = ms.first().map_or("", |m| m.engine.as_str());
    let state = ms.first().map_or(0, |m| m.state_bytes_per_series);
    format!(
        "engine {engine}; streaming state per series {:.1} KiB ({state} bytes); points/s counts detection only (generation apart)\n{}",
        state as f64 / 1024.0,
        t.render()
    )
}

pub(crate) fn run(args: &BenchArgs) -> Result<()> {
    if !args.sweep {
        let m = measure(args)?;
        return match args.format {
            Format::Json => emit(&(serde_json::to_string_pretty(&m)? + "\n")),
            Format::Table => emit(&render(&[m])),
        };
    }
    // Each cell in its own process: its own peak memory, no warm caches from the cell before.
    let exe = std::env::current_exe().context("cannot find this program to re-run it")?;
    let mut out = Vec::new();
    for series in [1_000usize, 10_000, 100_000] {
        for threads in [1usize, 2] {
            let mut cmd = std::process::Command::new(&exe);
            cmd.args(["bench", "--format", "json", "--engine", &args.engine]).args([
                "--series",
                &series.to_string(),
                "--points",
                &args.points.to_string(),
                "--threads",
                &threads.to_string(),
            ]);
            if args.streaming {
                cmd.arg("--streaming");
            }
            if let Some(c) = &args.config {
                cmd.arg("--config").arg(c);
            }
            let o = cmd.output().context("cannot run a sweep cell")?;
            anyhow::ensure!(
                o.status.success(),
                "sweep cell {series} series x {threads} threads failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            let m: Measurement = serde_json::from_slice(&o.stdout).context("a sweep cell printed no measurement")?;
            #[allow(clippy::print_stderr)]
            {
                eprintln!("{series} series, {threads} threads: {:.1} s", m.wall_seconds);
            }
            out.push(m);
        }
    }
    match args.format {
        Format::Json => emit(&(serde_json::to_string_pretty(&out)? + "\n")),
        Format::Table => emit(&render(&out)),
    }
}
