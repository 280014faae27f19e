//! Explanation sentences: the series, the time, the size in the metric's units and against
//! baseline, and the duration.

use std::collections::BTreeMap;

use analytics_types::{AnomalyLabel, Incident, IncidentMember, IncidentScope, SeriesKey};
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

/// The unit a metric's name declares, by the Prometheus naming conventions: a unit suffix, before
/// an optional `_total`: `_seconds` (s), `_milliseconds` or `_ms` (ms), `_microseconds` (µs),
/// `_percent` or `_pct` (%), `_celsius` (°C). None when the name declares none (`cpu_usage`, a
/// count, `_ratio`, or `_bytes`, whose raw numbers read badly with a unit beside them): the
/// sentence then prints the bare number rather than guess.
///
/// ```
/// use analytics_explain::unit_of;
///
/// assert_eq!(unit_of("http_request_duration_seconds"), Some("s"));
/// assert_eq!(unit_of("request_latency_ms"), Some("ms"));
/// assert_eq!(unit_of("gc_pause_milliseconds_total"), Some("ms"));
/// assert_eq!(unit_of("disk_used_percent"), Some("%"));
/// assert_eq!(unit_of("cpu_usage"), None);
/// assert_eq!(unit_of("process_resident_memory_bytes"), None);
/// ```
pub fn unit_of(metric: &str) -> Option<&'static str> {
    let name = metric.strip_suffix("_total").unwrap_or(metric);
    [
        ("_seconds", "s"),
        ("_milliseconds", "ms"),
        ("_ms", "ms"),
        ("_microseconds", "µs"),
        ("_percent", "%"),
        ("_pct", "%"),
        ("_celsius", "°C"),
    ]
    .into_iter()
    .find(|(suffix, _)| name.ends_with(suffix) && name.len() > suffix.len())
    .map(|(_, unit)| unit)
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

/// How a move of level ended: came back, held since (only when what followed is all the data
/// there is), held for how long it was looked at, or not known.
fn tail(shape: &Shape, v: &impl Fn(f64) -> String) -> String {
    match (shape.returned, shape.evidence.level_after) {
        (Some(true), Some(after)) => format!("then came back to {}", v(after)),
        (_, Some(after)) if shape.after_to_end => format!("and has held near {} since", v(after)),
        (_, Some(after)) => {
            format!("and held near {} for the next {}", v(after), format_duration(shape.after_seconds))
        }
        _ => "and had not come back by the end of the data".to_owned(),
    }
}

/// The explanation sentence for a labelled event of one series, its numbers in `unit` (where
/// None, the unit the metric's name declares, [`unit_of`], if any).
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
    let unit = unit.or_else(|| unit_of(key.metric_name.as_str()));
    let e = &shape.evidence;
    let who = format!("{} on {} (cluster {}, tenant {})", key.metric_name, key.node_id, key.cluster_id, key.tenant_id);
    let v = |x: f64| format_value(x, unit);
    let baseline = shape.period.map_or("recent baseline", |p| p.baseline_name());
    let dir = if e.deviation_sigma >= 0.0 { "above" } else { "below" };
    let sig = e.deviation_sigma.abs();
    let dur = format_duration(e.duration_seconds);
    match shape.label {
        AnomalyLabel::Spike | AnomalyLabel::Dip => {
            let verb = if shape.label == AnomalyLabel::Spike { "spiked to" } else { "dipped to" };
            format!(
                "{who} {verb} {} at {}, {sig:.1} robust sigma {dir} its {baseline} of {}, for {dur}.",
                v(e.peak_value),
                clock(e.peak_time),
                v(e.baseline)
            )
        }
        AnomalyLabel::LevelShift => {
            // From the level before to the level the event held: both medians, so the verb
            // and the two numbers agree.
            let during = e.level_during.unwrap_or(e.peak_value);
            let verb = if during >= e.level_before { "shifted up" } else { "shifted down" };
            format!(
                "{who} {verb} from {} to {} at {}{}; {}{sig:.1} robust sigma {dir} its {baseline} of {}.",
                v(e.level_before),
                v(during),
                clock(e.event_start.unwrap_or(e.peak_time)),
                match tail(shape, &v) {
                    t if t.starts_with("then") => format!(", {t}"),
                    t => format!(" {t}"),
                },
                // The largest deviation, where it is not the event's one point.
                if e.num_points > 1 {
                    format!("at its largest, {} at {}, ", v(e.peak_value), clock(e.peak_time))
                } else {
                    String::new()
                },
                v(e.baseline),
            )
        }
        AnomalyLabel::Trend => {
            // The verb tells how the level moved (from the level before to the peak); the sigmas
            // tell where that left it against what was expected there, which a cycle can make
            // the other way round: a value that fell a little can still stand well above what
            // the hour of the day usually brings.
            let verb = if e.peak_value >= e.level_before { "rose" } else { "fell" };
            format!(
                "{who} {verb} from {} to {} over {dur} ending {}, {sig:.1} robust sigma {dir} its {baseline} of {}, {}.",
                v(e.level_before),
                v(e.peak_value),
                clock(e.peak_time),
                v(e.baseline),
                tail(shape, &v),
            )
        }
        AnomalyLabel::VarianceChange => {
            let (before, during) = (e.spread_before.unwrap_or(0.0), e.spread_during.unwrap_or(0.0));
            let turned = if during >= before { "noisier" } else { "stiller" };
            let change = if during >= before {
                if before > 0.0 {
                    format!("grew {:.1}-fold", during / before)
                } else {
                    "grew from nothing".to_owned()
                }
            } else {
                format!("shrank {:.1}-fold", before / during.max(f64::MIN_POSITIVE))
            };
            format!(
                "{who} turned {turned} from {}: over {} its point-to-point spread {change}, from {} to {}, around {}; at its widest, {} at {}, {sig:.1} robust sigma {dir} its {baseline} of {}.",
                clock(e.event_start.unwrap_or(e.peak_time)),
                format_duration(shape.spread_seconds),
                v(before),
                v(during),
                v(e.level_during.unwrap_or(e.baseline)),
                v(e.peak_value),
                clock(e.peak_time),
                v(e.baseline),
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

/// The sentence for an incident: where, which metrics on how many of the scope's nodes, from
/// when and for how long, and its worst member against its baseline. `unit` gives a metric's
/// unit when it is known; where it gives none, the unit the metric's name declares
/// ([`unit_of`]), if any.
///
/// ```
/// use analytics_explain::explain_incident;
/// use analytics_types::{AnomalyLabel, Incident, IncidentMember, MetricSeries};
/// use chrono::{Duration, TimeZone, Utc};
///
/// let t = Utc.with_ymd_and_hms(2024, 3, 5, 16, 46, 0).unwrap();
/// let member = |node: &str, metric: &str, peak: f64| IncidentMember {
///     key: MetricSeries::new("acme", "staging", node, metric, vec![], vec![]).unwrap().key(),
///     start: t, end: t + Duration::minutes(2), score: 1.0, label: AnomalyLabel::Spike,
///     peak_value: Some(peak), baseline: Some(1.04), deviation_sigma: Some(peak * 6.0), decades: None,
/// };
/// let incident = Incident::new(vec![member("node-01", "error_rate", 1.8), member("node-04", "error_rate", 1.94),
///     member("node-04", "request_latency_ms", 1.5)], 8)?;
/// assert_eq!(explain_incident(&incident, &|_| None),
///     "acme/staging: error_rate and request_latency_ms on 2 of 8 nodes from 2024-03-05 16:46 UTC for 2 min; \
///      worst node-04 (error_rate 1.94 against a baseline of 1.04).");
/// # Ok::<(), analytics_types::ContractError>(())
/// ```
pub fn explain_incident(incident: &Incident, unit: &dyn Fn(&str) -> Option<&'static str>) -> String {
    let members = incident.members();
    // Metrics by how many members show them, most first, then by name.
    let mut by_metric: BTreeMap<&str, usize> = BTreeMap::new();
    for m in members {
        *by_metric.entry(m.key.metric_name.as_str()).or_default() += 1;
    }
    let mut metrics: Vec<(&str, usize)> = by_metric.into_iter().collect();
    metrics.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let names: Vec<&str> = metrics.iter().map(|(m, _)| *m).collect();
    let what = list(&names, 3, "metric");
    let when = format!(
        "from {} for {}",
        clock(incident.start()),
        format_duration((incident.end() - incident.start()).num_seconds())
    );
    let worst = worst_member(members);
    let size = |m: &IncidentMember| match (m.peak_value, m.baseline) {
        (Some(p), Some(b)) => {
            let u = unit(m.key.metric_name.as_str()).or_else(|| unit_of(m.key.metric_name.as_str()));
            format!("{} {} against a baseline of {}", m.key.metric_name, format_value(p, u), format_value(b, u))
        }
        _ => format!("{} {}, score {:.3}", m.key.metric_name, m.label, m.score),
    };
    let place = incident.place();
    match incident.scope() {
        IncidentScope::Series => {
            let m = worst;
            let events = if members.len() > 1 { format!(" ({} events)", members.len()) } else { String::new() };
            let size = match (m.peak_value, m.baseline) {
                (Some(p), Some(b)) => {
                    let u = unit(m.key.metric_name.as_str()).or_else(|| unit_of(m.key.metric_name.as_str()));
                    format!("{} against a baseline of {}", format_value(p, u), format_value(b, u))
                }
                _ => format!("score {:.3}", m.score),
            };
            format!("{place}: {} {}{events} {when}, {size}.", m.key.metric_name, m.label)
        }
        IncidentScope::Node => format!("{place}: {what} {when}; worst {}.", size(worst)),
        IncidentScope::Cluster => format!(
            "{place}: {what} on {} of {} nodes {when}; worst {} ({}).",
            incident.nodes_affected(),
            incident.nodes_in_scope(),
            worst.key.node_id,
            size(worst)
        ),
        IncidentScope::Tenant => {
            let mut clusters: Vec<&str> = members.iter().map(|m| m.key.cluster_id.as_str()).collect();
            clusters.sort_unstable();
            clusters.dedup();
            format!(
                "{place}: {what} on {} of {} nodes in {} clusters ({}) {when}; worst {}/{} ({}).",
                incident.nodes_affected(),
                incident.nodes_in_scope(),
                clusters.len(),
                list(&clusters, 4, "cluster"),
                worst.key.cluster_id,
                worst.key.node_id,
                size(worst)
            )
        }
    }
}

/// The member an incident's sentence names: highest score, then largest deviation, then first.
pub fn worst_member(members: &[IncidentMember]) -> &IncidentMember {
    let dev = |m: &IncidentMember| m.deviation_sigma.map_or(0.0, f64::abs);
    let mut worst = &members[0];
    for m in &members[1..] {
        if m.score > worst.score || (m.score == worst.score && dev(m) > dev(worst)) {
            worst = m;
        }
    }
    worst
}

/// "a", "a and b", "a, b and c", "a, b, c and 2 more metrics".
fn list(items: &[&str], keep: usize, thing: &str) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        _ if items.len() <= keep => {
            let (last, rest) = items.split_last().unwrap_or((&"", &[]));
            format!("{} and {last}", rest.join(", "))
        }
        _ => format!("{} and {} more {thing}s", items[..keep].join(", "), items.len() - keep),
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

    /// "Since" is said only of what runs to the end of the data: a level shift followed by
    /// hours of data says for how long it was seen to hold, not that it still holds.
    #[test]
    fn held_since_only_when_the_data_ends_there() {
        use crate::{classify, ShapeConfig};
        use analytics_types::MetricSeries;
        use chrono::{Duration, TimeZone};
        let sentence = |n: usize, shift_at: usize| {
            let t0 = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap();
            let ts: Vec<_> = (0..n).map(|i| t0 + Duration::minutes(i as i64)).collect();
            let vs: Vec<f64> =
                (0..n).map(|i| if i >= shift_at { 80.0 } else { 40.0 } + ((i * 37) % 7) as f64 * 0.5).collect();
            let series = MetricSeries::new("acme", "prod", "node-7", "cpu_usage", ts, vs).unwrap();
            let shape =
                classify(series.timestamps(), series.values(), shift_at..shift_at + 12, None, &ShapeConfig::default())
                    .unwrap();
            assert_eq!(shape.label, AnomalyLabel::LevelShift);
            explain_series(&series.key(), None, &shape)
        };
        let long = sentence(600, 300);
        assert!(
            long.starts_with(
                "cpu_usage on node-7 (cluster prod, tenant acme) shifted up from 41.5 to 81.8 at 2024-03-01 05:00 UTC"
            ),
            "{long}"
        );
        assert!(
            long.contains(" at 2024-03-01 05:00 UTC and held near 81.5 for the next 30 min; at its largest, 83.0"),
            "{long}"
        );
        let at_end = sentence(330, 300);
        assert!(at_end.contains(" 05:00 UTC and has held near 81.5 since; "), "{at_end}");
    }

    /// A dip, a shift down and a noisier stretch, each in its own words and with its own
    /// numbers.
    #[test]
    fn dips_shifts_down_and_spread_changes_read_as_such() {
        use crate::{classify, ShapeConfig};
        use analytics_types::MetricSeries;
        use chrono::{Duration, TimeZone};
        let t0 = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap();
        let explain = |vs: Vec<f64>, event: std::ops::Range<usize>, label: AnomalyLabel| {
            let ts: Vec<_> = (0..vs.len()).map(|i| t0 + Duration::minutes(i as i64)).collect();
            let series = MetricSeries::new("acme", "prod", "node-7", "request_rate", ts, vs).unwrap();
            let shape = classify(series.timestamps(), series.values(), event, None, &ShapeConfig::default()).unwrap();
            assert_eq!(shape.label, label, "{:?}", shape.evidence);
            explain_series(&series.key(), Some("req/s"), &shape)
        };
        let wobble = |i: usize| ((i * 37) % 7) as f64 * 0.5;
        let mut dip: Vec<f64> = (0..400).map(|i| 100.0 + wobble(i)).collect();
        dip[300..303].iter_mut().for_each(|v| *v = 60.0);
        assert_eq!(
            explain(dip, 300..303, AnomalyLabel::Dip),
            "request_rate on node-7 (cluster prod, tenant acme) dipped to 60.0 req/s at 2024-03-01 05:02 UTC, \
             28.0 robust sigma below its recent baseline of 101.5 req/s, for 3 min."
        );
        let down: Vec<f64> = (0..400).map(|i| if i >= 300 { 50.0 } else { 100.0 } + wobble(i)).collect();
        let text = explain(down, 300..330, AnomalyLabel::LevelShift);
        assert!(text.contains(" shifted down from 101.5 req/s to 51.5 req/s at 2024-03-01 05:00 UTC"), "{text}");
        assert!(
            text.contains(" 05:00 UTC and held near 51.5 req/s for the next 30 min; at its largest, 50.0 req/s"),
            "{text}"
        );
        // Noise (uniform, from a linear congruential generator), five times as wide for an hour
        // around the same level.
        let mut state = 12_345u64;
        let noisy: Vec<f64> = (0..400)
            .map(|i| {
                state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                let u = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
                100.0 + if (300..360).contains(&i) { 5.0 } else { 1.0 } * u
            })
            .collect();
        // A detector's short event at the burst's start: what follows it shows the burst.
        let text = explain(noisy.clone(), 300..302, AnomalyLabel::VarianceChange);
        assert!(
            text.contains(" turned noisier from 2024-03-01 05:00 UTC: over 32 min its point-to-point spread grew"),
            "{text}"
        );
        let text = explain(noisy, 300..360, AnomalyLabel::VarianceChange);
        assert!(
            text.contains(
                " turned noisier from 2024-03-01 05:00 UTC: over 1 h its point-to-point spread grew 5.3-fold, \
             from 0.309 req/s to 1.65 req/s, around 99.9 req/s; at its widest, 97.5 req/s"
            ),
            "{text}"
        );
    }

    #[test]
    fn lists_read_well() {
        assert_eq!(list(&["a"], 3, "metric"), "a");
        assert_eq!(list(&["a", "b"], 3, "metric"), "a and b");
        assert_eq!(list(&["a", "b", "c"], 3, "metric"), "a, b and c");
        assert_eq!(list(&["a", "b", "c", "d", "e"], 3, "metric"), "a, b, c and 2 more metrics");
    }
}
