//! Records: a point beyond everything the series has shown, by a good share of its whole range,
//! is news however ordinary its robust z or its context.
//!
//! The members judge a point against a recent window or a learnt profile, and their calibrators
//! learn from the series' own past: on a series with frequent bursts, a burst twice the size of
//! any before scores much like the usual ones (each member has seen large raw scores before).
//! The record rule keeps the lowest and highest value the series has shown since it started and
//! gives a point beyond them a surprise of `decades_per_range` decades per width of that range
//! it lies beyond: by default 15, so a value a quarter of the range above the highest ever seen
//! counts as a tail of 10^-3.75, half the range as 10^-7.5. The rate is a prior, not learnt (a
//! series shows too few records to learn their tail from); it lies between what light tails
//! give for a thousand points seen: beyond the largest of a thousand Gaussian values (3.2
//! standard deviations, a range of about 6.5) by a quarter of the range lies a tail of 10^-6.2,
//! by half of it 10^-10.3; for exponential values (largest 7.5 scales) 10^-4.1 and 10^-4.9. Records count
//! only once the series has been watched for `learn_seconds` (a day by default, so that a new
//! series' daily cycle does not set records while it is first seen), and the range only grows:
//! a series that once jumped far keeps that jump as its yardstick.
//!
//! The state is the range, the time from which records count and a count of points: 32 bytes
//! per series.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::EngineError;

/// The longest learning time accepted: ten years.
const MAX_LEARN_SECONDS: i64 = 10 * 365 * 86_400;

/// Parameters of the record rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordConfig {
    /// Decades of surprise per width of the series' range by which a point lies beyond it; 0
    /// turns the rule off.
    pub decades_per_range: f64,
    /// Seconds a series is watched before a point beyond its range counts as a record.
    pub learn_seconds: i64,
}

impl Default for RecordConfig {
    fn default() -> Self {
        Self { decades_per_range: 15.0, learn_seconds: 86_400 }
    }
}

impl RecordConfig {
    pub(crate) fn check(&self) -> Result<(), EngineError> {
        if !(self.decades_per_range >= 0.0 && self.decades_per_range.is_finite()) {
            return Err(EngineError::bad_param(
                "record.decades_per_range",
                self.decades_per_range,
                "finite and non-negative",
            ));
        }
        if !(0..=MAX_LEARN_SECONDS).contains(&self.learn_seconds) {
            return Err(EngineError::bad_param(
                "record.learn_seconds",
                self.learn_seconds,
                "between 0 and 315360000 (ten years)",
            ));
        }
        Ok(())
    }
}

/// The record rule, as configured: one per engine.
#[derive(Debug, Clone)]
pub(crate) struct Records {
    decades_per_range: f64,
    learning: TimeDelta,
}

impl Records {
    /// The rule, or None when the configuration turns it off.
    pub(crate) fn new(cfg: &RecordConfig) -> Option<Self> {
        (cfg.decades_per_range > 0.0)
            .then(|| Self { decades_per_range: cfg.decades_per_range, learning: TimeDelta::seconds(cfg.learn_seconds) })
    }
}

impl super::rule::ScoreRule for Records {
    type State = Range;

    /// The larger of the members' surprise and the point's as a record: the record rule is one
    /// more member, asked of every point (it needs no warm-up of its own, and no calibration).
    #[inline]
    fn apply(&self, range: &mut Range, t: DateTime<Utc>, x: f64, surprise: f64) -> f64 {
        surprise.max(range.surprise(self, t, x))
    }

    fn heap_bytes(_: &Range) -> usize {
        0
    }
}

/// The range a series has shown: its lowest and highest value, and from when records count.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Range {
    /// Infinite, and above `high`, before the first point.
    low: f64,
    high: f64,
    /// The first point's time plus the learning time (set at the first point). Compared with
    /// each point's time as it is: reading a time as seconds since the epoch costs more than
    /// the rest of the rule.
    counts_from: DateTime<Utc>,
    /// Whether records count yet (then the time is no longer read).
    counting: bool,
    /// Points since the first, modulo 256: while the series is new its time is compared with
    /// `counts_from` every [`CHECK_EVERY`] points only (a comparison of times costs about as
    /// much as the rest of the rule), so records count up to that many points late.
    tick: u8,
}

/// Points between two readings of the time while a series is new.
const CHECK_EVERY: u8 = 16;

impl Default for Range {
    fn default() -> Self {
        Self {
            low: f64::INFINITY,
            high: f64::NEG_INFINITY,
            counts_from: DateTime::<Utc>::MAX_UTC,
            counting: false,
            tick: 0,
        }
    }
}

impl Range {
    /// The surprise of a point `x` at `t` beyond the range of the points before it (0 inside
    /// it, while the series is new, and for a value that is not a number); then takes it into
    /// the range.
    #[inline]
    pub(crate) fn surprise(&mut self, rule: &Records, t: DateTime<Utc>, x: f64) -> f64 {
        // Most points: inside the range of a series watched long enough (and a value that is
        // not a number, which no comparison holds for): nothing to score, nothing to learn.
        if self.counting && !(x > self.high || x < self.low) {
            return 0.0;
        }
        self.surprise_and_widen(rule, t, x)
    }

    /// [`Range::surprise`] for a point beyond the range, or while the series is new.
    #[inline]
    fn surprise_and_widen(&mut self, rule: &Records, t: DateTime<Utc>, x: f64) -> f64 {
        // Before the first point the range is empty (an infinite low, and the high below it).
        let empty = self.high < self.low;
        if !self.counting {
            if empty {
                self.counts_from = t.checked_add_signed(rule.learning).unwrap_or(DateTime::<Utc>::MAX_UTC);
                self.tick = 0;
            }
            if self.tick.is_multiple_of(CHECK_EVERY) {
                self.counting = t >= self.counts_from;
            }
            self.tick = self.tick.wrapping_add(1);
        }
        let mut surprise = 0.0;
        if self.counting && !empty {
            let beyond = if x > self.high { x - self.high } else { self.low - x };
            if beyond > 0.0 {
                // A flat series has a range of 0: any move off it is a record of unbounded
                // size, as the robust z-score's fallback also says.
                let width = self.high - self.low;
                surprise = if width > 0.0 { rule.decades_per_range * beyond / width } else { f64::INFINITY };
            }
        }
        // Plain comparisons, false for a value that is not a number: it leaves the range as it
        // was.
        if x < self.low {
            self.low = x;
        }
        if x > self.high {
            self.high = x;
        }
        surprise
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    /// The time `secs` seconds after the epoch.
    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    fn rule() -> Records {
        Records::new(&RecordConfig::default()).unwrap()
    }

    #[test]
    fn a_point_beyond_the_range_scores_by_how_far() {
        let rule = rule();
        let mut range = Range::default();
        // A day of values between 10 and 20.
        for i in 0..=288 {
            assert_eq!(range.surprise(&rule, at(i * 300), 10.0 + f64::from(i as u32 % 11)), 0.0);
        }
        // Inside the range: nothing.
        assert_eq!(range.surprise(&rule, at(DAY + 300), 15.0), 0.0);
        // A quarter of the range above the highest: 15 x 0.25 decades.
        assert!((range.surprise(&rule, at(DAY + 600), 22.5) - 3.75).abs() < 1e-12);
        // The range now reaches 22.5: the same value again is no record.
        assert_eq!(range.surprise(&rule, at(DAY + 900), 22.5), 0.0);
        // Below the lowest by the whole range (12.5): 15 decades.
        assert!((range.surprise(&rule, at(DAY + 1200), -2.5) - 15.0).abs() < 1e-12);
    }

    #[test]
    fn nothing_counts_while_the_series_is_new() {
        let rule = rule();
        let mut range = Range::default();
        // Hourly points between 1 and 2; twenty hours in, a value far beyond: still learning.
        for h in 0..20 {
            assert_eq!(range.surprise(&rule, at(h * 3600), 1.0 + f64::from(h as u32 % 2)), 0.0);
        }
        assert_eq!(range.surprise(&rule, at(20 * 3600), 100.0), 0.0);
        // The time is read every 16 points: the 33rd point, the first read after a day, is the
        // first that can count (the 22nd to the 32nd are past the day but not read yet).
        for h in 21..32 {
            assert_eq!(range.surprise(&rule, at(h * 3600), 150.0 + f64::from(h as u32)), 0.0, "hour {h}");
        }
        // Beyond the range that the learning set (1 to 181) by half of it.
        assert!((range.surprise(&rule, at(32 * 3600), 271.0) - 7.5).abs() < 1e-12);
        // Turned off.
        assert!(Records::new(&RecordConfig { decades_per_range: 0.0, ..RecordConfig::default() }).is_none());
        // With no learning time, the first point has no range to break, the second does.
        let rule = Records::new(&RecordConfig { learn_seconds: 0, ..RecordConfig::default() }).unwrap();
        let mut range = Range::default();
        assert_eq!(range.surprise(&rule, at(0), 1.0), 0.0);
        assert_eq!(range.surprise(&rule, at(60), 2.0), f64::INFINITY);
        assert!((range.surprise(&rule, at(120), 3.0) - 15.0).abs() < 1e-12);
    }

    #[test]
    fn a_flat_series_that_moves_and_odd_values() {
        let rule = rule();
        let mut range = Range::default();
        for i in 0..300 {
            range.surprise(&rule, at(i * 300), 5.0);
        }
        assert_eq!(range.surprise(&rule, at(300 * 300), 5.0), 0.0);
        assert_eq!(range.surprise(&rule, at(301 * 300), 5.5), f64::INFINITY);
        // A value that is not a number scores nothing and leaves the range (5 to 5.5) as it was.
        assert_eq!(range.surprise(&rule, at(302 * 300), f64::NAN), 0.0);
        assert!((range.surprise(&rule, at(303 * 300), 6.0) - 15.0).abs() < 1e-12);
    }

    #[test]
    fn bad_parameters_are_refused() {
        let bad = RecordConfig { decades_per_range: -1.0, ..RecordConfig::default() };
        assert_eq!(
            bad.check().unwrap_err().to_string(),
            "parameter record.decades_per_range is -1; it must be finite and non-negative"
        );
        let bad = RecordConfig { learn_seconds: -5, ..RecordConfig::default() };
        assert_eq!(
            bad.check().unwrap_err().to_string(),
            "parameter record.learn_seconds is -5; it must be between 0 and 315360000 (ten years)"
        );
        assert!(RecordConfig { learn_seconds: i64::MAX, ..RecordConfig::default() }.check().is_err());
    }
}
