//! Roll-up throughput of each aggregation strategy over 10,000 nodes (6 metrics each, 4
//! tenants x 25 clusters x 100 nodes), counted in metric summaries per second. Run with
//! `cargo bench -p analytics-aggregate`.

use std::hint::black_box;

use analytics_aggregate::{roll_up, top_n, AggregateConfig, MetricSummary};
use analytics_types::{AggregationStrategy, MetricSeries};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn summaries() -> Vec<MetricSummary> {
    let mut out = Vec::new();
    for t in 0..4 {
        for c in 0..25 {
            for n in 0..100 {
                for m in 0..6 {
                    let key = MetricSeries::new(
                        format!("t{t}"),
                        format!("c{c:02}"),
                        format!("n{n:03}"),
                        format!("m{m}"),
                        vec![],
                        vec![],
                    )
                    .unwrap_or_else(|e| panic!("{e}"))
                    .key();
                    let score = ((t * 31 + c * 7 + n * 13 + m * 3) % 100) as f64 / 100.0;
                    out.push(MetricSummary {
                        key,
                        score,
                        decades: None,
                        anomalies: usize::from(score > 0.9),
                        worst: None,
                    });
                }
            }
        }
    }
    out
}

fn strategies(c: &mut Criterion) {
    let s = summaries();
    let mut g = c.benchmark_group("rollup/10000_nodes");
    g.throughput(Throughput::Elements(s.len() as u64));
    for strategy in AggregationStrategy::ALL {
        let mut cfg = AggregateConfig { strategy, ..Default::default() };
        cfg.weights.insert("m0".into(), 3.0);
        g.bench_with_input(BenchmarkId::from_parameter(strategy.as_str()), &s, |b, s| {
            b.iter(|| {
                let r = roll_up(s, &cfg).unwrap_or_else(|e| panic!("{e}"));
                black_box(top_n(&r.nodes, 10))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, strategies);
criterion_main!(benches);
