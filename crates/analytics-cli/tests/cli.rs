//! The `analytics` binary end to end: JSON field names, determinism, exit codes, config files.

use std::collections::BTreeSet;
use std::process::{Command, Output};

use analytics_types::AnomalyLabel;
use serde_json::json;

fn analytics(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_analytics")).args(args).output().expect("run analytics")
}

const SMALL: &[&str] = &["--tenants", "2", "--clusters", "2", "--nodes", "3", "--metrics", "4", "--days", "1.5"];

fn demo_json(extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["demo", "--format", "json"];
    args.extend_from_slice(SMALL);
    args.extend_from_slice(extra);
    let out = analytics(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("demo prints JSON")
}

fn keys(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn demo_json_has_exactly_the_contract_fields() {
    let v = demo_json(&[]);
    let anomalies = v["anomalies"].as_array().unwrap();
    assert!(!anomalies.is_empty(), "the demo fleet has injected anomalies");
    let required: BTreeSet<String> = [
        "tenant_id",
        "cluster_id",
        "node_id",
        "metric_name",
        "window_start",
        "window_end",
        "anomaly_score",
        "anomaly_label",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let optional: BTreeSet<String> =
        ["decades", "engine", "explanation", "evidence"].iter().map(|s| s.to_string()).collect();
    for a in anomalies {
        let k = keys(a);
        assert!(k.is_superset(&required) && k.is_subset(&required.union(&optional).cloned().collect()), "{k:?}");
        let label = a["anomaly_label"].as_str().unwrap();
        assert!(AnomalyLabel::ALL.iter().any(|l| l.as_str() == label), "{label}");
        assert!(a["window_start"].as_str().unwrap().ends_with('Z'));
    }
    let aggregate_fields: BTreeSet<String> = [
        "tenant_id",
        "cluster_id",
        "node_id",
        "aggregation_strategy",
        "aggregate_score",
        "num_metrics_analyzed",
        "num_anomalies_detected",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for level in ["tenants", "clusters", "nodes"] {
        for a in v[level].as_array().unwrap() {
            let mut k = keys(a);
            // The evidence, where a labelled anomaly gave one.
            if k.remove("decades") {
                assert!(a["decades"].as_f64().unwrap() > 0.0, "{level}: {a}");
            }
            assert_eq!(k, aggregate_fields, "{level}");
        }
    }
    assert!(v["tenants"].as_array().unwrap().iter().any(|t| t.get("decades").is_some()));
    assert_eq!(v["tenants"][0]["cluster_id"], serde_json::Value::Null);
    assert_eq!(v["nodes"].as_array().unwrap().len(), 2 * 2 * 3);
    assert_eq!(v["tenants"][0]["num_metrics_analyzed"], 2 * 3 * 4);
}

#[test]
fn same_seed_same_output_other_seed_other_output() {
    let a = demo_json(&["--seed", "7"]);
    assert_eq!(a, demo_json(&["--seed", "7", "--threads", "1"]));
    assert_ne!(a, demo_json(&["--seed", "8"]));
}

#[test]
fn table_output_names_the_worst_nodes_and_the_ground_truth() {
    let mut args = vec!["demo"];
    args.extend_from_slice(SMALL);
    let out = analytics(&args);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for section in ["TENANTS", "CLUSTERS", "TOP 10 NODES", "WHY", "Ground truth:"] {
        assert!(text.contains(section), "missing {section}:\n{text}");
    }
    // The tables are in the order of what they rank: score, then the rarest labelled anomaly
    // (decades of tail probability: "1e-24" is 24), then anomalous windows, highest first.
    for (section, score_col) in [("TENANTS", 1), ("CLUSTERS", 2), ("TOP 10 NODES", 4)] {
        let rows: Vec<(f64, f64, usize)> = text
            .split(&format!("{section}\n"))
            .nth(1)
            .unwrap()
            .lines()
            .skip(1)
            .take_while(|l| !l.trim().is_empty() && !l.starts_with('('))
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let rarest = f[score_col + 1].strip_prefix("1e-").map_or(0.0, |d| d.parse().unwrap());
                (f[score_col].parse().unwrap(), rarest, f[score_col + 3].parse().unwrap())
            })
            .collect();
        assert!(rows.len() >= 2, "{section}: {rows:?}");
        assert!(rows.windows(2).all(|w| w[0] >= w[1]), "{section}: {rows:?}");
    }
    // Equal scores at the top are told apart by their evidence.
    let top = text.split("TOP 10 NODES\n").nth(1).unwrap();
    let rarest: BTreeSet<&str> = top.lines().skip(1).take(3).map(|l| l.split_whitespace().nth(5).unwrap()).collect();
    assert!(rarest.len() > 1, "{top}");
}

#[test]
fn errors_have_messages_and_exit_codes() {
    let out = analytics(&["demo", "--engine", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        r#"error: unknown engine "nope"; known engines: context_novelty, cusum, default, holt_winters, isolation_forest, lag_change, robust_zscore, seasonal_baseline, spectral_residual, spike_density"#
    );
    let out = analytics(&["demo", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    let out = analytics(&["demo", "--strategy", "median"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected max, mean, weighted or p95"));
    let out = analytics(&["demo", "--nodes", "0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nodes_per_cluster is 0; it must be at least 1"));
    // A missing file is named once, with its reason once.
    let out = analytics(&["detect", "--source", "file:no-such-metrics.csv"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert_eq!(stderr.matches("no-such-metrics.csv").count(), 1, "{stderr}");
    assert_eq!(stderr.matches("os error 2").count(), 1, "{stderr}");
}

#[test]
fn engine_config_files_in_toml_and_json() {
    let dir = std::env::temp_dir().join(format!("analytics-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let toml = dir.join("engine.toml");
    std::fs::write(&toml, "[alarm]\nthreshold = 0.9\n[detector.robust_zscore]\nwindow = 60\n").unwrap();
    let mut args = vec!["demo", "--format", "json", "--config", toml.to_str().unwrap()];
    args.extend_from_slice(SMALL);
    let out = analytics(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let strict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // A higher threshold can only remove anomalies.
    assert!(strict["anomalies"].as_array().unwrap().len() <= demo_json(&[])["anomalies"].as_array().unwrap().len());

    let json = dir.join("engine.json");
    std::fs::write(&json, r#"{"alarm": {"treshold": 0.9}}"#).unwrap();
    let out = analytics(&["demo", "--config", json.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown field `treshold`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn engines_lists_defaults() {
    let out = analytics(&["engines", "--format", "json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let z = v.as_array().unwrap().iter().find(|e| e["name"] == "robust_zscore").unwrap();
    assert_eq!(z["defaults"]["detector"]["window"], 120);
    let d = v.as_array().unwrap().iter().find(|e| e["name"] == "default").unwrap();
    assert_eq!(d["defaults"]["detector"]["combine"], "bonferroni");
}

#[test]
fn simulate_writes_long_csv_and_truth() {
    let dir = std::env::temp_dir().join(format!("analytics-sim-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (csv, truth) = (dir.join("fleet.csv"), dir.join("truth.json"));
    let out = analytics(&[
        "simulate",
        "--tenants",
        "1",
        "--clusters",
        "1",
        "--nodes",
        "2",
        "--metrics",
        "2",
        "--days",
        "1",
        "--anomaly-probability",
        "1",
        "--out",
        csv.to_str().unwrap(),
        "--truth",
        truth.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 1 + 4 * 1440);
    let t: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&truth).unwrap()).unwrap();
    assert!(!t.as_array().unwrap().is_empty());
    std::fs::remove_dir_all(&dir).ok();
}

/// A path inside the benchmark corpora: `ANALYTICS_DATA`, else `../shared` beside the
/// repository. The tests that read them are named `corpora_*`: `cargo xtask verify` skips them,
/// and says so, when the corpora are absent (docs/testing.md).
fn shared(dir: &str) -> String {
    let root =
        std::env::var("ANALYTICS_DATA").unwrap_or_else(|_| format!("{}/../../../shared", env!("CARGO_MANIFEST_DIR")));
    assert!(
        std::path::Path::new(&root).join("nab").is_dir(),
        "this test needs the benchmark corpora at {root} (set ANALYTICS_DATA; see the README)"
    );
    format!("{root}/{dir}")
}

fn nab_scores(engine: &str, out: Option<&std::path::Path>) -> Vec<f64> {
    let data = shared("nab");
    let mut args = vec!["eval", "nab", "--data", data.as_str(), "--engine", engine, "--format", "json"];
    let out_s = out.map(|o| o.to_string_lossy().into_owned());
    if let Some(o) = &out_s {
        args.extend(["--out", o.as_str()]);
    }
    let run = analytics(&args);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let v: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    v["profiles"].as_array().unwrap().iter().map(|p| p["score"].as_f64().unwrap()).collect()
}

/// On NAB (../shared/nab), the default ensemble beats each of its members on all three profiles,
/// and the per-file results are written in NAB's layout.
#[test]
fn corpora_nab_the_default_ensemble_beats_its_members() {
    let out = std::env::temp_dir().join(format!("analytics-nab-test-{}", std::process::id()));
    let ensemble = nab_scores("default", Some(&out));
    for member in ["robust_zscore", "seasonal_baseline", "spike_density"] {
        let m = nab_scores(member, None);
        for (p, (e, s)) in ensemble.iter().zip(&m).enumerate() {
            assert!(e > s, "profile {p}: ensemble {e:.2} <= {member} {s:.2}");
        }
    }
    // Measured: 70.21, 60.73, 75.18 (the default chosen by leave-one-corpus-out, which gave up
    // NAB's 79.54 for the other corpora; docs/results.md). A drop below these floors is a
    // regression to look into.
    assert!(ensemble[0] > 69.5 && ensemble[1] > 60.0 && ensemble[2] > 74.5, "{ensemble:?}");
    let file = out.join("default/realTraffic/default_speed_6005.csv");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("timestamp,value,anomaly_score,label\n2015-08-31 18:22:00,90,"), "{}", &text[..80]);
    let files = std::fs::read_dir(out.join("default"))
        .unwrap()
        .flat_map(|c| std::fs::read_dir(c.unwrap().path()).unwrap())
        .count();
    assert_eq!(files, 33);
    std::fs::remove_dir_all(&out).ok();
}

/// On every corpus in ../shared, the default engine is above the plain robust z-score on the
/// figure the choice is made by (NAB's standard score, VUS-PR), and on the multi-metric corpora
/// above random scores on every metric, including those random scores cannot inflate.
#[test]
fn corpora_suite_the_default_is_above_its_yardsticks_on_every_corpus() {
    let data = shared("");
    let run = analytics(&["eval", "suite", "--data", data.as_str(), "--format", "json"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let v: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(v["corpora"], json!(["asd", "jumpstarter", "msft", "nab"]));
    let rows = v["rows"].as_array().unwrap();
    let (random, zscore, default) = (&rows[0]["corpora"], &rows[1]["corpora"], &rows[2]["corpora"]);
    let headline =
        |c: &serde_json::Value| c["nab"][0]["score"].as_f64().or_else(|| c["nodes"]["vus_pr"].as_f64()).unwrap();
    for k in 0..4 {
        let name = &default[k]["corpus"];
        assert!(headline(&default[k]) > headline(&zscore[k]), "{name}: default below the robust z-score");
        if let Some(n) = default[k]["nodes"].as_object() {
            for metric in ["best_point_adjusted_f1", "best_composite_f1", "vus_pr"] {
                let (d, r) = (n[metric].as_f64().unwrap(), random[k]["nodes"][metric].as_f64().unwrap());
                assert!(d > 1.15 * r, "{name} {metric}: default {d:.3}, random {r:.3}");
            }
        }
    }
    // shared/msft, scored as NAB's scorer does (windows inside probation included).
    let msft = &default[2]["nab"];
    assert_eq!(msft[0]["windows"], 270);
    assert!(msft[0]["score"].as_f64().unwrap() > 33.0, "{}", msft[0]);
}

/// On ASD (../shared/asd), node-level evaluation runs over every server and reports numbers in range.
#[test]
fn corpora_asd_reports_every_server() {
    let data = shared("asd");
    let run = analytics(&["eval", "asd", "--data", data.as_str(), "--engine", "robust_zscore", "--format", "json"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let v: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 9, "8 servers and the overall row");
    let overall = &rows[8];
    assert_eq!(overall["server"], "overall");
    assert_eq!(overall["segments"], 46);
    for key in ["point_adjusted_f1", "best_point_adjusted_f1", "hit_rate_100", "hit_rate_150"] {
        let x = overall[key].as_f64().unwrap();
        assert!((0.3..=1.0).contains(&x), "{key} = {x}");
    }
}

#[test]
fn eval_errors_name_the_file() {
    let run = analytics(&["eval", "nab", "--data", "no/such/dir"]);
    assert_eq!(run.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&run.stderr).contains("no/such/dir/combined_windows.json"));
}

fn scratch(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("analytics-cli-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes a day of `tenants` x 2 clusters x 3 nodes x 3 metrics to `csv` with `analytics simulate`.
fn simulate_small(csv: &std::path::Path, tenants: usize) {
    let tenants = tenants.to_string();
    let out = analytics(&[
        "simulate",
        "--tenants",
        &tenants,
        "--clusters",
        "2",
        "--nodes",
        "3",
        "--metrics",
        "3",
        "--days",
        "1",
        "--out",
        csv.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn store_counts(db: &std::path::Path) -> analytics_io::Counts {
    analytics_io::ResultStore::open(db).unwrap().counts().unwrap()
}

/// detect on a long CSV, twice: the store keeps the same row counts; then report draws it.
#[test]
fn detect_twice_leaves_the_same_rows_and_report_draws_them() {
    let dir = scratch("detect");
    let (csv, db, html) = (dir.join("fleet.csv"), dir.join("results.db"), dir.join("report.html"));
    simulate_small(&csv, 2);
    let detect = || {
        let out =
            analytics(&["detect", "--source", &format!("file:{}", csv.display()), "--store", db.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let text = detect();
    assert!(text.contains("36 series on 12 nodes") && text.contains("Stored as run 1"), "{text}");
    let first = store_counts(&db);
    assert_eq!((first.runs, first.results), (1, 36 * 24));
    detect();
    assert_eq!(store_counts(&db), first, "a second detect over the same data adds no rows");

    let out = analytics(&["report", "--store", db.to_str().unwrap(), "--out", html.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.matches("<svg").count() > 4);
    for forbidden in ["<script", "<link", "src="] {
        assert!(!page.contains(forbidden), "the report must be self-contained, found {forbidden}");
    }
    assert!(page.contains("Tenant acme") && page.contains("The 10 worst nodes"));
    // What is wrong now comes first: the incidents, before the tenants' rankings; every link
    // stays on the page and lands on a chart's heading.
    let incidents = page.find("<h2 id=\"incidents\">Incidents: ").expect("an incidents section");
    assert!(incidents < page.find("<h2>Tenants</h2>").unwrap());
    let links: Vec<&str> = page.split("href=\"").skip(1).map(|rest| &rest[..rest.find('"').unwrap()]).collect();
    assert!(!links.is_empty(), "incidents link to their nodes' charts");
    for link in links {
        let id = link.strip_prefix('#').unwrap_or_else(|| panic!("{link} leaves the page"));
        assert!(page.contains(&format!("<h3 id=\"{id}\">")), "{link} lands on no chart");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// A wide CSV from ../shared/asd (one server, a column per metric) goes through detect.
#[test]
fn corpora_detect_reads_a_wide_asd_file() {
    let dir = scratch("asd");
    let db = dir.join("asd.db");
    let file = format!("file:{}", shared("asd/omi-1/test.csv"));
    let out = analytics(&[
        "detect",
        "--source",
        &file,
        "--tenant",
        "asd",
        "--cluster",
        "omi",
        "--node",
        "omi-1",
        "--store",
        db.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["nodes"].as_array().unwrap().len(), 1);
    assert_eq!(v["nodes"][0]["num_metrics_analyzed"], 19);
    assert_eq!(v["tenants"][0]["tenant_id"], "asd");
    std::fs::remove_dir_all(&dir).ok();
}

/// Bad input: strict stops with file, line and field and exit code 1; lenient repairs and says so.
#[test]
fn detect_strict_and_lenient() {
    let dir = scratch("bad");
    let csv = dir.join("bad.csv");
    let mut text = String::from("tenant,cluster,node,metric,timestamp,value\n");
    for i in 0..300 {
        let v = if i == 100 { "NaN".to_owned() } else { format!("{}", 40 + i % 7) };
        text += &format!("acme,prod,node-1,cpu,{},{v}\n", 1_709_546_400 + 60 * i);
    }
    std::fs::write(&csv, &text).unwrap();
    let src = format!("file:{}", csv.display());
    let out = analytics(&["detect", "--source", &src, "--no-store"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!("error: {}:102: value: NaN is not finite", csv.display())
    );
    let out = analytics(&["detect", "--source", &src, "--no-store", "--lenient"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "repaired: acme/prod/node-1/cpu: 299 rows kept; 1 non-finite values dropped"
    );
    let out = analytics(&["detect", "--source", "ftp:x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("use file:PATH, sim, or prometheus:URL"));
    std::fs::remove_dir_all(&dir).ok();
}

/// bench measures a small fleet both ways; the streaming path finds the same anomalies.
#[test]
fn bench_in_memory_and_streaming_agree() {
    let run = |extra: &[&str]| {
        let mut args = vec!["bench", "--series", "120", "--points", "600", "--threads", "2", "--format", "json"];
        args.extend_from_slice(extra);
        let out = analytics(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let (mem, streamed) = (run(&[]), run(&["--streaming", "--batch-nodes", "3"]));
    assert_eq!(mem["series"], 120);
    assert_eq!(mem["points"], 120 * 600);
    assert_eq!(mem["anomalous_windows"], streamed["anomalous_windows"]);
    assert!(mem["state_bytes_per_series"].as_u64().unwrap() > 1000);
    assert!(mem["peak_memory_mib"].as_f64().unwrap() > 1.0);
    assert!(streamed["streaming"].as_bool().unwrap());
}

/// detect --streaming reads a file in node batches and finds what the whole read finds.
#[test]
fn detect_streaming_agrees_with_the_whole_read() {
    let dir = scratch("streaming");
    let csv = dir.join("fleet.csv");
    simulate_small(&csv, 1);
    let src = format!("file:{}", csv.display());
    let json = |extra: &[&str]| {
        let mut args = vec!["detect", "--source", src.as_str(), "--no-store", "--format", "json"];
        args.extend_from_slice(extra);
        let out = analytics(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let whole = json(&[]);
    let db = dir.join("s.db");
    let out = analytics(&[
        "detect",
        "--source",
        src.as_str(),
        "--streaming",
        "--batch-nodes",
        "2",
        "--store",
        db.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("(streamed in batches of 2 nodes): 18 series, 25920 points"), "{text}");
    let store = analytics_io::ResultStore::open(&db).unwrap();
    let run = store.latest_run().unwrap().unwrap();
    assert_eq!((run.series, run.points), (18, 18 * 1440));
    let stored: Vec<_> = store.aggregates(run.id).unwrap();
    let whole_nodes = whole["nodes"].as_array().unwrap();
    let streamed_nodes: Vec<_> = stored.iter().filter(|a| a.node_id().is_some()).collect();
    assert_eq!(streamed_nodes.len(), whole_nodes.len());
    for (s, w) in streamed_nodes.iter().zip(whole_nodes) {
        assert_eq!(s.aggregate_score(), w["aggregate_score"].as_f64().unwrap());
    }
    std::fs::remove_dir_all(&dir).ok();
}

fn fixture(path: &str) -> String {
    format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"))
}

fn suite_json(args: &[&str]) -> serde_json::Value {
    let data = fixture("suite");
    let mut all = vec!["eval", "suite", "--data", data.as_str(), "--format", "json"];
    all.extend(args);
    let run = analytics(&all);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    serde_json::from_slice(&run.stdout).unwrap()
}

/// `eval suite` finds both layouts under a directory, scores random scores and the robust
/// z-score beside the engine asked for, and writes every row's per-point scores.
#[test]
fn suite_scores_every_corpus_beside_its_yardsticks() {
    let out = scratch("suite-out");
    let out_s = out.to_string_lossy().into_owned();
    let v = suite_json(&["--out", out_s.as_str()]);
    assert_eq!(v["corpora"], json!(["tiny_nab", "tiny_nodes"]));
    let rows = v["rows"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["candidate"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["random", "robust_zscore", "default"]);
    let (random, default) = (&rows[0]["corpora"], &rows[2]["corpora"]);
    // NAB-like: three profiles; the default finds the spike and the shift with no false point.
    let nab = &default[0]["nab"];
    assert_eq!(nab.as_array().unwrap().len(), 3);
    assert_eq!((nab[0]["windows_detected"].as_u64(), nab[0]["false_positive_points"].as_u64()), (Some(2), Some(0)));
    assert!(nab[0]["score"].as_f64().unwrap() > 90.0, "{}", nab[0]);
    // Random scores have no alarm rule: no false-alarm rate, rather than a made-up 0.
    assert!(random[0]["false_alarms_per_1000_series_days"].is_null());
    assert!(default[0]["false_alarms_per_1000_series_days"].as_f64().is_some());
    // Multi-metric: the default separates both lifts (composite F1 1) where random does not;
    // node-2 has no root-cause file, so its hit rate is absent.
    let nodes = &default[1]["nodes"];
    assert_eq!(nodes["best_composite_f1"].as_f64(), Some(1.0));
    assert!(nodes["vus_pr"].as_f64().unwrap() > random[1]["nodes"]["vus_pr"].as_f64().unwrap());
    assert!(random[1]["nodes"]["best_composite_f1"].as_f64().unwrap() < 0.5);
    assert_eq!(nodes["per_node"][0]["hit_rate_150"].as_f64(), Some(1.0));
    assert!(nodes["per_node"][1]["hit_rate_150"].is_null());
    // The clean fleet's false-alarm rate is measured for engines, absent for random.
    assert!(rows[2]["clean_fleet_false_alarms_per_1000_series_days"].as_f64().is_some());
    assert!(rows[0]["clean_fleet_false_alarms_per_1000_series_days"].is_null());
    // And in each series' first day, apart: the default's warm-up raises some on that fleet.
    assert!(rows[2]["clean_fleet_first_day_alarms_per_1000_series"].as_f64().unwrap() > 0.0);
    assert!(rows[0]["clean_fleet_first_day_alarms_per_1000_series"].is_null());
    // Per-point scores: NAB's layout, and one CSV per node with the node's and each metric's score.
    let nab_file = std::fs::read_to_string(out.join("tiny_nab/default/cat/default_spike.csv")).unwrap();
    assert!(nab_file.starts_with("timestamp,value,anomaly_score,label\n2024-01-01 00:00:00,"), "{}", &nab_file[..60]);
    assert_eq!(nab_file.lines().count(), 601);
    let node_file = std::fs::read_to_string(out.join("tiny_nodes/robust_zscore/node-2.csv")).unwrap();
    assert!(node_file.starts_with("timestamp,label,node_score,m1,m2,m3\n"));
    assert_eq!(node_file.lines().count(), 289);
    std::fs::remove_dir_all(&out).ok();
}

/// With a candidate list, each corpus is scored by the candidate chosen on the other corpora.
#[test]
fn suite_chooses_each_corpus_candidate_on_the_others() {
    let dir = scratch("suite-candidates");
    let list = dir.join("candidates.toml");
    std::fs::write(
        &list,
        "[[candidate]]\nname = \"short-window\"\nengine = \"robust_zscore\"\nconfig = { detector = { window = 30 } }\n\n\
         [[candidate]]\nname = \"ensemble\"\nengine = \"default\"\n",
    )
    .unwrap();
    let list_s = list.to_string_lossy().into_owned();
    let v = suite_json(&["--candidates", list_s.as_str()]);
    let held = v["leave_one_corpus_out"].as_array().unwrap();
    assert_eq!(held.len(), 2);
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "random, robust_zscore and the two candidates");
    for (k, h) in held.iter().enumerate() {
        let chosen = h["chosen"].as_str().unwrap();
        // The held-out figures are the chosen candidate's own on that corpus.
        let row = rows.iter().find(|r| r["candidate"]["name"] == chosen).unwrap();
        assert_eq!(h["report"], row["corpora"][k]);
    }
    // Chosen on tiny_nab, where the ensemble finds both windows and the short z-score one.
    assert_eq!(held[1]["chosen"], "ensemble");
    assert!(held[1]["worst_gain_elsewhere"].as_f64().unwrap() > 0.0);
    assert!(v["chosen_on_all"].is_string());
    // Inside each corpus: two folds, each scored by the candidate chosen on the other.
    let within = v["within_corpus_folds"].as_array().unwrap();
    assert_eq!(within.len(), 4);
    assert_eq!(within[1]["report"]["corpus"], "tiny_nab[2/2]");
    assert_eq!(within[1]["report"]["series"], 1, "the second of three files");
    for w in within {
        assert!(["short-window", "ensemble"].contains(&w["chosen"].as_str().unwrap()), "{w}");
    }
    // A broken list is refused, naming the file.
    std::fs::write(&list, "[[candidate]]\nname = \"x\"\n").unwrap();
    let data = fixture("suite");
    let run = analytics(&["eval", "suite", "--data", data.as_str(), "--candidates", list_s.as_str()]);
    assert_eq!(run.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("candidates.toml"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// `detect --fail-on anomaly` exits 0 on a clean series and 3 on one with a spike, after
/// printing its table as usual and naming on stderr what it found; without the flag the spike
/// exits 0.
#[test]
fn fail_on_anomaly_sets_the_exit_status() {
    let dir = scratch("fail-on");
    // `nodes` nodes with the same cpu series, each with a spike at the same minute or none.
    let write = |name: &str, spike: bool, nodes: usize| {
        let mut text = String::from("tenant,cluster,node,metric,timestamp,value\n");
        for node in 1..=nodes {
            for i in 0..2880_i64 {
                let t = chrono::DateTime::from_timestamp(1_709_510_400 + 60 * i, 0).unwrap();
                let v = if spike && i == 2000 {
                    400.0
                } else {
                    50.0 + 10.0 * (std::f64::consts::TAU * i as f64 / 1440.0).sin() + (i % 7) as f64 * 0.1
                };
                text += &format!("acme,prod,node-{node},cpu,{},{v:.3}\n", t.format("%Y-%m-%dT%H:%M:%SZ"));
            }
        }
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        format!("file:{}", path.display())
    };
    let (clean, spiky, two) = (write("clean.csv", false, 1), write("spike.csv", true, 1), write("two.csv", true, 2));
    let detect = |source: &str, extra: &[&str]| {
        let mut args = vec!["detect", "--source", source, "--no-store"];
        args.extend_from_slice(extra);
        analytics(&args)
    };
    let out = detect(&clean, &["--fail-on", "anomaly"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let out = detect(&spiky, &["--fail-on", "anomaly"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "--fail-on anomaly: 1 anomalous window found\n");
    assert!(String::from_utf8_lossy(&out.stdout).contains("TOP"), "the table is printed first");
    assert_eq!(detect(&spiky, &[]).status.code(), Some(0));
    // One series' spike is an incident of one series: not wider, so `incident` is not met; the
    // same spike on two nodes at once is.
    assert_eq!(detect(&spiky, &["--fail-on", "incident"]).status.code(), Some(0));
    let out = detect(&two, &["--fail-on", "incident"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "--fail-on incident: 1 incident wider than one series found\n");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("INCIDENTS: 1 (0 tenant-wide, 1 cluster-wide, 0 on one node, 0 on one series)"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        detect(&spiky, &["--fail-on", "nothing"]).status.code(),
        Some(2),
        "an unknown condition is a usage error"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// On its default seed the demo opens with the incidents, and the first is the simulator's
/// cluster-wide event (error rate and latency on all 8 acme/staging nodes), named as one
/// incident of the cluster; the comparison with the truth is printed with its counts.
#[test]
fn the_demo_names_the_cluster_wide_incident_first() {
    let out = analytics(&["demo"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let incidents = text.find("\nINCIDENTS: ").expect("an incidents section");
    assert!(incidents < text.find("\nTENANTS\n").unwrap(), "incidents come before the rankings");
    let first = text[incidents..].lines().nth(2).unwrap();
    assert!(
        first.starts_with(
            " 1. [cluster, 16 events on 8 of 8 nodes, score 1.000] acme/staging: error_rate and request_latency_ms on 8 of 8 nodes from 2024-03-05 16:46 UTC"
        ),
        "{first}"
    );
    assert!(
        text.contains(
            "Incidents against the truth: precision 0.78 (49 of 63 found are real), recall 0.79 (48 of 61 real ones found); \
             1 of 1 cluster-wide events come out as one incident naming the cluster."
        ),
        "{text}"
    );
}

/// With tenant-wide events on (`--tenant-incidents 1`: one per tenant), each comes out as one
/// incident naming its tenant, first in the list; the default fleet has none.
#[test]
fn tenant_wide_events_come_out_as_tenant_incidents() {
    let out = analytics(&["demo", "--seed", "1", "--tenant-incidents", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("3 of 3 tenant-wide events come out as one incident naming the tenant."), "{text}");
    let first = text.split("\nINCIDENTS: ").nth(1).unwrap().lines().nth(1).unwrap();
    assert!(first.starts_with(" 1. [tenant, "), "{first}");
    assert!(!String::from_utf8_lossy(&analytics(&["demo"]).stdout).contains("tenant-wide events come out"));
}

/// The README's sample sentences (its first two code blocks: an incident, then a series) are
/// ones `analytics demo` prints on its default seed, word for word.
#[test]
fn the_readme_sentences_are_printed_by_the_demo() {
    let readme = std::fs::read_to_string(format!("{}/../../README.md", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let out = analytics(&["demo"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).split_whitespace().collect::<Vec<_>>().join(" ");
    for block in [1, 3] {
        let sentence = readme.split("```").nth(block).unwrap().split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(text.contains(&sentence), "the demo no longer prints the README's sentence: {sentence}");
    }
}
