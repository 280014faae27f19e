//! A writer killed half-way through a run leaves the store exactly as it was, and readers see the
//! last committed state while a writer works. This test binary runs itself twice: as the parent
//! (the test) and as a child writer that stops halfway through a run and waits to be killed with
//! SIGKILL (no unwinding, no destructors: a real crash).
#![allow(clippy::print_stdout)] // talks to its child through stdout, and reports as a test runner

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use analytics_io::{ResultStore, RunRecord};
use analytics_types::{AnomalyLabel, AnomalyResult, MetricSeries};
use chrono::{Duration, TimeZone, Utc};

const CHILD: &str = "ANALYTICS_STORE_KILL_CHILD";

fn run(engine: &str) -> RunRecord {
    let t = Utc.with_ymd_and_hms(2024, 3, 4, 0, 0, 0).unwrap();
    RunRecord {
        id: 0,
        engine: engine.into(),
        config: "{}".into(),
        source: "test".into(),
        range_start: t,
        range_end: t + Duration::days(30),
        started_at: t,
        finished_at: t,
        series: 1,
        points: 1,
    }
}

fn results(n: i64, engine: &str) -> impl Iterator<Item = AnomalyResult> + '_ {
    let t = Utc.with_ymd_and_hms(2024, 3, 4, 0, 0, 0).unwrap();
    let key = MetricSeries::new("acme", "prod", "node-1", "cpu", vec![], vec![]).unwrap().key();
    (0..n).map(move |i| {
        AnomalyResult::new(
            key.clone(),
            t + Duration::minutes(i),
            t + Duration::minutes(i + 1),
            0.5,
            AnomalyLabel::Normal,
        )
        .unwrap()
        .with_engine(engine)
    })
}

/// The child: writes a second run, and stops halfway through it until killed.
fn child(path: &str) {
    let mut store = ResultStore::open(std::path::Path::new(path)).unwrap();
    let halfway = results(5_000, "crashing").chain(std::iter::from_fn(|| {
        println!("halfway");
        std::thread::sleep(std::time::Duration::from_secs(120));
        None
    }));
    let _ = store.write_run(&run("crashing"), halfway, &[], &[], &[]);
}

fn parent() {
    let dir = std::env::temp_dir().join(format!("analytics-store-kill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("results.db");
    // A complete first run.
    let mut store = ResultStore::open(&path).unwrap();
    store.write_run(&run("default"), results(1_000, "default"), &[], &[], &[]).unwrap();
    let before = store.counts().unwrap();
    drop(store);

    let exe = std::env::current_exe().unwrap();
    let mut writer = Command::new(exe).env(CHILD, &path).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(writer.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "halfway", "the writer did not reach the middle of its run");

    // While the writer holds 5,000 uncommitted rows, a reader sees the last committed state.
    let reader = ResultStore::open(&path).unwrap();
    assert_eq!(reader.counts().unwrap(), before, "a reader saw uncommitted rows");
    drop(reader);

    writer.kill().unwrap(); // SIGKILL
    writer.wait().unwrap();

    let after = ResultStore::open(&path).unwrap();
    assert_eq!(after.integrity_check().unwrap(), "ok");
    assert_eq!(after.counts().unwrap(), before, "the killed run left rows behind");
    assert_eq!(after.latest_run().unwrap().unwrap().engine, "default");
    std::fs::remove_dir_all(&dir).ok();
}

fn main() {
    if let Ok(path) = std::env::var(CHILD) {
        child(&path);
        return;
    }
    parent();
    println!("test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
}
