//! The crate layering of docs/architecture.md, checked from `cargo metadata`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

/// Which workspace crates each crate may depend on. A crate may depend only on crates below it.
/// `None` means any workspace crate (the binary at the top).
pub(crate) const ALLOWED: &[(&str, Option<&[&str]>)] = &[
    ("analytics-types", Some(&[])),
    ("analytics-windows", Some(&["analytics-types"])),
    ("analytics-numerics", Some(&[])),
    ("analytics-explain", Some(&["analytics-types", "analytics-windows", "analytics-numerics"])),
    ("analytics-engine", Some(&["analytics-types", "analytics-windows", "analytics-numerics", "analytics-explain"])),
    ("analytics-aggregate", Some(&["analytics-types", "analytics-explain", "analytics-engine"])),
    ("analytics-sim", Some(&["analytics-types"])),
    ("analytics-eval", Some(&["analytics-types"])),
    ("analytics-io", Some(&["analytics-types"])),
    ("analytics-serve", Some(&["analytics-types", "analytics-explain", "analytics-engine", "analytics-io"])),
    ("analytics-cli", None),
];

/// The simulator is the test fixture: any crate's tests may use it.
pub(crate) const TEST_FIXTURES: &[&str] = &["analytics-sim"];

/// Third-party crates that must be absent from a crate's (transitive, non-dev) dependencies.
pub(crate) const MUST_BE_ABSENT: &[(&str, &[&str])] = &[
    ("analytics-types", &["tokio", "rayon", "reqwest", "rusqlite"]),
    ("analytics-windows", &["tokio", "rayon", "reqwest", "rusqlite"]),
    ("analytics-numerics", &["tokio", "rayon", "reqwest", "rusqlite"]),
    ("analytics-explain", &["tokio", "rayon", "reqwest", "rusqlite"]),
    ("analytics-engine", &["tokio", "rayon", "reqwest", "rusqlite"]),
    ("analytics-sim", &["tokio", "rayon", "reqwest", "rusqlite"]),
];

/// One dependency edge between workspace crates.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Edge {
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) dev: bool,
}

/// The edges between workspace members, from `cargo metadata` JSON.
pub(crate) fn workspace_edges(metadata: &Value) -> (BTreeSet<String>, Vec<Edge>) {
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    let members: BTreeSet<String> = metadata["workspace_members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|id| packages.iter().find(|p| p["id"] == *id))
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect();
    let mut edges = Vec::new();
    for p in &packages {
        let Some(from) = p["name"].as_str().filter(|n| members.contains(*n)) else { continue };
        for d in p["dependencies"].as_array().into_iter().flatten() {
            let Some(to) = d["name"].as_str().filter(|n| members.contains(*n)) else { continue };
            let dev = d["kind"].as_str() == Some("dev");
            edges.push(Edge { from: from.to_owned(), to: to.to_owned(), dev });
        }
    }
    edges.sort();
    edges.dedup();
    (members, edges)
}

/// Every violation of the allowed-edges table, as sentences naming the crate or edge.
pub(crate) fn violations(members: &BTreeSet<String>, edges: &[Edge]) -> Vec<String> {
    let table: BTreeMap<&str, Option<&[&str]>> = ALLOWED.iter().copied().collect();
    let mut out = Vec::new();
    for m in members {
        if !table.contains_key(m.as_str()) {
            out.push(format!(
                "crate {m} is not in the layering table (xtask/src/layering.rs); add it with its allowed edges"
            ));
        }
    }
    for e in edges {
        let Some(allowed) = table.get(e.from.as_str()) else { continue };
        let Some(allowed) = allowed else { continue };
        let ok =
            allowed.contains(&e.to.as_str()) || (e.dev && TEST_FIXTURES.contains(&e.to.as_str()) && e.from != e.to);
        if !ok {
            let list = if allowed.is_empty() { "none".to_owned() } else { allowed.join(", ") };
            out.push(format!(
                "{} -> {}{} is not an allowed edge (allowed for {}: {list}); see docs/architecture.md",
                e.from,
                e.to,
                if e.dev { " (dev-dependency)" } else { "" },
                e.from
            ));
        }
    }
    out
}

/// Crates from `MUST_BE_ABSENT` found in the transitive non-dev dependencies, from the resolve graph.
pub(crate) fn forbidden_present(metadata: &Value) -> Vec<String> {
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    let name_of: BTreeMap<String, String> =
        packages.iter().filter_map(|p| Some((p["id"].as_str()?.to_owned(), p["name"].as_str()?.to_owned()))).collect();
    let mut graph: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for node in metadata["resolve"]["nodes"].as_array().into_iter().flatten() {
        let id = node["id"].as_str().unwrap_or_default().to_owned();
        let deps = node["deps"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["dep_kinds"].as_array().into_iter().flatten().any(|k| k["kind"].as_str() != Some("dev")))
            .filter_map(|d| d["pkg"].as_str().map(str::to_owned))
            .collect();
        graph.insert(id, deps);
    }
    let mut out = Vec::new();
    for (krate, forbidden) in MUST_BE_ABSENT {
        let Some(root) = name_of.iter().find(|(_, n)| n == krate).map(|(id, _)| id.clone()) else { continue };
        let mut seen = BTreeSet::new();
        let mut stack = vec![root];
        while let Some(id) = stack.pop() {
            if seen.insert(id.clone()) {
                stack.extend(graph.get(&id).cloned().unwrap_or_default());
            }
        }
        for id in &seen {
            let name = &name_of[id];
            if forbidden.contains(&name.as_str()) {
                out.push(format!("{krate} depends (transitively) on {name}, which must be absent from it"));
            }
        }
    }
    out
}

/// Whether Rust source `text` names the crate `name` (its name in code: `md5` for the package
/// `md-5`): as a path (`name::`), in a `use` or `extern crate`, or as a macro (`name!`).
pub(crate) fn names_crate(text: &str, name: &str) -> bool {
    let starts_here = |i: usize| i == 0 || !text[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_');
    text.match_indices(name).any(|(i, _)| {
        let rest = &text[i + name.len()..];
        starts_here(i)
            && (rest.starts_with("::") || rest.starts_with('!') || rest.starts_with(';') || rest.starts_with(" as "))
    })
}

/// The Rust files of a crate's `src` folder (and `build.rs`), concatenated.
fn crate_source(dir: &Path) -> String {
    let mut text = std::fs::read_to_string(dir.join("build.rs")).unwrap_or_default();
    for p in crate::tidy::rust_files(&dir.join("src")) {
        text.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
        text.push('\n');
    }
    text
}

/// Normal (not dev, not build) dependencies of workspace crates that their source never names:
/// an edge that costs build time and says something false about the crate.
pub(crate) fn unused_dependencies(metadata: &Value) -> Vec<String> {
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    let members: BTreeSet<&str> =
        metadata["workspace_members"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let mut out = Vec::new();
    for node in metadata["resolve"]["nodes"].as_array().into_iter().flatten() {
        let Some(id) = node["id"].as_str().filter(|id| members.contains(id)) else { continue };
        let Some(package) = packages.iter().find(|p| p["id"].as_str() == Some(id)) else { continue };
        let (Some(krate), Some(manifest)) = (package["name"].as_str(), package["manifest_path"].as_str()) else {
            continue;
        };
        let text = crate_source(Path::new(manifest).parent().unwrap_or(Path::new(".")));
        for d in node["deps"].as_array().into_iter().flatten() {
            let normal = d["dep_kinds"].as_array().into_iter().flatten().any(|k| k["kind"].is_null());
            let Some(name) = d["name"].as_str() else { continue };
            if normal && !names_crate(&text, name) {
                out.push(format!("{krate} depends on {name}, which its source never names (remove it from Cargo.toml, or make it a dev-dependency)"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(from: &str, to: &str, dev: bool) -> Edge {
        Edge { from: from.into(), to: to.into(), dev }
    }

    #[test]
    fn an_upward_edge_is_named() {
        let members: BTreeSet<String> = ["analytics-types", "analytics-engine"].iter().map(|s| s.to_string()).collect();
        let v = violations(&members, &[edge("analytics-types", "analytics-engine", false)]);
        assert_eq!(
            v,
            ["analytics-types -> analytics-engine is not an allowed edge (allowed for analytics-types: none); see docs/architecture.md"]
        );
    }

    #[test]
    fn fixtures_are_allowed_only_in_tests_and_unknown_crates_are_named() {
        let members: BTreeSet<String> =
            ["analytics-engine", "analytics-sim", "analytics-new"].iter().map(|s| s.to_string()).collect();
        assert!(violations(&members, &[edge("analytics-engine", "analytics-sim", true)])
            .iter()
            .all(|v| v.contains("analytics-new")));
        let v = violations(&members, &[edge("analytics-engine", "analytics-sim", false)]);
        assert!(v.iter().any(|m| m.starts_with("analytics-engine -> analytics-sim is not an allowed edge")), "{v:?}");
        assert!(v.iter().any(|m| m.starts_with("crate analytics-new is not in the layering table")), "{v:?}");
    }

    #[test]
    fn a_crate_is_named_by_path_use_or_macro_only() {
        assert!(names_crate("use serde::Serialize;", "serde"));
        assert!(names_crate("#[tokio::main]", "tokio"));
        assert!(names_crate("let d = md5::compute(b);", "md5"));
        assert!(names_crate("extern crate rayon;", "rayon"));
        assert!(names_crate("x = anyhow!(\"no\")", "anyhow"));
        assert!(!names_crate("use my_serde::X; // serde", "serde"));
        assert!(!names_crate("the chrono crate", "chrono"));
    }

    /// Every normal dependency of every workspace crate is named in its source.
    #[test]
    fn the_workspace_has_no_unused_dependency() {
        let metadata = crate::cargo_metadata(true).expect("cargo metadata");
        assert_eq!(unused_dependencies(&metadata), Vec::<String>::new());
    }

    /// The real workspace satisfies its own table (so `cargo test` catches a bad edge too).
    #[test]
    fn the_workspace_obeys_the_table() {
        let metadata = crate::cargo_metadata(false).expect("cargo metadata");
        let (members, edges) = workspace_edges(&metadata);
        assert!(members.contains("analytics-types") && !edges.is_empty());
        assert_eq!(violations(&members, &edges), Vec::<String>::new());
    }
}
