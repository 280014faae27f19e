//! Labelled benchmark corpora read from their directories, and detectors' results in NAB's
//! layout read back:
//!
//! - **NAB-like** (NAB, shared/msft): `DIR/combined_windows.json` and
//!   `DIR/data/<category>/<file>.csv` with `timestamp,value` rows (`YYYY-MM-DD HH:MM:SS`);
//! - **multi-metric** (ASD, JumpStarter): one directory per node with `train.csv` and `test.csv`
//!   (`timestamp` in RFC 3339, then one column per metric), `test_label.csv` (`label`, 0 or 1)
//!   and, for ASD, `interpretation_label.txt` (`start-end:m,m,...`, metrics numbered from 1).
//!
//! The files are small, plain numeric CSV (no quoting); they are read whole. Every error names
//! the file, and the line and column where there is one. Not through [`crate::FileSource`],
//! whose NAB and wide readers make validated series: a NAB file's rows stay in file order even
//! where a timestamp steps back (NAB scores by row), and a node's metrics stay in column order
//! (root causes name metric `k` as column `k`), where a series must ascend and series come in
//! key order.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use analytics_types::benchmark::{Corpus, Interpretation, NabCorpus, NabFile, NodeData, NodeParts};
use analytics_types::ContractError;
use chrono::{DateTime, NaiveDateTime, Utc};

use crate::IoError;

/// A CSV file as its header and rows of fields, with 1-based line numbers.
struct Table {
    header: Vec<String>,
    rows: Vec<(usize, Vec<String>)>,
}

fn read_text(path: &Path) -> Result<String, IoError> {
    std::fs::read_to_string(path).map_err(|source| IoError::Read { path: path.to_owned(), source })
}

fn read_table(path: &Path) -> Result<Table, IoError> {
    let text = read_text(path)?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or_else(|| IoError::input(path, 0, "header", "the file is empty"))?;
    let header: Vec<String> = header.split(',').map(|s| s.trim().to_owned()).collect();
    let mut rows = Vec::new();
    for (i, line) in lines {
        let fields: Vec<String> = line.split(',').map(|s| s.trim().to_owned()).collect();
        if fields.len() != header.len() {
            let message = format!("{} fields where the header has {}", fields.len(), header.len());
            return Err(IoError::input(path, i + 1, "row", message));
        }
        rows.push((i + 1, fields));
    }
    Ok(Table { header, rows })
}

impl Table {
    fn column(&self, path: &Path, name: &str) -> Result<usize, IoError> {
        self.header.iter().position(|h| h == name).ok_or_else(|| {
            IoError::input(path, 1, name, format!("missing column; the header is {}", self.header.join(",")))
        })
    }
}

/// A number, naming the file, line and column on failure.
fn number(path: &Path, line: usize, field: &str, text: &str) -> Result<f64, IoError> {
    let v: f64 = text.parse().map_err(|_| IoError::input(path, line, field, format!("{text:?} is not a number")))?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(IoError::input(path, line, field, format!("{text} is not finite")))
    }
}

/// NAB's naive UTC timestamps: `YYYY-MM-DD HH:MM:SS`, optionally with a fraction.
fn naive_utc(path: &Path, line: usize, field: &str, text: &str) -> Result<DateTime<Utc>, IoError> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").map(|t| t.and_utc()).map_err(|e| {
        IoError::input(path, line, field, format!("{text:?} is not a YYYY-MM-DD HH:MM:SS timestamp ({e})"))
    })
}

fn rfc3339(path: &Path, line: usize, text: &str) -> Result<DateTime<Utc>, IoError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| IoError::input(path, line, "timestamp", format!("{text:?} is not an RFC 3339 timestamp ({e})")))
}

/// A value the contract refused, as an error about the file as a whole.
fn refused(path: &Path, e: ContractError) -> IoError {
    IoError::input(path, 0, "file", e.to_string())
}

fn parse_windows_json(path: &Path) -> Result<BTreeMap<String, Vec<(String, String)>>, IoError> {
    let text = read_text(path)?;
    let raw: BTreeMap<String, Vec<Vec<String>>> =
        serde_json::from_str(&text).map_err(|e| IoError::input(path, e.line(), "windows", e.to_string()))?;
    raw.into_iter()
        .map(|(file, ws)| {
            let pairs = ws
                .into_iter()
                .map(|w| match <[String; 2]>::try_from(w) {
                    Ok([a, b]) => Ok((a, b)),
                    Err(w) => Err(IoError::input(path, 0, &file, format!("a window must be [start, end], not {w:?}"))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((file, pairs))
        })
        .collect()
}

/// Reads a corpus laid out as NAB's: every file named in `DIR/combined_windows.json`, in name
/// order, from `DIR/data/<category>/<file>.csv`, rows in file order (NAB scores by row, so a
/// timestamp that steps back, as an hour repeated at a daylight-saving change, stays where it
/// is). A window opens at the first row carrying its start time and closes at the first row
/// from there on carrying its end time, as NAB's sweep does.
pub fn read_nab_corpus(dir: &Path) -> Result<NabCorpus, IoError> {
    let windows_path = dir.join("combined_windows.json");
    let windows = parse_windows_json(&windows_path)?;
    let mut files = Vec::with_capacity(windows.len());
    for (name, limits) in windows {
        let path = dir.join("data").join(&name);
        let table = read_table(&path)?;
        let (ti, vi) = (table.column(&path, "timestamp")?, table.column(&path, "value")?);
        let mut timestamps = Vec::with_capacity(table.rows.len());
        let mut values = Vec::with_capacity(table.rows.len());
        for (line, row) in &table.rows {
            timestamps.push(naive_utc(&path, *line, "timestamp", &row[ti])?);
            values.push(number(&path, *line, "value", &row[vi])?);
        }
        let mut idx = Vec::with_capacity(limits.len());
        for (a, b) in &limits {
            let (ta, tb) = (naive_utc(&windows_path, 0, &name, a)?, naive_utc(&windows_path, 0, &name, b)?);
            let bad = |msg: String| IoError::input(&windows_path, 0, &name, msg);
            let first = |t: DateTime<Utc>, from: usize| timestamps.iter().skip(from).position(|&x| x == t);
            let l = first(ta, 0).ok_or_else(|| bad(format!("window limit {a} is not a timestamp of the file")))?;
            let r = match (first(tb, l), first(tb, 0)) {
                (Some(k), _) => l + k,
                (None, Some(_)) => return Err(bad(format!("window [{a}, {b}] ends before it starts"))),
                (None, None) => return Err(bad(format!("window limit {b} is not a timestamp of the file"))),
            };
            idx.push((l, r));
        }
        files.push(NabFile::new(name, timestamps, values, idx).map_err(|e| refused(&path, e))?);
    }
    Ok(NabCorpus { files })
}

/// Where NAB keeps a detector's result for a data file: `DIR/<category>/<detector>_<file>.csv`
/// (what [`crate::write_nab_result`] writes to and [`read_nab_results`] reads from).
pub fn nab_results_path(dir: &Path, detector: &str, name: &str) -> PathBuf {
    let (category, file) = name.split_once('/').unwrap_or(("", name));
    dir.join(category).join(format!("{detector}_{file}"))
}

/// Reads a detector's results in NAB's layout for every file of `corpus`:
/// `DIR/<category>/<detector>_<file>.csv` with an `anomaly_score` column, one row per data row.
pub fn read_nab_results(corpus: &NabCorpus, dir: &Path, detector: &str) -> Result<Vec<Vec<f64>>, IoError> {
    corpus
        .files
        .iter()
        .map(|f| {
            let path = nab_results_path(dir, detector, f.name());
            let table = read_table(&path)?;
            let si = table.column(&path, "anomaly_score")?;
            if table.rows.len() != f.len() {
                let message = format!("{} rows, where the data file {} has {}", table.rows.len(), f.name(), f.len());
                return Err(IoError::input(&path, 0, "anomaly_score", message));
            }
            table.rows.iter().map(|(line, row)| number(&path, *line, "anomaly_score", &row[si])).collect()
        })
        .collect()
}

type Wide = (Vec<String>, Vec<DateTime<Utc>>, Vec<Vec<f64>>);

fn read_wide(path: &Path) -> Result<Wide, IoError> {
    let table = read_table(path)?;
    let ti = table.column(path, "timestamp")?;
    let metrics: Vec<String> =
        table.header.iter().enumerate().filter(|(i, _)| *i != ti).map(|(_, h)| h.clone()).collect();
    let mut ts = Vec::with_capacity(table.rows.len());
    let mut cols = vec![Vec::with_capacity(table.rows.len()); metrics.len()];
    for (line, row) in &table.rows {
        ts.push(rfc3339(path, *line, &row[ti])?);
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

fn read_interpretations(path: &Path, num_metrics: usize) -> Result<Vec<Interpretation>, IoError> {
    let text = read_text(path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let bad = |msg: String| IoError::input(path, i + 1, "segment", msg);
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

/// Reads one node directory of a multi-metric corpus: `train.csv`, `test.csv`,
/// `test_label.csv`, and `interpretation_label.txt` where there is one (root-cause labels are
/// then absent, not empty).
pub fn read_node(dir: &Path) -> Result<NodeData, IoError> {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let (metrics, train_timestamps, train) = read_wide(&dir.join("train.csv"))?;
    let test_path = dir.join("test.csv");
    let (test_metrics, test_timestamps, test) = read_wide(&test_path)?;
    if test_metrics != metrics {
        return Err(IoError::input(&test_path, 1, "header", "test.csv has other columns than train.csv"));
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
            other => Err(IoError::input(&label_path, *line, "label", format!("{other:?} is not 0 or 1"))),
        })
        .collect::<Result<_, _>>()?;
    if labels.len() != test_timestamps.len() {
        let message = format!("{} labels for {} test rows", labels.len(), test_timestamps.len());
        return Err(IoError::input(&label_path, 0, "label", message));
    }
    let interp_path = dir.join("interpretation_label.txt");
    let interpretations = if interp_path.exists() {
        let list = read_interpretations(&interp_path, metrics.len())?;
        if let Some(bad) = list.iter().find(|s| s.end >= labels.len() || s.start > s.end) {
            let message = format!("{}-{} is outside the {} test rows", bad.start, bad.end, labels.len());
            return Err(IoError::input(&interp_path, 0, "segment", message));
        }
        Some(list)
    } else {
        None
    };
    let parts = NodeParts { name, metrics, train_timestamps, train, test_timestamps, test, labels, interpretations };
    NodeData::new(parts).map_err(|e| refused(dir, e))
}

fn subdirectories(dir: &Path) -> Result<Vec<PathBuf>, IoError> {
    let entries = std::fs::read_dir(dir).map_err(|source| IoError::Read { path: dir.to_owned(), source })?;
    let mut dirs: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    Ok(dirs)
}

/// Reads every node directory under `dir` (each one holding a `test.csv`), in name order.
pub fn read_nodes(dir: &Path) -> Result<Vec<NodeData>, IoError> {
    subdirectories(dir)?.iter().filter(|d| d.join("test.csv").exists()).map(|d| read_node(d)).collect()
}

/// Reads the corpus in `dir`, named after the directory, or `None` when `dir` has neither
/// layout: NAB-like where it has `combined_windows.json`, multi-metric where a directory in it
/// holds `test.csv` and `test_label.csv`.
pub fn read_corpus(dir: &Path) -> Result<Option<Corpus>, IoError> {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if dir.join("combined_windows.json").is_file() {
        return Ok(Some(Corpus::Nab { name, corpus: read_nab_corpus(dir)? }));
    }
    let has_nodes =
        subdirectories(dir)?.iter().any(|d| d.join("test.csv").is_file() && d.join("test_label.csv").is_file());
    if has_nodes {
        return Ok(Some(Corpus::Nodes { name, nodes: read_nodes(dir)? }));
    }
    Ok(None)
}

/// Every corpus in the directories directly under `dir`, in name order; directories with
/// neither layout are skipped and named in the second list.
pub fn discover_corpora(dir: &Path) -> Result<(Vec<Corpus>, Vec<String>), IoError> {
    let (mut found, mut skipped) = (Vec::new(), Vec::new());
    for d in subdirectories(dir)? {
        match read_corpus(&d)? {
            Some(c) => found.push(c),
            None => skipped.push(d.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()),
        }
    }
    Ok((found, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory holding `files` (path, text).
    fn on_disk(tag: &str, files: &[(&str, String)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("analytics-io-benchmark-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
        }
        dir
    }

    #[test]
    fn nab_rows_that_step_back_in_time_are_kept_in_file_order() {
        // 01:00 to 01:55 comes twice (a daylight-saving change), as in one of NAB's own files.
        let mut stamps: Vec<String> = (0..12).map(|k| format!("2024-11-03 00:{:02}:00", k * 5)).collect();
        stamps.extend((0..12).map(|k| format!("2024-11-03 01:{:02}:00", k * 5)));
        stamps.extend((0..12).map(|k| format!("2024-11-03 01:{:02}:00", k * 5)));
        stamps.extend((0..12).map(|k| format!("2024-11-03 02:{:02}:00", k * 5)));
        let rows: Vec<String> = stamps.iter().enumerate().map(|(i, t)| format!("{t},{i}")).collect();
        let data = format!("timestamp,value\n{}\n", rows.join("\n"));
        let windows = r#"{"cat/f.csv": [["2024-11-03 01:50:00.000000", "2024-11-03 02:10:00.000000"]]}"#;
        let dir = on_disk("dst", &[("data/cat/f.csv", data.clone()), ("combined_windows.json", windows.into())]);
        let corpus = read_nab_corpus(&dir).unwrap();
        let f = &corpus.files[0];
        assert_eq!((f.name(), f.len()), ("cat/f.csv", 48));
        assert_eq!(f.values()[30], 30.0, "rows keep their file order");
        assert!(f.timestamps()[24] < f.timestamps()[23], "the step back is kept");
        // The window opens at the first 01:50 (row 22) and closes at 02:10 (row 38).
        assert_eq!(f.windows(), &[(22, 38)]);

        // A window whose end comes before its start is refused, naming both.
        let windows = r#"{"cat/f.csv": [["2024-11-03 02:10:00", "2024-11-03 00:30:00"]]}"#;
        let dir = on_disk("backwards", &[("data/cat/f.csv", data), ("combined_windows.json", windows.into())]);
        let err = read_nab_corpus(&dir).unwrap_err().to_string();
        assert!(err.ends_with("window [2024-11-03 02:10:00, 2024-11-03 00:30:00] ends before it starts"), "{err}");
    }

    #[test]
    fn nab_errors_name_the_file_line_and_column() {
        let err = read_nab_corpus(Path::new("no/such/dir")).unwrap_err().to_string();
        assert!(err.starts_with("cannot read no/such/dir/combined_windows.json"), "{err}");
        let windows = r#"{"cat/f.csv": []}"#;
        let data = "timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:05:00,x\n".to_owned();
        let dir = on_disk("bad-value", &[("data/cat/f.csv", data), ("combined_windows.json", windows.into())]);
        let err = read_nab_corpus(&dir).unwrap_err().to_string();
        assert!(err.ends_with("cat/f.csv:3: value: \"x\" is not a number"), "{err}");

        // Results are read back from NAB's layout, one row per data row.
        let corpus = NabCorpus { files: vec![NabFile::new("cat/f.csv", Vec::new(), Vec::new(), Vec::new()).unwrap()] };
        let results = on_disk("results", &[("cat/det_f.csv", "timestamp,value,anomaly_score\n1,2,0.5\n".into())]);
        let err = read_nab_results(&corpus, &results, "det").unwrap_err().to_string();
        assert!(err.ends_with("cat/det_f.csv:0: anomaly_score: 1 rows, where the data file cat/f.csv has 0"), "{err}");
    }

    fn node_files(label: &str) -> Vec<(&'static str, String)> {
        let rows = |from: usize| -> String {
            (from..from + 3).map(|i| format!("2024-01-01T00:{i:02}:00Z,{i},{}\n", 2 * i)).collect()
        };
        vec![
            ("asd/omi-1/train.csv", format!("timestamp,m1,m2\n{}", rows(0))),
            ("asd/omi-1/test.csv", format!("timestamp,m1,m2\n{}", rows(3))),
            ("asd/omi-1/test_label.csv", format!("timestamp,label\n1,0\n2,{label}\n3,1\n")),
        ]
    }

    #[test]
    fn a_node_reads_with_or_without_root_cause_labels() {
        let dir = on_disk("node", &node_files("1"));
        let node = read_node(&dir.join("asd/omi-1")).unwrap();
        assert_eq!((node.name(), node.metrics()), ("omi-1", &["m1".to_owned(), "m2".to_owned()][..]));
        assert_eq!(
            (node.train(1), node.test(0), node.labels()),
            (&[0.0, 2.0, 4.0][..], &[3.0, 4.0, 5.0][..], &[false, true, true][..])
        );
        assert_eq!(node.interpretations(), None, "no interpretation_label.txt: absent, not empty");
        let Some(Corpus::Nodes { name, nodes }) = read_corpus(&dir.join("asd")).unwrap() else {
            panic!("a node corpus")
        };
        assert_eq!((name.as_str(), nodes.len()), ("asd", 1));

        let mut files = node_files("1");
        files.push(("asd/omi-1/interpretation_label.txt", "1-2:2,1\n".into()));
        let dir = on_disk("node-causes", &files);
        let node = read_node(&dir.join("asd/omi-1")).unwrap();
        assert_eq!(node.interpretations(), Some(&[Interpretation { start: 1, end: 2, metrics: vec![1, 0] }][..]));

        let mut files = node_files("1");
        files.push(("asd/omi-1/interpretation_label.txt", "1-3:1\n".into()));
        let err = read_node(&on_disk("node-outside", &files).join("asd/omi-1")).unwrap_err().to_string();
        assert!(err.ends_with("interpretation_label.txt:0: segment: 1-3 is outside the 3 test rows"), "{err}");
        let err = read_node(&on_disk("node-label", &node_files("2")).join("asd/omi-1")).unwrap_err().to_string();
        assert!(err.ends_with("test_label.csv:3: label: \"2\" is not 0 or 1"), "{err}");
    }

    #[test]
    fn discovery_finds_corpora_by_their_layout() {
        let mut files = node_files("0");
        files.push(("nab/combined_windows.json", "{}".into()));
        files.push(("notes/readme.txt", "not a corpus".into()));
        let dir = on_disk("discover", &files);
        let (found, skipped) = discover_corpora(&dir).unwrap();
        let names: Vec<&str> = found.iter().map(Corpus::name).collect();
        assert_eq!((names, skipped), (vec!["asd", "nab"], vec!["notes".to_owned()]));
    }
}
