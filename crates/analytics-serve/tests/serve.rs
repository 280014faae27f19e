//! The service against a real Prometheus (and Alertmanager): restarts that resume point for
//! point, tenants kept apart on every endpoint, bad input that keeps it up, replicas that split
//! a fleet, alerts that open and resolve.

#[path = "../../analytics-io/tests/support/mod.rs"]
mod common;

use std::path::Path;
use std::sync::Arc;

use analytics_serve::{hash_token, ServeConfig, Service};
use analytics_sim::{simulate_fleet, FleetConfig};
use analytics_types::MetricSeries;
use chrono::{DateTime, TimeDelta, Timelike, Utc};
use common::{free_port, openmetrics, start_alertmanager, start_prometheus, tempdir};

const ADMIN: &str = "admin-secret";
const ACME: &str = "acme-secret";
const GLOBEX: &str = "globex-secret";

/// A day of one-minute points for 2 tenants x 1 cluster x 2 nodes x 2 metrics, ten days ago.
fn fleet() -> (Vec<MetricSeries>, DateTime<Utc>) {
    let start = (Utc::now() - TimeDelta::days(10)).with_second(0).unwrap().with_nanosecond(0).unwrap();
    let start = DateTime::from_timestamp(start.timestamp() / 3600 * 3600, 0).unwrap();
    let cfg = FleetConfig {
        tenants: 2,
        clusters_per_tenant: 1,
        nodes_per_cluster: 2,
        metrics: 2,
        points: 1440,
        start,
        anomaly_probability: 1.0,
        ..FleetConfig::default()
    };
    (simulate_fleet(&cfg).unwrap().series, start)
}

/// A configuration for the test: the given sources, tokens for the admin, acme and globex, and
/// `extra` lines (TOML) that replace the defaults below key by key.
fn config(dir: &Path, store: &str, sources: &[(&str, &str)], extra: &str) -> ServeConfig {
    let defaults = [
        ("name", "\"test\"".to_owned()),
        ("listen", format!("\"127.0.0.1:{}\"", free_port())),
        ("store", format!("\"{store}\"")),
        ("step_seconds", "60".into()),
        ("warmup_seconds", "10800".into()),
        ("keep_points", "2000".into()),
        ("stale_seconds", "3000000".into()),
        ("forget_seconds", "3000000".into()),
    ];
    let given: Vec<&str> = extra.lines().filter_map(|l| l.split('=').next()).map(str::trim).collect();
    let mut text = String::new();
    for (key, value) in defaults {
        if !given.contains(&key) {
            text += &format!("{key} = {value}\n");
        }
    }
    let (top, tables) = extra.split_once("\n[").map_or((extra, ""), |(a, b)| (a, b));
    text += top;
    text += "\n";
    for (name, url) in sources {
        text += &format!(
            "[[sources]]\nname = \"{name}\"\nurl = \"{url}\"\nquery = '{{tenant!=\"\"}}'\ntimeout_seconds = 2\n"
        );
    }
    if !tables.is_empty() {
        text += &format!("[{tables}\n");
    }
    text += &format!(
        "[auth]\nadmin_token_sha256 = \"{}\"\n[[auth.tenants]]\ntenant = \"acme\"\ntoken_sha256 = \"{}\"\n\
         [[auth.tenants]]\ntenant = \"globex\"\ntoken_sha256 = \"{}\"\n",
        hash_token(ADMIN),
        hash_token(ACME),
        hash_token(GLOBEX)
    );
    ServeConfig::parse(&dir.join("serve.toml"), &text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Polls at `from_minute` after `start`, every seven minutes after (each poll takes the minutes
/// since the last), and at `to_minute`.
async fn polls(service: &Arc<Service>, start: DateTime<Utc>, from_minute: i64, to_minute: i64) -> u64 {
    let mut points = 0;
    let mut m = from_minute;
    loop {
        let r = service.poll_once(start + TimeDelta::minutes(m.min(to_minute))).await;
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        points += r.points;
        if m >= to_minute {
            return points;
        }
        m += 7;
    }
}

/// A service stopped after a checkpoint, and killed two polls later (those polls' points are
/// not in the store), resumes from the store and scores every later point exactly as a service
/// that never stopped: the same values, scores and events, bit for bit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_service_scores_exactly_as_an_uninterrupted_one() {
    let (series, start) = fleet();
    let dir = tempdir("restart");
    let (_prom, url) = start_prometheus(&dir, &openmetrics(&series), "");

    let (whole, report) = Service::start(config(&dir, "whole.db", &[("prom", &url)], "")).unwrap();
    assert_eq!(report.restored, 0);
    assert!(!whole.is_ready(), "not ready before the first poll");
    let taken = polls(&whole, start, 180, 1439).await;
    assert_eq!(taken, 8 * 1440, "every point of the day, once");

    let (first, _) = Service::start(config(&dir, "restarted.db", &[("prom", &url)], "")).unwrap();
    polls(&first, start, 180, 180 + 7 * 40).await;
    assert_eq!(first.checkpoint(start + TimeDelta::minutes(460)).unwrap(), 8);
    polls(&first, start, 180 + 7 * 41, 180 + 7 * 42).await; // lost with the kill
    drop(first);

    let (second, report) = Service::start(config(&dir, "restarted.db", &[("prom", &url)], "")).unwrap();
    assert_eq!((report.restored, report.refused.len()), (8, 0));
    assert_eq!(report.resume_from, Some(start + TimeDelta::minutes(460)));
    polls(&second, start, 180 + 7 * 41, 1439).await;
    assert_eq!(second.dropped().out_of_order, 0);
    let keys = whole.keys();
    assert_eq!(keys, second.keys());
    let mut events = 0;
    for key in &keys {
        let (a, b) = (whole.series(key).unwrap(), second.series(key).unwrap());
        assert_eq!(a.0.len(), 1440, "{key}");
        for (p, q) in a.0.iter().zip(&b.0) {
            assert!(
                p.t == q.t && p.value.to_bits() == q.value.to_bits() && p.score.to_bits() == q.score.to_bits(),
                "{key}: {p:?} vs {q:?}"
            );
        }
        assert_eq!(a.1, b.1, "{key}: events");
        events += a.1.len();
    }
    assert!(events > 0, "the simulated anomalies raise events");

    // A checkpoint saved by another engine configuration is refused, and that series starts afresh.
    let (_, report) = Service::start(config(
        &dir,
        "restarted.db",
        &[("prom", &url)],
        "\n[engine_config]\nalarm = { threshold = 0.9 }",
    ))
    .unwrap();
    assert_eq!(report.restored, 0);
    assert_eq!(report.refused.len(), 8);
    assert!(report.refused[0].contains("another configuration"), "{}", report.refused[0]);
}

/// Runs the service's HTTP side (and its poll loop) until the returned sender is dropped.
fn run_in_background(service: Arc<Service>) -> tokio::sync::oneshot::Sender<()> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        service
            .run(
                async {
                    stopped.await.ok();
                },
                |_| {},
            )
            .await
            .ok(); // cancelled when the test's runtime ends
    });
    stop
}

async fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let client = reqwest::Client::new();
    let mut req = client.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Every endpoint, with no token, a wrong token, another tenant's token, the tenant's own and
/// the admin's: refused with 401 / 403 and a JSON error, or answered with the tenant's own
/// series only. No body ever names the other tenant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_token_sees_its_tenant_only_on_every_endpoint() {
    let (series, start) = fleet();
    let dir = tempdir("auth");
    let (_prom, url) = start_prometheus(&dir, &openmetrics(&series), "");
    let cfg = config(&dir, "auth.db", &[("prom", &url)], "");
    let base = format!("http://{}", cfg.listen);
    let (service, _) = Service::start(cfg).unwrap();
    polls(&service, start, 180, 1439).await;
    let _stop = run_in_background(Arc::clone(&service));
    common::wait_ready(base.rsplit(':').next().unwrap().parse().unwrap(), "/-/ready", Path::new("(in-process)"));

    let acme = series.iter().find(|s| s.tenant_id().as_str() == "acme").unwrap();
    let (c, n, m) = (acme.cluster_id().as_str(), acme.node_id().as_str(), acme.metric_name().as_str());
    let globex = series.iter().find(|s| s.tenant_id().as_str() == "globex").unwrap();
    let (gc, gn, gm) = (globex.cluster_id().as_str(), globex.node_id().as_str(), globex.metric_name().as_str());
    // (path for acme, the same for globex or None when the endpoint takes no tenant, text that
    // acme's answer holds)
    let endpoints: Vec<(String, Option<String>, String)> = vec![
        ("/metrics".into(), None, "tenant=\"acme\"".into()),
        ("/api/v1/tenants".into(), None, "\"name\":\"acme\"".into()),
        ("/api/v1/incidents".into(), None, "\"incidents\":".into()),
        ("/api/v1/events".into(), None, "\"tenant\":\"acme\"".into()),
        (
            "/api/v1/tenants/acme/clusters".into(),
            Some("/api/v1/tenants/globex/clusters".into()),
            format!("\"name\":\"{c}\""),
        ),
        (
            format!("/api/v1/tenants/acme/clusters/{c}/nodes"),
            Some(format!("/api/v1/tenants/globex/clusters/{gc}/nodes")),
            format!("\"name\":\"{n}\""),
        ),
        (
            format!("/api/v1/tenants/acme/clusters/{c}/nodes/{n}/series"),
            Some(format!("/api/v1/tenants/globex/clusters/{gc}/nodes/{gn}/series")),
            format!("\"name\":\"{m}\""),
        ),
        (
            format!("/api/v1/series?tenant=acme&cluster={c}&node={n}&metric={m}"),
            Some(format!("/api/v1/series?tenant=globex&cluster={gc}&node={gn}&metric={gm}")),
            "\"points\":[{".into(),
        ),
        (
            "/api/v1/events?tenant=acme".into(),
            Some("/api/v1/events?tenant=globex".into()),
            "\"tenant\":\"acme\"".into(),
        ),
    ];
    for (path, other, expect) in &endpoints {
        for token in [None, Some("wrong")] {
            let (status, body) = get(&format!("{base}{path}"), token).await;
            assert_eq!(status, 401, "{path} with {token:?}");
            let json: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(json["status"], 401, "{path}: {body}");
            assert!(!body.contains("acme") && !body.contains("globex"), "{path}: {body}");
        }
        let (status, body) = get(&format!("{base}{path}"), Some(ACME)).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(body.contains(expect.as_str()), "{path}: {body}");
        assert!(!body.contains("globex"), "{path} leaks globex to acme: {body}");
        let (status, body) = get(&format!("{base}{path}"), Some(ADMIN)).await;
        assert_eq!(status, 200, "{path}: {body}");
        if let Some(other) = other {
            let (status, body) = get(&format!("{base}{other}"), Some(ACME)).await;
            assert_eq!(status, 403, "{other} with acme's token: {body}");
            assert_eq!(body, "{\"status\":403,\"error\":\"this token may not read tenant \\\"globex\\\"\"}");
            let (status, body) = get(&format!("{base}{other}"), Some(GLOBEX)).await;
            assert_eq!(status, 200, "{other}: {body}");
            assert!(!body.contains("acme"), "{other}: {body}");
        }
    }
    // The admin sees both tenants and the service's health; a tenant sees neither other.
    let (_, admin_metrics) = get(&format!("{base}/metrics"), Some(ADMIN)).await;
    assert!(admin_metrics.contains("tenant=\"acme\"") && admin_metrics.contains("tenant=\"globex\""));
    assert!(admin_metrics.contains("analytics_serve_series_tracked 8"), "{admin_metrics}");
    // Every sample follows its own family's TYPE line (the text format's rule).
    let mut family = "";
    for line in admin_metrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            family = rest.split(' ').next().unwrap();
        } else if !line.starts_with('#') {
            let name = line.split(['{', ' ']).next().unwrap();
            assert_eq!(name, family, "{line} outside its family");
        }
    }
    let (_, acme_metrics) = get(&format!("{base}/metrics"), Some(ACME)).await;
    assert!(!acme_metrics.contains("analytics_serve_"), "service health is for the admin");
    assert_eq!(acme_metrics.matches("anomaly_score{").count(), 4, "acme's four series");
    assert_eq!(get(&format!("{base}/api/v1/status"), Some(ACME)).await.0, 403);
    assert_eq!(get(&format!("{base}/api/v1/status"), Some(ADMIN)).await.0, 200);
    // Health checks need no token; unknown paths answer JSON 404; bad parameters JSON 400.
    assert_eq!(get(&format!("{base}/-/healthy"), None).await, (200, "analytics serve is Healthy.\n".into()));
    assert_eq!(get(&format!("{base}/-/ready"), None).await.0, 200);
    assert_eq!(get(&format!("{base}/nope"), Some(ADMIN)).await.0, 404);
    let (status, body) = get(&format!("{base}/api/v1/series?tenant=acme&cluster={c}&node={n}"), Some(ADMIN)).await;
    assert_eq!((status, body.as_str()), (400, "{\"status\":400,\"error\":\"the query parameter metric is required\"}"));
    let (status, body) =
        get(&format!("{base}/api/v1/series?tenant=acme&cluster={c}&node={n}&metric={m}&from=yesterday"), Some(ADMIN))
            .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("from: \\\"yesterday\\\" is not an RFC 3339 time"), "{body}");
}

/// A source that is down and one that answers garbage are reported, counted on /metrics and
/// asked again next poll, while the good source's series are scored; a series that stops
/// reporting goes stale (out of /metrics and the rankings), then is forgotten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sources_and_vanishing_series_keep_the_service_up() {
    let (mut series, start) = fleet();
    // One series stops at noon.
    let (key, ts, vs) = series[0].clone().into_parts();
    series[0] = MetricSeries::from_key(key.clone(), ts[..720].to_vec(), vs[..720].to_vec()).unwrap();
    let dir = tempdir("bad");
    let (_prom, url) = start_prometheus(&dir, &openmetrics(&series), "");
    // A server that answers every request with a truncated JSON body.
    let garbage = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let garbage_url = format!("http://{}", garbage.local_addr().unwrap());
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut conn in garbage.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _request_head = conn.read(&mut buf);
            let body = "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[{\"met";
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            conn.write_all(head.as_bytes()).ok();
            conn.write_all(body.as_bytes()).ok();
        }
    });
    let down_url = format!("http://127.0.0.1:{}", free_port());
    let cfg = config(
        &dir,
        "bad.db",
        &[("prom", &url), ("down", &down_url), ("garbage", &garbage_url)],
        "stale_seconds = 900\nforget_seconds = 7200",
    );
    let base = format!("http://{}", cfg.listen);
    let (service, _) = Service::start(cfg).unwrap();
    let r = service.poll_once(start + TimeDelta::minutes(600)).await;
    assert_eq!(r.errors.len(), 2, "{:?}", r.errors);
    assert!(r.errors[0].starts_with("source \"down\": prometheus http://127.0.0.1:"), "{}", r.errors[0]);
    assert!(r.errors[0].contains("request failed"), "{}", r.errors[0]);
    assert!(r.errors[1].starts_with("source \"garbage\": "), "{}", r.errors[1]);
    assert!(r.errors[1].contains("malformed answer"), "{}", r.errors[1]);
    assert_eq!(r.points, 8 * 181, "three hours of warm-up, every point of the good source");
    // Up to two hours past noon: the stopped series is stale, then forgotten.
    let stale = start + TimeDelta::minutes(760);
    service.poll_once(stale).await;
    assert!(service.keys().contains(&key), "stale, still tracked");
    assert_eq!(service.standings(&[]).iter().map(|r| r.series).sum::<usize>(), 7, "stale: out of the rankings");
    service.poll_once(start + TimeDelta::minutes(850)).await;
    assert!(!service.keys().contains(&key), "forgotten after two hours");
    assert_eq!(service.keys().len(), 7);
    assert!(service.is_ready());
    // The errors are on /metrics (the run's own first poll, at the wall clock, adds its own).
    let _stop = run_in_background(Arc::clone(&service));
    common::wait_ready(base.rsplit(':').next().unwrap().parse().unwrap(), "/-/ready", Path::new("(in-process)"));
    let (_, metrics) = get(&format!("{base}/metrics"), Some(ADMIN)).await;
    assert!(metrics.contains("analytics_serve_source_errors_total{source=\"down\"} "), "{metrics}");
    assert!(metrics.contains("analytics_serve_source_errors_total{source=\"prom\"} 0"), "{metrics}");
}

/// Two replicas, each with its share of the fleet by the hashmod rule, score every series
/// exactly once between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_score_every_series_exactly_once() {
    let (series, start) = fleet();
    let dir = tempdir("shards");
    let (_prom, url) = start_prometheus(&dir, &openmetrics(&series), "");
    let mut seen = Vec::new();
    for index in 0..2 {
        let extra = format!("name = \"replica-{index}\"\n[shard]\ncount = 2\nindex = {index}");
        let (replica, _) = Service::start(config(&dir, "shards.db", &[("prom", &url)], &extra)).unwrap();
        polls(&replica, start, 180, 400).await;
        let keys = replica.keys();
        assert!(!keys.is_empty() && keys.len() < 8, "replica {index} has {} series", keys.len());
        for k in &keys {
            assert_eq!(analytics_serve::shard_of(k, 2), index);
        }
        assert_eq!(replica.checkpoint(start).unwrap(), keys.len());
        seen.extend(keys);
    }
    seen.sort();
    let mut all: Vec<_> = series.iter().map(|s| s.key()).collect();
    all.sort();
    assert_eq!(seen, all, "every series once");
}

/// A cluster-wide level shift opens one cluster incident, posted to a real Alertmanager with its
/// labels and sentence; when the anomaly has passed, the incident resolves and Alertmanager is
/// told so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_opens_and_resolves_in_alertmanager() {
    let (_, start) = fleet();
    let ts: Vec<_> = (0..1440).map(|i| start + TimeDelta::minutes(i)).collect();
    let noise = |i: usize, k: usize| ((i * 2_654_435_761 + k * 40_503) % 10_007) as f64 / 10_007.0 - 0.5;
    let mut series = Vec::new();
    for (k, node) in ["node-1", "node-2"].into_iter().enumerate() {
        for (j, metric) in ["cpu_usage", "error_rate"].into_iter().enumerate() {
            let vs = (0..1440)
                .map(|i| {
                    let shift = if metric == "error_rate" && (1000..1060).contains(&i) { 25.0 } else { 0.0 };
                    50.0 + 2.0 * noise(i, 4 * k + j) + shift
                })
                .collect();
            series.push(MetricSeries::new("acme", "prod", node, metric, ts.clone(), vs).unwrap());
        }
    }
    let dir = tempdir("alerts");
    let (_prom, url) = start_prometheus(&dir, &openmetrics(&series), "");
    let (_am, am_url) = start_alertmanager(&dir);
    let extra = format!("warmup_seconds = 36000\n[alertmanager]\nurl = \"{am_url}\"");
    let (service, _) = Service::start(config(&dir, "alerts.db", &[("prom", &url)], &extra)).unwrap();
    let mut opened = Vec::new();
    let mut resolved = Vec::new();
    let mut first_open = None;
    for minute in 600..1200 {
        let r = service.poll_once(start + TimeDelta::minutes(minute)).await;
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        if !r.opened.is_empty() && first_open.is_none() {
            first_open = Some(minute);
            // Alertmanager has it, with its labels and sentence.
            let (status, body) = get(&format!("{am_url}/api/v2/alerts"), None).await;
            assert_eq!(status, 200);
            let alerts: serde_json::Value = serde_json::from_str(&body).unwrap();
            let alert = alerts
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["labels"]["alertname"] == "AnomalyIncident")
                .unwrap_or_else(|| panic!("no incident alert in {body}"));
            assert_eq!(alert["labels"]["scope"], "cluster", "{alert}");
            assert_eq!(alert["labels"]["tenant"], "acme");
            assert_eq!(alert["labels"]["cluster"], "prod");
            assert_eq!(alert["labels"]["service"], "test");
            assert_eq!(alert["status"]["state"], "active");
            let summary = alert["annotations"]["summary"].as_str().unwrap();
            assert!(summary.starts_with("acme/prod: error_rate on 2 of 2 nodes since "), "{summary}");
            assert!(summary.contains("; worst node-"), "{summary}");
        }
        opened.extend(r.opened);
        resolved.extend(r.resolved);
    }
    let first_open = first_open.expect("the shift opens an incident");
    assert!((1000..1003).contains(&first_open), "opened at minute {first_open}");
    let cluster: Vec<_> = opened.iter().filter(|i| i.scope == analytics_serve::Scope::Cluster).collect();
    assert_eq!(cluster.len(), 1, "one cluster incident: {opened:#?}");
    assert!(resolved.iter().any(|i| i.id() == cluster[0].id()), "it resolves: {resolved:#?}");
    assert!(service.open_incidents().is_empty());
    // Alertmanager holds it as resolved: no active incident alert is left.
    let (_, body) = get(&format!("{am_url}/api/v2/alerts?active=true"), None).await;
    let alerts: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        !alerts.as_array().unwrap().iter().any(|a| a["labels"]["alertname"] == "AnomalyIncident"),
        "still active in Alertmanager: {body}"
    );
}
