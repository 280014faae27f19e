//! The result store: migrations, idempotent re-runs, round trips.

use std::path::PathBuf;

use analytics_io::{ResultStore, RunRecord, SCHEMA_VERSION};
use analytics_types::{
    AggregatedAnomalyScore, AggregationStrategy, AnomalyLabel, AnomalyResult, Incident, IncidentMember, MetricSeries,
};
use chrono::{Duration, TimeZone, Utc};

fn db(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("analytics-store-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    for suffix in ["", "-wal", "-shm"] {
        std::fs::remove_file(format!("{}{suffix}", p.display())).ok();
    }
    p
}

fn run() -> RunRecord {
    let t = Utc.with_ymd_and_hms(2024, 3, 4, 0, 0, 0).unwrap();
    RunRecord {
        id: 0,
        engine: "default".into(),
        config: "{}".into(),
        source: "test".into(),
        range_start: t,
        range_end: t + Duration::days(1),
        started_at: t + Duration::days(1),
        finished_at: t + Duration::days(1),
        series: 2,
        points: 10,
    }
}

fn results() -> Vec<AnomalyResult> {
    let t = Utc.with_ymd_and_hms(2024, 3, 4, 0, 0, 0).unwrap();
    (0..24)
        .flat_map(|h| {
            ["cpu", "mem"].map(|m| {
                let key = MetricSeries::new("acme", "prod", "node-1", m, vec![], vec![]).unwrap().key();
                let label = if h == 14 { AnomalyLabel::Spike } else { AnomalyLabel::Normal };
                let r = AnomalyResult::new(
                    key,
                    t + Duration::hours(h),
                    t + Duration::hours(h + 1),
                    0.1 * (h % 10) as f64,
                    label,
                )
                .unwrap()
                .with_engine("default")
                .with_decades(f64::from(h as u8) * 1.5)
                .unwrap();
                if h == 14 {
                    r.with_explanation("cpu spiked")
                } else {
                    r
                }
            })
        })
        .collect()
}

fn aggregates() -> Vec<AggregatedAnomalyScore> {
    vec![
        AggregatedAnomalyScore::new("acme", None, None, AggregationStrategy::Max, 0.9, 2, 2).unwrap(),
        AggregatedAnomalyScore::new("acme", Some("prod"), None, AggregationStrategy::Max, 0.9, 2, 2).unwrap(),
        AggregatedAnomalyScore::new("acme", Some("prod"), Some("node-1"), AggregationStrategy::Max, 0.9, 2, 2)
            .unwrap()
            .with_decades(34.5)
            .unwrap(),
    ]
}

#[test]
fn a_second_run_over_the_same_data_replaces_rather_than_duplicates() {
    let path = db("idem.db");
    let mut s = ResultStore::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    let series = MetricSeries::new("acme", "prod", "node-1", "cpu", vec![run().range_start], vec![1.0]).unwrap();
    let id = s.write_run(&run(), results(), &aggregates(), &[], &[&series]).unwrap();
    let first = s.counts().unwrap();
    assert_eq!((first.runs, first.results, first.aggregates, first.samples), (1, 48, 3, 1));
    let mut again = run();
    again.finished_at += Duration::hours(1);
    assert_eq!(s.write_run(&again, results(), &aggregates(), &[], &[&series]).unwrap(), id);
    assert_eq!(s.counts().unwrap(), first);
    assert_eq!(s.latest_run().unwrap().unwrap().finished_at, again.finished_at);
    // Another engine is another run.
    let mut other = run();
    other.engine = "robust_zscore".into();
    s.write_run(&other, results().into_iter().map(|r| r.with_engine("robust_zscore")), &[], &[], &[]).unwrap();
    assert_eq!(s.counts().unwrap().runs, 2);
    assert_eq!(s.counts().unwrap().results, 96);
}

fn incidents() -> Vec<Incident> {
    let t = Utc.with_ymd_and_hms(2024, 3, 4, 14, 5, 0).unwrap();
    let member = |node: &str, metric: &str| IncidentMember {
        key: MetricSeries::new("acme", "prod", node, metric, vec![], vec![]).unwrap().key(),
        start: t,
        end: t + Duration::minutes(3),
        score: 0.95,
        label: AnomalyLabel::Spike,
        peak_value: Some(97.0),
        baseline: Some(40.0),
        deviation_sigma: Some(9.5),
        decades: None,
    };
    vec![
        Incident::new(vec![member("node-1", "cpu"), member("node-2", "cpu")], 2)
            .unwrap()
            .with_summary("acme/prod: cpu on 2 of 2 nodes".into())
            .unwrap(),
        Incident::new(vec![member("node-1", "mem")], 2).unwrap(),
    ]
}

#[test]
fn incidents_round_trip_in_their_order_and_a_rerun_replaces_them() {
    let path = db("incidents.db");
    let mut s = ResultStore::open(&path).unwrap();
    let id = s.write_run(&run(), results(), &aggregates(), &incidents(), &[]).unwrap();
    assert_eq!(s.incidents(id).unwrap(), incidents());
    assert_eq!(s.counts().unwrap().incidents, 2);
    s.write_run(&run(), results(), &aggregates(), &incidents()[1..], &[]).unwrap();
    assert_eq!(s.incidents(id).unwrap(), incidents()[1..].to_vec());
    assert_eq!(s.counts().unwrap().incidents, 1);
}

#[test]
fn results_aggregates_and_samples_round_trip() {
    let path = db("roundtrip.db");
    let mut s = ResultStore::open(&path).unwrap();
    let t0 = run().range_start;
    let series = MetricSeries::new(
        "acme",
        "prod",
        "node-1",
        "cpu",
        vec![t0, t0 + Duration::nanoseconds(60_000_000_123)],
        vec![1.5, -0.0],
    )
    .unwrap();
    let id = s.write_run(&run(), results(), &aggregates(), &[], &[&series]).unwrap();
    assert_eq!(s.results(id).unwrap(), {
        let mut r = results();
        r.sort_by_key(|x| (x.key(), x.window_start()));
        r
    });
    assert_eq!(s.aggregates(id).unwrap(), aggregates());
    assert_eq!(s.samples(id, &series.key()).unwrap(), (series.timestamps().to_vec(), series.values().to_vec()));
    drop(s);
    // Reopening finds everything, at the same schema version.
    let s = ResultStore::open(&path).unwrap();
    assert_eq!(s.results(id).unwrap().len(), 48);
    assert_eq!(s.integrity_check().unwrap(), "ok");
}

/// Puts a run's results back as a store before schema version 7 kept them: every window one row
/// of `results` (packed plain windows dropped), without the decades column of version 5.
fn as_rows_before_packing(raw: &rusqlite::Connection, run_id: i64, results: &[AnomalyResult]) {
    raw.execute_batch("DROP TABLE window_scores; DELETE FROM results;").unwrap();
    for r in results {
        raw.execute(
            "INSERT INTO results (tenant, cluster, node, metric, engine, window_start, window_end, score, label, explanation, evidence, run_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            rusqlite::params![
                r.tenant_id().as_str(),
                r.cluster_id().as_str(),
                r.node_id().as_str(),
                r.metric_name().as_str(),
                r.engine().unwrap(),
                r.window_start().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                r.window_end().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                r.anomaly_score(),
                r.anomaly_label().as_str(),
                r.explanation(),
                r.evidence().map(|e| serde_json::to_string(e).unwrap()),
                run_id
            ],
        )
        .unwrap();
    }
}

#[test]
fn an_old_schema_is_migrated_and_a_newer_one_refused() {
    let path = db("old.db");
    let written = {
        // A store at schema version 1 (before the samples table), with one run in it.
        let mut s = ResultStore::open(&path).unwrap();
        let id = s.write_run(&run(), results(), &aggregates(), &[], &[]).unwrap();
        s.results(id).unwrap()
    };
    // Roll the file back to schema version 1: results one row per window, no samples,
    // series_samples, incidents or checkpoints table.
    let raw = |p: &PathBuf, sql: &str| rusqlite::Connection::open(p).unwrap().execute_batch(sql).unwrap();
    as_rows_before_packing(&rusqlite::Connection::open(&path).unwrap(), 1, &written);
    raw(
        &path,
        "DROP TABLE samples; DROP TABLE series_samples; DROP TABLE incidents; DROP TABLE checkpoints; \
         ALTER TABLE results DROP COLUMN decades; ALTER TABLE aggregates DROP COLUMN decades; \
         UPDATE schema_version SET version = 1;",
    );
    let mut s = ResultStore::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(s.counts().unwrap().results, 48, "data survives the migration");
    // Without decades (the column came at version 5), the results read back as written.
    let without_decades: Vec<AnomalyResult> = written
        .iter()
        .map(|r| {
            let mut back =
                AnomalyResult::new(r.key(), r.window_start(), r.window_end(), r.anomaly_score(), r.anomaly_label())
                    .unwrap()
                    .with_engine(r.engine().unwrap());
            if let Some(x) = r.explanation() {
                back = back.with_explanation(x);
            }
            if let Some(e) = r.evidence() {
                back = back.with_evidence(e.clone()).unwrap();
            }
            back
        })
        .collect();
    assert_eq!(s.results(1).unwrap(), without_decades);
    // Written again, the run's plain windows are packed and the old rows are gone: no window
    // twice.
    s.write_run(&run(), results(), &aggregates(), &[], &[]).unwrap();
    assert_eq!(s.counts().unwrap().results, 48);
    assert_eq!(s.results(1).unwrap(), written);
    assert_eq!(s.counts().unwrap().samples, 0);
    assert_eq!(s.incidents(1).unwrap(), vec![], "a run from before incidents has none");
    // A newer schema is refused with a clear message.
    let path2 = db("newer.db");
    drop(ResultStore::open(&path2).unwrap());
    raw(&path2, "UPDATE schema_version SET version = 99;");
    let err = ResultStore::open(&path2).unwrap_err().to_string();
    assert!(
        err.ends_with(&format!(
            "schema version 99 is newer than this build knows ({SCHEMA_VERSION}); upgrade analytics"
        )),
        "{err}"
    );
}

#[test]
fn an_unwritable_store_names_the_file() {
    let err = ResultStore::open(std::path::Path::new("no/such/dir/results.db")).unwrap_err().to_string();
    assert!(err.starts_with("result store no/such/dir/results.db: "), "{err}");
}

/// A run written at schema version 2 kept its samples one row per point: after the migration to
/// packed samples, the report still reads them, and rewriting the run replaces them.
#[test]
fn samples_written_one_row_per_point_are_still_read() {
    let path = db("v2.db");
    let t0 = run().range_start;
    let series =
        MetricSeries::new("acme", "prod", "node-1", "cpu", vec![t0, t0 + Duration::minutes(1)], vec![1.5, 2.5])
            .unwrap();
    let (id, written) = {
        let mut s = ResultStore::open(&path).unwrap();
        let id = s.write_run(&run(), results(), &aggregates(), &[], &[]).unwrap();
        (id, s.results(id).unwrap())
    };
    // Back to version 2, with the series stored as version 2 stored it.
    let raw = rusqlite::Connection::open(&path).unwrap();
    as_rows_before_packing(&raw, id, &written);
    raw.execute_batch(
        "DROP TABLE series_samples; DROP TABLE incidents; DROP TABLE checkpoints; \
         ALTER TABLE results DROP COLUMN decades; \
         ALTER TABLE aggregates DROP COLUMN decades; UPDATE schema_version SET version = 2;",
    )
    .unwrap();
    for (t, v) in series.timestamps().iter().zip(series.values()) {
        raw.execute(
            "INSERT INTO samples (run_id, tenant, cluster, node, metric, ts, value) VALUES (?1, 'acme', 'prod', 'node-1', 'cpu', ?2, ?3)",
            rusqlite::params![id, t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true), v],
        )
        .unwrap();
    }
    drop(raw);
    let mut s = ResultStore::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(s.samples(id, &series.key()).unwrap(), (series.timestamps().to_vec(), series.values().to_vec()));
    assert_eq!(s.counts().unwrap().samples, 2);
    // Written again, the run's samples are packed, and the old rows are gone.
    let again = MetricSeries::new("acme", "prod", "node-1", "cpu", vec![t0], vec![9.0]).unwrap();
    assert_eq!(s.write_run(&run(), results(), &aggregates(), &[], &[&again]).unwrap(), id);
    assert_eq!(s.samples(id, &series.key()).unwrap(), (vec![t0], vec![9.0]));
    assert_eq!(s.counts().unwrap().samples, 1);
}

/// A service's checkpoints: written as a set, replaced as a set (a series no longer tracked
/// loses its row), kept apart from another service's, read back byte for byte.
#[test]
fn checkpoints_are_replaced_as_a_set_per_service() {
    use analytics_io::Checkpoint;
    let path = db("checkpoints.db");
    let mut s = ResultStore::open(&path).unwrap();
    let t = Utc.with_ymd_and_hms(2024, 3, 4, 0, 0, 0).unwrap();
    let key = |node: &str| MetricSeries::new("acme", "prod", node, "cpu", vec![t], vec![1.0]).unwrap().key();
    let cp = |node: &str, points: u64, state: Vec<u8>| Checkpoint {
        key: key(node),
        last_timestamp: t + Duration::minutes(points as i64),
        points,
        state,
    };
    assert_eq!(s.checkpoints("a").unwrap(), (vec![], None));
    let first = vec![cp("n1", 10, vec![1, 2, 3]), cp("n2", 20, vec![0; 5000])];
    assert_eq!(s.save_checkpoints("a", t, &first).unwrap(), 2);
    s.save_checkpoints("b", t, &[cp("n9", 1, vec![9])]).unwrap();
    assert_eq!(s.checkpoints("a").unwrap(), (first, Some(t)));
    let second = vec![cp("n2", 21, vec![7])];
    s.save_checkpoints("a", t + Duration::minutes(1), &second).unwrap();
    assert_eq!(s.checkpoints("a").unwrap(), (second, Some(t + Duration::minutes(1))));
    assert_eq!(s.checkpoints("b").unwrap().0.len(), 1);
    drop(s);
    // Reopened: still there.
    let s = ResultStore::open(&path).unwrap();
    assert_eq!(s.checkpoints("a").unwrap().0[0].state, vec![7]);
}

/// A later run over some of the same hours replaces them, packed windows and result rows alike,
/// whichever run wrote them: the earlier run keeps the hours the later one did not cover, and no
/// window is stored twice.
#[test]
fn a_later_run_over_some_of_the_same_hours_takes_them_over() {
    let path = db("overlap.db");
    let mut s = ResultStore::open(&path).unwrap();
    let first = s.write_run(&run(), results(), &aggregates(), &[], &[]).unwrap();
    // Twelve hours later: hours 12 to 35, the spike at hour 14 of the first run now at 26.
    let mut later = run();
    later.range_start += Duration::hours(12);
    later.range_end += Duration::hours(12);
    let shifted: Vec<AnomalyResult> = results()
        .into_iter()
        .map(|r| {
            let moved = AnomalyResult::new(
                r.key(),
                r.window_start() + Duration::hours(12),
                r.window_end() + Duration::hours(12),
                r.anomaly_score(),
                r.anomaly_label(),
            )
            .unwrap()
            .with_engine("default");
            match r.explanation() {
                Some(x) => moved.with_explanation(x),
                None => moved,
            }
        })
        .collect();
    let second = s.write_run(&later, shifted.clone(), &[], &[], &[]).unwrap();
    assert_ne!(first, second);
    assert_eq!(s.counts().unwrap().results, 2 * 36, "36 hours of two series, each once");
    let kept = s.results(first).unwrap();
    let t0 = run().range_start;
    assert_eq!(kept.len(), 2 * 12);
    assert!(kept.iter().all(|r| r.window_start() < t0 + Duration::hours(12)), "the first run keeps hours 0 to 11");
    assert!(kept.iter().all(|r| r.anomaly_label() == AnomalyLabel::Normal), "its spike at 14 went to the later run");
    let mut expected = shifted;
    expected.sort_by(|a, b| a.key().cmp(&b.key()).then(a.window_start().cmp(&b.window_start())));
    assert_eq!(s.results(second).unwrap(), expected);
}

/// A packed row that does not hold what it says (a file edited by hand, a torn copy) is refused
/// with the series named, not read as something else.
#[test]
fn damaged_packed_windows_are_refused_by_series() {
    let path = db("damaged.db");
    let mut s = ResultStore::open(&path).unwrap();
    let id = s.write_run(&run(), results(), &aggregates(), &[], &[]).unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("UPDATE window_scores SET windows = windows + 1 WHERE metric = 'mem'")
        .unwrap();
    let err = s.results(id).unwrap_err().to_string();
    assert!(
        err.ends_with(
            "a stored result is invalid: the packed windows of acme/prod/node-1/mem do not hold what they say"
        ),
        "{err}"
    );
}
