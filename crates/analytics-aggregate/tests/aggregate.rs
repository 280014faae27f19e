//! Roll-ups by hand, the top-N order, tenant isolation (property test), and the pipeline's
//! determinism across thread counts.

use analytics_aggregate::{combine, roll_up, summarise, top_n, AggregateConfig, FleetPipeline};
use analytics_engine::EngineRegistry;
use analytics_sim::{simulate_fleet, FleetConfig};
use analytics_types::{AggregatedAnomalyScore, AggregationStrategy, AnomalyLabel, AnomalyResult, MetricSeries};
use chrono::{TimeZone, Utc};
use proptest::prelude::*;

fn result(tenant: &str, cluster: &str, node: &str, metric: &str, score: f64) -> AnomalyResult {
    let t = Utc.with_ymd_and_hms(2024, 3, 1, 14, 0, 0).unwrap();
    let key = MetricSeries::new(tenant, cluster, node, metric, vec![], vec![]).unwrap().key();
    let label = if score >= 0.9 { AnomalyLabel::Spike } else { AnomalyLabel::Normal };
    AnomalyResult::new(key, t, t, score, label).unwrap()
}

fn cfg(strategy: AggregationStrategy) -> AggregateConfig {
    AggregateConfig { strategy, ..Default::default() }
}

#[test]
fn strategies_by_hand() {
    let s = [(0.1, 1.0), (0.5, 1.0), (0.9, 2.0), (0.3, 0.0)];
    assert_eq!(combine(AggregationStrategy::Max, &s), 0.9);
    assert!((combine(AggregationStrategy::Mean, &s) - 0.45).abs() < 1e-12);
    // (0.1 + 0.5 + 1.8 + 0) / 4
    assert!((combine(AggregationStrategy::Weighted, &s) - 0.6).abs() < 1e-12);
    // sorted 0.1 0.3 0.5 0.9, position 0.95 * 3 = 2.85: 0.5 + 0.85 * 0.4
    assert!((combine(AggregationStrategy::P95, &s) - 0.84).abs() < 1e-12);
    assert_eq!(combine(AggregationStrategy::Max, &[]), 0.0);
}

#[test]
fn weighted_roll_up_through_every_level() {
    let results = vec![
        result("acme", "c1", "n1", "cpu", 0.9),
        result("acme", "c1", "n1", "mem", 0.3),
        result("acme", "c1", "n2", "cpu", 0.6),
        result("acme", "c2", "n1", "cpu", 0.0),
    ];
    let mut config = cfg(AggregationStrategy::Weighted);
    config.weights.insert("cpu".into(), 3.0);
    let r = roll_up(&summarise(&results), &config).unwrap();
    // n1: (0.9*3 + 0.3*1) / 4 = 0.75, weight 4; n2: 0.6, weight 3.
    assert!((r.nodes[0].aggregate_score() - 0.75).abs() < 1e-12);
    // c1: (0.75*4 + 0.6*3) / 7; c2: 0 with weight 3.
    let c1 = (0.75 * 4.0 + 0.6 * 3.0) / 7.0;
    assert!((r.clusters[0].aggregate_score() - c1).abs() < 1e-12);
    assert!((r.tenants[0].aggregate_score() - c1 * 7.0 / 10.0).abs() < 1e-12);
    assert_eq!((r.tenants[0].num_metrics_analyzed(), r.tenants[0].num_anomalies_detected()), (4, 1));
    assert_eq!(r.clusters[0].node_id(), None);
    assert_eq!(r.nodes[2].cluster_id().map(|c| c.as_str()), Some("c2"));
}

#[test]
fn bad_weights_are_refused() {
    let mut config = cfg(AggregationStrategy::Weighted);
    config.weights.insert("cpu".into(), -1.0);
    let err = roll_up(&[], &config).unwrap_err();
    assert_eq!(err.to_string(), r#"weight for metric "cpu" is -1; weights must be finite and non-negative"#);
}

#[test]
fn top_n_breaks_ties_by_id() {
    let node = |t: &str, c: &str, n: &str, s: f64| {
        AggregatedAnomalyScore::new(t, Some(c), Some(n), AggregationStrategy::Max, s, 1, 0).unwrap()
    };
    let nodes = vec![
        node("b", "c", "n1", 0.5),
        node("a", "c", "n2", 0.5),
        node("a", "c", "n1", 0.5),
        node("z", "c", "n9", 0.9),
    ];
    let order: Vec<String> =
        top_n(&nodes, 3).iter().map(|n| format!("{}/{}", n.tenant_id(), n.node_id().unwrap())).collect();
    assert_eq!(order, ["z/n9", "a/n1", "a/n2"]);
    // Equal scores: more anomalous windows first; full ties by id.
    let node_with = |t: &str, n: &str, anomalies| {
        AggregatedAnomalyScore::new(t, Some("c"), Some(n), AggregationStrategy::Max, 1.0, 6, anomalies).unwrap()
    };
    let tied = vec![node_with("a", "n1", 0), node_with("b", "n7", 3), node_with("a", "n2", 3)];
    let order: Vec<String> =
        top_n(&tied, 3).iter().map(|n| format!("{}/{}", n.tenant_id(), n.node_id().unwrap())).collect();
    assert_eq!(order, ["a/n2", "b/n7", "a/n1"]);
}

fn small_fleet() -> Vec<MetricSeries> {
    let cfg = FleetConfig {
        tenants: 2,
        clusters_per_tenant: 2,
        nodes_per_cluster: 4,
        metrics: 4,
        points: 1440,
        ..Default::default()
    };
    simulate_fleet(&cfg).unwrap().series
}

#[test]
fn output_is_byte_identical_with_one_and_four_threads() {
    let series = small_fleet();
    let engine = EngineRegistry::with_builtins().build("robust_zscore", &serde_json::json!({})).unwrap();
    let run = |threads| {
        let report = FleetPipeline::new(engine.as_ref()).threads(Some(threads)).run(&series, &|_, _| {}).unwrap();
        serde_json::to_string(&report).unwrap()
    };
    let one = run(1);
    assert_eq!(one, run(4));
    assert!(one.len() > 10_000);
    // The timed run finds the same, and times both of its stages.
    let (timed, stages) = FleetPipeline::new(engine.as_ref()).threads(Some(1)).run_timed(&series, &|_, _| {}).unwrap();
    assert_eq!(serde_json::to_string(&timed).unwrap(), one);
    assert!(stages.detect > 0.0 && stages.aggregate > 0.0, "{stages:?}");
}

#[test]
fn progress_counts_every_node_and_duplicates_are_refused() {
    let series = small_fleet();
    let engine = EngineRegistry::with_builtins().build("robust_zscore", &serde_json::json!({})).unwrap();
    let seen = std::sync::Mutex::new(vec![]);
    let report = FleetPipeline::new(engine.as_ref())
        .run(&series, &|done, total| seen.lock().unwrap().push((done, total)))
        .unwrap();
    let mut seen = seen.into_inner().unwrap();
    seen.sort();
    assert_eq!(seen, (1..=16).map(|d| (d, 16)).collect::<Vec<_>>());
    assert_eq!(report.rollup.nodes.len(), 16);
    assert_eq!(report.top_nodes.len(), 10);
    assert!(report.top_nodes[0].explanation.contains("scores"));

    let mut twice = series.clone();
    twice.push(series[5].clone());
    let err = FleetPipeline::new(engine.as_ref()).run(&twice, &|_, _| {}).unwrap_err();
    assert_eq!(err.to_string(), format!("series {} appears more than once in the input", series[5].key()));
}

fn arb_results(tenant: &'static str) -> impl Strategy<Value = Vec<AnomalyResult>> {
    prop::collection::vec((0usize..2, 0usize..3, 0usize..3, 0.0f64..=1.0), 1..30).prop_map(move |v| {
        v.into_iter()
            .map(|(c, n, m, s)| result(tenant, &format!("c{c}"), &format!("n{n}"), &format!("m{m}"), s))
            .collect()
    })
}

proptest! {
    /// Tenant A's aggregates depend on tenant A's results only, whatever tenant B holds, even
    /// with the same cluster, node and metric names.
    #[test]
    fn tenants_never_mix(
        a in arb_results("tenant-a"),
        b1 in arb_results("tenant-b"),
        b2 in arb_results("tenant-b"),
        strategy in prop::sample::select(AggregationStrategy::ALL.to_vec()),
    ) {
        let only_a = roll_up(&summarise(&a), &cfg(strategy)).unwrap();
        for b in [b1, b2] {
            let mixed: Vec<AnomalyResult> = a.iter().chain(&b).cloned().collect();
            let r = roll_up(&summarise(&mixed), &cfg(strategy)).unwrap();
            let of_a = |v: &[AggregatedAnomalyScore]| v.iter().filter(|x| x.tenant_id().as_str() == "tenant-a").cloned().collect::<Vec<_>>();
            prop_assert_eq!(of_a(&r.nodes), only_a.nodes.clone());
            prop_assert_eq!(of_a(&r.clusters), only_a.clusters.clone());
            prop_assert_eq!(of_a(&r.tenants), only_a.tenants.clone());
        }
    }
}

/// The streaming path over node batches gives the same roll-ups, ranking and anomalies as the
/// whole-fleet path.
#[test]
fn streaming_batches_agree_with_the_whole_fleet() {
    let series = small_fleet();
    let engine = EngineRegistry::with_builtins().build("default", &serde_json::json!({})).unwrap();
    let whole = FleetPipeline::new(engine.as_ref()).run(&series, &|_, _| {}).unwrap();
    // Batches of 3 whole nodes (4 metrics each).
    let batches: Vec<Result<Vec<MetricSeries>, analytics_aggregate::AggregateError>> =
        series.chunks(12).map(|c| Ok(c.to_vec())).collect();
    let seen = std::sync::Mutex::new(vec![]);
    let streamed = FleetPipeline::new(engine.as_ref()).run_batches(batches, &|n| seen.lock().unwrap().push(n)).unwrap();
    assert_eq!(streamed.rollup, whole.rollup);
    assert_eq!(streamed.top_nodes, whole.top_nodes);
    assert_eq!(streamed.metrics, whole.metrics);
    let anomalous: Vec<_> = whole.results.iter().filter(|r| r.is_anomaly()).cloned().collect();
    assert_eq!(streamed.results, anomalous);
    let want: Vec<usize> = (1..=series.len().div_ceil(12)).map(|b| (b * 12).min(series.len())).collect();
    assert_eq!(seen.into_inner().unwrap(), want);
    // A series given in two batches is refused.
    let dup: Vec<Result<Vec<MetricSeries>, analytics_aggregate::AggregateError>> =
        vec![Ok(series[..12].to_vec()), Ok(series[..4].to_vec())];
    assert!(FleetPipeline::new(engine.as_ref()).run_batches(dup, &|_| {}).is_err());
}
