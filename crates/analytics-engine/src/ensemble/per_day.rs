//! The correction per day: Bonferroni's correction over a day's points too, so that a score
//! means as many false alarms a day on hourly data as on minute data
//! ([`EnsembleConfig::per_day_reference`](super::EnsembleConfig::per_day_reference)).
//!
//! Each point is a chance to be surprised, and minute data offers sixty times as many a day as
//! hourly data. The rule learns how many points a day a series has over its first day (reading
//! the time every [`PACE_CHECK_EVERY`] points, then never) and lowers the surprise by `log10` of
//! that number over the reference: a series sampled at the reference's rate is scored as
//! without the correction. State: 32 bytes per series, made at its first point.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::rule::ScoreRule;

/// The correction per day, as configured: one per engine.
#[derive(Debug, Clone)]
pub(crate) struct PerDay {
    /// `log10` of the points per day the surprise is corrected from.
    reference: f64,
}

impl PerDay {
    /// The rule for a reference of `points_per_day`, or None when it is 0 (off).
    pub(crate) fn new(points_per_day: f64) -> Option<Self> {
        (points_per_day > 0.0).then(|| Self { reference: points_per_day.log10() })
    }
}

impl ScoreRule for PerDay {
    /// Made at the first point (absent while the series has none, and in engines without the
    /// correction).
    type State = Option<Box<Pace>>;

    #[inline]
    fn apply(&self, pace: &mut Self::State, t: DateTime<Utc>, _x: f64, surprise: f64) -> f64 {
        surprise - pace.get_or_insert_with(Box::default).decades(t, self.reference)
    }

    fn heap_bytes(pace: &Self::State) -> usize {
        pace.as_ref().map_or(0, |_| std::mem::size_of::<Pace>())
    }
}

/// How many points a day a series has, learnt over its first day, as `log10` (0 until a day
/// has been seen). The time is read every [`PACE_CHECK_EVERY`] points until then, and never
/// after.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Pace {
    /// The first point's time (None before it).
    start: Option<DateTime<Utc>>,
    /// Points after the first, while the day is being watched.
    seen: u32,
    /// `log10` of the points per day, once known.
    decades: f64,
    known: bool,
}

/// Points between two readings of the time while a series' pace is learnt.
const PACE_CHECK_EVERY: u32 = 16;

impl Pace {
    /// Bonferroni's correction for a day's points, counted from `reference` (`log10` of the
    /// points per day it is counted from), in decades: 0 until a day has been seen.
    #[inline]
    fn decades(&mut self, t: DateTime<Utc>, reference: f64) -> f64 {
        if !self.known {
            self.learn(t);
            if !self.known {
                return 0.0;
            }
        }
        self.decades - reference
    }

    fn learn(&mut self, t: DateTime<Utc>) {
        let Some(start) = self.start else {
            self.start = Some(t);
            return;
        };
        self.seen = self.seen.saturating_add(1);
        if self.seen.is_multiple_of(PACE_CHECK_EVERY) {
            let span = (t - start).num_seconds();
            if span >= 86_400 {
                let per_day = f64::from(self.seen) * 86_400.0 / span as f64;
                self.decades = per_day.log10();
                self.known = true;
            }
        }
    }
}
