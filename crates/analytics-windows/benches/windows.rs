//! Windowing throughput: point windows and epoch-aligned time windows over one series of
//! 100,000 one-minute points, counted in points per second. Run with
//! `cargo bench -p analytics-windows`.

use std::hint::black_box;

use analytics_windows::{Partial, PointWindows, TimeWindows};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn windows(c: &mut Criterion) {
    let t0 = Utc.with_ymd_and_hms(2024, 3, 4, 0, 0, 0).single().unwrap_or_default();
    let ts: Vec<DateTime<Utc>> = (0..100_000).map(|i| t0 + TimeDelta::minutes(i)).collect();
    let mut g = c.benchmark_group("windows/100000");
    g.throughput(Throughput::Elements(ts.len() as u64));
    let hourly = TimeWindows::tumbling(TimeDelta::hours(1)).unwrap_or_else(|e| panic!("{e}"));
    g.bench_function("time_tumbling_1h", |b| b.iter(|| black_box(hourly.over(&ts).count())));
    let sliding =
        TimeWindows::new(TimeDelta::hours(1), TimeDelta::minutes(5), Partial::Keep).unwrap_or_else(|e| panic!("{e}"));
    g.bench_function("time_sliding_1h_every_5min", |b| b.iter(|| black_box(sliding.over(&ts).count())));
    let points = PointWindows::new(120, 10, Partial::Drop).unwrap_or_else(|e| panic!("{e}"));
    g.bench_function("points_120_every_10", |b| b.iter(|| black_box(points.over_times(&ts).count())));
    g.finish();
}

criterion_group!(benches, windows);
criterion_main!(benches);
