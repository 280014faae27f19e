//! The evaluation suite: every benchmark corpus under a directory, scored the same way, and the
//! leave-one-corpus-out protocol that chooses between configurations.
//!
//! Two kinds of corpus are recognised by their layout:
//! - **NAB-like** (`combined_windows.json` and `data/<category>/<file>.csv`): one series per
//!   file, fed point by point; NAB's score on its three profiles, its threshold optimised over
//!   the corpus as NAB does.
//! - **Multi-metric** (one directory per node holding `train.csv`, `test.csv` and
//!   `test_label.csv`, as ASD and JumpStarter are laid out): every metric is fed through its
//!   own stream over train then test (train is learnt from, not scored); the node's score at a
//!   test row is the highest of its metrics'. Scored per node, then averaged over nodes: best
//!   point-adjusted F1 (what papers report, and what a random score inflates), best composite
//!   F1 and VUS-PR (which it cannot), and HitRate@150% where root-cause labels exist.
//!
//! Both kinds also count **false alarms**: the alarm events a detector's own alarm rule opens on
//! a labelled-normal point, per 1,000 series-days of labelled-normal data (after the learning
//! period).
//!
//! The suite runs any [`SeriesDetector`]: this crate holds no detector code (so scoring cannot
//! lean on the thing it scores); the binary hands it engines, and [`RandomScores`] is the
//! yardstick a metric must separate from.

use std::ops::Range;

use chrono::{DateTime, Utc};
use rayon::prelude::*;
use serde::Serialize;

use analytics_types::benchmark::{Corpus, NabCorpus, NodeData};
use analytics_types::MetricSeries;

use crate::asd::{node_score, root_cause_hits};
use crate::metrics::best_point_adjusted_f1;
use crate::nab::{probation_len, NabScorer, ProfileScore, PROFILES};
use crate::range::{best_composite_f1, vus_pr};
use crate::EvalError;

/// Largest soft margin of VUS-PR, in points (an hour at five-minute steps).
pub const VUS_MAX_BUFFER: usize = 12;
/// Step between VUS-PR's margins, in points.
pub const VUS_STEP: usize = 2;

/// What a detector makes of one series fed point by point: a score in [0, 1] per point and,
/// where it has an alarm rule, the alarm events it raised (index ranges, in order).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SeriesRun {
    /// One score per point.
    pub scores: Vec<f64>,
    /// Alarm events; `None` for a detector without an alarm rule.
    pub events: Option<Vec<Range<usize>>>,
}

/// Anything that scores a series causally: an engine, a baseline.
pub trait SeriesDetector: Sync {
    /// Scores one series; the result has one score per point.
    fn run(&self, timestamps: &[DateTime<Utc>], values: &[f64]) -> SeriesRun;
}

/// Uniform random scores, seeded by the series itself (its length and values), so a run is
/// repeatable and two series get different draws. No alarm rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomScores;

impl SeriesDetector for RandomScores {
    fn run(&self, _timestamps: &[DateTime<Utc>], values: &[f64]) -> SeriesRun {
        // FNV-1a over the values' bits, then xorshift64*.
        let mut seed = values.iter().fold(0xcbf2_9ce4_8422_2325u64 ^ values.len() as u64, |h, v| {
            (h ^ v.to_bits()).wrapping_mul(0x0100_0000_01b3)
        });
        if seed == 0 {
            seed = 0x9e37_79b9_7f4a_7c15;
        }
        let scores = values
            .iter()
            .map(|_| {
                seed ^= seed >> 12;
                seed ^= seed << 25;
                seed ^= seed >> 27;
                (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
            })
            .collect();
        SeriesRun { scores, events: None }
    }
}

/// Runs `detector` over every series of `corpus` (in parallel): per file, or per node and
/// metric over train then test rows (train is learnt from; the test rows are kept).
pub fn evaluate_corpus(corpus: &Corpus, detector: &dyn SeriesDetector) -> CorpusRuns {
    match corpus {
        Corpus::Nab { corpus, .. } => {
            CorpusRuns::Nab(corpus.files.par_iter().map(|f| detector.run(f.timestamps(), f.values())).collect())
        }
        Corpus::Nodes { nodes, .. } => CorpusRuns::Nodes(evaluate_nodes(nodes, detector)),
    }
}

/// Runs `detector` over every metric of every node (in parallel), each over train then test rows
/// (train is learnt from): per node, one run per metric over its test rows, alarm events
/// re-based on the first test row.
pub fn evaluate_nodes(nodes: &[NodeData], detector: &dyn SeriesDetector) -> Vec<Vec<SeriesRun>> {
    nodes
        .par_iter()
        .map(|n| {
            let cut = n.train_timestamps().len();
            let ts: Vec<DateTime<Utc>> = n.train_timestamps().iter().chain(n.test_timestamps()).copied().collect();
            (0..n.metrics().len())
                .into_par_iter()
                .map(|m| {
                    let vs: Vec<f64> = n.train(m).iter().chain(n.test(m)).copied().collect();
                    let run = detector.run(&ts, &vs);
                    // Keep the test rows only, events re-based on the first test row.
                    let events = run.events.map(|ev| {
                        ev.into_iter().filter(|e| e.end > cut).map(|e| e.start.max(cut) - cut..e.end - cut).collect()
                    });
                    SeriesRun { scores: run.scores[cut.min(run.scores.len())..].to_vec(), events }
                })
                .collect()
        })
        .collect()
}

/// False alarms on data known to be clean (a simulated fleet with nothing injected), in two
/// parts: while each series is new, and after.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CleanAlarms {
    /// Alarm events that start in each series' first `learn` points (its first day: the
    /// detector's warm-up, when a new series is added to a fleet), per 1,000 series.
    pub first_day_per_1000_series: f64,
    /// Alarm events that start after them, per 1,000 series-days.
    pub after_per_1000_series_days: Option<f64>,
}

/// The alarm events `detector` raises on every series (in parallel), counted in each series'
/// first `learn` points (one day of points) and after them. `None` for a detector without an
/// alarm rule, or with no series.
pub fn clean_alarms(series: &[MetricSeries], learn: usize, detector: &dyn SeriesDetector) -> Option<CleanAlarms> {
    let counts: Vec<Option<(usize, usize)>> = series
        .par_iter()
        .map(|s| {
            detector.run(s.timestamps(), s.values()).events.map(|ev| {
                let first = ev.iter().filter(|e| e.start < learn).count();
                (first, ev.len() - first)
            })
        })
        .collect();
    let (mut first, mut after) = (0, 0);
    for c in counts {
        let (f, a) = c?;
        (first, after) = (first + f, after + a);
    }
    let days: f64 = series.iter().map(|s| s.len().saturating_sub(learn) as f64 / learn.max(1) as f64).sum();
    (!series.is_empty()).then(|| CleanAlarms {
        first_day_per_1000_series: 1000.0 * first as f64 / series.len() as f64,
        after_per_1000_series_days: (days > 0.0).then(|| 1000.0 * after as f64 / days),
    })
}

/// Fold `k` of `n` (`k < n`) of `corpus`: every `n`-th file or node from the `k`-th, in the
/// corpus' order, as a corpus of its own named `NAME[k+1/n]`. For choosing inside a corpus.
pub fn fold_corpus(corpus: &Corpus, k: usize, n: usize) -> Corpus {
    let keep = |i: usize| n > 0 && i % n == k;
    let name = format!("{}[{}/{}]", corpus.name(), k + 1, n);
    match corpus {
        Corpus::Nab { corpus, .. } => Corpus::Nab {
            name,
            corpus: NabCorpus {
                files: corpus.files.iter().enumerate().filter(|(i, _)| keep(*i)).map(|(_, f)| f.clone()).collect(),
            },
        },
        Corpus::Nodes { nodes, .. } => Corpus::Nodes {
            name,
            nodes: nodes.iter().enumerate().filter(|(i, _)| keep(*i)).map(|(_, x)| x.clone()).collect(),
        },
    }
}

impl CorpusRuns {
    /// The runs of [`fold_corpus`]`(corpus, k, n)`.
    pub fn fold(&self, k: usize, n: usize) -> CorpusRuns {
        fn pick<T: Clone>(v: &[T], k: usize, n: usize) -> Vec<T> {
            v.iter().enumerate().filter(|(i, _)| n > 0 && i % n == k).map(|(_, x)| x.clone()).collect()
        }
        match self {
            CorpusRuns::Nab(r) => CorpusRuns::Nab(pick(r, k, n)),
            CorpusRuns::Nodes(r) => CorpusRuns::Nodes(pick(r, k, n)),
        }
    }
}

/// A detector's runs over a corpus, in the corpus' order: per file, or per node and metric
/// (test rows only).
#[derive(Debug, Clone, PartialEq)]
pub enum CorpusRuns {
    /// One run per file.
    Nab(Vec<SeriesRun>),
    /// Per node, one run per metric.
    Nodes(Vec<Vec<SeriesRun>>),
}

/// NAB's score on one profile, as the suite reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NabFigure {
    /// Profile name, as NAB spells it.
    pub profile: &'static str,
    /// Normalised NAB score.
    pub score: f64,
    /// The corpus-wide threshold NAB's optimiser chose.
    pub threshold: f64,
    /// Windows found at that threshold.
    pub windows_detected: usize,
    /// Windows in the corpus.
    pub windows: usize,
    /// Points at or above the threshold outside every window.
    pub false_positive_points: usize,
}

impl From<&ProfileScore> for NabFigure {
    fn from(p: &ProfileScore) -> Self {
        Self {
            profile: p.profile.name,
            score: p.score,
            threshold: p.threshold,
            windows_detected: p.windows_detected,
            windows: p.windows,
            false_positive_points: p.false_positive_points,
        }
    }
}

/// One node's figures on a multi-metric corpus.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeFigures {
    /// The node (its directory's name).
    pub node: String,
    /// Best point-adjusted F1 of the node score.
    pub best_point_adjusted_f1: f64,
    /// Best composite F1 (point-wise precision, event-wise recall).
    pub best_composite_f1: f64,
    /// VUS-PR of the node score (`None` without a labelled row).
    pub vus_pr: Option<f64>,
    /// HitRate@150% over the node's root-cause segments (`None` without root-cause labels).
    pub hit_rate_150: Option<f64>,
    /// Root-cause segments scored.
    pub root_cause_segments: usize,
}

/// A corpus' figures for one detector.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CorpusReport {
    /// The corpus.
    pub corpus: String,
    /// `nab` or `nodes`.
    pub kind: &'static str,
    /// Series scored.
    pub series: usize,
    /// Points fed.
    pub points: usize,
    /// NAB's three profiles (NAB-like corpora).
    pub nab: Option<Vec<NabFigure>>,
    /// Means over nodes (multi-metric corpora).
    pub nodes: Option<NodeSummary>,
    /// Alarm events opened on labelled-normal points per 1,000 series-days of labelled-normal
    /// data (`None` for a detector without an alarm rule).
    pub false_alarms_per_1000_series_days: Option<f64>,
    /// Series-days of labelled-normal data the false alarms were counted over.
    pub normal_series_days: f64,
}

/// Means over the nodes of a multi-metric corpus, and each node's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeSummary {
    /// Mean best point-adjusted F1.
    pub best_point_adjusted_f1: f64,
    /// Mean best composite F1.
    pub best_composite_f1: f64,
    /// Mean VUS-PR over nodes with a labelled row.
    pub vus_pr: f64,
    /// HitRate@150% over every root-cause segment (`None` when the corpus has no such labels).
    pub hit_rate_150: Option<f64>,
    /// Each node.
    pub per_node: Vec<NodeFigures>,
}

impl CorpusReport {
    /// The one figure the choosing protocol ranks by: NAB's standard score, or mean VUS-PR.
    pub fn headline(&self) -> f64 {
        match (&self.nab, &self.nodes) {
            (Some(n), _) => n[0].score,
            (None, Some(s)) => s.vus_pr,
            (None, None) => 0.0,
        }
    }
}

fn mean(v: impl IntoIterator<Item = f64>) -> f64 {
    let (s, n) = v.into_iter().fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 {
        0.0
    } else {
        s / n as f64
    }
}

/// Median spacing of a series' timestamps, in seconds (60 when there are fewer than two points).
fn median_step_seconds(ts: &[DateTime<Utc>]) -> f64 {
    let mut d: Vec<i64> = ts.windows(2).map(|w| (w[1] - w[0]).num_seconds()).filter(|&s| s > 0).collect();
    if d.is_empty() {
        return 60.0;
    }
    let mid = d.len() / 2;
    *d.select_nth_unstable(mid).1 as f64
}

/// Alarm events starting on a labelled-normal point at or after `from`.
fn false_alarms(events: &[Range<usize>], labels: &[bool], from: usize) -> usize {
    events.iter().filter(|e| e.start >= from && e.start < labels.len() && !labels[e.start]).count()
}

/// Scores a detector's runs over `corpus`.
pub fn score_corpus(corpus: &Corpus, runs: &CorpusRuns) -> Result<CorpusReport, EvalError> {
    let mismatch =
        || EvalError::Mismatch { file: corpus.name().to_owned(), message: "the runs are of another corpus".into() };
    let mut report = CorpusReport {
        corpus: corpus.name().to_owned(),
        kind: "nab",
        series: corpus.num_series(),
        points: corpus.num_points(),
        nab: None,
        nodes: None,
        false_alarms_per_1000_series_days: None,
        normal_series_days: 0.0,
    };
    let mut alarms: Option<usize> = Some(0);
    match (corpus, runs) {
        (Corpus::Nab { corpus: nab, .. }, CorpusRuns::Nab(runs)) => {
            if runs.len() != nab.files.len() {
                return Err(mismatch());
            }
            let scores: Vec<Vec<f64>> = runs.iter().map(|r| r.scores.clone()).collect();
            let scorer = NabScorer::new(nab, &scores)?;
            report.nab = Some(PROFILES.iter().map(|p| NabFigure::from(&scorer.optimise(p))).collect());
            for (f, r) in nab.files.iter().zip(runs) {
                let labels = f.labels();
                let from = probation_len(f.len());
                let normal = labels[from..].iter().filter(|&&l| !l).count();
                report.normal_series_days += normal as f64 * median_step_seconds(f.timestamps()) / 86_400.0;
                alarms = match (&r.events, alarms) {
                    (Some(ev), Some(a)) => Some(a + false_alarms(ev, &labels, from)),
                    _ => None,
                };
            }
        }
        (Corpus::Nodes { nodes, .. }, CorpusRuns::Nodes(runs)) => {
            if runs.len() != nodes.len() {
                return Err(mismatch());
            }
            report.kind = "nodes";
            let mut per_node = Vec::with_capacity(nodes.len());
            let mut hits: Vec<f64> = Vec::new();
            let mut any_root_cause = false;
            for (n, metric_runs) in nodes.iter().zip(runs) {
                if metric_runs.len() != n.metrics().len()
                    || metric_runs.iter().any(|r| r.scores.len() != n.labels().len())
                {
                    return Err(mismatch());
                }
                let node_score = node_score(metric_runs, n.labels().len());
                let root_causes = root_cause_hits(n, metric_runs);
                any_root_cause |= root_causes.is_some();
                let node_hits: Vec<f64> = root_causes.iter().flatten().map(|&(_, at_150)| at_150).collect();
                hits.extend(&node_hits);
                per_node.push(NodeFigures {
                    node: n.name().to_owned(),
                    best_point_adjusted_f1: best_point_adjusted_f1(n.labels(), &node_score, 0).0,
                    best_composite_f1: best_composite_f1(n.labels(), &node_score, 0).0,
                    vus_pr: vus_pr(n.labels(), &node_score, VUS_MAX_BUFFER, VUS_STEP),
                    hit_rate_150: root_causes.as_ref().map(|_| mean(node_hits.iter().copied())),
                    root_cause_segments: node_hits.len(),
                });
                let normal = n.labels().iter().filter(|&&l| !l).count();
                report.normal_series_days +=
                    (normal * n.metrics().len()) as f64 * median_step_seconds(n.test_timestamps()) / 86_400.0;
                for r in metric_runs {
                    alarms = match (&r.events, alarms) {
                        (Some(ev), Some(a)) => Some(a + false_alarms(ev, n.labels(), 0)),
                        _ => None,
                    };
                }
            }
            report.nodes = Some(NodeSummary {
                best_point_adjusted_f1: mean(per_node.iter().map(|n| n.best_point_adjusted_f1)),
                best_composite_f1: mean(per_node.iter().map(|n| n.best_composite_f1)),
                vus_pr: mean(per_node.iter().filter_map(|n| n.vus_pr)),
                hit_rate_150: any_root_cause.then(|| mean(hits.iter().copied())),
                per_node,
            });
        }
        _ => return Err(mismatch()),
    }
    report.false_alarms_per_1000_series_days =
        alarms.map(
            |a| {
                if report.normal_series_days > 0.0 {
                    1000.0 * a as f64 / report.normal_series_days
                } else {
                    0.0
                }
            },
        );
    Ok(report)
}

/// What leave-one-corpus-out chose for one held-out corpus.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeldOut {
    /// The corpus left out of the choice and scored.
    pub corpus: String,
    /// Index of the candidate chosen on the other corpora.
    pub chosen: usize,
    /// The chosen candidate's smallest gain on the other corpora (see [`gain`]).
    pub worst_gain_elsewhere: f64,
    /// Its gain on the held-out corpus.
    pub held_out_gain: f64,
}

/// A candidate's gain over the plain robust z-score on one corpus, in units of the z-score's
/// own gain over random scores: `(h - h_z) / (h_z - h_random)` for headline figures `h`. 0 is
/// the z-score's level, -1 random's; +1 is as far above the z-score as it is above random.
/// (Where the z-score is no better than random, the plain difference `h - h_z`.)
pub fn gain(h: f64, zscore: f64, random: f64) -> f64 {
    let span = zscore - random;
    if span > 1e-12 {
        (h - zscore) / span
    } else {
        h - zscore
    }
}

/// The choice among candidates: `gains[c][k]` is candidate `c`'s [`gain`] on corpus `k`. The
/// candidate whose smallest gain over the corpora other than `held_out` is largest (maximin:
/// it must hold everywhere, not win on average) is chosen; ties go to the larger mean gain
/// there, then to the earlier candidate. With `held_out = None`, all corpora count. Returns the
/// candidate and its smallest gain.
pub fn choose(gains: &[Vec<f64>], held_out: Option<usize>) -> (usize, f64) {
    let summary = |g: &Vec<f64>| {
        let used: Vec<f64> = g.iter().enumerate().filter(|(k, _)| Some(*k) != held_out).map(|(_, &x)| x).collect();
        let worst = used.iter().copied().fold(f64::INFINITY, f64::min);
        (worst, mean(used))
    };
    let mut best = 0;
    let mut best_summary = gains.first().map_or((f64::NEG_INFINITY, 0.0), summary);
    for (c, g) in gains.iter().enumerate().skip(1) {
        let (worst, avg) = summary(g);
        if worst > best_summary.0 + 1e-12 || ((worst - best_summary.0).abs() <= 1e-12 && avg > best_summary.1 + 1e-12) {
            best = c;
            best_summary = (worst, avg);
        }
    }
    (best, if best_summary.0.is_finite() { best_summary.0 } else { 0.0 })
}

/// Leave-one-corpus-out over every corpus: what is chosen without each, and how it does there.
pub fn leave_one_corpus_out(corpora: &[String], gains: &[Vec<f64>]) -> Vec<HeldOut> {
    corpora
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let (chosen, worst) = choose(gains, Some(k));
            HeldOut { corpus: name.clone(), chosen, worst_gain_elsewhere: worst, held_out_gain: gains[chosen][k] }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use analytics_types::benchmark::NabFile;

    #[test]
    fn the_choice_holds_everywhere_but_the_held_out_corpus() {
        // The z-score at 50 over random's 10: a gain of 1 is 90.
        assert_eq!(gain(90.0, 50.0, 10.0), 1.0);
        assert_eq!(gain(30.0, 50.0, 10.0), -0.5);
        assert_eq!(gain(0.3, 0.2, 0.2), 0.3 - 0.2);
        // Three candidates, three corpora. Candidate 2 wins corpus 0 by far and loses corpus 1;
        // candidate 0 is modest everywhere; candidate 1 is best on corpora 1 and 2.
        let g = vec![vec![0.2, 0.2, 0.2], vec![0.1, 0.5, 0.6], vec![3.0, -0.4, 0.9]];
        // All corpora: candidate 0's worst (0.2) beats 1's (0.1) and 2's (-0.4).
        assert_eq!(choose(&g, None), (0, 0.2));
        // Without corpus 0, candidate 1's worst is 0.5: chosen; its gain on corpus 0 is 0.1.
        assert_eq!(choose(&g, Some(0)), (1, 0.5));
        let loco = leave_one_corpus_out(&["a".into(), "b".into(), "c".into()], &g);
        assert_eq!(loco.iter().map(|x| x.chosen).collect::<Vec<_>>(), vec![1, 2, 0]);
        assert_eq!(loco[0].held_out_gain, 0.1);
        assert_eq!(loco[1].worst_gain_elsewhere, 0.9);
        // Equal worst gains go to the larger mean.
        let g = vec![vec![0.1, 0.2], vec![0.1, 0.4]];
        assert_eq!(choose(&g, None).0, 1);
    }

    #[test]
    fn folds_split_a_corpus_and_its_runs_alike() {
        let file = |name: &str| NabFile::new(name, Vec::new(), Vec::new(), Vec::new()).unwrap();
        let corpus = Corpus::Nab {
            name: "c".into(),
            corpus: NabCorpus { files: vec![file("a/1.csv"), file("a/2.csv"), file("a/3.csv")] },
        };
        let Corpus::Nab { name, corpus: half } = fold_corpus(&corpus, 0, 2) else { panic!("a NAB fold") };
        assert_eq!(name, "c[1/2]");
        assert_eq!(half.files.iter().map(NabFile::name).collect::<Vec<_>>(), ["a/1.csv", "a/3.csv"]);
        let runs = CorpusRuns::Nab((0..3).map(|i| SeriesRun { scores: vec![i as f64], events: None }).collect());
        let CorpusRuns::Nab(r) = runs.fold(1, 2) else { panic!("NAB runs") };
        assert_eq!(r, vec![SeriesRun { scores: vec![1.0], events: None }]);
    }

    #[test]
    fn clean_alarms_count_events_in_and_after_each_series_first_day() {
        /// Alarms at fixed points: 10, 150 and 250 of every series.
        struct Fixed;
        impl SeriesDetector for Fixed {
            fn run(&self, _: &[DateTime<Utc>], values: &[f64]) -> SeriesRun {
                SeriesRun { scores: vec![0.0; values.len()], events: Some(vec![10..12, 150..151, 250..260]) }
            }
        }
        let series: Vec<MetricSeries> = (0..2)
            .map(|k| {
                let ts = (0..300).map(|i| DateTime::from_timestamp(60 * i, 0).unwrap_or_default()).collect();
                MetricSeries::new("t", "c", format!("n{k}"), "m", ts, vec![1.0; 300]).unwrap()
            })
            .collect();
        // Learning 100 points a day: two events after it on each series, over two days each.
        let after = |learn| clean_alarms(&series, learn, &Fixed).and_then(|c| c.after_per_1000_series_days);
        assert_eq!(after(100), Some(1000.0 * 4.0 / 4.0));
        assert_eq!(after(300), None);
        // The first day's: one event on each of the two series (the one at 10; the one at 150
        // starts after a learning period of 100 points).
        let c = clean_alarms(&series, 100, &Fixed).unwrap();
        assert_eq!(c.first_day_per_1000_series, 1000.0 * 2.0 / 2.0);
        // A learning period of 200 points holds the events at 10 and 150: two per series.
        assert_eq!(clean_alarms(&series, 200, &Fixed).unwrap().first_day_per_1000_series, 2000.0);
        assert_eq!(clean_alarms(&series, 300, &Fixed).unwrap().after_per_1000_series_days, None);
        assert_eq!(clean_alarms(&series, 100, &RandomScores), None);
        assert_eq!(clean_alarms(&[], 100, &Fixed), None);
    }

    #[test]
    fn random_scores_are_repeatable_per_series_and_differ_between_series() {
        let ts: Vec<DateTime<Utc>> = Vec::new();
        let a = RandomScores.run(&ts, &[1.0, 2.0, 3.0]).scores;
        assert_eq!(a, RandomScores.run(&ts, &[1.0, 2.0, 3.0]).scores);
        assert_ne!(a, RandomScores.run(&ts, &[1.0, 2.0, 4.0]).scores);
        assert!(a.iter().all(|x| (0.0..1.0).contains(x)));
        let many = RandomScores.run(&ts, &vec![0.5; 10_000]).scores;
        let m = many.iter().sum::<f64>() / many.len() as f64;
        assert!((m - 0.5).abs() < 0.02, "{m}");
    }
}
