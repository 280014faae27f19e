//! The built-in detectors, one module each: each turns a series into a raw score per point,
//! causally, through a small per-series state ([`crate::Detector`]). Their names are
//! [`crate::DetectorKind`]'s.

pub(crate) mod cusum;
pub(crate) mod density;
pub(crate) mod holt_winters;
pub(crate) mod iforest;
pub(crate) mod lag_change;
pub(crate) mod novelty;
pub(crate) mod seasonal;
pub(crate) mod spectral;
pub(crate) mod zscore;
