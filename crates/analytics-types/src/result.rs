//! `AnomalyResult`: the verdict on one window of one series, with its label and evidence.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{ClusterId, ContractError, MetricName, NodeId, SeriesKey, TenantId};

/// How a window misbehaves.
///
/// - `spike`: a short rise above the expected value, after which the series comes back;
/// - `dip`: a short fall below the expected value, after which the series comes back;
/// - `level_shift`: an abrupt move to a new level, held for the event (and after it, unless the
///   series came back);
/// - `trend`: a gradual move of level (a ramp), the change growing over the event;
/// - `variance_change`: the level stays, the point-to-point spread changes (noisier or stiller);
/// - `seasonal`: a value that would be normal at another phase of the cycle but not at this one;
/// - `normal`: none of the above.
///
/// `dip`, `level_shift` and `variance_change` were added after the first contract: older
/// readers that know only the other four refuse them by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyLabel {
    /// Short excursion above the expected value that returns to it.
    Spike,
    /// Short excursion below the expected value that returns to it.
    Dip,
    /// Abrupt change to a new level.
    LevelShift,
    /// Gradual change of level: the deviation grows over the event.
    Trend,
    /// Change of the point-to-point spread, the level unchanged.
    VarianceChange,
    /// Out of pattern for this phase of the cycle.
    Seasonal,
    /// Nothing anomalous.
    Normal,
}

impl AnomalyLabel {
    /// Every label, in a fixed order (spike, dip, level shift, trend, variance change,
    /// seasonal, normal).
    pub const ALL: [AnomalyLabel; 7] = [
        AnomalyLabel::Spike,
        AnomalyLabel::Dip,
        AnomalyLabel::LevelShift,
        AnomalyLabel::Trend,
        AnomalyLabel::VarianceChange,
        AnomalyLabel::Seasonal,
        AnomalyLabel::Normal,
    ];

    /// The name used in JSON and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyLabel::Spike => "spike",
            AnomalyLabel::Dip => "dip",
            AnomalyLabel::LevelShift => "level_shift",
            AnomalyLabel::Trend => "trend",
            AnomalyLabel::VarianceChange => "variance_change",
            AnomalyLabel::Seasonal => "seasonal",
            AnomalyLabel::Normal => "normal",
        }
    }
}

/// In words, for sentences: `level shift`, `variance change`; [`AnomalyLabel::as_str`] gives the
/// name JSON and the store use (`level_shift`).
impl fmt::Display for AnomalyLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AnomalyLabel::LevelShift => "level shift",
            AnomalyLabel::VarianceChange => "variance change",
            other => other.as_str(),
        })
    }
}

impl FromStr for AnomalyLabel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AnomalyLabel::ALL.into_iter().find(|l| l.as_str() == s).ok_or_else(|| {
            format!("unknown label {s:?}; expected spike, dip, level_shift, trend, variance_change, seasonal or normal")
        })
    }
}

/// The measurements behind a label, in the metric's own units where a unit applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawEvidence")]
pub struct Evidence {
    /// Largest deviation from the expected value, in robust standard deviations (signed).
    pub deviation_sigma: f64,
    /// The value at the largest deviation.
    pub peak_value: f64,
    /// When the largest deviation happened.
    pub peak_time: DateTime<Utc>,
    /// The baseline the deviation is measured against (median of the context before the event).
    pub baseline: f64,
    /// Robust standard deviation of the context (1.4826 x MAD), in the metric's units.
    pub sigma: f64,
    /// Level just before the event (median).
    pub level_before: f64,
    /// Level just after the event (median), when points after it exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level_after: Option<f64>,
    /// Value expected at this phase of the detected cycle, when the series is seasonal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_seasonal: Option<f64>,
    /// Detected period of the cycle, in seconds, when the series is seasonal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<i64>,
    /// Duration of the event, from its first to its last point plus one sampling step, in seconds.
    pub duration_seconds: i64,
    /// Number of points in the event.
    pub num_points: usize,
    /// First point of the event (absent in results written before events were recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_start: Option<DateTime<Utc>>,
    /// Median of the event's own values: the new level of a level shift, the level a variance
    /// change kept (absent for other labels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level_during: Option<f64>,
    /// Point-to-point spread before the event (robust standard deviation of successive changes,
    /// divided by the square root of 2 so that it reads as the noise's standard deviation), in
    /// the metric's units; set for variance changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread_before: Option<f64>,
    /// The same spread over the event's own points; set for variance changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread_during: Option<f64>,
}

#[derive(Deserialize)]
struct RawEvidence {
    deviation_sigma: f64,
    peak_value: f64,
    peak_time: DateTime<Utc>,
    baseline: f64,
    sigma: f64,
    level_before: f64,
    #[serde(default)]
    level_after: Option<f64>,
    #[serde(default)]
    expected_seasonal: Option<f64>,
    #[serde(default)]
    period_seconds: Option<i64>,
    duration_seconds: i64,
    num_points: usize,
    #[serde(default)]
    event_start: Option<DateTime<Utc>>,
    #[serde(default)]
    level_during: Option<f64>,
    #[serde(default)]
    spread_before: Option<f64>,
    #[serde(default)]
    spread_during: Option<f64>,
}

impl TryFrom<RawEvidence> for Evidence {
    type Error = ContractError;
    fn try_from(r: RawEvidence) -> Result<Self, Self::Error> {
        let e = Evidence {
            deviation_sigma: r.deviation_sigma,
            peak_value: r.peak_value,
            peak_time: r.peak_time,
            baseline: r.baseline,
            sigma: r.sigma,
            level_before: r.level_before,
            level_after: r.level_after,
            expected_seasonal: r.expected_seasonal,
            period_seconds: r.period_seconds,
            duration_seconds: r.duration_seconds,
            num_points: r.num_points,
            event_start: r.event_start,
            level_during: r.level_during,
            spread_before: r.spread_before,
            spread_during: r.spread_during,
        };
        e.validate()?;
        Ok(e)
    }
}

impl Evidence {
    /// The event's first point and its end (last point plus one sampling step), when the
    /// event's start was recorded.
    pub fn event_span(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        self.event_start.map(|s| (s, s + chrono::TimeDelta::seconds(self.duration_seconds)))
    }

    /// Checks that every number is finite.
    pub fn validate(&self) -> Result<(), ContractError> {
        let fields = [
            ("deviation_sigma", Some(self.deviation_sigma)),
            ("peak_value", Some(self.peak_value)),
            ("baseline", Some(self.baseline)),
            ("sigma", Some(self.sigma)),
            ("level_before", Some(self.level_before)),
            ("level_after", self.level_after),
            ("expected_seasonal", self.expected_seasonal),
            ("level_during", self.level_during),
            ("spread_before", self.spread_before),
            ("spread_during", self.spread_during),
        ];
        for (field, value) in fields {
            if let Some(value) = value.filter(|v| !v.is_finite()) {
                return Err(ContractError::NonFiniteEvidence { field, value });
            }
        }
        Ok(())
    }
}

/// Checks that evidence in decades is finite and at least 0.
pub(crate) fn check_decades(value: f64) -> Result<f64, ContractError> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(ContractError::BadDecades { value })
    }
}

/// Checks that a score is a number in [0, 1].
pub(crate) fn check_score(field: &'static str, value: f64) -> Result<(), ContractError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(ContractError::ScoreOutOfRange { field, value })
    }
}

/// The verdict on one window of one series.
///
/// `anomaly_score` is in [0, 1], higher is more anomalous; `window_start <= window_end`.
/// The optional fields (`decades`, `engine`, `explanation`, `evidence`) are additions to the original
/// contract: old JSON without them still parses, and they are omitted from JSON when absent.
///
/// ```
/// use analytics_types::{AnomalyLabel, AnomalyResult, MetricSeries};
/// use chrono::{TimeZone, Utc};
///
/// let t = Utc.with_ymd_and_hms(2024, 1, 1, 14, 5, 0).unwrap();
/// let series = MetricSeries::new("acme", "prod", "node-7", "cpu_usage", vec![t], vec![97.2])?;
/// let result = AnomalyResult::new(series.key(), t, t, 0.99, AnomalyLabel::Spike)?;
/// assert_eq!(result.anomaly_label(), AnomalyLabel::Spike);
/// assert!(AnomalyResult::new(series.key(), t, t, 1.5, AnomalyLabel::Spike).is_err());
/// # Ok::<(), analytics_types::ContractError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawAnomalyResult")]
pub struct AnomalyResult {
    tenant_id: TenantId,
    cluster_id: ClusterId,
    node_id: NodeId,
    metric_name: MetricName,
    window_start: DateTime<Utc>,
    window_end: DateTime<Utc>,
    anomaly_score: f64,
    anomaly_label: AnomalyLabel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    decades: Option<f64>,
    // Shared: every result of an engine names it, and a fleet run makes tens of thousands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    engine: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    explanation: Option<String>,
    // Boxed: most results are normal windows without evidence, and the evidence is larger than
    // the rest of the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    evidence: Option<Box<Evidence>>,
}

#[derive(Deserialize)]
struct RawAnomalyResult {
    tenant_id: TenantId,
    cluster_id: ClusterId,
    node_id: NodeId,
    metric_name: MetricName,
    window_start: DateTime<Utc>,
    window_end: DateTime<Utc>,
    anomaly_score: f64,
    anomaly_label: AnomalyLabel,
    #[serde(default)]
    decades: Option<f64>,
    #[serde(default)]
    engine: Option<String>,
    #[serde(default)]
    explanation: Option<String>,
    #[serde(default)]
    evidence: Option<Evidence>,
}

impl TryFrom<RawAnomalyResult> for AnomalyResult {
    type Error = ContractError;
    fn try_from(r: RawAnomalyResult) -> Result<Self, Self::Error> {
        let key = SeriesKey {
            tenant_id: r.tenant_id,
            cluster_id: r.cluster_id,
            node_id: r.node_id,
            metric_name: r.metric_name,
        };
        let mut result = AnomalyResult::new(key, r.window_start, r.window_end, r.anomaly_score, r.anomaly_label)?;
        result.engine = r.engine.map(Arc::from);
        result.explanation = r.explanation;
        if let Some(evidence) = r.evidence {
            result = result.with_evidence(evidence)?;
        }
        if let Some(decades) = r.decades {
            result = result.with_decades(decades)?;
        }
        Ok(result)
    }
}

impl AnomalyResult {
    /// Validates and builds a result without the optional fields.
    pub fn new(
        key: SeriesKey,
        window_start: DateTime<Utc>,
        window_end: DateTime<Utc>,
        anomaly_score: f64,
        anomaly_label: AnomalyLabel,
    ) -> Result<Self, ContractError> {
        check_score("anomaly_score", anomaly_score)?;
        if window_start > window_end {
            return Err(ContractError::WindowReversed { window_start, window_end });
        }
        let SeriesKey { tenant_id, cluster_id, node_id, metric_name } = key;
        Ok(Self {
            tenant_id,
            cluster_id,
            node_id,
            metric_name,
            window_start,
            window_end,
            anomaly_score,
            anomaly_label,
            engine: None,
            explanation: None,
            evidence: None,
            decades: None,
        })
    }

    /// Names the engine that produced the result (an `Arc<str>` is shared, not copied).
    pub fn with_engine(mut self, engine: impl Into<Arc<str>>) -> Self {
        self.engine = Some(engine.into());
        self
    }

    /// Attaches the explanation sentence.
    pub fn with_explanation(mut self, explanation: impl Into<String>) -> Self {
        self.explanation = Some(explanation.into());
        self
    }

    /// Attaches the evidence behind the score: `-log10` of the tail probability of the window's
    /// most surprising point, not capped at 10 decades as the score is (a score of 1 is 10
    /// decades or more; two results that both score 1 keep their order here). Finite and at
    /// least 0.
    pub fn with_decades(mut self, decades: f64) -> Result<Self, ContractError> {
        self.decades = Some(check_decades(decades)?);
        Ok(self)
    }

    /// The evidence behind the score in decades of tail probability, uncapped, if recorded.
    pub fn decades(&self) -> Option<f64> {
        self.decades
    }

    /// Attaches the evidence behind the label, after checking it.
    pub fn with_evidence(mut self, evidence: Evidence) -> Result<Self, ContractError> {
        evidence.validate()?;
        self.evidence = Some(Box::new(evidence));
        Ok(self)
    }

    /// The tenant.
    pub fn tenant_id(&self) -> &TenantId {
        &self.tenant_id
    }
    /// The cluster.
    pub fn cluster_id(&self) -> &ClusterId {
        &self.cluster_id
    }
    /// The node.
    pub fn node_id(&self) -> &NodeId {
        &self.node_id
    }
    /// The metric.
    pub fn metric_name(&self) -> &MetricName {
        &self.metric_name
    }
    /// The series' identity as one key (cloned).
    pub fn key(&self) -> SeriesKey {
        SeriesKey {
            tenant_id: self.tenant_id.clone(),
            cluster_id: self.cluster_id.clone(),
            node_id: self.node_id.clone(),
            metric_name: self.metric_name.clone(),
        }
    }
    /// First instant of the window.
    pub fn window_start(&self) -> DateTime<Utc> {
        self.window_start
    }
    /// Last instant of the window (inclusive).
    pub fn window_end(&self) -> DateTime<Utc> {
        self.window_end
    }
    /// Score in [0, 1]; higher is more anomalous.
    pub fn anomaly_score(&self) -> f64 {
        self.anomaly_score
    }
    /// The label.
    pub fn anomaly_label(&self) -> AnomalyLabel {
        self.anomaly_label
    }
    /// Whether the label is anything but `normal`.
    pub fn is_anomaly(&self) -> bool {
        self.anomaly_label != AnomalyLabel::Normal
    }
    /// The engine that produced it, if recorded.
    pub fn engine(&self) -> Option<&str> {
        self.engine.as_deref()
    }
    /// The explanation sentence, if any.
    pub fn explanation(&self) -> Option<&str> {
        self.explanation.as_deref()
    }
    /// The evidence behind the label, if any.
    pub fn evidence(&self) -> Option<&Evidence> {
        self.evidence.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_is_small_and_its_identifiers_are_shared() {
        // A fleet run holds one result per series and window (24,000 for 1,000 series over a
        // day): identifiers and the engine's name are shared, the evidence is behind a pointer
        // (with owned strings and the evidence inline it was 376 bytes, and five allocations).
        assert!(std::mem::size_of::<AnomalyResult>() <= 168, "{}", std::mem::size_of::<AnomalyResult>());
        let key = SeriesKey {
            tenant_id: TenantId::new("acme").unwrap(),
            cluster_id: ClusterId::new("prod").unwrap(),
            node_id: NodeId::new("node-1").unwrap(),
            metric_name: MetricName::new("cpu").unwrap(),
        };
        let engine: Arc<str> = Arc::from("default");
        let t = DateTime::<Utc>::UNIX_EPOCH;
        let a = AnomalyResult::new(key.clone(), t, t, 0.5, AnomalyLabel::Normal).unwrap().with_engine(engine.clone());
        let b = AnomalyResult::new(key, t, t, 0.5, AnomalyLabel::Normal).unwrap().with_engine(engine.clone());
        assert!(std::ptr::eq(a.node_id().as_str(), b.node_id().as_str()));
        assert!(std::ptr::eq(a.engine().unwrap(), b.engine().unwrap()));
        assert_eq!(Arc::strong_count(&engine), 3);
        // The JSON is the same as with owned strings.
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"tenant_id":"acme","cluster_id":"prod","node_id":"node-1","metric_name":"cpu","window_start":"1970-01-01T00:00:00Z","window_end":"1970-01-01T00:00:00Z","anomaly_score":0.5,"anomaly_label":"normal","engine":"default"}"#
        );
    }
}
