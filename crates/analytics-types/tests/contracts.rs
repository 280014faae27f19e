//! Snapshot tests of every contract's JSON form and every validation error's message,
//! plus property tests that valid values survive a JSON round trip unchanged.

use analytics_types::{
    AggregatedAnomalyScore, AggregationStrategy, AnomalyLabel, AnomalyResult, ContractError, Evidence, Incident,
    IncidentMember, IncidentScope, MetricSeries, SeriesKey,
};
use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;

fn t(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, 14, 0, 0).unwrap() + Duration::minutes(minute)
}

fn key() -> SeriesKey {
    MetricSeries::new("acme", "prod", "node-7", "cpu_usage", vec![], vec![]).unwrap().key()
}

fn evidence() -> Evidence {
    Evidence {
        deviation_sigma: 6.1,
        peak_value: 97.2,
        peak_time: t(5),
        baseline: 41.0,
        sigma: 9.2,
        level_before: 41.5,
        level_after: Some(42.0),
        expected_seasonal: Some(41.0),
        period_seconds: Some(86_400),
        duration_seconds: 180,
        num_points: 3,
        event_start: Some(t(4)),
        level_during: None,
        spread_before: None,
        spread_during: None,
    }
}

fn member(cluster: &str, node: &str, metric: &str, from: i64, to: i64, score: f64) -> IncidentMember {
    IncidentMember {
        key: MetricSeries::new("acme", cluster, node, metric, vec![], vec![]).unwrap().key(),
        start: t(from),
        end: t(to),
        score,
        label: AnomalyLabel::Spike,
        peak_value: Some(1.94),
        baseline: Some(1.04),
        deviation_sigma: Some(11.6),
        decades: None,
    }
}

#[test]
fn incident_json_and_scopes() {
    let cluster = Incident::new(
        vec![
            member("staging", "node-04", "error_rate", 46, 48, 1.0),
            member("staging", "node-05", "request_latency_ms", 46, 49, 0.9),
        ],
        8,
    )
    .unwrap()
    .with_summary("acme/staging: error_rate and request_latency_ms on 2 of 8 nodes".into())
    .unwrap();
    insta::assert_json_snapshot!("incident_cluster", cluster);
    let back: Incident = serde_json::from_str(&serde_json::to_string(&cluster).unwrap()).unwrap();
    assert_eq!(back, cluster);
    assert_eq!((cluster.start(), cluster.end(), cluster.score(), cluster.nodes_affected()), (t(46), t(49), 1.0, 2));
    assert_eq!(cluster.place(), "acme/staging");

    let scope = |members: Vec<IncidentMember>| Incident::new(members, 24).unwrap().scope();
    assert_eq!(scope(vec![member("staging", "node-04", "error_rate", 1, 2, 0.5)]), IncidentScope::Series);
    assert_eq!(
        scope(vec![
            member("staging", "node-04", "error_rate", 1, 2, 0.5),
            member("staging", "node-04", "error_rate", 9, 9, 0.5)
        ]),
        IncidentScope::Series
    );
    assert_eq!(
        scope(vec![
            member("staging", "node-04", "error_rate", 1, 2, 0.5),
            member("staging", "node-04", "cpu_usage", 1, 2, 0.5)
        ]),
        IncidentScope::Node
    );
    assert_eq!(
        scope(vec![
            member("staging", "node-04", "error_rate", 1, 2, 0.5),
            member("prod", "node-04", "error_rate", 1, 2, 0.5)
        ]),
        IncidentScope::Tenant
    );
}

#[test]
fn incident_errors() {
    let one = || vec![member("staging", "node-04", "error_rate", 46, 48, 1.0)];
    let other_tenant = IncidentMember {
        key: MetricSeries::new("globex", "staging", "node-01", "error_rate", vec![], vec![]).unwrap().key(),
        ..member("staging", "node-01", "error_rate", 46, 48, 1.0)
    };
    let json = serde_json::to_string(&Incident::new(one(), 8).unwrap()).unwrap();
    let messages = vec![
        ("no member", Incident::new(vec![], 8).unwrap_err().to_string()),
        ("two tenants", Incident::new(vec![one().remove(0), other_tenant], 8).unwrap_err().to_string()),
        ("fewer nodes in scope", Incident::new(one(), 0).unwrap_err().to_string()),
        (
            "member score",
            Incident::new(vec![member("staging", "node-04", "error_rate", 1, 2, 1.5)], 8).unwrap_err().to_string(),
        ),
        (
            "member reversed",
            Incident::new(vec![member("staging", "node-04", "error_rate", 3, 2, 0.5)], 8).unwrap_err().to_string(),
        ),
        ("empty summary", Incident::new(one(), 8).unwrap().with_summary(" ".into()).unwrap_err().to_string()),
        ("json scope", refused::<Incident>(&json.replace(r#""scope":"series""#, r#""scope":"cluster""#))),
        ("json start", refused::<Incident>(&json.replacen("14:46:00Z", "14:40:00Z", 1))),
        (
            "json score",
            refused::<Incident>(&json.replace(r#""score":1.0,"nodes_affected""#, r#""score":0.5,"nodes_affected""#)),
        ),
    ];
    insta::assert_debug_snapshot!(messages);
}

/// One place that checks "this JSON is refused, with this message".
fn refused<T: serde::de::DeserializeOwned + std::fmt::Debug>(json: &str) -> String {
    serde_json::from_str::<T>(json).unwrap_err().to_string()
}

#[test]
fn metric_series_json() {
    let s = MetricSeries::new("acme", "prod", "node-7", "cpu_usage", vec![t(0), t(1), t(2)], vec![41.0, 42.5, 97.2])
        .unwrap();
    insta::assert_json_snapshot!(s);
    let back: MetricSeries = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
    assert_eq!(back, s);
}

#[test]
fn anomaly_result_json_minimal_and_full() {
    let minimal = AnomalyResult::new(key(), t(5), t(7), 0.98, AnomalyLabel::Spike).unwrap();
    insta::assert_json_snapshot!("anomaly_result_minimal", minimal);
    let full = minimal
        .clone()
        .with_engine("robust_zscore")
        .with_explanation("cpu_usage on node-7 spiked")
        .with_evidence(evidence())
        .unwrap()
        .with_decades(23.4)
        .unwrap();
    insta::assert_json_snapshot!("anomaly_result_full", full);
    // Old JSON (no optional fields) still parses.
    let old = r#"{"tenant_id":"acme","cluster_id":"prod","node_id":"node-7","metric_name":"cpu_usage",
        "window_start":"2024-03-01T14:05:00Z","window_end":"2024-03-01T14:07:00Z",
        "anomaly_score":0.98,"anomaly_label":"spike"}"#;
    assert_eq!(serde_json::from_str::<AnomalyResult>(old).unwrap(), minimal);
}

/// The evidence of the labels added later: a variance change carries the level it kept and the
/// spreads before and during; a non-finite spread is refused by name; evidence without the
/// three fields (written before them) parses as it did.
#[test]
fn variance_change_evidence_json() {
    let spread =
        Evidence { level_during: Some(40.3), spread_before: Some(1.5), spread_during: Some(6.2), ..evidence() };
    let result = AnomalyResult::new(key(), t(5), t(65), 1.0, AnomalyLabel::VarianceChange)
        .unwrap()
        .with_evidence(spread.clone())
        .unwrap();
    insta::assert_json_snapshot!("anomaly_result_variance_change", result);
    let back: AnomalyResult = serde_json::from_str(&serde_json::to_string(&result).unwrap()).unwrap();
    assert_eq!(back, result);
    let err = AnomalyResult::new(key(), t(5), t(65), 1.0, AnomalyLabel::VarianceChange)
        .unwrap()
        .with_evidence(Evidence { spread_during: Some(f64::NAN), ..spread })
        .unwrap_err();
    assert!(err.to_string().contains("spread_during"), "{err}");
    let old = serde_json::to_value(evidence()).unwrap();
    assert!(old.get("level_during").is_none() && old.get("spread_before").is_none());
    assert_eq!(serde_json::from_value::<Evidence>(old).unwrap(), evidence());
    assert_eq!("level_shift".parse::<AnomalyLabel>().unwrap(), AnomalyLabel::LevelShift);
    assert_eq!(AnomalyLabel::VarianceChange.to_string(), "variance change");
}

#[test]
fn aggregated_score_json_each_level() {
    let levels = [
        AggregatedAnomalyScore::new("acme", None, None, AggregationStrategy::Max, 0.97, 144, 3)
            .unwrap()
            .with_decades(9.7)
            .unwrap(),
        AggregatedAnomalyScore::new("acme", Some("prod"), None, AggregationStrategy::P95, 0.9, 48, 2).unwrap(),
        AggregatedAnomalyScore::new("acme", Some("prod"), Some("node-7"), AggregationStrategy::Weighted, 0.5, 6, 1)
            .unwrap(),
    ];
    insta::assert_json_snapshot!(levels);
}

#[test]
fn labels_and_strategies_json() {
    insta::assert_json_snapshot!((AnomalyLabel::ALL, AggregationStrategy::ALL));
}

#[test]
fn series_errors_from_rust() {
    let mk = |ts: Vec<DateTime<Utc>>, vs: Vec<f64>| {
        MetricSeries::new("acme", "prod", "node-7", "cpu_usage", ts, vs).unwrap_err().to_string()
    };
    let id = |tenant: &str| {
        MetricSeries::new(tenant, "prod", "node-7", "cpu_usage", vec![], vec![]).unwrap_err().to_string()
    };
    let messages = vec![
        ("unsorted", mk(vec![t(0), t(2), t(1)], vec![1.0, 2.0, 3.0])),
        ("duplicate", mk(vec![t(0), t(1), t(1)], vec![1.0, 2.0, 3.0])),
        ("lengths", mk(vec![t(0), t(1)], vec![1.0])),
        ("nan", mk(vec![t(0), t(1)], vec![1.0, f64::NAN])),
        ("infinite", mk(vec![t(0)], vec![f64::NEG_INFINITY])),
        ("empty tenant", id("")),
        ("control char", id("ac\u{7}me")),
    ];
    insta::assert_debug_snapshot!(messages);
}

#[test]
fn result_and_aggregate_errors_from_rust() {
    let score = |s: f64| AnomalyResult::new(key(), t(0), t(1), s, AnomalyLabel::Spike).unwrap_err().to_string();
    let messages = vec![
        ("score 1.5", score(1.5)),
        ("score NaN", score(f64::NAN)),
        ("score -0.1", score(-0.1)),
        ("reversed window", AnomalyResult::new(key(), t(2), t(1), 0.5, AnomalyLabel::Trend).unwrap_err().to_string()),
        (
            "node without cluster",
            AggregatedAnomalyScore::new("acme", None, Some("node-7"), AggregationStrategy::Max, 0.5, 1, 0)
                .unwrap_err()
                .to_string(),
        ),
        (
            "aggregate score 1.5",
            AggregatedAnomalyScore::new("acme", None, None, AggregationStrategy::Max, 1.5, 1, 0)
                .unwrap_err()
                .to_string(),
        ),
        (
            "negative decades",
            AnomalyResult::new(key(), t(0), t(1), 0.5, AnomalyLabel::Spike)
                .unwrap()
                .with_decades(-1.0)
                .unwrap_err()
                .to_string(),
        ),
        (
            "aggregate decades NaN",
            AggregatedAnomalyScore::new("acme", None, None, AggregationStrategy::Max, 0.5, 1, 0)
                .unwrap()
                .with_decades(f64::NAN)
                .unwrap_err()
                .to_string(),
        ),
        (
            "non-finite evidence",
            AnomalyResult::new(key(), t(0), t(1), 0.5, AnomalyLabel::Spike)
                .unwrap()
                .with_evidence(Evidence { sigma: f64::INFINITY, ..evidence() })
                .unwrap_err()
                .to_string(),
        ),
    ];
    insta::assert_debug_snapshot!(messages);
}

#[test]
fn errors_from_json() {
    const SERIES: &str = r#"{"tenant_id":"acme","cluster_id":"prod","node_id":"node-7","metric_name":"cpu_usage","#;
    let messages = vec![
        (
            "unsorted",
            refused::<MetricSeries>(&format!(
                r#"{SERIES}"timestamps":["2024-03-01T14:02:00Z","2024-03-01T14:01:00Z"],"values":[1,2]}}"#
            )),
        ),
        (
            "duplicate",
            refused::<MetricSeries>(&format!(
                r#"{SERIES}"timestamps":["2024-03-01T14:01:00Z","2024-03-01T14:01:00Z"],"values":[1,2]}}"#
            )),
        ),
        (
            "lengths",
            refused::<MetricSeries>(&format!(r#"{SERIES}"timestamps":["2024-03-01T14:01:00Z"],"values":[1,2]}}"#)),
        ),
        (
            "empty tenant",
            refused::<MetricSeries>(
                r#"{"tenant_id":"","cluster_id":"prod","node_id":"n","metric_name":"m","timestamps":[],"values":[]}"#,
            ),
        ),
        (
            "score 1.5",
            refused::<AnomalyResult>(
                r#"{"tenant_id":"acme","cluster_id":"prod","node_id":"node-7","metric_name":"cpu_usage",
                "window_start":"2024-03-01T14:05:00Z","window_end":"2024-03-01T14:07:00Z",
                "anomaly_score":1.5,"anomaly_label":"spike"}"#,
            ),
        ),
        (
            "unknown label",
            refused::<AnomalyResult>(
                r#"{"tenant_id":"acme","cluster_id":"prod","node_id":"node-7","metric_name":"cpu_usage",
                "window_start":"2024-03-01T14:05:00Z","window_end":"2024-03-01T14:07:00Z",
                "anomaly_score":0.5,"anomaly_label":"blip"}"#,
            ),
        ),
        (
            "node without cluster",
            refused::<AggregatedAnomalyScore>(
                r#"{"tenant_id":"acme","node_id":"node-7","aggregation_strategy":"max",
                "aggregate_score":0.5,"num_metrics_analyzed":1,"num_anomalies_detected":0}"#,
            ),
        ),
        (
            "aggregate score -1",
            refused::<AggregatedAnomalyScore>(
                r#"{"tenant_id":"acme","aggregation_strategy":"max",
                "aggregate_score":-1,"num_metrics_analyzed":1,"num_anomalies_detected":0}"#,
            ),
        ),
    ];
    insta::assert_debug_snapshot!(messages);
}

#[test]
fn nan_cannot_be_smuggled_through_json() {
    // JSON has no NaN literal: serde_json refuses it before our checks run, and a
    // NaN score built in Rust is refused by our checks (see result_and_aggregate_errors_from_rust).
    let json = r#"{"tenant_id":"acme","cluster_id":"prod","node_id":"node-7","metric_name":"cpu_usage",
        "window_start":"2024-03-01T14:05:00Z","window_end":"2024-03-01T14:07:00Z",
        "anomaly_score":NaN,"anomaly_label":"spike"}"#;
    assert!(serde_json::from_str::<AnomalyResult>(json).is_err());
}

#[test]
fn error_variants_carry_fields() {
    let err = MetricSeries::new("a", "b", "c", "d", vec![t(0), t(1)], vec![1.0, f64::NAN]).unwrap_err();
    assert!(matches!(err, ContractError::NonFiniteValue { index: 1, value } if value.is_nan()));
}

fn arb_id() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_.-]{0,12}"
}

fn arb_series() -> impl Strategy<Value = MetricSeries> {
    (arb_id(), arb_id(), arb_id(), arb_id(), prop::collection::vec((1i64..100_000, -1e12f64..1e12), 0..40)).prop_map(
        |(tn, cl, nd, mt, steps)| {
            let mut at = Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap();
            let (mut ts, mut vs) = (vec![], vec![]);
            for (step, v) in steps {
                at += Duration::milliseconds(step);
                ts.push(at);
                vs.push(v);
            }
            MetricSeries::new(tn, cl, nd, mt, ts, vs).unwrap()
        },
    )
}

proptest! {
    #[test]
    fn series_round_trips(series in arb_series()) {
        let json = serde_json::to_string(&series).unwrap();
        let back: MetricSeries = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, series);
    }

    #[test]
    fn result_round_trips(
        series in arb_series(),
        score in 0.0f64..=1.0,
        label in prop::sample::select(AnomalyLabel::ALL.to_vec()),
        start in 0i64..10_000,
        len in 0i64..10_000,
        with_evidence in any::<bool>(),
    ) {
        let mut r = AnomalyResult::new(series.key(), t(start), t(start + len), score, label).unwrap()
            .with_engine("robust_zscore");
        if with_evidence {
            r = r.with_evidence(evidence()).unwrap();
        }
        let back: AnomalyResult = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        prop_assert_eq!(back, r);
    }

    #[test]
    fn aggregate_round_trips(
        tenant in arb_id(), cluster in prop::option::of(arb_id()), node in arb_id(), has_node in any::<bool>(),
        strategy in prop::sample::select(AggregationStrategy::ALL.to_vec()),
        score in 0.0f64..=1.0, metrics in 0usize..1000, anomalies in 0usize..1000,
    ) {
        let node = if has_node && cluster.is_some() { Some(node.as_str()) } else { None };
        let a = AggregatedAnomalyScore::new(&tenant, cluster.as_deref(), node, strategy, score, metrics, anomalies).unwrap();
        let back: AggregatedAnomalyScore = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        prop_assert_eq!(back, a);
    }
}

#[test]
fn benchmark_errors_from_rust() {
    use analytics_types::benchmark::{Interpretation, NabFile, NodeData, NodeParts};
    let nab = |vs: Vec<f64>, windows: Vec<(usize, usize)>| {
        let ts = (0..vs.len() as i64).map(t).collect();
        NabFile::new("realTraffic/speed_6005.csv", ts, vs, windows).unwrap_err().to_string()
    };
    let node = |labels: Vec<bool>, segment: (usize, usize, usize)| {
        NodeData::new(NodeParts {
            name: "omi-1".into(),
            metrics: vec!["m1".into()],
            test_timestamps: vec![t(0), t(1)],
            test: vec![vec![1.0, 2.0]],
            train: vec![vec![]],
            labels,
            interpretations: Some(vec![Interpretation { start: segment.0, end: segment.1, metrics: vec![segment.2] }]),
            ..NodeParts::default()
        })
        .unwrap_err()
        .to_string()
    };
    let messages = vec![
        ("nab value", nab(vec![1.0, f64::INFINITY], vec![])),
        ("nab window", nab(vec![1.0, 2.0], vec![(1, 2)])),
        ("node labels", node(vec![false], (0, 0, 0))),
        ("node segment", node(vec![false, true], (1, 2, 0))),
        ("node metric", node(vec![false, true], (1, 1, 3))),
    ];
    insta::assert_debug_snapshot!(messages);
}
