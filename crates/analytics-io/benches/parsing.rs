//! File-reading throughput per format, strict, from memory, in values per second (a value is one
//! number of one series at one time: a row of the long CSV, NAB's CSV and JSON lines, a cell of
//! the wide CSV). Run with `cargo bench -p analytics-io --bench parsing`.
//!
//! - `long_csv`: 100 series x 1,440 rows, RFC 3339 timestamps, rows grouped by series (as
//!   `analytics simulate` writes them);
//! - `jsonl`: the same rows as JSON lines;
//! - `wide_csv`: one node, 20 metric columns x 7,200 rows;
//! - `nab_csv`: one series of 144,000 rows, `YYYY-MM-DD HH:MM:SS` timestamps;
//! - `prometheus_decode`: a `query_range` answer of 100 series x 1,440 samples, decoded;
//! - `long_csv_file`: 500 series x 1,440 rows of the long CSV (52 MB) from a file, read by
//!   `FileSource::read`, which splits a long CSV of 16 MiB or more by byte ranges over one
//!   thread per core.

use std::fmt::Write as _;
use std::hint::black_box;

use analytics_io::{decode_query_range, FileFormat, FileOptions, FileSource, LabelMapping, Selector, TimeRange};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 4, 0, 0, 0).single().unwrap_or_default()
}

fn rfc3339(i: i64) -> String {
    (t0() + TimeDelta::minutes(i)).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn value(i: i64) -> f64 {
    40.0 + (i % 17) as f64 * 0.5 + (i % 7) as f64 * 0.013
}

fn long_csv() -> (String, u64) {
    let mut text = String::from("tenant,cluster,node,metric,timestamp,value\n");
    for s in 0..100 {
        for i in 0..1440 {
            let _ = writeln!(text, "acme,prod,node-{s:03},cpu_usage,{},{}", rfc3339(i), value(i));
        }
    }
    (text, 100 * 1440)
}

fn jsonl() -> (String, u64) {
    let mut text = String::new();
    for s in 0..100 {
        for i in 0..1440 {
            let _ = writeln!(
                text,
                r#"{{"tenant":"acme","cluster":"prod","node":"node-{s:03}","metric":"cpu_usage","timestamp":"{}","value":{}}}"#,
                rfc3339(i),
                value(i)
            );
        }
    }
    (text, 100 * 1440)
}

fn wide_csv() -> (String, u64) {
    let mut text = String::from("timestamp");
    for m in 0..20 {
        let _ = write!(text, ",metric_{m:02}");
    }
    text.push('\n');
    for i in 0..7200 {
        text += &rfc3339(i);
        for m in 0..20 {
            let _ = write!(text, ",{}", value(i + m));
        }
        text.push('\n');
    }
    (text, 20 * 7200)
}

fn nab_csv() -> (String, u64) {
    let mut text = String::from("timestamp,value\n");
    for i in 0..144_000 {
        let _ = writeln!(text, "{},{}", (t0() + TimeDelta::minutes(i)).format("%Y-%m-%d %H:%M:%S"), value(i));
    }
    (text, 144_000)
}

fn parsing(c: &mut Criterion) {
    let named = FileOptions {
        tenant: Some("acme".into()),
        cluster: Some("prod".into()),
        node: Some("node-000".into()),
        ..FileOptions::default()
    };
    let cases = [
        ("long_csv", long_csv(), FileOptions { format: Some(FileFormat::Long), ..FileOptions::default() }),
        ("jsonl", jsonl(), FileOptions { format: Some(FileFormat::Jsonl), ..FileOptions::default() }),
        ("wide_csv", wide_csv(), FileOptions { format: Some(FileFormat::Wide), ..named.clone() }),
        ("nab_csv", nab_csv(), FileOptions { format: Some(FileFormat::Nab), ..named }),
    ];
    let mut g = c.benchmark_group("parse");
    for (name, (text, values), options) in cases {
        let source = FileSource::new(format!("bench.{name}"), options);
        // Every value is read: a bench that silently parses less would measure nothing.
        let read = source.read_from(text.as_bytes(), None, &Selector::all(), &TimeRange::all());
        let n: usize = read.map(|(s, _)| s.iter().map(|s| s.len()).sum()).unwrap_or(0);
        assert_eq!(n as u64, values, "{name}: values read");
        g.throughput(Throughput::Elements(values));
        g.bench_function(name, |b| {
            b.iter(|| {
                black_box(
                    source.read_from(text.as_bytes(), None, &Selector::all(), &TimeRange::all()).map(|(s, _)| s.len()),
                )
            })
        });
    }
    let mut body = String::from(r#"{"status":"success","data":{"resultType":"matrix","result":["#);
    for s in 0..100 {
        if s > 0 {
            body.push(',');
        }
        let _ = write!(
            body,
            r#"{{"metric":{{"__name__":"cpu_usage","tenant":"acme","cluster":"prod","node":"node-{s:03}","job":"node"}},"values":["#
        );
        for i in 0..1440i64 {
            let sep = if i > 0 { "," } else { "" };
            let _ = write!(body, r#"{sep}[{},"{}"]"#, t0().timestamp() + 60 * i, value(i));
        }
        body.push_str("]}");
    }
    body.push_str("]}}");
    let labels = LabelMapping::default();
    let n: usize =
        decode_query_range(body.as_bytes(), &labels, false).map(|d| d.series.values().map(Vec::len).sum()).unwrap_or(0);
    assert_eq!(n, 100 * 1440, "prometheus_decode: samples read");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("prometheus_decode", |b| {
        b.iter(|| black_box(decode_query_range(body.as_bytes(), &labels, false).map(|d| d.series.len())))
    });

    let (text, _) = long_csv();
    let body = text.split_once('\n').map_or("", |(_, b)| b);
    let mut big = String::from("tenant,cluster,node,metric,timestamp,value\n");
    for k in 0..5 {
        big += &body.replace("node-", &format!("node-{k}"));
    }
    let path = std::env::temp_dir().join(format!("analytics-parsing-bench-{}.csv", std::process::id()));
    if std::fs::write(&path, &big).is_ok() {
        let source = FileSource::new(&path, FileOptions::default());
        let n: usize = source
            .read(None, &Selector::all(), &TimeRange::all())
            .map(|(s, _)| s.iter().map(|s| s.len()).sum())
            .unwrap_or(0);
        assert_eq!(n, 500 * 1440, "long_csv_file: values read");
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function("long_csv_file", |b| {
            b.iter(|| black_box(source.read(None, &Selector::all(), &TimeRange::all()).map(|(s, _)| s.len())))
        });
        std::fs::remove_file(&path).ok();
    }
    g.finish();
}

criterion_group!(benches, parsing);
criterion_main!(benches);
