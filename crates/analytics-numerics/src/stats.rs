//! Robust statistics shared by the labeller and the detectors.

/// Scale factor that turns a median absolute deviation into a standard deviation for normal data.
pub const MAD_TO_SIGMA: f64 = 1.482_602_218_505_602;

/// Median of `values` (mean of the two middle values for an even count); NaN when empty.
/// Reorders `values` in place, in O(n).
pub fn median_in_place(values: &mut [f64]) -> f64 {
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    let mid = n / 2;
    let (lower, m, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    let m = *m;
    if n % 2 == 1 {
        m
    } else {
        let below = lower.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (below + m) / 2.0
    }
}

/// Median of `values` without changing them.
pub fn median(values: &[f64]) -> f64 {
    median_in_place(&mut values.to_vec())
}

/// Median and robust sigma (1.4826 x median absolute deviation) of `values`.
pub fn median_sigma(values: &[f64]) -> (f64, f64) {
    let mut buf = values.to_vec();
    let m = median_in_place(&mut buf);
    for v in &mut buf {
        *v = (*v - m).abs();
    }
    (m, MAD_TO_SIGMA * median_in_place(&mut buf))
}

/// The `q`-quantile (0..=1) of `values` with linear interpolation between ranks; NaN when empty.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    quantile_sorted(&sorted, q)
}

/// The `q`-quantile of already sorted values, with linear interpolation between ranks.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Arithmetic mean; NaN when empty.
pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_quantiles_by_hand() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.95), 4.8);
        assert_eq!(quantile(&[7.0], 0.95), 7.0);
        // MAD of 1..=5 around 3 is 1.
        let (m, s) = median_sigma(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(m, 3.0);
        assert!((s - MAD_TO_SIGMA).abs() < 1e-12);
    }
}
