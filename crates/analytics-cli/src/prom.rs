//! Builds the Prometheus source from `analytics detect`'s options.

use analytics_io::{LabelMapping, PrometheusConfig, PrometheusSource};
use anyhow::{Context, Result};
use chrono::TimeDelta;

use crate::DetectArgs;

pub(crate) fn source(url: &str, args: &DetectArgs) -> Result<PrometheusSource> {
    let mut cfg = PrometheusConfig::new(url);
    cfg.labels = LabelMapping {
        tenant: args.tenant_label.clone(),
        cluster: args.cluster_label.clone(),
        node: args.node_label.clone(),
    };
    cfg.step = TimeDelta::seconds(args.query_step_seconds);
    cfg.timeout = std::time::Duration::from_secs_f64(args.timeout_seconds);
    cfg.lenient = args.lenient;
    if let Some(path) = &args.bearer_token_file {
        let token = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the bearer token file {}", path.display()))?;
        cfg.bearer_token = Some(token.trim().to_owned());
    }
    Ok(PrometheusSource::new(cfg)?)
}
