//! Recurrence: an event that scored at the top of the scale at this time of day on a recent day
//! is expected to come back, and only what exceeds it is news.
//!
//! Operations data repeats daily: a backup at 02:00, a report at 09:00, a cron job that pins a
//! CPU for five minutes. The first occurrence is a fair alarm; the seventh is noise. This memory
//! keeps the last [`CAPACITY`] top-scale events of a series (surprise at or above
//! `min_score` x 10 decades), each with its day and its phase of the day in bins of
//! `bin_seconds`. A new point's surprise is reduced by the largest remembered surprise from a
//! previous day (at most `days` ago) in its bin or the two next to it (so a job may drift by a
//! bin), less `fade_per_day` decades per day of age: a repeat of yesterday's event scores only
//! by how much it is worse (in tail probability: how many times rarer it is than yesterday's
//! event made ten times likelier). A series whose flat window moves produces an unbounded
//! surprise; a repeat of that is expected in full, and while it is remembered nothing at that
//! time of day can exceed it.
//!
//! Not every job runs daily, or on time: a compaction every six hours, a batch that starts when
//! its queue fills. So the memory also keeps rhythms: two consecutive remembered events a beat
//! apart (at least half an hour) lead it to expect a third a beat after the second, give or
//! take `rhythm_tolerance` of the beat (30% by default: for a beat of a day, seven hours either
//! way), as large as the smaller of the two, faded by the time since the second. That is how
//! events of the same day can discount each other; closer than half an hour they are one
//! burst, which the alarm rule's rest period handles. A rhythm is news twice: the third event
//! of a steady beat, and every later one, scores only by its excess.
//!
//! The memory is sparse (most series never reach the top of the scale, and keep an empty list)
//! and bounded: 32 events of 8 bytes (day and bin in one 32-bit number, the surprise in single
//! precision).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::EngineError;

/// Events remembered per series; the oldest is forgotten first.
pub(crate) const CAPACITY: usize = 32;

const DAY: i64 = 86_400;

/// The shortest interval between events that makes a rhythm.
const MIN_BEAT_SECONDS: i64 = 1800;

/// Parameters of the recurrence memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecurrenceConfig {
    /// Width of a phase-of-day bin in seconds; 0 turns the memory off. The default, 480 (eight
    /// minutes, so a job may start up to about a quarter of an hour later or earlier than on a
    /// previous day), was chosen on NAB and checked on ASD (docs/results.md).
    pub bin_seconds: i64,
    /// Days an event is remembered.
    pub days: i64,
    /// Decades of surprise a remembered event loses per day of age (1: an event a day old
    /// stands for one ten times more likely).
    pub fade_per_day: f64,
    /// Score at or above which an event is remembered (1: the top of the scale, a tail
    /// probability of 1e-10 or rarer).
    pub min_score: f64,
    /// How far off its beat (as a share of the beat) a point may fall and still continue a
    /// rhythm: two consecutive remembered events at least half an hour apart are expected to
    /// be followed by a third after the same interval (a job every few hours); 0 turns this
    /// off. The default, 0.3, lies in the middle of the range where NAB and ASD both gained (0.1
    /// to 0.5; at 0.6 real anomalies are taken for repeats; docs/results.md).
    pub rhythm_tolerance: f64,
}

impl Default for RecurrenceConfig {
    fn default() -> Self {
        Self { bin_seconds: 480, days: 7, fade_per_day: 1.0, min_score: 1.0, rhythm_tolerance: 0.3 }
    }
}

impl RecurrenceConfig {
    pub(crate) fn check(&self) -> Result<(), EngineError> {
        if self.bin_seconds < 0 || (self.bin_seconds > 0 && DAY % self.bin_seconds != 0) {
            return Err(EngineError::bad_param("recurrence.bin_seconds", self.bin_seconds, "0 or a divisor of 86400"));
        }
        if !(1..=365).contains(&self.days) {
            return Err(EngineError::bad_param("recurrence.days", self.days, "between 1 and 365"));
        }
        if !(self.fade_per_day >= 0.0 && self.fade_per_day.is_finite()) {
            return Err(EngineError::bad_param(
                "recurrence.fade_per_day",
                self.fade_per_day,
                "finite and non-negative",
            ));
        }
        if !(self.min_score > 0.0 && self.min_score <= 1.0) {
            return Err(EngineError::bad_param("recurrence.min_score", self.min_score, "in (0, 1]"));
        }
        if !(0.0..=1.0).contains(&self.rhythm_tolerance) {
            return Err(EngineError::bad_param("recurrence.rhythm_tolerance", self.rhythm_tolerance, "in [0, 1]"));
        }
        Ok(())
    }
}

/// Bits of an event's slot that hold its bin: enough for the 86,400 bins of one-second bins.
const BIN_BITS: u32 = 17;
/// Days after the memory's base day that a slot can hold (89 years).
const SLOT_DAYS: i64 = 1 << (32 - BIN_BITS);

/// The slot of a day (within [`SLOT_DAYS`] after `base`) and bin.
fn pack(base: i64, day: i64, bin: u32) -> u32 {
    debug_assert!((0..SLOT_DAYS).contains(&(day - base)) && bin < 1 << BIN_BITS);
    ((day - base) as u32) << BIN_BITS | bin
}

/// The day and bin of a slot counted from `base`.
fn unpack(base: i64, slot: u32) -> (i64, u32) {
    (base + i64::from(slot >> BIN_BITS), slot & ((1 << BIN_BITS) - 1))
}

/// One remembered event.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Event {
    /// Days after the memory's base day (high bits) and phase-of-day bin (low [`BIN_BITS`]).
    slot: u32,
    surprise: f32,
}

/// The recurrence rule, as configured: one per engine, shared by every series' [`Memory`].
#[derive(Debug, Clone)]
pub(crate) struct Recurrence {
    bin_seconds: i64,
    days: i64,
    fade_per_day: f64,
    /// Surprise (decades) at or above which an event is remembered.
    min_surprise: f64,
    bins: u32,
    rhythm_tolerance: f64,
    /// The shortest beat of a rhythm, in bins (half an hour): events closer together are one
    /// burst, which the alarm rule's rest period handles.
    min_beat: i64,
}

/// The recurrence memory of one series.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Memory {
    /// The day that slots count from: moved (and the slots renumbered) when a day falls
    /// outside the [`SLOT_DAYS`] after it.
    base_day: i64,
    events: Vec<Event>,
}

impl Recurrence {
    /// The rule, or None when the configuration turns it off.
    pub(crate) fn new(cfg: &RecurrenceConfig, decades_per_score: f64) -> Option<Self> {
        (cfg.bin_seconds > 0).then(|| Self {
            bin_seconds: cfg.bin_seconds,
            days: cfg.days,
            fade_per_day: cfg.fade_per_day,
            min_surprise: cfg.min_score * decades_per_score,
            bins: (DAY / cfg.bin_seconds) as u32,
            rhythm_tolerance: cfg.rhythm_tolerance,
            min_beat: (MIN_BEAT_SECONDS + cfg.bin_seconds - 1) / cfg.bin_seconds,
        })
    }

    /// What a rhythm leads a point at `now` to expect, from two consecutive events at `first`
    /// and `second` (all in bins since the epoch) whose smaller surprise is `size`: a third
    /// event a beat after the second (give or take the tolerance) is expected as large, less
    /// the fading for the time since the second. 0 off the beat, or with rhythms turned off.
    fn rhythm(&self, first: i64, second: i64, now: i64, size: f32) -> f64 {
        let (beat, since) = (second - first, now - second);
        let slack = (self.rhythm_tolerance * beat as f64).max(1.0);
        if self.rhythm_tolerance > 0.0 && beat >= self.min_beat && ((since - beat).abs() as f64) <= slack {
            f64::from(size) - self.fade_per_day * since as f64 / f64::from(self.bins)
        } else {
            0.0
        }
    }
}

impl super::rule::ScoreRule for Recurrence {
    type State = Memory;

    #[inline]
    fn apply(&self, memory: &mut Memory, t: DateTime<Utc>, _x: f64, surprise: f64) -> f64 {
        memory.discount(self, t.timestamp(), surprise)
    }

    fn heap_bytes(memory: &Memory) -> usize {
        memory.heap_bytes()
    }
}

impl Memory {
    /// The surprise of a point at `t` (seconds since the epoch) once what recurs is taken off,
    /// then remembers the point if it reached the top of the scale.
    pub(crate) fn discount(&mut self, rule: &Recurrence, t: i64, surprise: f64) -> f64 {
        // Nothing to take off (what is recalled is never negative) and nothing to remember: most
        // points, spared the scan of the memory.
        if surprise <= 0.0 {
            return 0.0;
        }
        let day = t.div_euclid(DAY);
        let bin = (t.rem_euclid(DAY) / rule.bin_seconds) as u32;
        let bins = i64::from(rule.bins);
        let now = day * bins + i64::from(bin);
        let mut recalled = 0.0f64;
        // One pass over the events, oldest first: each is recalled by the time of day, and
        // with the one before it as a rhythm.
        let mut previous: Option<(i64, f32)> = None;
        for e in &self.events {
            let (e_day, e_bin) = unpack(self.base_day, e.slot);
            let age = day - e_day;
            let apart = bin.abs_diff(e_bin).min(rule.bins - bin.abs_diff(e_bin));
            if (1..=rule.days).contains(&age) && apart <= 1 {
                recalled = recalled.max(f64::from(e.surprise) - rule.fade_per_day * age as f64);
            }
            let at = e_day * bins + i64::from(e_bin);
            if let Some((first, first_surprise)) = previous {
                recalled = recalled.max(rule.rhythm(first, at, now, first_surprise.min(e.surprise)));
            }
            previous = Some((at, e.surprise));
        }
        if surprise >= rule.min_surprise {
            self.remember(rule.days, day, bin, surprise);
        }
        if recalled == f64::INFINITY {
            // Nothing is worse than an unbounded surprise: a repeat of one is expected.
            return 0.0;
        }
        (surprise - recalled).max(0.0)
    }

    fn remember(&mut self, days: i64, day: i64, bin: u32, surprise: f64) {
        // Stored in single precision: a recalled surprise need not be exact to the decade's
        // billionth, and the memory stays at 8 bytes an event (beyond f32's range, as infinity).
        let s = surprise as f32;
        let base = self.base_day;
        if let Some(e) = self.events.iter_mut().find(|e| unpack(base, e.slot) == (day, bin)) {
            e.surprise = e.surprise.max(s);
            return;
        }
        // Forget events too old to be recalled, then the oldest if still full.
        self.events.retain(|e| day - unpack(base, e.slot).0 <= days);
        if self.events.len() == CAPACITY {
            self.events.remove(0);
        }
        if !(0..SLOT_DAYS).contains(&(day - self.base_day)) {
            self.rebase(days, day);
        }
        self.events.push(Event { slot: pack(self.base_day, day, bin), surprise: s });
    }

    /// Counts slots from `days` before `day`, keeping the events within `days` of it (the
    /// others cannot be recalled any more) under their new slots.
    fn rebase(&mut self, days: i64, day: i64) {
        let (old, new) = (self.base_day, day - days);
        self.events.retain_mut(|e| {
            let (d, b) = unpack(old, e.slot);
            let keep = (d - day).abs() <= days;
            if keep {
                e.slot = pack(new, d, b);
            }
            keep
        });
        self.base_day = new;
    }

    /// Events remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.events.len()
    }

    /// Bytes held on the heap.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.events.capacity() * std::mem::size_of::<Event>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3600;

    /// The default rule and one series' memory.
    struct Tested {
        rule: Recurrence,
        memory: Memory,
    }

    impl Tested {
        fn discount(&mut self, t: i64, surprise: f64) -> f64 {
            self.memory.discount(&self.rule, t, surprise)
        }
    }

    fn memory() -> Tested {
        with(RecurrenceConfig::default())
    }

    /// The time-of-day rule alone, without rhythms.
    fn daily() -> Tested {
        with(RecurrenceConfig { rhythm_tolerance: 0.0, ..RecurrenceConfig::default() })
    }

    fn with(cfg: RecurrenceConfig) -> Tested {
        // Scores span 10 decades, as the calibrator's do.
        Tested { rule: Recurrence::new(&cfg, 10.0).unwrap(), memory: Memory::default() }
    }

    #[test]
    fn a_daily_event_is_news_once() {
        let mut m = memory();
        let t0 = 100 * DAY + 2 * HOUR;
        // Day 0: the backup at 02:00 is a surprise of 30 decades, reported in full.
        assert_eq!(m.discount(t0, 30.0), 30.0);
        // Day 1, five minutes later in the day (the same 8-minute bin): the same size is expected, less one decade for
        // the day that passed: 1 decade left (a score of 0.1).
        assert!((m.discount(t0 + DAY + 300, 30.0) - 1.0).abs() < 1e-6);
        // Day 2: remembered at 30 from day 1 (29 off) and day 0 (28 off).
        assert!((m.discount(t0 + 2 * DAY, 30.0) - 1.0).abs() < 1e-6);
        // A much larger event at the same time is still news, by its excess.
        assert!((m.discount(t0 + 3 * DAY, 100.0) - 71.0).abs() < 1e-6);
        // A smaller one is not news at all.
        assert_eq!(m.discount(t0 + 4 * DAY, 12.0), 0.0);
    }

    #[test]
    fn other_times_and_the_same_day_are_not_discounted() {
        let mut m = daily();
        let t0 = 100 * DAY + 2 * HOUR;
        m.discount(t0, 30.0);
        // Same day, an hour later: no discount (the rest period handles repeats within a day).
        assert_eq!(m.discount(t0 + HOUR, 30.0), 30.0);
        // Next day, twenty minutes off (two bins of eight minutes): no discount.
        assert_eq!(m.discount(t0 + DAY + 1200, 30.0), 30.0);
        // Eight days later: forgotten.
        assert_eq!(m.discount(t0 + 8 * DAY, 30.0), 30.0);
    }

    #[test]
    fn only_top_scale_events_are_remembered() {
        let mut m = memory();
        let t0 = 100 * DAY;
        m.discount(t0, 9.9);
        assert_eq!(m.discount(t0 + DAY, 9.9), 9.9);
        // Bins wrap around midnight: 23:57 and 00:02 are neighbours.
        let mut m = memory();
        m.discount(t0 + DAY - 180, f64::INFINITY);
        let next = m.discount(t0 + DAY + 120, 12.0);
        assert_eq!(next, 0.0, "an infinite surprise is remembered as a huge one");
    }

    #[test]
    fn days_far_from_the_base_day_move_it() {
        // Before 1970 (negative days), and either side of the 89 years a slot reaches.
        for first_day in [-1000, SLOT_DAYS - 2, 3 * SLOT_DAYS + 5] {
            let mut m = daily();
            let t0 = first_day * DAY + 2 * HOUR;
            assert_eq!(m.discount(t0, 50.0), 50.0);
            // The next days recall the first (50 less a decade a day) as near the epoch, across
            // the move of the base day (at the third day for the second start).
            assert_eq!(m.discount(t0 + DAY, 12.0), 0.0, "from day {first_day}");
            assert_eq!(m.discount(t0 + 2 * DAY, 12.0), 0.0, "from day {first_day}");
            assert!((m.discount(t0 + 3 * DAY, 100.0) - 53.0).abs() < 1e-6, "from day {first_day}");
            assert_eq!(m.discount(t0 + 3 * DAY + HOUR, 30.0), 30.0, "another time of day, from day {first_day}");
        }
        // A jump of centuries forgets everything, then remembers afresh.
        let mut m = memory();
        m.discount(100 * DAY, 30.0);
        let later = (100 + 200 * 365) * DAY;
        assert_eq!(m.discount(later, 30.0), 30.0);
        assert_eq!(m.memory.events.len(), 1);
        assert!((m.discount(later + DAY, 30.0) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn a_rhythm_is_news_twice() {
        let mut m = memory();
        let t0 = 100 * DAY + 2 * HOUR;
        // A job every four hours: the first two runs are news, and set the beat.
        assert_eq!(m.discount(t0, 30.0), 30.0);
        assert_eq!(m.discount(t0 + 4 * HOUR, 20.0), 20.0);
        // The third is expected as large as the smaller of the two, less a sixth of a day's
        // fading: 20 - 1/6 decades; only the excess is news.
        let third = m.discount(t0 + 8 * HOUR, 25.0);
        assert!((third - (5.0 + 1.0 / 6.0)).abs() < 1e-6, "{third}");
        // Late (or early) by up to 30% of the beat (72 minutes of four hours) still keeps it.
        assert_eq!(m.discount(t0 + 13 * HOUR, 12.0), 0.0);
        // Off the beat, halfway between two runs: news in full (a rhythm, not a rate).
        let mut m = memory();
        m.discount(t0, 30.0);
        m.discount(t0 + 4 * HOUR, 30.0);
        assert_eq!(m.discount(t0 + 6 * HOUR, 30.0), 30.0);
        // Turned off, the third run is news again.
        let mut m = daily();
        m.discount(t0, 30.0);
        m.discount(t0 + 4 * HOUR, 30.0);
        assert_eq!(m.discount(t0 + 8 * HOUR, 30.0), 30.0);
    }

    #[test]
    fn events_closer_than_half_an_hour_make_no_rhythm() {
        // Three bins apart is 24 minutes: a burst (the rest period's business), not a beat.
        let mut m = memory();
        let t0 = 100 * DAY + HOUR;
        m.discount(t0, 30.0);
        m.discount(t0 + 24 * 60, 30.0);
        assert_eq!(m.discount(t0 + 48 * 60, 30.0), 30.0);
        // Four bins (32 minutes) is a beat.
        let mut m = memory();
        m.discount(t0, 30.0);
        m.discount(t0 + 32 * 60, 30.0);
        assert!(m.discount(t0 + 64 * 60, 30.0) < 0.1);
    }

    #[test]
    fn memory_is_bounded() {
        let mut m = memory();
        for i in 0..1000 {
            m.discount(100 * DAY + i * 600, 20.0);
        }
        assert!(m.memory.events.len() <= CAPACITY);
        assert_eq!(m.memory.heap_bytes(), CAPACITY * 8);
    }

    #[test]
    fn bad_parameters_are_refused() {
        let bad = RecurrenceConfig { bin_seconds: 7, ..RecurrenceConfig::default() };
        assert_eq!(
            bad.check().unwrap_err().to_string(),
            "parameter recurrence.bin_seconds is 7; it must be 0 or a divisor of 86400"
        );
        let bad = RecurrenceConfig { fade_per_day: f64::NAN, ..RecurrenceConfig::default() };
        assert!(bad.check().is_err());
        let bad = RecurrenceConfig { rhythm_tolerance: 1.5, ..RecurrenceConfig::default() };
        assert_eq!(
            bad.check().unwrap_err().to_string(),
            "parameter recurrence.rhythm_tolerance is 1.5; it must be in [0, 1]"
        );
    }
}
