//! Repository hygiene, as plain tests (`cargo test -p xtask`): every module says what it is for,
//! libraries do not print, and tracked files name no absolute machine paths.

use std::fs;
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, recursively, sorted.
pub(crate) fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "target" && n != "snapshots") {
                    stack.push(p);
                }
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Files whose first non-blank line is neither a `//!` module doc nor a crate doc attribute.
pub(crate) fn missing_module_docs(root: &Path) -> Vec<String> {
    rust_files(&root.join("crates"))
        .into_iter()
        .chain(rust_files(&root.join("xtask")))
        .filter(|p| {
            let text = fs::read_to_string(p).unwrap_or_default();
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            !(first.starts_with("//!") || first.starts_with("#![doc"))
        })
        .map(|p| p.display().to_string())
        .collect()
}

/// The code of a Rust file line by line, numbered from 1 and trimmed at the start, up to its
/// unit tests (`#[cfg(test)]`) and without comment lines: what the hygiene checks read.
fn code_lines(path: &Path) -> Vec<(usize, String)> {
    let text = fs::read_to_string(path).unwrap_or_default();
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    code.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim_start().to_owned()))
        .filter(|(_, l)| !l.starts_with("//"))
        .collect()
}

/// `println!`/`print!`/`eprintln!` in library sources (binaries, tests, examples and benches may print).
pub(crate) fn prints_in_libraries(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for p in rust_files(&root.join("crates")) {
        let s = p.to_string_lossy().replace('\\', "/");
        if s.contains("/tests/") || s.contains("/benches/") || s.contains("/examples/") || s.contains("analytics-cli/")
        {
            continue;
        }
        // Unit tests may print.
        for (i, l) in code_lines(&p) {
            if ["println!(", "print!(", "eprintln!(", "eprint!(", "dbg!("].iter().any(|m| l.contains(m)) {
                out.push(format!("{}:{i}: {l}", p.display()));
            }
        }
    }
    out
}

/// The crates that do no I/O and reach no server (docs/architecture.md's invariants): the
/// contracts, the numerics, the labeller, the engine, the roll-ups, the simulator and the
/// benchmark scorer. None spawns a thread with std either (the fleet pipeline's threads are
/// rayon's). Files, sockets and processes belong to analytics-io, the service and the binary.
pub(crate) const IO_FREE: &[&str] = &[
    "analytics-types",
    "analytics-windows",
    "analytics-numerics",
    "analytics-explain",
    "analytics-engine",
    "analytics-aggregate",
    "analytics-sim",
    "analytics-eval",
];

/// What an I/O-free crate's code must not name.
const IO_MARKERS: &[&str] = &[
    "std::fs",
    "std::net",
    "std::process",
    "std::thread::spawn",
    "thread::spawn(",
    "File::open",
    "File::create",
    "TcpStream",
    "TcpListener",
];

/// Lines of the I/O-free crates' code (unit tests excluded: they may write scratch files) that
/// name a file, socket, process or thread API.
pub(crate) fn io_below_io(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for krate in IO_FREE {
        for p in rust_files(&root.join("crates").join(krate).join("src")) {
            for (i, l) in code_lines(&p) {
                if let Some(m) = IO_MARKERS.iter().find(|m| l.contains(*m)) {
                    out.push(format!("{}:{i}: {m} in {krate}, which does no I/O", p.display()));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        crate::workspace_root()
    }

    #[test]
    fn every_module_has_a_doc_line() {
        assert_eq!(missing_module_docs(&root()), Vec::<String>::new());
    }

    #[test]
    fn the_io_free_crates_do_no_io() {
        assert_eq!(io_below_io(&root()), Vec::<String>::new());
        // And the check sees what it looks for: a crate that reads a file is named.
        let dir = std::env::temp_dir().join(format!("xtask-io-{}", std::process::id()));
        let src = dir.join("crates/analytics-engine/src");
        fs::create_dir_all(&src).unwrap();
        fs::write(src.join("lib.rs"), "//! x\nfn f() { let _ = std::fs::read(\"a\"); }\n#[cfg(test)]\nmod t { fn g() { std::fs::write(\"b\", \"\"); } }\n").unwrap();
        let found = io_below_io(&dir);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("lib.rs:2: std::fs in analytics-engine"), "{found:?}");
        fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn libraries_do_not_print() {
        assert_eq!(prints_in_libraries(&root()), Vec::<String>::new());
    }

    #[test]
    fn no_absolute_machine_paths_in_sources() {
        let bad: Vec<String> = rust_files(&root().join("crates"))
            .into_iter()
            .filter(|p| {
                let t = fs::read_to_string(p).unwrap_or_default();
                // Built, not written out, so this file does not trip the check it implements.
                ["work", "farm", "home", "root"].iter().any(|d| t.contains(&format!("/{d}/")))
            })
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(bad, Vec::<String>::new());
    }
}
