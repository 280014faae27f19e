//! The Prometheus source against a real Prometheus server (Debian's `prometheus` package, 2.42):
//! simulated series are written as OpenMetrics, backfilled with `promtool tsdb
//! create-blocks-from openmetrics`, served by `prometheus` on a free loopback port, and read back
//! through the source point for point. Failure modes (server down, slow, HTTP 500, malformed
//! JSON) run against a small local server. Without the package this test fails, loudly: `.ci/run`
//! installs it.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use analytics_io::{IoError, MetricSource, PrometheusConfig, PrometheusSource, Selector, TimeRange};
use analytics_sim::{simulate_fleet, FleetConfig};
use analytics_types::{MetricSeries, TenantId};
use chrono::{DateTime, TimeDelta, Timelike, Utc};

#[path = "support/mod.rs"]
mod support;

use support::{free_port, openmetrics, tempdir};

/// Prometheus with `data` backfilled, scraping nothing.
fn start_prometheus(dir: &Path, data: &str) -> (support::Server, String) {
    support::start_prometheus(dir, data, "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_back_what_was_written_point_for_point() {
    // Two days ago, on the minute; 8 series of a day, and one of 12,000 minutes (chunked).
    let now = Utc::now();
    let start = (now - TimeDelta::days(10)).with_second(0).unwrap().with_nanosecond(0).unwrap();
    let cfg = |points, metrics, nodes| FleetConfig {
        tenants: 1,
        clusters_per_tenant: 2,
        nodes_per_cluster: nodes,
        metrics,
        points,
        start,
        ..FleetConfig::default()
    };
    let day = simulate_fleet(&cfg(1440, 2, 2)).unwrap().series;
    let long: Vec<MetricSeries> =
        simulate_fleet(&FleetConfig { tenants: 2, ..cfg(12_000, 1, 1) }).unwrap().series.into_iter().skip(2).collect();
    assert_eq!(long[0].tenant_id().as_str(), "globex");
    let mut all = day.clone();
    all.extend(long.clone());
    let dir = tempdir("read");
    let (_server, url) = start_prometheus(&dir, &openmetrics(&all));

    let source = PrometheusSource::new(PrometheusConfig::new(&url)).unwrap();
    // query_range evaluates at each step, and a series that stops repeats its last sample for
    // Prometheus's lookback (5 minutes): ask for the range the data covers.
    let range = TimeRange { from: Some(start), to: Some(start + TimeDelta::minutes(1440)) };
    let acme = TenantId::new("acme").unwrap();
    let got = source.get_metric_series(Some(&acme), &Selector::all(), &range).await.unwrap();
    assert_eq!(got.len(), day.len());
    for (g, want) in got.iter().zip(&day) {
        assert_eq!(g.key(), want.key());
        assert_eq!(g.timestamps(), want.timestamps(), "{}", g.key());
        assert_eq!(g.values(), want.values(), "{}", g.key());
    }
    // 12,000 points need two queries of at most 10,000 steps.
    let globex = TenantId::new("globex").unwrap();
    let long_range = TimeRange { from: Some(start), to: Some(start + TimeDelta::minutes(12_000)) };
    let got = source.get_metric_series(Some(&globex), &Selector::all(), &long_range).await.unwrap();
    assert_eq!(got.len(), 2);
    for (g, want) in got.iter().zip(&long) {
        assert_eq!(g.len(), 12_000);
        assert_eq!((g.timestamps(), g.values()), (want.timestamps(), want.values()));
    }
    // Selection by cluster and metric.
    let sel = Selector { cluster: Some("prod-us".into()), metric: Some("cpu_usage".into()), ..Default::default() };
    let got = source.get_metric_series(Some(&acme), &sel, &range).await.unwrap();
    assert_eq!(
        got.iter().map(|s| s.key().to_string()).collect::<Vec<_>>(),
        ["acme/prod-us/node-01/cpu_usage", "acme/prod-us/node-02/cpu_usage"]
    );
    // A wrong label mapping is refused with the labels named.
    let mut wrong = PrometheusConfig::new(&url);
    wrong.labels.node = "instance".into();
    let err = PrometheusSource::new(wrong)
        .unwrap()
        .get_metric_series(Some(&acme), &Selector::all(), &range)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("series lack one of the labels \"tenant\", \"cluster\", \"instance\""), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// A one-shot-per-connection HTTP server on loopback answering with `answer` (or never).
fn fake_server(answer: Option<&'static str>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            match answer {
                Some(a) => {
                    let _ = s.write_all(a.as_bytes());
                }
                None => std::thread::sleep(Duration::from_secs(3)),
            }
        }
    });
    format!("http://127.0.0.1:{port}")
}

fn quick(url: &str) -> PrometheusSource {
    let mut c = PrometheusConfig::new(url);
    c.timeout = Duration::from_millis(300);
    c.retries = 2;
    c.backoff = Duration::from_millis(10);
    PrometheusSource::new(c).unwrap()
}

async fn fetch(s: &PrometheusSource) -> String {
    let t: DateTime<Utc> = "2024-03-04T00:00:00Z".parse().unwrap();
    let range = TimeRange { from: Some(t), to: Some(t + TimeDelta::hours(1)) };
    let err: IoError = s.get_metric_series(None, &Selector::all(), &range).await.unwrap_err();
    err.to_string()
}

#[tokio::test]
async fn failures_are_retried_then_reported() {
    let down = format!("http://127.0.0.1:{}", free_port());
    let e = fetch(&quick(&down)).await;
    assert!(e.starts_with(&format!("prometheus {down}: request failed")) && e.ends_with("(after 3 attempts)"), "{e}");
    let slow = fake_server(None);
    let e = fetch(&quick(&slow)).await;
    assert!(e.ends_with("no answer within 300ms (after 3 attempts)"), "{e}");
    let broken =
        fake_server(Some("HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\nconnection: close\r\n\r\noops"));
    let e = fetch(&quick(&broken)).await;
    assert!(e.ends_with("HTTP 500 Internal Server Error: oops (after 3 attempts)"), "{e}");
    let bad_query =
        fake_server(Some("HTTP/1.1 400 Bad Request\r\ncontent-length: 9\r\nconnection: close\r\n\r\nbad query"));
    let e = fetch(&quick(&bad_query)).await;
    assert!(e.ends_with("HTTP 400 Bad Request: bad query"), "a 4xx is not retried: {e}");
    let garbage = fake_server(Some("HTTP/1.1 200 OK\r\ncontent-length: 8\r\nconnection: close\r\n\r\nnot json"));
    let e = fetch(&quick(&garbage)).await;
    assert!(e.contains("malformed answer: expected ident"), "{e}");
}

/// The bearer token is sent: a server that answers only to it gets a clean empty result, and
/// without the token the 401 is reported (not retried: a 4xx does not get better).
#[tokio::test]
async fn the_bearer_token_is_sent() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(2) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 8192];
            let n = s.read(&mut buf).unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]).to_lowercase();
            let answer = if request.contains("authorization: bearer s3cret") {
                let body = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
                format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len())
            } else {
                "HTTP/1.1 401 Unauthorized\r\ncontent-length: 12\r\nconnection: close\r\n\r\nunauthorized".to_owned()
            };
            let _ = s.write_all(answer.as_bytes());
        }
    });
    let url = format!("http://127.0.0.1:{port}");
    let t: DateTime<Utc> = "2024-03-04T00:00:00Z".parse().unwrap();
    let range = TimeRange { from: Some(t), to: Some(t + TimeDelta::hours(1)) };
    let mut with = PrometheusConfig::new(&url);
    with.bearer_token = Some("s3cret".into());
    let got = PrometheusSource::new(with).unwrap().get_metric_series(None, &Selector::all(), &range).await.unwrap();
    assert!(got.is_empty());
    let e = fetch(&quick(&url)).await;
    assert!(e.ends_with("HTTP 401 Unauthorized: unauthorized"), "{e}");
}
