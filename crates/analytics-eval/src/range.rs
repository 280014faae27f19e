//! Metrics that a random score cannot inflate, for labelled segments and per-point scores.
//!
//! - **Composite F1** (Garg et al., "An Evaluation of Anomaly Detection and Diagnosis in
//!   Multivariate Time Series", IEEE TNNLS 2021): point-wise precision with event-wise recall.
//!   A lucky point inside a long segment counts the segment as found (as point adjustment
//!   does) but does not lift precision: every alarmed point outside segments still counts
//!   against it. [`best_composite_f1`] takes the best threshold, as papers report.
//! - **Range AUC-PR** and **VUS-PR** (Paparrizos et al., "Volume Under the Surface", VLDB
//!   2022): threshold-free. Each segment's labels are extended by a soft margin of `buffer`
//!   points (`sqrt(1 - d / buffer)` at distance `d` outside it, up to `buffer / 2`), recall is
//!   the soft share of labelled points found times the share of (extended) segments touched,
//!   precision the soft labelled mass among the alarmed points; the area under that
//!   precision-recall curve over 250 thresholds is the range AUC-PR. VUS-PR averages it over
//!   buffers `0, step, ..., max_buffer`. Written after the authors' `TSB-UAD` implementation
//!   (`RangeAUC` with `AUC_type='window'`).
//!
//! A random score scores about the share of labelled points on the AUC metrics, and about
//! `2p / (1 + p)` on composite F1 (`p` that share): these are the rows to compare against.

use crate::metrics::segments;

/// Best composite F1 over every threshold of `scores`, and that threshold. Points before
/// `from` are left out. 0 when there is no labelled segment.
pub fn best_composite_f1(labels: &[bool], scores: &[f64], from: usize) -> (f64, f64) {
    let n = labels.len().min(scores.len());
    let from = from.min(n);
    let (labels, scores) = (&labels[from..n], &scores[from..n]);
    let segs = segments(labels);
    if segs.is_empty() {
        return (0.0, f64::INFINITY);
    }
    let mut seg_of = vec![usize::MAX; labels.len()];
    for (k, s) in segs.iter().enumerate() {
        seg_of[s.clone()].iter_mut().for_each(|x| *x = k);
    }
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut found = vec![false; segs.len()];
    let (mut tp, mut pred, mut events) = (0usize, 0usize, 0usize);
    let (mut best, mut best_t) = (0.0, f64::INFINITY);
    let mut i = 0;
    while i < order.len() {
        let t = scores[order[i]];
        while i < order.len() && scores[order[i]] == t {
            let j = order[i];
            pred += 1;
            if labels[j] {
                tp += 1;
                let k = seg_of[j];
                if !found[k] {
                    found[k] = true;
                    events += 1;
                }
            }
            i += 1;
        }
        let precision = tp as f64 / pred as f64;
        let recall = events as f64 / segs.len() as f64;
        if precision > 0.0 && recall > 0.0 {
            let f1 = 2.0 * precision * recall / (precision + recall);
            if f1 > best {
                best = f1;
                best_t = t;
            }
        }
    }
    (best, best_t)
}

/// Labels extended by a soft margin of `buffer` points on each side of every segment (up to
/// `buffer / 2` points out, weight `sqrt(1 - d / buffer)` at distance `d`), capped at 1.
fn soft_labels(labels: &[bool], buffer: usize) -> Vec<f64> {
    let n = labels.len();
    let mut soft: Vec<f64> = labels.iter().map(|&l| f64::from(u8::from(l))).collect();
    if buffer == 0 {
        return soft;
    }
    let w = buffer as f64;
    for s in segments(labels) {
        // After the segment: TSB-UAD measures from its last point (`e`), so the first point
        // after it sits at distance 1.
        let last = s.end - 1;
        let after = s.end..(last + buffer / 2).min(n).max(s.end);
        for (x, v) in after.clone().zip(&mut soft[after]) {
            *v += (1.0 - (x - last) as f64 / w).sqrt();
        }
        let before = s.start.saturating_sub(buffer / 2)..s.start;
        for (x, v) in before.clone().zip(&mut soft[before]) {
            *v += (1.0 - (s.start - x) as f64 / w).sqrt();
        }
    }
    soft.iter_mut().for_each(|v| *v = v.min(1.0));
    soft
}

/// Range AUC-PR with a soft margin of `buffer` points; `None` when there is no labelled point.
pub fn range_auc_pr(labels: &[bool], scores: &[f64], buffer: usize) -> Option<f64> {
    let n = labels.len().min(scores.len());
    let (labels, scores) = (&labels[..n], &scores[..n]);
    let p = labels.iter().filter(|&&l| l).count() as f64;
    if p == 0.0 {
        return None;
    }
    let soft = soft_labels(labels, buffer);
    let extended: Vec<bool> = soft.iter().map(|&v| v > 0.0).collect();
    let segs = segments(&extended);
    let mut seg_of = vec![usize::MAX; n];
    for (k, s) in segs.iter().enumerate() {
        seg_of[s.clone()].iter_mut().for_each(|x| *x = k);
    }
    let p_new = (p + soft.iter().sum::<f64>()) / 2.0;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    // TSB-UAD's thresholds: the sorted scores at 250 evenly spaced ranks; a threshold admits
    // every point scoring at least it (ties included).
    let ranks: Vec<usize> = (0..250).map(|k| ((n - 1) as f64 * k as f64 / 249.0) as usize).collect();
    let mut found = vec![false; segs.len()];
    let (mut tp, mut pred, mut touched) = (0.0f64, 0usize, 0usize);
    let mut i = 0;
    let (mut recall_prev, mut precision_prev) = (0.0, 1.0);
    let mut area = 0.0;
    for &r in &ranks {
        let t = scores[order[r]];
        while i < n && scores[order[i]] >= t {
            let j = order[i];
            pred += 1;
            tp += soft[j];
            if extended[j] && !found[seg_of[j]] {
                found[seg_of[j]] = true;
                touched += 1;
            }
            i += 1;
        }
        let recall = (tp / p_new).min(1.0) * touched as f64 / segs.len() as f64;
        let precision = tp / pred as f64;
        area += (recall - recall_prev) * (precision + precision_prev) / 2.0;
        recall_prev = recall;
        precision_prev = precision;
    }
    Some(area)
}

/// VUS-PR: the mean of [`range_auc_pr`] over buffers `0, step, 2 step, ..., max_buffer`.
pub fn vus_pr(labels: &[bool], scores: &[f64], max_buffer: usize, step: usize) -> Option<f64> {
    let buffers: Vec<usize> = (0..=max_buffer).step_by(step.max(1)).collect();
    let mut sum = 0.0;
    for &b in &buffers {
        sum += range_auc_pr(labels, scores, b)?;
    }
    Some(sum / buffers.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bools(s: &str) -> Vec<bool> {
        s.chars().map(|c| c == '1').collect()
    }

    #[test]
    fn composite_f1_by_hand() {
        // Two segments. Cut at 0.9: precision 1, event recall 1/2, F1 2/3; at 0.8 (one point
        // outside): 1/2 and 1/2, F1 1/2; at 0.3: precision 2/3, recall 1, F1 4/5 (the best);
        // at 0: precision 1/2, recall 1, F1 2/3.
        let labels = bools("0111000110");
        let scores = [0.0, 0.0, 0.9, 0.0, 0.8, 0.0, 0.0, 0.0, 0.3, 0.0];
        let (f1, t) = best_composite_f1(&labels, &scores, 0);
        assert!((f1 - 0.8).abs() < 1e-12, "{f1}");
        assert_eq!(t, 0.3);
        // From point 3 on (the 0.9 in probation): cut at 0.3, precision 1/2 and recall 1/2;
        // at 0, precision 3/7 and recall 1, F1 0.6 (the best).
        let (f1, t) = best_composite_f1(&labels, &scores, 3);
        assert!((f1 - 0.6).abs() < 1e-12, "{f1}");
        assert_eq!(t, 0.0);
        // Probation skips the first points; no segment at all scores 0.
        assert_eq!(best_composite_f1(&bools("0000"), &[1.0, 0.0, 0.0, 0.0], 0).0, 0.0);
    }

    #[test]
    fn a_perfect_score_has_unit_area_and_a_useless_one_the_base_rate() {
        let n = 2000;
        let labels: Vec<bool> = (0..n).map(|i| (500..520).contains(&i) || (1500..1540).contains(&i)).collect();
        let perfect: Vec<f64> = labels.iter().map(|&l| if l { 1.0 } else { 0.0 }).collect();
        let auc = range_auc_pr(&labels, &perfect, 0).unwrap();
        assert!((auc - 1.0).abs() < 1e-9, "{auc}");
        // Random scores: the area is near the share of labelled points (3%), far below 1.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let random: Vec<f64> = (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 11) as f64 / (1u64 << 53) as f64
            })
            .collect();
        let auc = range_auc_pr(&labels, &random, 0).unwrap();
        assert!(auc < 0.1, "{auc}");
        let (f1, _) = best_composite_f1(&labels, &random, 0);
        assert!(f1 < 0.2, "{f1}");
        // No labelled point: undefined.
        assert_eq!(range_auc_pr(&[false; 10], &[0.5; 10], 4), None);
    }

    #[test]
    fn the_buffer_credits_a_detection_just_before_a_segment() {
        let n = 400;
        let labels: Vec<bool> = (0..n).map(|i| (200..210).contains(&i)).collect();
        // The top score lands two points early.
        let scores: Vec<f64> = (0..n).map(|i| if i == 198 { 1.0 } else { 0.0 }).collect();
        let tight = range_auc_pr(&labels, &scores, 0).unwrap();
        let loose = range_auc_pr(&labels, &scores, 8).unwrap();
        assert!(loose > tight + 0.05, "{tight} vs {loose}");
        let soft = soft_labels(&labels, 8);
        assert_eq!(soft[199], (1.0f64 - 1.0 / 8.0).sqrt());
        assert_eq!(soft[196], (1.0f64 - 4.0 / 8.0).sqrt());
        assert_eq!(soft[195], 0.0);
        assert_eq!(soft[210], (1.0f64 - 1.0 / 8.0).sqrt());
        let v = vus_pr(&labels, &scores, 8, 4).unwrap();
        assert!(v > tight && v < loose, "{v}");
    }
}
