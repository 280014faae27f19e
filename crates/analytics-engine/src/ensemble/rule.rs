//! The ensemble's score rules: what the members' combined surprise of a point becomes once
//! something the ensemble knows of the series beyond the members' windows is taken into account.
//!
//! Three rules, each in its own module: [`record`](super::record) (a point beyond the whole
//! range the series has shown is news, as one more member), [`per_day`](super::per_day)
//! (Bonferroni's correction over a day's points) and [`recurrence`](super::recurrence) (what
//! recurs at the same time of day, or on a steady beat, is expected). A rule is configured once
//! per engine and keeps a small state per series; it sees every point in time order, in the
//! streaming and the batch path alike.
//!
//! The order is fixed by what each rule means: the record rule and the correction per day read
//! every point (they learn the range and the pace from the first one on), before the members
//! are past their warm-up; the recurrence memory reads what would be reported (after
//! Bonferroni's correction for the number asked), and only once every member scores.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A rule over a point's surprise (decades of tail probability).
pub(crate) trait ScoreRule {
    /// What the rule keeps of one series (its default: nothing seen yet).
    type State: Default + Clone + std::fmt::Debug + Serialize + DeserializeOwned;

    /// The surprise of the point `x` at `t` after the rule, from `surprise` before it; the
    /// state learns from the point.
    fn apply(&self, state: &mut Self::State, t: DateTime<Utc>, x: f64, surprise: f64) -> f64;

    /// Bytes a series' state holds on the heap.
    fn heap_bytes(state: &Self::State) -> usize;
}

/// `rule` applied where the configuration turns it on; the surprise unchanged where not.
#[inline]
pub(crate) fn apply<R: ScoreRule>(
    rule: Option<&R>,
    state: &mut R::State,
    t: DateTime<Utc>,
    x: f64,
    surprise: f64,
) -> f64 {
    match rule {
        Some(rule) => rule.apply(state, t, x, surprise),
        None => surprise,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ensemble::per_day::PerDay;
    use crate::ensemble::record::{Range, RecordConfig, Records};
    use crate::ensemble::recurrence::{Memory, Recurrence, RecurrenceConfig};

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[test]
    fn a_rule_turned_off_passes_the_surprise_through() {
        let mut range = Range::default();
        assert_eq!(apply(None::<&Records>, &mut range, at(0), 1e9, 2.5), 2.5);
        let mut memory = Memory::default();
        assert_eq!(apply(None::<&Recurrence>, &mut memory, at(0), 1.0, 12.0), 12.0);
        assert_eq!(Recurrence::heap_bytes(&memory), 0);
    }

    #[test]
    fn each_rule_changes_the_surprise_as_it_says() {
        // Records: one more member, so the larger of the two surprises. A day between 10 and 20,
        // then a value a quarter of the range above it: 3.75 decades, above the members' 1.0;
        // below the members' 5.0 it changes nothing.
        let rule = Records::new(&RecordConfig::default()).unwrap();
        let mut range = Range::default();
        for i in 0..=288 {
            apply(Some(&rule), &mut range, at(i * 300), 10.0 + (i % 11) as f64, 0.0);
        }
        let mut again = range.clone();
        assert!((apply(Some(&rule), &mut range, at(86_700), 22.5, 1.0) - 3.75).abs() < 1e-12);
        assert_eq!(apply(Some(&rule), &mut again, at(86_700), 22.5, 5.0), 5.0);

        // Recurrence: yesterday's top-scale event at the same time is taken off, less a decade
        // for its day of age.
        let rule =
            Recurrence::new(&RecurrenceConfig { bin_seconds: 480, ..RecurrenceConfig::default() }, 10.0).unwrap();
        let mut memory = Memory::default();
        assert_eq!(apply(Some(&rule), &mut memory, at(3_600), 0.0, 12.0), 12.0);
        assert!((apply(Some(&rule), &mut memory, at(86_400 + 3_600), 0.0, 12.0) - 1.0).abs() < 1e-6);

        // The correction per day: nothing until a day has been seen, then minute data loses
        // log10(1440 / 288) decades against a five-minute reference.
        let rule = PerDay::new(288.0).unwrap();
        let mut pace = None;
        assert_eq!(apply(Some(&rule), &mut pace, at(0), 0.0, 4.0), 4.0);
        let mut last = 0.0;
        for i in 1..=2 * 1440 {
            last = apply(Some(&rule), &mut pace, at(60 * i), 0.0, 4.0);
        }
        assert!((last - (4.0 - 5f64.log10())).abs() < 1e-3, "{last}");
        assert!(PerDay::heap_bytes(&pace) > 0);
        assert!(PerDay::new(0.0).is_none());
    }
}
