//! Shape features of an event against its context, and its label: spike, dip, level shift,
//! trend, variance change, seasonal or normal.
//!
//! The rules, in the order they are tried (each reads the event's residuals against what was
//! expected, in robust sigmas of the context):
//!
//! 1. **normal**: the largest deviation is under `normal_sigma`;
//! 2. **variance change**: the point-to-point spread of the event (of a short event, the event
//!    and what followed it), over more than `spike_max_points`, is at least `variance_ratio`
//!    times the context's (or at most its inverse, with the level within `sustained_sigma` of
//!    the expected one): the noise changed;
//! 3. **spike** / **dip**: at most `spike_max_points` long and the series came back (or nothing
//!    follows): up is a spike, down a dip;
//! 4. **seasonal**: came back, the series has a cycle and a whole one precedes the event, and
//!    nearly all the event's values lie in the range the cycle has at other phases;
//! 5. **level shift** / **trend**: a move of level, abrupt or gradual. Abrupt when, somewhere
//!    from just before the event to just after it, the mean residual of `shift_window` points
//!    stands `shift_step` of the move above the mean of the `shift_window` points before.

use std::ops::Range;

use analytics_types::{AnomalyLabel, Evidence};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ExplainError;
use analytics_numerics::seasonality::{median_step_seconds, Period};
use analytics_numerics::stats::{median, median_sigma, quantile};

/// Thresholds of the classifier. The defaults were chosen on simulated fleets (see the crate's
/// accuracy test) and read as plain rules; change them per engine through its config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShapeConfig {
    /// An event of at most this many points can be a spike.
    pub spike_max_points: usize,
    /// Below this many robust sigmas (peak deviation), an event is normal.
    pub normal_sigma: f64,
    /// A level after the event this many robust sigmas from the expected value is sustained.
    pub sustained_sigma: f64,
    /// Points of context before the event (at least; longer events get three times their length).
    pub context_points: usize,
    /// Points after the event used to judge whether the series came back.
    pub after_points: usize,
    /// Share of an event's points that must lie within the cycle's usual range for a seasonal label.
    pub seasonal_in_range: f64,
    /// Point-to-point spread of the event, against the context's, from which a change of
    /// spread is a variance change (its inverse for a spread that shrank).
    pub variance_ratio: f64,
    /// Points in each of the two runs whose means a level shift steps between.
    pub shift_window: usize,
    /// Share of the level reached by which the mean of one run must stand above that of the run
    /// before it, somewhere from just before the event to just after it, for a move of level to
    /// be a level shift (a step) rather than a trend (a ramp).
    pub shift_step: f64,
}

impl Default for ShapeConfig {
    fn default() -> Self {
        Self {
            spike_max_points: 10,
            normal_sigma: 4.0,
            sustained_sigma: 3.0,
            context_points: 240,
            after_points: 30,
            seasonal_in_range: 0.9,
            variance_ratio: 2.5,
            shift_window: 10,
            shift_step: 0.6,
        }
    }
}

/// The label and the evidence behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    /// What kind of event it is.
    pub label: AnomalyLabel,
    /// The measurements that led to the label.
    pub evidence: Evidence,
    /// Whether the expected values came from the cycle (true) or from the recent level (false).
    pub used_season: bool,
    /// The period, when one was used.
    pub period: Option<Period>,
    /// The series returned to its expected level after the event (None: no points after it).
    pub returned: Option<bool>,
    /// How long after the event `returned` and `evidence.level_after` were judged over: from
    /// the event's end to the last point looked at, plus one sampling step, in seconds.
    pub after_seconds: i64,
    /// Whether that stretch runs to the end of the data (what followed is all there is).
    pub after_to_end: bool,
    /// How long a stretch `evidence.spread_during` was measured over, in seconds: the event,
    /// or for an event of at most `spike_max_points`, the event and what was looked at after it.
    pub spread_seconds: i64,
}

/// Point-to-point spread of `values`: the robust standard deviation (1.4826 x MAD) of successive
/// changes over the square root of 2, which for white noise is the noise's standard deviation
/// and which a change of level moves by one outlier only. 0 for fewer than three values.
fn step_spread(values: &[f64]) -> f64 {
    if values.len() < 3 {
        return 0.0;
    }
    let diffs: Vec<f64> = values.windows(2).map(|w| w[1] - w[0]).collect();
    median_sigma(&diffs).1 / std::f64::consts::SQRT_2
}

/// Expected value of point `i` from earlier cycles: the median, over up to three earlier cycles,
/// of the mean of the points within two steps of the same phase. Uses only points before `limit`.
fn seasonal_expected(values: &[f64], i: usize, period: usize, limit: usize) -> Option<f64> {
    let mut per_cycle = [0.0; 3];
    let mut k = 0;
    for cycle in 1..=3 {
        let Some(centre) = i.checked_sub(cycle * period) else {
            break;
        };
        let lo = centre.saturating_sub(2);
        let hi = (centre + 3).min(limit);
        if lo >= hi {
            continue; // that cycle's phase falls inside the event: not usable
        }
        let slice = &values[lo..hi];
        per_cycle[k] = slice.iter().sum::<f64>() / slice.len() as f64;
        k += 1;
    }
    (k > 0).then(|| median(&per_cycle[..k]))
}

/// Classifies the event `event` of a series and measures its evidence.
///
/// The event's own points and up to `after_points` after it are compared with what was
/// expected: the value at the same phase of earlier cycles when the series has a `period` and
/// that explains the context better than a flat level, the median of the context otherwise.
pub fn classify(
    timestamps: &[DateTime<Utc>],
    values: &[f64],
    event: Range<usize>,
    period: Option<Period>,
    cfg: &ShapeConfig,
) -> Result<Shape, ExplainError> {
    let n = values.len();
    if timestamps.len() != n {
        return Err(ExplainError::LengthMismatch { timestamps: timestamps.len(), values: n });
    }
    if event.start >= event.end || event.end > n {
        return Err(ExplainError::BadEvent { start: event.start, end: event.end, len: n });
    }
    let (a, b) = (event.start, event.end);
    let len = b - a;
    let context = a.saturating_sub(cfg.context_points.max(3 * len))..a;
    // Without context, the event is judged against itself (first points of a series).
    let context = if context.is_empty() { a..b } else { context };
    let after = b..(b + cfg.after_points.max(len.min(3 * cfg.after_points))).min(n);

    // Flat-level residuals of the context.
    let (level, level_sigma) = median_sigma(&values[context.clone()]);

    // Seasonal residuals, when a period is known and a full cycle precedes at least 30 points
    // of context: the seasonal context starts no earlier than one period into the series.
    let seasonal = period.filter(|p| p.points >= 4 && a >= p.points + 30).and_then(|p| {
        let start = context.start.max(p.points);
        let expected: Vec<f64> =
            (start..after.end).map(|i| seasonal_expected(values, i, p.points, a)).collect::<Option<_>>()?;
        let resid: Vec<f64> = (start..a).map(|i| values[i] - expected[i - start]).collect();
        let (_, sigma) = median_sigma(&resid);
        Some((p, expected, sigma, start))
    });
    // Use the cycle only when it explains the context better than a flat level does.

    let seasonal = seasonal.filter(|(_, _, s, _)| *s < 0.8 * level_sigma || level_sigma == 0.0);

    // Without a usable cycle, a local line through the context (robust slope: the difference of
    // the medians of its two halves) when it explains the context clearly better than a flat level.
    let line = if seasonal.is_none() && context.len() >= 20 {
        let half = context.len() / 2;
        let (first, second) = (&values[context.start..context.start + half], &values[context.start + half..a]);
        let slope = (median(second) - median(first)) / half as f64;
        let centre = context.start as f64 + (context.len() as f64 - 1.0) / 2.0;
        let resid: Vec<f64> = context.clone().map(|i| values[i] - level - slope * (i as f64 - centre)).collect();
        let (offset, sigma) = median_sigma(&resid);
        (sigma < 0.8 * level_sigma).then_some((level + offset, slope, centre, sigma))
    } else {
        None
    };

    let expected_at = |i: usize| -> f64 {
        match (&seasonal, &line) {
            (Some((_, exp, _, start)), _) => exp[i - start],
            (None, Some((lvl, slope, centre, _))) => lvl + slope * (i as f64 - centre),
            (None, None) => level,
        }
    };
    let raw_sigma = match (&seasonal, &line) {
        (Some((_, _, s, _)), _) | (None, Some((_, _, _, s))) => *s,
        (None, None) => level_sigma,
    };
    // A flat context has no spread: fall back to a small share of the level so that a change
    // still reads as large, finite sigmas.
    let sigma = if raw_sigma > 0.0 { raw_sigma } else { (level.abs() * 1e-3).max(1e-9) };

    let resid: Vec<f64> = (a..b).map(|i| (values[i] - expected_at(i)) / sigma).collect();
    let (peak_offset, &deviation_sigma) =
        resid.iter().enumerate().max_by(|x, y| x.1.abs().total_cmp(&y.1.abs())).unwrap_or((0, &0.0));
    let peak = a + peak_offset;

    let resid_after: Vec<f64> = after.clone().map(|i| (values[i] - expected_at(i)) / sigma).collect();
    let shift_after = (!resid_after.is_empty()).then(|| median(&resid_after));
    let sustained_bar = cfg.sustained_sigma.max(0.3 * deviation_sigma.abs());
    let returned = shift_after.map(|s| s.abs() < sustained_bar);
    // The event's own level and spread against the context's, for variance changes.
    let level_resid = median(&resid);
    // A short event is judged with what followed it: a detector cuts a burst of noise into
    // short events, and the spread stays wide after each.
    let spread_span = if len > cfg.spike_max_points { a..b } else { a..after.end };
    let (spread_before, spread_during) =
        (step_spread(&values[context.clone()]), step_spread(&values[spread_span.clone()]));
    // Noisier whatever the level did (the spread of successive changes does not see a move of
    // level, nor a baseline that fits badly); stiller only where the level stayed, since a
    // series that falls to its floor also goes still, and that is a shift.
    // The spreads must differ by half a robust sigma of the context too: a regular pattern
    // has (nearly) no spread of successive changes, and the ratio of two such is rounding.
    let spread_changed = spread_span.len() > cfg.spike_max_points
        && (spread_during - spread_before).abs() >= 0.5 * sigma
        && match (spread_before > 0.0, spread_during > 0.0) {
            (true, _) => {
                let ratio = spread_during / spread_before;
                ratio >= cfg.variance_ratio || (ratio <= 1.0 / cfg.variance_ratio && level_resid.abs() < sustained_bar)
            }
            // A series flat before the event and moving point to point during it.
            (false, during) => during,
        };
    let label = if deviation_sigma.abs() < cfg.normal_sigma {
        AnomalyLabel::Normal
    } else if spread_changed {
        AnomalyLabel::VarianceChange
    } else if len <= cfg.spike_max_points && returned != Some(false) {
        if deviation_sigma >= 0.0 {
            AnomalyLabel::Spike
        } else {
            AnomalyLabel::Dip
        }
    } else if returned == Some(true)
        && period.filter(|p| p.points >= 4 && a >= p.points).is_some_and(|p| {
            // Came back, and long: seasonal if the values are usual for the cycle as a whole
            // (the cycle just before the event; also where the cycle did not explain the
            // context better than a flat level, as at night, when a cycle is flat).
            let cycle = &values[a - p.points..a];
            let (lo, hi) = (quantile(cycle, 0.01) - sigma, quantile(cycle, 0.99) + sigma);
            let inside = values[a..b].iter().filter(|v| (lo..=hi).contains(*v)).count();
            inside as f64 >= cfg.seasonal_in_range * len as f64
        })
    {
        AnomalyLabel::Seasonal
    } else {
        // A move of level: the level it reaches is the one held after it when it did not come
        // back, else that of the event's last third. Abrupt if, somewhere from just before the
        // event to just after it, the mean residual of `shift_window` points stands at least
        // `shift_step` of that level above the mean of the `shift_window` before them: a
        // detector's event may open anywhere on a ramp, but a ramp takes its time wherever it
        // is cut, and a step does not. Means of runs, not points, so that noise does not make
        // steps; a baseline that drifts from the data (a line through a cycle) moves the level
        // reached, not the step.
        let reached = match shift_after {
            Some(after) if returned == Some(false) => after,
            _ => median(&resid[len - len.div_ceil(3)..]),
        };
        let first_expected = seasonal.as_ref().map_or(context.start, |(_, _, _, start)| *start);
        let from = a.saturating_sub((2 * len).max(60)).max(first_expected);
        let path: Vec<f64> = (from..after.end.max(b)).map(|i| (values[i] - expected_at(i)) / sigma / reached).collect();
        let w = cfg.shift_window.max(1);
        let mean = |r: Range<usize>| path[r.clone()].iter().sum::<f64>() / r.len() as f64;
        let step = ((a - from).saturating_sub(w).max(w)..(b - from + w).min(path.len().saturating_sub(w - 1)))
            .map(|k| mean(k..k + w) - mean(k - w..k))
            .fold(f64::NEG_INFINITY, f64::max);
        if reached != 0.0 && step >= cfg.shift_step {
            AnomalyLabel::LevelShift
        } else {
            AnomalyLabel::Trend
        }
    };

    let step = median_step_seconds(timestamps).unwrap_or(0.0);
    let duration_seconds = (timestamps[b - 1] - timestamps[a]).num_seconds() + step.round() as i64;
    let before = a.saturating_sub(cfg.after_points.max(len))..a;
    let level_before = if before.is_empty() { level } else { median(&values[before]) };
    let evidence = Evidence {
        deviation_sigma,
        peak_value: values[peak],
        peak_time: timestamps[peak],
        baseline: expected_at(peak),
        sigma,
        level_before,
        level_after: (!after.is_empty()).then(|| median(&values[after.clone()])),
        expected_seasonal: seasonal.as_ref().map(|_| expected_at(peak)),
        period_seconds: seasonal.as_ref().map(|(p, _, _, _)| p.seconds),
        duration_seconds,
        num_points: len,
        event_start: Some(timestamps[a]),
        level_during: matches!(label, AnomalyLabel::LevelShift | AnomalyLabel::VarianceChange)
            .then(|| median(&values[a..b])),
        spread_before: (label == AnomalyLabel::VarianceChange).then_some(spread_before),
        spread_during: (label == AnomalyLabel::VarianceChange).then_some(spread_during),
    };
    let after_seconds =
        if after.is_empty() { 0 } else { (timestamps[after.end - 1] - timestamps[b - 1]).num_seconds() };
    Ok(Shape {
        label,
        evidence,
        used_season: seasonal.is_some(),
        period: seasonal.map(|(p, _, _, _)| p),
        returned,
        after_seconds,
        spread_seconds: (timestamps[spread_span.end - 1] - timestamps[spread_span.start]).num_seconds()
            + step.round() as i64,
        after_to_end: after.end == n,
    })
}
