//! The Application Server Dataset (InterFusion, KDD 2021): per server, a wide CSV of metrics
//! for training and for test, per-timestamp labels, and the metrics experts named as the cause
//! of each anomalous segment.

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::csv::{number, read_table};
use crate::EvalError;

/// One labelled anomalous segment and the metrics named as its cause.
#[derive(Debug, Clone, PartialEq)]
pub struct Interpretation {
    /// First test row of the segment (0-based).
    pub start: usize,
    /// Last test row of the segment (inclusive).
    pub end: usize,
    /// Metric columns named as the cause (0-based: `m1` is 0).
    pub metrics: Vec<usize>,
}

/// One server: its metric names, train and test matrices (column per metric), labels, causes.
#[derive(Debug, Clone, PartialEq)]
pub struct AsdServer {
    /// The server's directory name, e.g. `omi-1`.
    pub name: String,
    /// Metric column names (`m1` .. `m19`).
    pub metrics: Vec<String>,
    /// Training timestamps.
    pub train_timestamps: Vec<DateTime<Utc>>,
    /// Training values, one vector per metric.
    pub train: Vec<Vec<f64>>,
    /// Test timestamps.
    pub test_timestamps: Vec<DateTime<Utc>>,
    /// Test values, one vector per metric.
    pub test: Vec<Vec<f64>>,
    /// Test labels, true where the server is anomalous.
    pub labels: Vec<bool>,
    /// Interpretation labels; `None` when the server has no `interpretation_label.txt` (as
    /// JumpStarter's services have none), so root-cause hit rates are absent, not 0.
    pub interpretations: Option<Vec<Interpretation>>,
}

fn parse_rfc3339(path: &Path, line: usize, text: &str) -> Result<DateTime<Utc>, EvalError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| EvalError::parse(path, line, "timestamp", format!("{text:?} is not an RFC 3339 timestamp ({e})")))
}

type Wide = (Vec<String>, Vec<DateTime<Utc>>, Vec<Vec<f64>>);

fn read_wide(path: &Path) -> Result<Wide, EvalError> {
    let table = read_table(path)?;
    let ti = table.column(path, "timestamp")?;
    let metrics: Vec<String> =
        table.header.iter().enumerate().filter(|(i, _)| *i != ti).map(|(_, h)| h.clone()).collect();
    let mut ts = Vec::with_capacity(table.rows.len());
    let mut cols = vec![Vec::with_capacity(table.rows.len()); metrics.len()];
    for (line, row) in &table.rows {
        ts.push(parse_rfc3339(path, *line, &row[ti])?);
        let mut c = 0;
        for (i, field) in row.iter().enumerate() {
            if i != ti {
                cols[c].push(number(path, *line, &table.header[i], field)?);
                c += 1;
            }
        }
    }
    Ok((metrics, ts, cols))
}

fn read_interpretations(path: &Path, num_metrics: usize) -> Result<Vec<Interpretation>, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|e| EvalError::io(path, e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let bad = |msg: String| EvalError::parse(path, i + 1, "segment", msg);
        let (range, list) =
            line.trim().split_once(':').ok_or_else(|| bad(format!("{line:?} is not start-end:m,m,...")))?;
        let (a, b) = range.split_once('-').ok_or_else(|| bad(format!("{range:?} is not start-end")))?;
        let start: usize = a.trim().parse().map_err(|_| bad(format!("{a:?} is not a row number")))?;
        let end: usize = b.trim().parse().map_err(|_| bad(format!("{b:?} is not a row number")))?;
        let metrics = list
            .split(',')
            .map(|m| {
                let k: usize = m.trim().parse().map_err(|_| bad(format!("{m:?} is not a metric number")))?;
                if k == 0 || k > num_metrics {
                    return Err(bad(format!("metric {k} is not in 1..={num_metrics}")));
                }
                Ok(k - 1)
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.push(Interpretation { start, end, metrics });
    }
    Ok(out)
}

impl AsdServer {
    /// Loads one server directory: `train.csv`, `test.csv`, `test_label.csv`, and
    /// `interpretation_label.txt` where there is one.
    pub fn load(dir: &Path) -> Result<Self, EvalError> {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let (metrics, train_timestamps, train) = read_wide(&dir.join("train.csv"))?;
        let (test_metrics, test_timestamps, test) = read_wide(&dir.join("test.csv"))?;
        let test_path = dir.join("test.csv");
        if test_metrics != metrics {
            return Err(EvalError::parse(&test_path, 1, "header", "test.csv has other columns than train.csv"));
        }
        let label_path = dir.join("test_label.csv");
        let table = read_table(&label_path)?;
        let li = table.column(&label_path, "label")?;
        let labels: Vec<bool> = table
            .rows
            .iter()
            .map(|(line, row)| match row[li].as_str() {
                "0" => Ok(false),
                "1" => Ok(true),
                other => Err(EvalError::parse(&label_path, *line, "label", format!("{other:?} is not 0 or 1"))),
            })
            .collect::<Result<_, _>>()?;
        if labels.len() != test_timestamps.len() {
            return Err(EvalError::parse(
                &label_path,
                0,
                "label",
                format!("{} labels for {} test rows", labels.len(), test_timestamps.len()),
            ));
        }
        let interp_path = dir.join("interpretation_label.txt");
        let interpretations = if interp_path.exists() {
            let list = read_interpretations(&interp_path, metrics.len())?;
            if let Some(bad) = list.iter().find(|s| s.end >= labels.len() || s.start > s.end) {
                return Err(EvalError::parse(
                    &interp_path,
                    0,
                    "segment",
                    format!("{}-{} is outside the {} test rows", bad.start, bad.end, labels.len()),
                ));
            }
            Some(list)
        } else {
            None
        };
        Ok(Self { name, metrics, train_timestamps, train, test_timestamps, test, labels, interpretations })
    }

    /// Loads every server directory under `dir` (each one holding a `test.csv`), in name order.
    pub fn load_all(dir: &Path) -> Result<Vec<Self>, EvalError> {
        let mut dirs: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| EvalError::io(dir, e))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_dir() && p.join("test.csv").exists())
            .collect();
        dirs.sort();
        dirs.iter().map(|d| Self::load(d)).collect()
    }
}

/// The metrics ranked for one root-cause segment, most responsible first: by each metric's
/// highest score inside the segment's rows `start..=end`, ties by metric order.
pub fn rank_metrics<'a>(scores: impl IntoIterator<Item = &'a [f64]>, start: usize, end: usize) -> Vec<usize> {
    let mut ranking: Vec<(usize, f64)> =
        scores.into_iter().enumerate().map(|(m, s)| (m, s[start..=end].iter().copied().fold(0.0, f64::max))).collect();
    ranking.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranking.into_iter().map(|(m, _)| m).collect()
}

/// HitRate@P%: for a segment whose cause is `truth` (k metrics), the share of `truth` found among
/// the top `ceil(P% x k)` metrics of `ranking` (most responsible first).
pub fn hit_rate(ranking: &[usize], truth: &[usize], percent: f64) -> f64 {
    if truth.is_empty() {
        return 0.0;
    }
    let take = ((percent / 100.0) * truth.len() as f64).ceil() as usize;
    let top = &ranking[..take.min(ranking.len())];
    truth.iter().filter(|m| top.contains(m)).count() as f64 / truth.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_rate_by_hand() {
        // Truth {2, 5}; ranking 5, 7, 2, ...: @100% looks at 2 metrics (finds 5), @150% at 3 (finds both).
        let ranking = [5, 7, 2, 0, 1];
        assert_eq!(hit_rate(&ranking, &[2, 5], 100.0), 0.5);
        assert_eq!(hit_rate(&ranking, &[2, 5], 150.0), 1.0);
        assert_eq!(hit_rate(&ranking, &[], 100.0), 0.0);
    }

    #[test]
    fn metrics_rank_by_their_top_score_in_the_segment() {
        let (a, b, c) = ([0.9, 0.1, 0.1, 0.0], [0.0, 0.5, 0.2, 0.0], [0.0, 0.5, 0.0, 1.0]);
        // Rows 1..=2: a peaks at 0.1, b and c at 0.5 (tie: metric order).
        assert_eq!(rank_metrics([&a[..], &b[..], &c[..]], 1, 2), vec![1, 2, 0]);
    }
}
