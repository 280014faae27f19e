//! Result-store write throughput, in result rows per second: `write_run` of one run into a new
//! store file (its record, 24,000 results of 1,000 series over a day in hourly windows, 2% of
//! them anomalous with an explanation and evidence, and 200 aggregates), in one transaction, as
//! `analytics detect` writes it; and the same run written again into the store that holds it.
//! Run with `cargo bench -p analytics-io --bench store`.

use std::hint::black_box;

use analytics_io::{ResultStore, RunRecord};
use analytics_types::{
    AggregatedAnomalyScore, AggregationStrategy, AnomalyLabel, AnomalyResult, Evidence, MetricSeries,
};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

const SERIES: usize = 1_000;
const HOURS: i64 = 24;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 4, 0, 0, 0).single().unwrap_or_default()
}

fn results() -> Vec<AnomalyResult> {
    let mut out = Vec::with_capacity(SERIES * HOURS as usize);
    for s in 0..SERIES {
        let (node, metric) = (format!("node-{:03}", s / 5), format!("metric-{}", s % 5));
        let key = MetricSeries::new("acme", "prod", &node, &metric, vec![], vec![]).map(|m| m.key());
        let Ok(key) = key else { continue };
        for h in 0..HOURS {
            let start = t0() + TimeDelta::hours(h);
            let anomalous = (s as i64 * 7 + h) % 50 == 0;
            let label = if anomalous { AnomalyLabel::Spike } else { AnomalyLabel::Normal };
            let score = if anomalous { 0.93 } else { 0.05 + (h % 7) as f64 * 0.03 };
            let Ok(mut r) = AnomalyResult::new(key.clone(), start, start + TimeDelta::hours(1), score, label) else {
                continue;
            };
            r = r.with_engine("default");
            if let Ok(with) = r.clone().with_decades(score * 10.0) {
                r = with;
            }
            if anomalous {
                let evidence = Evidence {
                    deviation_sigma: 9.3,
                    peak_value: 97.2,
                    peak_time: start + TimeDelta::minutes(12),
                    baseline: 41.0,
                    sigma: 6.0,
                    level_before: 41.2,
                    level_after: Some(41.5),
                    expected_seasonal: None,
                    period_seconds: None,
                    duration_seconds: 120,
                    num_points: 2,
                    event_start: Some(start + TimeDelta::minutes(11)),
                    level_during: None,
                    spread_before: None,
                    spread_during: None,
                };
                r = r.with_explanation(format!("{metric} on {node} (cluster prod, tenant acme) spiked to 97.2"));
                if let Ok(with) = r.clone().with_evidence(evidence) {
                    r = with;
                }
            }
            out.push(r);
        }
    }
    out
}

fn store(c: &mut Criterion) {
    let results = results();
    let aggregates: Vec<AggregatedAnomalyScore> = (0..200)
        .filter_map(|n| {
            AggregatedAnomalyScore::new(
                "acme",
                Some("prod"),
                Some(&format!("node-{n:03}")),
                AggregationStrategy::Max,
                0.5,
                5,
                1,
            )
            .ok()
        })
        .collect();
    let run = RunRecord {
        id: 0,
        engine: "default".into(),
        config: "{}".into(),
        source: "bench".into(),
        range_start: t0(),
        range_end: t0() + TimeDelta::hours(HOURS),
        started_at: t0(),
        finished_at: t0(),
        series: SERIES,
        points: SERIES * 1440,
    };
    let dir = std::env::temp_dir().join(format!("analytics-store-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok();
    let mut g = c.benchmark_group("store");
    g.sample_size(10);
    g.throughput(Throughput::Elements(results.len() as u64));
    let mut n = 0;
    // The results are the caller's (as `detect` hands over its own): cloned outside the timing.
    g.bench_function("write_run", |b| {
        b.iter_batched(
            || results.clone(),
            |results| {
                n += 1;
                let path = dir.join(format!("s{n}.db"));
                let written =
                    ResultStore::open(&path).and_then(|mut s| s.write_run(&run, results, &aggregates, &[], &[]));
                for suffix in ["", "-wal", "-shm"] {
                    std::fs::remove_file(format!("{}{suffix}", path.display())).ok();
                }
                black_box(written.is_ok())
            },
            BatchSize::LargeInput,
        )
    });
    // The same run written again into the store that holds it: every window of every series
    // gives way, the path a re-run over the same hours takes.
    let path = dir.join("again.db");
    let mut again = ResultStore::open(&path).ok();
    if let Some(s) = again.as_mut() {
        s.write_run(&run, results.clone(), &aggregates, &[], &[]).ok();
    }
    g.bench_function("write_run_again", |b| {
        b.iter_batched(
            || results.clone(),
            |results| black_box(again.as_mut().map(|s| s.write_run(&run, results, &aggregates, &[], &[]).is_ok())),
            BatchSize::LargeInput,
        )
    });
    g.finish();
    std::fs::remove_dir_all(&dir).ok();
}

criterion_group!(benches, store);
criterion_main!(benches);
