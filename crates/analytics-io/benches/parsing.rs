//! Long-CSV parsing throughput (`tenant,cluster,node,metric,timestamp,value`), strict, from
//! memory, in rows per second: 100 series x 1,440 rows with RFC 3339 timestamps. Run with
//! `cargo bench -p analytics-io`.

use std::fmt::Write as _;
use std::hint::black_box;

use analytics_io::{FileOptions, FileSource, Selector, TimeRange};
use chrono::{TimeDelta, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn parsing(c: &mut Criterion) {
    let t0 = Utc.with_ymd_and_hms(2024, 3, 4, 0, 0, 0).single().unwrap_or_default();
    let mut text = String::from("tenant,cluster,node,metric,timestamp,value\n");
    let rows = 100 * 1440;
    for s in 0..100 {
        for i in 0..1440 {
            let t = (t0 + TimeDelta::minutes(i)).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
            let _ = writeln!(text, "acme,prod,node-{s:03},cpu_usage,{t},{}", 40.0 + (i % 17) as f64 * 0.5);
        }
    }
    let source = FileSource::new("bench.csv", FileOptions::default());
    let mut g = c.benchmark_group("parse_long_csv");
    g.throughput(Throughput::Elements(rows as u64));
    g.bench_function("144000_rows", |b| {
        b.iter(|| {
            black_box(
                source.read_from(text.as_bytes(), None, &Selector::all(), &TimeRange::all()).map(|(s, _)| s.len()),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, parsing);
criterion_main!(benches);
