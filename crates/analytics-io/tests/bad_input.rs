//! Every bad input of the issue, in strict mode (a clear message naming file, line and field) and,
//! where a repair exists, in lenient mode (the repair, counted per series).

use std::path::PathBuf;

use analytics_io::{FileFormat, FileOptions, FileSource, IoError, Selector, TimeRange};

const HEADER: &str = "tenant,cluster,node,metric,timestamp,value";

/// Writes `content` to a fresh file named `name` and returns its path.
fn file(name: &str, content: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("analytics-io-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

fn strict(path: &PathBuf) -> Result<Vec<analytics_types::MetricSeries>, IoError> {
    FileSource::new(path, FileOptions::default()).read(None, &Selector::all(), &TimeRange::all()).map(|(s, _)| s)
}

fn lenient(path: &PathBuf) -> (Vec<analytics_types::MetricSeries>, analytics_io::RepairReport) {
    FileSource::new(path, FileOptions { lenient: true, ..Default::default() })
        .read(None, &Selector::all(), &TimeRange::all())
        .unwrap()
}

/// Checks the strict message (after the path) and returns the lenient report lines.
fn check(name: &str, content: &str, strict_msg: &str) -> Option<Vec<String>> {
    let path = file(name, content);
    let err = strict(&path).unwrap_err().to_string();
    let shown = err.strip_prefix(&path.display().to_string()).unwrap_or(&err).to_owned();
    assert_eq!(shown, strict_msg, "{name}");
    FileSource::new(&path, FileOptions { lenient: true, ..Default::default() })
        .read(None, &Selector::all(), &TimeRange::all())
        .ok()
        .map(|(_, r)| r.summary())
}

fn rows(lines: &[&str]) -> String {
    std::iter::once(HEADER).chain(lines.iter().copied()).collect::<Vec<_>>().join("\n") + "\n"
}

#[test]
fn missing_and_unknown_columns() {
    let r = check(
        "missing.csv",
        "tenant,cluster,node,metric,timestamp\nacme,p,n,cpu,2024-03-04T10:00:00Z\n",
        ":1: header: missing column \"value\"; the header is \"tenant,cluster,node,metric,timestamp\"",
    );
    assert_eq!(r, None, "structural: an error in lenient mode too");
    check(
        "unknown.csv",
        "tenant,cluster,node,metric,timestamp,value,color\n",
        ":1: header: unknown column \"color\"; expected tenant,cluster,node,metric,timestamp,value",
    );
}

#[test]
fn non_numeric_nan_and_infinity() {
    let r = check(
        "nonnum.csv",
        &rows(&["acme,p,n,cpu,2024-03-04T10:00:00Z,1", "acme,p,n,cpu,2024-03-04T10:01:00Z,abc"]),
        ":3: value: \"abc\" is not a number",
    );
    assert_eq!(r.unwrap(), ["acme/p/n/cpu: 1 rows kept; 1 non-numeric values dropped"]);
    let r = check(
        "nan.csv",
        &rows(&["acme,p,n,cpu,2024-03-04T10:00:00Z,NaN", "acme,p,n,cpu,2024-03-04T10:01:00Z,2"]),
        ":2: value: NaN is not finite",
    );
    assert_eq!(r.unwrap(), ["acme/p/n/cpu: 1 rows kept; 1 non-finite values dropped"]);
    let r = check(
        "inf.csv",
        &rows(&["acme,p,n,cpu,2024-03-04T10:00:00Z,inf", "acme,p,n,cpu,2024-03-04T10:01:00Z,2"]),
        ":2: value: inf is not finite",
    );
    assert_eq!(r.unwrap(), ["acme/p/n/cpu: 1 rows kept; 1 non-finite values dropped"]);
}

#[test]
fn unsorted_and_duplicate_timestamps() {
    let r = check(
        "unsorted.csv",
        &rows(&["acme,p,n,cpu,2024-03-04T10:01:00Z,1", "acme,p,n,cpu,2024-03-04T10:00:00Z,2", "acme,p,n,cpu,2024-03-04T10:02:00Z,3"]),
        ":3: timestamp: 2024-03-04T10:00:00+00:00 is before line 2 of series acme/p/n/cpu; timestamps must be strictly ascending per series",
    );
    assert_eq!(r.unwrap(), ["acme/p/n/cpu: 3 rows kept; 1 rows out of order (sorted)"]);
    let path = file(
        "dup.csv",
        &rows(&[
            "acme,p,n,cpu,2024-03-04T10:00:00Z,1",
            "acme,p,n,cpu,2024-03-04T10:00:00Z,2",
            "acme,p,n,cpu,2024-03-04T10:01:00Z,3",
        ]),
    );
    assert!(strict(&path).unwrap_err().to_string().ends_with(":3: timestamp: 2024-03-04T10:00:00+00:00 repeats line 2 of series acme/p/n/cpu; timestamps must be strictly ascending per series"));
    let (series, report) = lenient(&path);
    assert_eq!(series[0].values(), [2.0, 3.0], "the later duplicate is kept");
    assert_eq!(report.summary(), ["acme/p/n/cpu: 2 rows kept; 1 duplicate timestamps dropped (kept the last)"]);
}

#[test]
fn empty_and_header_only_files() {
    let r = check("empty.csv", "", ":0: header: the file is empty");
    assert_eq!(r, None);
    let r = check("header.csv", &format!("{HEADER}\n"), ":1: header: the file has a header but no data rows");
    assert_eq!(r, None);
}

#[test]
fn mixed_timestamp_formats() {
    let r = check(
        "mixed.csv",
        &rows(&["acme,p,n,cpu,2024-03-04T10:00:00Z,1", "acme,p,n,cpu,1709546460,2"]),
        ":3: timestamp: \"1709546460\" is written as epoch seconds, but line 2 used RFC 3339; mixed timestamp formats",
    );
    assert_eq!(r.unwrap(), ["acme/p/n/cpu: 2 rows kept; 1 timestamps in another format (kept)"]);
}

#[test]
fn ragged_rows_and_bad_identifiers() {
    let r = check(
        "ragged.csv",
        &rows(&["acme,p,n,cpu,2024-03-04T10:00:00Z,1", "acme,p,n,2024-03-04T10:01:00Z,2"]),
        ":3: row: 5 fields where the header has 6",
    );
    // The series itself is clean (its one good row kept); the ragged row is counted for the file.
    let path = file("ragged.csv", &rows(&["acme,p,n,cpu,2024-03-04T10:00:00Z,1", "acme,p,n,2024-03-04T10:01:00Z,2"]));
    assert_eq!(r.unwrap(), [format!("{}: 1 rows dropped before a series could be read from them", path.display())]);
    check(
        "emptyid.csv",
        &rows(&[",p,n,cpu,2024-03-04T10:00:00Z,1"]),
        ":2: tenant_id: tenant_id is empty; identifiers must be non-empty",
    );
}

#[test]
fn unreadable_file() {
    let err = strict(&PathBuf::from("no/such/file.csv")).unwrap_err().to_string();
    assert!(err.starts_with("cannot read no/such/file.csv: "), "{err}");
    // A directory cannot be read as a file either.
    let dir = std::env::temp_dir();
    assert!(strict(&dir).unwrap_err().to_string().starts_with(&format!("cannot read {}", dir.display())));
}

#[test]
fn every_format_reads_the_same_series() {
    let long =
        file("f.csv", &rows(&["acme,p,n,cpu,2024-03-04T10:00:00Z,1.5", "acme,p,n,cpu,2024-03-04T10:01:00Z,2.5"]));
    let jsonl = file(
        "f.jsonl",
        "{\"tenant\":\"acme\",\"cluster\":\"p\",\"node\":\"n\",\"metric\":\"cpu\",\"timestamp\":\"2024-03-04T10:00:00Z\",\"value\":1.5}\n\
         {\"tenant_id\":\"acme\",\"cluster_id\":\"p\",\"node_id\":\"n\",\"metric_name\":\"cpu\",\"timestamp\":1709546460,\"value\":2.5}\n",
    );
    let nab = file("n.csv", "timestamp,value\n2024-03-04 10:00:00,1.5\n2024-03-04 10:01:00,2.5\n");
    let wide = file("w.csv", "timestamp,cpu,mem\n1709546400000,1.5,7\n1709546460000,2.5,8\n");
    let ids = |format| FileOptions {
        format: Some(format),
        tenant: Some("acme".into()),
        cluster: Some("p".into()),
        node: Some("n".into()),
        metric: Some("cpu".into()),
        ..Default::default()
    };
    let read = |p: &PathBuf, o: FileOptions| FileSource::new(p, o).read(None, &Selector::all(), &TimeRange::all());
    let want = strict(&long).unwrap();
    // JSON lines: the second line's epoch timestamp is a different format than the first's.
    let (json, report) = read(&jsonl, FileOptions { lenient: true, ..Default::default() }).unwrap();
    assert_eq!(json, want);
    assert_eq!(report.series["acme/p/n/cpu"].mixed_timestamp_formats, 1);
    assert_eq!(read(&nab, ids(FileFormat::Nab)).unwrap().0, want);
    let wide_series = read(&wide, ids(FileFormat::Wide)).unwrap().0;
    assert_eq!(wide_series.len(), 2);
    assert_eq!(wide_series[0], want[0]);
    // Guessed from the header, NAB needs its identifiers: a clear message names the option.
    let err = read(&nab, FileOptions::default()).unwrap_err().to_string();
    assert!(err.ends_with("a Nab file names no tenant; give it as an option (--tenant)"), "{err}");
}

#[test]
fn selection_keeps_only_what_was_asked() {
    let path = file(
        "sel.csv",
        &rows(&[
            "acme,p,n1,cpu,2024-03-04T10:00:00Z,1",
            "acme,p,n2,cpu,2024-03-04T10:00:00Z,2",
            "globex,p,n1,cpu,2024-03-04T10:00:00Z,3",
            "acme,p,n1,cpu,2024-03-04T11:00:00Z,4",
        ]),
    );
    let tenant = analytics_types::TenantId::new("acme").unwrap();
    let selector = Selector { node: Some("n1".into()), ..Default::default() };
    let range =
        TimeRange { from: None, to: analytics_io::parse_timestamp("2024-03-04T10:30:00Z").ok().map(|(t, _)| t) };
    let (s, report) = FileSource::new(&path, FileOptions::default()).read(Some(&tenant), &selector, &range).unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].values(), [1.0]);
    assert_eq!(report.not_selected, 3);
}

/// Streaming a file in batches of whole nodes gives exactly what reading it whole gives; rows of
/// a node that come back after other nodes are refused with the line.
#[test]
fn streaming_in_batches_of_nodes() {
    let mut lines = vec![];
    for node in ["n1", "n2", "n3"] {
        for metric in ["cpu", "mem"] {
            for i in 0..3 {
                lines.push(format!("acme,p,{node},{metric},2024-03-04T10:0{i}:00Z,{i}"));
            }
        }
    }
    let path = file("grouped.csv", &rows(&lines.iter().map(String::as_str).collect::<Vec<_>>()));
    let whole = strict(&path).unwrap();
    let mut batches: Vec<Vec<analytics_types::MetricSeries>> = vec![];
    FileSource::new(&path, FileOptions::default())
        .read_in_batches(2, None, &Selector::all(), &TimeRange::all(), &mut |b| {
            batches.push(b);
            Ok::<(), IoError>(())
        })
        .unwrap();
    assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), [4, 2], "two nodes, then one");
    assert_eq!(batches.concat(), whole);

    let interleaved = file(
        "interleaved.csv",
        &rows(&[
            "acme,p,n1,cpu,2024-03-04T10:00:00Z,1",
            "acme,p,n2,cpu,2024-03-04T10:00:00Z,1",
            "acme,p,n1,cpu,2024-03-04T10:01:00Z,2",
        ]),
    );
    let err = FileSource::new(&interleaved, FileOptions::default())
        .read_in_batches(10, None, &Selector::all(), &TimeRange::all(), &mut |_| Ok::<(), IoError>(()))
        .unwrap_err()
        .to_string();
    assert!(err.ends_with(":4: node: node acme/p/n1 appears again after other nodes; streaming needs the rows of each node together (sort the file by node, or read it without --streaming)"), "{err}");
}
