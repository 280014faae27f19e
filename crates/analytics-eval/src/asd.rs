//! Root-cause scoring on the Application Server Dataset (InterFusion, KDD 2021): metrics ranked
//! by their scores inside a labelled segment, and HitRate@P% against the metrics experts named.

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
}
