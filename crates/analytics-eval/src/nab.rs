//! The Numenta Anomaly Benchmark: its corpus layout, and its scorer, written to agree with
//! NAB's own (`nab/sweeper.py` and the corpus-wide threshold optimiser of NAB 1.1).
//!
//! How NAB scores a detector, in short:
//! - the first 15% of each file (at most 750 points) is probationary and not scored;
//! - a point inside an anomaly window, if it is the window's first detection, earns
//!   `tp_weight x S(-(right - i + 1) / width) / S(-1)` where `S(x) = 2 / (1 + e^(5x)) - 1`:
//!   about `tp_weight` at the window's left edge, less later;
//! - a window without any detection costs `fn_weight`;
//! - a detection outside windows costs `fp_weight x S(d)`, where `d` is its distance past the
//!   previous window's right edge in units of that window's width minus one (before any window,
//!   and from three widths on, the full `fp_weight`); S is negative there, so the cost shrinks
//!   for detections just after a window;
//! - one threshold for the whole corpus (score >= threshold is a detection), chosen to maximise
//!   the sum over files;
//! - normalised so that the null detector (it never fires) scores 0 and a detector firing
//!   exactly at every window's start scores 100; as in NAB's runner, the null score is the null
//!   detector's real one (windows wholly inside the probationary period cost it nothing) while
//!   the perfect score counts every window, so such windows keep 100 out of reach.

use std::collections::BTreeMap;

use analytics_types::benchmark::{NabCorpus, NabFile};
use serde::Serialize;

use crate::EvalError;

/// A NAB cost profile.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Profile {
    /// Profile name, as NAB spells it.
    pub name: &'static str,
    /// Reward of a true positive at a window's start.
    pub tp_weight: f64,
    /// Cost of a false positive far from any window.
    pub fp_weight: f64,
    /// Cost of a missed window.
    pub fn_weight: f64,
}

/// NAB's three profiles.
pub const PROFILES: [Profile; 3] = [
    Profile { name: "standard", tp_weight: 1.0, fp_weight: 0.11, fn_weight: 1.0 },
    Profile { name: "reward_low_FP_rate", tp_weight: 1.0, fp_weight: 0.22, fn_weight: 1.0 },
    Profile { name: "reward_low_FN_rate", tp_weight: 1.0, fp_weight: 0.11, fn_weight: 2.0 },
];

/// Share of each file that is probationary.
pub const PROBATION_FRACTION: f64 = 0.15;

/// Number of probationary points of a file of `n` points: `min(floor(0.15 n), 750)`.
pub fn probation_len(n: usize) -> usize {
    ((PROBATION_FRACTION * n as f64).floor()).min(PROBATION_FRACTION * 5000.0) as usize
}

/// Windows of `file` with at least one row after the probationary period.
pub fn scorable_windows(file: &NabFile) -> usize {
    let prob = probation_len(file.len());
    file.windows().iter().filter(|&&(_, r)| r >= prob).count()
}

fn scaled_sigmoid(x: f64) -> f64 {
    if x >= 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * x).exp()) - 1.0
    }
}

/// One scorable point: its anomaly score, its weighted sweep score, and its window (if inside one).
#[derive(Debug, Clone, Copy, PartialEq)]
struct SweepPoint {
    score: f64,
    sweep: f64,
    /// Global window id (unique across the corpus), or None outside windows.
    window: Option<usize>,
}

/// NAB's `calcSweepScore` for one file; probationary points are left out. `first_window` is the
/// global id of the file's first window.
fn sweep(file: &NabFile, scores: &[f64], p: &Profile, first_window: usize, out: &mut Vec<SweepPoint>) {
    let prob = probation_len(file.len());
    let max_tp = scaled_sigmoid(-1.0);
    let mut next = 0;
    let mut current: Option<(usize, usize, f64)> = None; // (window id, right, width)
    let mut previous: Option<(usize, f64)> = None; // (right, width)
    for (i, &score) in scores.iter().enumerate() {
        if next < file.windows().len() && file.windows()[next].0 == i {
            let (l, r) = file.windows()[next];
            current = Some((first_window + next, r, (r - l + 1) as f64));
            next += 1;
        }
        let (sweep, window) = match current {
            Some((id, right, width)) => {
                let pos = -((right as f64) - (i as f64) + 1.0) / width;
                (scaled_sigmoid(pos) * p.tp_weight / max_tp, Some(id))
            }
            None => {
                let pos = match previous {
                    None => 3.0,
                    Some((right, width)) => (right as f64 - i as f64).abs() / (width - 1.0),
                };
                (scaled_sigmoid(pos) * p.fp_weight, None)
            }
        };
        if i >= prob {
            out.push(SweepPoint { score, sweep, window });
        }
        if let Some((_, right, width)) = current {
            if i == right {
                previous = Some((right, width));
                current = None;
            }
        }
    }
}

/// The raw score of one threshold: detections are points scoring at or above it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ThresholdScore {
    /// The threshold.
    pub threshold: f64,
    /// The raw (unnormalised) NAB score.
    pub raw: f64,
    /// Detected points inside windows.
    pub tp: usize,
    /// Detected points outside windows.
    pub fp: usize,
    /// Undetected points inside windows.
    pub fn_: usize,
    /// Undetected points outside windows.
    pub tn: usize,
}

/// NAB's `calcScoreByThreshold`: the raw score at every distinct score, highest first, starting
/// with 1.1 (nothing detected).
fn scores_by_threshold(points: &mut [SweepPoint], num_windows: usize, p: &Profile) -> Vec<ThresholdScore> {
    points.sort_by(|a, b| b.score.total_cmp(&a.score));
    // Windows with at least one scorable point start as misses.
    let mut best: Vec<Option<f64>> = vec![None; num_windows];
    let mut counted = vec![false; num_windows];
    for w in points.iter().filter_map(|x| x.window) {
        counted[w] = true;
    }
    let missed_cost = counted.iter().filter(|&&c| c).count() as f64 * p.fn_weight;
    let (mut tp, mut fp) = (0, 0);
    let mut fn_ = points.iter().filter(|x| x.window.is_some()).count();
    let mut tn = points.len() - fn_;
    let (mut fp_sum, mut tp_sum, mut detected_windows) = (0.0, 0.0, 0usize);
    let raw =
        |fp_sum: f64, tp_sum: f64, detected: usize| fp_sum + tp_sum - (missed_cost - detected as f64 * p.fn_weight);
    let mut out = Vec::new();
    let mut current = 1.1;
    for x in points.iter() {
        if x.score != current {
            out.push(ThresholdScore {
                threshold: current,
                raw: raw(fp_sum, tp_sum, detected_windows),
                tp,
                fp,
                fn_,
                tn,
            });
            current = x.score;
        }
        match x.window {
            None => {
                fp += 1;
                tn -= 1;
                fp_sum += x.sweep;
            }
            Some(w) => {
                tp += 1;
                fn_ -= 1;
                match best[w] {
                    None => {
                        best[w] = Some(x.sweep);
                        tp_sum += x.sweep;
                        detected_windows += 1;
                    }
                    Some(b) if x.sweep > b => {
                        tp_sum += x.sweep - b;
                        best[w] = Some(x.sweep);
                    }
                    Some(_) => {}
                }
            }
        }
    }
    out.push(ThresholdScore { threshold: current, raw: raw(fp_sum, tp_sum, detected_windows), tp, fp, fn_, tn });
    out
}

/// NAB's choice of row for a threshold: the row of that exact threshold, or else the row of the
/// smallest threshold above it (detections scoring at least the threshold); the last row when
/// the threshold is below every score.
fn row_at(rows: &[ThresholdScore], threshold: f64) -> ThresholdScore {
    let mut prev = rows[0];
    for &r in rows {
        if r.threshold == threshold {
            return r;
        }
        if r.threshold < threshold {
            return prev;
        }
        prev = r;
    }
    prev
}

/// Checks that every file has one score per point, each in [0, 1].
fn check_scores(corpus: &NabCorpus, scores: &[Vec<f64>]) -> Result<(), EvalError> {
    if scores.len() != corpus.files.len() {
        return Err(EvalError::Mismatch {
            file: "(corpus)".into(),
            message: format!("{} score lists for {} files", scores.len(), corpus.files.len()),
        });
    }
    for (f, s) in corpus.files.iter().zip(scores) {
        if s.len() != f.len() {
            return Err(EvalError::Mismatch {
                file: f.name().to_owned(),
                message: format!("{} scores for {} points", s.len(), f.len()),
            });
        }
        if let Some((i, v)) = s.iter().enumerate().find(|(_, v)| !(0.0..=1.0).contains(*v)) {
            return Err(EvalError::Mismatch {
                file: f.name().to_owned(),
                message: format!("score[{i}] is {v}, not in [0, 1]"),
            });
        }
    }
    Ok(())
}

/// One profile's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileScore {
    /// The profile.
    pub profile: Profile,
    /// The threshold used.
    pub threshold: f64,
    /// Raw score summed over files.
    pub raw: f64,
    /// Normalised score: 0 for the null detector, 100 for the perfect one.
    pub score: f64,
    /// Windows detected.
    pub windows_detected: usize,
    /// Windows in the corpus.
    pub windows: usize,
    /// Windows with at least one point after the probationary period (the others can be
    /// neither found nor missed).
    pub scorable_windows: usize,
    /// Detected points outside windows (after probation).
    pub false_positive_points: usize,
}

/// Normalises a raw score as NAB's runner does: `100 (raw - null) / (perfect - null)`, where
/// `null` is the null detector's own raw score (a miss for each window that has a scorable
/// point: `-scorable x fn_weight`) and `perfect` counts every labelled window, scorable or not
/// (`windows x tp_weight`). A window that lies wholly inside the probationary period costs the
/// null detector nothing and cannot be earned, so on such a corpus 100 is out of reach.
pub fn normalise(raw: f64, scorable: usize, windows: usize, p: &Profile) -> f64 {
    let null = -(scorable as f64) * p.fn_weight;
    let perfect = windows as f64 * p.tp_weight;
    if perfect == null {
        return 0.0;
    }
    100.0 * (raw - null) / (perfect - null)
}

/// A scorer for a corpus and one detector's scores.
#[derive(Debug)]
pub struct NabScorer<'a> {
    corpus: &'a NabCorpus,
    scores: &'a [Vec<f64>],
    first_window: Vec<usize>,
}

impl<'a> NabScorer<'a> {
    /// Checks the scores against the corpus.
    pub fn new(corpus: &'a NabCorpus, scores: &'a [Vec<f64>]) -> Result<Self, EvalError> {
        check_scores(corpus, scores)?;
        let mut first_window = Vec::with_capacity(corpus.files.len());
        let mut n = 0;
        for f in &corpus.files {
            first_window.push(n);
            n += f.windows().len();
        }
        Ok(Self { corpus, scores, first_window })
    }

    fn rows(&self, files: &[usize], p: &Profile) -> Vec<ThresholdScore> {
        let mut points = Vec::new();
        for &i in files {
            sweep(&self.corpus.files[i], &self.scores[i], p, self.first_window[i], &mut points);
        }
        scores_by_threshold(&mut points, self.corpus.num_windows(), p)
    }

    fn result(&self, files: &[usize], p: &Profile, row: ThresholdScore) -> ProfileScore {
        let windows: usize = files.iter().map(|&i| self.corpus.files[i].windows().len()).sum();
        let scorable: usize = files.iter().map(|&i| scorable_windows(&self.corpus.files[i])).sum();
        let detected = files
            .iter()
            .map(|&i| {
                let f = &self.corpus.files[i];
                let prob = probation_len(f.len());
                f.windows()
                    .iter()
                    .filter(|&&(a, b)| (a.max(prob)..=b).any(|j| self.scores[i][j] >= row.threshold))
                    .count()
            })
            .sum();
        ProfileScore {
            profile: *p,
            threshold: row.threshold,
            raw: row.raw,
            score: normalise(row.raw, scorable, windows, p),
            windows_detected: detected,
            windows,
            scorable_windows: scorable,
            false_positive_points: row.fp,
        }
    }

    /// The score with the corpus-wide threshold that maximises it (NAB's `--optimize`). Among
    /// equal scores the highest threshold wins, as in NAB.
    pub fn optimise(&self, p: &Profile) -> ProfileScore {
        let all: Vec<usize> = (0..self.corpus.files.len()).collect();
        let rows = self.rows(&all, p);
        let best = rows.iter().copied().fold(rows[0], |b, r| if r.raw > b.raw { r } else { b });
        self.result(&all, p, best)
    }

    /// The score at a given threshold (NAB's `--score`), summed file by file as NAB does.
    pub fn at_threshold(&self, p: &Profile, threshold: f64) -> ProfileScore {
        let all: Vec<usize> = (0..self.corpus.files.len()).collect();
        let raw = all.iter().map(|&i| row_at(&self.rows(&[i], p), threshold).raw).sum();
        let mut row = row_at(&self.rows(&all, p), threshold);
        row.raw = raw;
        self.result(&all, p, row)
    }

    /// The score of each category at `threshold`, normalised by that category's own windows
    /// (categories without windows are left out: their normalisation is undefined).
    pub fn by_category(&self, p: &Profile, threshold: f64) -> Vec<(String, ProfileScore)> {
        let mut cats: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, f) in self.corpus.files.iter().enumerate() {
            cats.entry(f.category()).or_default().push(i);
        }
        cats.into_iter()
            .filter(|(_, files)| files.iter().any(|&i| !self.corpus.files[i].windows().is_empty()))
            .map(|(c, files)| {
                let raw = files.iter().map(|&i| row_at(&self.rows(&[i], p), threshold).raw).sum();
                let mut row = row_at(&self.rows(&files, p), threshold);
                row.raw = raw;
                (c.to_owned(), self.result(&files, p, row))
            })
            .collect()
    }

    /// Raw false-positive cost of each category at `threshold` (its files' detections outside
    /// windows), for corpora where a category has no windows to normalise by.
    pub fn false_positives_by_category(&self, threshold: f64) -> Vec<(String, usize)> {
        let mut cats: BTreeMap<String, usize> = BTreeMap::new();
        for (i, f) in self.corpus.files.iter().enumerate() {
            let labels = f.labels();
            let prob = probation_len(f.len());
            let n = (prob..f.len()).filter(|&j| !labels[j] && self.scores[i][j] >= threshold).count();
            *cats.entry(f.category().to_owned()).or_default() += n;
        }
        cats.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, TimeZone, Utc};

    fn file_at(timestamps: Vec<DateTime<Utc>>, windows: Vec<(usize, usize)>) -> NabFile {
        let n = timestamps.len();
        NabFile::new("cat/f.csv", timestamps, vec![0.0; n], windows).unwrap()
    }

    fn file(n: usize, windows: Vec<(usize, usize)>) -> NabFile {
        let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        file_at((0..n).map(|i| t0 + chrono::Duration::minutes(5 * i as i64)).collect(), windows)
    }

    fn score(f: NabFile, s: Vec<f64>, threshold: f64) -> ProfileScore {
        let corpus = NabCorpus { files: vec![f] };
        let scores = vec![s];
        NabScorer::new(&corpus, &scores).unwrap().at_threshold(&PROFILES[0], threshold)
    }

    #[test]
    fn probation_is_fifteen_percent_capped_at_750() {
        assert_eq!(probation_len(1000), 150);
        assert_eq!(probation_len(4032), 604);
        assert_eq!(probation_len(22_695), 750);
    }

    #[test]
    fn null_perfect_and_hand_computed_cases() {
        // 200 points, probation 30, one window [100, 109].
        let f = || file(200, vec![(100, 109)]);
        // Nothing detected: the null score, normalised to 0.
        assert_eq!(score(f(), vec![0.0; 200], 0.5).score, 0.0);
        // Detected at the window's first point: the perfect score, 100.
        let mut s = vec![0.0; 200];
        s[100] = 1.0;
        assert!((score(f(), s, 0.5).score - 100.0).abs() < 1e-9);
        // Detected at its last point: S(-1/10) / S(-1) = tanh(0.25) / tanh(2.5).
        let mut s = vec![0.0; 200];
        s[109] = 1.0;
        let tp = (0.25f64).tanh() / (2.5f64).tanh();
        let r = score(f(), s, 0.5);
        assert!((r.raw - tp).abs() < 1e-12, "{}", r.raw);
        // One false positive before any window costs the full fp weight.
        let mut s = vec![0.0; 200];
        s[50] = 1.0;
        assert!((score(f(), s, 0.5).raw - (-1.0 - 0.11)).abs() < 1e-12);
        // In probation it costs nothing.
        let mut s = vec![0.0; 200];
        s[10] = 1.0;
        assert!((score(f(), s, 0.5).raw + 1.0).abs() < 1e-12);
        // Just after the window (distance 1 / 9 widths) it costs fp x S(1/9) (negative S).
        let mut s = vec![0.0; 200];
        s[110] = 1.0;
        let expected = -1.0 + 0.11 * (2.0 / (1.0 + (5.0f64 / 9.0).exp()) - 1.0);
        assert!((score(f(), s, 0.5).raw - expected).abs() < 1e-12);
    }

    #[test]
    fn rows_that_step_back_in_time_are_scored_where_they_stand() {
        // 01:00 to 01:55 comes twice (a daylight-saving change), as in one of NAB's own files; the
        // window opens at the first 01:50 (row 22) and closes at 02:10 (row 38).
        let t0 = Utc.with_ymd_and_hms(2024, 11, 3, 0, 0, 0).unwrap();
        let minutes = (0..24).chain(12..36).map(|k| t0 + chrono::Duration::minutes(5 * k));
        let f = file_at(minutes.collect(), vec![(22, 38)]);
        assert!(f.timestamps()[24] < f.timestamps()[23]);
        // Every row is scored: a detection on a repeated row counts like any other.
        let mut s = vec![0.0; 48];
        s[22] = 1.0;
        assert!((score(f.clone(), s, 0.5).score - 100.0).abs() < 1e-9);
        let mut s = vec![0.0; 48];
        s[38] = 1.0;
        let tp = (0.25f64 * 10.0 / 17.0).tanh() / (2.5f64).tanh();
        let r = score(f, s, 0.5);
        assert!((r.raw - tp).abs() < 1e-12, "{}", r.raw);
    }

    #[test]
    fn a_window_inside_probation_counts_for_the_perfect_score_only() {
        // 200 points, probation 30: window (10, 12) cannot be scored, (100, 109) can.
        let f = file(200, vec![(10, 12), (100, 109)]);
        assert_eq!(scorable_windows(&f), 1);
        // The null detector's raw score is one miss (-1), the perfect score 2 windows:
        // nothing detected normalises to 0, the best possible detection to 100 x 2 / 3.
        assert_eq!(score(f.clone(), vec![0.0; 200], 0.5).score, 0.0);
        let mut s = vec![0.0; 200];
        s[100] = 1.0;
        let r = score(f, s, 0.5);
        assert!((r.score - 200.0 / 3.0).abs() < 1e-9, "{}", r.score);
        assert_eq!((r.windows, r.scorable_windows, r.windows_detected), (2, 1, 1));
    }

    #[test]
    fn optimiser_picks_the_best_threshold() {
        // A true detection scores 0.9, a false one 0.95: threshold 0.9 gets both, 0.95 only the FP.
        let f = file(200, vec![(100, 109)]);
        let mut s = vec![0.0; 200];
        s[100] = 0.9;
        s[150] = 0.95;
        let corpus = NabCorpus { files: vec![f] };
        let scores = vec![s];
        let best = NabScorer::new(&corpus, &scores).unwrap().optimise(&PROFILES[0]);
        assert_eq!(best.threshold, 0.9);
        assert_eq!(best.windows_detected, 1);
        assert_eq!(best.false_positive_points, 1);
    }

    #[test]
    fn bad_scores_are_refused() {
        let corpus = NabCorpus { files: vec![file(10, vec![])] };
        let err = NabScorer::new(&corpus, &[vec![0.0; 9]]).unwrap_err();
        assert_eq!(err.to_string(), "cat/f.csv: 9 scores for 10 points");
        let mut s = vec![0.0; 10];
        s[3] = 1.5;
        let err = NabScorer::new(&corpus, &[s]).unwrap_err();
        assert_eq!(err.to_string(), "cat/f.csv: score[3] is 1.5, not in [0, 1]");
    }
}
