//! Points per second through one engine's streaming path, as the fastest, the first quartile and
//! the median of many timed passes over the same series: a steadier figure than one long
//! measurement on a machine whose other load takes part of a core at times (that load only ever
//! adds time, so the fastest passes are the least disturbed).
//!
//! ```sh
//! cargo run --release -p analytics-engine --example stream_speed -- [ENGINE] [PASSES]
//! ```
//!
//! ENGINE is a registry name (default `default`), PASSES the number of passes (default 40).
//! The series is the criterion benchmark's: one simulated `cpu_usage` series of 100,000
//! one-minute points. Run two builds alternately to compare them.

// A command-line tool: its output and its errors are printed.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;
use std::time::Instant;

use analytics_engine::EngineRegistry;
use analytics_sim::{simulate_fleet, FleetConfig};

const POINTS: usize = 100_000;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "default".to_owned());
    let passes = match args.next().map(|p| p.parse::<usize>()) {
        None => 40,
        Some(Ok(p)) if p > 0 => p,
        Some(_) => {
            eprintln!("stream_speed: PASSES must be a positive whole number");
            return ExitCode::FAILURE;
        }
    };
    let cfg = FleetConfig {
        tenants: 1,
        clusters_per_tenant: 1,
        nodes_per_cluster: 1,
        metrics: 1,
        points: POINTS,
        anomaly_probability: 1.0,
        ..FleetConfig::default()
    };
    let series = match simulate_fleet(&cfg) {
        Ok(fleet) => fleet.series[0].clone(),
        Err(e) => {
            eprintln!("stream_speed: simulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    let engine = match EngineRegistry::with_builtins().build(&name, &serde_json::json!({})) {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("stream_speed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut seconds = Vec::with_capacity(passes);
    // The sum of the scores, printed, so that no pass can be optimised away (and two builds
    // that score alike print the same).
    let mut total = 0.0;
    for _ in 0..passes {
        let start = Instant::now();
        let mut stream = engine.stream();
        for (&t, &x) in series.timestamps().iter().zip(series.values()) {
            total += stream.update(t, x).0;
        }
        seconds.push(start.elapsed().as_secs_f64());
    }
    seconds.sort_by(f64::total_cmp);
    let rate = |s: f64| POINTS as f64 / s / 1e6;
    println!(
        "{name}: {:.3} M points/s fastest, {:.3} M first quartile, {:.3} M median, over {passes} passes \
         (sum of scores {total:.1})",
        rate(seconds[0]),
        rate(seconds[passes / 4]),
        rate(seconds[passes / 2]),
    );
    ExitCode::SUCCESS
}
