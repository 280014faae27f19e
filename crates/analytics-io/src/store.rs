//! The result store: an embedded SQLite database (the default; one file, no server).
//!
//! - **Schema with migrations.** A `schema_version` table holds the version; `open` applies every
//!   newer migration in one transaction, so an old file is upgraded in place and a newer file is
//!   refused.
//! - **Idempotent writes.** A run is keyed by engine, configuration, source and time range;
//!   results by series, engine and window start; aggregates by level, identifiers, strategy,
//!   engine and range. Writing the same run again replaces rows, never adds them.
//! - **Samples** (the values of the series a report plots) are one row per series, timestamps
//!   and values packed (schema version 3); runs written before keep one row per point, still
//!   read.
//! - **Plain windows packed** (schema version 7): a result with nothing to say beyond its score
//!   (label `normal`, no explanation, no evidence; most windows of most series) is kept in one
//!   row per series, engine and run, its windows' bounds, scores and decades packed; every other
//!   result is one row of `results`. [`ResultStore::results`] reads both, in one order. A run
//!   replaces, per series and engine, every stored window that starts within the span of its own
//!   windows for that series, whichever run wrote it.
//! - **Atomic runs.** A run (its record, results, aggregates and samples) is written in one
//!   transaction: a writer killed half-way leaves the previous complete state, untouched.
//! - **Readers during writes.** The database is in WAL mode: readers see the last committed state
//!   while a writer works.

use std::path::{Path, PathBuf};

use analytics_types::{
    AggregatedAnomalyScore, AggregationStrategy, AnomalyLabel, AnomalyResult, Evidence, Incident, MetricSeries,
    SeriesKey,
};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::IoError;

/// The migrations, in order; migration `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: runs, results, aggregates.
    "CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        engine TEXT NOT NULL,
        config TEXT NOT NULL,
        source TEXT NOT NULL,
        range_start TEXT NOT NULL,
        range_end TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT NOT NULL,
        series INTEGER NOT NULL,
        points INTEGER NOT NULL,
        UNIQUE (engine, config, source, range_start, range_end)
    );
    CREATE TABLE results (
        tenant TEXT NOT NULL, cluster TEXT NOT NULL, node TEXT NOT NULL, metric TEXT NOT NULL,
        engine TEXT NOT NULL, window_start TEXT NOT NULL, window_end TEXT NOT NULL,
        score REAL NOT NULL, label TEXT NOT NULL, explanation TEXT, evidence TEXT,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        PRIMARY KEY (tenant, cluster, node, metric, engine, window_start)
    );
    CREATE TABLE aggregates (
        level TEXT NOT NULL, tenant TEXT NOT NULL, cluster TEXT NOT NULL, node TEXT NOT NULL,
        strategy TEXT NOT NULL, engine TEXT NOT NULL, range_start TEXT NOT NULL, range_end TEXT NOT NULL,
        score REAL NOT NULL, metrics INTEGER NOT NULL, anomalies INTEGER NOT NULL,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        PRIMARY KEY (level, tenant, cluster, node, strategy, engine, range_start, range_end)
    );
    CREATE INDEX results_by_run ON results (run_id);
    CREATE INDEX aggregates_by_run ON aggregates (run_id);",
    // 2: the values of anomalous series, so that a report needs nothing but the store.
    "CREATE TABLE samples (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        tenant TEXT NOT NULL, cluster TEXT NOT NULL, node TEXT NOT NULL, metric TEXT NOT NULL,
        ts TEXT NOT NULL, value REAL NOT NULL,
        PRIMARY KEY (run_id, tenant, cluster, node, metric, ts)
    );",
    // 3: a series' values as one row (timestamps and values packed), not one row per point:
    // writing a run's samples is one insert per series. Runs written before keep their rows in
    // `samples`, which is still read.
    "CREATE TABLE series_samples (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        tenant TEXT NOT NULL, cluster TEXT NOT NULL, node TEXT NOT NULL, metric TEXT NOT NULL,
        points INTEGER NOT NULL,
        timestamps BLOB NOT NULL,
        vals BLOB NOT NULL,
        PRIMARY KEY (run_id, tenant, cluster, node, metric)
    ) WITHOUT ROWID;",
    // 4: a run's incidents, in the order the run ranked them, each as its JSON contract (read
    // back through its validation); the columns beside it are for queries.
    "CREATE TABLE incidents (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        position INTEGER NOT NULL,
        scope TEXT NOT NULL, tenant TEXT NOT NULL, cluster TEXT NOT NULL, node TEXT NOT NULL,
        start TEXT NOT NULL, end TEXT NOT NULL, score REAL NOT NULL, nodes INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (run_id, position)
    ) WITHOUT ROWID;",
    // 5: the evidence behind results and aggregates, in decades of tail probability (NULL for
    // rows written before).
    "ALTER TABLE results ADD COLUMN decades REAL;
     ALTER TABLE aggregates ADD COLUMN decades REAL;",
    // 6: a long-running service's saved stream states, one row per series it tracks, replaced
    // as a whole at each checkpoint.
    "CREATE TABLE checkpoints (
        service TEXT NOT NULL,
        tenant TEXT NOT NULL, cluster TEXT NOT NULL, node TEXT NOT NULL, metric TEXT NOT NULL,
        last_timestamp TEXT NOT NULL,
        points INTEGER NOT NULL,
        state BLOB NOT NULL,
        saved_at TEXT NOT NULL,
        PRIMARY KEY (service, tenant, cluster, node, metric)
    ) WITHOUT ROWID;",
    // 7: the plain windows of a series (normal, no explanation, no evidence) as one row per
    // series, engine and run: writing a run is one insert per series, not one per window.
    // Results written before stay in `results`, which is still read.
    "CREATE TABLE window_scores (
        tenant TEXT NOT NULL, cluster TEXT NOT NULL, node TEXT NOT NULL, metric TEXT NOT NULL,
        engine TEXT NOT NULL,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        first_start TEXT NOT NULL, last_start TEXT NOT NULL,
        windows INTEGER NOT NULL,
        bounds BLOB NOT NULL,
        scores BLOB NOT NULL,
        decades BLOB NOT NULL,
        UNIQUE (tenant, cluster, node, metric, engine, run_id)
    );
    CREATE INDEX window_scores_by_run ON window_scores (run_id);",
];

/// Bytes per packed timestamp: seconds since the epoch (i64) and nanoseconds (u32), little-endian.
const TS_BYTES: usize = 12;

/// A series' timestamps and values packed for `series_samples`.
fn pack(s: &MetricSeries) -> (Vec<u8>, Vec<u8>) {
    let mut ts = Vec::with_capacity(s.len() * TS_BYTES);
    for &t in s.timestamps() {
        pack_time(&mut ts, t);
    }
    let vs = s.values().iter().flat_map(|v| v.to_le_bytes()).collect();
    (ts, vs)
}

fn pack_time(out: &mut Vec<u8>, t: DateTime<Utc>) {
    out.extend_from_slice(&t.timestamp().to_le_bytes());
    out.extend_from_slice(&t.timestamp_subsec_nanos().to_le_bytes());
}

fn unpack_times(ts: &[u8]) -> Option<Vec<DateTime<Utc>>> {
    ts.chunks_exact(TS_BYTES)
        .map(|c| {
            let secs = i64::from_le_bytes(c[..8].try_into().ok()?);
            let nanos = u32::from_le_bytes(c[8..].try_into().ok()?);
            DateTime::from_timestamp(secs, nanos)
        })
        .collect()
}

fn unpack_f64s(vs: &[u8]) -> Option<Vec<f64>> {
    vs.chunks_exact(8).map(|c| c.try_into().ok().map(f64::from_le_bytes)).collect()
}

/// The timestamps and values packed by [`pack`]; `None` when the blobs do not hold `points`
/// points or a timestamp is out of range.
fn unpack(points: usize, ts: &[u8], vs: &[u8]) -> Option<(Vec<DateTime<Utc>>, Vec<f64>)> {
    if ts.len() != points * TS_BYTES || vs.len() != points * 8 {
        return None;
    }
    Some((unpack_times(ts)?, unpack_f64s(vs)?))
}

/// Whether a result is plain: nothing to keep beyond its window, score and decades.
fn is_plain(r: &AnomalyResult) -> bool {
    r.anomaly_label() == AnomalyLabel::Normal && r.explanation().is_none() && r.evidence().is_none()
}

/// Plain windows of one series and engine, packed for `window_scores`: each window's start and
/// end ([`TS_BYTES`] each), its score and its decades (NaN where absent), little-endian.
#[derive(Debug, Default)]
struct PackedWindows {
    bounds: Vec<u8>,
    scores: Vec<u8>,
    decades: Vec<u8>,
    windows: usize,
}

impl PackedWindows {
    fn push(&mut self, start: DateTime<Utc>, end: DateTime<Utc>, score: f64, decades: Option<f64>) {
        pack_time(&mut self.bounds, start);
        pack_time(&mut self.bounds, end);
        self.scores.extend_from_slice(&score.to_le_bytes());
        self.decades.extend_from_slice(&decades.unwrap_or(f64::NAN).to_le_bytes());
        self.windows += 1;
    }

    /// The windows of the blobs as (start, end, score, decades); `None` when the blobs do not
    /// hold `windows` windows.
    #[allow(clippy::type_complexity)]
    fn unpack(
        windows: usize,
        bounds: &[u8],
        scores: &[u8],
        decades: &[u8],
    ) -> Option<Vec<(DateTime<Utc>, DateTime<Utc>, f64, Option<f64>)>> {
        if bounds.len() != windows * 2 * TS_BYTES || scores.len() != windows * 8 || decades.len() != windows * 8 {
            return None;
        }
        let (times, scores, decades) = (unpack_times(bounds)?, unpack_f64s(scores)?, unpack_f64s(decades)?);
        Some(
            (0..windows)
                .map(|i| (times[2 * i], times[2 * i + 1], scores[i], Some(decades[i]).filter(|d| !d.is_nan())))
                .collect(),
        )
    }
}

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// What a run was: which engine over which data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRecord {
    /// The run's id in the store (0 before it is written).
    pub id: i64,
    /// Engine name.
    pub engine: String,
    /// Engine configuration, as JSON.
    pub config: String,
    /// What the data came from (`file fleet.csv`, `simulator ...`, `prometheus http://...`).
    pub source: String,
    /// First instant of the data.
    pub range_start: DateTime<Utc>,
    /// Last instant of the data.
    pub range_end: DateTime<Utc>,
    /// When detection started.
    pub started_at: DateTime<Utc>,
    /// When the run was written.
    pub finished_at: DateTime<Utc>,
    /// Series analysed.
    pub series: usize,
    /// Points analysed.
    pub points: usize,
}

/// One series' saved stream state, as a service checkpoints it.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The series.
    pub key: SeriesKey,
    /// The newest point the state has taken.
    pub last_timestamp: DateTime<Utc>,
    /// Points the state has taken since it started.
    pub points: u64,
    /// The state, as the service encoded it (opaque to the store).
    pub state: Vec<u8>,
}

/// Row counts of each table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Runs.
    pub runs: usize,
    /// Anomaly results.
    pub results: usize,
    /// Aggregates.
    pub aggregates: usize,
    /// Stored sample points.
    pub samples: usize,
    /// Incidents.
    pub incidents: usize,
}

/// The series and engine a result is stored under (the run's engine when it names none).
fn group_of<'a>(r: &'a AnomalyResult, run_engine: &'a str) -> (&'a str, &'a str, &'a str, &'a str, &'a str) {
    let engine = r.engine().unwrap_or(run_engine);
    (r.tenant_id().as_str(), r.cluster_id().as_str(), r.node_id().as_str(), r.metric_name().as_str(), engine)
}

/// Writes (or, when there are none, removes) the packed windows of a series, engine and run.
fn write_packed(
    conn: &Connection,
    ids: [&str; 4],
    engine: &str,
    run_id: i64,
    w: &PackedWindows,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
) -> rusqlite::Result<()> {
    if w.windows == 0 {
        conn.prepare_cached(
            "DELETE FROM window_scores
             WHERE tenant = ?1 AND cluster = ?2 AND node = ?3 AND metric = ?4 AND engine = ?5 AND run_id = ?6",
        )?
        .execute(params![ids[0], ids[1], ids[2], ids[3], engine, run_id])?;
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO window_scores (tenant, cluster, node, metric, engine, run_id, first_start, last_start, windows, bounds, scores, decades)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (tenant, cluster, node, metric, engine, run_id) DO UPDATE SET
           first_start = excluded.first_start, last_start = excluded.last_start, windows = excluded.windows,
           bounds = excluded.bounds, scores = excluded.scores, decades = excluded.decades",
    )?
    .execute(params![
        ids[0],
        ids[1],
        ids[2],
        ids[3],
        engine,
        run_id,
        ts(first),
        ts(last),
        w.windows as i64,
        w.bounds,
        w.scores,
        w.decades
    ])?;
    Ok(())
}

/// The SQLite result store.
#[derive(Debug)]
pub struct ResultStore {
    conn: Connection,
    path: PathBuf,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn parse_ts(s: &str) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

fn series_key(
    tenant: String,
    cluster: String,
    node: String,
    metric: String,
) -> Result<SeriesKey, analytics_types::ContractError> {
    Ok(SeriesKey {
        tenant_id: analytics_types::TenantId::new(tenant)?,
        cluster_id: analytics_types::ClusterId::new(cluster)?,
        node_id: analytics_types::NodeId::new(node)?,
        metric_name: analytics_types::MetricName::new(metric)?,
    })
}

fn level_of(a: &AggregatedAnomalyScore) -> &'static str {
    match a.level() {
        analytics_types::AggregateLevel::Tenant => "tenant",
        analytics_types::AggregateLevel::Cluster => "cluster",
        analytics_types::AggregateLevel::Node => "node",
    }
}

impl ResultStore {
    fn err(&self, e: impl std::fmt::Display) -> IoError {
        IoError::Store { path: self.path.clone(), message: e.to_string() }
    }

    /// Opens (or creates) the store at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, IoError> {
        let fail = |e: rusqlite::Error| IoError::Store { path: path.to_path_buf(), message: e.to_string() };
        let conn = Connection::open(path).map_err(fail)?;
        let mut store = Self { conn, path: path.to_path_buf() };
        store.conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(fail)?;
        let mode: String = store.conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).map_err(fail)?;
        if mode.to_lowercase() != "wal" {
            return Err(store.err(format!("cannot switch to WAL journaling (got {mode})")));
        }
        store.conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;").map_err(fail)?;
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<(), IoError> {
        let path = self.path.clone();
        let fail = |e: rusqlite::Error| IoError::Store { path: path.clone(), message: e.to_string() };
        // Reading the version takes no write lock: a reader can open the store while a writer
        // works. Only an actual migration writes.
        let has_table: bool = self
            .conn
            .query_row("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(fail)?
            > 0;
        if has_table {
            let v: Option<u32> =
                self.conn.query_row("SELECT version FROM schema_version", [], |r| r.get(0)).optional().map_err(fail)?;
            if v == Some(SCHEMA_VERSION) {
                return Ok(());
            }
        }
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(fail)?;
        tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)").map_err(fail)?;
        let current: u32 =
            tx.query_row("SELECT version FROM schema_version", [], |r| r.get(0)).optional().map_err(fail)?.unwrap_or(0);
        if current > SCHEMA_VERSION {
            return Err(IoError::Store {
                path: path.clone(),
                message: format!(
                    "schema version {current} is newer than this build knows ({SCHEMA_VERSION}); upgrade analytics"
                ),
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            tx.execute_batch(sql)
                .map_err(|e| IoError::Store { path: path.clone(), message: format!("migration {}: {e}", i + 1) })?;
        }
        tx.execute("DELETE FROM schema_version", []).map_err(fail)?;
        tx.execute("INSERT INTO schema_version (version) VALUES (?1)", [SCHEMA_VERSION]).map_err(fail)?;
        tx.commit().map_err(fail)
    }

    /// The schema version of the file.
    pub fn schema_version(&self) -> Result<u32, IoError> {
        self.conn.query_row("SELECT version FROM schema_version", [], |r| r.get(0)).map_err(|e| self.err(e))
    }

    /// Writes a run in one transaction: its record, its results (streamed from an iterator), its
    /// aggregates, its incidents, and the values of `samples` (series worth plotting). Returns
    /// the run's id. Re-writing the same run replaces its rows.
    pub fn write_run(
        &mut self,
        run: &RunRecord,
        results: impl IntoIterator<Item = AnomalyResult>,
        aggregates: &[AggregatedAnomalyScore],
        incidents: &[Incident],
        samples: &[&MetricSeries],
    ) -> Result<i64, IoError> {
        let path = self.path.clone();
        let fail = |e: rusqlite::Error| IoError::Store { path: path.clone(), message: e.to_string() };
        let tx = self.conn.transaction().map_err(fail)?;
        let id: i64 = tx
            .query_row(
                "INSERT INTO runs (engine, config, source, range_start, range_end, started_at, finished_at, series, points)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (engine, config, source, range_start, range_end) DO UPDATE SET
                   started_at = excluded.started_at, finished_at = excluded.finished_at,
                   series = excluded.series, points = excluded.points
                 RETURNING id",
                params![
                    run.engine,
                    run.config,
                    run.source,
                    ts(run.range_start),
                    ts(run.range_end),
                    ts(run.started_at),
                    ts(run.finished_at),
                    run.series as i64,
                    run.points as i64
                ],
                |r| r.get(0),
            )
            .map_err(fail)?;
        {
            // The run's results by series and engine: a stable sort, which costs one pass when
            // they come grouped (as a run writes them), and keeps each series' windows in order.
            let results: Vec<AnomalyResult> = results.into_iter().collect();
            let engine_of = run.engine.as_str();
            let mut order: Vec<usize> = (0..results.len()).collect();
            order.sort_by(|&i, &j| group_of(&results[i], engine_of).cmp(&group_of(&results[j], engine_of)));
            let groups = order.chunk_by(|&i, &j| group_of(&results[i], engine_of) == group_of(&results[j], engine_of));
            tx.execute("DELETE FROM window_scores WHERE run_id = ?1", [id]).map_err(fail)?;
            // Nothing stored yet but this run's own packs (just removed): no window of another
            // run, or of this one written before, to give way. The first run into a store, the
            // common case, skips two statements per series.
            let stored: bool = tx
                .query_row("SELECT EXISTS (SELECT 1 FROM results) OR EXISTS (SELECT 1 FROM window_scores)", [], |r| {
                    r.get(0)
                })
                .map_err(fail)?;
            let mut clear = tx
                .prepare(
                    "DELETE FROM results WHERE tenant = ?1 AND cluster = ?2 AND node = ?3 AND metric = ?4 AND engine = ?5
                       AND window_start >= ?6 AND window_start <= ?7",
                )
                .map_err(fail)?;
            let mut overlapping = tx
                .prepare(
                    "SELECT run_id, windows, bounds, scores, decades FROM window_scores
                     WHERE tenant = ?1 AND cluster = ?2 AND node = ?3 AND metric = ?4 AND engine = ?5
                       AND first_start <= ?7 AND last_start >= ?6",
                )
                .map_err(fail)?;
            let mut put = tx
                .prepare(
                    "INSERT INTO results (tenant, cluster, node, metric, engine, window_start, window_end, score, label, explanation, evidence, run_id, decades)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                     ON CONFLICT (tenant, cluster, node, metric, engine, window_start) DO UPDATE SET
                       window_end = excluded.window_end, score = excluded.score, label = excluded.label,
                       explanation = excluded.explanation, evidence = excluded.evidence, run_id = excluded.run_id,
                       decades = excluded.decades",
                )
                .map_err(fail)?;
            let mut rest = Vec::new();
            for group in groups {
                let (tenant, cluster, node, metric, engine) = group_of(&results[group[0]], engine_of);
                let ids = [tenant, cluster, node, metric];
                let group = group.iter().map(|&i| &results[i]);
                let (Some(first), Some(last)) =
                    (group.clone().map(|r| r.window_start()).min(), group.clone().map(|r| r.window_start()).max())
                else {
                    continue;
                };
                let span = first..=last;
                // What earlier runs stored for these windows gives way to this run.
                if stored {
                    clear
                        .execute(params![ids[0], ids[1], ids[2], ids[3], engine, ts(first), ts(last)])
                        .map_err(fail)?;
                    rest.clear();
                    let rows = overlapping
                        .query_map(params![ids[0], ids[1], ids[2], ids[3], engine, ts(first), ts(last)], |r| {
                            Ok((
                                r.get::<_, i64>(0)?,
                                r.get::<_, i64>(1)?,
                                r.get::<_, Vec<u8>>(2)?,
                                r.get::<_, Vec<u8>>(3)?,
                                r.get::<_, Vec<u8>>(4)?,
                            ))
                        })
                        .map_err(fail)?;
                    for row in rows {
                        rest.push(row.map_err(fail)?);
                    }
                    for (other, windows, bounds, scores, decades) in rest.drain(..) {
                        let windows =
                            PackedWindows::unpack(windows as usize, &bounds, &scores, &decades).ok_or_else(|| {
                                IoError::Store {
                                    path: path.clone(),
                                    message: format!(
                                    "run {other}'s packed windows of {tenant}/{cluster}/{node}/{metric} are damaged"
                                ),
                                }
                            })?;
                        let kept: Vec<_> = windows.into_iter().filter(|w| !span.contains(&w.0)).collect();
                        let mut packed = PackedWindows::default();
                        for &(start, end, score, decades) in &kept {
                            packed.push(start, end, score, decades);
                        }
                        let (lo, hi) = (kept.iter().map(|w| w.0).min(), kept.iter().map(|w| w.0).max());
                        write_packed(&tx, ids, engine, other, &packed, lo.unwrap_or(first), hi.unwrap_or(last))
                            .map_err(fail)?;
                    }
                }
                let mut packed = PackedWindows::default();
                let (mut lo, mut hi) = (last, first);
                for r in group {
                    if is_plain(r) {
                        (lo, hi) = (lo.min(r.window_start()), hi.max(r.window_start()));
                        packed.push(r.window_start(), r.window_end(), r.anomaly_score(), r.decades());
                        continue;
                    }
                    let evidence = r.evidence().map(|e| serde_json::to_string(e).unwrap_or_default());
                    put.execute(params![
                        ids[0],
                        ids[1],
                        ids[2],
                        ids[3],
                        engine,
                        ts(r.window_start()),
                        ts(r.window_end()),
                        r.anomaly_score(),
                        r.anomaly_label().as_str(),
                        r.explanation(),
                        evidence,
                        id,
                        r.decades()
                    ])
                    .map_err(fail)?;
                }
                write_packed(&tx, ids, engine, id, &packed, lo, hi).map_err(fail)?;
            }
            let mut put = tx
                .prepare(
                    "INSERT INTO aggregates (level, tenant, cluster, node, strategy, engine, range_start, range_end, score, metrics, anomalies, run_id, decades)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                     ON CONFLICT (level, tenant, cluster, node, strategy, engine, range_start, range_end) DO UPDATE SET
                       score = excluded.score, metrics = excluded.metrics, anomalies = excluded.anomalies, run_id = excluded.run_id,
                       decades = excluded.decades",
                )
                .map_err(fail)?;
            for a in aggregates {
                put.execute(params![
                    level_of(a),
                    a.tenant_id().as_str(),
                    a.cluster_id().map_or("", |c| c.as_str()),
                    a.node_id().map_or("", |n| n.as_str()),
                    a.aggregation_strategy().as_str(),
                    run.engine,
                    ts(run.range_start),
                    ts(run.range_end),
                    a.aggregate_score(),
                    a.num_metrics_analyzed() as i64,
                    a.num_anomalies_detected() as i64,
                    id,
                    a.decades()
                ])
                .map_err(fail)?;
            }
            tx.execute("DELETE FROM incidents WHERE run_id = ?1", [id]).map_err(fail)?;
            let mut put = tx
                .prepare(
                    "INSERT INTO incidents (run_id, position, scope, tenant, cluster, node, start, end, score, nodes, body)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )
                .map_err(fail)?;
            for (position, i) in incidents.iter().enumerate() {
                let body = serde_json::to_string(i)
                    .map_err(|e| IoError::Store { path: path.clone(), message: e.to_string() })?;
                put.execute(params![
                    id,
                    position as i64,
                    i.scope().as_str(),
                    i.tenant_id().as_str(),
                    i.cluster_id().map_or("", |c| c.as_str()),
                    i.node_id().map_or("", |n| n.as_str()),
                    ts(i.start()),
                    ts(i.end()),
                    i.score(),
                    i.nodes_affected() as i64,
                    body
                ])
                .map_err(fail)?;
            }
            tx.execute("DELETE FROM samples WHERE run_id = ?1", [id]).map_err(fail)?;
            tx.execute("DELETE FROM series_samples WHERE run_id = ?1", [id]).map_err(fail)?;
            let mut put = tx
                .prepare(
                    "INSERT INTO series_samples (run_id, tenant, cluster, node, metric, points, timestamps, vals)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(fail)?;
            for s in samples {
                let (ts, vs) = pack(s);
                put.execute(params![
                    id,
                    s.tenant_id().as_str(),
                    s.cluster_id().as_str(),
                    s.node_id().as_str(),
                    s.metric_name().as_str(),
                    s.len() as i64,
                    ts,
                    vs
                ])
                .map_err(fail)?;
            }
        }
        tx.commit().map_err(fail)?;
        Ok(id)
    }

    /// Row counts of every table.
    pub fn counts(&self) -> Result<Counts, IoError> {
        let count = |table: &str| -> Result<usize, IoError> {
            self.conn
                .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get::<_, i64>(0))
                .map(|n| n as usize)
                .map_err(|e| self.err(e))
        };
        Ok(Counts {
            runs: count("runs")?,
            results: count("results")?
                + self
                    .conn
                    .query_row("SELECT COALESCE(SUM(windows), 0) FROM window_scores", [], |r| r.get::<_, i64>(0))
                    .map(|n| n as usize)
                    .map_err(|e| self.err(e))?,
            aggregates: count("aggregates")?,
            samples: count("samples")?
                + self
                    .conn
                    .query_row("SELECT COALESCE(SUM(points), 0) FROM series_samples", [], |r| r.get::<_, i64>(0))
                    .map(|n| n as usize)
                    .map_err(|e| self.err(e))?,
            incidents: count("incidents")?,
        })
    }

    /// SQLite's own consistency check (`ok` when the file is sound).
    pub fn integrity_check(&self) -> Result<String, IoError> {
        self.conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).map_err(|e| self.err(e))
    }

    /// The most recently written run.
    pub fn latest_run(&self) -> Result<Option<RunRecord>, IoError> {
        self.conn
            .query_row(
                "SELECT id, engine, config, source, range_start, range_end, started_at, finished_at, series, points
                 FROM runs ORDER BY finished_at DESC, id DESC LIMIT 1",
                [],
                |r| {
                    Ok(RunRecord {
                        id: r.get(0)?,
                        engine: r.get(1)?,
                        config: r.get(2)?,
                        source: r.get(3)?,
                        range_start: parse_ts(&r.get::<_, String>(4)?)?,
                        range_end: parse_ts(&r.get::<_, String>(5)?)?,
                        started_at: parse_ts(&r.get::<_, String>(6)?)?,
                        finished_at: parse_ts(&r.get::<_, String>(7)?)?,
                        series: r.get::<_, i64>(8)? as usize,
                        points: r.get::<_, i64>(9)? as usize,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Every result of a run (its own rows and its packed plain windows), ordered by series and
    /// window.
    pub fn results(&self, run_id: i64) -> Result<Vec<AnomalyResult>, IoError> {
        let mut q = self
            .conn
            .prepare(
                "SELECT tenant, cluster, node, metric, engine, window_start, window_end, score, label, explanation, evidence, decades
                 FROM results WHERE run_id = ?1 ORDER BY tenant, cluster, node, metric, window_start",
            )
            .map_err(|e| self.err(e))?;
        let rows = q
            .query_map([run_id], |r| {
                Ok((
                    [r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?],
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, f64>(7)?,
                    r.get::<_, String>(8)?,
                    r.get::<_, Option<String>>(9)?,
                    r.get::<_, Option<String>>(10)?,
                    r.get::<_, Option<f64>>(11)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (ids, engine, start, end, score, label, explanation, evidence, decades) =
                row.map_err(|e| self.err(e))?;
            let bad = |m: String| self.err(format!("a stored result is invalid: {m}"));
            let key =
                MetricSeries::new(ids[0].as_str(), ids[1].as_str(), ids[2].as_str(), ids[3].as_str(), vec![], vec![])
                    .map_err(|e| bad(e.to_string()))?
                    .key();
            let label: AnomalyLabel = label.parse().map_err(bad)?;
            let (start, end) =
                (parse_ts(&start).map_err(|e| bad(e.to_string()))?, parse_ts(&end).map_err(|e| bad(e.to_string()))?);
            let mut r =
                AnomalyResult::new(key, start, end, score, label).map_err(|e| bad(e.to_string()))?.with_engine(engine);
            if let Some(x) = explanation {
                r = r.with_explanation(x);
            }
            if let Some(e) = evidence {
                let e: Evidence = serde_json::from_str(&e).map_err(|e| bad(e.to_string()))?;
                r = r.with_evidence(e).map_err(|e| bad(e.to_string()))?;
            }
            if let Some(d) = decades {
                r = r.with_decades(d).map_err(|e| bad(e.to_string()))?;
            }
            out.push(r);
        }
        let mut q = self
            .conn
            .prepare("SELECT tenant, cluster, node, metric, engine, windows, bounds, scores, decades FROM window_scores WHERE run_id = ?1")
            .map_err(|e| self.err(e))?;
        let rows = q
            .query_map([run_id], |r| {
                Ok((
                    [r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?],
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, Vec<u8>>(6)?,
                    r.get::<_, Vec<u8>>(7)?,
                    r.get::<_, Vec<u8>>(8)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        for row in rows {
            let ([tenant, cluster, node, metric], engine, windows, bounds, scores, decades) =
                row.map_err(|e| self.err(e))?;
            let bad = |m: String| self.err(format!("a stored result is invalid: {m}"));
            let key = series_key(tenant, cluster, node, metric).map_err(|e| bad(e.to_string()))?;
            let windows = PackedWindows::unpack(windows.max(0) as usize, &bounds, &scores, &decades)
                .ok_or_else(|| bad(format!("the packed windows of {key} do not hold what they say")))?;
            for (start, end, score, decades) in windows {
                let mut r = AnomalyResult::new(key.clone(), start, end, score, AnomalyLabel::Normal)
                    .map_err(|e| bad(e.to_string()))?
                    .with_engine(engine.clone());
                if let Some(d) = decades {
                    r = r.with_decades(d).map_err(|e| bad(e.to_string()))?;
                }
                out.push(r);
            }
        }
        // One order for both: by series, then window.
        out.sort_by(|a, b| a.key().cmp(&b.key()).then(a.window_start().cmp(&b.window_start())));
        Ok(out)
    }

    /// The incidents of a run, in the order the run ranked them (broadest first).
    pub fn incidents(&self, run_id: i64) -> Result<Vec<Incident>, IoError> {
        let mut q = self
            .conn
            .prepare("SELECT body FROM incidents WHERE run_id = ?1 ORDER BY position")
            .map_err(|e| self.err(e))?;
        let rows = q.query_map([run_id], |r| r.get::<_, String>(0)).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for body in rows {
            let body = body.map_err(|e| self.err(e))?;
            out.push(serde_json::from_str(&body).map_err(|e| self.err(format!("a stored incident is invalid: {e}")))?);
        }
        Ok(out)
    }

    /// Every aggregate of a run: tenants, then clusters, then nodes, each ordered by id.
    pub fn aggregates(&self, run_id: i64) -> Result<Vec<AggregatedAnomalyScore>, IoError> {
        let mut q = self
            .conn
            .prepare(
                "SELECT tenant, cluster, node, strategy, score, metrics, anomalies, decades FROM aggregates WHERE run_id = ?1
                 ORDER BY CASE level WHEN 'tenant' THEN 0 WHEN 'cluster' THEN 1 ELSE 2 END, tenant, cluster, node",
            )
            .map_err(|e| self.err(e))?;
        let rows = q
            .query_map([run_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, f64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, Option<f64>>(7)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (t, c, n, strategy, score, metrics, anomalies, decades) = row.map_err(|e| self.err(e))?;
            let strategy: AggregationStrategy = strategy.parse().map_err(|e: String| self.err(e))?;
            let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
            let (c, n) = (opt(&c), opt(&n));
            let bad = |e: analytics_types::ContractError| self.err(format!("a stored aggregate is invalid: {e}"));
            let mut a = AggregatedAnomalyScore::new(
                &t,
                c.as_deref(),
                n.as_deref(),
                strategy,
                score,
                metrics as usize,
                anomalies as usize,
            )
            .map_err(bad)?;
            if let Some(d) = decades {
                a = a.with_decades(d).map_err(bad)?;
            }
            out.push(a);
        }
        Ok(out)
    }

    /// The stored values of one series in a run (empty when none were kept).
    pub fn samples(&self, run_id: i64, key: &SeriesKey) -> Result<(Vec<DateTime<Utc>>, Vec<f64>), IoError> {
        let ids = params![
            run_id,
            key.tenant_id.as_str(),
            key.cluster_id.as_str(),
            key.node_id.as_str(),
            key.metric_name.as_str()
        ];
        let packed: Option<(i64, Vec<u8>, Vec<u8>)> = self
            .conn
            .query_row(
                "SELECT points, timestamps, vals FROM series_samples
                 WHERE run_id = ?1 AND tenant = ?2 AND cluster = ?3 AND node = ?4 AND metric = ?5",
                ids,
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        if let Some((points, ts, vs)) = packed {
            return unpack(usize::try_from(points).unwrap_or(usize::MAX), &ts, &vs)
                .ok_or_else(|| self.err(format!("the stored values of {key} in run {run_id} are damaged")));
        }
        // Runs written before schema version 3: one row per point.
        let mut q = self
            .conn
            .prepare("SELECT ts, value FROM samples WHERE run_id = ?1 AND tenant = ?2 AND cluster = ?3 AND node = ?4 AND metric = ?5 ORDER BY ts")
            .map_err(|e| self.err(e))?;
        let rows = q
            .query_map(
                params![
                    run_id,
                    key.tenant_id.as_str(),
                    key.cluster_id.as_str(),
                    key.node_id.as_str(),
                    key.metric_name.as_str()
                ],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?)),
            )
            .map_err(|e| self.err(e))?;
        let (mut ts_out, mut vs) = (Vec::new(), Vec::new());
        for row in rows {
            let (t, v) = row.map_err(|e| self.err(e))?;
            ts_out.push(parse_ts(&t).map_err(|e| self.err(e))?);
            vs.push(v);
        }
        Ok((ts_out, vs))
    }

    /// Replaces every checkpoint of `service` by `checkpoints`, in one transaction: a reader, or
    /// a service restarted after a crash half-way, sees either the previous set or the new one,
    /// never a mix. A series absent from `checkpoints` loses its row. Returns the rows written.
    pub fn save_checkpoints(
        &mut self,
        service: &str,
        saved_at: DateTime<Utc>,
        checkpoints: &[Checkpoint],
    ) -> Result<usize, IoError> {
        let path = self.path.clone();
        let fail = |e: rusqlite::Error| IoError::Store { path: path.clone(), message: e.to_string() };
        let tx = self.conn.transaction().map_err(fail)?;
        tx.execute("DELETE FROM checkpoints WHERE service = ?1", [service]).map_err(fail)?;
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO checkpoints (service, tenant, cluster, node, metric, last_timestamp, points, state, saved_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .map_err(fail)?;
            let saved_at = ts(saved_at);
            for c in checkpoints {
                insert
                    .execute(params![
                        service,
                        c.key.tenant_id.as_str(),
                        c.key.cluster_id.as_str(),
                        c.key.node_id.as_str(),
                        c.key.metric_name.as_str(),
                        ts(c.last_timestamp),
                        i64::try_from(c.points).unwrap_or(i64::MAX),
                        c.state,
                        saved_at,
                    ])
                    .map_err(fail)?;
            }
        }
        tx.commit().map_err(fail)?;
        Ok(checkpoints.len())
    }

    /// Every checkpoint of `service`, by series key, and when they were saved (`None` when there
    /// are none).
    pub fn checkpoints(&self, service: &str) -> Result<(Vec<Checkpoint>, Option<DateTime<Utc>>), IoError> {
        let mut q = self
            .conn
            .prepare(
                "SELECT tenant, cluster, node, metric, last_timestamp, points, state, saved_at FROM checkpoints
                 WHERE service = ?1 ORDER BY tenant, cluster, node, metric",
            )
            .map_err(|e| self.err(e))?;
        let rows = q
            .query_map([service], |r| {
                Ok((
                    series_key(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?),
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, Vec<u8>>(6)?,
                    r.get::<_, String>(7)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let (mut out, mut saved_at) = (Vec::new(), None);
        for row in rows {
            let (key, last, points, state, at) = row.map_err(|e| self.err(e))?;
            let key = key.map_err(|e| self.err(format!("a checkpoint names a bad series: {e}")))?;
            let last_timestamp = parse_ts(&last).map_err(|e| self.err(e))?;
            saved_at = Some(parse_ts(&at).map_err(|e| self.err(e))?);
            out.push(Checkpoint { key, last_timestamp, points: u64::try_from(points).unwrap_or(0), state });
        }
        Ok((out, saved_at))
    }
}
