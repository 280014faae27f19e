//! Per-point scores written for other tools to score: NAB's result layout, and one CSV per node
//! of a multi-metric corpus.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::IoError;

fn create(path: &Path) -> Result<BufWriter<File>, IoError> {
    let err = |source| IoError::Write { path: path.to_owned(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    Ok(BufWriter::new(File::create(path).map_err(err)?))
}

/// Writes one series' scores in the layout of NAB's results (`timestamp,value,anomaly_score,
/// label`, timestamps as `YYYY-MM-DD HH:MM:SS`, labels 0 or 1), creating the folders: what NAB's
/// own scorer reads. The slices are the series' rows in file order, of one length.
pub fn write_nab_result(
    path: &Path,
    timestamps: &[DateTime<Utc>],
    values: &[f64],
    scores: &[f64],
    labels: &[bool],
) -> Result<(), IoError> {
    let mut w = create(path)?;
    let mut write = || -> std::io::Result<()> {
        writeln!(w, "timestamp,value,anomaly_score,label")?;
        for (((t, v), s), &l) in timestamps.iter().zip(values).zip(scores).zip(labels) {
            writeln!(w, "{},{v},{s},{}", t.format("%Y-%m-%d %H:%M:%S"), u8::from(l))?;
        }
        w.flush()
    };
    write().map_err(|source| IoError::Write { path: path.to_owned(), source })
}

/// Writes one node's scores: `timestamp,label,node_score,<metric>...`, a row per point, the node
/// score being the highest of its metrics' (`scores[k]` is metric `k`'s, each as long as
/// `timestamps`), timestamps in RFC 3339.
pub fn write_node_scores(
    path: &Path,
    metrics: &[String],
    timestamps: &[DateTime<Utc>],
    labels: &[bool],
    scores: &[&[f64]],
) -> Result<(), IoError> {
    let mut w = create(path)?;
    let mut write = || -> std::io::Result<()> {
        writeln!(w, "timestamp,label,node_score,{}", metrics.join(","))?;
        for (i, (t, &l)) in timestamps.iter().zip(labels).enumerate() {
            let top = scores.iter().map(|s| s[i]).fold(0.0, f64::max);
            write!(w, "{},{},{top}", t.to_rfc3339(), u8::from(l))?;
            for s in scores {
                write!(w, ",{}", s[i])?;
            }
            writeln!(w)?;
        }
        w.flush()
    };
    write().map_err(|source| IoError::Write { path: path.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn nab_results_and_node_scores_are_written_as_their_readers_expect() {
        let dir = std::env::temp_dir().join(format!("analytics-io-scores-{}", std::process::id()));
        let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let ts = [t0, t0 + chrono::TimeDelta::minutes(5)];
        let nab = dir.join("default/cat/default_file.csv");
        write_nab_result(&nab, &ts, &[1.5, 2.0], &[0.25, 1.0], &[false, true]).unwrap();
        assert_eq!(
            std::fs::read_to_string(&nab).unwrap(),
            "timestamp,value,anomaly_score,label\n2024-01-01 00:00:00,1.5,0.25,0\n2024-01-01 00:05:00,2,1,1\n"
        );
        let node = dir.join("nodes/omi-1.csv");
        let metrics = ["m1".to_owned(), "m2".to_owned()];
        write_node_scores(&node, &metrics, &ts, &[false, true], &[&[0.1, 0.9], &[0.3, 0.2]]).unwrap();
        assert_eq!(
            std::fs::read_to_string(&node).unwrap(),
            "timestamp,label,node_score,m1,m2\n2024-01-01T00:00:00+00:00,0,0.3,0.1,0.3\n2024-01-01T00:05:00+00:00,1,0.9,0.9,0.2\n"
        );
        // A folder that cannot be made is an error naming the file.
        let blocked = nab.join("under-a-file.csv");
        let e = write_nab_result(&blocked, &ts, &[1.0, 1.0], &[0.0, 0.0], &[false, false]).unwrap_err();
        assert!(e.to_string().contains("under-a-file.csv"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
