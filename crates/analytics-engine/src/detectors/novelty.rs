//! Context novelty: a point is anomalous when the short pattern it completes has rarely or never
//! been seen on this series, however extreme or ordinary its value. Recurring bursts (a nightly
//! job, a periodic spike) become familiar and stop scoring; a new shape scores at once. The idea
//! of the contextual anomaly detector (CAD OSE, the best detector of NAB's scoreboard), made causal
//! and bounded.
//!
//! Values are quantised into `levels` bins over a range learnt from the first `learn` points
//! (their 1st to 99th percentiles, widened by 10%; values outside fall in the end bins, plus one
//! bin each for "below" and "above" anything learnt). A context is the last `order` bins; the
//! detector counts how often each context has occurred, in a dense table of
//! `(levels + 2)^order` 4-bit counters, two to a byte, that stop at 15 (1,000 contexts, 500
//! bytes, by default). The raw score of a point is `1 / (1 + count)` of its context before this
//! occurrence: 1 for a never-seen pattern, 1/16 for one seen 15 times or more (counting on to
//! 255 changed no NAB score of the default engine and none of its ASD figures by more than
//! 0.002, for twice the memory). On NAB most of its value comes from the first time a series
//! leaves the range it learnt.

use std::mem::size_of;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::checkpoint;
use crate::detector::{Detector, DetectorState};
use crate::EngineError;

/// Parameters of the context-novelty detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NoveltyConfig {
    /// Quantisation bins over the learnt range.
    pub levels: u8,
    /// Bins per context (the current point and the ones before it).
    pub order: usize,
    /// Points from which the range is learnt (nothing is scored before).
    pub learn: usize,
}

impl Default for NoveltyConfig {
    fn default() -> Self {
        Self { levels: 8, order: 3, learn: 150 }
    }
}

impl NoveltyConfig {
    pub(crate) fn check(&self) -> Result<(), EngineError> {
        if !(2..=60).contains(&self.levels) {
            return Err(EngineError::bad_param("levels", self.levels, "between 2 and 60"));
        }
        if !(1..=4).contains(&self.order) {
            return Err(EngineError::bad_param("order", self.order, "between 1 and 4"));
        }
        if self.learn < 10 {
            return Err(EngineError::bad_param("learn", self.learn, "at least 10"));
        }
        if self.contexts() > 1 << 16 {
            return Err(EngineError::bad_param("order", self.order, "such that (levels + 2)^order is at most 65536"));
        }
        Ok(())
    }

    fn contexts(&self) -> usize {
        (usize::from(self.levels) + 2).saturating_pow(self.order as u32)
    }
}

/// The context-novelty detector.
#[derive(Debug, Clone)]
pub struct Novelty {
    cfg: NoveltyConfig,
}

impl Novelty {
    /// Builds the detector after checking its parameters.
    pub fn new(cfg: NoveltyConfig) -> Result<Self, EngineError> {
        cfg.check()?;
        Ok(Self { cfg })
    }
}

impl Detector for Novelty {
    fn name(&self) -> &'static str {
        crate::DetectorKind::ContextNovelty.as_str()
    }
    fn resume(&self, saved: &[u8]) -> Result<Box<dyn DetectorState>, EngineError> {
        Ok(Box::new(checkpoint::decode::<NoveltyState>(self.name(), saved)?))
    }

    fn start(&self) -> Box<dyn DetectorState> {
        Box::new(NoveltyState {
            levels: self.cfg.levels,
            // At most 4, as checked.
            order: self.cfg.order as u8,
            learning: Some(Box::new(Extremes::new(self.cfg.learn, [LOW_QUANTILE, HIGH_QUANTILE]))),
            range: None,
            context: 0,
            filled: 0,
            counts: vec![0; self.cfg.contexts().div_ceil(2)],
            // At most 65,536, as checked.
            contexts: self.cfg.contexts() as u32,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct NoveltyState {
    levels: u8,
    order: u8,
    /// While the range is learnt: the values that its quantiles are read from (boxed, and
    /// dropped once the range is learnt).
    learning: Option<Box<Extremes>>,
    range: Option<(f64, f64)>,
    /// The last `order` bins, as a number in base `levels + 2`.
    context: u32,
    /// Bins seen, counted up to `order`.
    filled: u8,
    /// Occurrences per context, 4 bits each: context `i` is the low half of byte `i / 2` when
    /// `i` is even, the high half when odd.
    counts: Vec<u8>,
    contexts: u32,
}

/// Where a context's counter stops.
const MAX_COUNT: u8 = 15;

/// The raw score of a context seen `n` times before, `1 / (1 + n)`, for every count a counter
/// holds: read, not divided, per point (the same numbers).
const SURPRISE_OF_SEEN: [f64; MAX_COUNT as usize + 1] = {
    let mut table = [0.0; MAX_COUNT as usize + 1];
    let mut n = 0;
    while n <= MAX_COUNT as usize {
        table[n] = 1.0 / (1.0 + n as f64);
        n += 1;
    }
    table
};

impl NoveltyState {
    fn bin(&self, x: f64) -> usize {
        let (lo, hi) = self.range.unwrap_or((0.0, 1.0));
        let levels = usize::from(self.levels);
        if x < lo {
            levels // below anything learnt
        } else if x > hi {
            levels + 1 // above anything learnt
        } else if hi > lo {
            (((x - lo) / (hi - lo) * levels as f64) as usize).min(levels - 1)
        } else {
            0
        }
    }
}

impl DetectorState for NoveltyState {
    fn update(&mut self, _t: DateTime<Utc>, x: f64) -> Option<f64> {
        if let Some(learning) = &mut self.learning {
            learning.push(x);
            if learning.seen == learning.n {
                let (lo, hi) = (learning.quantile(LOW_QUANTILE), learning.quantile(HIGH_QUANTILE));
                let pad = 0.1 * (hi - lo).max(1e-9 * lo.abs().max(1.0));
                self.range = Some((lo - pad, hi + pad));
                self.learning = None;
            }
            return None;
        }
        self.context = (self.context * (u32::from(self.levels) + 2) + self.bin(x) as u32) % self.contexts;
        self.filled = self.filled.saturating_add(1).min(self.order);
        if self.filled < self.order {
            return None;
        }
        let shift = (self.context & 1) * 4;
        let byte = &mut self.counts[self.context as usize / 2];
        let seen = (*byte >> shift) & MAX_COUNT;
        if seen < MAX_COUNT {
            *byte += 1 << shift;
        }
        Some(SURPRISE_OF_SEEN[usize::from(seen)])
    }

    fn save(&self) -> Result<Vec<u8>, EngineError> {
        checkpoint::encode(crate::DetectorKind::ContextNovelty.as_str(), self)
    }

    fn state_bytes(&self) -> usize {
        size_of::<Self>()
            + self.learning.as_ref().map_or(0, |e| size_of::<Extremes>() + e.heap_bytes())
            + self.counts.capacity() * size_of::<u8>()
    }
}

/// The quantiles of the learning points that set the range.
const LOW_QUANTILE: f64 = 0.01;
const HIGH_QUANTILE: f64 = 0.99;

/// The smallest and largest of `n` values, as many as quantiles near the ends need: the
/// quantile (linear between ranks, in `f64::total_cmp` order) of all `n` values, exactly, in
/// 2k values instead of n (k = 3 of 150 for the 1st and 99th percentiles).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Extremes {
    /// The values of all `n` that will be seen.
    n: usize,
    /// Values seen so far.
    seen: usize,
    /// Values kept at each end.
    keep: usize,
    /// The `keep` smallest so far, ascending.
    low: Vec<f64>,
    /// The `keep` largest so far, ascending.
    high: Vec<f64>,
}

impl Extremes {
    /// Room for quantiles `qs` (each at most 1% from an end, or the buffers grow with n) of
    /// `n` values.
    fn new(n: usize, qs: [f64; 2]) -> Self {
        // The ranks a quantile reads, as `quantile_sorted` places it: floor and ceil of
        // q (n - 1), to be kept from whichever end is nearer.
        let keep = qs
            .iter()
            .map(|q| {
                let pos = q.clamp(0.0, 1.0) * n.saturating_sub(1) as f64;
                let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
                (hi + 1).min(n - lo)
            })
            .max()
            .unwrap_or(0)
            .min(n);
        Self { n, seen: 0, keep, low: Vec::with_capacity(keep), high: Vec::with_capacity(keep) }
    }

    fn push(&mut self, x: f64) {
        self.seen += 1;
        let at = self.low.partition_point(|v| v.total_cmp(&x).is_le());
        if at < self.keep {
            // The largest kept makes room (removed first: the buffer never outgrows `keep`).
            if self.low.len() == self.keep {
                self.low.pop();
            }
            self.low.insert(at, x);
        }
        let at = self.high.partition_point(|v| v.total_cmp(&x).is_lt());
        if self.high.len() < self.keep {
            self.high.insert(at, x);
        } else if at > 0 {
            // Above the smallest kept, which makes room.
            self.high.remove(0);
            self.high.insert(at - 1, x);
        }
    }

    /// The value of rank `i` (0-based, ascending) among all `n`: kept at one end or the other.
    fn rank(&self, i: usize) -> f64 {
        if i < self.low.len() {
            self.low[i]
        } else {
            let from_top = self.n - 1 - i;
            debug_assert!(from_top < self.high.len(), "rank {i} of {} is kept", self.n);
            self.high.get(self.high.len().wrapping_sub(1 + from_top)).copied().unwrap_or(f64::NAN)
        }
    }

    /// The `q`-quantile of the `n` values, once all are seen (as `stats::quantile_sorted`).
    fn quantile(&self, q: f64) -> f64 {
        let pos = q.clamp(0.0, 1.0) * self.n.saturating_sub(1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        let (a, b) = (self.rank(lo), self.rank(hi));
        a + (b - a) * (pos - lo as f64)
    }

    fn heap_bytes(&self) -> usize {
        (self.low.capacity() + self.high.capacity()) * size_of::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use analytics_numerics::stats::quantile;

    use super::*;

    #[test]
    fn extremes_give_the_quantiles_of_all_values() {
        let mut state = 5u64;
        let mut next = || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            state >> 11
        };
        for n in [10, 11, 150, 151, 1000] {
            for trial in 0..20 {
                // Ties (values from a few levels), and on some trials infinities and NaN.
                let values: Vec<f64> = (0..n)
                    .map(|_| match next() % 50 {
                        0 if trial % 3 == 0 => f64::INFINITY,
                        1 if trial % 3 == 0 => f64::NEG_INFINITY,
                        2 if trial % 5 == 0 => f64::NAN,
                        r => (r % (5 + trial)) as f64 * 0.37,
                    })
                    .collect();
                let qs = [LOW_QUANTILE, HIGH_QUANTILE];
                let mut e = Extremes::new(n, qs);
                for &x in &values {
                    e.push(x);
                }
                for q in qs {
                    let (got, want) = (e.quantile(q), quantile(&values, q));
                    assert!(
                        got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                        "n {n} q {q}: {got} vs {want}"
                    );
                }
                assert!(e.low.len() <= e.keep && e.high.len() <= e.keep);
            }
        }
        // 150 values at the 1st and 99th percentiles: three from each end.
        assert_eq!(Extremes::new(150, [LOW_QUANTILE, HIGH_QUANTILE]).keep, 3);
    }
}
