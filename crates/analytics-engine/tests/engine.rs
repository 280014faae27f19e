//! The robust z-score engine on series whose answer is known, its streaming/batch agreement,
//! its causality, the registry's errors, and its event-level accuracy on a simulated fleet.

use analytics_engine::{AnomalyDetectionEngine, EngineRegistry};
use analytics_sim::{simulate_fleet, FleetConfig};
use analytics_types::{AnomalyLabel, AnomalyResult, MetricSeries};
use chrono::{Duration, TimeZone, Utc};
use serde_json::json;

fn engine() -> Box<dyn AnomalyDetectionEngine> {
    EngineRegistry::with_builtins().build("robust_zscore", &json!({})).unwrap()
}

/// A series of `n` one-minute points from `f`, with deterministic pseudo-noise of std ~1.
fn series(n: usize, f: impl Fn(usize) -> f64) -> MetricSeries {
    let t0 = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap();
    let ts = (0..n).map(|i| t0 + Duration::minutes(i as i64)).collect();
    let vs = (0..n).map(|i| f(i) + noise(i)).collect();
    MetricSeries::new("acme", "prod", "node-7", "cpu_usage", ts, vs).unwrap()
}

fn noise(i: usize) -> f64 {
    // Sum of three hashed uniforms: roughly normal, deterministic.
    (0..3).map(|k| ((i * 2_654_435_761 + k * 40_503) % 10_007) as f64 / 10_007.0 - 0.5).sum::<f64>() * 2.0
}

#[test]
fn spike_of_known_size_is_found_at_its_index() {
    let s = series(1000, |i| if i == 700 { 50.0 + 12.0 } else { 50.0 });
    let scores = engine().score(&s);
    assert_eq!(scores.events, vec![700..701]);
    assert!(scores.calibrated[700] > 0.5);
    let results = engine().detect(&s).unwrap();
    let hits: Vec<_> = results.iter().filter(|r| r.is_anomaly()).collect();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].anomaly_label(), AnomalyLabel::Spike);
    assert_eq!(hits[0].window_start(), s.timestamps()[660]); // 11:00, the window holding 11:40
    let ev = hits[0].evidence().unwrap();
    assert!((ev.deviation_sigma - 12.0 / 1.0).abs() < 4.0, "deviation {}", ev.deviation_sigma);
}

#[test]
fn a_clean_sine_gives_no_alarm() {
    let s = series(3 * 1440, |i| 50.0 + 20.0 * (std::f64::consts::TAU * i as f64 / 1440.0).sin());
    let scores = engine().score(&s);
    assert_eq!(scores.events, vec![], "alarms on a clean sine");
    assert!(engine().detect(&s).unwrap().iter().all(|r| !r.is_anomaly()));
}

#[test]
fn a_level_shift_is_found_within_k_points() {
    let s = series(1200, |i| if i >= 800 { 60.0 } else { 50.0 });
    let scores = engine().score(&s);
    let first = scores.events.first().expect("no event").start;
    assert!((800..=803).contains(&first), "found at {first}");
    let results = engine().detect(&s).unwrap();
    let labels: Vec<_> = results.iter().filter(|r| r.is_anomaly()).map(|r| r.anomaly_label()).collect();
    assert!(labels.contains(&AnomalyLabel::LevelShift), "{labels:?}");
}

#[test]
fn streaming_and_batch_agree() {
    let s = series(3000, |i| 50.0 + 20.0 * (i as f64 / 300.0).sin() + if i % 997 == 0 { 15.0 } else { 0.0 });
    let e = engine();
    let batch = e.score(&s);
    let mut stream = e.stream();
    let mut events = vec![];
    for (i, (&t, &x)) in s.timestamps().iter().zip(s.values()).enumerate() {
        let (score, closed) = stream.update(t, x);
        assert!((score - batch.calibrated[i]).abs() <= 1e-9, "at {i}: {score} vs {}", batch.calibrated[i]);
        events.extend(closed);
    }
    events.extend(stream.finish());
    assert_eq!(events, batch.events);
    assert!(stream.state_bytes() < 4096, "{} bytes of state", stream.state_bytes());
}

#[test]
fn scores_are_causal() {
    let s = series(2000, |i| 50.0 + 10.0 * (i as f64 / 100.0).sin() + if i == 1500 { 30.0 } else { 0.0 });
    let full = engine().score(&s);
    for k in [1, 31, 100, 257, 1000, 1499, 1500, 1501] {
        let (key, ts, vs) = s.clone().into_parts();
        let cut = MetricSeries::from_key(key, ts[..k].to_vec(), vs[..k].to_vec()).unwrap();
        assert_eq!(engine().score(&cut).calibrated, full.calibrated[..k], "cut at {k}");
    }
}

#[test]
fn explain_reproduces_the_detect_sentence() {
    let s = series(1000, |i| if (600..603).contains(&i) { 70.0 } else { 50.0 });
    let e = engine();
    let hit = e.detect(&s).unwrap().into_iter().find(|r| r.is_anomaly()).unwrap();
    assert_eq!(e.explain(&s, &hit).unwrap(), hit.explanation().unwrap());
    // A result written before events were recorded (no event start) is explained the same, by
    // scoring the series again to find its event.
    let evidence = analytics_types::Evidence { event_start: None, ..hit.evidence().unwrap().clone() };
    let old =
        AnomalyResult::new(hit.key(), hit.window_start(), hit.window_end(), hit.anomaly_score(), hit.anomaly_label())
            .unwrap()
            .with_evidence(evidence)
            .unwrap();
    assert_eq!(e.explain(&s, &old).unwrap(), hit.explanation().unwrap());
    let other = MetricSeries::new("acme", "prod", "node-8", "cpu_usage", vec![], vec![]).unwrap();
    assert!(e.explain(&other, &hit).unwrap_err().to_string().contains("not for series"));
}

#[test]
fn short_and_empty_series_are_normal() {
    for n in [0, 1, 10, 31] {
        let results = engine().detect(&series(n, |_| 1.0)).unwrap();
        assert!(results.iter().all(|r| !r.is_anomaly() && r.anomaly_score() == 0.0));
    }
}

#[test]
fn registry_errors_name_the_engine_and_field() {
    let r = EngineRegistry::with_builtins();
    let err = r.build("nope", &json!({})).unwrap_err().to_string();
    assert_eq!(
        err,
        r#"unknown engine "nope"; known engines: context_novelty, cusum, default, holt_winters, isolation_forest, lag_change, robust_zscore, seasonal_baseline, spectral_residual, spike_density"#
    );
    let err = r.build("robust_zscore", &json!({"detector": {"windw": 5}})).unwrap_err().to_string();
    assert!(err.starts_with(r#"bad configuration for engine "robust_zscore": unknown field `windw`"#), "{err}");
    let err = r.build("robust_zscore", &json!({"alarm": {"threshold": 2.0}})).unwrap_err().to_string();
    assert_eq!(err, "parameter threshold is 2; it must be in (0, 1]");
    let err = r.build("robust_zscore", &json!({"detector": {"window": 1}})).unwrap_err().to_string();
    assert_eq!(err, "parameter window is 1; it must be between 3 and 65535 points");
    // Partial configs keep the other defaults.
    let e = r.build("robust_zscore", &json!({"detector": {"window": 60}})).unwrap();
    assert_eq!(e.config()["detector"], json!({"window": 60, "min_points": 30}));
    assert_eq!(e.config()["alarm"]["threshold"], json!(0.4));
}

#[test]
fn registry_replacement_returns_the_previous_entry() {
    let mut r = EngineRegistry::with_builtins();
    let factory =
        std::sync::Arc::new(|_: &serde_json::Value| EngineRegistry::with_builtins().build("robust_zscore", &json!({})));
    let previous = r.register("robust_zscore", "replacement", json!({}), factory);
    assert_eq!(previous.unwrap().name, "robust_zscore");
    assert_eq!(r.list().iter().find(|e| e.name == "robust_zscore").unwrap().description, "replacement");
}

/// Event-level accuracy on a simulated fleet, for one engine: an injected anomaly counts as found
/// when an alarm event overlaps it (or starts within 30 points after it); an event is true when it
/// overlaps an injected anomaly the same way.
/// The injected shapes: every label but normal, in [`AnomalyLabel::ALL`]'s order (spike, dip,
/// level shift, trend, variance change, seasonal).
fn shapes() -> [AnomalyLabel; 6] {
    let all = AnomalyLabel::ALL;
    assert_eq!(all[6], AnomalyLabel::Normal);
    [all[0], all[1], all[2], all[3], all[4], all[5]]
}

#[derive(Debug, Clone, Copy)]
struct SimScore {
    /// Recall per shape of [`shapes`].
    recall: [f64; 6],
    precision: f64,
    f1: f64,
    events: usize,
}

fn sim_score(engine: &dyn AnomalyDetectionEngine, fleet: &analytics_sim::Fleet) -> SimScore {
    let kinds = shapes();
    let (mut found, mut total) = ([0usize; 6], [0usize; 6]);
    let (mut events, mut true_events) = (0, 0);
    for s in &fleet.series {
        let sc = engine.score(s);
        let truth: Vec<_> = fleet.truth.iter().filter(|g| g.key == s.key()).collect();
        for g in &truth {
            let k = kinds.iter().position(|&k| k == g.kind).unwrap();
            total[k] += 1;
            if sc.events.iter().any(|ev| ev.start < g.end_index + 30 && g.start_index < ev.end) {
                found[k] += 1;
            }
        }
        for ev in &sc.events {
            events += 1;
            if truth.iter().any(|g| ev.start < g.end_index + 30 && g.start_index < ev.end + 30) {
                true_events += 1;
            }
        }
    }
    let recall = [0, 1, 2, 3, 4, 5].map(|k| found[k] as f64 / total[k].max(1) as f64);
    let all = found.iter().sum::<usize>() as f64 / total.iter().sum::<usize>() as f64;
    let precision = true_events as f64 / events.max(1) as f64;
    let f1 = if all + precision > 0.0 { 2.0 * all * precision / (all + precision) } else { 0.0 };
    SimScore { recall, precision, f1, events }
}

/// The default ensemble against each of its members on a simulated fleet with spikes, dips,
/// level shifts, trends, variance changes, seasonal breaks and cluster incidents. Its members
/// each see one kind of anomaly; the ensemble must find spikes, level shifts and seasonal breaks
/// as well as its best member does (within 5%), and far more
/// trends than the z-score and seasonal members (the spike-density member alone finds a few more:
/// the Bonferroni correction raises the ensemble's bar). Its event precision
/// is lower than its members' (it raises the union of their false events too): measured here so
/// that a change shows. On NAB it beats every member on all three profiles (see the CLI tests).
#[test]
fn the_default_ensemble_finds_what_its_members_find_on_the_simulator() {
    let cfg = FleetConfig {
        tenants: 2,
        clusters_per_tenant: 2,
        nodes_per_cluster: 8,
        anomaly_probability: 0.6,
        ..Default::default()
    };
    let fleet = simulate_fleet(&cfg).unwrap();
    let registry = EngineRegistry::with_builtins();
    let mut table = String::new();
    let mut scores = std::collections::BTreeMap::new();
    for name in ["default", "robust_zscore", "seasonal_baseline", "spike_density", "context_novelty"] {
        let s = sim_score(registry.build(name, &json!({})).unwrap().as_ref(), &fleet);
        table += &format!("{name:18}");
        for (shape, recall) in shapes().iter().zip(s.recall) {
            table += &format!(" {shape} {recall:.3}");
        }
        table += &format!(" precision {:.3} F1 {:.3} ({} events)\n", s.precision, s.f1, s.events);
        scores.insert(name, s);
    }
    let d = scores["default"];
    // Spikes, level shifts and seasonal breaks (dips and variance changes are too few here, 10
    // and 13, for a comparison within 5%).
    for k in [0, 2, 5] {
        let best = scores.iter().filter(|(n, _)| **n != "default").map(|(_, s)| s.recall[k]).fold(0.0, f64::max);
        assert!(d.recall[k] >= best - 0.05, "kind {k}: ensemble {} < best member {best}\n{table}", d.recall[k]);
    }
    let others = scores["robust_zscore"].recall[3].max(scores["seasonal_baseline"].recall[3]);
    assert!(d.recall[3] >= 2.0 * others, "trends: ensemble {} vs z-score/seasonal {others}\n{table}", d.recall[3]);
    // Measured: precision 0.439 over 230 events (members: 0.753, 0.575, 0.450); recall of spikes
    // 0.957, dips 0.900, level shifts 1.000, trends 0.667, variance changes 0.846, seasonal
    // breaks 1.000 (run with SHOW_SIM_TABLE=1 to print the table).
    assert!(d.precision >= 0.4, "{table}");
    assert!(std::env::var_os("SHOW_SIM_TABLE").is_none(), "\n{table}");
    assert!(d.recall[0] >= 0.9 && d.recall[2] >= 0.9 && d.recall[5] >= 0.9, "{table}");
}

/// Every registered engine: causal (the scores of the first k points do not change when the
/// series is cut after point k), batch and streaming agree to 1e-9, and the per-series state is
/// reported.
#[test]
fn every_engine_is_causal_and_its_streaming_path_agrees() {
    let s = series(2600, |i| {
        50.0 + 15.0 * (std::f64::consts::TAU * i as f64 / 1440.0).sin()
            + if i == 1900 { 40.0 } else { 0.0 }
            + if i > 2200 { 12.0 } else { 0.0 }
    });
    let registry = EngineRegistry::with_builtins();
    for info in registry.list() {
        let e = registry.build(&info.name, &json!({})).unwrap();
        let full = e.score(&s);
        for k in [1, 50, 333, 1000, 1899, 1900, 1901, 2500] {
            let (key, ts, vs) = s.clone().into_parts();
            let cut = MetricSeries::from_key(key, ts[..k].to_vec(), vs[..k].to_vec()).unwrap();
            assert_eq!(e.score(&cut).calibrated, full.calibrated[..k], "{}: cut at {k}", info.name);
        }
        let mut stream = e.stream();
        for (i, (&t, &x)) in s.timestamps().iter().zip(s.values()).enumerate() {
            let (score, _) = stream.update(t, x);
            assert!(
                (score - full.calibrated[i]).abs() <= 1e-9,
                "{} at {i}: {score} vs {}",
                info.name,
                full.calibrated[i]
            );
            let decades = stream.decades();
            assert!(
                (decades - full.decades[i]).abs() <= 1e-8,
                "{} at {i}: decades {decades} vs {}",
                info.name,
                full.decades[i]
            );
        }
        assert!(stream.state_bytes() > 0);
        // The online protocol's helper is the same stream: the batch's scores and events.
        let (online, events) = e.stream_series(s.timestamps(), s.values());
        assert!(online.iter().zip(&full.calibrated).all(|(a, b)| (a - b).abs() <= 1e-9), "{}", info.name);
        assert_eq!(events, full.events, "{}", info.name);
    }
}

/// Every engine, and the default one with every member and rule switched on, saved mid-stream
/// and resumed (at the first point, inside warm-up, inside an event and after it) gives the same
/// scores, bit for bit, and the same events as the stream that never stopped; the bytes saved
/// again at the end are the same too.
#[test]
fn every_engine_resumes_a_saved_stream_point_for_point() {
    let s = series(3200, |i| {
        50.0 + 15.0 * (std::f64::consts::TAU * i as f64 / 1440.0).sin()
            + if i == 1900 { 40.0 } else { 0.0 }
            + if i > 2200 { 12.0 } else { 0.0 }
    });
    let registry = EngineRegistry::with_builtins();
    let mut engines: Vec<(String, serde_json::Value)> =
        registry.list().into_iter().map(|i| (i.name, json!({}))).collect();
    let every_member = json!({"detector": {
        "members": ["robust_zscore", "seasonal_baseline", "cusum", "lag_change", "holt_winters",
                    "spike_density", "context_novelty"],
        "recurrence": {"bin_seconds": 480}
    }});
    engines.push(("default".into(), every_member));
    for (name, cfg) in engines {
        let e = registry.build(&name, &cfg).unwrap();
        let run = |stream: &mut Box<dyn analytics_engine::EngineStream>, range: std::ops::Range<usize>| {
            range.map(|i| stream.update(s.timestamps()[i], s.values()[i])).collect::<Vec<_>>()
        };
        let mut whole = e.stream();
        let expected = run(&mut whole, 0..s.len());
        let whole_saved = whole.save().unwrap();
        let whole_finish = whole.finish();
        for k in [0, 1, 200, 1440, 1900, 1901, 2300] {
            let mut first = e.stream();
            let mut got = run(&mut first, 0..k);
            let saved = first.save().unwrap();
            let mut resumed = e.resume(&saved).unwrap_or_else(|err| panic!("{name} at {k}: {err}"));
            got.extend(run(&mut resumed, k..s.len()));
            for (i, (a, b)) in got.iter().zip(&expected).enumerate() {
                assert!(
                    a.0.to_bits() == b.0.to_bits() && a.1 == b.1,
                    "{name} resumed at {k}, point {i}: {a:?} vs {b:?}"
                );
            }
            assert!(resumed.save().unwrap() == whole_saved, "{name} at {k}: the states saved at the end differ");
            assert_eq!(resumed.finish(), whole_finish, "{name} at {k}");
        }
    }
}

/// A saved stream is refused, with a message, when it is damaged or comes from another engine or
/// configuration; never resumed wrongly.
#[test]
fn a_saved_stream_is_refused_by_another_engine_or_configuration() {
    let registry = EngineRegistry::with_builtins();
    let default = registry.build("default", &json!({})).unwrap();
    let mut stream = default.stream();
    let s = series(300, |_| 50.0);
    for (&t, &x) in s.timestamps().iter().zip(s.values()) {
        stream.update(t, x);
    }
    let saved = stream.save().unwrap();
    assert!(default.resume(&saved).is_ok());
    let other = registry.build("robust_zscore", &json!({})).unwrap();
    let err = other.resume(&saved).unwrap_err().to_string();
    assert!(err.starts_with("cannot resume engine \"robust_zscore\" from its saved state"), "{err}");
    let retuned = registry.build("default", &json!({"alarm": {"threshold": 0.9}})).unwrap();
    let err = retuned.resume(&saved).unwrap_err().to_string();
    assert!(err.contains("another configuration"), "{err}");
    let err = default.resume(&saved[..saved.len() / 2]).unwrap_err().to_string();
    assert!(err.contains("undecodable"), "{err}");
    let mut longer = saved.clone();
    longer.push(0);
    assert!(default.resume(&longer).unwrap_err().to_string().contains("1 bytes left over"));
    assert!(default.resume(&[]).is_err());
}

/// Known answers for each detector alone (raw scores, before calibration): the largest raw
/// score after warm-up lands on an injected spike, a change or a broken cycle.
#[test]
fn each_detector_puts_its_top_score_where_the_anomaly_is() {
    use analytics_engine::{
        Cusum, CusumConfig, Density, DensityConfig, Detector, HoltWinters, HoltWintersConfig, IForest, IForestConfig,
        RobustZ, RobustZConfig, Seasonal, SeasonalConfig, SpectralConfig, SpectralResidual,
    };
    fn top(d: &dyn Detector, s: &MetricSeries) -> usize {
        let raw = d.score_batch(s.timestamps(), s.values());
        (0..raw.len()).max_by(|&a, &b| raw[a].unwrap_or(0.0).total_cmp(&raw[b].unwrap_or(0.0))).unwrap()
    }
    let spike = series(1000, |i| 50.0 + if i == 700 { 15.0 } else { 0.0 });
    let shift = series(1000, |i| 50.0 + if i >= 700 { 6.0 } else { 0.0 });
    // Three days of a daily cycle; on day three, 60 points around 13:00 follow the cycle of 1:00.
    let day = |i: usize| 50.0 + 20.0 * (std::f64::consts::TAU * i as f64 / 1440.0).sin();
    let broken =
        series(3 * 1440, |i| if (2 * 1440 + 780..2 * 1440 + 840).contains(&i) { day(i + 720) } else { day(i) });
    let cluster =
        series(3000, |i| 50.0 + if i % 97 == 0 || ((2000..2060).contains(&i) && i % 3 == 0) { 8.0 } else { 0.0 });

    let near = |got: usize, want: std::ops::Range<usize>, who: &str| {
        assert!(want.contains(&got), "{who}: top at {got}, want {want:?}")
    };
    near(top(&RobustZ::new(RobustZConfig::default()).unwrap(), &spike), 700..701, "robust_zscore spike");
    // The reference extension step makes the point after a spike the most salient: caught within one point.
    near(top(&SpectralResidual::new(SpectralConfig::default()).unwrap(), &spike), 700..702, "spectral_residual spike");
    near(top(&HoltWinters::new(HoltWintersConfig::default()).unwrap(), &spike), 700..701, "holt_winters spike");
    // Shingles unlike any seen in every coordinate: 16 points at a new level. (A shape inside the
    // ring of learnt shapes, such as a flat stretch in a sine, is a known blind spot of
    // axis-parallel isolation; see the detector's docs.)
    let block = series(1000, |i| 50.0 + if (800..816).contains(&i) { 12.0 } else { 0.0 });
    near(top(&IForest::new(IForestConfig::default()).unwrap(), &block), 800..824, "isolation_forest block");
    near(top(&Cusum::new(CusumConfig::default()).unwrap(), &shift), 700..720, "cusum shift");
    near(
        top(&Seasonal::new(SeasonalConfig::default()).unwrap(), &broken),
        2 * 1440 + 780..2 * 1440 + 840,
        "seasonal break",
    );
    near(top(&Density::new(DensityConfig::default()).unwrap(), &cluster), 2000..2080, "spike_density cluster");
    // A repeating 0-1-2 sawtooth; at 800 a value far above the learnt range. The three contexts
    // that hold it (ending at 800, 801, 802) are all new and tie at the top.
    let saw = series(1000, |i| if i == 800 { 100.0 } else { (i % 3) as f64 * 10.0 });
    near(
        top(&analytics_engine::Novelty::new(analytics_engine::NoveltyConfig::default()).unwrap(), &saw),
        800..803,
        "context_novelty new range",
    );
}

/// The ensemble's recurrence memory (off by default since leave-one-corpus-out dropped it, on
/// with `recurrence.bin_seconds`): a job that jumps every day at 06:00 is an alarm on its first
/// day and not on the following ones, while a jump at a new time of day still is; with the
/// memory off, as by default, every day's job alarms.
#[test]
fn the_default_engine_alarms_on_a_daily_job_once() {
    let day = 1440;
    let job = |i: usize| (i % day) / 5 == 360 / 5; // 06:00 to 06:04 every day
    let new_incident = 5 * day + 14 * 60; // day 5, 14:00
    let s = series(7 * day, |i| {
        let bump = if job(i) || (new_incident..new_incident + 5).contains(&i) { 40.0 } else { 0.0 };
        50.0 + bump
    });
    let days_alarmed = |cfg: serde_json::Value| -> (Vec<usize>, bool) {
        let engine = EngineRegistry::with_builtins().build("default", &cfg).unwrap();
        let events = engine.score(&s).events;
        let mut days: Vec<usize> = events.iter().filter(|e| job(e.start)).map(|e| e.start / day).collect();
        days.dedup();
        let incident = events.iter().any(|e| (new_incident..new_incident + 5).contains(&e.start));
        (days, incident)
    };
    let (days, incident) = days_alarmed(json!({"detector": {"recurrence": {"bin_seconds": 480}}}));
    assert_eq!(days, vec![0], "the daily job alarms on its first day only");
    assert!(incident, "a jump at a new time of day still alarms");
    let (days, incident) = days_alarmed(json!({}));
    assert_eq!(days, (0..7).collect::<Vec<_>>(), "without the memory, every day's job alarms");
    assert!(incident);
}

/// NAB scores by row, and one of its files steps back an hour (a daylight-saving change): every
/// engine's stream takes rows whose time repeats or goes back, without a panic, with every score
/// in [0, 1], and a spike after the step back still scores.
#[test]
fn every_engine_takes_a_stream_whose_time_steps_back() {
    let registry = EngineRegistry::with_builtins();
    let t0 = Utc.with_ymd_and_hms(2024, 11, 3, 0, 0, 0).unwrap();
    // Three days at five minutes; at row 600 the clock goes back an hour (12 rows repeat).
    let ts: Vec<_> = (0..864i64).map(|i| t0 + Duration::minutes(5 * if i < 600 { i } else { i - 12 })).collect();
    let vs: Vec<f64> = (0..864).map(|i| if i == 800 { 80.0 } else { 50.0 + noise(i) }).collect();
    for info in registry.list() {
        let engine = registry.build(&info.name, &json!({})).unwrap();
        let mut stream = engine.stream();
        let scores: Vec<f64> = ts.iter().zip(&vs).map(|(&t, &x)| stream.update(t, x).0).collect();
        stream.finish();
        assert!(scores.iter().all(|s| (0.0..=1.0).contains(s)), "{}: a score outside [0, 1]", info.name);
        if matches!(info.name.as_str(), "default" | "robust_zscore") {
            assert!(scores[800] >= 0.4, "{}: the spike after the step back scores {}", info.name, scores[800]);
        }
    }
}

/// Labels as users see them: the default engine's own events on simulated fleets (seeds 1 to
/// 4), each injected anomaly read through the label of the highest-scoring anomalous window
/// whose event overlaps it (up to 30 minutes after it). Of the anomalies found, the share given
/// their true shape, per shape. Seasonal breaks are reported, not held to a bar: at their onset,
/// which is where the engine's event is, a break to another phase of the cycle is a step, and
/// is labelled a level shift (docs/explanations.md).
#[test]
fn the_default_engine_labels_what_it_finds_by_its_shape() {
    let engine = EngineRegistry::with_builtins().build("default", &json!({})).unwrap();
    let mut by_shape = std::collections::BTreeMap::<AnomalyLabel, (usize, usize, usize)>::new();
    for seed in 1..=4 {
        let cfg = FleetConfig {
            seed,
            tenants: 2,
            clusters_per_tenant: 2,
            nodes_per_cluster: 8,
            anomaly_probability: 0.6,
            ..Default::default()
        };
        let fleet = simulate_fleet(&cfg).unwrap();
        for s in &fleet.series {
            let truth: Vec<_> = fleet.truth.iter().filter(|g| g.key == s.key()).collect();
            if truth.is_empty() {
                continue;
            }
            let results = engine.detect(s).unwrap();
            for g in truth {
                let found = results
                    .iter()
                    .filter(|r| r.is_anomaly())
                    .filter(|r| {
                        let (start, end) = r.evidence().and_then(|e| e.event_span()).unwrap();
                        start <= g.end + Duration::minutes(30) && g.start <= end
                    })
                    .max_by(|x, y| x.anomaly_score().total_cmp(&y.anomaly_score()));
                let entry = by_shape.entry(g.kind).or_default();
                entry.0 += 1;
                if let Some(r) = found {
                    entry.1 += 1;
                    entry.2 += usize::from(r.anomaly_label() == g.kind);
                }
            }
        }
    }
    let mut table = String::new();
    for (shape, (injected, found, right)) in &by_shape {
        table += &format!("{shape:>16}: {injected:>4} injected, {found:>4} found, {right:>4} labelled {shape}\n");
    }
    let share = |shape: AnomalyLabel| {
        let (_, found, right) = by_shape[&shape];
        right as f64 / found.max(1) as f64
    };
    // Measured: of those found, spikes 187 of 189, dips 37 of 37, level shifts 80 of 83, trends
    // 68 of 69, variance changes 30 of 34 labelled by their shape; seasonal breaks 0 of 66 (run
    // with SHOW_SIM_TABLE=1 to print the table).
    assert!(std::env::var_os("SHOW_SIM_TABLE").is_none(), "\n{table}");
    for (shape, bar) in [
        (AnomalyLabel::Spike, 0.95),
        (AnomalyLabel::Dip, 0.9),
        (AnomalyLabel::LevelShift, 0.95),
        (AnomalyLabel::Trend, 0.9),
        (AnomalyLabel::VarianceChange, 0.85),
    ] {
        assert!(share(shape) >= bar, "{shape}: {:.3} < {bar}\n{table}", share(shape));
    }
}

/// The default engine's anomalous windows on a small simulated fleet with a fixed seed, as a
/// snapshot: a change to any detector, rule or default that moves a score or a label shows as a
/// reviewed diff (scores to three decimals, with the label and the evidence's decades).
#[test]
fn the_default_engine_on_a_fixed_fleet_is_a_snapshot() {
    let cfg = FleetConfig {
        seed: 11,
        tenants: 1,
        clusters_per_tenant: 1,
        nodes_per_cluster: 4,
        metrics: 3,
        anomaly_probability: 0.6,
        ..Default::default()
    };
    let fleet = simulate_fleet(&cfg).unwrap();
    let engine = EngineRegistry::with_builtins().build("default", &json!({})).unwrap();
    let mut lines = Vec::new();
    let mut windows = 0;
    for s in &fleet.series {
        for r in engine.detect(s).unwrap() {
            windows += 1;
            if r.is_anomaly() {
                lines.push(format!(
                    "{} {} {:.3} {:?} {:.1}",
                    r.key(),
                    r.window_start().format("%Y-%m-%d %H:%M"),
                    r.anomaly_score(),
                    r.anomaly_label(),
                    r.decades().unwrap_or(0.0),
                ));
            }
        }
    }
    let truth: Vec<String> = fleet
        .truth
        .iter()
        .map(|g| format!("{} {:?} points {}..{}", g.key, g.kind, g.start_index, g.end_index))
        .collect();
    let text = format!(
        "{} series, {windows} windows, {} anomalous\n\nanomalous windows:\n{}\n\ninjected:\n{}\n",
        fleet.series.len(),
        lines.len(),
        lines.join("\n"),
        truth.join("\n")
    );
    insta::assert_snapshot!(text);
}

/// Gaps and changes of sampling are common in real fleets (a scraper down for a day, an agent
/// reconfigured from five-minute to minute samples, a push client with jitter). On a clean
/// daily cycle none of them is an anomaly; a spike after them still is.
#[test]
fn gaps_and_changes_of_sampling_raise_no_alarm_and_hide_no_spike() {
    const DAY: i64 = 86_400;
    let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    let five_min = |from: i64, to: i64| (from * 288..to * 288).map(|k| k * 300).collect::<Vec<i64>>();
    let cases: [(&str, Vec<i64>); 3] = [
        // A day and a half missing, from a peak of the cycle to a trough.
        (
            "a gap",
            five_min(0, 8).into_iter().filter(|&s| !(5 * DAY + DAY / 4..6 * DAY + 3 * DAY / 4).contains(&s)).collect(),
        ),
        ("five-minute, then minute samples", {
            let mut v = five_min(0, 5);
            v.extend((5 * 1440..8 * 1440).map(|k| k * 60));
            v
        }),
        ("steps of one to nine minutes", {
            let (mut v, mut t, mut i) = (Vec::new(), 0, 0);
            while t < 8 * DAY {
                v.push(t);
                t += 60 * (1 + (i * 7 + i / 3) % 9);
                i += 1;
            }
            v
        }),
    ];
    let spike_at = 7 * DAY + DAY / 2;
    let registry = EngineRegistry::with_builtins();
    for name in ["default", "robust_zscore"] {
        let e = registry.build(name, &json!({})).unwrap();
        for (case, secs) in &cases {
            for with_spike in [false, true] {
                let ts: Vec<_> = secs.iter().map(|&s| t0 + Duration::seconds(s)).collect();
                let vs: Vec<f64> = secs
                    .iter()
                    .enumerate()
                    .map(|(i, &s)| {
                        let cycle = 50.0 + 20.0 * (std::f64::consts::TAU * (s % DAY) as f64 / DAY as f64).sin();
                        let spike = if with_spike && s == spike_at { 80.0 } else { 0.0 };
                        cycle + 2.0 * noise(i) + spike
                    })
                    .collect();
                let (_, events) = e.stream_series(&ts, &vs);
                let late: Vec<_> = events.iter().filter(|r| secs[r.start] >= 5 * DAY).collect();
                if with_spike {
                    let at = secs.iter().position(|&s| s == spike_at).unwrap();
                    assert!(late.iter().any(|r| r.contains(&at)), "{name}, {case}: spike missed ({late:?})");
                    assert_eq!(late.len(), 1, "{name}, {case}: {late:?}");
                } else {
                    assert!(late.is_empty(), "{name}, {case}: alarms {late:?}");
                }
            }
        }
    }
}
