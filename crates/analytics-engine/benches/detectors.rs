//! Throughput of every engine on one core: points per second through the streaming path
//! (`stream().update`, what the fleet pipeline and `analytics eval` use) and the batch path
//! (`score`, which also runs the alarm rule).
//!
//! Data shapes: one simulated `cpu_usage` series (daily cycle, noise, one injected anomaly) of
//! 1,000, 10,000 and 100,000 one-minute points. Criterion runs on one thread; the figures are
//! per core. The `detector/100000` group times four detectors alone (no calibration, rest
//! period or alarm rule; the default ensemble calibrates its members itself, so its figure
//! includes that). Run with `cargo bench -p analytics-engine --bench detectors`.

use std::hint::black_box;

use analytics_engine::{
    Density, DensityConfig, Detector, EngineRegistry, Ensemble, EnsembleConfig, RobustZ, RobustZConfig, Seasonal,
    SeasonalConfig,
};
use analytics_sim::{simulate_fleet, FleetConfig};
use analytics_types::MetricSeries;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn series(points: usize) -> MetricSeries {
    let cfg = FleetConfig {
        tenants: 1,
        clusters_per_tenant: 1,
        nodes_per_cluster: 1,
        metrics: 1,
        points,
        anomaly_probability: 1.0,
        ..FleetConfig::default()
    };
    simulate_fleet(&cfg).map(|f| f.series[0].clone()).unwrap_or_else(|e| panic!("simulator: {e}"))
}

fn engines(c: &mut Criterion) {
    let registry = EngineRegistry::with_builtins();
    let names: Vec<String> = registry.list().into_iter().map(|e| e.name).collect();
    for points in [1_000usize, 10_000, 100_000] {
        let s = series(points);
        let mut group = c.benchmark_group(format!("stream/{points}"));
        group.throughput(Throughput::Elements(points as u64));
        if points == 100_000 {
            group.sample_size(10);
        }
        for name in &names {
            let engine = registry.build(name, &serde_json::json!({})).unwrap_or_else(|e| panic!("{name}: {e}"));
            group.bench_with_input(BenchmarkId::from_parameter(name), &s, |b, s| {
                b.iter(|| {
                    let mut stream = engine.stream();
                    let mut last = 0.0;
                    for (&t, &x) in s.timestamps().iter().zip(s.values()) {
                        last = stream.update(t, x).0;
                    }
                    black_box(last)
                })
            });
        }
        group.finish();
    }
    // The raw detectors alone (no calibration, rest period or alarm rule): what the detector's
    // own arithmetic costs, apart from what every engine adds.
    let s = series(100_000);
    let mut group = c.benchmark_group("detector/100000");
    group.throughput(Throughput::Elements(100_000));
    group.sample_size(10);
    let detectors: Vec<Box<dyn Detector>> = vec![
        Box::new(RobustZ::new(RobustZConfig::default()).unwrap_or_else(|e| panic!("{e}"))),
        Box::new(Density::new(DensityConfig::default()).unwrap_or_else(|e| panic!("{e}"))),
        Box::new(Seasonal::new(SeasonalConfig::default()).unwrap_or_else(|e| panic!("{e}"))),
        Box::new(Ensemble::new(EnsembleConfig::default()).unwrap_or_else(|e| panic!("{e}"))),
    ];
    for d in &detectors {
        group.bench_with_input(BenchmarkId::from_parameter(d.name()), &s, |b, s| {
            b.iter(|| {
                let mut state = d.start();
                let mut last = None;
                for (&t, &x) in s.timestamps().iter().zip(s.values()) {
                    last = state.update(t, x);
                }
                black_box(last)
            })
        });
    }
    group.finish();
    let s = series(10_000);
    let mut group = c.benchmark_group("batch/10000");
    group.throughput(Throughput::Elements(10_000));
    for name in &names {
        let engine = registry.build(name, &serde_json::json!({})).unwrap_or_else(|e| panic!("{name}: {e}"));
        group.bench_with_input(BenchmarkId::from_parameter(name), &s, |b, s| b.iter(|| black_box(engine.score(s))));
    }
    group.finish();
}

criterion_group!(benches, engines);
criterion_main!(benches);
