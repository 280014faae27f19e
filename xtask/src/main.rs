//! `cargo xtask verify`: the checks that keep the workspace honest.
//!
//! In order: the crate layering (from `cargo metadata`, against the table in `layering.rs`),
//! the must-be-absent dependency probes, the tidy checks (module docs, no printing in
//! libraries), `cargo fmt --check`, `cargo clippy -D warnings` on every target, the tests with
//! snapshots locked (`INSTA_UPDATE=no`, `CI=true`), no pending snapshot files, and the doc
//! build with warnings denied. It prints each check and stops at the first failure.
//!
//! The tests named `corpora_*` read the public benchmark corpora (`ANALYTICS_DATA`, else
//! `../shared` beside the repository). Where those are absent, verify skips them, names them in
//! one line and passes what it can; with `ANALYTICS_REQUIRE_DATA=1` (as `.ci/run` sets) their
//! absence is a failure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

mod layering;
mod tidy;

/// The workspace root (the parent of this crate's directory).
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(workspace_root());
    c
}

/// `cargo metadata` as JSON; `resolve` includes the dependency graph.
pub(crate) fn cargo_metadata(resolve: bool) -> Result<serde_json::Value> {
    let mut c = cargo();
    c.args(["metadata", "--format-version", "1"]);
    if !resolve {
        c.arg("--no-deps");
    }
    let out = c.output().context("cannot run cargo metadata")?;
    if !out.status.success() {
        bail!("cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    serde_json::from_slice(&out.stdout).context("cargo metadata printed invalid JSON")
}

#[allow(clippy::print_stdout)]
fn step(name: &str, f: impl FnOnce() -> Result<String>) -> Result<()> {
    let t = Instant::now();
    match f() {
        Ok(detail) => {
            println!("[ok]   {name}: {detail} ({:.1} s)", t.elapsed().as_secs_f64());
            Ok(())
        }
        Err(e) => {
            println!("[FAIL] {name}");
            Err(e.context(format!("check failed: {name}")))
        }
    }
}

/// The benchmark corpora the `corpora_*` tests read.
const CORPORA: [&str; 4] = ["nab", "msft", "asd", "jumpstarter"];

/// Where the corpora are: `ANALYTICS_DATA` (relative to the workspace root), else `../shared`.
fn corpora_dir() -> PathBuf {
    let root = workspace_root();
    match std::env::var_os("ANALYTICS_DATA") {
        Some(d) => root.join(d),
        None => root.join("../shared"),
    }
}

/// The names of the `corpora_*` tests, from the built test binaries' `--list`.
fn corpus_tests(c: &mut Command) -> Result<Vec<String>> {
    let out = c.output().context("cannot list the tests")?;
    if !out.status.success() {
        bail!("listing the tests failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .filter(|name| name.rsplit("::").next().is_some_and(|n| n.starts_with("corpora_")))
        .map(str::to_owned)
        .collect())
}

fn run(c: &mut Command, what: &str) -> Result<String> {
    let status = c.status().with_context(|| format!("cannot run {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(what.to_owned())
}

fn verify() -> Result<()> {
    let root = workspace_root();
    step("layering", || {
        let (members, edges) = layering::workspace_edges(&cargo_metadata(false)?);
        let v = layering::violations(&members, &edges);
        if !v.is_empty() {
            bail!("{}", v.join("\n"));
        }
        Ok(format!("{} crates, {} edges between them, all allowed", members.len(), edges.len()))
    })?;
    step("must-be-absent dependencies", || {
        let v = layering::forbidden_present(&cargo_metadata(true)?);
        if !v.is_empty() {
            bail!("{}", v.join("\n"));
        }
        Ok(format!(
            "{} crates probed (no tokio, rayon, reqwest or rusqlite below the top)",
            layering::MUST_BE_ABSENT.len()
        ))
    })?;
    step("unused dependencies", || {
        let v = layering::unused_dependencies(&cargo_metadata(true)?);
        if !v.is_empty() {
            bail!("{}", v.join("\n"));
        }
        Ok("every normal dependency of every crate is named in its source".to_owned())
    })?;
    step("tidy", || {
        let mut v =
            tidy::missing_module_docs(&root).into_iter().map(|f| format!("{f}: no //! line")).collect::<Vec<_>>();
        v.extend(tidy::prints_in_libraries(&root).into_iter().map(|f| format!("{f}: prints from a library")));
        v.extend(tidy::io_below_io(&root));
        if !v.is_empty() {
            bail!("{}", v.join("\n"));
        }
        Ok(format!(
            "{} Rust files have module docs; libraries do not print; {} crates do no file, socket, process or thread I/O",
            tidy::rust_files(&root.join("crates")).len(),
            tidy::IO_FREE.len()
        ))
    })?;
    let xtask = ["--manifest-path", "xtask/Cargo.toml"];
    step("rustfmt", || {
        run(cargo().args(["fmt", "--all", "--", "--check"]), "cargo fmt --check")?;
        run(cargo().arg("fmt").args(xtask).args(["--", "--check"]), "cargo fmt --check (xtask)")
    })?;
    step("clippy", || {
        let deny = ["--all-targets", "--", "-D", "warnings"];
        run(cargo().args(["clippy", "--workspace"]).args(deny), "cargo clippy -D warnings")?;
        run(cargo().arg("clippy").args(xtask).args(deny), "cargo clippy -D warnings (xtask)")
    })?;
    step("tests", || {
        let locked = |args: &[&str]| {
            let mut c = cargo();
            c.args(args).env("INSTA_UPDATE", "no").env("CI", "true");
            c
        };
        let data = corpora_dir();
        let missing: Vec<&str> = CORPORA.iter().copied().filter(|c| !data.join(c).is_dir()).collect();
        let required = std::env::var("ANALYTICS_REQUIRE_DATA").is_ok_and(|v| v == "1");
        if required && !missing.is_empty() {
            bail!(
                "ANALYTICS_REQUIRE_DATA=1, but the benchmark corpora {} are not in {} (set ANALYTICS_DATA)",
                missing.join(", "),
                data.display()
            );
        }
        // Every target but the benchmarks, whose criterion harness takes no `--skip`; then the
        // benchmarks, each run once as a test.
        let mut test = locked(&["test", "--workspace", "--lib", "--bins", "--tests", "--examples"]);
        test.env("ANALYTICS_DATA", &data);
        if !missing.is_empty() {
            test.args(["--", "--skip", "corpora_"]);
        }
        run(&mut test, "cargo test")?;
        run(&mut locked(&["test", "--workspace", "--benches"]), "cargo test --benches")?;
        run(&mut locked(&["test", "--workspace", "--doc"]), "cargo test --doc")?;
        run(cargo().arg("test").args(xtask), "cargo test (xtask)")?;
        let done = "unit, integration and doc tests of the workspace, and xtask's tidy and layering tests";
        if missing.is_empty() {
            return Ok(format!("{done}, with the benchmark corpora in {}", data.display()));
        }
        let skipped =
            corpus_tests(&mut locked(&["test", "--workspace", "--lib", "--bins", "--tests", "--", "--list"]))?;
        Ok(format!(
            "{done}; SKIPPED {} tests that need the benchmark corpora ({} not in {}; set ANALYTICS_DATA, see the README): {}",
            skipped.len(),
            missing.join(", "),
            data.display(),
            skipped.join(", ")
        ))
    })?;
    step("snapshots", || {
        let pending: Vec<String> = walk(&root.join("crates"))
            .into_iter()
            .filter(|p| p.ends_with(".snap.new") || p.ends_with(".pending-snap"))
            .collect();
        if !pending.is_empty() {
            bail!("pending snapshots (review with `cargo insta review`):\n{}", pending.join("\n"));
        }
        Ok("no pending snapshots".into())
    })?;
    step("docs", || {
        run(
            cargo().args(["doc", "--workspace", "--no-deps"]).env("RUSTDOCFLAGS", "-D warnings"),
            "cargo doc -D warnings",
        )
    })?;
    Ok(())
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("verify") => match verify() {
            Ok(()) => {
                println!("verify: all checks passed");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                std::process::ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("usage: cargo xtask verify\n\n  verify   layering, dependency probes, tidy, fmt, clippy, tests, snapshots, docs");
            std::process::ExitCode::from(2)
        }
    }
}
