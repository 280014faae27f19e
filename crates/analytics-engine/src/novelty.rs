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

use analytics_explain::stats::quantile;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
        "context_novelty"
    }
    fn start(&self) -> Box<dyn DetectorState> {
        Box::new(NoveltyState {
            levels: self.cfg.levels,
            // At most 4, as checked.
            order: self.cfg.order as u8,
            learn: self.cfg.learn,
            learning: Vec::with_capacity(self.cfg.learn),
            range: None,
            context: 0,
            filled: 0,
            counts: vec![0; self.cfg.contexts().div_ceil(2)],
            // At most 65,536, as checked.
            contexts: self.cfg.contexts() as u32,
        })
    }
}

#[derive(Debug, Clone)]
struct NoveltyState {
    levels: u8,
    order: u8,
    learn: usize,
    learning: Vec<f64>,
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
        if self.range.is_none() {
            self.learning.push(x);
            if self.learning.len() >= self.learn {
                let (lo, hi) = (quantile(&self.learning, 0.01), quantile(&self.learning, 0.99));
                let pad = 0.1 * (hi - lo).max(1e-9 * lo.abs().max(1.0));
                self.range = Some((lo - pad, hi + pad));
                self.learning = Vec::new();
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
        Some(1.0 / (1.0 + f64::from(seen)))
    }

    fn state_bytes(&self) -> usize {
        size_of::<Self>() + self.learning.capacity() * 8 + self.counts.capacity() * size_of::<u8>()
    }
}
