//! The crate layering of docs/architecture.md, checked from `cargo metadata`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// Which workspace crates each crate may depend on. A crate may depend only on crates below it.
/// `None` means any workspace crate (the binary at the top).
pub(crate) const ALLOWED: &[(&str, Option<&[&str]>)] = &[
    ("analytics-types", Some(&[])),
    ("analytics-windows", Some(&["analytics-types"])),
    ("analytics-explain", Some(&["analytics-types", "analytics-windows"])),
    ("analytics-engine", Some(&["analytics-types", "analytics-windows", "analytics-explain"])),
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

    /// The real workspace satisfies its own table (so `cargo test` catches a bad edge too).
    #[test]
    fn the_workspace_obeys_the_table() {
        let metadata = crate::cargo_metadata(false).expect("cargo metadata");
        let (members, edges) = workspace_edges(&metadata);
        assert!(members.contains("analytics-types") && !edges.is_empty());
        assert_eq!(violations(&members, &edges), Vec::<String>::new());
    }
}
