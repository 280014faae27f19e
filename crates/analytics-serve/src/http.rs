//! The HTTP side: health, `/metrics`, the JSON API and the dashboard. Every endpoint but the
//! health checks and the dashboard's page wants a bearer token; errors are JSON
//! (`{"status": 403, "error": "..."}`) with the status code in the response too.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::{Access, Refused};
use crate::fleet::{Event, Point, Standing};
use crate::{lock, Service};

/// An error as the API answers it.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    status: u16,
    error: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { status: self.status.as_u16(), error: &self.message };
        let mut resp = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

type Api<T> = Result<Json<T>, ApiError>;

fn access(svc: &Service, headers: &HeaderMap) -> Result<Access, ApiError> {
    let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    svc.auth.check(value).map_err(|r| match r {
        Refused::Missing => {
            ApiError::new(StatusCode::UNAUTHORIZED, "a bearer token is required (Authorization: Bearer ...)")
        }
        Refused::Unknown => ApiError::new(StatusCode::UNAUTHORIZED, "the bearer token is not valid"),
    })
}

/// Refuses a tenant's token asking for another tenant. The answer is the same whether that
/// tenant exists or not, so a token learns nothing of other tenants.
fn may_read(access: &Access, tenant: &str) -> Result<(), ApiError> {
    if access.sees(tenant) {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, format!("this token may not read tenant {tenant:?}")))
    }
}

pub(crate) fn router(svc: Arc<Service>) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/api/v1/status", get(status))
        .route("/api/v1/tenants", get(tenants))
        .route("/api/v1/tenants/{tenant}/clusters", get(clusters))
        .route("/api/v1/tenants/{tenant}/clusters/{cluster}/nodes", get(nodes))
        .route("/api/v1/tenants/{tenant}/clusters/{cluster}/nodes/{node}/series", get(series_list))
        .route("/api/v1/series", get(series))
        .route("/api/v1/incidents", get(incidents))
        .route("/api/v1/events", get(events))
        .fallback(not_found)
        .with_state(svc)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint (see docs/api.md)")
}

async fn healthy() -> &'static str {
    "analytics serve is Healthy.\n"
}

async fn ready(State(svc): State<Arc<Service>>) -> (StatusCode, &'static str) {
    if svc.is_ready() {
        (StatusCode::OK, "analytics serve is Ready.\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "analytics serve is warming up.\n")
    }
}

async fn metrics(State(svc): State<Arc<Service>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let who = access(&svc, &headers)?;
    let body = crate::metrics::render(&svc, &who);
    let mut resp = body.into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    Ok(resp)
}

/// A ranking answer.
#[derive(Serialize)]
struct Ranking {
    /// The service's clock: the instant its last poll reached.
    now: DateTime<Utc>,
    rows: Vec<Standing>,
}

async fn tenants(State(svc): State<Arc<Service>>, headers: HeaderMap) -> Api<Ranking> {
    let who = access(&svc, &headers)?;
    let rows = svc.standings(&[]).into_iter().filter(|r| who.sees(&r.name)).collect();
    Ok(Json(Ranking { now: svc.now(), rows }))
}

async fn clusters(State(svc): State<Arc<Service>>, headers: HeaderMap, Path(tenant): Path<String>) -> Api<Ranking> {
    may_read(&access(&svc, &headers)?, &tenant)?;
    found(svc.standings(&[&tenant]), || format!("no live series of tenant {tenant:?}"))
        .map(|rows| Json(Ranking { now: svc.now(), rows }))
}

async fn nodes(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Path((tenant, cluster)): Path<(String, String)>,
) -> Api<Ranking> {
    may_read(&access(&svc, &headers)?, &tenant)?;
    found(svc.standings(&[&tenant, &cluster]), || format!("no live series in {tenant}/{cluster}"))
        .map(|rows| Json(Ranking { now: svc.now(), rows }))
}

async fn series_list(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Path((tenant, cluster, node)): Path<(String, String, String)>,
) -> Api<Ranking> {
    may_read(&access(&svc, &headers)?, &tenant)?;
    found(svc.standings(&[&tenant, &cluster, &node]), || format!("no live series on {tenant}/{cluster}/{node}"))
        .map(|rows| Json(Ranking { now: svc.now(), rows }))
}

fn found(rows: Vec<Standing>, what: impl FnOnce() -> String) -> Result<Vec<Standing>, ApiError> {
    if rows.is_empty() {
        Err(ApiError::new(StatusCode::NOT_FOUND, what()))
    } else {
        Ok(rows)
    }
}

#[derive(Deserialize)]
struct SeriesQuery {
    tenant: Option<String>,
    cluster: Option<String>,
    node: Option<String>,
    metric: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// A series' points, scores and events.
#[derive(Serialize)]
struct SeriesView {
    tenant: String,
    cluster: String,
    node: String,
    metric: String,
    points: Vec<Point>,
    events: Vec<Event>,
}

fn instant(name: &str, v: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    v.map(|s| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("{name}: {s:?} is not an RFC 3339 time ({e})")))
    })
    .transpose()
}

async fn series(State(svc): State<Arc<Service>>, headers: HeaderMap, Query(q): Query<SeriesQuery>) -> Api<SeriesView> {
    let who = access(&svc, &headers)?;
    let need = |name: &str, v: Option<String>| {
        v.filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, format!("the query parameter {name} is required")))
    };
    let (tenant, cluster, node, metric) =
        (need("tenant", q.tenant)?, need("cluster", q.cluster)?, need("node", q.node)?, need("metric", q.metric)?);
    may_read(&who, &tenant)?;
    let (from, to) = (instant("from", q.from.as_deref())?, instant("to", q.to.as_deref())?);
    let inside = |t: DateTime<Utc>| from.is_none_or(|f| t >= f) && to.is_none_or(|e| t < e);
    let bad = |e: analytics_types::ContractError| ApiError::new(StatusCode::BAD_REQUEST, e.to_string());
    let key = analytics_types::SeriesKey {
        tenant_id: analytics_types::TenantId::new(tenant.as_str()).map_err(bad)?,
        cluster_id: analytics_types::ClusterId::new(cluster.as_str()).map_err(bad)?,
        node_id: analytics_types::NodeId::new(node.as_str()).map_err(bad)?,
        metric_name: analytics_types::MetricName::new(metric.as_str()).map_err(bad)?,
    };
    let fleet = lock(&svc.fleet);
    let tracked = fleet
        .series
        .get(&key)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no series {tenant}/{cluster}/{node}/{metric}")))?;
    let points = tracked.recent.iter().filter(|p| inside(p.t)).copied().collect();
    let events = tracked.events.iter().filter(|e| inside(e.start) || inside(e.end)).cloned().collect();
    Ok(Json(SeriesView { tenant, cluster, node, metric, points, events }))
}

#[derive(Serialize)]
struct Incidents {
    now: DateTime<Utc>,
    incidents: Vec<crate::LiveIncident>,
}

async fn incidents(State(svc): State<Arc<Service>>, headers: HeaderMap) -> Api<Incidents> {
    let who = access(&svc, &headers)?;
    let incidents = svc.open_incidents().into_iter().filter(|i| who.sees(&i.tenant)).collect();
    Ok(Json(Incidents { now: svc.now(), incidents }))
}

#[derive(Deserialize)]
struct EventsQuery {
    tenant: Option<String>,
    limit: Option<usize>,
}

#[derive(Serialize)]
struct EventRow {
    tenant: String,
    cluster: String,
    node: String,
    metric: String,
    #[serde(flatten)]
    event: Event,
}

async fn events(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Api<Vec<EventRow>> {
    let who = access(&svc, &headers)?;
    if let Some(t) = &q.tenant {
        may_read(&who, t)?;
    }
    let limit = q.limit.unwrap_or(100).min(10_000);
    let fleet = lock(&svc.fleet);
    let mut rows: Vec<EventRow> = fleet
        .series
        .iter()
        .filter(|(k, _)| {
            who.sees(k.tenant_id.as_str()) && q.tenant.as_deref().is_none_or(|t| t == k.tenant_id.as_str())
        })
        .flat_map(|(k, s)| {
            s.events.iter().map(move |e| EventRow {
                tenant: k.tenant_id.to_string(),
                cluster: k.cluster_id.to_string(),
                node: k.node_id.to_string(),
                metric: k.metric_name.to_string(),
                event: e.clone(),
            })
        })
        .collect();
    rows.sort_by(|a, b| b.event.end.cmp(&a.event.end).then(b.event.peak.total_cmp(&a.event.peak)));
    rows.truncate(limit);
    Ok(Json(rows))
}

/// The service's state, for the admin.
#[derive(Serialize)]
struct Status {
    name: String,
    ready: bool,
    now: DateTime<Utc>,
    series_tracked: usize,
    points_total: u64,
    dropped: crate::Dropped,
    sources: Vec<SourceStatus>,
    last_checkpoint: Option<DateTime<Utc>>,
    restored: usize,
}

#[derive(Serialize)]
struct SourceStatus {
    name: String,
    url: String,
    polled_until: Option<DateTime<Utc>>,
    errors: u64,
    last_error: Option<String>,
}

async fn status(State(svc): State<Arc<Service>>, headers: HeaderMap) -> Api<Status> {
    if access(&svc, &headers)? != Access::Admin {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "the service's status is for the admin token only"));
    }
    let h = lock(&svc.health).clone();
    let fleet = lock(&svc.fleet);
    let sources = svc
        .sources
        .iter()
        .map(|s| SourceStatus {
            name: s.cfg.name.clone(),
            url: s.cfg.url.clone(),
            polled_until: *lock(&s.cursor),
            errors: s.errors.load(std::sync::atomic::Ordering::Relaxed),
            last_error: lock(&s.last_error).clone(),
        })
        .collect();
    Ok(Json(Status {
        name: svc.cfg.name.clone(),
        ready: svc.is_ready(),
        now: svc.now(),
        series_tracked: fleet.series.len(),
        points_total: fleet.points_total,
        dropped: fleet.dropped,
        sources,
        last_checkpoint: h.last_checkpoint,
        restored: h.restored,
    }))
}

/// The dashboard: one self-contained page (no file or font fetched from elsewhere) that reads
/// the API with the token the user types, and refreshes itself.
async fn dashboard() -> Response {
    let mut resp = crate::dashboard::PAGE.into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    resp
}
