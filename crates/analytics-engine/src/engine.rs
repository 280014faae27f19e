//! Engines: a detector plus calibration, an alarm rule, windowing and labelling.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use analytics_explain::{classify, explain_series, Shape, ShapeConfig};
use analytics_numerics::seasonality::detect_period;
use analytics_types::{AnomalyLabel, AnomalyResult, MetricSeries};
use analytics_windows::TimeWindows;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::checkpoint;
use crate::detector::{Detector, DetectorState};
use crate::scoring::alarm::{AlarmConfig, AlarmState, Rest};
use crate::scoring::calibrate::{CalibrationConfig, SCORE_DECADES};
use crate::scoring::calibrated::Calibrated;
use crate::EngineError;

/// What an engine makes of a whole series: per-point scores and the alarm events.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    /// Raw detector scores (`None` while warming up).
    pub raw: Vec<Option<f64>>,
    /// Calibrated scores in [0, 1], as reported (0 during an alarm's rest period).
    pub calibrated: Vec<f64>,
    /// The evidence behind each score: `-log10` of its tail probability, not capped at 10
    /// decades as the score is (`calibrated = min(1, decades / 10)`; 0 where the score is 0).
    /// Two points that both score 1 keep their order here.
    pub decades: Vec<f64>,
    /// Alarm events, as index ranges, in order.
    pub events: Vec<Range<usize>>,
}

/// The engine abstraction of the platform: `detect` and `explain` a series.
pub trait AnomalyDetectionEngine: Send + Sync + fmt::Debug {
    /// The engine's registry name.
    fn name(&self) -> &str;

    /// The engine's full configuration, defaults filled in.
    fn config(&self) -> serde_json::Value;

    /// A fresh per-series streaming state: feed points, get calibrated scores and closed events.
    fn stream(&self) -> Box<dyn EngineStream>;

    /// A stream saved by [`EngineStream::save`], resumed where it stopped: fed the same points
    /// afterwards, it gives the same scores and events as the stream that was saved. Refused
    /// ([`EngineError::BadCheckpoint`]) when the bytes are damaged or were saved by another
    /// engine or another configuration of this one.
    fn resume(&self, saved: &[u8]) -> Result<Box<dyn EngineStream>, EngineError>;

    /// Causal per-point scores and alarm events over a whole series (the batch path).
    fn score(&self, series: &MetricSeries) -> Scores;

    /// One [`AnomalyResult`] per window of the series: the window's highest calibrated score,
    /// and the label, explanation and evidence of the strongest alarm event in it (`normal`
    /// when no event touches the window).
    fn detect(&self, series: &MetricSeries) -> Result<Vec<AnomalyResult>, EngineError>;

    /// The explanation sentence for a result of this series, measured from the series over the
    /// result's event (the series is scored again only for a result that recorded no event).
    fn explain(&self, series: &MetricSeries, result: &AnomalyResult) -> Result<String, EngineError>;

    /// The online protocol of the benchmarks: the points fed one by one through a fresh
    /// [`stream`](Self::stream), in order, then the stream finished; its scores and its alarm
    /// events as index ranges (the same as [`score`](Self::score)'s, which tests check, without
    /// needing a validated [`MetricSeries`]: a benchmark file may repeat a timestamp).
    fn stream_series(&self, timestamps: &[DateTime<Utc>], values: &[f64]) -> (Vec<f64>, Vec<Range<usize>>) {
        let mut stream = self.stream();
        let mut scores = Vec::with_capacity(values.len());
        let mut events = Vec::new();
        for (&t, &x) in timestamps.iter().zip(values) {
            let (score, closed) = stream.update(t, x);
            scores.push(score);
            events.extend(closed);
        }
        events.extend(stream.finish());
        (scores, events)
    }
}

/// The per-series streaming state of an engine.
pub trait EngineStream: Send + fmt::Debug {
    /// Takes the next point: its calibrated score, and an alarm event if one just closed.
    fn update(&mut self, t: DateTime<Utc>, x: f64) -> (f64, Option<Range<usize>>);
    /// The evidence behind the last score: `-log10` of its tail probability, not capped at 10
    /// decades as the score is (0 where the score is 0), as [`Scores::decades`] has it in the
    /// batch path. Two points that both score 1 keep their order here.
    fn decades(&self) -> f64;
    /// Closes the open event at the end of the data.
    fn finish(&mut self) -> Option<Range<usize>>;
    /// Bytes of state held for this series.
    fn state_bytes(&self) -> usize;
    /// The whole state as bytes (postcard), tagged with the engine and its configuration, for
    /// [`AnomalyDetectionEngine::resume`].
    fn save(&self) -> Result<Vec<u8>, EngineError>;
}

/// How results are windowed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WindowingConfig {
    /// Width of the tumbling result windows, in seconds, aligned to the epoch (3600: on the hour).
    pub width_seconds: i64,
}

impl Default for WindowingConfig {
    fn default() -> Self {
        Self { width_seconds: 3600 }
    }
}

/// What a detector's configuration says about the engine around it: the alarm rule it is
/// scored with by default (the rest period suits some detectors better than others).
pub trait DetectorConfig {
    /// The alarm rule of an engine built on this detector, unless configured.
    fn default_alarm() -> AlarmConfig {
        AlarmConfig::default()
    }
}

/// The parts of an engine's configuration that every detector-based engine shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig<D: DetectorConfig + Default> {
    /// The detector's own parameters.
    pub detector: D,
    /// Raw score to [0, 1].
    pub calibration: CalibrationConfig,
    /// Scores to alarm events.
    pub alarm: AlarmConfig,
    /// Result windows.
    pub windows: WindowingConfig,
    /// Labelling thresholds.
    pub shape: ShapeConfig,
}

impl<D: DetectorConfig + Default> Default for EngineConfig<D> {
    fn default() -> Self {
        Self {
            detector: D::default(),
            calibration: CalibrationConfig::default(),
            alarm: D::default_alarm(),
            windows: WindowingConfig::default(),
            shape: ShapeConfig::default(),
        }
    }
}

/// An engine made of a calibrated [`Detector`] (its raw score the surprise in decades over ten,
/// as [`Calibrated`] makes it) with an alarm rule, windows and labels: [`DetectorEngine::new`]
/// puts a calibrator after any detector; [`DetectorEngine::of_calibrated`] takes a detector that
/// calibrates itself (the default ensemble).
#[derive(Debug)]
pub struct DetectorEngine<D: Detector> {
    // Shared by every result the engine makes.
    name: Arc<str>,
    detector: D,
    alarm: AlarmConfig,
    windows: TimeWindows,
    shape: ShapeConfig,
    config_json: serde_json::Value,
    /// The engine's name and configuration as one number, written into every saved stream.
    fingerprint: u64,
}

impl<D: Detector + 'static> DetectorEngine<Calibrated<D>> {
    /// Builds the engine of `detector` with the calibrator of `cfg.calibration` after it, after
    /// checking every part of its configuration.
    pub fn new<C: Serialize + DetectorConfig + Default>(
        name: &str,
        detector: D,
        cfg: EngineConfig<C>,
    ) -> Result<Self, EngineError> {
        let detector = Calibrated::new(detector, cfg.calibration.clone())?;
        DetectorEngine::of_calibrated(name, detector, cfg)
    }
}

/// Written into every saved stream's fingerprint beside the engine's name and configuration:
/// raised when the saved layout changes, so that a service refuses (and starts afresh) the
/// streams an older build saved. 2: the calibrator saved with the detector ([`Calibrated`]).
const SAVED_LAYOUT: u32 = 2;

impl<D: Detector + 'static> DetectorEngine<D> {
    /// Builds the engine of a detector whose raw score is already calibrated (the surprise in
    /// decades over ten, as [`Calibrated`] gives it; `cfg.calibration` is then not used), after
    /// checking every part of its configuration.
    pub fn of_calibrated<C: Serialize + DetectorConfig + Default>(
        name: &str,
        detector: D,
        cfg: EngineConfig<C>,
    ) -> Result<Self, EngineError> {
        cfg.calibration.check()?;
        cfg.alarm.check()?;
        if cfg.windows.width_seconds <= 0 {
            return Err(EngineError::bad_param("windows.width_seconds", cfg.windows.width_seconds, "positive"));
        }
        let windows = TimeWindows::tumbling(TimeDelta::seconds(cfg.windows.width_seconds))
            .map_err(|e| EngineError::BadConfig { engine: name.to_owned(), message: e.to_string() })?;
        let config_json = serde_json::to_value(&cfg)
            .map_err(|e| EngineError::Internal(format!("engine config does not serialise: {e}")))?;
        let EngineConfig { alarm, shape, .. } = cfg;
        let fingerprint = checkpoint::fingerprint(
            &serde_json::json!({ "engine": name, "config": config_json, "layout": SAVED_LAYOUT }),
        );
        Ok(Self { name: Arc::from(name), detector, alarm, windows, shape, config_json, fingerprint })
    }

    fn label_events(&self, series: &MetricSeries, events: &[Range<usize>]) -> Result<Vec<Shape>, EngineError> {
        let period = if events.is_empty() { None } else { detect_period(series.timestamps(), series.values()) };
        events
            .iter()
            .map(|e| Ok(classify(series.timestamps(), series.values(), e.clone(), period, &self.shape)?))
            .collect()
    }
}

/// A point's score after the rest period: the uncapped score capped to [0, 1], then held at 0
/// while the rest period lasts.
fn rested(rest: &mut Rest, t: DateTime<Utc>, uncapped: f64) -> f64 {
    rest.apply(t, uncapped.clamp(0.0, 1.0))
}

/// Scores, their evidence and the alarm events of a whole series of calibrated raw scores (the
/// batch path).
fn score_all(alarm_cfg: &AlarmConfig, timestamps: &[DateTime<Utc>], raw: Vec<Option<f64>>) -> Scores {
    let mut rest = Rest::new(alarm_cfg);
    let mut alarm = AlarmState::new(alarm_cfg.clone());
    let mut events = Vec::new();
    let (mut calibrated, mut decades) = (Vec::with_capacity(raw.len()), Vec::with_capacity(raw.len()));
    for (&r, &t) in raw.iter().zip(timestamps) {
        let uncapped = r.unwrap_or(0.0);
        let score = rested(&mut rest, t, uncapped);
        // The evidence goes with the score: 0 while the rest period holds the score at 0.
        let evidence = if score > 0.0 { uncapped * SCORE_DECADES } else { 0.0 };
        events.extend(alarm.update(score));
        calibrated.push(score);
        decades.push(evidence);
    }
    events.extend(alarm.finish());
    Scores { raw, calibrated, decades, events }
}

/// The per-series stream of an engine: its calibrated detector's state, the rest period and the
/// alarm rule.
#[derive(Debug)]
struct Stream {
    detector: Box<dyn DetectorState>,
    rest: Rest,
    alarm: AlarmState,
    /// The last score's evidence, in decades.
    decades: f64,
    /// The engine's [`DetectorEngine::fingerprint`].
    fingerprint: u64,
}

/// A [`Stream`] as saved: the detector's own bytes beside the engine's parts.
#[derive(Serialize, Deserialize)]
struct SavedStream {
    fingerprint: u64,
    detector: Vec<u8>,
    rest: Rest,
    alarm: AlarmState,
    decades: f64,
}

impl EngineStream for Stream {
    fn update(&mut self, t: DateTime<Utc>, x: f64) -> (f64, Option<Range<usize>>) {
        let uncapped = self.detector.update(t, x).unwrap_or(0.0);
        let score = rested(&mut self.rest, t, uncapped);
        // As the batch path has it: the evidence goes with the score, 0 while the rest period
        // holds the score at 0.
        self.decades = if score > 0.0 { uncapped * SCORE_DECADES } else { 0.0 };
        (score, self.alarm.update(score))
    }

    fn decades(&self) -> f64 {
        self.decades
    }

    fn finish(&mut self) -> Option<Range<usize>> {
        self.alarm.finish()
    }

    /// The stream's own struct (the rest period and alarm rule are inline in it) and the
    /// detector state it points to (which counts its own struct, its calibrator, and what it
    /// holds).
    fn state_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.detector.state_bytes()
    }

    fn save(&self) -> Result<Vec<u8>, EngineError> {
        let saved = SavedStream {
            fingerprint: self.fingerprint,
            detector: self.detector.save()?,
            rest: self.rest.clone(),
            alarm: self.alarm.clone(),
            decades: self.decades,
        };
        checkpoint::encode("engine", &saved)
    }
}

impl<D: Detector + 'static> AnomalyDetectionEngine for DetectorEngine<D> {
    fn name(&self) -> &str {
        &self.name
    }

    fn config(&self) -> serde_json::Value {
        self.config_json.clone()
    }

    fn stream(&self) -> Box<dyn EngineStream> {
        let (detector, rest, alarm) =
            (self.detector.start(), Rest::new(&self.alarm), AlarmState::new(self.alarm.clone()));
        Box::new(Stream { detector, rest, alarm, decades: 0.0, fingerprint: self.fingerprint })
    }

    fn resume(&self, saved: &[u8]) -> Result<Box<dyn EngineStream>, EngineError> {
        let saved: SavedStream = checkpoint::decode(&self.name, saved)?;
        if saved.fingerprint != self.fingerprint {
            let message = "saved by another engine or another configuration".to_owned();
            return Err(EngineError::BadCheckpoint { engine: self.name.to_string(), message });
        }
        let detector = self.detector.resume(&saved.detector).map_err(|e| match e {
            EngineError::BadCheckpoint { message, .. } => {
                EngineError::BadCheckpoint { engine: self.name.to_string(), message }
            }
            other => other,
        })?;
        let SavedStream { rest, alarm, decades, fingerprint, .. } = saved;
        Ok(Box::new(Stream { detector, rest, alarm, decades, fingerprint }))
    }

    fn score(&self, series: &MetricSeries) -> Scores {
        score_all(&self.alarm, series.timestamps(), self.detector.score_batch(series.timestamps(), series.values()))
    }

    fn detect(&self, series: &MetricSeries) -> Result<Vec<AnomalyResult>, EngineError> {
        let scores = self.score(series);
        let shapes = self.label_events(series, &scores.events)?;
        let key = series.key();
        let mut results = Vec::new();
        for w in self.windows.over(series.timestamps()) {
            let window_score = scores.calibrated[w.range.clone()].iter().copied().fold(0.0, f64::max);
            let window_decades = scores.decades[w.range.clone()].iter().copied().fold(0.0, f64::max);
            // The strongest event touching this window names its label.
            let strongest = scores
                .events
                .iter()
                .zip(&shapes)
                .filter(|(e, _)| e.start < w.range.end && w.range.start < e.end)
                .max_by(|(a, _), (b, _)| peak(&scores.decades, a).total_cmp(&peak(&scores.decades, b)));
            let (start, end) = (w.start.unwrap_or_default(), w.end.unwrap_or_default());
            let mut result =
                AnomalyResult::new(key.clone(), start, end, window_score.clamp(0.0, 1.0), AnomalyLabel::Normal)
                    .map_err(|e| EngineError::Internal(e.to_string()))?;
            if let Some((_, shape)) = strongest {
                result = AnomalyResult::new(key.clone(), start, end, window_score.clamp(0.0, 1.0), shape.label)
                    .and_then(|r| r.with_evidence(shape.evidence.clone()))
                    .map_err(|e| EngineError::Internal(e.to_string()))?
                    .with_explanation(explain_series(&key, None, shape));
            }
            let result = result.with_decades(window_decades).map_err(|e| EngineError::Internal(e.to_string()))?;
            results.push(result.with_engine(self.name.clone()));
        }
        Ok(results)
    }

    fn explain(&self, series: &MetricSeries, result: &AnomalyResult) -> Result<String, EngineError> {
        if series.key() != result.key() {
            return Err(EngineError::WrongSeries {
                series: series.key().to_string(),
                result: result.key().to_string(),
            });
        }
        let ts = series.timestamps();
        let lo = ts.partition_point(|&t| t < result.window_start());
        let hi = ts.partition_point(|&t| t < result.window_end()).max(lo + 1).min(ts.len());
        if lo >= ts.len() {
            return Err(EngineError::WindowOutsideSeries { window_start: result.window_start() });
        }
        // The result's own event when it recorded one (no re-scoring); for a result without one
        // (written before events were recorded), the strongest event inside the window, found
        // by scoring the series again, or the window itself when none.
        let recorded = result.evidence().and_then(|e| e.event_span()).map(|(start, end)| {
            let a = ts.partition_point(|&t| t < start);
            a..ts.partition_point(|&t| t < end).max(a + 1).min(ts.len())
        });
        let event = match recorded.filter(|r| r.start < ts.len()) {
            Some(event) => event,
            None => {
                let scores = self.score(series);
                scores
                    .events
                    .iter()
                    .filter(|e| e.start < hi && lo < e.end)
                    .max_by(|a, b| peak(&scores.decades, a).total_cmp(&peak(&scores.decades, b)))
                    .cloned()
                    .unwrap_or(lo..hi)
            }
        };
        let shape = self.label_events(series, std::slice::from_ref(&event))?.remove(0);
        Ok(explain_series(&series.key(), None, &shape))
    }
}

fn peak(scores: &[f64], range: &Range<usize>) -> f64 {
    scores[range.clone()].iter().copied().fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ensemble::{fullest_state, Ensemble, EnsembleConfig};

    /// The default engine's state per series stays under 4 KiB at every point of a series'
    /// first three days (warm-up buffers included), counting the stream's own struct; so does
    /// the former default (context novelty and the recurrence memory on) with a full memory
    /// (32 events, the most it keeps).
    #[test]
    fn the_default_state_per_series_stays_under_4_kib() {
        let ensemble = Ensemble::new(EnsembleConfig::default()).unwrap();
        let engine =
            DetectorEngine::of_calibrated("default", ensemble, EngineConfig::<EnsembleConfig>::default()).unwrap();
        let mut stream = engine.stream();
        let t0 = DateTime::UNIX_EPOCH + TimeDelta::days(20_000);
        let mut largest = stream.state_bytes();
        for i in 0..3 * 1440 {
            let x = 50.0 + 10.0 * (f64::from(i) * std::f64::consts::TAU / 1440.0).sin() + f64::from(i % 7) * 0.1;
            stream.update(t0 + TimeDelta::minutes(i64::from(i)), x);
            largest = largest.max(stream.state_bytes());
        }
        assert!(largest < 4096, "{largest} bytes at the largest");

        let mut former = EnsembleConfig::default();
        former.members.push(crate::DetectorKind::ContextNovelty);
        former.recurrence.bin_seconds = 480;
        let ensemble = Ensemble::new(former).unwrap();
        let alarm = AlarmConfig::default();
        let full = Stream {
            detector: fullest_state(&ensemble, 3 * 1440),
            rest: Rest::new(&alarm),
            alarm: AlarmState::new(alarm),
            decades: 0.0,
            fingerprint: 0,
        };
        assert!(full.state_bytes() < 4096, "{} bytes with a full recurrence memory", full.state_bytes());
    }
}
