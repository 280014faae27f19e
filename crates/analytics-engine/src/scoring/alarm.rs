//! The alarm rule: which calibrated scores become an alarm event.
//!
//! An event opens when the score stays at or above `threshold` for `min_points` consecutive
//! points, and closes once the score has stayed below it for more than `merge_gap` points: an
//! alarm that comes back within `merge_gap` points is the same event, not a new one (repeats are
//! suppressed). The event spans its first to its last alarmed point.

use std::ops::Range;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::EngineError;

/// Alarm rule parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlarmConfig {
    /// Calibrated score at or above which a point is alarming. The default, 0.4, is a tail
    /// probability of 1e-4 (with the rest period, chosen on NAB and the simulator; see
    /// docs/results.md).
    pub threshold: f64,
    /// Consecutive alarming points needed to open an event.
    pub min_points: usize,
    /// Quiet points after which an open event closes; alarms within the gap extend it.
    pub merge_gap: usize,
    /// After a point scores at or above the threshold, the next `rest_points` points report a
    /// score of 0 unless they score at least `escalation` more than the point that raised the
    /// alarm (which then reports its score and restarts the rest): an ongoing incident pages
    /// again only if it gets clearly worse.
    pub rest_points: usize,
    /// When positive, the rest period is a span of time instead: the points of the next
    /// `rest_seconds` seconds after the alarm rest, whatever the sampling (`rest_points` is then
    /// unused). A rest counted in points lasts 2.5 hours on five-minute data and 30 hours on
    /// hourly data; one counted in time means the same on both.
    pub rest_seconds: i64,
    /// How much higher a score must be to break through a rest period (0.2: a hundred times
    /// rarer). The default rest (30 points, 0.2) was chosen on NAB, where it sits on a plateau
    /// (docs/results.md), and checked on ASD, where every figure of the default engine rose.
    pub escalation: f64,
}

impl Default for AlarmConfig {
    fn default() -> Self {
        Self { threshold: 0.4, min_points: 1, merge_gap: 10, rest_points: 30, rest_seconds: 0, escalation: 0.2 }
    }
}

impl AlarmConfig {
    pub(crate) fn check(&self) -> Result<(), EngineError> {
        if !(self.escalation >= 0.0 && self.escalation.is_finite()) {
            return Err(EngineError::bad_param("escalation", self.escalation, "finite and non-negative"));
        }
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            return Err(EngineError::bad_param("threshold", self.threshold, "in (0, 1]"));
        }
        if self.min_points == 0 {
            return Err(EngineError::bad_param("min_points", self.min_points, "at least 1"));
        }
        if self.rest_seconds < 0 {
            return Err(EngineError::bad_param("rest_seconds", self.rest_seconds, "0 or more"));
        }
        Ok(())
    }
}

/// The rest period: after an alarming point, holds scores at 0 for `rest_points` points unless
/// one is more surprising than the point that raised the alarm.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rest {
    threshold: f64,
    rest_points: usize,
    remaining: usize,
    rest_seconds: i64,
    /// With a rest in time: the first second after it (Unix seconds).
    until: i64,
    raised_by: f64,
    escalation: f64,
}

impl Rest {
    /// A rest period that has not started.
    pub fn new(cfg: &AlarmConfig) -> Self {
        Self {
            threshold: cfg.threshold,
            rest_points: cfg.rest_points,
            remaining: 0,
            rest_seconds: cfg.rest_seconds,
            until: i64::MIN,
            raised_by: 0.0,
            escalation: cfg.escalation,
        }
    }

    /// The score to report for a point at `t` whose calibrated score is `score`.
    #[inline]
    pub fn apply(&mut self, t: DateTime<Utc>, score: f64) -> f64 {
        if self.rest_seconds > 0 {
            // Read the time only for a rest in time: counting points needs none.
            let t = t.timestamp();
            if t < self.until && score < self.raised_by + self.escalation {
                return 0.0;
            }
            if score >= self.threshold {
                self.until = t.saturating_add(self.rest_seconds);
                self.raised_by = score;
            }
            return score;
        }
        if self.remaining > 0 && score < self.raised_by + self.escalation {
            self.remaining -= 1;
            return 0.0;
        }
        if score >= self.threshold && self.rest_points > 0 {
            self.remaining = self.rest_points;
            self.raised_by = score;
        }
        score
    }
}

/// Streaming form of the rule: feed scores one by one, collect closed events.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlarmState {
    cfg: AlarmConfig,
    index: usize,
    run_start: Option<usize>,
    open: Option<Range<usize>>,
}

impl AlarmState {
    /// A rule that has seen nothing.
    pub fn new(cfg: AlarmConfig) -> Self {
        Self { cfg, index: 0, run_start: None, open: None }
    }

    /// Takes the next score; returns an event when one closes.
    pub fn update(&mut self, score: f64) -> Option<Range<usize>> {
        let i = self.index;
        self.index += 1;
        let mut closed = None;
        if score >= self.cfg.threshold {
            let run_start = *self.run_start.get_or_insert(i);
            match &mut self.open {
                Some(event) => event.end = i + 1,
                None if i + 1 - run_start >= self.cfg.min_points => self.open = Some(run_start..i + 1),
                None => {}
            }
        } else {
            self.run_start = None;
            if let Some(event) = &self.open {
                if i - (event.end - 1) > self.cfg.merge_gap {
                    closed = self.open.take();
                }
            }
        }
        closed
    }

    /// Closes the open event, if any, at the end of the data.
    pub fn finish(&mut self) -> Option<Range<usize>> {
        self.open.take()
    }
}

/// The batch form: every event in `scores`, in order.
pub fn alarm_events(scores: &[f64], cfg: &AlarmConfig) -> Vec<Range<usize>> {
    let mut state = AlarmState::new(cfg.clone());
    let mut events: Vec<Range<usize>> = scores.iter().filter_map(|&s| state.update(s)).collect();
    events.extend(state.finish());
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    fn check(scores: &[f64], cfg: AlarmConfig, expected: &[(usize, usize)]) {
        let got: Vec<(usize, usize)> = alarm_events(scores, &cfg).into_iter().map(|r| (r.start, r.end)).collect();
        assert_eq!(got, expected, "{scores:?}");
    }

    #[test]
    fn events_open_merge_and_close() {
        let cfg = |min_points, merge_gap| AlarmConfig {
            threshold: 0.9,
            min_points,
            merge_gap,
            rest_points: 0,
            rest_seconds: 0,
            escalation: 0.1,
        };
        let s = [0.0, 0.95, 0.0, 0.0, 0.95, 0.95, 0.0, 0.0, 0.0, 0.0, 0.95];
        check(&s, cfg(1, 0), &[(1, 2), (4, 6), (10, 11)]);
        check(&s, cfg(1, 2), &[(1, 6), (10, 11)]);
        check(&s, cfg(2, 0), &[(4, 6)]);
        check(&s, cfg(1, 10), &[(1, 11)]);
        check(&[], cfg(1, 0), &[]);
        check(&[0.9], cfg(1, 0), &[(0, 1)]);
    }

    #[test]
    fn rest_holds_scores_after_an_alarm() {
        let mut rest =
            Rest::new(&AlarmConfig { threshold: 0.5, rest_points: 2, escalation: 0.1, ..Default::default() });
        // 0.6 raises the alarm; 0.65 is not 0.1 worse, so it rests; 0.9 is, so it reports and
        // restarts the rest; 0.7 and 0.95 rest; after two points the rest is over.
        let out: Vec<f64> = [0.1, 0.6, 0.65, 0.9, 0.7, 0.95, 0.2].iter().map(|&s| rest.apply(at(0), s)).collect();
        assert_eq!(out, [0.1, 0.6, 0.0, 0.9, 0.0, 0.0, 0.2]);
    }

    #[test]
    fn a_rest_in_time_lasts_as_long_whatever_the_sampling() {
        let cfg = AlarmConfig { threshold: 0.5, rest_seconds: 3600, escalation: 0.1, ..Default::default() };
        // Five-minute points: an alarm at 0 rests the points of the next hour (12 of them).
        let mut rest = Rest::new(&cfg);
        let out: Vec<f64> = (0..15).map(|k| rest.apply(at(300 * k), 0.6)).collect();
        assert_eq!(out.iter().filter(|&&s| s > 0.0).count(), 2, "{out:?}");
        assert_eq!((out[0], out[12]), (0.6, 0.6));
        // Hourly points: the next point is already past the hour.
        let mut rest = Rest::new(&cfg);
        let out: Vec<f64> = (0..3).map(|k| rest.apply(at(3600 * k), 0.6)).collect();
        assert_eq!(out, [0.6, 0.6, 0.6]);
        // A clearly worse score breaks through, and a time that steps back stays in the rest.
        let mut rest = Rest::new(&cfg);
        assert_eq!(rest.apply(at(1000), 0.6), 0.6);
        assert_eq!(rest.apply(at(1300), 0.65), 0.0);
        assert_eq!(rest.apply(at(700), 0.65), 0.0);
        assert_eq!(rest.apply(at(1600), 0.75), 0.75);
        assert!(AlarmConfig { rest_seconds: -1, ..Default::default() }.check().is_err());
    }

    #[test]
    fn bad_parameters_are_refused() {
        let err = AlarmConfig { threshold: 1.5, ..Default::default() }.check().unwrap_err();
        assert_eq!(err.to_string(), "parameter threshold is 1.5; it must be in (0, 1]");
        assert!(AlarmConfig { threshold: f64::NAN, ..Default::default() }.check().is_err());
        assert!(AlarmConfig { min_points: 0, ..Default::default() }.check().is_err());
    }
}
