//! Explanation sentences: the series, the time, the size in the metric's units and against
//! baseline, and the duration.

use analytics_types::{AnomalyLabel, SeriesKey};
use chrono::{DateTime, Utc};

use crate::shape::Shape;

/// Formats a value with about three significant digits, in the metric's unit when known.
pub fn format_value(v: f64, unit: Option<&str>) -> String {
    let a = v.abs();
    let num = if a >= 1000.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    match unit {
        Some("") | None => num,
        Some("%") => format!("{num}%"),
        Some(u) => format!("{num} {u}"),
    }
}

/// Formats a duration in seconds as "45 s", "3 min", "2 h 15 min" or "1 d 2 h".
pub fn format_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        3600..=86_399 => match (s / 3600, (s % 3600) / 60) {
            (h, 0) => format!("{h} h"),
            (h, m) => format!("{h} h {m} min"),
        },
        _ => match (s / 86_400, (s % 86_400) / 3600) {
            (d, 0) => format!("{d} d"),
            (d, h) => format!("{d} d {h} h"),
        },
    }
}

fn clock(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The explanation sentence for a labelled event of one series.
///
/// ```
/// use analytics_explain::{classify, explain_series, ShapeConfig};
/// use analytics_types::MetricSeries;
/// use chrono::{Duration, TimeZone, Utc};
///
/// let t0 = Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap();
/// let ts: Vec<_> = (0..300).map(|i| t0 + Duration::minutes(i)).collect();
/// let mut vs: Vec<f64> = (0..300).map(|i| 41.0 + ((i * 37) % 7) as f64 * 0.5).collect();
/// vs[200] = 97.2;
/// let series = MetricSeries::new("acme", "prod", "node-7", "cpu_usage", ts, vs)?;
/// let shape = classify(series.timestamps(), series.values(), 200..201, None, &ShapeConfig::default())?;
/// let text = explain_series(&series.key(), Some("%"), &shape);
/// assert!(text.starts_with("cpu_usage on node-7 (cluster prod, tenant acme) spiked to 97.2% at 2024-03-01 15:20 UTC"), "{text}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn explain_series(key: &SeriesKey, unit: Option<&str>, shape: &Shape) -> String {
    let e = &shape.evidence;
    let who = format!("{} on {} (cluster {}, tenant {})", key.metric_name, key.node_id, key.cluster_id, key.tenant_id);
    let v = |x: f64| format_value(x, unit);
    let baseline = shape.period.map_or("recent baseline", |p| p.baseline_name());
    let dir = if e.deviation_sigma >= 0.0 { "above" } else { "below" };
    let sig = e.deviation_sigma.abs();
    let dur = format_duration(e.duration_seconds);
    match shape.label {
        AnomalyLabel::Spike => {
            let verb = if e.deviation_sigma >= 0.0 { "spiked to" } else { "dropped to" };
            format!(
                "{who} {verb} {} at {}, {sig:.1} robust sigma {dir} its {baseline} of {}, for {dur}.",
                v(e.peak_value),
                clock(e.peak_time),
                v(e.baseline)
            )
        }
        AnomalyLabel::Trend => {
            let verb = if e.deviation_sigma >= 0.0 { "rose" } else { "fell" };
            let tail = match (shape.returned, e.level_after) {
                (Some(true), Some(after)) => format!("then came back to {}", v(after)),
                (_, Some(after)) => format!("and has held near {} since", v(after)),
                _ => "and had not come back by the end of the data".to_owned(),
            };
            format!(
                "{who} {verb} from {} to {} over {dur} ending {}, {sig:.1} robust sigma {dir} its {baseline}, {tail}.",
                v(e.level_before),
                v(e.peak_value),
                clock(e.peak_time),
            )
        }
        AnomalyLabel::Seasonal => format!(
            "{who} broke its usual cycle for {dur}: {} at {} where about {} is usual at that time ({sig:.1} robust sigma {dir}); the value is normal at another time of the cycle, not at this one.",
            v(e.peak_value),
            clock(e.peak_time),
            v(e.expected_seasonal.unwrap_or(e.baseline)),
        ),
        AnomalyLabel::Normal => format!(
            "{who} stayed within {sig:.1} robust sigma of its {baseline} ({} at its largest deviation, {}).",
            v(e.peak_value),
            clock(e.peak_time)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_durations_read_well() {
        assert_eq!(format_value(97.24, Some("%")), "97.2%");
        assert_eq!(format_value(1234.5, Some("ms")), "1234 ms");
        assert_eq!(format_value(0.0123, None), "0.012");
        assert_eq!(format_value(4.56789, Some("")), "4.57");
        assert_eq!(format_duration(45), "45 s");
        assert_eq!(format_duration(180), "3 min");
        assert_eq!(format_duration(2 * 3600 + 15 * 60), "2 h 15 min");
        assert_eq!(format_duration(86_400 + 7200), "1 d 2 h");
    }
}
