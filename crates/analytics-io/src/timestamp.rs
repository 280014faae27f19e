//! Timestamps as the files write them: RFC 3339 (`2024-03-04T10:00:00Z`, any offset), naive
//! `YYYY-MM-DD HH:MM:SS` with an optional fraction (taken as UTC), or Unix epoch seconds or
//! milliseconds (a number of 11 or more digits before any decimal point is milliseconds:
//! seconds of that size would be after the year 5138).

use chrono::{DateTime, NaiveDateTime, Utc};

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
}
