//! Timestamps as the files write them: RFC 3339 (`2024-03-04T10:00:00Z`, any offset), naive
//! `YYYY-MM-DD HH:MM:SS` with an optional fraction (taken as UTC), or Unix epoch seconds or
//! milliseconds (a number of 11 or more digits before any decimal point is milliseconds:
//! seconds of that size would be after the year 5138).

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

/// Which way a timestamp was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampFormat {
    /// RFC 3339 with an offset.
    Rfc3339,
    /// `YYYY-MM-DD HH:MM:SS[.f]`, taken as UTC.
    NaiveUtc,
    /// Seconds since the Unix epoch.
    EpochSeconds,
    /// Milliseconds since the Unix epoch.
    EpochMillis,
}

impl TimestampFormat {
    /// A short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            TimestampFormat::Rfc3339 => "RFC 3339",
            TimestampFormat::NaiveUtc => "YYYY-MM-DD HH:MM:SS",
            TimestampFormat::EpochSeconds => "epoch seconds",
            TimestampFormat::EpochMillis => "epoch milliseconds",
        }
    }
}

/// Parses a timestamp in any supported format; returns the format it was in.
pub fn parse_timestamp(text: &str) -> Result<(DateTime<Utc>, TimestampFormat), String> {
    let t = text.trim();
    if let Some(fast) = parse_common(t.as_bytes()) {
        return Ok(fast);
    }
    if let Ok(v) = t.parse::<f64>() {
        if !v.is_finite() {
            return Err(format!("{t:?} is not a timestamp"));
        }
        let digits = t.trim_start_matches('-').split('.').next().unwrap_or("").len();
        let (secs, format) =
            if digits >= 11 { (v / 1000.0, TimestampFormat::EpochMillis) } else { (v, TimestampFormat::EpochSeconds) };
        let whole = secs.floor();
        let nanos = ((secs - whole) * 1e9).round().min(999_999_999.0) as u32;
        return DateTime::from_timestamp(whole as i64, nanos)
            .map(|d| (d, format))
            .ok_or_else(|| format!("{t} is out of range as {}", format.name()));
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok((d.with_timezone(&Utc), TimestampFormat::Rfc3339));
    }
    if let Ok(d) = NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f") {
        return Ok((d.and_utc(), TimestampFormat::NaiveUtc));
    }
    Err(format!("{t:?} is not a timestamp (RFC 3339, YYYY-MM-DD HH:MM:SS, or epoch seconds or milliseconds)"))
}

/// [`parse_timestamp`] for a file's rows: the same results, with the last date's day number kept,
/// as the rows of a series share their date for a day's worth of rows.
#[derive(Debug, Default)]
pub(crate) struct TimestampParser {
    /// The date text (`YYYY-MM-DD`) of the last fast-path timestamp and its date.
    last_date: Option<([u8; 10], NaiveDate)>,
}

impl TimestampParser {
    /// As [`parse_timestamp`].
    pub(crate) fn parse(&mut self, text: &str) -> Result<(DateTime<Utc>, TimestampFormat), String> {
        let b = text.as_bytes();
        if let (Some(format), Some((text_date, date))) = (layout(b), self.last_date) {
            if b[..10] == text_date {
                let time =
                    time_of_day(b).and_then(|secs| NaiveTime::from_num_seconds_from_midnight_opt(secs as u32, 0));
                if let Some(time) = time {
                    return Ok((date.and_time(time).and_utc(), format));
                }
            }
        }
        let parsed = parse_timestamp(text)?;
        if layout(b).is_some() {
            let text_date: [u8; 10] = b[..10].try_into().unwrap_or_default();
            self.last_date = Some((text_date, parsed.0.date_naive()));
        }
        Ok(parsed)
    }
}

/// Which of the two common layouts `b` has by its length and separators, if any.
fn layout(b: &[u8]) -> Option<TimestampFormat> {
    let format = match (b.len(), b.get(10), b.last()) {
        (20, Some(b'T'), Some(b'Z')) => TimestampFormat::Rfc3339,
        (19, Some(b' '), _) => TimestampFormat::NaiveUtc,
        _ => return None,
    };
    (b[4] == b'-' && b[7] == b'-' && b[13] == b':' && b[16] == b':').then_some(format)
}

/// Two ASCII digits at `at`.
fn two_digits(b: &[u8], at: usize) -> Option<u32> {
    let (h, l) = (b[at].wrapping_sub(b'0'), b[at + 1].wrapping_sub(b'0'));
    (h < 10 && l < 10).then(|| u32::from(h) * 10 + u32::from(l))
}

/// Seconds since midnight of a common-layout timestamp, or `None` if its time is not valid.
fn time_of_day(b: &[u8]) -> Option<i64> {
    let (hour, minute, second) = (two_digits(b, 11)?, two_digits(b, 14)?, two_digits(b, 17)?);
    (hour <= 23 && minute <= 59 && second <= 59).then(|| i64::from(hour * 3600 + minute * 60 + second))
}

/// The fast path for the two layouts files write most, `YYYY-MM-DDTHH:MM:SSZ` and
/// `YYYY-MM-DD HH:MM:SS`, read digit by digit without chrono's general parser: the same instant
/// and format as the general path gives, or `None` for anything else (fractions, offsets, leap
/// seconds, impossible dates), which then takes the general path and its messages.
fn parse_common(b: &[u8]) -> Option<(DateTime<Utc>, TimestampFormat)> {
    let format = layout(b)?;
    let (year, month, day) = (two_digits(b, 0)? * 100 + two_digits(b, 2)?, two_digits(b, 5)?, two_digits(b, 8)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > days_in_month {
        return None;
    }
    let time = time_of_day(b)?;
    // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
    let (y, m, d) = (i64::from(year) - i64::from(month <= 2), i64::from(month), i64::from(day));
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + time;
    DateTime::from_timestamp(secs, 0).map(|t| (t, format))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn every_format() {
        let want = Utc.with_ymd_and_hms(2024, 3, 4, 10, 0, 0).unwrap();
        assert_eq!(parse_timestamp("2024-03-04T10:00:00Z").unwrap(), (want, TimestampFormat::Rfc3339));
        assert_eq!(parse_timestamp("2024-03-04T12:00:00+02:00").unwrap().0, want);
        assert_eq!(parse_timestamp("2024-03-04 10:00:00").unwrap(), (want, TimestampFormat::NaiveUtc));
        assert_eq!(parse_timestamp("1709546400").unwrap(), (want, TimestampFormat::EpochSeconds));
        assert_eq!(parse_timestamp("1709546400000").unwrap(), (want, TimestampFormat::EpochMillis));
        assert_eq!(parse_timestamp("1709546400.5").unwrap().0, want + chrono::Duration::milliseconds(500));
        assert!(parse_timestamp("yesterday").unwrap_err().contains("is not a timestamp"));
        assert!(parse_timestamp("").is_err());
        assert!(parse_timestamp("NaN").is_err());
    }

    /// The fast path gives what chrono's general parser gives, and leaves what it cannot read
    /// to it: every day of four years around a leap year and a century, at several times.
    #[test]
    fn the_fast_path_agrees_with_the_general_one() {
        let general = |t: &str| {
            DateTime::parse_from_rfc3339(t)
                .map(|d| (d.with_timezone(&Utc), TimestampFormat::Rfc3339))
                .or_else(|_| {
                    NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f")
                        .map(|d| (d.and_utc(), TimestampFormat::NaiveUtc))
                })
                .ok()
        };
        let mut checked = 0;
        for start in
            [Utc.with_ymd_and_hms(1899, 12, 1, 0, 0, 0).unwrap(), Utc.with_ymd_and_hms(1998, 11, 1, 0, 0, 0).unwrap()]
        {
            for day in 0..(4 * 366) {
                for secs in [0, 1, 3599, 43_261, 86_399] {
                    let t = start + chrono::Duration::days(day) + chrono::Duration::seconds(secs);
                    for text in [t.format("%Y-%m-%dT%H:%M:%SZ").to_string(), t.format("%Y-%m-%d %H:%M:%S").to_string()]
                    {
                        let fast = parse_common(text.as_bytes());
                        assert!(fast.is_some(), "{text}");
                        assert_eq!(fast, general(&text), "{text}");
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 2 * 4 * 366 * 5 * 2);
        for other in [
            "2023-02-29 00:00:00",    // no such day: the general path's message
            "2024-02-30T00:00:00Z",   // no such day
            "2024-13-01 00:00:00",    // no such month
            "2024-03-04 24:00:00",    // no such hour
            "2016-12-31T23:59:60Z",   // a leap second: the general path
            "2024-03-04T10:00:00.5Z", // a fraction
            "2024-03-04T10:00:00+02:00",
            "2024-03-04X10:00:00Z",
            "2024-3-04 10:00:00",
            "+024-03-04 10:00:00",
        ] {
            assert_eq!(parse_common(other.as_bytes()), None, "{other}");
        }
        assert_eq!(
            parse_timestamp("2016-12-31T23:59:60Z").map(|(_, f)| f),
            general("2016-12-31T23:59:60Z").map(|(_, f)| f).ok_or(String::new())
        );
    }

    /// The parser a file's reader keeps (the last date cached) gives what `parse_timestamp`
    /// gives, row after row, across midnights, formats and texts the fast path leaves alone.
    #[test]
    fn the_cached_parser_agrees_with_parse_timestamp() {
        let mut p = TimestampParser::default();
        let start = Utc.with_ymd_and_hms(2024, 2, 28, 22, 0, 0).unwrap();
        let mut texts = Vec::new();
        for m in (0..3 * 1440).step_by(7) {
            let t = start + chrono::Duration::minutes(m);
            texts.push(t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
            texts.push(t.format("%Y-%m-%d %H:%M:%S").to_string());
            texts.push(t.timestamp().to_string());
        }
        texts.extend(
            ["2024-02-29T24:00:00Z", "2024-02-29T23:59:60Z", "2024-02-29 10:00:00.25", "2024-02-29Tab:00:00Z"]
                .map(String::from),
        );
        for text in &texts {
            assert_eq!(p.parse(text), parse_timestamp(text), "{text}");
        }
    }
}
