#![doc = include_str!("../README.md")]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use analytics_engine::{AnomalyDetectionEngine, EngineError};
use analytics_io::{Alert, AlertmanagerClient, IoError, LabelMapping, PrometheusConfig, PrometheusSource, ResultStore};
use analytics_types::SeriesKey;
use chrono::{DateTime, TimeDelta, Utc};
use md5::{Digest, Md5};

mod auth;
mod config;
mod dashboard;
mod fleet;
mod http;
mod metrics;
mod snapshot;

pub use auth::hash_token;
pub use config::{
    AlertmanagerConfig, AuthConfig, ServeConfig, ShardConfig, SourceConfig, TenantToken, EXAMPLE as EXAMPLE_CONFIG,
};
pub use fleet::{Dropped, Event, LiveIncident, Point, Scope, Standing};

/// Errors of the service. A source or Alertmanager that fails while the service runs is not
/// one of these: it is counted, shown on `/metrics` and retried on the next poll.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The configuration file is wrong (line 0: the rule broken is a default's).
    #[error("{}", at(file, *line, message))]
    Config {
        /// The file.
        file: String,
        /// 1-based line of the key at fault (0 when the key is not in the file).
        line: usize,
        /// What is wrong, naming the key.
        message: String,
    },
    /// The store, a source or Alertmanager could not be set up.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The engine could not be built.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A series' checkpoint cannot be resumed (the series starts afresh).
    #[error("the checkpoint of {series} cannot be resumed: {message}")]
    Checkpoint {
        /// The series.
        series: String,
        /// Why.
        message: String,
    },
    /// The HTTP server could not start.
    #[error("cannot listen on {addr}: {message}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        message: String,
    },
    /// A bug.
    #[error("internal error (a bug, please report it): {0}")]
    Internal(String),
}

fn at(file: &str, line: usize, message: &str) -> String {
    if line == 0 {
        format!("{file}: {message}")
    } else {
        format!("{file}:{line}: {message}")
    }
}

/// The replica a series belongs to among `count`: Prometheus' `hashmod` rule over the values of
/// the series' tenant, cluster, node and metric labels joined by `;` (the MD5 of that text, its
/// last eight bytes read as a big-endian integer, modulo `count`). A Prometheus relabelling with
/// `source_labels: [tenant, cluster, node, __name__]`, `modulus: count`, `action: hashmod`
/// assigns every series to the same replica.
pub fn shard_of(key: &SeriesKey, count: u64) -> u64 {
    let text = format!("{};{};{};{}", key.tenant_id, key.cluster_id, key.node_id, key.metric_name);
    let digest = Md5::digest(text.as_bytes());
    let mut last = [0u8; 8];
    last.copy_from_slice(&digest[8..16]);
    u64::from_be_bytes(last) % count.max(1)
}

/// A series' key and the points a poll brought.
type Polled = (SeriesKey, Vec<(DateTime<Utc>, f64)>);

/// What feeding a poll's points did: series that took points, points taken, events closed.
type Fed = (usize, u64, Vec<Event>);

/// A source and what happened to it.
#[derive(Debug)]
struct Source {
    cfg: SourceConfig,
    prom: PrometheusSource,
    /// The last instant polled successfully (the next poll starts one step after it).
    cursor: Mutex<Option<DateTime<Utc>>>,
    errors: AtomicU64,
    last_error: Mutex<Option<String>>,
    unmapped: AtomicU64,
    nan_dropped: AtomicU64,
}

/// The service's health, for `/metrics` and `/-/ready`.
#[derive(Debug, Default, Clone)]
struct Health {
    polls: u64,
    /// The instant the last poll reached (the clock of rankings and staleness).
    last_until: Option<DateTime<Utc>>,
    last_poll_points: u64,
    last_poll_seconds: f64,
    newest_point: Option<DateTime<Utc>>,
    last_checkpoint: Option<DateTime<Utc>>,
    checkpoint_series: usize,
    checkpoint_errors: u64,
    alert_errors: u64,
    alerts_sent: u64,
    forgotten: u64,
    restored: usize,
}

/// What a poll did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PollReport {
    /// The instant polled up to (the poll time aligned down to the step).
    pub until: Option<DateTime<Utc>>,
    /// Series that took new points.
    pub series: usize,
    /// New points taken.
    pub points: u64,
    /// Events that closed.
    pub events: Vec<Event>,
    /// Sources that failed, with why (the service goes on; they are asked again next poll).
    pub errors: Vec<String>,
    /// Incidents that opened.
    pub opened: Vec<LiveIncident>,
    /// Incidents that resolved.
    pub resolved: Vec<LiveIncident>,
}

/// What starting did with the store's checkpoints.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StartReport {
    /// Series resumed from their checkpoint.
    pub restored: usize,
    /// Checkpoints that could not be resumed (those series start afresh), with why.
    pub refused: Vec<String>,
    /// Where polling resumes (the oldest resumed series' newest point), if anything resumed.
    pub resume_from: Option<DateTime<Utc>>,
}

/// The service: sources, engine, tracked series, store and HTTP API.
#[derive(Debug)]
pub struct Service {
    cfg: ServeConfig,
    engine: Box<dyn AnomalyDetectionEngine>,
    sources: Vec<Source>,
    fleet: Mutex<fleet::Fleet>,
    store: Mutex<ResultStore>,
    auth: auth::Auth,
    health: Mutex<Health>,
    ready: AtomicBool,
    /// What requests read between polls.
    snapshot: Mutex<Arc<snapshot::Snapshot>>,
    /// Incidents open now, by id (to tell those that open and resolve at each poll).
    incidents: Mutex<BTreeMap<String, LiveIncident>>,
    /// Incidents resolved and not yet delivered to Alertmanager.
    unsent_resolved: Mutex<Vec<(LiveIncident, DateTime<Utc>)>>,
    alertmanager: Option<AlertmanagerClient>,
    /// The clock's reading when the service started.
    started: Instant,
}

impl Service {
    /// Builds the service from a checked configuration: opens the store, builds the engine and
    /// the sources, and resumes every series the store holds a checkpoint of.
    pub fn start(cfg: ServeConfig) -> Result<(Arc<Self>, StartReport), ServeError> {
        let engine = cfg.build_engine()?;
        let mut sources = Vec::new();
        for s in &cfg.sources {
            let mut pc = PrometheusConfig::new(&s.url);
            pc.labels = LabelMapping {
                tenant: s.tenant_label.clone(),
                cluster: s.cluster_label.clone(),
                node: s.node_label.clone(),
            };
            pc.step = TimeDelta::seconds(cfg.step_seconds);
            pc.timeout = Duration::from_secs_f64(s.timeout_seconds);
            pc.retries = 1;
            pc.lenient = true;
            if let Some(path) = &s.bearer_token_file {
                let token = std::fs::read_to_string(path).map_err(|e| ServeError::Config {
                    file: path.display().to_string(),
                    line: 0,
                    message: format!("cannot read the bearer token file of source {:?}: {e}", s.name),
                })?;
                pc.bearer_token = Some(token.trim().to_owned());
            }
            sources.push(Source {
                cfg: s.clone(),
                prom: PrometheusSource::new(pc)?,
                cursor: Mutex::new(None),
                errors: AtomicU64::new(0),
                last_error: Mutex::new(None),
                unmapped: AtomicU64::new(0),
                nan_dropped: AtomicU64::new(0),
            });
        }
        let alertmanager = match &cfg.alertmanager {
            Some(a) => Some(AlertmanagerClient::new(&a.url, Duration::from_secs_f64(a.timeout_seconds))?),
            None => None,
        };
        let store = ResultStore::open(&cfg.store)?;
        let (checkpoints, _) = store.checkpoints(&cfg.name)?;
        let mut fleet = fleet::Fleet::new(cfg.keep_points, cfg.anomalous_score, cfg.resolve_seconds);
        let mut report = StartReport::default();
        for c in &checkpoints {
            match fleet.restore(engine.as_ref(), c) {
                Ok(()) => {
                    report.restored += 1;
                    report.resume_from = Some(report.resume_from.map_or(c.last_timestamp, |t| t.min(c.last_timestamp)));
                }
                Err(e) => report.refused.push(e.to_string()),
            }
        }
        for s in &sources {
            *lock(&s.cursor) = report.resume_from;
        }
        let health = Health { restored: report.restored, ..Health::default() };
        let service = Self {
            auth: auth::Auth::new(&cfg.auth),
            cfg,
            engine,
            sources,
            fleet: Mutex::new(fleet),
            store: Mutex::new(store),
            health: Mutex::new(health),
            ready: AtomicBool::new(false),
            incidents: Mutex::new(BTreeMap::new()),
            snapshot: Mutex::new(Arc::default()),
            unsent_resolved: Mutex::new(Vec::new()),
            alertmanager,
            started: Instant::now(),
        };
        Ok((Arc::new(service), report))
    }

    /// The configuration the service runs with.
    pub fn config(&self) -> &ServeConfig {
        &self.cfg
    }

    /// Whether the first poll has been made (warm-up done): what `/-/ready` answers.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The service's "now": the instant its last poll reached (before any poll, the clock's).
    fn now(&self) -> DateTime<Utc> {
        lock(&self.health).last_until.unwrap_or_else(Utc::now)
    }

    /// Rankings one level below `prefix` (tenant, cluster, node), as the API serves them (as of
    /// the last poll).
    pub fn standings(&self, prefix: &[&str]) -> Vec<Standing> {
        self.snapshot().standings(prefix)
    }

    pub(crate) fn snapshot(&self) -> Arc<snapshot::Snapshot> {
        Arc::clone(&lock(&self.snapshot))
    }

    fn step(&self) -> TimeDelta {
        TimeDelta::seconds(self.cfg.step_seconds)
    }

    fn mine(&self, key: &SeriesKey) -> bool {
        self.cfg.shard.is_none_or(|s| shard_of(key, s.count) == s.index)
    }

    /// Polls every source up to `now` (aligned down to the step) and feeds the new points:
    /// a source's first poll reads `warmup_seconds` of history (or resumes from the checkpoints),
    /// later ones the steps since the last. A failing source is reported and asked again,
    /// from where it stopped, on the next poll.
    pub async fn poll_once(self: &Arc<Self>, now: DateTime<Utc>) -> PollReport {
        let step = self.cfg.step_seconds;
        let until = DateTime::from_timestamp(now.timestamp().div_euclid(step) * step, 0).unwrap_or(now);
        let mut report = PollReport { until: Some(until), ..PollReport::default() };
        let clock = Instant::now();
        // The sources are polled concurrently; their outcomes are reported in source order.
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..self.sources.len() {
            let this = Arc::clone(self);
            tasks.spawn(async move { (i, this.poll_source(i, until).await) });
        }
        let mut outcomes: Vec<Option<Result<Fed, String>>> = (0..self.sources.len()).map(|_| None).collect();
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok((i, outcome)) => outcomes[i] = outcome,
                Err(e) => report.errors.push(format!("a source's poll stopped: {e}")),
            }
        }
        for outcome in outcomes.into_iter().flatten() {
            match outcome {
                Ok((n, points, events)) => {
                    report.series += n;
                    report.points += points;
                    report.events.extend(events);
                }
                Err(e) => report.errors.push(e),
            }
        }
        let forgotten = lock(&self.fleet).forget(until - TimeDelta::seconds(self.cfg.forget_seconds));
        self.track_incidents(until, &mut report);
        let newest = lock(&self.fleet).series.values().filter_map(|s| s.last().map(|p| p.t)).max();
        {
            let mut h = lock(&self.health);
            h.polls += 1;
            // The service's clock never steps back.
            h.last_until = Some(h.last_until.map_or(until, |t| t.max(until)));
            h.last_poll_points = report.points;
            h.last_poll_seconds = clock.elapsed().as_secs_f64();
            h.forgotten += forgotten as u64;
            h.newest_point = newest.or(h.newest_point);
        }
        let fresh = snapshot::Snapshot::of(&lock(&self.fleet), self.now(), self.cfg.stale_seconds);
        *lock(&self.snapshot) = Arc::new(fresh);
        self.ready.store(true, Ordering::Release);
        self.send_alerts().await;
        report
    }

    /// Polls source `i` from its cursor to `until` and feeds what it brings: `None` when there
    /// is nothing new to ask for, the error's text when the source failed (its cursor stays).
    async fn poll_source(self: Arc<Self>, i: usize, until: DateTime<Utc>) -> Option<Result<Fed, String>> {
        let source = &self.sources[i];
        let cursor = *lock(&source.cursor);
        let from = cursor.map_or(until - TimeDelta::seconds(self.cfg.warmup_seconds), |c| c + self.step());
        if from > until {
            return None;
        }
        let decoded = match source.prom.query_range(&source.cfg.query, from, until).await {
            Ok(d) => d,
            Err(e) => {
                source.errors.fetch_add(1, Ordering::Relaxed);
                *lock(&source.last_error) = Some(e.to_string());
                return Some(Err(format!("source {:?}: {e}", source.cfg.name)));
            }
        };
        source.unmapped.fetch_add(decoded.unmapped as u64, Ordering::Relaxed);
        source.nan_dropped.fetch_add(decoded.nan_dropped as u64, Ordering::Relaxed);
        let series: Vec<Polled> = decoded.series.into_iter().filter(|(k, _)| self.mine(k)).collect();
        let this = Arc::clone(&self);
        let fed = tokio::task::spawn_blocking(move || this.feed(&series)).await;
        *lock(&source.cursor) = Some(until);
        Some(fed.map_err(|e| format!("source {:?}: feeding stopped: {e}", source.cfg.name)))
    }

    /// Feeds polled points, taking the fleet's lock once per series so that the API is served
    /// between them even during a long warm-up.
    fn feed(&self, series: &[Polled]) -> Fed {
        let (mut events, mut touched, mut points) = (Vec::new(), 0, 0);
        for (key, pts) in series {
            let mut fleet = lock(&self.fleet);
            let n = fleet.points_total;
            events.extend(fleet.feed(self.engine.as_ref(), key, pts));
            touched += usize::from(fleet.points_total > n);
            points += fleet.points_total - n;
        }
        (touched, points, events)
    }

    /// Opens and resolves incidents from the series' current scores.
    fn track_incidents(&self, now: DateTime<Utc>, report: &mut PollReport) {
        let current = fleet::live_incidents(&lock(&self.fleet), now, self.cfg.stale_seconds);
        let mut open = lock(&self.incidents);
        let mut next = BTreeMap::new();
        for inc in current {
            let id = inc.id();
            if open.remove(&id).is_none() {
                report.opened.push(inc.clone());
            }
            next.insert(id, inc);
        }
        for (_, gone) in std::mem::take(&mut *open) {
            report.resolved.push(gone.clone());
            lock(&self.unsent_resolved).push((gone, now));
        }
        *open = next;
    }

    /// The incidents open now, broadest and highest first.
    pub fn open_incidents(&self) -> Vec<LiveIncident> {
        let mut v: Vec<LiveIncident> = lock(&self.incidents).values().cloned().collect();
        fleet::rank(&mut v);
        v
    }

    fn alert(&self, inc: &LiveIncident, ends_at: Option<DateTime<Utc>>) -> Alert {
        let mut labels = BTreeMap::from([
            ("alertname".to_owned(), "AnomalyIncident".to_owned()),
            ("service".to_owned(), self.cfg.name.clone()),
            ("scope".to_owned(), format!("{:?}", inc.scope).to_lowercase()),
            ("tenant".to_owned(), inc.tenant.clone()),
        ]);
        if !inc.cluster.is_empty() {
            labels.insert("cluster".into(), inc.cluster.clone());
        }
        if !inc.node.is_empty() {
            labels.insert("node".into(), inc.node.clone());
        }
        if !inc.metric.is_empty() {
            labels.insert("metric".into(), inc.metric.clone());
        }
        let members = inc.members.iter().map(|(m, s)| format!("{m} {s:.2}")).collect::<Vec<_>>().join(", ");
        let annotations = BTreeMap::from([
            ("summary".to_owned(), inc.summary.clone()),
            ("description".to_owned(), format!("members: {members}")),
            ("score".to_owned(), format!("{:.3}", inc.score)),
        ]);
        Alert { labels, annotations, starts_at: inc.since, ends_at, generator_url: String::new() }
    }

    /// Posts the open incidents (again: Alertmanager expects a firing alert to be re-sent) and
    /// the resolved ones not yet delivered; a failure is counted and retried next poll.
    async fn send_alerts(&self) {
        let Some(am) = &self.alertmanager else { return };
        let resolved: Vec<(LiveIncident, DateTime<Utc>)> = lock(&self.unsent_resolved).clone();
        let mut alerts: Vec<Alert> = self.open_incidents().iter().map(|i| self.alert(i, None)).collect();
        alerts.extend(resolved.iter().map(|(i, at)| self.alert(i, Some(*at))));
        match am.post(&alerts).await {
            Ok(()) => {
                lock(&self.unsent_resolved).drain(..resolved.len());
                lock(&self.health).alerts_sent += alerts.len() as u64;
            }
            Err(_) => lock(&self.health).alert_errors += 1,
        }
    }

    /// Saves every series' state to the store in one transaction; returns the series saved.
    pub fn checkpoint(&self, now: DateTime<Utc>) -> Result<usize, ServeError> {
        let saved = lock(&self.fleet).save()?;
        let result = lock(&self.store).save_checkpoints(&self.cfg.name, now, &saved);
        let mut h = lock(&self.health);
        match result {
            Ok(n) => {
                h.last_checkpoint = Some(now);
                h.checkpoint_series = n;
                Ok(n)
            }
            Err(e) => {
                h.checkpoint_errors += 1;
                Err(e.into())
            }
        }
    }

    /// A series' newest points with their scores, and its closed events (`None` for a series
    /// not tracked).
    pub fn series(&self, key: &SeriesKey) -> Option<(Vec<Point>, Vec<Event>)> {
        lock(&self.fleet)
            .series
            .get(key)
            .map(|s| (s.recent.iter().copied().collect(), s.events.iter().cloned().collect()))
    }

    /// Every tracked series' key.
    pub fn keys(&self) -> Vec<SeriesKey> {
        lock(&self.fleet).series.keys().cloned().collect()
    }

    /// Points dropped so far, by reason.
    pub fn dropped(&self) -> Dropped {
        lock(&self.fleet).dropped
    }

    /// Runs the service until `shutdown` completes: the HTTP server, a poll every step (the
    /// first at once), a checkpoint every `checkpoint_seconds` and one more at the end. `log`
    /// receives one line per notable thing (a failing source, an incident, a checkpoint).
    pub async fn run(
        self: Arc<Self>,
        shutdown: impl std::future::Future<Output = ()>,
        log: impl Fn(&str) + Send + Sync + 'static,
    ) -> Result<(), ServeError> {
        let addr = self.cfg.listen_addr();
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| ServeError::Listen { addr: addr.to_string(), message: e.to_string() })?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let app = http::router(Arc::clone(&self));
        let server = tokio::spawn(async move {
            let mut stopped = stopped;
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    stopped.changed().await.ok();
                })
                .await
        });
        log(&format!("listening on http://{addr}"));
        let mut ticks = tokio::time::interval(Duration::from_secs(self.cfg.step_seconds as u64));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_checkpoint = Instant::now();
        let mut first = true;
        if lock(&self.fleet).series.is_empty() {
            log(&format!(
                "warming up: reading up to {} s of history from {} source(s)",
                self.cfg.warmup_seconds,
                self.sources.len()
            ));
        }
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = ticks.tick() => {
                    let started = Instant::now();
                    let r = self.poll_once(Utc::now()).await;
                    if std::mem::take(&mut first) {
                        log(&format!(
                            "first poll: {} points of {} series in {:.1} s; ready",
                            r.points,
                            r.series,
                            started.elapsed().as_secs_f64()
                        ));
                    }
                    for e in &r.errors {
                        log(e);
                    }
                    for i in &r.opened {
                        log(&format!("incident opened: {}", i.summary));
                    }
                    for i in &r.resolved {
                        log(&format!("incident resolved: {}", i.summary));
                    }
                    if last_checkpoint.elapsed() >= Duration::from_secs(self.cfg.checkpoint_seconds as u64) {
                        last_checkpoint = Instant::now();
                        let this = Arc::clone(&self);
                        match tokio::task::spawn_blocking(move || this.checkpoint(Utc::now())).await {
                            Ok(Ok(n)) => log(&format!("checkpoint: {n} series")),
                            Ok(Err(e)) => log(&format!("checkpoint failed: {e}")),
                            Err(e) => log(&format!("checkpoint stopped: {e}")),
                        }
                    }
                }
            }
        }
        log("stopping: checkpointing");
        let n = self.checkpoint(Utc::now())?;
        log(&format!("checkpoint: {n} series; stopped"));
        stop.send(true).ok();
        server
            .await
            .map_err(|e| ServeError::Internal(format!("the HTTP server stopped: {e}")))?
            .map_err(|e| ServeError::Listen { addr: addr.to_string(), message: e.to_string() })?;
        Ok(())
    }
}

/// A mutex's guard, even after a panic elsewhere poisoned it (the data is plain counters and
/// maps, never left half-written by the code that holds it).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
