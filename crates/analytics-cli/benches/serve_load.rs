//! `analytics serve` under load, on loopback: a fleet exporter with SERIES series (10,000 by
//! default) scraped by a real Prometheus every STEP seconds (15), the service polling it every
//! STEP seconds with the default engine, and CLIENTS (32) API clients asking without pause for
//! DURATION seconds (180): rankings at every level, series views, incidents and, one request in
//! sixteen, the whole /metrics page. Prints points ingested per second, the poll's own work per
//! point, API latency percentiles per endpoint, errors, the service's peak memory and its
//! checkpoint.
//!
//! ```sh
//! cargo bench -p analytics-cli --bench serve_load                 # the defaults
//! SERIES=2000 DURATION=60 cargo bench -p analytics-cli --bench serve_load
//! ```
//!
//! Needs Debian's `prometheus` package, as the tests do.

#[path = "../../analytics-io/tests/support/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ADMIN: &str = "bench-admin";
const TENANTS: usize = 10;
const CLUSTERS: usize = 10;
const METRICS: usize = 10;

/// Per endpoint kind: request latencies in milliseconds, and failed requests.
type Latencies = BTreeMap<&'static str, (Vec<f64>, u64)>;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Serves `series` gauges: tenants x clusters x nodes x metrics, noise around 50.
fn exporter(series: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let nodes = series.div_ceil(TENANTS * CLUSTERS * METRICS).max(1);
    let started = Instant::now();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 2048];
            let _request_head = conn.read(&mut buf);
            let tick = started.elapsed().as_secs() as usize;
            let mut body = String::with_capacity(series * 90);
            let mut n = 0;
            'all: for m in 0..METRICS {
                body += &format!("# TYPE metric_{m} gauge\n");
                for t in 0..TENANTS {
                    for c in 0..CLUSTERS {
                        for node in 0..nodes {
                            if n == series {
                                break 'all;
                            }
                            n += 1;
                            let noise = ((tick * 2_654_435_761 + n * 40_503) % 10_007) as f64 / 10_007.0;
                            body += &format!(
                                "metric_{m}{{tenant=\"tenant-{t}\",cluster=\"cluster-{c}\",node=\"node-{node}\"}} {:.3}\n",
                                50.0 + 4.0 * noise
                            );
                        }
                    }
                }
            }
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
            conn.write_all(head.as_bytes()).ok();
            conn.write_all(body.as_bytes()).ok();
        }
    });
    port
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[allow(clippy::print_stdout)]
fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // `cargo bench` passes --bench: the full run. Run as a test (`cargo test --benches`, as
    // `cargo xtask verify` does), a small smoke run that checks the harness still works.
    let full = std::env::args().any(|a| a == "--bench");
    let series = env("SERIES", if full { 10_000 } else { 200 }) as usize;
    let duration = Duration::from_secs(env("DURATION", if full { 180 } else { 4 }));
    let clients = env("CLIENTS", if full { 32 } else { 4 }) as usize;
    let step = env("STEP", if full { 15 } else { 1 });
    let dir = common::tempdir("serve-load");
    let fleet = exporter(series);
    // The metrics that exist for every node (a small fleet has fewer than METRICS).
    let nodes = series.div_ceil(TENANTS * CLUSTERS * METRICS).max(1);
    let metrics = (series / (TENANTS * CLUSTERS * nodes)).clamp(1, METRICS);
    let port = common::free_port();
    let scrape = format!(
        "  - job_name: fleet\n    scrape_interval: {step}s\n    static_configs: [{{targets: ['127.0.0.1:{fleet}']}}]\n"
    );
    let (_prom, prom) = common::start_prometheus(&dir, "", &scrape);
    let config = dir.join("serve.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\nstore = \"serve.db\"\nstep_seconds = {step}\nwarmup_seconds = 600\n\
             checkpoint_seconds = 60\n[[sources]]\nname = \"prometheus\"\nurl = \"{prom}\"\nquery = '{{job=\"fleet\"}}'\n\
             timeout_seconds = 30\n[auth]\nadmin_token_sha256 = \"{}\"\n",
            analytics_serve::hash_token(ADMIN)
        ),
    )
    .unwrap();
    let binary = std::env::var("ANALYTICS_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_analytics").to_owned());
    let log = dir.join("serve.log");
    let mut child = Command::new(&binary)
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id();
    let base = format!("http://127.0.0.1:{port}");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let report = runtime.block_on(async {
        let client = reqwest::Client::new();
        // Ready, and every series seen once.
        let t0 = Instant::now();
        loop {
            let tracked = gauge(&client, &base, "analytics_serve_series_tracked").await.unwrap_or(0.0);
            if tracked as usize >= series {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(300),
                "the service did not see {series} series; log at {}",
                log.display()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let start_points = points_total(&client, &base).await;
        let started = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let results: Arc<Mutex<Latencies>> = Arc::default();
        let mut tasks = Vec::new();
        for k in 0..clients {
            let (stop, results, client, base) = (Arc::clone(&stop), Arc::clone(&results), client.clone(), base.clone());
            tasks.push(tokio::spawn(async move {
                let mut i = k;
                while !stop.load(Ordering::Relaxed) {
                    let (t, c) = (i % TENANTS, (i / TENANTS) % CLUSTERS);
                    let (kind, path): (&'static str, String) = match i % 16 {
                        0 => ("/metrics", "/metrics".into()),
                        1 | 2 => ("tenants", "/api/v1/tenants".into()),
                        3 | 4 => ("clusters", format!("/api/v1/tenants/tenant-{t}/clusters")),
                        5..=7 => ("nodes", format!("/api/v1/tenants/tenant-{t}/clusters/cluster-{c}/nodes")),
                        8 | 9 => (
                            "node series",
                            format!("/api/v1/tenants/tenant-{t}/clusters/cluster-{c}/nodes/node-0/series"),
                        ),
                        10..=13 => (
                            "series",
                            format!(
                                "/api/v1/series?tenant=tenant-{t}&cluster=cluster-{c}&node=node-0&metric=metric_{}",
                                i % metrics
                            ),
                        ),
                        _ => ("incidents", "/api/v1/incidents".into()),
                    };
                    let (ok, ms) = timed_get(&client, &format!("{base}{path}")).await;
                    let mut r = results.lock().unwrap();
                    let e = r.entry(kind).or_default();
                    e.0.push(ms);
                    e.1 += u64::from(!ok);
                    i += clients;
                }
            }));
        }
        let mut peak_rss = 0;
        let mut poll_work = Vec::new();
        while started.elapsed() < duration {
            tokio::time::sleep(Duration::from_secs(step)).await;
            peak_rss = peak_rss.max(status_kib(pid, "VmRSS:"));
            if let Some(v) = gauge(&client, &base, "analytics_serve_poll_seconds").await {
                poll_work.push(v);
            }
        }
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.ok();
        }
        let elapsed = started.elapsed().as_secs_f64();
        let points = points_total(&client, &base).await - start_points;
        let results = results.lock().unwrap().clone();
        (elapsed, points, results, peak_rss, poll_work)
    });
    let (elapsed, points, results, peak_rss, poll_work) = report;
    let hwm = status_kib(pid, "VmHWM:");
    // SIGTERM: the final checkpoint, timed.
    let t = Instant::now();
    Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    let status = child.wait().unwrap();
    let stop_seconds = t.elapsed().as_secs_f64();
    let db = std::fs::metadata(dir.join("serve.db")).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(dir.join("serve.db-wal")).map(|m| m.len()).unwrap_or(0);

    println!("analytics serve under load: {series} series, step {step} s, {clients} API clients, {elapsed:.0} s");
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| points ingested | {points} ({:.0} per second; {series} series / {step} s = {:.0}) |",
        points as f64 / elapsed,
        series as f64 / step as f64
    );
    let mut work = poll_work.clone();
    work.sort_by(f64::total_cmp);
    let med = percentile(&work, 0.5);
    println!(
        "| poll duration (query, decode, feed), median of {} | {:.1} ms for {series} points |",
        work.len(),
        med * 1000.0
    );
    let mut all: Vec<f64> = results.values().flat_map(|(v, _)| v.iter().copied()).collect();
    all.sort_by(f64::total_cmp);
    let errors: u64 = results.values().map(|(_, e)| e).sum();
    println!("| API requests | {} ({:.0} per second), errors {errors} |", all.len(), all.len() as f64 / elapsed);
    println!("| API latency, all | p50 {:.2} ms, p99 {:.2} ms |", percentile(&all, 0.5), percentile(&all, 0.99));
    for (kind, (v, e)) in &results {
        let mut v = v.clone();
        v.sort_by(f64::total_cmp);
        println!(
            "| {kind} | {} requests, p50 {:.2} ms, p99 {:.2} ms, errors {e} |",
            v.len(),
            percentile(&v, 0.5),
            percentile(&v, 0.99)
        );
    }
    println!(
        "| service memory | peak RSS {:.0} MiB (sampled), high-water mark {:.0} MiB |",
        peak_rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    println!("| SIGTERM to exit (final checkpoint) | {stop_seconds:.2} s, exit code {:?} |", status.code());
    println!(
        "| store after it | {:.1} MiB ({:.0} bytes per series) |",
        db as f64 / 1048576.0,
        db as f64 / series as f64
    );
    assert!(
        points > 0 && errors == 0 && !all.is_empty() && status.success(),
        "the load run failed; log at {}",
        log.display()
    );
}

async fn metrics_text(client: &reqwest::Client, base: &str) -> String {
    match client.get(format!("{base}/metrics")).bearer_auth(ADMIN).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

async fn gauge(client: &reqwest::Client, base: &str, name: &str) -> Option<f64> {
    let text = metrics_text(client, base).await;
    text.lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|v| v.parse().ok())
}

async fn points_total(client: &reqwest::Client, base: &str) -> u64 {
    gauge(client, base, "analytics_serve_points_total").await.unwrap_or(0.0) as u64
}

async fn timed_get(client: &reqwest::Client, url: &str) -> (bool, f64) {
    let t = Instant::now();
    let ok = match client.get(url).bearer_auth(ADMIN).send().await {
        Ok(resp) => resp.status().is_success() && resp.bytes().await.is_ok(),
        Err(_) => false,
    };
    (ok, t.elapsed().as_secs_f64() * 1000.0)
}
