//! Labelled benchmark corpora in memory: what `analytics-io` reads from NAB-like and ASD-like
//! directories, and what `analytics-eval` scores. Like every type here, a value is valid: its
//! lengths agree, its values are finite and its labels lie inside its rows.

use chrono::{DateTime, Utc};

use crate::ContractError;

fn benchmark_error(item: &str, message: String) -> ContractError {
    ContractError::Benchmark { item: item.to_owned(), message }
}

fn check_finite(item: &str, what: &str, values: &[f64]) -> Result<(), ContractError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(benchmark_error(item, format!("{what}[{i}] is {}, not finite", values[i]))),
        None => Ok(()),
    }
}

/// One labelled series of a NAB-like corpus.
#[derive(Debug, Clone, PartialEq)]
pub struct NabFile {
    name: String,
    timestamps: Vec<DateTime<Utc>>,
    values: Vec<f64>,
    windows: Vec<(usize, usize)>,
}

impl NabFile {
    /// A file: its name relative to the corpus' `data/` (e.g. `realTraffic/speed_6005.csv`),
    /// its rows in file order, and its anomaly windows as inclusive row ranges `(left, right)`.
    ///
    /// Timestamps need not increase: NAB's own files repeat some and one steps back an hour (a
    /// daylight-saving change), and NAB scores by row, so every row is kept where it stands.
    /// Windows are sorted here. Fails when the lengths differ, a value is not finite, or a
    /// window is reversed or runs past the last row.
    pub fn new(
        name: impl Into<String>,
        timestamps: Vec<DateTime<Utc>>,
        values: Vec<f64>,
        mut windows: Vec<(usize, usize)>,
    ) -> Result<Self, ContractError> {
        let name = name.into();
        if timestamps.len() != values.len() {
            return Err(ContractError::LengthMismatch { timestamps: timestamps.len(), values: values.len() });
        }
        check_finite(&name, "values", &values)?;
        if let Some(&(l, r)) = windows.iter().find(|&&(l, r)| l > r || r >= values.len()) {
            let message = format!("window rows {l}..={r} are not inside the file's {} rows", values.len());
            return Err(benchmark_error(&name, message));
        }
        windows.sort_unstable();
        Ok(Self { name, timestamps, values, windows })
    }

    /// The name, relative to the corpus' `data/`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The category: the directory part of the name.
    pub fn category(&self) -> &str {
        self.name.split_once('/').map_or("", |(c, _)| c)
    }

    /// Timestamps, in file order.
    pub fn timestamps(&self) -> &[DateTime<Utc>] {
        &self.timestamps
    }

    /// Values, in file order.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// Rows.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the file has no row.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Anomaly windows as inclusive row ranges, in order.
    pub fn windows(&self) -> &[(usize, usize)] {
        &self.windows
    }

    /// Per-row labels: true inside a window.
    pub fn labels(&self) -> Vec<bool> {
        let mut l = vec![false; self.values.len()];
        for &(a, b) in &self.windows {
            l[a..=b].iter_mut().for_each(|x| *x = true);
        }
        l
    }
}

/// A NAB-like corpus: its files, in name order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NabCorpus {
    /// The files.
    pub files: Vec<NabFile>,
}

impl NabCorpus {
    /// Total number of anomaly windows.
    pub fn num_windows(&self) -> usize {
        self.files.iter().map(|f| f.windows.len()).sum()
    }
}

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

/// One node of a multi-metric corpus (ASD's servers, JumpStarter's services): its metric names,
/// train and test rows (one column per metric), node-level test labels and, where the corpus
/// has them, the metrics named as the cause of each anomalous segment.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeData {
    name: String,
    metrics: Vec<String>,
    train_timestamps: Vec<DateTime<Utc>>,
    train: Vec<Vec<f64>>,
    test_timestamps: Vec<DateTime<Utc>>,
    test: Vec<Vec<f64>>,
    labels: Vec<bool>,
    interpretations: Option<Vec<Interpretation>>,
}

/// The parts of a [`NodeData`], for [`NodeData::new`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeParts {
    /// The node's name (its directory's, e.g. `omi-1`).
    pub name: String,
    /// Metric names (`m1` .. `m19`).
    pub metrics: Vec<String>,
    /// Training timestamps.
    pub train_timestamps: Vec<DateTime<Utc>>,
    /// Training values, one column per metric.
    pub train: Vec<Vec<f64>>,
    /// Test timestamps.
    pub test_timestamps: Vec<DateTime<Utc>>,
    /// Test values, one column per metric.
    pub test: Vec<Vec<f64>>,
    /// Test labels, true where the node is anomalous.
    pub labels: Vec<bool>,
    /// Root-cause labels; `None` where the corpus has none (JumpStarter), so that hit rates are
    /// absent rather than 0.
    pub interpretations: Option<Vec<Interpretation>>,
}

impl NodeData {
    /// A node from its parts. Fails when a column's length is not its timestamps', a value is
    /// not finite, the labels are not one per test row, or a root-cause segment lies outside the
    /// test rows or names a metric the node does not have.
    pub fn new(parts: NodeParts) -> Result<Self, ContractError> {
        let NodeParts { name, metrics, train_timestamps, train, test_timestamps, test, labels, interpretations } =
            parts;
        for (what, ts, cols) in [("train", &train_timestamps, &train), ("test", &test_timestamps, &test)] {
            if cols.len() != metrics.len() {
                let message = format!("{} {what} columns for {} metrics", cols.len(), metrics.len());
                return Err(benchmark_error(&name, message));
            }
            for (m, col) in cols.iter().enumerate() {
                if col.len() != ts.len() {
                    let message =
                        format!("{what} column {} has {} rows for {} timestamps", metrics[m], col.len(), ts.len());
                    return Err(benchmark_error(&name, message));
                }
                check_finite(&name, &format!("{what}.{}", metrics[m]), col)?;
            }
        }
        if labels.len() != test_timestamps.len() {
            let message = format!("{} labels for {} test rows", labels.len(), test_timestamps.len());
            return Err(benchmark_error(&name, message));
        }
        for s in interpretations.iter().flatten() {
            if s.start > s.end || s.end >= labels.len() {
                let message = format!("segment {}-{} is outside the {} test rows", s.start, s.end, labels.len());
                return Err(benchmark_error(&name, message));
            }
            if let Some(&m) = s.metrics.iter().find(|&&m| m >= metrics.len()) {
                let message = format!("segment {}-{} names metric {m}; the node has {}", s.start, s.end, metrics.len());
                return Err(benchmark_error(&name, message));
            }
        }
        Ok(Self { name, metrics, train_timestamps, train, test_timestamps, test, labels, interpretations })
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Metric names, in column order.
    pub fn metrics(&self) -> &[String] {
        &self.metrics
    }

    /// Training timestamps.
    pub fn train_timestamps(&self) -> &[DateTime<Utc>] {
        &self.train_timestamps
    }

    /// Training values of metric column `m`.
    pub fn train(&self, m: usize) -> &[f64] {
        &self.train[m]
    }

    /// Test timestamps.
    pub fn test_timestamps(&self) -> &[DateTime<Utc>] {
        &self.test_timestamps
    }

    /// Test values of metric column `m`.
    pub fn test(&self, m: usize) -> &[f64] {
        &self.test[m]
    }

    /// Test labels, true where the node is anomalous.
    pub fn labels(&self) -> &[bool] {
        &self.labels
    }

    /// Root-cause labels, where the corpus has them.
    pub fn interpretations(&self) -> Option<&[Interpretation]> {
        self.interpretations.as_deref()
    }

    /// Points fed to a detector: train and test rows of every metric.
    pub fn num_points(&self) -> usize {
        (self.train_timestamps.len() + self.test_timestamps.len()) * self.metrics.len()
    }
}

/// A labelled benchmark corpus, as found in a directory of its own.
#[derive(Debug, Clone, PartialEq)]
pub enum Corpus {
    /// NAB's layout: one labelled series per file.
    Nab {
        /// The directory's name (`nab`, `msft`).
        name: String,
        /// The files and their windows.
        corpus: NabCorpus,
    },
    /// One directory per node, a wide table of metrics each, node-level labels.
    Nodes {
        /// The directory's name (`asd`, `jumpstarter`).
        name: String,
        /// The nodes.
        nodes: Vec<NodeData>,
    },
}

impl Corpus {
    /// The corpus' name (its directory's).
    pub fn name(&self) -> &str {
        match self {
            Corpus::Nab { name, .. } | Corpus::Nodes { name, .. } => name,
        }
    }

    /// Series in the corpus (files, or nodes x metrics).
    pub fn num_series(&self) -> usize {
        match self {
            Corpus::Nab { corpus, .. } => corpus.files.len(),
            Corpus::Nodes { nodes, .. } => nodes.iter().map(|n| n.metrics.len()).sum(),
        }
    }

    /// Points fed to a detector (for multi-metric corpora, train and test rows of every metric).
    pub fn num_points(&self) -> usize {
        match self {
            Corpus::Nab { corpus, .. } => corpus.files.iter().map(NabFile::len).sum(),
            Corpus::Nodes { nodes, .. } => nodes.iter().map(NodeData::num_points).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(n: usize) -> Vec<DateTime<Utc>> {
        (0..n).map(|i| DateTime::from_timestamp(60 * i as i64, 0).unwrap_or_default()).collect()
    }

    #[test]
    fn a_nab_file_keeps_rows_in_order_and_sorts_its_windows() {
        let mut stamps = ts(5);
        stamps.swap(1, 2); // a step back, as one NAB file has
        let f = NabFile::new("cat/a.csv", stamps.clone(), vec![1.0; 5], vec![(3, 4), (0, 1)]).unwrap();
        assert_eq!(f.timestamps(), &stamps[..]);
        assert_eq!(f.windows(), &[(0, 1), (3, 4)]);
        assert_eq!(f.category(), "cat");
        assert_eq!(f.labels(), vec![true, true, false, true, true]);
    }

    #[test]
    fn a_nab_file_refuses_what_cannot_be_scored() {
        let bad = |t: usize, v: Vec<f64>, w: Vec<(usize, usize)>| NabFile::new("a.csv", ts(t), v, w).unwrap_err();
        assert_eq!(bad(3, vec![1.0; 2], vec![]), ContractError::LengthMismatch { timestamps: 3, values: 2 });
        assert_eq!(bad(2, vec![1.0, f64::NAN], vec![]).to_string(), "a.csv: values[1] is NaN, not finite");
        assert_eq!(
            bad(2, vec![1.0; 2], vec![(1, 2)]).to_string(),
            "a.csv: window rows 1..=2 are not inside the file's 2 rows"
        );
        assert!(NabFile::new("a.csv", ts(2), vec![1.0; 2], vec![(1, 0)]).is_err());
    }

    fn parts() -> NodeParts {
        NodeParts {
            name: "omi-1".into(),
            metrics: vec!["m1".into(), "m2".into()],
            train_timestamps: ts(3),
            train: vec![vec![0.0; 3], vec![1.0; 3]],
            test_timestamps: ts(2),
            test: vec![vec![0.0; 2], vec![1.0; 2]],
            labels: vec![false, true],
            interpretations: Some(vec![Interpretation { start: 1, end: 1, metrics: vec![1] }]),
        }
    }

    #[test]
    fn a_node_checks_its_shape_and_labels() {
        let n = NodeData::new(parts()).unwrap();
        assert_eq!(
            (n.name(), n.metrics().len(), n.test(1), n.labels()),
            ("omi-1", 2, &[1.0, 1.0][..], &[false, true][..])
        );
        let c = Corpus::Nodes { name: "asd".into(), nodes: vec![n] };
        assert_eq!((c.num_series(), c.num_points()), (2, 10));

        let err = |p: NodeParts| NodeData::new(p).unwrap_err().to_string();
        assert_eq!(err(NodeParts { labels: vec![false], ..parts() }), "omi-1: 1 labels for 2 test rows");
        assert_eq!(
            err(NodeParts { train: vec![vec![0.0; 3], vec![1.0; 2]], ..parts() }),
            "omi-1: train column m2 has 2 rows for 3 timestamps"
        );
        assert_eq!(
            err(NodeParts {
                interpretations: Some(vec![Interpretation { start: 1, end: 2, metrics: vec![0] }]),
                ..parts()
            }),
            "omi-1: segment 1-2 is outside the 2 test rows"
        );
        assert_eq!(
            err(NodeParts {
                interpretations: Some(vec![Interpretation { start: 0, end: 1, metrics: vec![2] }]),
                ..parts()
            }),
            "omi-1: segment 0-1 names metric 2; the node has 2"
        );
        assert_eq!(
            err(NodeParts { test: vec![vec![0.0; 2], vec![f64::INFINITY; 2]], ..parts() }),
            "omi-1: test.m2[0] is inf, not finite"
        );
    }
}
