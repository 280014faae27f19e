//! Prometheus as a metric source, through its HTTP API (`/api/v1/query_range`).
//!
//! - **Label mapping.** Which labels hold the tenant, cluster and node (for example `node` may be
//!   `instance`); the metric is `__name__`. Series missing one of the labels are counted and left
//!   out, never silently.
//! - **Chunking.** Prometheus refuses more than 11,000 points per series in one query; long
//!   ranges are split into queries of at most 10,000 steps and the pieces joined. A range of
//!   more than 360 steps is also split into at least four pieces, fetched and decoded four at a
//!   time (bounded), so a large read is bound by the server, not by one request at a time.
//! - **Timeouts and retries.** Each request has a timeout; connection failures, timeouts, 429 and
//!   5xx answers are retried with exponential backoff; a 4xx answer (a bad query) is not.
//! - **Authentication.** An optional bearer token.
//! - **What comes back.** `query_range` evaluates the selector at each step: a series that stops
//!   reporting repeats its last sample for Prometheus's lookback (5 minutes by default) after it
//!   stops, and gaps shorter than the lookback are filled the same way. Ask for the range the
//!   data covers, with the step it was scraped at.
//! - **Decoding** ([`decode_query_range`]) is a pure function of the response body, fuzzed
//!   separately. NaN samples (Prometheus returns them as `"NaN"`) are an error naming the series
//!   in strict mode, dropped and counted in lenient mode. It reads straight into typed rows and
//!   borrows each sample's text from the body (no JSON tree, no string per sample).

use std::collections::BTreeMap;
use std::time::Duration;

use analytics_types::{ClusterId, MetricName, MetricSeries, NodeId, SeriesKey, TenantId};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;

use crate::{IoError, MetricSource, Selector, TimeRange};

/// Which Prometheus labels hold the platform's identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelMapping {
    /// Label holding the tenant.
    pub tenant: String,
    /// Label holding the cluster.
    pub cluster: String,
    /// Label holding the node.
    pub node: String,
}

impl Default for LabelMapping {
    fn default() -> Self {
        Self { tenant: "tenant".into(), cluster: "cluster".into(), node: "node".into() }
    }
}

/// How to talk to a Prometheus server.
#[derive(Debug, Clone)]
pub struct PrometheusConfig {
    /// Base URL, e.g. `http://127.0.0.1:9090`.
    pub url: String,
    /// Label mapping.
    pub labels: LabelMapping,
    /// Resolution of the query (`step`).
    pub step: TimeDelta,
    /// Range used when the query leaves an end open: the last `default_range` up to now.
    pub default_range: TimeDelta,
    /// Timeout of one HTTP request.
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub retries: u32,
    /// First backoff; doubled after each retry.
    pub backoff: Duration,
    /// Bearer token, if the server wants one.
    pub bearer_token: Option<String>,
    /// Drop NaN samples (counted) instead of failing.
    pub lenient: bool,
}

impl PrometheusConfig {
    /// Defaults for a server at `url`: step 60 s, last 24 h, 10 s timeout, 3 retries from 200 ms.
    pub fn new(url: &str) -> Self {
        Self {
            url: url.trim_end_matches('/').to_owned(),
            labels: LabelMapping::default(),
            step: TimeDelta::seconds(60),
            default_range: TimeDelta::hours(24),
            timeout: Duration::from_secs(10),
            retries: 3,
            backoff: Duration::from_millis(200),
            bearer_token: None,
            lenient: false,
        }
    }
}

/// Most steps asked for in one query (Prometheus refuses more than 11,000 points per series).
pub const MAX_POINTS_PER_QUERY: i64 = 10_000;
/// Queries in flight at once for one read: a long range is split into at least this many
/// pieces, so the server evaluates them and this side decodes them in parallel.
pub const CONCURRENT_QUERIES: usize = 4;
/// Fewest steps in one piece of a range split for concurrency (a range shorter than this is one
/// query).
pub const MIN_STEPS_PER_QUERY: i64 = 360;

/// The answer, borrowing its strings from the body where they hold no escapes: no allocation per
/// sample.
#[derive(Deserialize)]
struct Envelope<'a> {
    status: String,
    #[serde(default, borrow)]
    data: Option<Data<'a>>,
    #[serde(default)]
    error: Option<String>,
    #[serde(rename = "errorType", default)]
    error_type: Option<String>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(rename = "resultType")]
    result_type: String,
    #[serde(borrow)]
    result: Vec<Matrix<'a>>,
}

#[derive(Deserialize)]
struct Matrix<'a> {
    metric: BTreeMap<String, String>,
    /// Sample values are numbers as text ("1.5", "NaN"), never escaped: borrowed.
    #[serde(borrow)]
    values: Vec<(f64, &'a str)>,
}

/// Points of the series decoded from one response, and what was left out.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Decoded {
    /// Points per series, in the order Prometheus gave them.
    pub series: BTreeMap<SeriesKey, Vec<(DateTime<Utc>, f64)>>,
    /// Series left out because a mapped label was missing (label names listed).
    pub unmapped: usize,
    /// NaN samples dropped (lenient mode).
    pub nan_dropped: usize,
}

/// Decodes a `/api/v1/query_range` response body.
pub fn decode_query_range(body: &[u8], labels: &LabelMapping, lenient: bool) -> Result<Decoded, String> {
    let env: Envelope = serde_json::from_slice(body).map_err(|e| format!("malformed answer: {e}"))?;
    if env.status != "success" {
        return Err(format!(
            "query failed: {} ({})",
            env.error.unwrap_or_else(|| "no error message".into()),
            env.error_type.unwrap_or_else(|| "no error type".into())
        ));
    }
    let data = env.data.ok_or("malformed answer: status success without data")?;
    if data.result_type != "matrix" {
        return Err(format!("malformed answer: resultType {:?}, expected \"matrix\"", data.result_type));
    }
    let mut out = Decoded::default();
    for m in data.result {
        let get = |l: &str| m.metric.get(l).cloned();
        let (Some(t), Some(c), Some(n), Some(name)) =
            (get(&labels.tenant), get(&labels.cluster), get(&labels.node), get("__name__"))
        else {
            out.unmapped += 1;
            continue;
        };
        let key = (|| {
            Ok::<_, analytics_types::ContractError>(SeriesKey {
                tenant_id: TenantId::new(t)?,
                cluster_id: ClusterId::new(c)?,
                node_id: NodeId::new(n)?,
                metric_name: MetricName::new(name)?,
            })
        })()
        .map_err(|e| format!("a series has unusable labels: {e}"))?;
        let points = out.series.entry(key.clone()).or_default();
        points.reserve(m.values.len());
        for (ts, v) in m.values {
            if !ts.is_finite() {
                return Err(format!("malformed answer: timestamp {ts} of {key}"));
            }
            let secs = ts.floor();
            let t = DateTime::from_timestamp(secs as i64, ((ts - secs) * 1e9).round().min(999_999_999.0) as u32)
                .ok_or_else(|| format!("malformed answer: timestamp {ts} of {key} is out of range"))?;
            let v: f64 = v.parse().map_err(|_| format!("malformed answer: value {v:?} of {key} at {t}"))?;
            if !v.is_finite() {
                if lenient {
                    out.nan_dropped += 1;
                    continue;
                }
                return Err(format!(
                    "{key} has a {v} sample at {}; use --lenient to drop such samples",
                    t.to_rfc3339()
                ));
            }
            points.push((t, v));
        }
    }
    Ok(out)
}

/// Quotes a label value for PromQL.
fn quote(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
}

/// A Prometheus server as a metric source.
#[derive(Debug, Clone)]
pub struct PrometheusSource {
    cfg: PrometheusConfig,
    client: reqwest::Client,
}

impl PrometheusSource {
    /// A source for `cfg`.
    pub fn new(cfg: PrometheusConfig) -> Result<Self, IoError> {
        if !(cfg.url.starts_with("http://") || cfg.url.starts_with("https://")) {
            return Err(IoError::Config(format!("Prometheus URL {:?} must start with http:// or https://", cfg.url)));
        }
        if cfg.url.starts_with("https://") {
            return Err(IoError::Config(format!(
                "Prometheus URL {:?}: this build speaks plain HTTP only (no TLS library); put a proxy in front",
                cfg.url
            )));
        }
        if cfg.step <= TimeDelta::zero() {
            return Err(IoError::Config(format!("Prometheus step {}s must be positive", cfg.step.num_seconds())));
        }
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .build()
            .map_err(|e| IoError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { cfg, client })
    }

    /// The PromQL selector for a tenant and selector.
    pub fn query(&self, tenant: Option<&TenantId>, selector: &Selector) -> String {
        let l = &self.cfg.labels;
        let mut matchers = Vec::new();
        if let Some(t) = tenant {
            matchers.push(format!("{}={}", l.tenant, quote(t.as_str())));
        }
        if let Some(c) = &selector.cluster {
            matchers.push(format!("{}={}", l.cluster, quote(c)));
        }
        if let Some(n) = &selector.node {
            matchers.push(format!("{}={}", l.node, quote(n)));
        }
        match &selector.metric {
            Some(m) => matchers.push(format!("__name__={}", quote(m))),
            None => matchers.push("__name__=~\".+\"".into()),
        }
        format!("{{{}}}", matchers.join(","))
    }

    /// Evaluates a PromQL expression over `[start, end]` at the configured step: the range in
    /// pieces of at most [`MAX_POINTS_PER_QUERY`] steps (and a long range in at least
    /// [`CONCURRENT_QUERIES`] pieces, fetched and decoded that many at a time), joined per series
    /// in time order. Series missing a mapped label are counted in [`Decoded::unmapped`], not
    /// returned; points are as Prometheus gave them (ends inclusive; a timestamp at a piece's
    /// boundary is kept once).
    pub async fn query_range(
        &self,
        promql: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Decoded, IoError> {
        if start > end {
            return Err(IoError::Config(format!(
                "empty time range: from {} is after to {}",
                start.to_rfc3339(),
                end.to_rfc3339()
            )));
        }
        let query = promql.to_owned();
        // The range in pieces: at most MAX_POINTS_PER_QUERY steps each (Prometheus' limit), and
        // a long range in at least CONCURRENT_QUERIES pieces of MIN_STEPS_PER_QUERY steps or more,
        // fetched and decoded CONCURRENT_QUERIES at a time.
        let steps = ((end - start).num_seconds() / self.cfg.step.num_seconds().max(1)) + 1;
        let per_piece = ((steps + CONCURRENT_QUERIES as i64 - 1) / CONCURRENT_QUERIES as i64)
            .clamp(MIN_STEPS_PER_QUERY, MAX_POINTS_PER_QUERY);
        let chunk = self.cfg.step * (per_piece as i32 - 1);
        let mut pieces = Vec::new();
        let mut from = start;
        while from <= end {
            // query_range includes both ends; the next piece starts one step later.
            let to = (from + chunk).min(end);
            pieces.push((from, to));
            from = to + self.cfg.step;
        }
        let this = std::sync::Arc::new(self.clone());
        let query = std::sync::Arc::new(query);
        let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(CONCURRENT_QUERIES));
        let mut tasks = tokio::task::JoinSet::new();
        for (k, (from, to)) in pieces.iter().copied().enumerate() {
            let (this, query, permits) = (this.clone(), query.clone(), permits.clone());
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                (k, this.fetch(&query, from, to).await)
            });
        }
        let mut parts: Vec<Option<Result<Decoded, IoError>>> = (0..pieces.len()).map(|_| None).collect();
        while let Some(done) = tasks.join_next().await {
            let (k, part) = done.map_err(|e| self.remote(format!("a query task stopped: {e}")))?;
            parts[k] = Some(part);
        }
        let mut all = Decoded::default();
        // In range order, so the error reported is the earliest piece's.
        for part in parts.into_iter().flatten() {
            let part = part?;
            for (k, pts) in part.series {
                all.series.entry(k).or_default().extend(pts);
            }
            all.unmapped = all.unmapped.max(part.unmapped);
            all.nan_dropped += part.nan_dropped;
        }
        for pts in all.series.values_mut() {
            pts.dedup_by_key(|p| p.0);
        }
        Ok(all)
    }

    fn remote(&self, message: String) -> IoError {
        IoError::Remote { source_name: format!("prometheus {}", self.cfg.url), message }
    }

    /// One query_range request, with retries.
    async fn fetch(&self, query: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Decoded, IoError> {
        let url = format!("{}/api/v1/query_range", self.cfg.url);
        let params = [
            ("query", query.to_owned()),
            ("start", start.timestamp().to_string()),
            ("end", end.timestamp().to_string()),
            ("step", format!("{}s", self.cfg.step.num_seconds().max(1))),
        ];
        let mut delay = self.cfg.backoff;
        let mut last = String::new();
        for attempt in 0..=self.cfg.retries {
            if attempt > 0 {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            let mut req = self.client.get(&url).query(&params);
            if let Some(token) = &self.cfg.bearer_token {
                req = req.bearer_auth(token);
            }
            match req.send().await {
                Err(e) => {
                    last = if e.is_timeout() {
                        format!("no answer within {:?}", self.cfg.timeout)
                    } else {
                        format!("request failed: {e}")
                    };
                }
                Ok(resp) => {
                    let status = resp.status();
                    let body = resp.bytes().await.map_err(|e| self.remote(format!("cannot read the answer: {e}")))?;
                    if status.is_success() {
                        return decode_query_range(&body, &self.cfg.labels, self.cfg.lenient)
                            .map_err(|e| self.remote(e));
                    }
                    let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
                    last = format!("HTTP {status}: {text}");
                    if status.is_client_error() && status.as_u16() != 429 {
                        return Err(self.remote(last)); // a bad query does not get better
                    }
                }
            }
        }
        Err(self.remote(format!("{last} (after {} attempts)", self.cfg.retries + 1)))
    }
}

#[async_trait::async_trait]
impl MetricSource for PrometheusSource {
    async fn get_metric_series(
        &self,
        tenant: Option<&TenantId>,
        selector: &Selector,
        range: &TimeRange,
    ) -> Result<Vec<MetricSeries>, IoError> {
        let end = range.to.unwrap_or_else(Utc::now);
        let start = range.from.unwrap_or(end - self.cfg.default_range);
        if start >= end {
            return Err(IoError::Config(format!(
                "empty time range: from {} is not before to {}",
                start.to_rfc3339(),
                end.to_rfc3339()
            )));
        }
        let decoded = self.query_range(&self.query(tenant, selector), start, end).await?;
        if decoded.unmapped > 0 {
            return Err(self.remote(format!(
                "{} series lack one of the labels {:?}, {:?}, {:?} (set the label mapping)",
                decoded.unmapped, self.cfg.labels.tenant, self.cfg.labels.cluster, self.cfg.labels.node
            )));
        }
        let all = decoded.series;
        let mut out = Vec::with_capacity(all.len());
        for (key, mut pts) in all {
            // Range queries end where the next starts: keep each timestamp once, and the points
            // of the requested range only (query_range ends are inclusive).
            pts.retain(|(t, _)| range.contains(*t) || (range.to.is_none() && *t <= end));
            pts.sort_by_key(|p| p.0);
            pts.dedup_by_key(|p| p.0);
            if pts.is_empty() {
                continue;
            }
            let (ts, vs) = pts.into_iter().unzip();
            out.push(MetricSeries::from_key(key, ts, vs).map_err(|e| self.remote(e.to_string()))?);
        }
        Ok(out)
    }

    fn describe(&self) -> String {
        format!("prometheus {}", self.cfg.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_matrices_and_refuses_malformed_answers() {
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"__name__":"cpu","tenant":"acme","cluster":"prod","node":"n1"},"values":[[1709546400,"41.5"],[1709546460,"42"]]},
            {"metric":{"__name__":"cpu","cluster":"prod","node":"n2"},"values":[[1709546400,"1"]]}]}}"#;
        let d = decode_query_range(body, &LabelMapping::default(), false).unwrap();
        assert_eq!(d.series.len(), 1);
        assert_eq!(d.unmapped, 1);
        assert_eq!(d.series.values().next().unwrap()[1].1, 42.0);
        let nan = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"__name__":"cpu","tenant":"acme","cluster":"prod","node":"n1"},"values":[[1709546400,"NaN"]]}]}}"#;
        let err = decode_query_range(nan, &LabelMapping::default(), false).unwrap_err();
        assert!(err.contains("acme/prod/n1/cpu has a NaN sample at 2024-03-04T10:00:00+00:00"), "{err}");
        assert_eq!(decode_query_range(nan, &LabelMapping::default(), true).unwrap().nan_dropped, 1);
        assert!(decode_query_range(b"{not json", &LabelMapping::default(), false)
            .unwrap_err()
            .starts_with("malformed answer"));
        let failed = br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert_eq!(
            decode_query_range(failed, &LabelMapping::default(), false).unwrap_err(),
            "query failed: parse error (bad_data)"
        );
        let vector = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert!(decode_query_range(vector, &LabelMapping::default(), false)
            .unwrap_err()
            .contains("resultType \"vector\""));
    }

    #[test]
    fn queries_quote_label_values() {
        let s = PrometheusSource::new(PrometheusConfig::new("http://127.0.0.1:9")).unwrap();
        let t = TenantId::new("ac\"me").unwrap();
        let sel = Selector { node: Some("n1".into()), ..Default::default() };
        assert_eq!(s.query(Some(&t), &sel), r#"{tenant="ac\"me",node="n1",__name__=~".+"}"#);
        assert!(PrometheusSource::new(PrometheusConfig::new("127.0.0.1:9090"))
            .unwrap_err()
            .to_string()
            .contains("must start with http://"));
    }
}
