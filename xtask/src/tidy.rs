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

/// `println!`/`print!`/`eprintln!` in library sources (binaries, tests, examples and benches may print).
pub(crate) fn prints_in_libraries(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for p in rust_files(&root.join("crates")) {
        let s = p.to_string_lossy().replace('\\', "/");
        if s.contains("/tests/") || s.contains("/benches/") || s.contains("/examples/") || s.contains("analytics-cli/")
        {
            continue;
        }
        let text = fs::read_to_string(&p).unwrap_or_default();
        // Stop at the unit tests: they may print.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (i, line) in code.lines().enumerate() {
            let l = line.trim_start();
            if l.starts_with("//") {
                continue;
            }
            if ["println!(", "print!(", "eprintln!(", "eprint!(", "dbg!("].iter().any(|m| l.contains(m)) {
                out.push(format!("{}:{}: {}", p.display(), i + 1, l));
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
