//! Real servers for the integration tests of io, serve and the binary (each includes this file
//! with `#[path]`): Prometheus (Debian's `prometheus` package, 2.42) with history backfilled by
//! `promtool`, and Alertmanager (`prometheus-alertmanager`, 0.25), each on a free loopback port
//! and killed when the test ends. Without the packages the tests fail, loudly: `.ci/run`
//! installs them.

#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use analytics_types::MetricSeries;

/// Kills the server when the test ends, however it ends.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

pub fn require(binary: &str, package: &str) {
    let found = Command::new(binary).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    assert!(
        found,
        "\n\n*** `{binary}` is not installed: this test needs the real server. ***\n\
         Install it with `apt-get install -y --no-install-recommends {package}` (.ci/run does).\n\n"
    );
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("analytics-test-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Series as OpenMetrics text with tenant, cluster and node labels.
pub fn openmetrics(series: &[MetricSeries]) -> String {
    let mut by_metric: std::collections::BTreeMap<&str, Vec<&MetricSeries>> = Default::default();
    for s in series {
        by_metric.entry(s.metric_name().as_str()).or_default().push(s);
    }
    let mut out = String::new();
    for (metric, list) in by_metric {
        out += &format!("# TYPE {metric} gauge\n");
        for s in list {
            let labels =
                format!("tenant=\"{}\",cluster=\"{}\",node=\"{}\"", s.tenant_id(), s.cluster_id(), s.node_id());
            for (t, v) in s.timestamps().iter().zip(s.values()) {
                out += &format!("{metric}{{{labels}}} {v} {}\n", t.timestamp());
            }
        }
    }
    out + "# EOF\n"
}

/// Waits until `GET path` on the port answers 200.
pub fn wait_ready(port: u16, path: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = std::net::TcpStream::connect(("127.0.0.1", port)).ok().and_then(|mut s| {
            s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes()).ok()?;
            let mut buf = String::new();
            s.read_to_string(&mut buf).ok()?;
            buf.starts_with("HTTP/1.0 200").then_some(())
        });
        if ready.is_some() {
            return;
        }
        assert!(Instant::now() < deadline, "the server did not become ready; see {}", log.display());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Prometheus with `history` (OpenMetrics text, may be empty) backfilled, and `scrape` (YAML of
/// `scrape_configs` entries, may be empty) in its configuration. Returns the server and its URL.
pub fn start_prometheus(dir: &Path, history: &str, scrape: &str) -> (Server, String) {
    require("promtool", "prometheus");
    require("prometheus", "prometheus");
    let tsdb = dir.join("tsdb");
    if !history.is_empty() {
        let om = dir.join("data.om");
        std::fs::write(&om, history).unwrap();
        let out = Command::new("promtool")
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&om)
            .arg(&tsdb)
            .output()
            .unwrap();
        assert!(out.status.success(), "promtool failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let cfg = dir.join("prometheus.yml");
    let scrape = if scrape.is_empty() { String::new() } else { format!("scrape_configs:\n{scrape}") };
    std::fs::write(&cfg, format!("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n{scrape}")).unwrap();
    let port = free_port();
    let log = dir.join("prometheus.log");
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", tsdb.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--storage.tsdb.retention.time=3650d")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let server = Server(child);
    wait_ready(port, "/-/ready", &log);
    (server, format!("http://127.0.0.1:{port}"))
}

/// Alertmanager with a configuration that routes everything to nowhere (alerts are kept and
/// listed by its API). Returns the server and its URL.
pub fn start_alertmanager(dir: &Path) -> (Server, String) {
    let binary = if Command::new("prometheus-alertmanager").arg("--version").output().is_ok() {
        "prometheus-alertmanager"
    } else {
        "alertmanager"
    };
    require(binary, "prometheus-alertmanager");
    let cfg = dir.join("alertmanager.yml");
    std::fs::write(&cfg, "route:\n  receiver: none\n  group_wait: 1s\nreceivers:\n  - name: none\n").unwrap();
    let port = free_port();
    let log = dir.join("alertmanager.log");
    let child = Command::new(binary)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.path={}", dir.join("am-data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let server = Server(child);
    wait_ready(port, "/-/ready", &log);
    (server, format!("http://127.0.0.1:{port}"))
}
