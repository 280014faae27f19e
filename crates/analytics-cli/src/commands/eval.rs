//! `analytics eval nab` and `analytics eval asd`: run an engine online over a benchmark and score it.

use std::path::Path;
use std::time::Instant;

use analytics_engine::{AnomalyDetectionEngine, EngineRegistry};
use analytics_eval::{
    evaluate_nodes, node_alarm_figures, probation_len, Accumulator, NabFile, NabScorer, NodeAlarmFigures, NodeData,
    SeriesDetector, SeriesRun, PROFILES,
};
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use rayon::prelude::*;
use serde::Serialize;

use crate::output::emit;
use crate::table::Table;
use crate::{read_engine_config, AsdArgs, Format, NabArgs};

/// An engine as the evaluation suite runs it: online, point by point, with its alarm events.
pub(crate) struct EngineDetector(pub(crate) Box<dyn AnomalyDetectionEngine>);

impl SeriesDetector for EngineDetector {
    fn run(&self, timestamps: &[DateTime<Utc>], values: &[f64]) -> SeriesRun {
        let (scores, events) = self.0.stream_series(timestamps, values);
        SeriesRun { scores, events: Some(events) }
    }
}

/// One series run through an engine's streaming path: calibrated scores and alarmed points.
pub(crate) struct Run {
    pub(crate) scores: Vec<f64>,
    pub(crate) alarmed: Vec<bool>,
}

/// The engine's online run ([`AnomalyDetectionEngine::stream_series`]) with the alarm events as
/// a flag per point.
pub(crate) fn run_online(engine: &dyn AnomalyDetectionEngine, timestamps: &[DateTime<Utc>], values: &[f64]) -> Run {
    let (scores, events) = engine.stream_series(timestamps, values);
    let mut alarmed = vec![false; values.len()];
    for e in events {
        alarmed[e].iter_mut().for_each(|x| *x = true);
    }
    Run { scores, alarmed }
}

/// Writes one file's scores where NAB's scorer looks for them (`<out>/<engine>/<category>/...`).
pub(crate) fn write_nab_result(out: &Path, engine: &str, file: &NabFile, scores: &[f64]) -> Result<()> {
    let path = analytics_io::nab_results_path(&out.join(engine), engine, file.name());
    Ok(analytics_io::write_nab_result(&path, file.timestamps(), file.values(), scores, &file.labels())?)
}

#[derive(Serialize)]
struct NabJson<'a> {
    engine: &'a str,
    files: usize,
    points: usize,
    points_per_second: f64,
    profiles: Vec<analytics_eval::ProfileScore>,
    categories_standard: Vec<(String, analytics_eval::ProfileScore)>,
    at_engine_alarms: Metrics,
}

#[derive(Serialize)]
struct Metrics {
    pointwise: analytics_eval::Prf,
    point_adjusted: analytics_eval::Prf,
    revised_point_adjusted: analytics_eval::Prf,
    mean_time_to_detect_seconds: f64,
}

impl Metrics {
    fn of(acc: &Accumulator) -> Self {
        Self {
            pointwise: acc.pointwise(),
            point_adjusted: acc.point_adjusted(),
            revised_point_adjusted: acc.revised_point_adjusted(),
            mean_time_to_detect_seconds: acc.mean_time_to_detect_seconds(),
        }
    }
}

fn engine_from(name: &str, config: Option<&std::path::PathBuf>) -> Result<Box<dyn AnomalyDetectionEngine>> {
    Ok(EngineRegistry::with_builtins().build(name, &read_engine_config(config)?)?)
}

pub(crate) fn nab(args: &NabArgs) -> Result<()> {
    let engine = engine_from(&args.eval.engine, args.eval.config.as_ref())?;
    let corpus = analytics_io::read_nab_corpus(&args.eval.data)
        .with_context(|| format!("cannot load NAB from {}", args.eval.data.display()))?;
    let bar = crate::output::progress_bar(corpus.files.len() as u64, "scoring", "files");
    let started = Instant::now();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let runs: Vec<Run> = corpus
        .files
        .par_iter()
        .map(|f| {
            let run = run_online(engine.as_ref(), f.timestamps(), f.values());
            bar.set_position(done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) as u64 + 1);
            run
        })
        .collect();
    let elapsed = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let points: usize = corpus.files.iter().map(|f| f.len()).sum();
    let name = engine.name().to_owned();
    if let Some(out) = &args.out {
        for (f, r) in corpus.files.iter().zip(&runs) {
            write_nab_result(out, &name, f, &r.scores)?;
        }
    }
    let scores: Vec<Vec<f64>> = runs.iter().map(|r| r.scores.clone()).collect();
    let scorer = NabScorer::new(&corpus, &scores)?;
    let profiles: Vec<_> = PROFILES.iter().map(|p| scorer.optimise(p)).collect();
    let categories = scorer.by_category(&PROFILES[0], profiles[0].threshold);
    let acc: Accumulator = corpus
        .files
        .iter()
        .zip(&runs)
        .map(|(f, r)| Accumulator::of(&f.labels(), &r.alarmed, f.timestamps(), probation_len(f.len())))
        .sum();
    let json = NabJson {
        engine: &name,
        files: corpus.files.len(),
        points,
        points_per_second: points as f64 / elapsed,
        profiles,
        categories_standard: categories,
        at_engine_alarms: Metrics::of(&acc),
    };
    match args.eval.format {
        Format::Json => emit(&(serde_json::to_string_pretty(&json)? + "\n")),
        Format::Table => emit(&render_nab(&json, &scorer, args.out.as_deref())),
    }
}

fn render_nab(j: &NabJson<'_>, scorer: &NabScorer<'_>, out: Option<&Path>) -> String {
    let mut s = format!(
        "NAB: engine {}, {} files, {} points, {:.0} points/s ({} threads)\n\n",
        j.engine,
        j.files,
        j.points,
        j.points_per_second,
        rayon::current_num_threads()
    );
    let mut t = Table::new(
        &["profile", "NAB score", "threshold", "windows found", "FP points"],
        &["NAB score", "threshold", "windows found", "FP points"],
    );
    for p in &j.profiles {
        t.row(vec![
            p.profile.name.to_owned(),
            format!("{:.2}", p.score),
            format!("{:.4}", p.threshold),
            format!("{}/{}", p.windows_detected, p.windows),
            p.false_positive_points.to_string(),
        ]);
    }
    s += &t.render();
    s += "\nstandard profile by category (at the corpus threshold, normalised by the category's own windows):\n";
    let mut t = Table::new(
        &["category", "NAB score", "windows found", "FP points"],
        &["NAB score", "windows found", "FP points"],
    );
    for (c, p) in &j.categories_standard {
        t.row(vec![
            c.clone(),
            format!("{:.2}", p.score),
            format!("{}/{}", p.windows_detected, p.windows),
            p.false_positive_points.to_string(),
        ]);
    }
    let fp = scorer.false_positives_by_category(j.profiles[0].threshold);
    for (c, n) in fp.iter().filter(|(c, _)| !j.categories_standard.iter().any(|(k, _)| k == c)) {
        t.row(vec![c.clone(), "(no windows)".into(), "-".into(), n.to_string()]);
    }
    s += &t.render();
    let m = &j.at_engine_alarms;
    s += "\nat the engine's own alarm rule (after probation):\n";
    let mut t = Table::new(&["scoring", "precision", "recall", "F1"], &["precision", "recall", "F1"]);
    for (name, p) in [
        ("point-wise", m.pointwise),
        ("point-adjusted", m.point_adjusted),
        ("revised point-adjusted", m.revised_point_adjusted),
    ] {
        t.row(vec![name.into(), format!("{:.3}", p.precision), format!("{:.3}", p.recall), format!("{:.3}", p.f1)]);
    }
    s += &t.render();
    s += &format!(
        "mean time to detect: {}\n",
        analytics_explain::format_duration(m.mean_time_to_detect_seconds.round() as i64)
    );
    if let Some(out) = out {
        s += &format!("\nper-file results (NAB layout) written under {}\n", out.join(j.engine).display());
    }
    s
}

#[derive(Serialize)]
struct AsdRow {
    server: String,
    f1: f64,
    point_adjusted_f1: f64,
    best_point_adjusted_f1: f64,
    /// Absent for servers without root-cause labels.
    hit_rate_100: Option<f64>,
    hit_rate_150: Option<f64>,
    segments: usize,
}

/// Node-level detection on each server: every metric fed online over train then test (train is
/// the learning period, [`evaluate_nodes`]), scored by [`node_alarm_figures`] (node score = max over metrics; node
/// alarm = any metric alarms; attribution ranks metrics by their score in the segment).
pub(crate) fn asd(args: &AsdArgs) -> Result<()> {
    let engine = engine_from(&args.eval.engine, args.eval.config.as_ref())?;
    let name = engine.name().to_owned();
    let servers = analytics_io::read_nodes(&args.eval.data)
        .with_context(|| format!("cannot load ASD from {}", args.eval.data.display()))?;
    anyhow::ensure!(!servers.is_empty(), "no server directories (with test.csv) under {}", args.eval.data.display());
    let started = Instant::now();
    let runs = evaluate_nodes(&servers, &EngineDetector(engine));
    let figures: Vec<NodeAlarmFigures> =
        servers.iter().zip(&runs).map(|(srv, r)| node_alarm_figures(srv, r)).collect::<Result<_, _>>()?;
    let rows: Vec<AsdRow> = servers
        .iter()
        .zip(&figures)
        .map(|(srv, f)| {
            let hits = f.hit_rates.as_deref();
            AsdRow {
                server: srv.name().to_owned(),
                f1: f.at_alarms.pointwise().f1,
                point_adjusted_f1: f.at_alarms.point_adjusted().f1,
                best_point_adjusted_f1: f.best_point_adjusted_f1,
                hit_rate_100: hits.map(|h| mean(&h.iter().map(|x| x.0).collect::<Vec<_>>())),
                hit_rate_150: hits.map(|h| mean(&h.iter().map(|x| x.1).collect::<Vec<_>>())),
                segments: hits.map_or(0, <[_]>::len),
            }
        })
        .collect();
    if let Some(out) = &args.out {
        for (srv, metric_runs) in servers.iter().zip(&runs) {
            let scores: Vec<&[f64]> = metric_runs.iter().map(|m| m.scores.as_slice()).collect();
            let path = out.join(&name).join(format!("{}.csv", srv.name()));
            analytics_io::write_node_scores(&path, srv.metrics(), srv.test_timestamps(), srv.labels(), &scores)?;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let points: usize = servers.iter().map(NodeData::num_points).sum();
    let total: Accumulator = figures.iter().map(|f| f.at_alarms).sum();
    let all100: Vec<f64> = figures.iter().flat_map(|f| f.hit_rates.iter().flatten().map(|h| h.0)).collect();
    let all150: Vec<f64> = figures.iter().flat_map(|f| f.hit_rates.iter().flatten().map(|h| h.1)).collect();
    let any_labels = servers.iter().any(|s| s.interpretations().is_some());
    let overall = AsdRow {
        server: "overall".into(),
        f1: total.pointwise().f1,
        point_adjusted_f1: total.point_adjusted().f1,
        best_point_adjusted_f1: mean(&rows.iter().map(|r| r.best_point_adjusted_f1).collect::<Vec<_>>()),
        hit_rate_100: any_labels.then(|| mean(&all100)),
        hit_rate_150: any_labels.then(|| mean(&all150)),
        segments: all100.len(),
    };
    let mut list = rows;
    list.push(overall);
    match args.eval.format {
        Format::Json => emit(&(serde_json::to_string_pretty(&list)? + "\n")),
        Format::Table => {
            let mut s = format!(
                "ASD: engine {}, {} servers, {} points, {:.0} points/s\n\
                 F1 and point-adjusted F1 at the engine's own alarms (node alarm = any metric alarms);\n\
                 best PA-F1 at the best node-score threshold (the figure papers report; overall = mean of servers);\n\
                 HitRate@P%: root-cause metrics found among the top P% of metrics ranked by score in the segment (\"-\" where a server has no interpretation_label.txt).\n\n",
                name,
                servers.len(),
                points,
                points as f64 / elapsed
            );
            let mut t = Table::new(
                &["server", "F1", "PA-F1", "best PA-F1", "HitRate@100%", "HitRate@150%", "segments"],
                &["F1", "PA-F1", "best PA-F1", "HitRate@100%", "HitRate@150%", "segments"],
            );
            for r in &list {
                t.row(vec![
                    r.server.clone(),
                    format!("{:.3}", r.f1),
                    format!("{:.3}", r.point_adjusted_f1),
                    format!("{:.3}", r.best_point_adjusted_f1),
                    r.hit_rate_100.map_or_else(|| "-".into(), |h| format!("{h:.3}")),
                    r.hit_rate_150.map_or_else(|| "-".into(), |h| format!("{h:.3}")),
                    r.segments.to_string(),
                ]);
            }
            s += &t.render();
            emit(&s)
        }
    }
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}
