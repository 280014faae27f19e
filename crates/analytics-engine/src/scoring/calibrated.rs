//! [`Calibrated`]: any detector with a calibrator after it, as one detector whose raw score is
//! already calibrated (the surprise in decades over ten, not capped at 1). The engine takes only
//! such detectors: a single detector through this adapter, the default ensemble as it is (it
//! calibrates each member itself).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::detector::{Detector, DetectorState};
use crate::scoring::calibrate::{CalibrationConfig, Calibrator, SCORE_DECADES};
use crate::{checkpoint, EngineError};

/// A detector whose raw scores are calibrated on the series' own history by a [`Calibrator`]:
/// its score at a point is `-log10` of the raw score's tail probability over ten (1 at ten
/// decades, more beyond; 0 until the calibrator has learnt enough), `None` where the detector is
/// still warming up (the calibrator does not learn from those points).
#[derive(Debug, Clone)]
pub struct Calibrated<D> {
    detector: D,
    calibration: CalibrationConfig,
}

impl<D: Detector> Calibrated<D> {
    /// The detector with a calibrator of this configuration after it.
    pub fn new(detector: D, calibration: CalibrationConfig) -> Result<Self, EngineError> {
        calibration.check()?;
        Ok(Self { detector, calibration })
    }

    /// The detector inside.
    pub fn detector(&self) -> &D {
        &self.detector
    }
}

/// The per-series state: the detector's, and its calibrator.
#[derive(Debug)]
struct CalibratedState {
    detector: Box<dyn DetectorState>,
    calibrator: Calibrator,
}

/// A [`CalibratedState`] as saved: the detector's own bytes beside the calibrator.
#[derive(Serialize, Deserialize)]
struct SavedCalibrated {
    detector: Vec<u8>,
    calibrator: Calibrator,
}

/// The calibrated score of one raw score, as [`Calibrated`] defines it.
#[inline]
fn calibrate(calibrator: &mut Calibrator, raw: Option<f64>) -> Option<f64> {
    let uncapped = calibrator.update_surprise(raw.unwrap_or(0.0), raw.is_none()) / SCORE_DECADES;
    raw.map(|_| uncapped)
}

impl<D: Detector> Detector for Calibrated<D> {
    fn name(&self) -> &'static str {
        self.detector.name()
    }

    fn start(&self) -> Box<dyn DetectorState> {
        Box::new(CalibratedState {
            detector: self.detector.start(),
            calibrator: Calibrator::new(self.calibration.clone()),
        })
    }

    fn resume(&self, saved: &[u8]) -> Result<Box<dyn DetectorState>, EngineError> {
        let saved: SavedCalibrated = checkpoint::decode(self.name(), saved)?;
        Ok(Box::new(CalibratedState { detector: self.detector.resume(&saved.detector)?, calibrator: saved.calibrator }))
    }

    /// The detector's own batch path (which may be faster than its stream), then the
    /// calibrator over its scores in order: the stream's numbers.
    fn score_batch(&self, timestamps: &[DateTime<Utc>], values: &[f64]) -> Vec<Option<f64>> {
        let mut calibrator = Calibrator::new(self.calibration.clone());
        let mut scores = self.detector.score_batch(timestamps, values);
        for s in &mut scores {
            *s = calibrate(&mut calibrator, *s);
        }
        scores
    }
}

impl DetectorState for CalibratedState {
    fn update(&mut self, t: DateTime<Utc>, x: f64) -> Option<f64> {
        let raw = self.detector.update(t, x);
        calibrate(&mut self.calibrator, raw)
    }

    /// This struct (the calibrator is inline in it) and what the detector's state holds.
    fn state_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.detector.state_bytes()
    }

    fn save(&self) -> Result<Vec<u8>, EngineError> {
        let saved = SavedCalibrated { detector: self.detector.save()?, calibrator: self.calibrator.clone() };
        checkpoint::encode("calibrated", &saved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RobustZ, RobustZConfig};
    use chrono::TimeDelta;

    fn series() -> (Vec<DateTime<Utc>>, Vec<f64>) {
        let t0 = DateTime::UNIX_EPOCH + TimeDelta::days(20_000);
        let ts = (0..3000).map(|i| t0 + TimeDelta::minutes(i)).collect();
        let mut vs: Vec<f64> = (0..3000).map(|i| 50.0 + f64::from(i % 13) * 0.7 + f64::from(i % 5) * 0.3).collect();
        vs[2500] = 120.0;
        (ts, vs)
    }

    #[test]
    fn batch_stream_and_resume_give_the_calibrators_numbers() {
        let (ts, vs) = series();
        let z = RobustZ::new(RobustZConfig::default()).unwrap();
        let raw = z.score_batch(&ts, &vs);
        let c = Calibrated::new(z, CalibrationConfig::default()).unwrap();
        // By hand: the raw scores through a calibrator, warming-up points kept as None.
        let mut by_hand = Calibrator::new(CalibrationConfig::default());
        let want: Vec<Option<u64>> = raw
            .iter()
            .map(|r| {
                let u = by_hand.update_surprise(r.unwrap_or(0.0), r.is_none()) / SCORE_DECADES;
                r.map(|_| u.to_bits())
            })
            .collect();
        let bits = |v: Vec<Option<f64>>| v.into_iter().map(|x| x.map(f64::to_bits)).collect::<Vec<_>>();
        assert_eq!(bits(c.score_batch(&ts, &vs)), want);
        assert!(want[0].is_none(), "warming up");
        let spike = f64::from_bits(want[2500].unwrap_or(0));
        assert!(spike > 1.0, "the spike is beyond ten decades: {spike}");
        // Streamed, saved half way and resumed: the same numbers.
        let mut state = c.start();
        let mut streamed: Vec<Option<f64>> = ts[..1500].iter().zip(&vs).map(|(&t, &x)| state.update(t, x)).collect();
        let mut resumed = c.resume(&state.save().unwrap()).unwrap();
        streamed.extend(ts[1500..].iter().zip(&vs[1500..]).map(|(&t, &x)| resumed.update(t, x)));
        assert_eq!(bits(streamed), want);
        assert!(c.resume(&[1, 2, 3]).is_err());
        let bad = CalibrationConfig { min_samples: 3, ..CalibrationConfig::default() };
        assert!(Calibrated::new(RobustZ::new(RobustZConfig::default()).unwrap(), bad).is_err());
    }
}
