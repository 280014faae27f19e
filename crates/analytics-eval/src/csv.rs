//! A small reader for the plain numeric CSV files of the benchmarks (no quoting, comma-separated).

use std::path::Path;

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::EvalError;

/// A CSV file as its header and rows of fields, with 1-based line numbers.
#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) header: Vec<String>,
    pub(crate) rows: Vec<(usize, Vec<String>)>,
}

pub(crate) fn read_table(path: &Path) -> Result<Table, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|e| EvalError::io(path, e))?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or_else(|| EvalError::parse(path, 0, "header", "the file is empty"))?;
    let header: Vec<String> = header.split(',').map(|s| s.trim().to_owned()).collect();
    let mut rows = Vec::new();
    for (i, line) in lines {
        let fields: Vec<String> = line.split(',').map(|s| s.trim().to_owned()).collect();
        if fields.len() != header.len() {
            return Err(EvalError::parse(
                path,
                i + 1,
                "row",
                format!("{} fields where the header has {}", fields.len(), header.len()),
            ));
        }
        rows.push((i + 1, fields));
    }
    Ok(Table { header, rows })
}

impl Table {
    pub(crate) fn column(&self, path: &Path, name: &str) -> Result<usize, EvalError> {
        self.header.iter().position(|h| h == name).ok_or_else(|| {
            EvalError::parse(path, 1, name, format!("missing column; the header is {}", self.header.join(",")))
        })
    }
}

/// Parses a number, naming the file, line and column on failure.
pub(crate) fn number(path: &Path, line: usize, field: &str, text: &str) -> Result<f64, EvalError> {
    let v: f64 = text.parse().map_err(|_| EvalError::parse(path, line, field, format!("{text:?} is not a number")))?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(EvalError::parse(path, line, field, format!("{text} is not finite")))
    }
}

/// Parses NAB's naive UTC timestamps: `YYYY-MM-DD HH:MM:SS`, optionally with a fraction.
pub(crate) fn naive_utc(path: &Path, line: usize, field: &str, text: &str) -> Result<DateTime<Utc>, EvalError> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").map(|t| t.and_utc()).map_err(|e| {
        EvalError::parse(path, line, field, format!("{text:?} is not a YYYY-MM-DD HH:MM:SS timestamp ({e})"))
    })
}
