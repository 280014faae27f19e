//! Node-level scoring of multi-metric corpora (the Application Server Dataset, InterFusion, KDD
//! 2021, and JumpStarter's services in its layout): a node's figures at a detector's own alarms,
//! and root causes: metrics ranked by their scores inside a labelled segment, and HitRate@P%
//! against the metrics experts named.

use analytics_types::benchmark::NodeData;

use crate::metrics::best_point_adjusted_f1;
use crate::{Accumulator, EvalError, SeriesRun};

/// One node's figures: at the detector's own alarm rule, at its best threshold, and on root
/// causes.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeAlarmFigures {
    /// Point-wise and point-adjusted counts at the node's alarms: the node alarms on a test row
    /// where an alarm event of any of its metrics covers it (none for a detector without an
    /// alarm rule).
    pub at_alarms: Accumulator,
    /// Best point-adjusted F1 of the node's score, the highest of its metrics' scores at each
    /// row (the figure papers report).
    pub best_point_adjusted_f1: f64,
    /// HitRate@100% and HitRate@150% of each root-cause segment, in order; `None` for a node
    /// without root-cause labels.
    pub hit_rates: Option<Vec<(f64, f64)>>,
}

/// Scores one node's runs (one per metric, over its test rows, as
/// [`evaluate_corpus`](crate::evaluate_corpus) makes them).
pub fn node_alarm_figures(node: &NodeData, runs: &[SeriesRun]) -> Result<NodeAlarmFigures, EvalError> {
    let rows = node.labels().len();
    if runs.len() != node.metrics().len() || runs.iter().any(|r| r.scores.len() != rows) {
        let message = format!("{} runs for {} metrics of {rows} test rows", runs.len(), node.metrics().len());
        return Err(EvalError::Mismatch { file: node.name().to_owned(), message });
    }
    let mut alarmed = vec![false; rows];
    for e in runs.iter().filter_map(|r| r.events.as_ref()).flatten() {
        alarmed[e.start.min(rows)..e.end.min(rows)].iter_mut().for_each(|x| *x = true);
    }
    Ok(NodeAlarmFigures {
        at_alarms: Accumulator::of(node.labels(), &alarmed, node.test_timestamps(), 0),
        best_point_adjusted_f1: best_point_adjusted_f1(node.labels(), &node_score(runs, rows), 0).0,
        hit_rates: root_cause_hits(node, runs),
    })
}

/// A node's score at each of its `rows` test rows: the highest of its metrics' scores there.
pub(crate) fn node_score(runs: &[SeriesRun], rows: usize) -> Vec<f64> {
    (0..rows).map(|i| runs.iter().map(|r| r.scores[i]).fold(0.0, f64::max)).collect()
}

/// HitRate@100% and HitRate@150% of each of the node's root-cause segments, in order, its
/// metrics ranked by [`rank_metrics`]; `None` without root-cause labels.
pub(crate) fn root_cause_hits(node: &NodeData, runs: &[SeriesRun]) -> Option<Vec<(f64, f64)>> {
    node.interpretations().map(|segments| {
        segments
            .iter()
            .map(|seg| {
                let order = rank_metrics(runs.iter().map(|r| r.scores.as_slice()), seg.start, seg.end);
                (hit_rate(&order, &seg.metrics, 100.0), hit_rate(&order, &seg.metrics, 150.0))
            })
            .collect()
    })
}

/// The metrics ranked for one root-cause segment, most responsible first: by each metric's
/// highest score inside the segment's rows `start..=end`, ties by metric order.
pub fn rank_metrics<'a>(scores: impl IntoIterator<Item = &'a [f64]>, start: usize, end: usize) -> Vec<usize> {
    let mut ranking: Vec<(usize, f64)> =
        scores.into_iter().enumerate().map(|(m, s)| (m, s[start..=end].iter().copied().fold(0.0, f64::max))).collect();
    ranking.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranking.into_iter().map(|(m, _)| m).collect()
}

/// HitRate@P%: for a segment whose cause is `truth` (k metrics), the share of `truth` found among
/// the top `ceil(P% x k)` metrics of `ranking` (most responsible first).
pub fn hit_rate(ranking: &[usize], truth: &[usize], percent: f64) -> f64 {
    if truth.is_empty() {
        return 0.0;
    }
    let take = ((percent / 100.0) * truth.len() as f64).ceil() as usize;
    let top = &ranking[..take.min(ranking.len())];
    truth.iter().filter(|m| top.contains(m)).count() as f64 / truth.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_rate_by_hand() {
        // Truth {2, 5}; ranking 5, 7, 2, ...: @100% looks at 2 metrics (finds 5), @150% at 3 (finds both).
        let ranking = [5, 7, 2, 0, 1];
        assert_eq!(hit_rate(&ranking, &[2, 5], 100.0), 0.5);
        assert_eq!(hit_rate(&ranking, &[2, 5], 150.0), 1.0);
        assert_eq!(hit_rate(&ranking, &[], 100.0), 0.0);
    }

    #[test]
    fn metrics_rank_by_their_top_score_in_the_segment() {
        let (a, b, c) = ([0.9, 0.1, 0.1, 0.0], [0.0, 0.5, 0.2, 0.0], [0.0, 0.5, 0.0, 1.0]);
        // Rows 1..=2: a peaks at 0.1, b and c at 0.5 (tie: metric order).
        assert_eq!(rank_metrics([&a[..], &b[..], &c[..]], 1, 2), vec![1, 2, 0]);
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // lists of alarm events, one each
    fn a_node_alarms_where_any_metric_does() {
        use analytics_types::benchmark::{Interpretation, NodeParts};
        use chrono::{DateTime, Utc};
        let ts: Vec<DateTime<Utc>> = (0..6).map(|i| DateTime::from_timestamp(60 * i, 0).unwrap_or_default()).collect();
        let node = NodeData::new(NodeParts {
            name: "n".into(),
            metrics: vec!["m1".into(), "m2".into()],
            test_timestamps: ts,
            test: vec![vec![0.0; 6], vec![0.0; 6]],
            train: vec![Vec::new(), Vec::new()],
            labels: vec![false, false, true, true, false, false],
            interpretations: Some(vec![Interpretation { start: 2, end: 3, metrics: vec![1] }]),
            ..NodeParts::default()
        })
        .unwrap();
        // Metric 1 alarms on rows 4..6 (a false alarm), metric 2 on row 3 (inside the segment)
        // and scores highest there.
        let runs = [
            SeriesRun { scores: vec![0.0, 0.0, 0.1, 0.2, 0.9, 0.0], events: Some(vec![4..6]) },
            SeriesRun { scores: vec![0.0, 0.0, 0.3, 0.8, 0.0, 0.0], events: Some(vec![3..4]) },
        ];
        let f = node_alarm_figures(&node, &runs).unwrap();
        let pw = f.at_alarms.pointwise();
        assert_eq!((pw.precision, pw.recall), (1.0 / 3.0, 0.5));
        assert_eq!(f.at_alarms.point_adjusted().recall, 1.0);
        assert_eq!(f.hit_rates, Some(vec![(1.0, 1.0)]));
        // The node score peaks at 0.9 on a normal row: the best threshold is 0.8, which finds
        // the segment (adjusted: both rows) and the one false row.
        assert!((f.best_point_adjusted_f1 - 0.8).abs() < 1e-12, "{}", f.best_point_adjusted_f1);
        assert!(node_alarm_figures(&node, &runs[..1]).is_err());
    }
}
