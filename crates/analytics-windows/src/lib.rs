#![doc = include_str!("../README.md")]

use std::ops::Range;

use chrono::{DateTime, TimeDelta, Utc};

/// A window size, stride or width that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WindowError {
    /// A size or stride of zero points.
    #[error("{field} is 0; it must be at least 1 point")]
    ZeroPoints {
        /// `size` or `stride`.
        field: &'static str,
    },
    /// A width or stride of zero or negative duration.
    #[error("{field} is {value}; it must be a positive duration")]
    NonPositiveDuration {
        /// `width` or `stride`.
        field: &'static str,
        /// The duration given, as text.
        value: String,
    },
}

/// What to do with a last window that is not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Partial {
    /// Emit it, marked `complete: false`.
    #[default]
    Keep,
    /// Leave it out.
    Drop,
}

/// One window: an index range into the series, and its time bounds where times are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Indices of the points inside the window.
    pub range: Range<usize>,
    /// Start of the window's span (for time windows, the nominal start, not the first point).
    pub start: Option<DateTime<Utc>>,
    /// End of the window's span, exclusive (for time windows, the nominal end).
    pub end: Option<DateTime<Utc>>,
    /// Whether the window is complete (see the crate docs for the rule).
    pub complete: bool,
}

/// Windows of a fixed number of points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PointWindows {
    size: usize,
    stride: usize,
    partial: Partial,
}

impl PointWindows {
    /// Windows of `size` points, every `stride` points.
    pub fn new(size: usize, stride: usize, partial: Partial) -> Result<Self, WindowError> {
        if size == 0 {
            return Err(WindowError::ZeroPoints { field: "size" });
        }
        if stride == 0 {
            return Err(WindowError::ZeroPoints { field: "stride" });
        }
        Ok(Self { size, stride, partial })
    }

    /// The windows over a series of `len` points (no time bounds).
    pub fn over(&self, len: usize) -> impl Iterator<Item = Window> + '_ {
        let this = *self;
        (0..)
            .map(move |k: usize| k * this.stride)
            .take_while(move |&start| start < len)
            .map(move |start| {
                let end = (start + this.size).min(len);
                Window { range: start..end, start: None, end: None, complete: end - start == this.size }
            })
            // Once a window reaches the end of the series, later ones are sub-windows of it.
            .scan(false, move |reached_end, w| {
                if *reached_end {
                    return None;
                }
                *reached_end = w.range.end == len;
                Some(w)
            })
            .filter(move |w| w.complete || this.partial == Partial::Keep)
    }

    /// The windows over a timestamped series, with each window's first timestamp as its start
    /// and the timestamp after its last point (or its last point, for the final window) as its end.
    pub fn over_times<'a>(&'a self, timestamps: &'a [DateTime<Utc>]) -> impl Iterator<Item = Window> + 'a {
        self.over(timestamps.len()).map(move |mut w| {
            w.start = Some(timestamps[w.range.start]);
            w.end = Some(timestamps.get(w.range.end).copied().unwrap_or(timestamps[w.range.end - 1]));
            w
        })
    }
}

/// Windows of a fixed duration, aligned to multiples of the stride since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindows {
    width: TimeDelta,
    stride: TimeDelta,
    partial: Partial,
}

impl TimeWindows {
    /// Windows `width` long, every `stride`.
    pub fn new(width: TimeDelta, stride: TimeDelta, partial: Partial) -> Result<Self, WindowError> {
        for (field, d) in [("width", width), ("stride", stride)] {
            if d <= TimeDelta::zero() {
                return Err(WindowError::NonPositiveDuration {
                    field,
                    value: format!("{}s", d.num_milliseconds() as f64 / 1000.0),
                });
            }
        }
        Ok(Self { width, stride, partial })
    }

    /// Tumbling windows: `width` long, one after another.
    pub fn tumbling(width: TimeDelta) -> Result<Self, WindowError> {
        Self::new(width, width, Partial::Keep)
    }

    /// The window width.
    pub fn width(&self) -> TimeDelta {
        self.width
    }

    /// The start of the first window that can hold `t`'s stride slot: `t` rounded down to a
    /// multiple of the stride since the epoch.
    fn align(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let stride_ns = self.stride.num_nanoseconds().unwrap_or(i64::MAX).max(1) as i128;
        let t_ns = t.timestamp() as i128 * 1_000_000_000 + t.timestamp_subsec_nanos() as i128;
        let aligned = t_ns.div_euclid(stride_ns) * stride_ns;
        DateTime::from_timestamp((aligned.div_euclid(1_000_000_000)) as i64, aligned.rem_euclid(1_000_000_000) as u32)
            .unwrap_or(t)
    }

    /// The windows over strictly ascending timestamps. Windows with no point are skipped.
    pub fn over<'a>(&'a self, timestamps: &'a [DateTime<Utc>]) -> impl Iterator<Item = Window> + 'a {
        let (first, last) = match (timestamps.first(), timestamps.last()) {
            (Some(&f), Some(&l)) => (f, l),
            _ => (DateTime::UNIX_EPOCH, DateTime::UNIX_EPOCH),
        };
        // The first window that contains `first` may start up to `width` before it.
        let mut start = self.align(first - self.width + self.stride.min(self.width));
        while start + self.width <= first {
            start += self.stride;
        }
        let this = *self;
        let mut lo = 0usize;
        std::iter::from_fn(move || {
            while !timestamps.is_empty() && start <= last {
                let (s, e) = (start, start + this.width);
                start += this.stride;
                // Points are ascending: advance the lower bound, then search for the upper one.
                while lo < timestamps.len() && timestamps[lo] < s {
                    lo += 1;
                }
                let hi = lo + timestamps[lo..].partition_point(|&t| t < e);
                if hi == lo {
                    continue; // a gap: no point in this window
                }
                let complete = last >= e;
                if !complete && this.partial == Partial::Drop {
                    continue;
                }
                return Some(Window { range: lo..hi, start: Some(s), end: Some(e), complete });
            }
            None
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap() + TimeDelta::minutes(min)
    }

    fn ranges(ws: impl Iterator<Item = Window>) -> Vec<(Range<usize>, bool)> {
        ws.map(|w| (w.range, w.complete)).collect()
    }

    #[test]
    fn zero_sizes_are_refused() {
        assert_eq!(
            PointWindows::new(0, 1, Partial::Keep).unwrap_err().to_string(),
            "size is 0; it must be at least 1 point"
        );
        assert_eq!(PointWindows::new(1, 0, Partial::Keep).unwrap_err(), WindowError::ZeroPoints { field: "stride" });
        let err = TimeWindows::new(TimeDelta::zero(), TimeDelta::minutes(1), Partial::Keep).unwrap_err();
        assert_eq!(err.to_string(), "width is 0s; it must be a positive duration");
        assert!(TimeWindows::new(TimeDelta::minutes(1), TimeDelta::minutes(-1), Partial::Keep).is_err());
    }

    #[test]
    fn point_windows_edges() {
        let keep = |size, stride, len| ranges(PointWindows::new(size, stride, Partial::Keep).unwrap().over(len));
        let drop = |size, stride, len| ranges(PointWindows::new(size, stride, Partial::Drop).unwrap().over(len));
        // Empty and single-point series.
        assert_eq!(keep(3, 1, 0), vec![]);
        assert_eq!(keep(3, 1, 1), vec![(0..1, false)]);
        assert_eq!(drop(3, 1, 1), vec![]);
        assert_eq!(keep(1, 1, 1), vec![(0..1, true)]);
        // Series shorter than a window.
        assert_eq!(keep(10, 5, 4), vec![(0..4, false)]);
        // Exact fit: no trailing sub-window.
        assert_eq!(keep(4, 2, 6), vec![(0..4, true), (2..6, true)]);
        // Stride larger than size skips points.
        assert_eq!(keep(2, 5, 12), vec![(0..2, true), (5..7, true), (10..12, true)]);
        assert_eq!(keep(2, 5, 11), vec![(0..2, true), (5..7, true), (10..11, false)]);
        // Tumbling.
        assert_eq!(drop(3, 3, 10), vec![(0..3, true), (3..6, true), (6..9, true)]);
        assert_eq!(keep(3, 3, 10).last(), Some(&(9..10, false)));
    }

    #[test]
    fn point_windows_with_times() {
        let ts: Vec<_> = (0..5).map(t).collect();
        let w = PointWindows::new(2, 2, Partial::Keep).unwrap();
        let ws: Vec<Window> = w.over_times(&ts).collect();
        assert_eq!(ws[0].start, Some(t(0)));
        assert_eq!(ws[0].end, Some(t(2)));
        assert_eq!(ws[2].range, 4..5);
        assert_eq!(ws[2].end, Some(t(4)));
    }

    #[test]
    fn time_windows_align_to_the_epoch_and_skip_gaps() {
        // Points at minutes 7..=9 and 31..=40: a gap from 10 to 30.
        let ts: Vec<_> = (7..10).chain(31..41).map(t).collect();
        let w = TimeWindows::tumbling(TimeDelta::minutes(10)).unwrap();
        let ws: Vec<Window> = w.over(&ts).collect();
        let got: Vec<_> = ws.iter().map(|w| (w.start.unwrap(), w.range.clone(), w.complete)).collect();
        assert_eq!(
            got,
            vec![
                (t(0), 0..3, true),   // [00:00, 00:10): minutes 7, 8, 9
                (t(30), 3..12, true), // [00:30, 00:40): 31..=39; the point at 40 closes it
                (t(40), 12..13, false),
            ]
        );
        let w = TimeWindows::new(TimeDelta::minutes(10), TimeDelta::minutes(10), Partial::Drop).unwrap();
        assert_eq!(w.over(&ts).count(), 2);
    }

    #[test]
    fn sliding_time_windows_overlap() {
        let ts: Vec<_> = (0..6).map(t).collect();
        let w = TimeWindows::new(TimeDelta::minutes(4), TimeDelta::minutes(2), Partial::Keep).unwrap();
        let got = ranges(w.over(&ts));
        // [-2,2) [0,4) [2,6) [4,8); the last point is at 5, so nothing has closed [2,6) yet.
        assert_eq!(got, vec![(0..2, true), (0..4, true), (2..6, false), (4..6, false)]);
    }

    #[test]
    fn time_windows_empty_and_one_point() {
        let w = TimeWindows::tumbling(TimeDelta::hours(1)).unwrap();
        assert_eq!(w.over(&[]).count(), 0);
        let one = [t(5)];
        let ws: Vec<Window> = w.over(&one).collect();
        assert_eq!(ws.len(), 1);
        assert_eq!((ws[0].range.clone(), ws[0].complete, ws[0].start), (0..1, false, Some(t(0))));
    }

    #[test]
    fn windows_cover_every_point_when_stride_equals_width() {
        let ts: Vec<_> = [0, 1, 2, 50, 51, 200, 201, 202, 999].into_iter().map(t).collect();
        let w = TimeWindows::tumbling(TimeDelta::minutes(7)).unwrap();
        let mut covered = vec![];
        for win in w.over(&ts) {
            covered.extend(win.range.clone());
            for i in win.range.clone() {
                assert!(ts[i] >= win.start.unwrap() && ts[i] < win.end.unwrap());
            }
        }
        assert_eq!(covered, (0..ts.len()).collect::<Vec<_>>());
    }
}
