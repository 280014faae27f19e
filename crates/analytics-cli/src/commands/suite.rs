//! `analytics eval suite`: every benchmark corpus under a directory, one table, and the
//! leave-one-corpus-out choice between candidate configurations (docs/evaluation.md).

use std::path::{Path, PathBuf};
use std::time::Instant;

use analytics_engine::EngineRegistry;
use analytics_eval::{
    clean_alarms, evaluate_corpus, fold_corpus, gain, leave_one_corpus_out, score_corpus, Corpus, CorpusReport,
    CorpusRuns, HeldOut, RandomScores, SeriesDetector,
};
use analytics_sim::{simulate_fleet, FleetConfig};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::eval::EngineDetector;
use crate::output::{emit, progress_bar};
use crate::table::Table;
use crate::{Format, SuiteArgs};

/// An engine as the suite runs it: each series through a fresh stream, point by point.
/// A configuration to score: a name for the tables, an engine and its parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Candidate {
    /// Row name.
    pub(crate) name: String,
    /// Registry name of the engine (`random` for uniform random scores).
    pub(crate) engine: String,
    /// Engine parameters (any subset; the rest are the engine's defaults).
    #[serde(default)]
    pub(crate) config: serde_json::Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CandidateFile {
    candidate: Vec<Candidate>,
}

fn read_candidates(path: &Path) -> Result<Vec<Candidate>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file: CandidateFile =
        toml::from_str(&text).with_context(|| format!("{} is not a candidate list", path.display()))?;
    anyhow::ensure!(!file.candidate.is_empty(), "{} lists no [[candidate]]", path.display());
    let mut seen = std::collections::BTreeSet::new();
    for c in &file.candidate {
        anyhow::ensure!(seen.insert(&c.name), "{}: candidate name {:?} is used twice", path.display(), c.name);
    }
    Ok(file.candidate)
}

fn build(c: &Candidate) -> Result<Box<dyn SeriesDetector + Send>> {
    if c.engine == "random" {
        return Ok(Box::new(RandomScores));
    }
    let engine = EngineRegistry::with_builtins()
        .build(&c.engine, &c.config)
        .with_context(|| format!("candidate {:?}", c.name))?;
    Ok(Box::new(EngineDetector(engine)))
}

/// The rows every suite table has: random scores and the plain robust z-score for scale.
fn yardsticks() -> Vec<Candidate> {
    vec![
        Candidate { name: "random".into(), engine: "random".into(), config: serde_json::Value::Null },
        Candidate { name: "robust_zscore".into(), engine: "robust_zscore".into(), config: serde_json::Value::Null },
    ]
}

/// The simulator's clean fleet: no injected anomaly, no incident; three days at one minute.
fn clean_fleet() -> Result<(analytics_sim::Fleet, usize)> {
    let cfg = FleetConfig {
        seed: 7,
        tenants: 1,
        clusters_per_tenant: 2,
        nodes_per_cluster: 10,
        metrics: 6,
        points: 3 * 1440,
        anomaly_probability: 0.0,
        incident_probability: 0.0,
        ..FleetConfig::default()
    };
    Ok((simulate_fleet(&cfg)?, cfg.points_per_day()))
}

/// One candidate's figures over every corpus.
#[derive(Debug, Serialize)]
struct Row {
    candidate: Candidate,
    corpora: Vec<CorpusReport>,
    /// With `--candidates`: per corpus, the figures of each of its two folds.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    folds: Vec<[CorpusReport; 2]>,
    clean_fleet_false_alarms_per_1000_series_days: Option<f64>,
    /// Alarms in each clean series' first day (while the detector warms up), per 1,000 series.
    clean_fleet_first_day_alarms_per_1000_series: Option<f64>,
    seconds: f64,
}

#[derive(Debug, Serialize)]
struct SuiteJson<'a> {
    data: String,
    corpora: Vec<&'a str>,
    skipped: &'a [String],
    rows: &'a [Row],
    leave_one_corpus_out: Option<Vec<HeldOutJson>>,
    within_corpus_folds: Option<Vec<WithinJson>>,
    chosen_on_all: Option<String>,
    chosen_on_all_worst_gain: Option<f64>,
}

/// Inside one corpus: the candidate chosen on the other fold, scored on this one.
#[derive(Debug, Serialize)]
struct WithinJson {
    corpus: String,
    fold: usize,
    chosen: String,
    held_out_gain: f64,
    report: CorpusReport,
}

#[derive(Debug, Serialize)]
struct HeldOutJson {
    corpus: String,
    chosen: String,
    worst_gain_elsewhere: f64,
    held_out_gain: f64,
    report: CorpusReport,
}

fn write_runs(out: &Path, corpus: &Corpus, name: &str, runs: &CorpusRuns) -> Result<()> {
    let root = out.join(corpus.name()).join(name);
    match (corpus, runs) {
        (Corpus::Nab { corpus: c, .. }, CorpusRuns::Nab(runs)) => {
            for (f, r) in c.files.iter().zip(runs) {
                crate::eval::write_nab_result(&out.join(corpus.name()), name, f, &r.scores)?;
            }
        }
        (Corpus::Nodes { nodes, .. }, CorpusRuns::Nodes(runs)) => {
            for (n, metric_runs) in nodes.iter().zip(runs) {
                let scores: Vec<&[f64]> = metric_runs.iter().map(|r| r.scores.as_slice()).collect();
                analytics_io::write_node_scores(
                    &root.join(format!("{}.csv", n.name())),
                    n.metrics(),
                    n.test_timestamps(),
                    n.labels(),
                    &scores,
                )?;
            }
        }
        _ => anyhow::bail!("internal: runs of another corpus"),
    }
    Ok(())
}

pub(crate) fn run(args: &SuiteArgs) -> Result<()> {
    let started = Instant::now();
    let data = args.data.clone().unwrap_or_else(default_data_dir);
    let (corpora, skipped) = analytics_io::discover_corpora(&data)
        .with_context(|| format!("cannot read the corpora under {}", data.display()))?;
    anyhow::ensure!(
        !corpora.is_empty(),
        "no corpus under {} (a corpus is a directory holding combined_windows.json, or node directories with test.csv and test_label.csv)",
        data.display()
    );
    let loaded = started.elapsed().as_secs_f64();
    let mut candidates = yardsticks();
    match &args.candidates {
        Some(path) => candidates.extend(read_candidates(path)?),
        None => {
            for e in &args.engine {
                candidates.push(Candidate { name: e.clone(), engine: e.clone(), config: serde_json::Value::Null });
            }
        }
    }
    let detectors: Vec<Box<dyn SeriesDetector + Send>> = candidates.iter().map(build).collect::<Result<_>>()?;
    // For the choice inside each corpus: its two folds of files (or nodes).
    let halves: Vec<Option<[Corpus; 2]>> = corpora
        .iter()
        .map(|c| args.candidates.as_ref().map(|_| [fold_corpus(c, 0, 2), fold_corpus(c, 1, 2)]))
        .collect();
    let fleet = clean_fleet()?;
    let bar = progress_bar((candidates.len() * corpora.len()) as u64, "scoring", "candidate x corpus runs");
    let mut rows = Vec::with_capacity(candidates.len());
    for (c, d) in candidates.iter().zip(&detectors) {
        let t0 = Instant::now();
        let mut reports = Vec::with_capacity(corpora.len());
        let mut folds = Vec::new();
        for (corpus, halves) in corpora.iter().zip(&halves) {
            let runs = evaluate_corpus(corpus, d.as_ref());
            if let Some(out) = &args.out {
                write_runs(out, corpus, &c.name, &runs)?;
            }
            reports.push(score_corpus(corpus, &runs)?);
            if let Some([a, b]) = halves {
                folds.push([score_corpus(a, &runs.fold(0, 2))?, score_corpus(b, &runs.fold(1, 2))?]);
            }
            bar.inc(1);
        }
        let clean = clean_alarms(&fleet.0.series, fleet.1, d.as_ref());
        rows.push(Row {
            candidate: c.clone(),
            corpora: reports,
            folds,
            clean_fleet_false_alarms_per_1000_series_days: clean.and_then(|c| c.after_per_1000_series_days),
            clean_fleet_first_day_alarms_per_1000_series: clean.map(|c| c.first_day_per_1000_series),
            seconds: t0.elapsed().as_secs_f64(),
        });
    }
    bar.finish_and_clear();
    let names: Vec<String> = corpora.iter().map(|c| c.name().to_owned()).collect();
    // The choice is among the candidates of the file, not the yardsticks; each candidate's
    // headline figure on a corpus becomes a gain over the robust z-score row, in units of that
    // row's gain over the random row.
    let (loco, all) = if args.candidates.is_some() {
        let head = |r: &Row, k: usize| r.corpora[k].headline();
        let (random, zscore) = (&rows[0], &rows[1]);
        let pool = &rows[yardsticks().len()..];
        let gains: Vec<Vec<f64>> = pool
            .iter()
            .map(|r| (0..names.len()).map(|k| gain(head(r, k), head(zscore, k), head(random, k))).collect())
            .collect();
        let held = leave_one_corpus_out(&names, &gains);
        let (all, worst) = analytics_eval::choose(&gains, None);
        (Some((held, pool)), Some((pool[all].candidate.name.clone(), worst)))
    } else {
        (None, None)
    };
    // Inside each corpus: chosen on one fold (by the gain there), scored on the other.
    let within: Option<Vec<WithinJson>> = args.candidates.as_ref().map(|_| {
        let pool = &rows[yardsticks().len()..];
        let fold_gain = |r: &Row, k: usize, f: usize| {
            let h = |r: &Row| r.folds[k][f].headline();
            gain(h(r), h(&rows[1]), h(&rows[0]))
        };
        let mut out = Vec::new();
        for (k, name) in names.iter().enumerate() {
            for f in 0..2 {
                let gains: Vec<Vec<f64>> = pool.iter().map(|r| vec![fold_gain(r, k, 1 - f)]).collect();
                let (chosen, _) = analytics_eval::choose(&gains, None);
                out.push(WithinJson {
                    corpus: name.clone(),
                    fold: f + 1,
                    chosen: pool[chosen].candidate.name.clone(),
                    held_out_gain: fold_gain(&pool[chosen], k, f),
                    report: pool[chosen].folds[k][f].clone(),
                });
            }
        }
        out
    });
    let held_json: Option<Vec<HeldOutJson>> = loco.as_ref().map(|(held, pool)| {
        held.iter()
            .enumerate()
            .map(|(k, h)| HeldOutJson {
                corpus: h.corpus.clone(),
                chosen: pool[h.chosen].candidate.name.clone(),
                worst_gain_elsewhere: h.worst_gain_elsewhere,
                held_out_gain: h.held_out_gain,
                report: pool[h.chosen].corpora[k].clone(),
            })
            .collect()
    });
    match args.format {
        Format::Json => {
            let json = SuiteJson {
                data: data.display().to_string(),
                corpora: names.iter().map(String::as_str).collect(),
                skipped: &skipped,
                rows: &rows,
                leave_one_corpus_out: held_json,
                within_corpus_folds: within,
                chosen_on_all: all.as_ref().map(|a| a.0.clone()),
                chosen_on_all_worst_gain: all.as_ref().map(|a| a.1),
            };
            emit(&(serde_json::to_string_pretty(&json)? + "\n"))
        }
        Format::Table => {
            let mut s = format!(
                "suite: {} corpora under {} ({}), {} rows, loaded in {:.1} s, scored in {:.1} s ({} threads)\n",
                corpora.len(),
                data.display(),
                names.join(", "),
                rows.len(),
                loaded,
                started.elapsed().as_secs_f64() - loaded,
                rayon::current_num_threads()
            );
            if !skipped.is_empty() {
                s += &format!("not a corpus, skipped: {}\n", skipped.join(", "));
            }
            s += &render(&corpora, &rows);
            if let (Some((held, pool)), Some((all, worst))) = (&loco, &all) {
                s += &render_held_out(held, pool, all, *worst);
            }
            if let Some(within) = &within {
                s += &render_within(within);
            }
            if let Some(out) = &args.out {
                s += &format!("\nper-row scores written under {}/<corpus>/<row>/\n", out.display());
            }
            emit(&s)
        }
    }
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{x:.digits$}"))
}

fn render(corpora: &[Corpus], rows: &[Row]) -> String {
    let mut s = String::new();
    let nab_like: Vec<usize> = (0..corpora.len()).filter(|&k| matches!(corpora[k], Corpus::Nab { .. })).collect();
    let nodes: Vec<usize> = (0..corpora.len()).filter(|&k| matches!(corpora[k], Corpus::Nodes { .. })).collect();
    if !nab_like.is_empty() {
        s += "\nNAB-like corpora: NAB score standard / low FP / low FN (threshold optimised per corpus and profile, as NAB does),\n\
              windows found and FP points at the standard threshold, false alarms per 1,000 series-days at the engine's own alarm rule\n";
        let mut t = Table::new(
            &["corpus", "row", "standard", "low FP", "low FN", "windows", "FP points", "false alarms"],
            &["standard", "low FP", "low FN", "windows", "FP points", "false alarms"],
        );
        for &k in &nab_like {
            for r in rows {
                let c = &r.corpora[k];
                let n = c.nab.as_deref().unwrap_or_default();
                let Some(std) = n.first() else { continue };
                t.row(vec![
                    c.corpus.clone(),
                    r.candidate.name.clone(),
                    format!("{:.2}", std.score),
                    format!("{:.2}", n[1].score),
                    format!("{:.2}", n[2].score),
                    format!("{}/{}", std.windows_detected, std.windows),
                    std.false_positive_points.to_string(),
                    fmt_opt(c.false_alarms_per_1000_series_days, 1),
                ]);
            }
        }
        s += &t.render();
    }
    if !nodes.is_empty() {
        s += "\nMulti-metric corpora: node score = highest metric score; means over nodes of best PA-F1 (a random score inflates it),\n\
              best composite F1 and VUS-PR (it cannot); HitRate@150% where root causes are labelled; false alarms per 1,000 series-days\n";
        let mut t = Table::new(
            &["corpus", "row", "best PA-F1", "composite F1", "VUS-PR", "HitRate@150%", "false alarms"],
            &["best PA-F1", "composite F1", "VUS-PR", "HitRate@150%", "false alarms"],
        );
        for &k in &nodes {
            for r in rows {
                let c = &r.corpora[k];
                let Some(n) = &c.nodes else { continue };
                t.row(vec![
                    c.corpus.clone(),
                    r.candidate.name.clone(),
                    format!("{:.3}", n.best_point_adjusted_f1),
                    format!("{:.3}", n.best_composite_f1),
                    format!("{:.3}", n.vus_pr),
                    fmt_opt(n.hit_rate_150, 3),
                    fmt_opt(c.false_alarms_per_1000_series_days, 1),
                ]);
            }
        }
        s += &t.render();
    }
    s += "\nSimulator's clean fleet (120 series x 3 days at one minute, no anomaly): false alarms after each series' first day,\n";
    s += "and in its first day (while the detector warms up, as on a series just added to a fleet)\n";
    let mut t = Table::new(
        &["row", "false alarms per 1,000 series-days", "in the first day, per 1,000 series", "seconds"],
        &["false alarms per 1,000 series-days", "in the first day, per 1,000 series", "seconds"],
    );
    for r in rows {
        t.row(vec![
            r.candidate.name.clone(),
            fmt_opt(r.clean_fleet_false_alarms_per_1000_series_days, 1),
            fmt_opt(r.clean_fleet_first_day_alarms_per_1000_series, 1),
            format!("{:.1}", r.seconds),
        ]);
    }
    s += &t.render();
    s
}

/// A report's figures in one cell: NAB's three profiles, or the multi-metric figures.
fn figures(c: &CorpusReport) -> String {
    match (&c.nab, &c.nodes) {
        (Some(n), _) => format!("NAB {:.2} / {:.2} / {:.2}", n[0].score, n[1].score, n[2].score),
        (None, Some(n)) => format!(
            "best PA-F1 {:.3}, composite F1 {:.3}, VUS-PR {:.3}{}",
            n.best_point_adjusted_f1,
            n.best_composite_f1,
            n.vus_pr,
            n.hit_rate_150.map_or(String::new(), |h| format!(", HitRate@150% {h:.3}"))
        ),
        _ => String::new(),
    }
}

fn render_within(within: &[WithinJson]) -> String {
    let mut s = String::from(
        "\nInside each corpus, two folds of its files (or nodes, alternating in name order): the candidate with the\n\
         largest gain on one fold, scored on the other (a choice that sees part of the corpus; the held-out figures\n\
         above see none of it):\n",
    );
    let mut t = Table::new(&["corpus", "scored on", "chosen on the other fold", "gain", "figures"], &["gain"]);
    for w in within {
        t.row(vec![
            w.corpus.clone(),
            format!("fold {}", w.fold),
            w.chosen.clone(),
            format!("{:+.3}", w.held_out_gain),
            figures(&w.report),
        ]);
    }
    s += &t.render();
    s
}

fn render_held_out(held: &[HeldOut], pool: &[Row], all: &str, worst: f64) -> String {
    let mut s = String::from(
        "\nLeave-one-corpus-out: for each corpus, the candidate whose smallest gain over the robust z-score on the\n\
         other corpora is largest (gain: (figure - z-score's) / (z-score's - random's), on NAB's standard score or\n\
         VUS-PR), and its figures on the corpus it never saw:\n",
    );
    let mut t = Table::new(
        &["held out", "chosen elsewhere", "worst gain elsewhere", "held-out gain", "held-out figures"],
        &["worst gain elsewhere", "held-out gain"],
    );
    for (k, h) in held.iter().enumerate() {
        let figures = figures(&pool[h.chosen].corpora[k]);
        t.row(vec![
            h.corpus.clone(),
            pool[h.chosen].candidate.name.clone(),
            format!("{:+.3}", h.worst_gain_elsewhere),
            format!("{:+.3}", h.held_out_gain),
            figures,
        ]);
    }
    s += &t.render();
    s += &format!("chosen on all corpora: {all} (smallest gain {worst:+.3})\n");
    s
}

/// Where `eval suite` finds the corpora by default: `ANALYTICS_DATA`, else `../shared`.
pub(crate) fn default_data_dir() -> PathBuf {
    std::env::var_os("ANALYTICS_DATA").map_or_else(|| PathBuf::from("../shared"), PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `list` starts with `grid` unchanged and is `times` its length: the variants after it.
    fn variants<'a>(list: &'a [Candidate], grid: &[Candidate], times: usize) -> &'a [Candidate] {
        assert_eq!(list.len(), times * grid.len());
        assert!(grid.iter().zip(list).all(|(a, b)| a.name == b.name && a.config == b.config));
        &list[grid.len()..]
    }

    /// `count` candidates of `variants` have names ending in `suffix`, each with `want` at
    /// `pointer` in its configuration.
    fn each_with(variants: &[Candidate], suffix: &str, count: usize, pointer: &str, want: serde_json::Value) {
        let with: Vec<&Candidate> = variants.iter().filter(|c| c.name.ends_with(suffix)).collect();
        assert_eq!(with.len(), count, "{suffix}");
        assert!(with.iter().all(|c| c.config.pointer(pointer) == Some(&want)), "{suffix}: {pointer}");
    }

    /// The repository's candidate lists parse, name each candidate once, and build every
    /// candidate's engine (a list that fails here would fail ten minutes into a suite run).
    #[test]
    fn the_candidate_lists_in_eval_build() {
        let eval = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../eval");
        let read = |file: &str| read_candidates(&eval.join(file)).unwrap();
        let grid = read("candidates.toml");
        assert_eq!(grid.len(), 72);
        let n = grid.len();
        // The grid crossed with three values of the correction per day.
        let per_day = read("per_day.toml");
        assert_eq!(per_day.len(), 3 * n);
        for reference in [0, 288, 1440] {
            let with: Vec<&Candidate> =
                per_day.iter().filter(|c| c.config["detector"]["per_day_reference"] == reference).collect();
            assert_eq!(with.len(), n, "per_day_reference {reference}");
        }
        // Each other list: the grid, then its variants.
        let subsets = read("subsets.toml");
        let subsets = variants(&subsets, &grid, 2);
        for prefix in ["z-", "zs-", "zd-", "sd-"] {
            // The grid's 18 rules and rests again for each of four smaller member sets.
            assert_eq!(subsets.iter().filter(|c| c.name.starts_with(prefix)).count(), 18, "{prefix}");
        }
        let weekly = read("weekly.toml");
        let weekly = variants(&weekly, &grid, 4);
        let seasonal = "/detector/seasonal_baseline/periods_seconds";
        each_with(weekly, "-week", n, seasonal, json!([86_400, 604_800]));
        each_with(weekly, "-week1h", n, seasonal, json!([86_400, 604_800]));
        each_with(weekly, "-day1h", n, seasonal, json!([86_400]));
        // A third of the grid rests six hours: those 24 again at three other rests.
        let rests = read("rests.toml");
        let rests = variants(&rests, &grid, 2);
        for (suffix, seconds) in [("rest1h", 3_600), ("rest2h", 7_200), ("rest3h", 10_800)] {
            each_with(rests, suffix, n / 3, "/alarm/rest_seconds", json!(seconds));
        }
        let tails = read("tail_quantile.toml");
        let tails = variants(&tails, &grid, 3);
        for (suffix, q) in [("-q97", 0.97), ("-q99", 0.99)] {
            each_with(tails, suffix, n, "/detector/member_calibration/tail_quantile", json!(q));
        }
        // Half the grid has the record rule on: those 36 again at two other rates.
        let rates = read("record_rate.toml");
        let rates = variants(&rates, &grid, 2);
        for (suffix, rate) in [("-rec7", 7.5), ("-rec30", 30.0)] {
            each_with(rates, suffix, n / 2, "/detector/record/decades_per_range", json!(rate));
        }
        let warm = read("min_samples.toml");
        let warm = variants(&warm, &grid, 3);
        for (suffix, samples) in [("-cal32", 32), ("-cal256", 256)] {
            each_with(warm, suffix, n, "/detector/member_calibration/min_samples", json!(samples));
        }
        let escalations = read("escalation.toml");
        let escalations = variants(&escalations, &grid, 3);
        for (suffix, escalation) in [("-esc01", 0.1), ("-esc04", 0.4)] {
            each_with(escalations, suffix, n, "/alarm/escalation", json!(escalation));
        }
        let lists = [subsets, weekly, rests, tails, rates, warm, escalations];
        for c in grid.iter().chain(&per_day).chain(lists.into_iter().flatten()) {
            build(c).unwrap();
        }
    }
}
