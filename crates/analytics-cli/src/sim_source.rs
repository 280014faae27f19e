//! The simulator as a metric source: a seeded fleet, filtered like any other source. It lives in
//! the binary because analytics-io depends on analytics-types only.

use analytics_sim::{simulate_fleet, Fleet, FleetConfig};
use analytics_types::{MetricSeries, TenantId};

use analytics_io::{IoError, MetricSource, Selector, TimeRange};

/// A simulated fleet, generated once and served from memory.
#[derive(Debug, Clone)]
pub(crate) struct SimSource {
    fleet: Fleet,
}

impl SimSource {
    /// Simulates the fleet of `cfg`.
    pub(crate) fn new(cfg: &FleetConfig) -> Result<Self, IoError> {
        let fleet = simulate_fleet(cfg).map_err(|e| IoError::Config(format!("simulator: {e}")))?;
        Ok(Self { fleet })
    }
}

#[async_trait::async_trait]
impl MetricSource for SimSource {
    async fn get_metric_series(
        &self,
        tenant: Option<&TenantId>,
        selector: &Selector,
        range: &TimeRange,
    ) -> Result<Vec<MetricSeries>, IoError> {
        let mut out = Vec::new();
        for s in &self.fleet.series {
            let key = s.key();
            if tenant.is_some_and(|t| t != &key.tenant_id) || !selector.matches(&key) {
                continue;
            }
            let (ts, vs): (Vec<_>, Vec<_>) = s
                .timestamps()
                .iter()
                .zip(s.values())
                .filter(|(t, _)| range.contains(**t))
                .map(|(t, v)| (*t, *v))
                .unzip();
            if !ts.is_empty() {
                out.push(MetricSeries::from_key(key, ts, vs).map_err(|e| IoError::Config(format!("simulator: {e}")))?);
            }
        }
        Ok(out)
    }

    fn describe(&self) -> String {
        format!("simulator ({} series)", self.fleet.series.len())
    }
}
