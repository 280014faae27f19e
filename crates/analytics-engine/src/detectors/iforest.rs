//! Isolation forest (Liu, Ting and Zhou, 2008) on shingled windows: a point whose recent shape
//! (the last `shingle` values, scaled by the learning period's median and MAD) is easy to isolate
//! with random axis-parallel cuts is anomalous.
//!
//! The forest is fitted once, on the first `train_points` shingles of the series (the learning
//! period), from a seeded generator: the same series and seed give the same forest and scores.
//! The raw score is `2^(-E[h] / c(psi))`, where `h` is a shingle's path length in a tree and
//! `c(psi)` the average path length of an unsuccessful search in a binary tree of `psi` points.
//! Known limit: cuts fall inside the range of the training points, so a spike far beyond anything
//! seen follows the most extreme normal point down the tree and scores about as high as it; and
//! a random cut picks the spike's coordinate in only some trees; and a shape inside the ring the
//! learnt shapes trace (a flat stretch in a sine) cannot be cut off by axis-parallel cuts. It
//! finds windows unlike anything seen in every coordinate well (a stretch at a new level), single
//! spikes in noise poorly (the robust z-score is the tool for those).
//! Cost: `trees x depth` comparisons per point; state: the trees (about `trees x 2^(depth+1)`
//! nodes), tens of KiB, so this detector is for deep dives on a few series, not the fleet default.

use std::collections::VecDeque;
use std::mem::size_of;

use analytics_numerics::stats::{median_sigma, MAD_TO_SIGMA};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::checkpoint;
use crate::detector::{Detector, DetectorState};
use crate::EngineError;

/// Parameters of the isolation forest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IForestConfig {
    /// Values per shingle.
    pub shingle: usize,
    /// Shingles learnt from before the forest is fitted.
    pub train_points: usize,
    /// Trees in the forest.
    pub trees: usize,
    /// Shingles drawn for each tree (psi).
    pub subsample: usize,
    /// Seed of the generator.
    pub seed: u64,
}

impl Default for IForestConfig {
    fn default() -> Self {
        Self { shingle: 8, train_points: 256, trees: 25, subsample: 64, seed: 7 }
    }
}

impl IForestConfig {
    pub(crate) fn check(&self) -> Result<(), EngineError> {
        if self.shingle == 0 || self.shingle > 64 {
            return Err(EngineError::bad_param("shingle", self.shingle, "between 1 and 64"));
        }
        if self.subsample < 4 || self.subsample > self.train_points {
            return Err(EngineError::bad_param("subsample", self.subsample, "between 4 and train_points"));
        }
        if self.trees == 0 {
            return Err(EngineError::bad_param("trees", self.trees, "at least 1"));
        }
        Ok(())
    }
}

/// The isolation forest detector.
#[derive(Debug, Clone)]
pub struct IForest {
    cfg: IForestConfig,
}

impl IForest {
    /// Builds the detector after checking its parameters.
    pub fn new(cfg: IForestConfig) -> Result<Self, EngineError> {
        cfg.check()?;
        Ok(Self { cfg })
    }
}

impl Detector for IForest {
    fn name(&self) -> &'static str {
        crate::DetectorKind::IsolationForest.as_str()
    }
    fn resume(&self, saved: &[u8]) -> Result<Box<dyn DetectorState>, EngineError> {
        Ok(Box::new(checkpoint::decode::<IfState>(self.name(), saved)?))
    }

    fn start(&self) -> Box<dyn DetectorState> {
        Box::new(IfState { cfg: self.cfg.clone(), recent: VecDeque::new(), train: Vec::new(), forest: None })
    }
}

/// SplitMix64: a tiny seeded generator, enough for choosing cuts.
#[derive(Debug, Clone)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum Node {
    Split { feature: usize, value: f64, left: u32, right: u32 },
    Leaf { size: u32 },
}

/// Average path length of an unsuccessful binary-search-tree search among `n` points.
fn c(n: f64) -> f64 {
    if n <= 1.0 {
        0.0
    } else {
        2.0 * ((n - 1.0).ln() + 0.577_215_664_901_532_9) - 2.0 * (n - 1.0) / n
    }
}

fn grow(points: &mut [Vec<f64>], depth: usize, limit: usize, rng: &mut SplitMix, nodes: &mut Vec<Node>) -> u32 {
    let id = nodes.len() as u32;
    if depth >= limit || points.len() <= 1 {
        nodes.push(Node::Leaf { size: points.len() as u32 });
        return id;
    }
    let dims = points[0].len();
    let feature = rng.below(dims);
    let (lo, hi) =
        points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), p| (l.min(p[feature]), h.max(p[feature])));
    if hi <= lo {
        nodes.push(Node::Leaf { size: points.len() as u32 });
        return id;
    }
    let value = lo + (hi - lo) * rng.unit();
    nodes.push(Node::Leaf { size: 0 }); // placeholder, replaced below
    let mid = itertools_partition(points, |p| p[feature] < value);
    let (left_pts, right_pts) = points.split_at_mut(mid);
    let left = grow(left_pts, depth + 1, limit, rng, nodes);
    let right = grow(right_pts, depth + 1, limit, rng, nodes);
    nodes[id as usize] = Node::Split { feature, value, left, right };
    id
}

/// Moves the points satisfying `pred` to the front; returns how many there are.
fn itertools_partition(points: &mut [Vec<f64>], pred: impl Fn(&Vec<f64>) -> bool) -> usize {
    let mut i = 0;
    for j in 0..points.len() {
        if pred(&points[j]) {
            points.swap(i, j);
            i += 1;
        }
    }
    i
}

fn path_length(nodes: &[Node], x: &[f64]) -> f64 {
    let mut id = 0usize;
    let mut depth = 0.0;
    loop {
        match nodes[id] {
            Node::Split { feature, value, left, right } => {
                depth += 1.0;
                id = if x[feature] < value { left as usize } else { right as usize };
            }
            Node::Leaf { size } => return depth + c(f64::from(size)),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Forest {
    trees: Vec<Vec<Node>>,
    median: f64,
    scale: f64,
    norm: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct IfState {
    cfg: IForestConfig,
    recent: VecDeque<f64>,
    train: Vec<Vec<f64>>,
    forest: Option<Forest>,
}

impl IfState {
    fn fit(&mut self) {
        let all: Vec<f64> = self.train.iter().map(|s| s[s.len() - 1]).collect();
        let (median, sigma) = median_sigma(&all);
        let scale = if sigma > 0.0 { sigma } else { MAD_TO_SIGMA * 1e-9 * median.abs().max(1.0) };
        let scaled: Vec<Vec<f64>> =
            self.train.iter().map(|s| s.iter().map(|v| (v - median) / scale).collect()).collect();
        let mut rng = SplitMix(self.cfg.seed);
        let psi = self.cfg.subsample;
        let limit = (psi as f64).log2().ceil() as usize;
        let trees = (0..self.cfg.trees)
            .map(|_| {
                let mut sample: Vec<Vec<f64>> = (0..psi).map(|_| scaled[rng.below(scaled.len())].clone()).collect();
                let mut nodes = Vec::new();
                grow(&mut sample, 0, limit, &mut rng, &mut nodes);
                nodes
            })
            .collect();
        self.forest = Some(Forest { trees, median, scale, norm: c(psi as f64) });
        self.train = Vec::new();
    }
}

impl DetectorState for IfState {
    fn update(&mut self, _t: DateTime<Utc>, x: f64) -> Option<f64> {
        if self.recent.len() == self.cfg.shingle {
            self.recent.pop_front();
        }
        self.recent.push_back(x);
        if self.recent.len() < self.cfg.shingle {
            return None;
        }
        match &self.forest {
            None => {
                self.train.push(self.recent.iter().copied().collect());
                if self.train.len() >= self.cfg.train_points {
                    self.fit();
                }
                None
            }
            Some(f) => {
                let shingle: Vec<f64> = self.recent.iter().map(|v| (v - f.median) / f.scale).collect();
                let mean_h = f.trees.iter().map(|t| path_length(t, &shingle)).sum::<f64>() / f.trees.len() as f64;
                Some(2f64.powf(-mean_h / f.norm))
            }
        }
    }

    fn save(&self) -> Result<Vec<u8>, EngineError> {
        checkpoint::encode(crate::DetectorKind::IsolationForest.as_str(), self)
    }

    fn state_bytes(&self) -> usize {
        size_of::<Self>()
            + self.recent.capacity() * 8
            + self.train.iter().map(|s| s.capacity() * 8 + size_of::<Vec<f64>>()).sum::<usize>()
            + self.forest.as_ref().map_or(0, |f| f.trees.iter().map(|t| t.capacity() * size_of::<Node>()).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_path_length_by_hand() {
        assert_eq!(c(1.0), 0.0);
        // c(2) = 2 (ln 1 + gamma) - 1 = 2 gamma - 1
        assert!((c(2.0) - (2.0 * 0.577_215_664_901_532_9 - 1.0)).abs() < 1e-12);
    }
}
