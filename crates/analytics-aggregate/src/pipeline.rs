//! The fleet pipeline: detection per node in parallel (rayon), then summaries, roll-ups,
//! the top-N nodes and their explanations. The output is the same, in the same order, whatever
//! the thread count: nodes are processed in key order and collected by index.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use analytics_engine::AnomalyDetectionEngine;
use analytics_types::{
    AggregatedAnomalyScore, AnomalyLabel, AnomalyResult, ClusterId, Incident, MetricSeries, NodeId, SeriesKey, TenantId,
};
use rayon::prelude::*;
use serde::Serialize;

use crate::incidents::{find_incidents, IncidentConfig};
use crate::rollup::{roll_up, summarise, top_n, AggregateConfig, MetricSummary, Rollup};
use crate::AggregateError;

/// A node in the ranking, with the sentence that explains its score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankedNode {
    /// The node's aggregate.
    pub score: AggregatedAnomalyScore,
    /// Why: its top contributing metrics and the worst one's explanation.
    pub explanation: String,
}

/// Everything the pipeline found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FleetReport {
    /// The engine used.
    pub engine: String,
    /// Every result of every series, ordered by series key, then time.
    pub results: Vec<AnomalyResult>,
    /// One summary per series, ordered by key.
    pub metrics: Vec<MetricSummary>,
    /// Node, cluster and tenant aggregates.
    pub rollup: Rollup,
    /// The worst nodes, worst first, with explanations.
    pub top_nodes: Vec<RankedNode>,
    /// Anomalous events grouped by what happened together, broadest first.
    pub incidents: Vec<Incident>,
}

/// Wall time of the stages of [`FleetPipeline::run_timed`], in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageSeconds {
    /// Running the engine over every series (on the pipeline's threads).
    pub detect: f64,
    /// Summaries, the roll-up, the explained ranking of the worst nodes and the incidents.
    pub aggregate: f64,
}

/// Runs an engine over a fleet and rolls the results up.
#[derive(Debug)]
pub struct FleetPipeline<'a> {
    engine: &'a dyn AnomalyDetectionEngine,
    config: AggregateConfig,
    incidents: IncidentConfig,
    top: usize,
    threads: Option<usize>,
}

impl<'a> FleetPipeline<'a> {
    /// A pipeline with `max` aggregation, the 10 worst nodes, and rayon's default thread count.
    pub fn new(engine: &'a dyn AnomalyDetectionEngine) -> Self {
        Self {
            engine,
            config: AggregateConfig::default(),
            incidents: IncidentConfig::default(),
            top: 10,
            threads: None,
        }
    }

    /// Sets the aggregation strategy and weights.
    pub fn aggregate(mut self, config: AggregateConfig) -> Self {
        self.config = config;
        self
    }

    /// Sets how anomalous events are grouped into incidents.
    pub fn incidents(mut self, config: IncidentConfig) -> Self {
        self.incidents = config;
        self
    }

    /// Sets how many nodes the ranking keeps.
    pub fn top(mut self, n: usize) -> Self {
        self.top = n;
        self
    }

    /// Runs on a pool of exactly `threads` threads (None: rayon's global pool).
    pub fn threads(mut self, threads: Option<usize>) -> Self {
        self.threads = threads;
        self
    }

    /// Detects, summarises, rolls up and ranks. `progress(done, total)` is called as nodes finish
    /// (from worker threads, in no particular order).
    pub fn run(
        &self,
        series: &[MetricSeries],
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<FleetReport, AggregateError> {
        self.run_timed(series, progress).map(|(report, _)| report)
    }

    /// [`FleetPipeline::run`], with the wall time of its two stages.
    pub fn run_timed(
        &self,
        series: &[MetricSeries],
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<(FleetReport, StageSeconds), AggregateError> {
        self.config.check()?;
        self.incidents.check()?;
        let started = Instant::now();
        // Group by node, in key order; refuse duplicates rather than silently drop one.
        let mut nodes: BTreeMap<(&TenantId, &ClusterId, &NodeId), Vec<&MetricSeries>> = BTreeMap::new();
        for s in series {
            nodes.entry((s.tenant_id(), s.cluster_id(), s.node_id())).or_default().push(s);
        }
        for list in nodes.values_mut() {
            list.sort_by(|a, b| a.metric_name().cmp(b.metric_name()));
            if let Some(w) = list.windows(2).find(|w| w[0].metric_name() == w[1].metric_name()) {
                return Err(AggregateError::DuplicateSeries { key: w[0].key().to_string() });
            }
        }
        let groups: Vec<Vec<&MetricSeries>> = nodes.into_values().collect();
        let total = groups.len();
        let done = AtomicUsize::new(0);
        let detect = || -> Result<Vec<Vec<AnomalyResult>>, AggregateError> {
            groups
                .par_iter()
                .map(|node| {
                    let mut out = Vec::new();
                    for s in node {
                        out.extend(self.engine.detect(s)?);
                    }
                    progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
                    Ok(out)
                })
                .collect()
        };
        let per_node = match self.threads {
            Some(n) => rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(|e| AggregateError::ThreadPool(e.to_string()))?
                .install(detect)?,
            None => detect()?,
        };
        // Room for every result at once: growing by doubling would hold up to twice the
        // results while the last ones are copied in.
        let mut results: Vec<AnomalyResult> = Vec::with_capacity(per_node.iter().map(Vec::len).sum());
        for node in per_node {
            results.extend(node);
        }
        let detect_seconds = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let metrics = summarise(&results);
        let rollup = roll_up(&metrics, &self.config)?;
        let top_nodes = top_n(&rollup.nodes, self.top)
            .into_iter()
            .map(|score| {
                let explanation = explain_node(&score, &metrics);
                RankedNode { score, explanation }
            })
            .collect();
        let incidents = find_incidents(&results, &rollup.nodes, &self.incidents, &|_| None)?;
        let report =
            FleetReport { engine: self.engine.name().to_owned(), results, metrics, rollup, top_nodes, incidents };
        Ok((report, StageSeconds { detect: detect_seconds, aggregate: started.elapsed().as_secs_f64() }))
    }
}

impl<'a> FleetPipeline<'a> {
    /// The streaming fleet path, pulling batches: see [`StreamingRun`].
    pub fn run_batches<E>(
        &self,
        batches: impl IntoIterator<Item = Result<Vec<MetricSeries>, E>>,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<FleetReport, AggregateError>
    where
        AggregateError: From<E>,
    {
        let mut run = self.start_streaming()?;
        for batch in batches {
            run.push(&batch?)?;
            progress(run.series_seen());
        }
        run.finish()
    }

    /// Starts the streaming fleet path, for batches pushed one by one.
    pub fn start_streaming(&self) -> Result<StreamingRun<'_, 'a>, AggregateError> {
        self.config.check()?;
        self.incidents.check()?;
        Ok(StreamingRun {
            pipeline: self,
            metrics: Vec::new(),
            anomalies: Vec::new(),
            seen_nodes: Default::default(),
            series: 0,
        })
    }
}

type NodeKey = (TenantId, ClusterId, NodeId);

/// The streaming fleet path: batches of whole nodes are detected in parallel as they come; only
/// each series' summary and its anomalous results are kept, and the roll-up is done at the end.
/// Memory is bounded by the batch, not the fleet; the final report's `results` hold the
/// anomalous windows only. A node split across two batches, or a series given twice, is
/// refused.
#[derive(Debug)]
pub struct StreamingRun<'p, 'a> {
    pipeline: &'p FleetPipeline<'a>,
    metrics: Vec<MetricSummary>,
    anomalies: Vec<AnomalyResult>,
    seen_nodes: std::collections::BTreeSet<NodeKey>,
    series: usize,
}

impl StreamingRun<'_, '_> {
    /// Detects one batch of whole nodes; returns the batch's per-series summaries.
    pub fn push(&mut self, batch: &[MetricSeries]) -> Result<&[MetricSummary], AggregateError> {
        let report = self.pipeline.run(batch, &|_, _| {})?;
        let key = |m: &MetricSummary| (m.key.tenant_id.clone(), m.key.cluster_id.clone(), m.key.node_id.clone());
        if let Some(m) = report.metrics.iter().find(|m| self.seen_nodes.contains(&key(m))) {
            return Err(AggregateError::DuplicateSeries { key: m.key.to_string() });
        }
        self.seen_nodes.extend(report.metrics.iter().map(key));
        let from = self.metrics.len();
        self.metrics.extend(report.metrics);
        self.anomalies.extend(report.results.into_iter().filter(AnomalyResult::is_anomaly));
        self.series += batch.len();
        Ok(&self.metrics[from..])
    }

    /// Series detected so far.
    pub fn series_seen(&self) -> usize {
        self.series
    }

    /// Rolls up everything pushed and ranks the worst nodes.
    pub fn finish(self) -> Result<FleetReport, AggregateError> {
        let mut metrics = self.metrics;
        metrics.sort_by(|a, b| a.key.cmp(&b.key));
        let mut anomalies = self.anomalies;
        anomalies.sort_by(|a, b| a.key().cmp(&b.key()).then(a.window_start().cmp(&b.window_start())));
        let rollup = roll_up(&metrics, &self.pipeline.config)?;
        let top_nodes = top_n(&rollup.nodes, self.pipeline.top)
            .into_iter()
            .map(|score| {
                let explanation = explain_node(&score, &metrics);
                RankedNode { score, explanation }
            })
            .collect();
        let incidents = find_incidents(&anomalies, &rollup.nodes, &self.pipeline.incidents, &|_| None)?;
        Ok(FleetReport {
            engine: self.pipeline.engine.name().to_owned(),
            results: anomalies,
            metrics,
            rollup,
            top_nodes,
            incidents,
        })
    }
}

fn contributors(metrics: &[MetricSummary], keep: impl Fn(&SeriesKey) -> bool) -> Vec<&MetricSummary> {
    let mut v: Vec<&MetricSummary> = metrics.iter().filter(|m| keep(&m.key)).collect();
    v.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.key.cmp(&b.key)));
    v
}

fn describe(m: &MetricSummary) -> String {
    let label = m.worst.as_ref().map_or(AnomalyLabel::Normal, |w| w.anomaly_label());
    format!("{} {:.3} ({label})", m.key.metric_name, m.score)
}

/// Explains a node's score by its top contributing metrics, then the worst one's sentence.
pub fn explain_node(score: &AggregatedAnomalyScore, metrics: &[MetricSummary]) -> String {
    let top = contributors(metrics, |k| {
        &k.tenant_id == score.tenant_id()
            && Some(&k.cluster_id) == score.cluster_id()
            && Some(&k.node_id) == score.node_id()
    });
    let names: Vec<String> = top.iter().take(3).map(|m| describe(m)).collect();
    let mut text = format!(
        "{} (cluster {}, tenant {}) scores {:.3} by {} over {}, {}; top: {}.",
        score.node_id().map_or("?", |n| n.as_str()),
        score.cluster_id().map_or("?", |c| c.as_str()),
        score.tenant_id(),
        score.aggregate_score(),
        score.aggregation_strategy(),
        plural(score.num_metrics_analyzed(), "metric"),
        plural(score.num_anomalies_detected(), "anomalous window"),
        names.join(", ")
    );
    if let Some(sentence) =
        top.first().and_then(|m| m.worst.as_ref()).filter(|w| w.is_anomaly()).and_then(|w| w.explanation())
    {
        text.push(' ');
        text.push_str(sentence);
    }
    text
}

/// The nodes of a cluster's or tenant's score (from the node-level roll-up), worst first.
pub fn nodes_of(group: &AggregatedAnomalyScore, nodes: &[AggregatedAnomalyScore]) -> Vec<AggregatedAnomalyScore> {
    let members: Vec<AggregatedAnomalyScore> = nodes
        .iter()
        .filter(|n| {
            n.tenant_id() == group.tenant_id() && (group.cluster_id().is_none() || n.cluster_id() == group.cluster_id())
        })
        .cloned()
        .collect();
    top_n(&members, members.len())
}

fn plural(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}
