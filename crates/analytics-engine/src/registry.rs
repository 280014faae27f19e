//! The registry: engines by name, built from a serde configuration.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::engine::{AnomalyDetectionEngine, DetectorEngine, EngineConfig};
use crate::zscore::{RobustZ, RobustZConfig};
use crate::EngineError;

/// Builds an engine from its JSON configuration (an empty object means all defaults).
pub type EngineFactory =
    Arc<dyn Fn(&serde_json::Value) -> Result<Box<dyn AnomalyDetectionEngine>, EngineError> + Send + Sync>;

/// What the registry says about an engine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EngineInfo {
    /// Registry name, as given to `--engine`.
    pub name: String,
    /// One line on what it detects and how.
    pub description: String,
    /// The full configuration with every default filled in.
    pub defaults: serde_json::Value,
}

/// Engines by name. Lookup returns a `Result`; registering a name again replaces the entry
/// and returns the previous one.
#[derive(Clone, Default)]
pub struct EngineRegistry {
    entries: BTreeMap<String, (EngineInfo, EngineFactory)>,
}

impl fmt::Debug for EngineRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineRegistry").field("engines", &self.entries.keys().collect::<Vec<_>>()).finish()
    }
}

/// Parses an engine configuration, naming the engine and the field at fault.
pub fn parse_config<C: DeserializeOwned>(engine: &str, value: &serde_json::Value) -> Result<C, EngineError> {
    let value = if value.is_null() { serde_json::Value::Object(Default::default()) } else { value.clone() };
    serde_json::from_value(value)
        .map_err(|e| EngineError::BadConfig { engine: engine.to_owned(), message: e.to_string() })
}

fn robust_zscore(value: &serde_json::Value) -> Result<Box<dyn AnomalyDetectionEngine>, EngineError> {
    let cfg: EngineConfig<RobustZConfig> = parse_config("robust_zscore", value)?;
    let detector = RobustZ::new(cfg.detector.clone())?;
    Ok(Box::new(DetectorEngine::new("robust_zscore", detector, cfg)?))
}

impl EngineRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The registry with every built-in engine.
    pub fn with_builtins() -> Self {
        let mut r = Self::new();
        r.register(
            "robust_zscore",
            "Robust rolling z-score: distance from the rolling median in units of 1.4826 x MAD; finds spikes and level shifts, O(log w) per point.",
            serde_json::to_value(EngineConfig::<RobustZConfig>::default()).unwrap_or_default(),
            Arc::new(robust_zscore),
        );
        r
    }

    /// Registers (or replaces) an engine; returns the previous entry's info.
    pub fn register(
        &mut self,
        name: &str,
        description: &str,
        defaults: serde_json::Value,
        factory: EngineFactory,
    ) -> Option<EngineInfo> {
        let info = EngineInfo { name: name.to_owned(), description: description.to_owned(), defaults };
        self.entries.insert(name.to_owned(), (info, factory)).map(|(old, _)| old)
    }

    /// Builds the engine `name` from `config` (null or `{}` for the defaults).
    pub fn build(
        &self,
        name: &str,
        config: &serde_json::Value,
    ) -> Result<Box<dyn AnomalyDetectionEngine>, EngineError> {
        let (_, factory) = self.entries.get(name).ok_or_else(|| EngineError::UnknownEngine {
            name: name.to_owned(),
            known: self.entries.keys().cloned().collect::<Vec<_>>().join(", "),
        })?;
        factory(config)
    }

    /// Every engine, by name.
    pub fn list(&self) -> Vec<EngineInfo> {
        self.entries.values().map(|(info, _)| info.clone()).collect()
    }
}
