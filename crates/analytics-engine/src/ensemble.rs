//! The default ensemble: several detectors that see different kinds of anomaly, each calibrated
//! on its own history, combined by taking the most surprising.
//!
//! Default members: the robust rolling z-score (spikes), the seasonal baseline (values out of
//! place for the time of day or week), spike density (clusters of spikes, bursts of volatility)
//! and context novelty (patterns never seen on this series); CUSUM and Holt-Winters can be added.
//! Each member's raw score goes through its own calibrator, so all speak in the same unit (the
//! tail probability of that member on this series); by default the ensemble reports the smallest
//! member tail probability times the number of members (Bonferroni's correction for asking
//! several members), as a score the engine does not calibrate again.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::calibrate::{tail_to_score, CalibrationConfig, Calibrator};
use crate::cusum::{Cusum, CusumConfig};
use crate::density::{Density, DensityConfig};
use crate::detector::{Detector, DetectorState};
use crate::holt_winters::{HoltWinters, HoltWintersConfig};
use crate::novelty::{Novelty, NoveltyConfig};
use crate::seasonal::{Seasonal, SeasonalConfig};
use crate::zscore::{RobustZ, RobustZConfig};
use crate::EngineError;

/// Parameters of the ensemble: each member's, and which members take part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnsembleConfig {
    /// Members taking part, by name: robust_zscore, seasonal_baseline, spike_density,
    /// context_novelty, cusum, holt_winters.
    pub members: Vec<String>,
    /// The robust z-score member.
    pub robust_zscore: RobustZConfig,
    /// The seasonal baseline member.
    pub seasonal_baseline: SeasonalConfig,
    /// The CUSUM member.
    pub cusum: CusumConfig,
    /// The Holt-Winters member.
    pub holt_winters: HoltWintersConfig,
    /// The spike-density member.
    pub spike_density: DensityConfig,
    /// The context-novelty member.
    pub context_novelty: NoveltyConfig,
    /// Calibration of each member's raw score.
    pub member_calibration: CalibrationConfig,
    /// How member scores combine: `max` (the most surprising member) or `mean` (the mean of
    /// member scores, i.e. of their -log10 tail probabilities, as in Fisher's method: agreement
    /// between members counts).
    pub combine: Combine,
}

/// How the ensemble combines its members' calibrated scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Combine {
    /// The largest member score.
    Max,
    /// The mean of member scores.
    Mean,
    /// The largest member raw score, uncalibrated (for members that all score robust z).
    MaxRaw,
    /// The smallest member tail probability times the number of members (Bonferroni), as a
    /// score: already calibrated, so the engine does not calibrate it again.
    Bonferroni,
}

impl Default for EnsembleConfig {
    fn default() -> Self {
        Self {
            members: ["robust_zscore", "seasonal_baseline", "spike_density", "context_novelty"]
                .map(String::from)
                .to_vec(),
            robust_zscore: RobustZConfig::default(),
            // In the ensemble the seasonal member watches short departures from the daily cycle
            // (the z-score member keeps the longer view): a shorter residual memory, 15-minute
            // bins (each expected value averages more points; 96 bins instead of 288), and no
            // weekly profile (it needs a full week of history before it predicts anything).
            // Measured on NAB: 69.07 / 59.29 / 74.61 with the member's own defaults, 70.28 /
            // 60.96 / 75.44 with these; the per-series state drops by 9.4 KiB.
            seasonal_baseline: SeasonalConfig {
                periods_seconds: vec![86_400],
                bin_seconds: 900,
                residual_window: 32,
                ..SeasonalConfig::default()
            },
            cusum: CusumConfig::default(),
            holt_winters: HoltWintersConfig::default(),
            spike_density: DensityConfig::default(),
            context_novelty: NoveltyConfig::default(),
            member_calibration: CalibrationConfig::default(),
            combine: Combine::Bonferroni,
        }
    }
}

/// The ensemble detector.
#[derive(Debug)]
pub struct Ensemble {
    members: Vec<Box<dyn Detector>>,
    calibration: CalibrationConfig,
    combine: Combine,
}

impl Ensemble {
    /// Builds the members named in the configuration.
    pub fn new(cfg: EnsembleConfig) -> Result<Self, EngineError> {
        cfg.member_calibration.check()?;
        if cfg.members.is_empty() {
            return Err(EngineError::bad_param("members", "[]", "at least one member"));
        }
        let members = cfg
            .members
            .iter()
            .map(|m| -> Result<Box<dyn Detector>, EngineError> {
                Ok(match m.as_str() {
                    "robust_zscore" => Box::new(RobustZ::new(cfg.robust_zscore.clone())?),
                    "seasonal_baseline" => Box::new(Seasonal::new(cfg.seasonal_baseline.clone())?),
                    "cusum" => Box::new(Cusum::new(cfg.cusum.clone())?),
                    "holt_winters" => Box::new(HoltWinters::new(cfg.holt_winters.clone())?),
                    "spike_density" => Box::new(Density::new(cfg.spike_density.clone())?),
                    "context_novelty" => Box::new(Novelty::new(cfg.context_novelty.clone())?),
                    other => return Err(EngineError::bad_param(
                        "members",
                        other,
                        "one of robust_zscore, seasonal_baseline, cusum, holt_winters, spike_density, context_novelty",
                    )),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { members, calibration: cfg.member_calibration, combine: cfg.combine })
    }
}

impl Detector for Ensemble {
    fn name(&self) -> &'static str {
        "ensemble"
    }
    fn is_calibrated(&self) -> bool {
        self.combine == Combine::Bonferroni
    }

    fn start(&self) -> Box<dyn DetectorState> {
        Box::new(EnsembleState {
            members: self.members.iter().map(|m| (m.start(), Calibrator::new(self.calibration.clone()))).collect(),
            combine: self.combine,
        })
    }
}

#[derive(Debug)]
struct EnsembleState {
    members: Vec<(Box<dyn DetectorState>, Calibrator)>,
    combine: Combine,
}

impl DetectorState for EnsembleState {
    fn update(&mut self, t: DateTime<Utc>, x: f64) -> Option<f64> {
        let (mut best, mut sum, mut ready, mut best_raw, mut min_tail) = (0.0f64, 0.0, 0usize, 0.0f64, 1.0f64);
        // Bonferroni needs the smallest tail only; the score (a logarithm) only for max and mean.
        let needs_scores = matches!(self.combine, Combine::Max | Combine::Mean);
        for (state, calibrator) in &mut self.members {
            let raw = state.update(t, x);
            let tail = calibrator.update_tail(raw.unwrap_or(0.0), raw.is_none());
            if let Some(r) = raw {
                if needs_scores {
                    let score = tail_to_score(tail);
                    best = best.max(score);
                    sum += score;
                }
                best_raw = best_raw.max(r);
                min_tail = min_tail.min(tail);
                ready += 1;
            }
        }
        // Scored once every member is past its warm-up, so the combination means the same
        // thing from point to point.
        (ready == self.members.len()).then(|| match self.combine {
            Combine::Max => best,
            Combine::Mean => sum / ready as f64,
            Combine::MaxRaw => best_raw,
            Combine::Bonferroni => tail_to_score((ready as f64 * min_tail).min(1.0)),
        })
    }

    fn state_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.members.iter().map(|(s, c)| s.state_bytes() + c.state_bytes()).sum::<usize>()
    }
}
