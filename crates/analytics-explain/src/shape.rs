//! Shape features of an event against its context, and the spike/trend/seasonal/normal label.

use std::ops::Range;

use analytics_types::{AnomalyLabel, Evidence};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::seasonality::{median_step_seconds, Period};
use crate::stats::{median, median_sigma, quantile};
use crate::ExplainError;

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
        }
    }
}

/// The label and the evidence behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    /// Spike, trend, seasonal or normal.
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
    let label = if deviation_sigma.abs() < cfg.normal_sigma {
        AnomalyLabel::Normal
    } else if len <= cfg.spike_max_points && returned != Some(false) {
        AnomalyLabel::Spike
    } else if returned == Some(false) || (returned.is_none() && len > cfg.spike_max_points) {
        AnomalyLabel::Trend
    } else if let Some((p, _, _, _)) = &seasonal {
        // Came back, and long: seasonal if the values are usual for the cycle as a whole.
        let cycle = &values[a.saturating_sub(p.points)..a];
        let margin = sigma;
        let (lo, hi) = (quantile(cycle, 0.01) - margin, quantile(cycle, 0.99) + margin);
        let inside = values[a..b].iter().filter(|v| (lo..=hi).contains(*v)).count();
        if inside as f64 >= cfg.seasonal_in_range * len as f64 {
            AnomalyLabel::Seasonal
        } else {
            AnomalyLabel::Trend
        }
    } else {
        // A long excursion that came back: a sustained change of level that ended.
        AnomalyLabel::Trend
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
        after_to_end: after.end == n,
    })
}
