//! The service's configuration file (TOML): every option with its default, checked at start.
//!
//! A mistake is refused before anything starts, naming the file, the line and the key:
//! `serve.toml:7: step_seconds: 0 must be at least 1`. Relative paths in the file (the store,
//! token files) are taken from the file's own directory, so the service finds them wherever it is
//! started from.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::ServeError;

/// The whole configuration. Every field has a default; an unknown key is an error.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// This instance's name: the key of its checkpoints in the store, and the `service` label of
    /// its alerts. Give each replica its own.
    pub name: String,
    /// Address the HTTP server listens on (`/metrics`, `/api/v1/...`, `/-/healthy`, `/-/ready`).
    pub listen: String,
    /// SQLite store for checkpoints (created if missing).
    pub store: PathBuf,
    /// Engine, by registry name (`analytics engines` lists them).
    pub engine: String,
    /// The engine's parameters (any subset; defaults fill the rest).
    pub engine_config: toml::Table,
    /// Poll period and query step, in seconds: every step the service asks each source for the
    /// points since its last poll, one per step.
    pub step_seconds: i64,
    /// History read for a series the store holds no checkpoint of, at start, in seconds.
    pub warmup_seconds: i64,
    /// Seconds between checkpoints (one more is written at shutdown).
    pub checkpoint_seconds: i64,
    /// Most points kept per series for the API's series view.
    pub keep_points: usize,
    /// A series with no new point for this many seconds is stale: left out of `/metrics` and the
    /// rankings (as Prometheus marks a vanished series stale), its state kept.
    pub stale_seconds: i64,
    /// A series with no new point for this many seconds is forgotten: its state dropped.
    pub forget_seconds: i64,
    /// Score from which a series counts as anomalous: in the rankings' counts, and as a member
    /// of an incident.
    pub anomalous_score: f64,
    /// A series stays in an incident until no point of it has reached `anomalous_score` for this
    /// many seconds (so that an incident does not flap while the anomaly lasts).
    pub resolve_seconds: i64,
    /// This replica's share of the fleet (see docs/scaling.md); absent: every series.
    pub shard: Option<ShardConfig>,
    /// Where alerts go; absent: no alerts.
    pub alertmanager: Option<AlertmanagerConfig>,
    /// Prometheus-compatible sources.
    pub sources: Vec<SourceConfig>,
    /// Who may read what.
    pub auth: AuthConfig,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            name: "analytics".into(),
            listen: "127.0.0.1:9464".into(),
            store: PathBuf::from("serve.db"),
            engine: "default".into(),
            engine_config: toml::Table::new(),
            step_seconds: 60,
            warmup_seconds: 86_400,
            checkpoint_seconds: 300,
            keep_points: 360,
            stale_seconds: 900,
            forget_seconds: 86_400,
            anomalous_score: 0.5,
            resolve_seconds: 300,
            shard: None,
            alertmanager: None,
            sources: Vec::new(),
            auth: AuthConfig::default(),
        }
    }
}

/// One Prometheus-compatible source.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// A name for messages and the `source` label of the service's own metrics.
    pub name: String,
    /// Base URL, e.g. `http://127.0.0.1:9090`.
    pub url: String,
    /// The PromQL selector (or expression) polled, e.g. `{job="node", __name__=~"cpu.*"}`.
    pub query: String,
    /// Label holding the tenant.
    #[serde(default = "tenant_label")]
    pub tenant_label: String,
    /// Label holding the cluster.
    #[serde(default = "cluster_label")]
    pub cluster_label: String,
    /// Label holding the node.
    #[serde(default = "node_label")]
    pub node_label: String,
    /// Timeout of one request, in seconds.
    #[serde(default = "timeout")]
    pub timeout_seconds: f64,
    /// A file holding a bearer token for the source (relative to the config file).
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
}

fn tenant_label() -> String {
    "tenant".into()
}
fn cluster_label() -> String {
    "cluster".into()
}
fn node_label() -> String {
    "node".into()
}
fn timeout() -> f64 {
    10.0
}

/// Which series this replica scores: those whose key hashes to `index` modulo `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardConfig {
    /// Replicas in all.
    pub count: u64,
    /// This replica, from 0.
    pub index: u64,
}

/// Alertmanager, for incidents.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Base URL, e.g. `http://127.0.0.1:9093`.
    pub url: String,
    /// Timeout of one request, in seconds.
    #[serde(default = "timeout")]
    pub timeout_seconds: f64,
}

/// Bearer tokens, stored as SHA-256 hashes (hex): `analytics serve --hash-token` prints one.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// The admin token's hash: sees every tenant and the service's own metrics.
    pub admin_token_sha256: Option<String>,
    /// One token per tenant: sees that tenant only.
    pub tenants: Vec<TenantToken>,
}

/// A tenant's token.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantToken {
    /// The tenant.
    pub tenant: String,
    /// Its token's SHA-256, hex.
    pub token_sha256: String,
}

impl ServeConfig {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ServeError> {
        let text = std::fs::read_to_string(path).map_err(|e| ServeError::Config {
            file: path.display().to_string(),
            line: 0,
            message: e.to_string(),
        })?;
        Self::parse(path, &text)
    }

    /// Parses and checks `text`, as read from `path` (for messages and relative paths).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ServeError> {
        let file = path.display().to_string();
        let mut cfg: ServeConfig = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(0, |s| line_of(text, s.start));
            ServeError::Config { file: file.clone(), line, message: e.message().trim().to_owned() }
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        if cfg.store.is_relative() {
            cfg.store = base.join(&cfg.store);
        }
        for s in &mut cfg.sources {
            if let Some(f) = &mut s.bearer_token_file {
                if f.is_relative() {
                    *f = base.join(&*f);
                }
            }
        }
        cfg.check().map_err(|(key, message)| ServeError::Config {
            file: file.clone(),
            line: key_line(text, key),
            message: format!("{key}: {message}"),
        })?;
        // The engine is built once here so that a bad engine or parameter is refused with the
        // file's line, not later.
        if let Err(e) = cfg.build_engine() {
            let key = if cfg.engine_config.is_empty() { "engine" } else { "engine_config" };
            return Err(ServeError::Config { file, line: key_line(text, key), message: format!("{key}: {e}") });
        }
        Ok(cfg)
    }

    /// The configured engine, built from the registry.
    pub fn build_engine(&self) -> Result<Box<dyn analytics_engine::AnomalyDetectionEngine>, ServeError> {
        let engine_cfg = serde_json::to_value(&self.engine_config)
            .map_err(|e| ServeError::Internal(format!("engine_config does not convert to JSON: {e}")))?;
        Ok(analytics_engine::EngineRegistry::with_builtins().build(&self.engine, &engine_cfg)?)
    }

    /// The listen address, parsed.
    pub fn listen_addr(&self) -> SocketAddr {
        // Checked in `check`.
        self.listen.parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 9464)))
    }

    /// The first broken rule, as (key, message).
    fn check(&self) -> Result<(), (&'static str, String)> {
        let at_least = |key: &'static str, v: i64, min: i64| {
            if v < min {
                Err((key, format!("{v} must be at least {min}")))
            } else {
                Ok(())
            }
        };
        if self.name.is_empty() || self.name.len() > 64 {
            return Err(("name", "must be 1 to 64 characters".into()));
        }
        if self.listen.parse::<SocketAddr>().is_err() {
            return Err(("listen", format!("{:?} is not an address like 127.0.0.1:9464", self.listen)));
        }
        at_least("step_seconds", self.step_seconds, 1)?;
        at_least("warmup_seconds", self.warmup_seconds, 0)?;
        at_least("checkpoint_seconds", self.checkpoint_seconds, 1)?;
        at_least("stale_seconds", self.stale_seconds, self.step_seconds)?;
        at_least("forget_seconds", self.forget_seconds, self.stale_seconds)?;
        at_least("resolve_seconds", self.resolve_seconds, 0)?;
        if self.keep_points == 0 || self.keep_points > 100_000 {
            return Err(("keep_points", format!("{} must be 1 to 100000", self.keep_points)));
        }
        if !(0.0..=1.0).contains(&self.anomalous_score) {
            return Err(("anomalous_score", format!("{} must be in [0, 1]", self.anomalous_score)));
        }
        if let Some(s) = self.shard {
            if s.count == 0 || s.index >= s.count {
                return Err(("shard", format!("index {} must be below count {} (count at least 1)", s.index, s.count)));
            }
        }
        if let Some(a) = &self.alertmanager {
            if !a.url.starts_with("http://") {
                return Err(("url", format!("alertmanager URL {:?} must start with http://", a.url)));
            }
            if !(a.timeout_seconds > 0.0 && a.timeout_seconds.is_finite()) {
                return Err(("timeout_seconds", format!("{} must be positive", a.timeout_seconds)));
            }
        }
        if self.sources.is_empty() {
            return Err(("sources", "at least one [[sources]] table is needed".into()));
        }
        let mut names = std::collections::BTreeSet::new();
        for s in &self.sources {
            if !names.insert(s.name.as_str()) {
                return Err(("name", format!("two sources are named {:?}", s.name)));
            }
            if !s.url.starts_with("http://") {
                return Err(("url", format!("source {:?}: URL {:?} must start with http://", s.name, s.url)));
            }
            if s.query.trim().is_empty() {
                return Err(("query", format!("source {:?}: the query is empty", s.name)));
            }
            if !(s.timeout_seconds > 0.0 && s.timeout_seconds.is_finite()) {
                return Err((
                    "timeout_seconds",
                    format!("source {:?}: {} must be positive", s.name, s.timeout_seconds),
                ));
            }
        }
        let hex = |h: &str| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit());
        match &self.auth.admin_token_sha256 {
            None => {
                return Err(("admin_token_sha256", "an admin token is required (analytics serve --hash-token)".into()))
            }
            Some(h) if !hex(h) => return Err(("admin_token_sha256", "must be 64 hex digits (a SHA-256)".into())),
            Some(_) => {}
        }
        let mut tenants = std::collections::BTreeSet::new();
        for t in &self.auth.tenants {
            if !hex(&t.token_sha256) {
                return Err(("token_sha256", format!("tenant {:?}: must be 64 hex digits (a SHA-256)", t.tenant)));
            }
            if !tenants.insert(t.tenant.as_str()) {
                return Err(("tenant", format!("tenant {:?} has two tokens", t.tenant)));
            }
        }
        Ok(())
    }
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

/// The 1-based line where `key` is set (the first `key =` line, or the first `[key]` table), or
/// 0 when the key is not in the file (a default broke the rule).
fn key_line(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            let assigns = l.strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with('='));
            let table = l.trim_start_matches('[').trim_end().trim_end_matches(']') == key;
            assigns || (l.starts_with('[') && table)
        })
        .map_or(0, |i| i + 1)
}

/// A commented example configuration, every option at its default (printed by
/// `analytics serve --example-config`).
pub const EXAMPLE: &str = r#"# analytics serve: online anomaly detection beside Prometheus.
# Every key below is shown with its default, except sources and auth, which you must give.

name = "analytics"            # this instance; key of its checkpoints; give each replica its own
listen = "127.0.0.1:9464"     # /metrics, /api/v1/..., /-/healthy, /-/ready, / (dashboard)
store = "serve.db"            # SQLite file for checkpoints (relative to this file)
engine = "default"            # `analytics engines` lists engines and their parameters
step_seconds = 60             # poll period and query step
warmup_seconds = 86400        # history read at start for a series with no checkpoint
checkpoint_seconds = 300      # checkpoint period (and once more at shutdown)
keep_points = 360             # points per series kept for the API's series view
stale_seconds = 900           # no new point for this long: left out of /metrics and rankings
forget_seconds = 86400        # no new point for this long: state dropped
anomalous_score = 0.5         # a series at or above this is anomalous (rankings, incidents)
resolve_seconds = 300         # a series leaves an incident after this long below anomalous_score

# [engine_config]             # engine parameters, any subset (as in `analytics detect --config`)
# alarm = { threshold = 0.5 }

# [shard]                     # this replica's share: series whose key hashes to index mod count
# count = 2
# index = 0

# [alertmanager]              # incidents are posted to Alertmanager's v2 API when set
# url = "http://127.0.0.1:9093"
# timeout_seconds = 10

[[sources]]
name = "prometheus"
url = "http://127.0.0.1:9090"
query = '{__name__=~"cpu_usage|error_rate"}'
tenant_label = "tenant"       # the labels holding tenant, cluster and node
cluster_label = "cluster"
node_label = "node"
timeout_seconds = 10
# bearer_token_file = "prometheus.token"

[auth]
# SHA-256 of each bearer token, from `analytics serve --hash-token` (the token on stdin).
admin_token_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
# [[auth.tenants]]
# tenant = "acme"
# token_sha256 = "..."
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ServeConfig, String> {
        ServeConfig::parse(Path::new("conf/serve.toml"), text).map_err(|e| e.to_string())
    }

    const MINIMAL: &str = "[[sources]]\nname = \"p\"\nurl = \"http://127.0.0.1:9090\"\nquery = \"up\"\n\
                           [auth]\nadmin_token_sha256 = \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\n";

    #[test]
    fn the_example_parses_and_defaults_fill_the_rest() {
        let cfg = parse(EXAMPLE).unwrap();
        assert_eq!(cfg.step_seconds, 60);
        assert_eq!(cfg.sources[0].query, r#"{__name__=~"cpu_usage|error_rate"}"#);
        let cfg = parse(MINIMAL).unwrap();
        assert_eq!(cfg.store, Path::new("conf/serve.db"), "relative to the file");
        assert_eq!(cfg.sources[0].node_label, "node");
        assert_eq!(cfg.keep_points, 360);
    }

    #[test]
    fn mistakes_name_the_file_line_and_key() {
        let e = parse(&format!("step_seconds = 0\n{MINIMAL}")).unwrap_err();
        assert_eq!(e, "conf/serve.toml:1: step_seconds: 0 must be at least 1");
        let e = parse(&format!("bogus = 1\n{MINIMAL}")).unwrap_err();
        assert!(e.starts_with("conf/serve.toml:1: unknown field `bogus`, expected one of `name`"), "{e}");
        let e = parse(&format!("{MINIMAL}bogus = 1\n")).unwrap_err();
        assert_eq!(e, "conf/serve.toml:7: unknown field `bogus`, expected `admin_token_sha256` or `tenants`");
        let e = parse(&format!("keep_points = \"many\"\n{MINIMAL}")).unwrap_err();
        assert!(e.starts_with("conf/serve.toml:1: invalid type: string \"many\""), "{e}");
        let e = parse(&MINIMAL.replace("http://127", "https://127")).unwrap_err();
        assert_eq!(e, "conf/serve.toml:3: url: source \"p\": URL \"https://127.0.0.1:9090\" must start with http://");
        let e = parse(&MINIMAL.replace("admin_token_sha256 = \"a", "admin_token_sha256 = \"z")).unwrap_err();
        assert_eq!(e, "conf/serve.toml:6: admin_token_sha256: must be 64 hex digits (a SHA-256)");
        let e = parse("").unwrap_err();
        assert_eq!(e, "conf/serve.toml: sources: at least one [[sources]] table is needed");
        let e = parse(&format!(
            "engine = \"robust_zscore\"\n[engine_config]\ncalibration = {{ min_samples = 1 }}\n{MINIMAL}"
        ))
        .unwrap_err();
        assert_eq!(e, "conf/serve.toml:2: engine_config: parameter min_samples is 1; it must be at least 32");
        let e = parse(&format!("engine = \"nope\"\n{MINIMAL}")).unwrap_err();
        assert!(e.starts_with("conf/serve.toml:1: engine: unknown engine \"nope\"; known engines: "), "{e}");
        let e = parse(&format!("listen = \"localhost\"\n{MINIMAL}")).unwrap_err();
        assert!(e.starts_with("conf/serve.toml:1: listen: \"localhost\" is not an address"), "{e}");
    }
}
