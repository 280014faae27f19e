//! From a detector's raw score to alarms, for every engine: calibration (a raw score to its
//! tail probability under the series' own history, as a score in [0, 1]), then the rest period
//! and the alarm rule.

pub(crate) mod alarm;
pub(crate) mod calibrate;
pub(crate) mod calibrated;
