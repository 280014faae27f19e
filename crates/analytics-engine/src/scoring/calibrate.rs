//! Calibration: a raw score becomes a score in [0, 1] from its tail probability `p` under what
//! the detector has produced on this series so far: `score = min(1, -log10(p) / 10)`. A score
//! means the same thing for every detector and series: 0.3 is reached by one point in a
//! thousand of the series' own history, 0.5 by one in 10^5, 1.0 by one in 10^10 or rarer. (The
//! logarithm keeps scores apart: with `1 - p`, the largest of a day's normal points already
//! reads 0.9997 and every real anomaly rounds to 1.)
//!
//! The raw scores seen are counted in a fixed histogram of 144 bins from 2^-4 (0.0625) to 2^14
//! (16,384), eight per octave (about 27 per decade), plus an underflow and an overflow bin:
//! bounded memory (219 bytes of counts) however long the series. A raw score's bin is read off
//! the bits of its floating-point representation (exponent and the three leading mantissa bits),
//! so no logarithm is taken per point. Counts are 12-bit, two to three bytes: when one would
//! pass 4,095, every count is halved, so the history forgets its older half each time its
//! busiest bin has gained about 2,000 points (every few tens of thousands of points, or a few
//! thousand on a series whose raw scores mostly fall in one bin). Below the `tail_quantile` of
//! that history, the tail probability is its empirical distribution function, read at six
//! quantiles (knots) and interpolated between them linearly in `-log10(p)`; above it, an
//! exponential tail fitted to the excesses (the peaks-over-threshold model of extreme value
//! theory with shape 0), so scores keep separating beyond anything seen.
//! Both are linear in the raw score in `-log10(p)` (the "surprise", in decades), which is what
//! the calibrator computes: no logarithm or exponential per point.
//!
//! The body below the tail quantile reaches at most one decade (a score of 0.1), far below any
//! alarm threshold, so its resolution only shapes the low scores: the histogram starts at 2^-4
//! (raw scores are in units of a robust spread or, for context novelty, at least 1/16, so a
//! score below 2^-4 is nothing unusual) and the body has six knots. The previous layout
//! (from 2^-14, eleven knots in double precision, 16-bit counts: 764 bytes per calibrator
//! against 320) gave every engine the same NAB scores. The 12-bit counts changed the default
//! engine's ASD figures, whose series are long enough to halve (point-adjusted F1 0.762 to
//! 0.829, HitRate@150% 0.884 to 0.877).
//!
//! The fit is refreshed at 32, 64, 128, ... 1024 samples, then every 256; each score uses only
//! raw scores from before its point (causal), and the whole computation is deterministic.

use std::mem::size_of;

use serde::{Deserialize, Serialize};

use crate::EngineError;

/// Calibration parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CalibrationConfig {
    /// Raw scores needed before calibrated scores leave 0.
    pub min_samples: u32,
    /// Quantile above which the exponential tail takes over.
    pub tail_quantile: f64,
}

impl Default for CalibrationConfig {
    fn default() -> Self {
        Self { min_samples: 64, tail_quantile: 0.9 }
    }
}

impl CalibrationConfig {
    pub(crate) fn check(&self) -> Result<(), EngineError> {
        if self.min_samples < 32 {
            return Err(EngineError::bad_param("min_samples", self.min_samples, "at least 32"));
        }
        if !(0.5..1.0).contains(&self.tail_quantile) {
            return Err(EngineError::bad_param("tail_quantile", self.tail_quantile, "in [0.5, 1)"));
        }
        Ok(())
    }
}

/// Octaves below 1 covered by the histogram: the first log-spaced bin starts at 2^-4.
const MIN_EXP: i64 = -4;
/// Octaves covered (2^-4 to 2^14).
const OCTAVES: usize = 18;
/// Bins per octave: the three leading mantissa bits (eight bins).
const SUB_BITS: u32 = 3;
const LOG_BINS: usize = OCTAVES << SUB_BITS;
const NBINS: usize = LOG_BINS + 2;
const KNOTS: usize = 6;
/// Counts are 12-bit.
const MAX_COUNT: u16 = (1 << 12) - 1;
const COUNT_BYTES: usize = (NBINS * 12).div_ceil(8);

/// Lower edge of histogram bin `b` (bin 0 is [0, 2^-4), the last is [2^14, inf)).
fn lower_edge(b: usize) -> f64 {
    if b == 0 {
        return 0.0;
    }
    let k = b - 1;
    let exp = MIN_EXP + (k >> SUB_BITS) as i64;
    let sub = (k & ((1 << SUB_BITS) - 1)) as u64;
    // 2^exp x (1 + sub / 8), built from its bits: exact, and no `powf`.
    f64::from_bits((((exp + 1023) as u64) << 52) | (sub << (52 - SUB_BITS)))
}

/// Histogram bin of a raw score, from its bits: bin 1 + 8 (e + 4) + m for a score of
/// 2^e x 1.m.. (m the three leading mantissa bits).
fn bin_of(raw: f64) -> usize {
    // Below the range, zero, negative and NaN scores all count as "nothing unusual".
    if raw.is_nan() || raw < lower_edge(1) {
        return 0;
    }
    let bits = raw.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let k = ((exp - MIN_EXP) as usize) << SUB_BITS | ((bits >> (52 - SUB_BITS)) & ((1 << SUB_BITS) - 1)) as usize;
    (k + 1).min(NBINS - 1)
}

/// What every calibrator of an engine shares: its configuration, and the surprise at each knot
/// of the body, `-log10(1 - k p / 5)` (p = tail_quantile), which depends on nothing else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Scale {
    cfg: CalibrationConfig,
    decades: [f32; KNOTS],
}

impl Scale {
    pub(crate) fn new(cfg: CalibrationConfig) -> Self {
        let step = cfg.tail_quantile / (KNOTS - 1) as f64;
        let decades = std::array::from_fn(|k| -(1.0 - k as f64 * step).log10() as f32);
        Self { cfg, decades }
    }
}

/// A fitted mapping from raw score to surprise: `-log10` of the tail probability. Held in single
/// precision (48 bytes; four per series in the default engine); the mapping is
/// evaluated in double precision and passes exactly through its rounded knots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Fit {
    /// Raw-score quantiles at 0, p/5, 2p/5, ..., p (p = tail_quantile), where the surprise is
    /// the [`Scale`]'s `decades`.
    knots: [f32; KNOTS],
    /// Surprise per unit of raw score between consecutive knots (0 for an empty interval).
    slope: [f32; KNOTS - 1],
    /// Surprise per unit of raw score above the last knot: the exponential tail's
    /// 1 / (mean excess), in decades.
    tail_slope: f32,
}

/// Decades of tail probability that span the score range: a tail of 10^-10 scores 1.
pub const SCORE_DECADES: f64 = 10.0;

/// The score of a tail probability: `min(1, -log10(p) / 10)`.
pub fn tail_to_score(p: f64) -> f64 {
    if p <= 0.0 {
        return 1.0;
    }
    (-p.log10() / SCORE_DECADES).clamp(0.0, 1.0)
}

/// The tail probability a score stands for (the inverse of [`tail_to_score`] below 1).
pub fn score_to_tail(score: f64) -> f64 {
    10f64.powf(-score * SCORE_DECADES)
}

/// The score of a surprise (decades of tail probability, `-log10(p)`): `min(1, decades / 10)`.
pub fn surprise_to_score(decades: f64) -> f64 {
    (decades / SCORE_DECADES).clamp(0.0, 1.0)
}

impl Fit {
    fn new(knots: [f64; KNOTS], decades: &[f32; KNOTS], beta: f64) -> Self {
        // Rounded first, so that the slopes join the rounded knots exactly.
        let knots = knots.map(|q| q as f32);
        let slope = std::array::from_fn(|k| {
            let width = f64::from(knots[k + 1]) - f64::from(knots[k]);
            if width > 0.0 {
                ((f64::from(decades[k + 1]) - f64::from(decades[k])) / width) as f32
            } else {
                0.0
            }
        });
        Self { knots, slope, tail_slope: (std::f64::consts::LOG10_E / beta) as f32 }
    }

    /// Surprise, under the history, of a raw score at least this high: `-log10` of its tail
    /// probability. Linear in the raw score between knots (so exact at the knots) and above the
    /// last knot (the exponential tail): no logarithm per point.
    fn surprise(&self, decades: &[f32; KNOTS], raw: f64) -> f64 {
        let u = f64::from(self.knots[KNOTS - 1]);
        if raw > u {
            return f64::from(decades[KNOTS - 1]) + (raw - u) * f64::from(self.tail_slope);
        }
        if raw <= f64::from(self.knots[0]) {
            return 0.0;
        }
        // The interval (knots[below], knots[below + 1]] holding `raw`: counted without branches.
        let below = self.knots[1..KNOTS - 1].iter().filter(|&&q| f64::from(q) < raw).count();
        let slope = f64::from(self.slope[below]);
        if slope > 0.0 {
            f64::from(decades[below]) + (raw - f64::from(self.knots[below])) * slope
        } else {
            f64::from(decades[below + 1])
        }
    }
}

/// Streaming calibrator for one series: what it has learnt of the series, with its own copy of
/// the configuration (an ensemble keeps one configuration for all its members instead).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Calibrator {
    scale: Scale,
    history: History,
}

impl Calibrator {
    /// A calibrator that has seen nothing yet.
    pub fn new(cfg: CalibrationConfig) -> Self {
        Self { scale: Scale::new(cfg), history: History::default() }
    }

    /// Calibrates `raw` (a detector's score for the next point), then learns from it.
    /// `warming_up` marks points the detector could not score yet: they are not learnt from.
    pub fn update(&mut self, raw: f64, warming_up: bool) -> f64 {
        surprise_to_score(self.update_surprise(raw, warming_up))
    }

    /// Like [`Calibrator::update`], but returns the surprise itself: `-log10` of the tail
    /// probability, not capped at 10 decades as scores are (0 until the calibrator has learnt
    /// enough).
    pub fn update_surprise(&mut self, raw: f64, warming_up: bool) -> f64 {
        self.history.update_surprise(&self.scale, raw, warming_up)
    }

    /// Raw scores learnt from so far.
    pub fn samples(&self) -> u32 {
        self.history.total
    }

    /// Bytes held.
    pub fn state_bytes(&self) -> usize {
        size_of::<Self>()
    }
}

/// What a calibrator learns of one series, without the configuration: the owner passes the
/// [`Scale`], so that an ensemble keeps one for all its members.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct History {
    /// 12-bit counts, two to three bytes: bin `b`'s count is bits `12 b ..` of the array.
    #[serde(with = "crate::checkpoint::byte_array")]
    counts: [u8; COUNT_BYTES],
    /// Largest raw score seen (bounds the overflow bin).
    max_seen: f32,
    total: u32,
    fit: Option<Fit>,
}

impl Default for History {
    fn default() -> Self {
        Self { counts: [0; COUNT_BYTES], max_seen: 0.0, total: 0, fit: None }
    }
}

impl History {
    /// The surprise of `raw` under the history so far (see [`Calibrator::update_surprise`]),
    /// then learns from it unless `warming_up`.
    #[inline]
    pub(crate) fn update_surprise(&mut self, scale: &Scale, raw: f64, warming_up: bool) -> f64 {
        let surprise = self.fit.as_ref().map_or(0.0, |f| f.surprise(&scale.decades, raw));
        if !warming_up && self.total < u32::MAX {
            let b = bin_of(raw);
            let (i, shift) = (3 * b / 2, (b & 1) * 4);
            let word = u16::from_le_bytes([self.counts[i], self.counts[i + 1]]);
            if (word >> shift) & MAX_COUNT == MAX_COUNT {
                self.halve();
            }
            // One more in bin b: below 4,095 now, so no carry into the neighbouring count.
            let word = u16::from_le_bytes([self.counts[i], self.counts[i + 1]]) + (1 << shift);
            [self.counts[i], self.counts[i + 1]] = word.to_le_bytes();
            self.total += 1;
            self.max_seen = self.max_seen.max(raw as f32);
            let n = self.total;
            let due = if n <= 1024 { n.is_power_of_two() } else { n.is_multiple_of(256) };
            let min_samples = scale.cfg.min_samples;
            if n >= min_samples && (due || n == min_samples) {
                self.fit = Some(self.refit(scale));
            }
        }
        surprise
    }

    /// Halves the history (rounding up, so no bin that was seen becomes empty). Rare (once per
    /// few thousand points at most), so kept out of the per-point path.
    #[cold]
    #[inline(never)]
    fn halve(&mut self) {
        for b in 0..NBINS {
            let c = self.count(b);
            self.set_count(b, c - c / 2);
        }
        self.total = (0..NBINS).map(|b| u32::from(self.count(b))).sum();
    }

    /// The count of bin `b`: 12 bits from byte `3 b / 2`, the low ones for an even bin, shifted
    /// by 4 for an odd one.
    fn count(&self, b: usize) -> u16 {
        let i = 3 * b / 2;
        (u16::from_le_bytes([self.counts[i], self.counts[i + 1]]) >> ((b & 1) * 4)) & MAX_COUNT
    }

    fn set_count(&mut self, b: usize, c: u16) {
        let (i, shift) = (3 * b / 2, (b & 1) * 4);
        let word = u16::from_le_bytes([self.counts[i], self.counts[i + 1]]);
        let word = (word & !(MAX_COUNT << shift)) | (c << shift);
        [self.counts[i], self.counts[i + 1]] = word.to_le_bytes();
    }

    /// Upper edge of bin `b`, given what has been seen.
    fn upper_edge(&self, b: usize) -> f64 {
        if b == NBINS - 1 {
            f64::from(self.max_seen)
        } else {
            lower_edge(b + 1)
        }
    }

    /// The raw scores at cumulative shares `qs` (ascending) of the history, linear within a
    /// bin, in one pass over the bins.
    fn quantiles<const N: usize>(&self, counts: &[u16; NBINS], qs: [f64; N]) -> [f64; N] {
        let mut out = [f64::from(self.max_seen); N];
        let mut next = 0;
        let mut cum = 0.0;
        for (b, &c) in counts.iter().enumerate() {
            if next == N {
                break;
            }
            let c = f64::from(c);
            while next < N && c > 0.0 && cum + c >= qs[next] * f64::from(self.total) {
                let (lo, hi) = (lower_edge(b), self.upper_edge(b).max(lower_edge(b)));
                out[next] = lo + (hi - lo) * ((qs[next] * f64::from(self.total) - cum) / c).clamp(0.0, 1.0);
                next += 1;
            }
            cum += c;
        }
        out
    }

    /// Rare (at 32, 64, ... 1024 samples, then every 256), so kept out of the per-point path.
    #[cold]
    #[inline(never)]
    fn refit(&self, scale: &Scale) -> Fit {
        let p = scale.cfg.tail_quantile;
        // Unpacked once for the two passes.
        let counts: [u16; NBINS] = std::array::from_fn(|b| self.count(b));
        let knots =
            self.quantiles(&counts, std::array::from_fn::<f64, KNOTS, _>(|k| p * k as f64 / (KNOTS - 1) as f64));
        let u = knots[KNOTS - 1];
        // Mean excess over u, taking each bin's mass at its midpoint (the part above u only):
        // the bins from u's up.
        let (mut mass, mut excess) = (0.0, 0.0);
        for (b, &c) in counts.iter().enumerate().skip(bin_of(u)).filter(|&(_, &c)| c > 0) {
            let (lo, hi) = (lower_edge(b), self.upper_edge(b));
            if hi <= u {
                continue;
            }
            let lo_above = lo.max(u);
            let share = if hi > lo { (hi - lo_above) / (hi - lo) } else { 1.0 };
            let m = f64::from(c) * share;
            mass += m;
            excess += m * ((lo_above + hi) / 2.0 - u);
        }
        let mean_excess = if mass > 0.0 { excess / mass } else { 0.0 };
        // A floor keeps a flat history from giving an infinitely steep tail.
        let beta = mean_excess.max(1e-6 * u.abs().max(1.0)).max(1e-9);
        Fit::new(knots, &scale.decades, beta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trained(raws: impl Iterator<Item = f64>) -> Calibrator {
        let mut c = Calibrator::new(CalibrationConfig::default());
        for r in raws {
            c.update(r, false);
        }
        c
    }

    #[test]
    fn scores_are_tail_probabilities() {
        // Raw scores uniform on (0, 10]: the body maps to the empirical CDF within the bins'
        // resolution (8 per octave), the tail above the 0.9 quantile (about 9) is exponential.
        let c = trained((1..=1024).map(|i| f64::from(i) * 10.0 / 1024.0));
        let tail = |r: f64| score_to_tail(c.clone().update(r, true));
        assert!((tail(4.5) - 0.55).abs() < 0.02, "{}", tail(4.5));
        assert!((tail(8.5) - 0.15).abs() < 0.02, "{}", tail(8.5));
        let (t1, t2, t3) = (tail(9.5), tail(10.0), tail(11.0));
        assert!(0.1 > t1 && t1 > t2 && t2 > t3 && t3 > 0.0, "{t1} {t2} {t3}");
        // Beyond a tail of 1e-10 the score is capped at 1; at the bottom it is 0.
        assert_eq!(c.clone().update(100.0, true), 1.0);
        assert_eq!(c.clone().update(0.0, true), 0.0);
    }

    #[test]
    fn gaussian_z_scores_calibrate_to_their_tail_probabilities() {
        // |z| of a standard normal, by inverse CDF on a grid: P(|z| > 2) = 0.0455. The grid is
        // visited in a scrambled order (7,919 is prime to 100,000), as a series would produce
        // it: in ascending order, every halving of a full bin would fall on the low values only.
        let n = 100_000;
        let zs = (1..n).map(|i| {
            let p = f64::from((i * 7_919) % n) / f64::from(n);
            // Two-sided: |z| at cumulative p. Acklam-free approximation via bisection on erf.
            let mut lo = 0.0;
            let mut hi = 10.0;
            for _ in 0..60 {
                let mid = (lo + hi) / 2.0;
                if erf(mid / std::f64::consts::SQRT_2) < p {
                    lo = mid
                } else {
                    hi = mid
                }
            }
            lo
        });
        let c = trained(zs);
        let p2 = score_to_tail(c.clone().update(2.0, true));
        // |z| = 2 lies above the 0.9 quantile (1.645), in the exponential tail, whose fit to a
        // normal tail is off by about 0.004 there: the model's error, not the histogram's.
        assert!((p2 - 0.0455).abs() < 0.005, "tail at |z| = 2: {p2}");
        let p4 = score_to_tail(c.clone().update(4.0, true));
        // The exponential tail is heavier than the normal one: 4 sigma gets a tail between the
        // normal's 6.3e-5 and 1e-3 (conservative, so fewer false alarms on heavy-tailed data).
        assert!(p4 < 1e-3 && p4 > 6.3e-5, "tail at |z| = 4: {p4}");
    }

    fn erf(x: f64) -> f64 {
        // Abramowitz and Stegun 7.1.26 (error < 1.5e-7).
        let t = 1.0 / (1.0 + 0.327_591_1 * x);
        1.0 - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t + 0.254_829_592)
            * t
            * (-x * x).exp()
    }

    #[test]
    fn zero_before_enough_samples_and_monotone_after() {
        let mut c = Calibrator::new(CalibrationConfig::default());
        for i in 0..64 {
            assert_eq!(c.update(f64::from(i % 7), false), 0.0);
        }
        let scores: Vec<f64> = (0..100).map(|r| c.clone().update(f64::from(r) / 10.0, true)).collect();
        assert!(scores.windows(2).all(|w| w[0] <= w[1]));
        assert!(scores[99] > 0.5, "{}", scores[99]);
    }

    #[test]
    fn flat_history_makes_any_change_extreme() {
        let mut c = trained(std::iter::repeat_n(0.0, 256));
        assert_eq!(c.update(0.0, false), 0.0);
        assert_eq!(c.update(0.5, false), 1.0);
    }

    #[test]
    fn state_is_small_and_fixed() {
        let c = trained((0..100_000).map(f64::from));
        assert!(c.state_bytes() <= 320, "{}", c.state_bytes());
    }

    #[test]
    fn bins_read_off_the_bits_bracket_their_values() {
        assert_eq!(lower_edge(1), 2f64.powi(-4));
        assert_eq!(lower_edge(NBINS - 1), 2f64.powi(14));
        assert_eq!(lower_edge(2), 1.125 * 2f64.powi(-4));
        for &r in &[0.0, -1.0, f64::NAN, 1e-9, 0.0624] {
            assert_eq!(bin_of(r), 0, "{r}");
        }
        assert_eq!(bin_of(1e9), NBINS - 1);
        assert_eq!(bin_of(f64::INFINITY), NBINS - 1);
        // Every value in range lies in [lower_edge(b), lower_edge(b + 1)).
        let mut r = 0.0626;
        while r < 16_000.0 {
            let b = bin_of(r);
            assert!(lower_edge(b) <= r && r < lower_edge(b + 1), "{r} in bin {b}");
            r *= 1.0173;
        }
        assert_eq!(bin_of(1.0), 1 + 8 * 4);
        assert_eq!(bin_of(1.75), 1 + 8 * 4 + 6);
    }

    #[test]
    fn a_full_bin_halves_the_history_instead_of_overflowing() {
        // Counts are 12-bit: the bin fills at 4,095 and the history is halved.
        let mut c = trained(std::iter::repeat_n(1.0, 70_000));
        assert!(c.samples() <= 4_095 && c.samples() >= 2_048, "{}", c.samples());
        // The history still says 1.0 is ordinary and 5.0 is not.
        assert_eq!(c.clone().update(1.0, true), 0.0);
        assert_eq!(c.update(5.0, true), 1.0);
    }

    #[test]
    fn twelve_bit_counts_do_not_touch_their_neighbours() {
        let mut c = History::default();
        let value = |b: usize| (b as u16 * 37) % (MAX_COUNT + 1);
        for b in 0..NBINS {
            c.set_count(b, value(b));
        }
        // Rewrite every other bin, at the extremes of the range.
        for b in (0..NBINS).step_by(2) {
            c.set_count(b, MAX_COUNT);
            c.set_count(b, value(b));
        }
        assert!((0..NBINS).all(|b| c.count(b) == value(b)));
        c.set_count(NBINS - 1, MAX_COUNT);
        assert_eq!((c.count(NBINS - 2), c.count(NBINS - 1)), (value(NBINS - 2), MAX_COUNT));
    }

    #[test]
    fn score_scale_by_hand() {
        assert_eq!(tail_to_score(1.0), 0.0);
        assert!((tail_to_score(1e-3) - 0.3).abs() < 1e-12);
        assert!((tail_to_score(1e-5) - 0.5).abs() < 1e-12);
        assert_eq!(tail_to_score(1e-12), 1.0);
        assert_eq!(tail_to_score(0.0), 1.0);
        assert!((score_to_tail(0.5) - 1e-5).abs() < 1e-18);
    }

    #[test]
    fn bad_parameters_are_refused() {
        let err = CalibrationConfig { min_samples: 10, ..Default::default() }.check().unwrap_err();
        assert_eq!(err.to_string(), "parameter min_samples is 10; it must be at least 32");
    }
}
