//! Robust rolling z-score: the distance of a point from the median of the previous `window`
//! points, in units of their robust standard deviation (1.4826 x MAD).
//!
//! The median and the MAD of the window are kept exactly: the window is held sorted, each value
//! with its arrival number (one byte for windows up to 256 values, two beyond). Per point: a
//! count of the values below the newest (two levels of independent comparisons, not a binary
//! search), a scan of the numbers for the oldest's place (eight one-byte numbers at a time),
//! and one shift of the values between the two places. The MAD is the k-th smallest of two
//! sorted sequences (distances below the median, read leftwards, and above it, read
//! rightwards), found next to the previous point's answer: within a step of it (nearly always,
//! on ordinary data) by a count with no branch on the data, further away by a walk (at most
//! w / 2 steps, after a jump).

use std::mem::size_of;

use analytics_numerics::stats::MAD_TO_SIGMA;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::checkpoint;
use crate::detector::{Detector, DetectorState};
use crate::EngineError;

/// Parameters of the robust rolling z-score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RobustZConfig {
    /// Points in the rolling window the current point is compared with.
    pub window: usize,
    /// Points needed in the window before scoring starts (scores are 0 before).
    pub min_points: usize,
}

impl Default for RobustZConfig {
    fn default() -> Self {
        Self { window: 120, min_points: 30 }
    }
}

impl RobustZConfig {
    pub(crate) fn check(&self) -> Result<(), EngineError> {
        if !(3..=MAX_WINDOW).contains(&self.window) {
            return Err(EngineError::bad_param("window", self.window, "between 3 and 65535 points"));
        }
        if self.min_points < 3 || self.min_points > self.window {
            return Err(EngineError::bad_param("min_points", self.min_points, "between 3 and window"));
        }
        Ok(())
    }
}

/// The robust rolling z-score detector.
#[derive(Debug, Clone)]
pub struct RobustZ {
    cfg: RobustZConfig,
}

impl RobustZ {
    /// Builds the detector after checking its parameters.
    pub fn new(cfg: RobustZConfig) -> Result<Self, EngineError> {
        cfg.check()?;
        Ok(Self { cfg })
    }
}

impl RobustZ {
    /// The rolling window the detector scores against, as configured.
    pub(crate) fn window(&self) -> RollingMedian {
        RollingMedian::new(self.cfg.window, self.cfg.min_points)
    }
}

impl Detector for RobustZ {
    fn name(&self) -> &'static str {
        crate::DetectorKind::RobustZscore.as_str()
    }

    fn resume(&self, saved: &[u8]) -> Result<Box<dyn DetectorState>, EngineError> {
        Ok(Box::new(checkpoint::decode::<RollingMedian>(self.name(), saved)?))
    }

    fn start(&self) -> Box<dyn DetectorState> {
        Box::new(self.window())
    }
}

/// The largest rolling window: values are numbered by arrival modulo 2^16.
pub(crate) const MAX_WINDOW: usize = u16::MAX as usize;

/// How far from the previous point's split the MAD search looks without branching: one step
/// either way (two or more cost more comparisons than the rarer walks save).
const REACH: usize = 1;

/// Windows up to this size number their values modulo 2^8, in one byte each.
const NARROW_WINDOW: usize = 256;

/// A window of the last `capacity` values (at most [`MAX_WINDOW`]), kept sorted, each with its
/// arrival number.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RollingMedian {
    sorted: Vec<f64>,
    /// Arrival number of each value in `sorted`, at the same index: the oldest value is the one
    /// numbered `next - capacity`.
    arrivals: Arrivals,
    /// Arrival number of the next value (mod 2^16; the narrow numbers are its low byte).
    next: u16,
    /// Sizes in 16 bits (windows are at most [`MAX_WINDOW`]): 24 bytes less per window.
    capacity: u16,
    min_points: u16,
    /// Where the last MAD search split its k smallest distances (how many came from below the
    /// median): the next search starts there, and the split rarely moves by more than a step.
    split_hint: u16,
}

/// The arrival numbers of a window's values: one byte each up to 256 values (the numbers of
/// `capacity` consecutive arrivals are distinct modulo 256), two beyond.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Arrivals {
    Narrow(Vec<u8>),
    Wide(Vec<u16>),
}

/// An arrival number as stored: the low bits of the 16-bit count.
trait ArrivalNumber: Copy + PartialEq {
    fn from_count(count: u16) -> Self;

    /// Index of `target` in `numbers`. Blocks of 32 are compared whole, without an early exit
    /// inside a block, so the comparisons are vectorised; only the block that holds it is
    /// searched one by one.
    fn find(numbers: &[Self], target: Self) -> Option<usize> {
        const BLOCK: usize = 32;
        numbers.chunks(BLOCK).enumerate().find_map(|(b, block)| {
            if block.iter().fold(false, |hit, &a| hit | (a == target)) {
                block.iter().position(|&a| a == target).map(|i| b * BLOCK + i)
            } else {
                None
            }
        })
    }
}

impl ArrivalNumber for u8 {
    fn from_count(count: u16) -> Self {
        count as u8
    }

    /// Eight bytes at a time: a word XORed with the target has a zero byte where the target
    /// is, and `(v - 0x01..01) & !v & 0x80..80` marks the first zero byte exactly (a borrow
    /// can only mark bytes above it).
    fn find(numbers: &[u8], target: u8) -> Option<usize> {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGHS: u64 = 0x8080_8080_8080_8080;
        let pattern = ONES * u64::from(target);
        let mut words = numbers.chunks_exact(8);
        for (w, word) in words.by_ref().enumerate() {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(word);
            let v = u64::from_le_bytes(bytes) ^ pattern;
            let zero = v.wrapping_sub(ONES) & !v & HIGHS;
            if zero != 0 {
                return Some(w * 8 + (zero.trailing_zeros() / 8) as usize);
            }
        }
        let rest = words.remainder();
        rest.iter().position(|&a| a == target).map(|i| numbers.len() - rest.len() + i)
    }
}

impl ArrivalNumber for u16 {
    fn from_count(count: u16) -> Self {
        count
    }
}

/// Puts `x` (arrival `count`) at its sorted place `at`: appended while the window fills, else
/// in place of the oldest value with a single shift of the values between their two places
/// (removing, then inserting, moves twice as much).
fn place<A: ArrivalNumber>(
    sorted: &mut Vec<f64>,
    arrivals: &mut Vec<A>,
    capacity: usize,
    at: usize,
    x: f64,
    count: u16,
) {
    let number = A::from_count(count);
    if sorted.len() < capacity {
        sorted.insert(at, x);
        arrivals.insert(at, number);
        return;
    }
    // The oldest value's place: a scan of the arrival numbers (no comparison of values).
    let oldest = A::from_count(count.wrapping_sub(capacity as u16));
    let found = A::find(arrivals, oldest);
    debug_assert!(found.is_some(), "the oldest value is always in a full window");
    let from = found.unwrap_or(0);
    if at <= from {
        sorted.copy_within(at..from, at + 1);
        arrivals.copy_within(at..from, at + 1);
        sorted[at] = x;
        arrivals[at] = number;
    } else {
        // The oldest sorts before `x`: once it is gone, `x` belongs one place earlier.
        sorted.copy_within(from + 1..at, from);
        arrivals.copy_within(from + 1..at, from);
        sorted[at - 1] = x;
        arrivals[at - 1] = number;
    }
}

impl RollingMedian {
    pub(crate) fn new(capacity: usize, min_points: usize) -> Self {
        debug_assert!(capacity <= MAX_WINDOW && min_points <= capacity, "checked by the configurations");
        let (capacity, min_points) = (capacity.min(MAX_WINDOW), min_points.min(capacity));
        Self {
            sorted: Vec::with_capacity(capacity),
            arrivals: if capacity <= NARROW_WINDOW {
                Arrivals::Narrow(Vec::with_capacity(capacity))
            } else {
                Arrivals::Wide(Vec::with_capacity(capacity))
            },
            next: 0,
            capacity: capacity as u16,
            min_points: min_points as u16,
            split_hint: 0,
        }
    }

    /// An empty window of the same capacity and warm-up, its storage reserved exactly.
    pub(crate) fn empty_like(&self) -> Self {
        Self::new(usize::from(self.capacity), usize::from(self.min_points))
    }

    pub(crate) fn push(&mut self, x: f64) {
        let at = self.rank(x);
        let count = self.next;
        self.next = self.next.wrapping_add(1);
        match &mut self.arrivals {
            Arrivals::Narrow(a) => place(&mut self.sorted, a, usize::from(self.capacity), at, x, count),
            Arrivals::Wide(a) => place(&mut self.sorted, a, usize::from(self.capacity), at, x, count),
        }
    }

    /// Where `x` belongs in the window: how many values are below it. NaN goes after every
    /// value (so NaNs stay last, where `v < x` is false as it must be for them).
    ///
    /// Up to [`NARROW_WINDOW`] values, in two levels of counting rather than a binary search:
    /// the blocks of eight whose last value is below `x` (a prefix, as the window is sorted),
    /// then the values below `x` in the block after them. The comparisons are independent of
    /// one another, where each step of a binary search waits for the load the previous one
    /// chose: 15 + 8 comparisons for the default 120 values, against seven dependent steps.
    fn rank(&self, x: f64) -> usize {
        const BLOCK: usize = 8;
        let s = &self.sorted;
        if x.is_nan() {
            return s.len();
        }
        if s.len() > NARROW_WINDOW {
            return s.partition_point(|&v| v < x);
        }
        let blocks = s.chunks_exact(BLOCK).filter(|b| b[BLOCK - 1] < x).count();
        let start = blocks * BLOCK;
        let block = &s[start..(start + BLOCK).min(s.len())];
        start + block.iter().filter(|&&v| v < x).count()
    }

    /// Whether two windows hold the same points and warm up alike (they would give equal z).
    pub(crate) fn same_shape(&self, other: &Self) -> bool {
        (self.capacity, self.min_points) == (other.capacity, other.min_points)
    }

    /// Bytes held on the heap by the window.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.sorted.capacity() * size_of::<f64>()
            + match &self.arrivals {
                Arrivals::Narrow(a) => a.capacity() * size_of::<u8>(),
                Arrivals::Wide(a) => a.capacity() * size_of::<u16>(),
            }
    }

    /// Median of the window (NaN when empty).
    pub(crate) fn median(&self) -> f64 {
        let s = &self.sorted;
        match s.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => s[n / 2],
            n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
        }
    }

    /// Median absolute deviation around `med`, exactly.
    pub(crate) fn mad(&mut self, med: f64) -> f64 {
        let n = self.sorted.len();
        if n == 0 {
            return f64::NAN;
        }
        let (kth, next) = self.kth_distance(med, (n - 1) / 2);
        if n % 2 == 1 {
            kth
        } else {
            (kth + next) / 2.0
        }
    }

    /// The k-th smallest (0-based) of |s_i - med| over the sorted window, and the (k+1)-th (the
    /// smaller of the two sequences' next elements: one search gives both; infinity past the end).
    ///
    /// The k + 1 smallest distances are the i nearest below the median and the k + 1 - i nearest
    /// above it, for the i at which neither side's last taken distance exceeds the other side's
    /// next one: the largest i that is not too high (one of its i taken from below lies beyond
    /// an untaken distance above). Being too high is monotone in i, and the window changed by one
    /// value since the previous point, so i rarely moves by more than a step from the previous
    /// point's i. Within [`REACH`] of it, i is a count of the positions there that are not too
    /// high, with no branch on the data (a walk whose direction changes at random mispredicts a
    /// branch or two per point); further away, the search walks.
    fn kth_distance(&mut self, med: f64, k: usize) -> (f64, f64) {
        let s = &self.sorted;
        // The first value at or above the median: the middle, or just left of it on ties
        // (a scan from the middle, cheaper than a binary search since ties are rare).
        let mut split = s.len() / 2;
        while split > 0 && s[split - 1] >= med {
            split -= 1;
        }
        while split < s.len() && s[split] < med {
            split += 1;
        }
        // A(i): distances below the median, ascending; B(j): distances at or above it, ascending.
        let a = |i: usize| med - s[split - 1 - i];
        let b = |j: usize| s[split + j] - med;
        let (len_a, len_b) = (split, s.len() - split);
        let count = k + 1;
        let (lo, hi) = (count.saturating_sub(len_b), count.min(len_a));
        let hint = usize::from(self.split_hint);
        // Taking i from A takes a distance beyond B's next one (defined for lo < i <= hi).
        let too_high = |i: usize| a(i - 1) > b(count - i);
        if hint > lo + REACH && hint + REACH < hi {
            // The answer lies in [from, hint + REACH] when `from` is not too high and the next
            // position past the range is; then every index read below is in bounds.
            let from = hint - REACH;
            if !too_high(from) && too_high(hint + REACH + 1) {
                let i = from + (from + 1..=hint + REACH).filter(|&i| !too_high(i)).count();
                let j = count - i;
                self.split_hint = i as u16;
                return (a(i - 1).max(b(j - 1)), a(i).min(b(j)));
            }
        }
        let mut i = hint.clamp(lo, hi);
        loop {
            let j = count - i;
            if i > 0 && j < len_b && a(i - 1) > b(j) {
                i -= 1;
            } else if j > 0 && i < len_a && b(j - 1) > a(i) {
                i += 1;
            } else {
                // At most half the window: fits, as the window does.
                self.split_hint = i as u16;
                let from_a = if i > 0 { a(i - 1) } else { f64::NEG_INFINITY };
                let from_b = if j > 0 { b(j - 1) } else { f64::NEG_INFINITY };
                let next_a = if i < len_a { a(i) } else { f64::INFINITY };
                let next_b = if j < len_b { b(j) } else { f64::INFINITY };
                return (from_a.max(from_b), next_a.min(next_b));
            }
        }
    }

    /// Robust spread of the window (1.4826 x MAD), with fallbacks so it is never 0: when more
    /// than half the window is one value, the mean absolute deviation, then a tiny share of the
    /// level (so a change off a flat line scores very high). None while warming up.
    pub(crate) fn spread(&mut self) -> Option<(f64, f64)> {
        if self.sorted.len() < usize::from(self.min_points) {
            return None;
        }
        let med = self.median();
        let mut sigma = MAD_TO_SIGMA * self.mad(med);
        if sigma <= 0.0 {
            let mean_abs = self.sorted.iter().map(|v| (v - med).abs()).sum::<f64>() / self.sorted.len() as f64;
            sigma = if mean_abs > 0.0 { 1.2533 * mean_abs } else { 1e-9 * med.abs().max(1.0) };
        }
        Some((med, sigma))
    }

    /// Robust z of `x` against the window, or None while warming up.
    pub(crate) fn z(&mut self, x: f64) -> Option<f64> {
        self.spread().map(|(med, sigma)| (x - med) / sigma)
    }
}

impl DetectorState for RollingMedian {
    fn update(&mut self, _t: DateTime<Utc>, x: f64) -> Option<f64> {
        let score = self.z(x).map(f64::abs);
        self.push(x);
        score
    }

    fn save(&self) -> Result<Vec<u8>, EngineError> {
        checkpoint::encode(crate::DetectorKind::RobustZscore.as_str(), self)
    }

    fn state_bytes(&self) -> usize {
        size_of::<Self>() + self.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use analytics_numerics::stats::median_sigma;
    use proptest::prelude::*;

    /// The obvious O(w) computation, to check the incremental one against.
    fn reference_z(history: &[f64], x: f64, window: usize, min_points: usize) -> Option<f64> {
        let w = &history[history.len().saturating_sub(window)..];
        if w.len() < min_points {
            return None;
        }
        let (m, s) = median_sigma(w);
        (s > 0.0).then(|| (x - m) / s)
    }

    proptest! {
        #[test]
        fn incremental_median_and_mad_match_the_reference(
            xs in prop::collection::vec(-1e6f64..1e6, 1..400),
            window in 3usize..50,
        ) {
            let mut rm = RollingMedian::new(window, 3);
            for (i, &x) in xs.iter().enumerate() {
                if let (Some(got), Some(want)) = (rm.z(x), reference_z(&xs[..i], x, window, 3)) {
                    prop_assert!((got - want).abs() <= 1e-9 * want.abs().max(1.0), "at {}: {} vs {}", i, got, want);
                }
                rm.push(x);
            }
        }

        #[test]
        fn ties_and_duplicates_are_handled(xs in prop::collection::vec(0u8..4, 1..200), window in 3usize..20) {
            let mut rm = RollingMedian::new(window, 3);
            for (i, &x) in xs.iter().enumerate() {
                let x = f64::from(x);
                let hist: Vec<f64> = xs[..i].iter().map(|&v| f64::from(v)).collect();
                if let (Some(got), Some(want)) = (rm.z(x), reference_z(&hist, x, window, 3)) {
                    prop_assert!((got - want).abs() < 1e-9);
                }
                rm.push(x);
            }
        }
    }

    #[test]
    fn smooth_series_with_jumps_match_the_reference_at_every_point() {
        // A random walk moves the MAD's split by a step at a time (the branch-free search);
        // level shifts and spikes move it further (the walk). Both must give the exact MAD.
        let mut state = 7u64;
        let mut uniform = || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut level = 100.0;
        let xs: Vec<f64> = (0..4_000)
            .map(|i| {
                level += uniform() - 0.5;
                if i % 700 == 350 {
                    level += 40.0;
                }
                if i % 97 == 0 {
                    level + 25.0 * uniform()
                } else {
                    level
                }
            })
            .collect();
        for window in [5, 30, 120, 300] {
            let mut rm = RollingMedian::new(window, 3);
            for (i, &x) in xs.iter().enumerate() {
                let (got, want) = (rm.z(x), reference_z(&xs[..i], x, window, 3));
                assert_eq!(got.is_some(), want.is_some(), "window {window} at {i}");
                if let (Some(g), Some(w)) = (got, want) {
                    assert!((g - w).abs() <= 1e-9 * w.abs().max(1.0), "window {window} at {i}: {g} vs {w}");
                }
                rm.push(x);
            }
        }
    }

    #[test]
    fn one_and_two_byte_arrival_numbers_both_wrap_correctly() {
        // 256 is the largest window with one-byte numbers, 257 the smallest with two; 70,000
        // points wrap both kinds of number many times.
        for window in [255, 256, 257, 1000] {
            let mut rm = RollingMedian::new(window, 3);
            assert_eq!(matches!(rm.arrivals, Arrivals::Narrow(_)), window <= 256);
            let mut state = 12_345u64;
            let xs: Vec<f64> = (0..70_000)
                .map(|_| {
                    state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                    (state >> 40) as f64 / 1e3
                })
                .collect();
            for (i, &x) in xs.iter().enumerate() {
                if i % 997 == 0 {
                    let want = reference_z(&xs[..i], x, window, 3);
                    let got = rm.z(x);
                    match (got, want) {
                        (Some(g), Some(w)) => {
                            assert!((g - w).abs() <= 1e-9 * w.abs().max(1.0), "window {window} at {i}")
                        }
                        (g, w) => assert_eq!(g.is_some(), w.is_some(), "window {window} at {i}"),
                    }
                }
                rm.push(x);
            }
        }
    }

    #[test]
    fn the_eight_bytes_at_a_time_search_finds_the_first_match() {
        // Every length up to 40 (whole words and remainders), small alphabets so that values
        // repeat and neighbour each other (the borrow of the zero-byte test), every target.
        let mut state = 99u64;
        for len in 0..40 {
            for _ in 0..20 {
                let numbers: Vec<u8> = (0..len)
                    .map(|_| {
                        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                        ((state >> 33) % 5) as u8
                    })
                    .collect();
                for target in 0..6u8 {
                    let want = numbers.iter().position(|&a| a == target);
                    assert_eq!(<u8 as ArrivalNumber>::find(&numbers, target), want, "{numbers:?} {target}");
                    let wide: Vec<u16> = numbers.iter().map(|&a| u16::from(a)).collect();
                    assert_eq!(<u16 as ArrivalNumber>::find(&wide, u16::from(target)), want);
                }
            }
        }
    }

    #[test]
    fn nan_and_signed_zeros_leave_the_window_consistent() {
        // NaN is kept last and signed zeros compare equal; once they have left the window, z is
        // exact again (and nothing panics while they are in it).
        let window = 12;
        let mut rm = RollingMedian::new(window, 3);
        let mut xs = vec![3.0, f64::NAN, -0.0, 0.0, 2.0, -f64::NAN, 5.0, 0.0, -0.0, 1.0];
        xs.extend((0..40).map(|i| f64::from(i * 7 % 13) - 6.0));
        for (i, &x) in xs.iter().enumerate() {
            let got = rm.z(x);
            if i >= 10 + window {
                let want = reference_z(&xs[..i], x, window, 3);
                let (g, w) = (got.unwrap_or(f64::NAN), want.unwrap_or(f64::NAN));
                assert!((g - w).abs() <= 1e-12, "at {i}: {g} vs {w}");
            }
            rm.push(x);
            let finite = rm.sorted.iter().take_while(|v| !v.is_nan()).count();
            assert!(rm.sorted[finite..].iter().all(|v| v.is_nan()), "NaN not last after {i}: {:?}", rm.sorted);
            assert!(rm.sorted[..finite].windows(2).all(|p| p[0] <= p[1]), "unsorted after {i}: {:?}", rm.sorted);
        }
    }

    #[test]
    fn bad_parameters_are_refused() {
        let err = RobustZ::new(RobustZConfig { window: 2, min_points: 2 }).unwrap_err();
        assert_eq!(err.to_string(), "parameter window is 2; it must be between 3 and 65535 points");
        let err = RobustZ::new(RobustZConfig { window: 70_000, min_points: 30 }).unwrap_err();
        assert_eq!(err.to_string(), "parameter window is 70000; it must be between 3 and 65535 points");
        let err = RobustZ::new(RobustZConfig { window: 10, min_points: 11 }).unwrap_err();
        assert_eq!(err.to_string(), "parameter min_points is 11; it must be between 3 and window");
    }

    #[test]
    fn state_is_bounded_by_the_window() {
        let d = RobustZ::new(RobustZConfig::default()).unwrap();
        let mut s = d.start();
        let t = DateTime::UNIX_EPOCH;
        for i in 0..10_000 {
            s.update(t, f64::from(i % 17));
        }
        assert!(s.state_bytes() < 2 * 128 * 8 + 256, "{} bytes", s.state_bytes());
    }
}
