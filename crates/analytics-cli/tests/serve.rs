//! `analytics serve` as a user runs it, live: a fleet exporter scraped every second by a real
//! Prometheus, the service polling that Prometheus, the same Prometheus scraping the service's
//! /metrics, a headless Chromium loading the dashboard, SIGTERM, and a restart that resumes.

#[path = "../../analytics-io/tests/support/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use analytics_serve::{hash_token, shard_of};
use analytics_types::SeriesKey;

const ADMIN: &str = "admin-secret";

/// A fleet of one cluster, two nodes, two metrics, served as Prometheus text: noise, and from
/// `shift_after` on, error_rate on both nodes 30 higher (a cluster-wide event).
fn exporter(started: Instant, shift_after: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 2048];
            let _request_head = conn.read(&mut buf);
            let secs = started.elapsed().as_secs();
            let mut body = String::new();
            for metric in ["cpu_usage", "error_rate"] {
                body += &format!("# TYPE {metric} gauge\n");
                for (k, node) in ["node-1", "node-2"].into_iter().enumerate() {
                    let noise = ((secs as usize * 2_654_435_761 + k * 40_503 + metric.len()) % 1000) as f64 / 1000.0;
                    let shift = if metric == "error_rate" && started.elapsed() >= shift_after { 30.0 } else { 0.0 };
                    body += &format!(
                        "{metric}{{tenant=\"acme\",cluster=\"prod\",node=\"{node}\"}} {}\n",
                        50.0 + 2.0 * noise + shift
                    );
                }
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            conn.write_all(head.as_bytes()).ok();
            conn.write_all(body.as_bytes()).ok();
        }
    });
    port
}

/// The service's process, killed if the test ends early.
struct Service(Option<Child>);

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            c.kill().ok();
            c.wait().ok();
        }
    }
}

fn start_service(config: &std::path::Path, log: &std::path::Path) -> Service {
    let child = Command::new(env!("CARGO_BIN_EXE_analytics"))
        .args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    Service(Some(child))
}

async fn query(prom: &str, promql: &str) -> Vec<serde_json::Value> {
    let resp =
        reqwest::Client::new().get(format!("{prom}/api/v1/query")).query(&[("query", promql)]).send().await.unwrap();
    let body: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    body["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// Waits until `promql` returns at least `n` series, or panics after `seconds` with the logs.
async fn wait_for(prom: &str, promql: &str, n: usize, seconds: u64, log: &std::path::Path) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        let r = query(prom, promql).await;
        if r.len() >= n {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "{promql}: {} series after {seconds} s; service log:\n{}",
            r.len(),
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_beside_a_real_prometheus_end_to_end() {
    let dir = common::tempdir("cli-serve");
    let started = Instant::now();
    let fleet = exporter(started, Duration::from_secs(60));
    let service_port = common::free_port();
    // Prometheus scrapes the fleet (hashmod puts each series' replica in a `shard` label, to
    // check the service's rule against Prometheus' own) and the service, with the admin token.
    let scrape = format!(
        "  - job_name: fleet\n    static_configs: [{{targets: ['127.0.0.1:{fleet}']}}]\n    metric_relabel_configs:\n\
         \x20     - {{source_labels: [tenant, cluster, node, __name__], modulus: 2, target_label: shard, action: hashmod}}\n\
         \x20 - job_name: analytics\n    authorization: {{credentials: '{ADMIN}'}}\n\
         \x20   static_configs: [{{targets: ['127.0.0.1:{service_port}']}}]\n"
    );
    let (_prom, prom) = common::start_prometheus(&dir, "", &scrape);
    let config = dir.join("serve.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{service_port}\"\nstore = \"serve.db\"\nengine = \"robust_zscore\"\n\
             step_seconds = 1\nwarmup_seconds = 60\ncheckpoint_seconds = 5\nstale_seconds = 30\nresolve_seconds = 5\n\
             [engine_config]\ndetector = {{ window = 30, min_points = 10 }}\ncalibration = {{ min_samples = 32 }}\n\
             [[sources]]\nname = \"prometheus\"\nurl = \"{prom}\"\nquery = '{{job=\"fleet\"}}'\n\
             [auth]\nadmin_token_sha256 = \"{}\"\n",
            hash_token(ADMIN)
        ),
    )
    .unwrap();
    let check = Command::new(env!("CARGO_BIN_EXE_analytics"))
        .args(["serve", "--check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    let log = dir.join("serve.log");
    let mut service = start_service(&config, &log);

    // The scores, scraped by Prometheus from the service and queried back.
    let scores = wait_for(&prom, "anomaly_score{job=\"analytics\"}", 4, 60, &log).await;
    for s in &scores {
        let m = &s["metric"];
        assert_eq!((m["tenant"].as_str(), m["cluster"].as_str()), (Some("acme"), Some("prod")), "{s}");
        let v: f64 = s["value"][1].as_str().unwrap().parse().unwrap();
        assert!((0.0..=1.0).contains(&v), "{s}");
    }
    wait_for(&prom, "anomaly_tenant_score{job=\"analytics\",tenant=\"acme\"}", 1, 10, &log).await;
    wait_for(&prom, "analytics_serve_series_tracked{job=\"analytics\"} == 4", 1, 10, &log).await;
    // The cluster-wide shift opens one cluster incident, seen by Prometheus.
    let open = wait_for(&prom, "anomaly_incident_open{job=\"analytics\",scope=\"cluster\"}", 1, 60, &log).await;
    assert_eq!(open[0]["metric"]["cluster"], "prod");

    // Prometheus' hashmod and the service's shard rule agree on every series.
    let fleet_series = query(&prom, "{job=\"fleet\",tenant=\"acme\"}").await;
    assert_eq!(fleet_series.len(), 4);
    for s in &fleet_series {
        let m = &s["metric"];
        let key = SeriesKey {
            tenant_id: analytics_types::TenantId::new(m["tenant"].as_str().unwrap()).unwrap(),
            cluster_id: analytics_types::ClusterId::new(m["cluster"].as_str().unwrap()).unwrap(),
            node_id: analytics_types::NodeId::new(m["node"].as_str().unwrap()).unwrap(),
            metric_name: analytics_types::MetricName::new(m["__name__"].as_str().unwrap()).unwrap(),
        };
        assert_eq!(m["shard"].as_str().unwrap(), shard_of(&key, 2).to_string(), "{key}");
    }

    // The dashboard, in a headless Chromium, shows the incident first and the ranking.
    let url = format!("http://127.0.0.1:{service_port}/#token={ADMIN}");
    let shot = dir.join("dashboard.png");
    let dom = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=4000", "--dump-dom", &url])
        .output()
        .expect("chromium is installed (.ci/run installs it)");
    let dom = String::from_utf8_lossy(&dom.stdout);
    let incidents = dom.find("id=\"incidents\"").expect("the incidents box");
    let ranking = dom.find("id=\"ranking\"").expect("the ranking table");
    assert!(incidents < ranking, "incidents come first");
    assert!(dom.contains("acme/prod: error_rate on 2 of 2 nodes since "), "the incident sentence:\n{dom}");
    assert!(dom.contains("<td>acme</td>"), "the tenant ranking:\n{dom}");
    assert!(dom.contains("id=\"series-title\">error_rate on node-"), "the worst series opens:\n{dom}");
    assert!(dom.contains("aria-label=\"values and scores\""), "its chart:\n{dom}");
    let status = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=4000", "--window-size=1280,900"])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .unwrap();
    assert!(status.status.success() && shot.exists(), "screenshot at {}", shot.display());

    // SIGTERM: the service checkpoints and stops with status 0.
    let pid = service.0.as_ref().unwrap().id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = service.0.take().unwrap().wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "exit {status}; log:\n{text}");
    assert!(text.contains("SIGTERM received"), "{text}");
    assert!(text.contains("checkpoint: 4 series; stopped"), "{text}");

    // Started again, it resumes every series from the store.
    let log2 = dir.join("serve2.log");
    let again = start_service(&config, &log2);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&log2).unwrap_or_default().contains("listening on") {
        assert!(Instant::now() < deadline, "{}", std::fs::read_to_string(&log2).unwrap_or_default());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let text = std::fs::read_to_string(&log2).unwrap();
    assert!(text.contains("resumed 4 series from checkpoints"), "{text}");

    // kill -9 after its first checkpoint: the next start resumes from that checkpoint.
    while !std::fs::read_to_string(&log2).unwrap_or_default().contains("checkpoint: 4 series") {
        assert!(
            Instant::now() < deadline + Duration::from_secs(20),
            "{}",
            std::fs::read_to_string(&log2).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let pid = again.0.as_ref().unwrap().id().to_string();
    assert!(Command::new("kill").args(["-KILL", &pid]).status().unwrap().success());
    let log3 = dir.join("serve3.log");
    let _third = start_service(&config, &log3);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&log3).unwrap_or_default().contains("listening on") {
        assert!(Instant::now() < deadline, "{}", std::fs::read_to_string(&log3).unwrap_or_default());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let text = std::fs::read_to_string(&log3).unwrap();
    assert!(text.contains("resumed 4 series from checkpoints"), "after kill -9: {text}");
    #[allow(clippy::print_stderr)]
    {
        eprintln!("dashboard screenshot: {}", shot.display());
    }
}

/// A configuration mistake stops `serve` before anything starts, naming file, line and key.
#[test]
fn a_bad_config_is_refused_with_file_line_and_key() {
    let dir = common::tempdir("cli-serve-bad");
    let config = dir.join("serve.toml");
    std::fs::write(
        &config,
        "step_seconds = 0\n[[sources]]\nname = \"p\"\nurl = \"http://127.0.0.1:1\"\nquery = \"up\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_analytics")).args(["serve", "--config"]).arg(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim(), format!("error: {}:1: step_seconds: 0 must be at least 1", config.display()));
    // --help explains every key of the file, with its default.
    let help = Command::new(env!("CARGO_BIN_EXE_analytics")).args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    let example = analytics_serve::EXAMPLE_CONFIG;
    for key in example.lines().filter_map(|l| l.split_once(" = ").map(|(k, _)| k.trim().trim_start_matches("# "))) {
        if ![
            "query",
            "admin_token_sha256",
            "url",
            "alarm",
            "count",
            "index",
            "timeout_seconds",
            "token_sha256",
            "tenant",
            "bearer_token_file",
        ]
        .contains(&key)
            && !key.starts_with('#')
        {
            assert!(help.contains(&format!("{key} = ")), "--help does not explain {key}:\n{help}");
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_analytics")).args(["serve", "--example-config"]).output().unwrap();
    let example = String::from_utf8_lossy(&out.stdout);
    std::fs::write(&config, example.as_bytes()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_analytics"))
        .args(["serve", "--check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "the example config checks: {}", String::from_utf8_lossy(&out.stderr));
    let mut child = Command::new(env!("CARGO_BIN_EXE_analytics"))
        .args(["serve", "--hash-token"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"abc").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n"
    );
}
