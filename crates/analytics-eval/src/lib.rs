#![doc = include_str!("../README.md")]

mod asd;
mod error;
mod incidents;
mod metrics;
mod nab;
mod range;
mod suite;

pub use analytics_types::benchmark::{Corpus, Interpretation, NabCorpus, NabFile, NodeData, NodeParts};
pub use asd::{hit_rate, node_alarm_figures, rank_metrics, NodeAlarmFigures};
pub use error::EvalError;
pub use incidents::{score_incidents, IncidentScores, TrueIncident, TruePart};
pub use metrics::{best_point_adjusted_f1, segments, Accumulator, Prf};
pub use nab::{
    normalise, probation_len, scorable_windows, NabScorer, Profile, ProfileScore, ThresholdScore, PROBATION_FRACTION,
    PROFILES,
};
pub use range::{best_composite_f1, range_auc_pr, vus_pr};
pub use suite::{
    choose, clean_alarms, evaluate_corpus, evaluate_nodes, fold_corpus, gain, leave_one_corpus_out, score_corpus,
    CleanAlarms, CorpusReport, CorpusRuns, HeldOut, NabFigure, NodeFigures, NodeSummary, RandomScores, SeriesDetector,
    SeriesRun, VUS_MAX_BUFFER, VUS_STEP,
};
