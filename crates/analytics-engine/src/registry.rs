//! The registry: engines by name, built from a serde configuration.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::detector::{Detector, DetectorKind};
use crate::detectors::cusum::{Cusum, CusumConfig};
use crate::detectors::density::{Density, DensityConfig};
use crate::detectors::holt_winters::{HoltWinters, HoltWintersConfig};
use crate::detectors::iforest::{IForest, IForestConfig};
use crate::detectors::lag_change::{LagChange, LagChangeConfig};
use crate::detectors::novelty::{Novelty, NoveltyConfig};
use crate::detectors::seasonal::{Seasonal, SeasonalConfig};
use crate::detectors::spectral::{SpectralConfig, SpectralResidual};
use crate::detectors::zscore::{RobustZ, RobustZConfig};
use crate::engine::{AnomalyDetectionEngine, DetectorConfig, DetectorEngine, EngineConfig};
use crate::ensemble::{Ensemble, EnsembleConfig};
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

/// Builds a detector engine: parses `EngineConfig<C>`, builds the detector from its part.
fn build<C, D>(
    name: &'static str,
    value: &serde_json::Value,
    make: fn(C) -> Result<D, EngineError>,
) -> Result<Box<dyn AnomalyDetectionEngine>, EngineError>
where
    C: DeserializeOwned + Serialize + Clone + Default + DetectorConfig,
    D: Detector + 'static,
{
    let cfg: EngineConfig<C> = parse_config(name, value)?;
    let detector = make(cfg.detector.clone())?;
    Ok(Box::new(DetectorEngine::new(name, detector, cfg)?))
}

/// The default engine: the ensemble as it is when it calibrates itself (`bonferroni`), with a
/// calibrator after it otherwise.
fn build_default(value: &serde_json::Value) -> Result<Box<dyn AnomalyDetectionEngine>, EngineError> {
    let cfg: EngineConfig<EnsembleConfig> = parse_config("default", value)?;
    let ensemble = Ensemble::new(cfg.detector.clone())?;
    Ok(if ensemble.is_calibrated() {
        Box::new(DetectorEngine::of_calibrated("default", ensemble, cfg)?)
    } else {
        Box::new(DetectorEngine::new("default", ensemble, cfg)?)
    })
}

fn defaults<C: Serialize + Default + DetectorConfig>() -> serde_json::Value {
    serde_json::to_value(EngineConfig::<C>::default()).unwrap_or_default()
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
            "default",
            "The ensemble: robust z-score, seasonal baseline and spike density, each calibrated on its own history, and the record rule (a value beyond the whole range seen); the most surprising counts, corrected for the number asked (Bonferroni). Configurable: other members (context novelty, CUSUM, multi-scale change, Holt-Winters) and a memory that discounts what recurs at the same time of day or keeps a beat.",
            defaults::<EnsembleConfig>(),
            Arc::new(build_default),
        );
        r.register(
            DetectorKind::RobustZscore.as_str(),
            "Robust rolling z-score: distance from the rolling median in units of 1.4826 x MAD; finds spikes and level shifts, O(log w) per point.",
            defaults::<RobustZConfig>(),
            Arc::new(|v| build(DetectorKind::RobustZscore.as_str(), v, RobustZ::new)),
        );
        r.register(
            DetectorKind::SeasonalBaseline.as_str(),
            "Seasonal baseline: the value usual at this time of day or week, learnt online, the cycle chosen automatically; finds values out of place for their phase.",
            defaults::<SeasonalConfig>(),
            Arc::new(|v| build(DetectorKind::SeasonalBaseline.as_str(), v, Seasonal::new)),
        );
        r.register(
            DetectorKind::Cusum.as_str(),
            "CUSUM change points: accumulated deviations from a slowly learnt level; finds sustained shifts of level or slope, even small ones.",
            defaults::<CusumConfig>(),
            Arc::new(|v| build(DetectorKind::Cusum.as_str(), v, Cusum::new)),
        );
        r.register(
            DetectorKind::LagChange.as_str(),
            "Multi-scale change: the change over the last 1, 2, 4, 8 and 16 steps against each lag's typical change, learnt online (the idea of Merlion's ZMS); finds jumps, and ramps too fast for the series.",
            defaults::<LagChangeConfig>(),
            Arc::new(|v| build(DetectorKind::LagChange.as_str(), v, LagChange::new)),
        );
        r.register(
            DetectorKind::SpikeDensity.as_str(),
            "Spike density: a short average of robust deviations against its own long-run spread; finds clusters of spikes and bursts of volatility that single points hide.",
            defaults::<DensityConfig>(),
            Arc::new(|v| build(DetectorKind::SpikeDensity.as_str(), v, Density::new)),
        );
        r.register(
            DetectorKind::SpectralResidual.as_str(),
            "Spectral residual (Microsoft, KDD 2019): the saliency of the newest point in the log-amplitude spectrum of a window; finds points that break the window's shape. One FFT pair per point.",
            defaults::<SpectralConfig>(),
            Arc::new(|v| build(DetectorKind::SpectralResidual.as_str(), v, SpectralResidual::new)),
        );
        r.register(
            DetectorKind::IsolationForest.as_str(),
            "Isolation forest on shingled windows, fitted on the learning period from a seeded generator; finds shapes easy to isolate. Tens of KiB per series.",
            defaults::<IForestConfig>(),
            Arc::new(|v| build(DetectorKind::IsolationForest.as_str(), v, IForest::new)),
        );
        r.register(
            DetectorKind::ContextNovelty.as_str(),
            "Context novelty: how rarely the short pattern a point completes (its quantised level and the ones before it) has been seen; recurring bursts become familiar, new shapes score at once.",
            defaults::<NoveltyConfig>(),
            Arc::new(|v| build(DetectorKind::ContextNovelty.as_str(), v, Novelty::new)),
        );
        r.register(
            DetectorKind::HoltWinters.as_str(),
            "Holt-Winters forecast (level, trend, daily profile): scores one-step-ahead forecast errors against their robust spread.",
            defaults::<HoltWintersConfig>(),
            Arc::new(|v| build(DetectorKind::HoltWinters.as_str(), v, HoltWinters::new)),
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

impl DetectorConfig for RobustZConfig {}
impl DetectorConfig for SeasonalConfig {}
impl DetectorConfig for CusumConfig {}
impl DetectorConfig for LagChangeConfig {}
impl DetectorConfig for DensityConfig {}
impl DetectorConfig for SpectralConfig {}
impl DetectorConfig for IForestConfig {}
impl DetectorConfig for NoveltyConfig {}
impl DetectorConfig for HoltWintersConfig {}
