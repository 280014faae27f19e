//! The `analytics` command: simulate a fleet, detect, aggregate, explain.
//!
//! Exit codes: 0 success; 1 an error (bad configuration, bad input, failed run), with the
//! reason on stderr; 2 a usage error (unknown flag, bad value), from the argument parser.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

mod commands;
mod output;
mod prom;
mod sim_source;
mod table;

use commands::{bench, demo, detect, eval, report, serve, suite};

/// Anomaly detection for fleets of cloud metrics: which series, nodes, clusters and tenants
/// misbehave, how badly (a score in [0, 1]), how (spike, trend, seasonal) and why.
#[derive(Debug, Parser)]
#[command(name = "analytics", version, propagate_version = true)]
#[command(after_help = "Start with `analytics demo`: it simulates a fleet with known anomalies, finds them, \
and prints the worst tenants, clusters and nodes with explanations.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options of `analytics serve` (the service itself is configured by its file; see
/// docs/serve.md).
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The service's TOML configuration file.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Check the configuration file and exit.
    #[arg(long, requires = "config")]
    pub(crate) check: bool,
    /// Print a configuration file with every option at its default, commented, and exit.
    #[arg(long, conflicts_with_all = ["config", "hash_token"])]
    pub(crate) example_config: bool,
    /// Read a bearer token on stdin and print its SHA-256 (what the config file holds), and exit.
    #[arg(long, conflicts_with = "config")]
    pub(crate) hash_token: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Simulate a fleet with injected anomalies, detect, aggregate and explain (the main job).
    ///
    /// Prints the tenant and cluster scores and the worst nodes with the sentence that explains
    /// each, and how many of the worst nodes really carry an injected anomaly.
    Demo(DemoArgs),
    /// Detect anomalies in your own metrics: from a file, Prometheus, or the simulator.
    ///
    /// Fetches the series, runs the engine over every node in parallel, rolls scores up to
    /// clusters and tenants, prints the worst with explanations, and writes the run to the
    /// SQLite store (re-running the same data replaces it, never duplicates it).
    ///
    /// Examples:
    ///   analytics detect --source file:fleet.csv
    ///   analytics detect --source file:../shared/asd/omi-1/test.csv --tenant asd --cluster omi --node omi-1
    ///   analytics detect --source prometheus:http://127.0.0.1:9090 --from 2024-03-04T00:00:00Z --to 2024-03-05T00:00:00Z
    ///   analytics detect --source sim --nodes 20
    #[command(verbatim_doc_comment)]
    Detect(Box<DetectArgs>),
    /// Write an HTML report of the latest run in the store: scores per tenant, cluster and node,
    /// and the worst nodes' anomalous series with their windows shaded and explained. One
    /// self-contained file (inline SVG, no scripts, no network).
    Report(ReportArgs),
    /// Measure the whole job on this machine: detection and aggregation of a simulated fleet,
    /// points per second overall and per thread, wall time per stage, peak memory.
    ///
    /// `--streaming` processes the fleet in batches of nodes (memory follows the batch);
    /// `--sweep` runs 1k, 10k and 100k series with 1 and 2 threads, each in its own process.
    Bench(BenchArgs),
    /// List the engines, with their parameters and defaults.
    Engines(EnginesArgs),
    /// Score an engine on public benchmarks (NAB, ASD, or every corpus at once), online, as
    /// published detectors are.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Run as a service beside Prometheus: poll sources every step, score every series online,
    /// serve /metrics, a JSON API and a live dashboard, post incidents to Alertmanager, and
    /// checkpoint engine state so that a restart resumes where it stopped.
    ///
    /// Examples:
    ///   analytics serve --example-config > serve.toml     # every option, with its default
    ///   echo -n "$TOKEN" | analytics serve --hash-token   # a token's SHA-256 for the config
    ///   analytics serve --config serve.toml --check       # check the file and exit
    ///   analytics serve --config serve.toml               # run (SIGTERM: checkpoint and stop)
    ///
    /// The configuration file's keys, with their defaults (docs/serve.md explains each):
    ///   name = "analytics"          this instance; key of its checkpoints (one per replica)
    ///   listen = "127.0.0.1:9464"   /metrics, /api/v1/..., /-/healthy, /-/ready, / (dashboard)
    ///   store = "serve.db"          SQLite file for checkpoints, relative to the config file
    ///   engine = "default"          engine by name (analytics engines); [engine_config] its parameters
    ///   step_seconds = 60           poll period and query step
    ///   warmup_seconds = 86400      history read at start for a series with no checkpoint
    ///   checkpoint_seconds = 300    checkpoint period (and once more at shutdown)
    ///   keep_points = 360           points per series kept for the API's series view
    ///   stale_seconds = 900         no new point for this long: out of /metrics and rankings
    ///   forget_seconds = 86400      no new point for this long: state dropped
    ///   anomalous_score = 0.5       a point at or above this starts or extends an anomaly
    ///   resolve_seconds = 300       an anomaly ends after this long without such a point
    ///   [shard] count, index        this replica's share of the series (none: all)
    ///   [alertmanager] url          where incidents are posted (none: no alerts)
    ///   [[sources]] name, url, query, tenant_label = "tenant", cluster_label = "cluster",
    ///               node_label = "node", timeout_seconds = 10, bearer_token_file   (required)
    ///   [auth] admin_token_sha256, [[auth.tenants]] tenant, token_sha256         (required)
    // The TOML table names above are help text, not links.
    #[allow(rustdoc::broken_intra_doc_links)]
    #[command(verbatim_doc_comment)]
    Serve(ServeArgs),
    /// Write a simulated fleet as long CSV (tenant,cluster,node,metric,timestamp,value), and
    /// optionally its ground truth as JSON.
    Simulate(SimulateArgs),
}

#[derive(Debug, Subcommand)]
enum EvalCommand {
    /// The Numenta Anomaly Benchmark: NAB score (three profiles, one corpus-wide threshold),
    /// F1, point-adjusted and revised point-adjusted F1 at the engine's alarms, per category.
    ///
    /// Each file is fed point by point; the first 15% (at most 750 points) is NAB's
    /// probationary period: the engine learns there and it is not scored.
    Nab(NabArgs),
    /// The Application Server Dataset: node-level detection over each server's 19 metrics,
    /// F1 and point-adjusted F1, and root-cause HitRate@100% and @150%. Also takes any corpus in
    /// that layout (JumpStarter's); without root-cause labels the hit rates are absent.
    Asd(AsdArgs),
    /// Every corpus under a directory, one table: NAB scores for NAB-like corpora; best PA-F1
    /// beside composite F1 and VUS-PR (metrics a random score cannot inflate) for multi-metric
    /// ones; false alarms per 1,000 series-days on labelled-normal data and on the simulator's
    /// clean fleet. Random scores and the plain robust z-score are always rows, for scale.
    ///
    /// With `--candidates FILE`, also the leave-one-corpus-out choice: for each corpus, the
    /// candidate ranked best on the other corpora, and its figures on the one it never saw
    /// (docs/evaluation.md).
    ///
    /// Examples:
    ///   analytics eval suite --data ../shared
    ///   analytics eval suite --data ../shared --candidates eval/candidates.toml
    ///   analytics eval suite --engine default --engine holt_winters --format json --out /tmp/suite
    #[command(verbatim_doc_comment)]
    Suite(SuiteArgs),
}

#[derive(Debug, Args)]
struct SuiteArgs {
    /// The directory holding the corpora, one per subdirectory [default: $ANALYTICS_DATA, else
    /// ../shared].
    #[arg(long)]
    data: Option<PathBuf>,
    /// Engines to score beside the random and robust z-score rows (repeatable).
    #[arg(long, default_value = "default")]
    engine: Vec<String>,
    /// A TOML list of `[[candidate]]` tables (name, engine, config) to score and choose between
    /// by leave-one-corpus-out; replaces `--engine`.
    #[arg(long)]
    candidates: Option<PathBuf>,
    /// Write every row's per-point scores under `DIR/<corpus>/<row>/`: NAB's layout for
    /// NAB-like corpora, one CSV per node (node score and each metric's) for multi-metric ones.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// The options every benchmark evaluation shares.
#[derive(Debug, Args)]
struct EvalArgs {
    /// The benchmark's directory (NAB: holding combined_windows.json and data/; ASD: holding
    /// omi-1, omi-2, ...).
    #[arg(long)]
    data: PathBuf,
    /// Engine to score (see `analytics engines`).
    #[arg(long, default_value = "default")]
    engine: String,
    /// Engine configuration file, JSON or TOML.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Debug, Args)]
struct NabArgs {
    #[command(flatten)]
    eval: EvalArgs,
    /// Write per-file results in NAB's layout under `DIR/<engine>/<category>/<engine>_<file>.csv`.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct AsdArgs {
    #[command(flatten)]
    eval: EvalArgs,
    /// Write each server's test rows with its scores under `DIR/<engine>/<server>.csv`
    /// (`timestamp,label,node_score,m1,...`: the node's score and each metric's).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Aligned tables for people.
    Table,
    /// JSON for programs: the contract objects.
    Json,
}

/// The simulated fleet's shape (shared by `demo` and `simulate`).
#[derive(Debug, Clone, Args)]
struct FleetArgs {
    /// Seed of the simulation: the same seed gives the same fleet and the same output.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Number of tenants.
    #[arg(long, default_value_t = 3)]
    tenants: usize,
    /// Clusters per tenant.
    #[arg(long, default_value_t = 3)]
    clusters: usize,
    /// Nodes per cluster.
    #[arg(long, default_value_t = 8)]
    nodes: usize,
    /// Metrics per node (1 to 8).
    #[arg(long, default_value_t = 6)]
    metrics: usize,
    /// Days of data.
    #[arg(long, default_value_t = 2.0)]
    days: f64,
    /// Seconds between points.
    #[arg(long, default_value_t = 60)]
    step_seconds: i64,
    /// Probability that a series carries an injected anomaly.
    #[arg(long, default_value_t = 0.15)]
    anomaly_probability: f64,
    /// Probability that a tenant has a tenant-wide incident (error rate and latency lifted on
    /// every node of every cluster of the tenant at once).
    #[arg(long, default_value_t = 0.0)]
    tenant_incidents: f64,
}

impl FleetArgs {
    fn config(&self) -> Result<analytics_sim::FleetConfig> {
        anyhow::ensure!(self.days > 0.0 && self.days.is_finite(), "--days is {}; it must be positive", self.days);
        anyhow::ensure!(self.step_seconds > 0, "--step-seconds is {}; it must be positive", self.step_seconds);
        let points = (self.days * 86_400.0 / self.step_seconds as f64).round() as usize;
        Ok(analytics_sim::FleetConfig {
            seed: self.seed,
            tenants: self.tenants,
            clusters_per_tenant: self.clusters,
            nodes_per_cluster: self.nodes,
            metrics: self.metrics,
            points,
            step_seconds: self.step_seconds,
            anomaly_probability: self.anomaly_probability,
            tenant_incident_probability: self.tenant_incidents,
            ..analytics_sim::FleetConfig::default()
        })
    }
}

#[derive(Debug, Args)]
struct DemoArgs {
    #[command(flatten)]
    fleet: FleetArgs,
    #[command(flatten)]
    pipeline: PipelineArgs,
}

/// The options of every command that runs the fleet pipeline (`demo`, `detect`).
#[derive(Debug, Args)]
struct PipelineArgs {
    /// Engine to detect with (see `analytics engines`).
    #[arg(long, default_value = "default")]
    engine: String,
    /// Engine configuration file, JSON or TOML by extension; unset fields keep their defaults.
    #[arg(long)]
    config: Option<PathBuf>,
    /// How scores roll up from metrics to nodes, clusters and tenants.
    #[arg(long, default_value = "max", value_parser = parse_strategy)]
    strategy: analytics_types::AggregationStrategy,
    /// How many of the worst nodes to show.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Worker threads (default: one per core): detection, and for `detect` on a long CSV of 16
    /// MiB or more, reading too.
    #[arg(long)]
    threads: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Debug, Args)]
struct DetectArgs {
    /// Where the data comes from: file:PATH, prometheus:URL, or sim.
    #[arg(long, value_parser = detect::parse_source)]
    source: detect::SourceSpec,
    /// File layout: long, jsonl, nab or wide (default: guessed from the extension or header).
    #[arg(long, value_parser = parse_input_format)]
    input_format: Option<analytics_io::FileFormat>,
    /// Only this tenant (for NAB and wide files: the tenant the file belongs to).
    #[arg(long)]
    tenant: Option<String>,
    /// Only this cluster (for NAB and wide files: the cluster the file belongs to).
    #[arg(long)]
    cluster: Option<String>,
    /// Only this node (for NAB and wide files: the node; default the file's name).
    #[arg(long)]
    node: Option<String>,
    /// Only this metric (for NAB files: the metric's name; default `value`).
    #[arg(long)]
    metric: Option<String>,
    /// First instant to analyse (RFC 3339, YYYY-MM-DD HH:MM:SS in UTC, or epoch seconds).
    /// Prometheus without --from: the 24 hours before --to.
    #[arg(long, value_parser = detect::time_arg)]
    from: Option<chrono::DateTime<chrono::Utc>>,
    /// First instant not to analyse (Prometheus without --to: now).
    #[arg(long, value_parser = detect::time_arg)]
    to: Option<chrono::DateTime<chrono::Utc>>,
    /// Repair bad input (sort, drop duplicates and non-finite values) and report every change,
    /// instead of stopping at the first problem.
    #[arg(long)]
    lenient: bool,
    /// The SQLite result store.
    #[arg(long, default_value = "results.db")]
    store: Option<PathBuf>,
    /// Do not write to the store.
    #[arg(long)]
    no_store: bool,
    /// Read the file in batches of whole nodes (rows grouped by node), so memory holds one
    /// batch, not the file; the store then keeps the anomalous windows only.
    #[arg(long)]
    streaming: bool,
    /// Nodes per batch with --streaming.
    #[arg(long, default_value_t = 1000)]
    batch_nodes: usize,
    /// Exit with status 3 when this is found (after printing and storing as usual), for cron
    /// jobs and CI steps: `anomaly`, any anomalous window; `incident`, any incident wider than
    /// one series (several metrics of a node, or several nodes, at once).
    #[arg(long, value_enum)]
    fail_on: Option<detect::FailOn>,
    #[command(flatten)]
    pipeline: PipelineArgs,
    /// Prometheus: label holding the tenant.
    #[arg(long, default_value = "tenant")]
    tenant_label: String,
    /// Prometheus: label holding the cluster.
    #[arg(long, default_value = "cluster")]
    cluster_label: String,
    /// Prometheus: label holding the node (often `instance`).
    #[arg(long, default_value = "node")]
    node_label: String,
    /// Prometheus: query resolution in seconds.
    #[arg(long, default_value_t = 60)]
    query_step_seconds: i64,
    /// Prometheus: timeout of one request, in seconds (failed requests are retried 3 times).
    #[arg(long, default_value_t = 10.0)]
    timeout_seconds: f64,
    /// Prometheus: file holding a bearer token.
    #[arg(long)]
    bearer_token_file: Option<PathBuf>,
    /// The simulated fleet, for --source sim.
    #[command(flatten)]
    fleet: FleetArgs,
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// The SQLite result store written by `analytics detect`.
    #[arg(long, default_value = "results.db")]
    store: PathBuf,
    /// Where to write the HTML file.
    #[arg(long, default_value = "report.html")]
    out: PathBuf,
    /// How many of the worst nodes to plot.
    #[arg(long, default_value_t = 10)]
    top: usize,
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// About how many series (6 metrics per node, 100 nodes per cluster).
    #[arg(long, default_value_t = 10_000)]
    series: usize,
    /// Points per series (1440: one day at one minute).
    #[arg(long, default_value_t = 1440)]
    points: usize,
    /// Engine to run.
    #[arg(long, default_value = "default")]
    engine: String,
    /// Engine configuration file, JSON or TOML.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Generate and process the fleet in batches of nodes instead of all at once.
    #[arg(long)]
    streaming: bool,
    /// Nodes per batch in streaming mode.
    #[arg(long, default_value_t = 2000)]
    batch_nodes: usize,
    /// Run the scaling table: 1k, 10k, 100k series with 1 and 2 threads.
    #[arg(long)]
    sweep: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Debug, Args)]
struct EnginesArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Debug, Args)]
struct SimulateArgs {
    #[command(flatten)]
    fleet: FleetArgs,
    /// Where to write the long CSV.
    #[arg(long)]
    out: PathBuf,
    /// Where to write the ground truth (JSON), if wanted.
    #[arg(long)]
    truth: Option<PathBuf>,
}

fn parse_input_format(s: &str) -> Result<analytics_io::FileFormat, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| format!("{s:?} is not a file layout; expected long, jsonl, nab or wide"))
}

fn parse_strategy(s: &str) -> Result<analytics_types::AggregationStrategy, String> {
    s.parse()
}

/// Reads an engine configuration file (JSON or TOML, by extension) into a JSON value.
fn read_engine_config(path: Option<&PathBuf>) -> Result<serde_json::Value> {
    let Some(path) = path else { return Ok(serde_json::json!({})) };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read engine config {}", path.display()))?;
    let value = match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => {
            let v: toml::Value =
                toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))?;
            serde_json::to_value(v)?
        }
        Some("json") => serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))?,
        _ => anyhow::bail!("engine config {} must end in .json or .toml", path.display()),
    };
    Ok(value)
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Detect(args) => detect::run(&args),
        Command::Report(args) => report::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Engines(args) => demo::engines(&args),
        Command::Simulate(args) => demo::simulate(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Eval(EvalCommand::Nab(args)) => eval::nab(&args),
        Command::Eval(EvalCommand::Asd(args)) => eval::asd(&args),
        Command::Eval(EvalCommand::Suite(args)) => suite::run(&args),
    }
}

/// The error and its causes joined by `: `, leaving out a cause whose text the message before it
/// already quotes (library errors such as "cannot read FILE: REASON" carry their source inline).
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    let mut last = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !last.is_empty() && last.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
        last = text;
    }
    out
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<detect::FailOnMet>() => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("{e}");
            }
            ExitCode::from(detect::FAIL_ON_STATUS)
        }
        Err(e) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {}", error_chain(&e));
            }
            ExitCode::from(1)
        }
    }
}
