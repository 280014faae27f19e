//! Seasonality detection: which calendar cycle (hour, day, week), if any, a series follows.
//!
//! Operations metrics follow the clock: an hourly job, the daily cycle of users, the week.
//! We test those candidate periods with the autocorrelation function and keep one only when
//! it is a real peak: the correlation at the period must clearly beat the correlation at half
//! the period (a smooth series correlates with itself at every short lag, so a high value alone
//! proves nothing).

use chrono::{DateTime, Utc};

/// A detected cycle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Period {
    /// Length of the cycle in points.
    pub points: usize,
    /// Length of the cycle in seconds.
    pub seconds: i64,
    /// Autocorrelation at the period minus autocorrelation at half the period, in [-2, 2].
    pub strength: f64,
}

impl Period {
    /// Human name of the baseline this period gives: "hour-of-day baseline" for a daily cycle.
    pub fn baseline_name(&self) -> &'static str {
        match self.seconds {
            3_600 => "minute-of-hour baseline",
            86_400 => "hour-of-day baseline",
            604_800 => "day-of-week baseline",
            _ => "seasonal baseline",
        }
    }
}

/// Candidate cycles, in seconds: an hour, a day, a week.
pub const CALENDAR_PERIODS: [i64; 3] = [3_600, 86_400, 604_800];

/// Median spacing of the timestamps, in seconds (None with fewer than two points).
pub fn median_step_seconds(timestamps: &[DateTime<Utc>]) -> Option<f64> {
    if timestamps.len() < 2 {
        return None;
    }
    let mut steps: Vec<f64> = timestamps.windows(2).map(|w| (w[1] - w[0]).num_milliseconds() as f64 / 1000.0).collect();
    Some(crate::stats::median_in_place(&mut steps))
}

/// Autocorrelation of `values` at `lag` (Pearson correlation of the series with itself shifted).
pub fn autocorrelation(values: &[f64], lag: usize) -> f64 {
    if lag == 0 {
        return 1.0;
    }
    if lag >= values.len() {
        return 0.0;
    }
    let (a, b) = (&values[..values.len() - lag], &values[lag..]);
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (dx, dy) = (x - ma, y - mb);
        cov += dx * dy;
        va += dx * dx;
        vb += dy * dy;
    }
    if va <= 0.0 || vb <= 0.0 {
        0.0
    } else {
        cov / (va * vb).sqrt()
    }
}

/// Minimum autocorrelation at the period, and minimum margin over half the period.
const MIN_ACF: f64 = 0.3;
const MIN_STRENGTH: f64 = 0.3;

/// Detects the calendar cycle of a series sampled at roughly regular steps.
///
/// Needs at least two full cycles. Among the candidates that qualify, the shortest whose
/// strength is within 80% of the strongest wins (a daily series also peaks at a week).
pub fn detect_period(timestamps: &[DateTime<Utc>], values: &[f64]) -> Option<Period> {
    let step = median_step_seconds(timestamps)?;
    if step <= 0.0 {
        return None;
    }
    let mut found: Vec<Period> = Vec::new();
    for seconds in CALENDAR_PERIODS {
        let points = (seconds as f64 / step).round() as usize;
        if points < 4 || points * 2 > values.len() {
            continue;
        }
        let acf = autocorrelation(values, points);
        let strength = acf - autocorrelation(values, points / 2);
        if acf >= MIN_ACF && strength >= MIN_STRENGTH {
            found.push(Period { points, seconds, strength });
        }
    }
    let best = found.iter().map(|p| p.strength).fold(f64::NEG_INFINITY, f64::max);
    found.into_iter().find(|p| p.strength >= 0.8 * best)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn series(n: usize, step_min: i64, f: impl Fn(usize) -> f64) -> (Vec<DateTime<Utc>>, Vec<f64>) {
        let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        ((0..n).map(|i| t0 + Duration::minutes(step_min * i as i64)).collect(), (0..n).map(f).collect())
    }

    #[test]
    fn finds_a_daily_cycle_at_one_minute_and_five_minutes() {
        for step in [1usize, 5] {
            let per_day = 1440 / step;
            let (ts, vs) = series(3 * per_day, step as i64, |i| {
                (std::f64::consts::TAU * i as f64 / per_day as f64).sin() + 0.1 * ((i * 7919) % 13) as f64 / 13.0
            });
            let p = detect_period(&ts, &vs).unwrap();
            assert_eq!((p.points, p.seconds), (per_day, 86_400));
        }
    }

    #[test]
    fn finds_an_hourly_job() {
        let (ts, vs) = series(600, 1, |i| if i % 60 < 5 { 10.0 } else { 1.0 });
        assert_eq!(detect_period(&ts, &vs).unwrap().seconds, 3_600);
    }

    #[test]
    fn no_cycle_in_a_trend_or_noise_or_too_short() {
        let (ts, vs) = series(4000, 1, |i| i as f64);
        assert_eq!(detect_period(&ts, &vs), None);
        let (ts, vs) = series(4000, 1, |i| ((i * 2_654_435_761) % 1000) as f64);
        assert_eq!(detect_period(&ts, &vs), None);
        let (ts, vs) = series(2000, 1, |i| (std::f64::consts::TAU * i as f64 / 1440.0).sin());
        assert_eq!(detect_period(&ts, &vs), None, "under two cycles");
    }
}
