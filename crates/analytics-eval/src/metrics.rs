//! Precision, recall and F1 three ways, as Salesforce Merlion defines them
//! (`merlion/evaluate/anomaly.py`), and mean time to detect.
//!
//! The ground truth is a run of labelled points per anomaly (a segment); predictions are points.
//! - **point-wise**: every point counts; TP = predicted points inside segments, FP = predicted
//!   points outside, FN = missed points inside.
//! - **point-adjusted**: a segment with any detection counts all its points as TP, else all as FN;
//!   FP as point-wise.
//! - **revised point-adjusted** (Merlion's default): TP = segments with a detection, FN = segments
//!   without, FP = predicted points outside segments.
//!
//! Precision and recall are 0 when their denominators are 0, and F1 is 0 when either is 0.

use std::ops::Range;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Counts behind the three scorings, summable across series.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Accumulator {
    /// Segments with at least one detection.
    pub tp_segments: usize,
    /// Segments without any detection.
    pub fn_segments: usize,
    /// Detected points inside segments.
    pub tp_points: usize,
    /// Missed points inside segments.
    pub fn_points: usize,
    /// Points of detected segments.
    pub tp_adjusted: usize,
    /// Points of missed segments.
    pub fn_adjusted: usize,
    /// Detected points outside segments.
    pub fp_points: usize,
    /// Undetected points outside segments.
    pub tn_points: usize,
    /// Sum of detection delays (first detection minus segment start), in seconds.
    pub delay_seconds_sum: f64,
}

/// Precision, recall and F1 of one scoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Prf {
    /// Precision.
    pub precision: f64,
    /// Recall.
    pub recall: f64,
    /// F1.
    pub f1: f64,
}

fn prf(tp: usize, fp: usize, fn_: usize) -> Prf {
    let precision = if tp + fp == 0 { 0.0 } else { tp as f64 / (tp + fp) as f64 };
    let recall = if tp + fn_ == 0 { 0.0 } else { tp as f64 / (tp + fn_) as f64 };
    let f1 = if precision == 0.0 || recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) };
    Prf { precision, recall, f1 }
}

/// The maximal runs of `true` in `labels`.
pub fn segments(labels: &[bool]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, &l) in labels.iter().enumerate() {
        match (l, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(s..labels.len());
    }
    out
}

impl Accumulator {
    /// Scores one series: `labels` and `predicted` per point, `timestamps` for the delays.
    /// Points before `from` are left out (a probationary period).
    pub fn of(labels: &[bool], predicted: &[bool], timestamps: &[DateTime<Utc>], from: usize) -> Self {
        let n = labels.len().min(predicted.len()).min(timestamps.len());
        let from = from.min(n);
        let mut acc = Accumulator::default();
        let segs = segments(&labels[from..n]);
        let mut inside = vec![false; n - from];
        for seg in &segs {
            let (a, b) = (seg.start + from, seg.end + from);
            inside[seg.clone()].iter_mut().for_each(|x| *x = true);
            let hits = (a..b).filter(|&i| predicted[i]).count();
            acc.tp_points += hits;
            acc.fn_points += (b - a) - hits;
            match (a..b).find(|&i| predicted[i]) {
                Some(first) => {
                    acc.tp_segments += 1;
                    acc.tp_adjusted += b - a;
                    acc.delay_seconds_sum += (timestamps[first] - timestamps[a]).num_milliseconds() as f64 / 1000.0;
                }
                None => {
                    acc.fn_segments += 1;
                    acc.fn_adjusted += b - a;
                }
            }
        }
        for (k, &is_in) in inside.iter().enumerate() {
            if !is_in {
                if predicted[from + k] {
                    acc.fp_points += 1;
                } else {
                    acc.tn_points += 1;
                }
            }
        }
        acc
    }

    /// Point-wise precision, recall and F1.
    pub fn pointwise(&self) -> Prf {
        prf(self.tp_points, self.fp_points, self.fn_points)
    }

    /// Point-adjusted precision, recall and F1.
    pub fn point_adjusted(&self) -> Prf {
        prf(self.tp_adjusted, self.fp_points, self.fn_adjusted)
    }

    /// Revised point-adjusted precision, recall and F1 (Merlion's default).
    pub fn revised_point_adjusted(&self) -> Prf {
        prf(self.tp_segments, self.fp_points, self.fn_segments)
    }

    /// Mean time from a segment's start to its first detection, over detected segments, in seconds.
    pub fn mean_time_to_detect_seconds(&self) -> f64 {
        if self.tp_segments == 0 {
            0.0
        } else {
            self.delay_seconds_sum / self.tp_segments as f64
        }
    }
}

impl std::ops::Add for Accumulator {
    type Output = Accumulator;
    fn add(self, o: Accumulator) -> Accumulator {
        Accumulator {
            tp_segments: self.tp_segments + o.tp_segments,
            fn_segments: self.fn_segments + o.fn_segments,
            tp_points: self.tp_points + o.tp_points,
            fn_points: self.fn_points + o.fn_points,
            tp_adjusted: self.tp_adjusted + o.tp_adjusted,
            fn_adjusted: self.fn_adjusted + o.fn_adjusted,
            fp_points: self.fp_points + o.fp_points,
            tn_points: self.tn_points + o.tn_points,
            delay_seconds_sum: self.delay_seconds_sum + o.delay_seconds_sum,
        }
    }
}

impl std::iter::Sum for Accumulator {
    fn sum<I: Iterator<Item = Accumulator>>(iter: I) -> Accumulator {
        iter.fold(Accumulator::default(), |a, b| a + b)
    }
}

/// The best point-adjusted F1 over every threshold of `scores` (the figure anomaly-detection
/// papers such as InterFusion report), and the threshold reaching it. Thresholds are the
/// distinct score values; O(n log n).
pub fn best_point_adjusted_f1(labels: &[bool], scores: &[f64], from: usize) -> (f64, f64) {
    let n = labels.len().min(scores.len());
    let from = from.min(n);
    let segs = segments(&labels[from..n]);
    // Each segment enters at its highest score; each outside point at its own.
    let mut events: Vec<(f64, usize, bool)> = Vec::new(); // (score, weight, is_segment)
    let mut inside = vec![false; n - from];
    for s in &segs {
        inside[s.clone()].iter_mut().for_each(|x| *x = true);
        let top = scores[from + s.start..from + s.end].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        events.push((top, s.end - s.start, true));
    }
    for (k, &is_in) in inside.iter().enumerate() {
        if !is_in {
            events.push((scores[from + k], 1, false));
        }
    }
    events.sort_by(|a, b| b.0.total_cmp(&a.0));
    let total: usize = segs.iter().map(|s| s.end - s.start).sum();
    let (mut tp, mut fp) = (0usize, 0usize);
    let (mut best_f1, mut best_t) = (0.0, f64::INFINITY);
    let mut i = 0;
    while i < events.len() {
        let t = events[i].0;
        while i < events.len() && events[i].0 == t {
            if events[i].2 {
                tp += events[i].1;
            } else {
                fp += events[i].1;
            }
            i += 1;
        }
        let f1 = prf(tp, fp, total - tp).f1;
        if f1 > best_f1 {
            best_f1 = f1;
            best_t = t;
        }
    }
    (best_f1, best_t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn ts(n: usize) -> Vec<DateTime<Utc>> {
        let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        (0..n).map(|i| t0 + chrono::Duration::minutes(i as i64)).collect()
    }

    fn bools(s: &str) -> Vec<bool> {
        s.chars().map(|c| c == '1').collect()
    }

    #[test]
    fn three_scorings_by_hand() {
        // Two segments (2..5 and 8..10), one detected at its second point, plus one false positive.
        let labels = bools("0011100110");
        let pred = bools("0001000001");
        let acc = Accumulator::of(&labels, &pred, &ts(10), 0);
        assert_eq!((acc.tp_points, acc.fn_points, acc.fp_points), (1, 4, 1));
        assert_eq!((acc.tp_adjusted, acc.fn_adjusted), (3, 2));
        assert_eq!((acc.tp_segments, acc.fn_segments), (1, 1));
        let pw = acc.pointwise();
        assert_eq!((pw.precision, pw.recall), (0.5, 0.2));
        let pa = acc.point_adjusted();
        assert_eq!((pa.precision, pa.recall), (0.75, 0.6));
        let rpa = acc.revised_point_adjusted();
        assert_eq!((rpa.precision, rpa.recall, rpa.f1), (0.5, 0.5, 0.5));
        assert_eq!(acc.mean_time_to_detect_seconds(), 60.0);
    }

    #[test]
    fn nothing_predicted_scores_zero_and_probation_is_skipped() {
        let labels = bools("0011100110");
        let acc = Accumulator::of(&labels, &[false; 10], &ts(10), 0);
        assert_eq!(acc.revised_point_adjusted().f1, 0.0);
        let acc = Accumulator::of(&labels, &bools("1000000000"), &ts(10), 1);
        assert_eq!(acc.fp_points, 0);
    }

    #[test]
    fn best_point_adjusted_f1_by_hand() {
        let labels = bools("0011100000");
        let scores = [0.1, 0.2, 0.3, 0.9, 0.3, 0.1, 0.5, 0.1, 0.1, 0.1];
        // At 0.9: the segment (3 points) and nothing else: F1 = 1.
        assert_eq!(best_point_adjusted_f1(&labels, &scores, 0), (1.0, 0.9));
    }
}
