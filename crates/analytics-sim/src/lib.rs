#![doc = include_str!("../README.md")]

use std::io::{self, Write};

use analytics_types::{AnomalyLabel, ContractError, MetricSeries, SeriesKey};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::Serialize;

mod rng;

pub use rng::Rng;

/// Errors of the simulator: a configuration that cannot produce a fleet.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// A size was zero or too large.
    #[error("{field} is {value}; {expected}")]
    BadConfig {
        /// The configuration field.
        field: &'static str,
        /// Its value.
        value: String,
        /// What it should be.
        expected: &'static str,
    },
    /// A generated series broke a contract (a bug of the simulator, not the caller's).
    #[error("internal error: simulated series broke a contract: {0}")]
    Internal(#[from] ContractError),
}

/// How one kind of metric behaves: level, daily and weekly swing, noise, and how it follows load.
#[derive(Debug, Clone, Serialize)]
pub struct MetricProfile {
    /// Metric name, e.g. `cpu_usage`.
    pub name: &'static str,
    /// Unit, for people (`%`, `ms`, ...).
    pub unit: &'static str,
    /// Typical level.
    pub base: f64,
    /// Daily swing as a fraction of `base` (0.5 = +-50% over the day).
    pub daily_amplitude: f64,
    /// Weekend dip as a fraction of `base`.
    pub weekend_dip: f64,
    /// Standard deviation of the noise, in the metric's units.
    pub noise: f64,
    /// How much the node's shared load moves this metric (0 = not at all, 1 = fully).
    pub load_coupling: f64,
    /// Slow drift per day, as a fraction of `base`.
    pub drift_per_day: f64,
    /// Lowest value the metric can take.
    pub floor: f64,
}

impl MetricProfile {
    /// Whether the daily cycle stands far enough above the noise for a seasonal anomaly to exist.
    pub fn is_seasonal(&self) -> bool {
        self.base * self.daily_amplitude >= 5.0 * self.noise
    }
}

/// The built-in metric profiles, in the order `FleetConfig::metrics` takes them.
pub fn default_profiles() -> Vec<MetricProfile> {
    vec![
        MetricProfile {
            name: "cpu_usage",
            unit: "%",
            base: 40.0,
            daily_amplitude: 0.5,
            weekend_dip: 0.15,
            noise: 1.5,
            load_coupling: 1.0,
            drift_per_day: 0.0,
            floor: 0.0,
        },
        MetricProfile {
            name: "memory_used",
            unit: "GiB",
            base: 12.0,
            daily_amplitude: 0.04,
            weekend_dip: 0.0,
            noise: 0.08,
            load_coupling: 0.3,
            drift_per_day: 0.01,
            floor: 0.0,
        },
        MetricProfile {
            name: "request_latency_ms",
            unit: "ms",
            base: 120.0,
            daily_amplitude: 0.3,
            weekend_dip: 0.1,
            noise: 4.0,
            load_coupling: 0.8,
            drift_per_day: 0.0,
            floor: 1.0,
        },
        MetricProfile {
            name: "network_in_mbps",
            unit: "Mbit/s",
            base: 300.0,
            daily_amplitude: 0.6,
            weekend_dip: 0.25,
            noise: 12.0,
            load_coupling: 1.0,
            drift_per_day: 0.0,
            floor: 0.0,
        },
        MetricProfile {
            name: "disk_write_mbps",
            unit: "MB/s",
            base: 35.0,
            daily_amplitude: 0.1,
            weekend_dip: 0.05,
            noise: 2.0,
            load_coupling: 0.4,
            drift_per_day: 0.0,
            floor: 0.0,
        },
        MetricProfile {
            name: "error_rate",
            unit: "%",
            base: 0.8,
            daily_amplitude: 0.2,
            weekend_dip: 0.0,
            noise: 0.08,
            load_coupling: 0.5,
            drift_per_day: 0.0,
            floor: 0.0,
        },
        MetricProfile {
            name: "gc_pause_ms",
            unit: "ms",
            base: 25.0,
            daily_amplitude: 0.35,
            weekend_dip: 0.1,
            noise: 1.2,
            load_coupling: 0.7,
            drift_per_day: 0.0,
            floor: 0.0,
        },
        MetricProfile {
            name: "open_connections",
            unit: "",
            base: 800.0,
            daily_amplitude: 0.45,
            weekend_dip: 0.2,
            noise: 25.0,
            load_coupling: 0.9,
            drift_per_day: 0.0,
            floor: 0.0,
        },
    ]
}

/// The size and shape of a simulated fleet.
#[derive(Debug, Clone, Serialize)]
pub struct FleetConfig {
    /// Seed; the same seed gives the same fleet, byte for byte.
    pub seed: u64,
    /// Number of tenants.
    pub tenants: usize,
    /// Clusters per tenant.
    pub clusters_per_tenant: usize,
    /// Nodes per cluster.
    pub nodes_per_cluster: usize,
    /// Metrics per node (the first N of [`default_profiles`], at most 8).
    pub metrics: usize,
    /// Points per series.
    pub points: usize,
    /// Seconds between points.
    pub step_seconds: i64,
    /// First timestamp.
    pub start: DateTime<Utc>,
    /// Probability that a series carries one injected anomaly (spike, trend or seasonal break).
    pub anomaly_probability: f64,
    /// Probability that a cluster has one cluster-wide incident (a short lift of latency and
    /// error rate on all its nodes at once).
    pub incident_probability: f64,
    /// Probability that a tenant has one tenant-wide incident (the same lift on every node of
    /// every cluster of the tenant at once). 0 by default, so that the demo's fleets stay as
    /// they are.
    pub tenant_incident_probability: f64,
}

impl Default for FleetConfig {
    /// The demo's fleet: 3 tenants x 3 clusters x 8 nodes x 6 metrics, 2 days at one minute.
    fn default() -> Self {
        Self {
            seed: 42,
            tenants: 3,
            clusters_per_tenant: 3,
            nodes_per_cluster: 8,
            metrics: 6,
            points: 2 * 1440,
            step_seconds: 60,
            start: Utc.with_ymd_and_hms(2024, 3, 4, 0, 0, 0).single().unwrap_or_default(),
            anomaly_probability: 0.15,
            incident_probability: 0.3,
            tenant_incident_probability: 0.0,
        }
    }
}

/// An anomaly the simulator put into a series: where, what kind, how large.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroundTruth {
    /// The series.
    pub key: SeriesKey,
    /// First index of the anomaly.
    pub start_index: usize,
    /// One past the last index of the anomaly.
    pub end_index: usize,
    /// Timestamp of the first point.
    pub start: DateTime<Utc>,
    /// Timestamp of the last point.
    pub end: DateTime<Utc>,
    /// Spike, dip, level shift, trend, variance change or seasonal.
    pub kind: AnomalyLabel,
    /// Size in noise standard deviations, signed (negative for a dip or a shift down); for a
    /// seasonal break, the cycle's amplitude; for a variance change, how many times the noise's
    /// standard deviation the event's is.
    pub magnitude_sigma: f64,
    /// Whether it came from a cluster-wide incident.
    pub cluster_incident: bool,
    /// Whether it came from a tenant-wide incident.
    pub tenant_incident: bool,
}

/// A simulated fleet: every series, and every anomaly put into them.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// The series, ordered by tenant, cluster, node, metric.
    pub series: Vec<MetricSeries>,
    /// The injected anomalies, ordered like the series.
    pub truth: Vec<GroundTruth>,
    /// The metric profiles used (units, for explanations).
    pub profiles: Vec<MetricProfile>,
}

// Sorted, so that generation order is also key order.
const TENANT_NAMES: [&str; 8] = ["acme", "globex", "hooli", "initech", "stark", "umbrella", "wayne", "wonka"];
const CLUSTER_NAMES: [&str; 4] = ["prod-eu", "prod-us", "staging", "test"];

fn tenant_name(i: usize) -> String {
    TENANT_NAMES.get(i).map_or_else(|| format!("tenant-{:03}", i + 1), |s| (*s).to_owned())
}

fn cluster_name(i: usize) -> String {
    CLUSTER_NAMES.get(i).map_or_else(|| format!("cluster-{:02}", i + 1), |s| (*s).to_owned())
}

const DAY_SECONDS: f64 = 86_400.0;

/// Daily load shape in [-1, 1]: low at night, peaking mid-afternoon, with a morning shoulder.
fn daily_shape(t: DateTime<Utc>, phase_shift_seconds: f64) -> f64 {
    let secs = t.timestamp() as f64 + phase_shift_seconds;
    let x = std::f64::consts::TAU * (secs.rem_euclid(DAY_SECONDS) / DAY_SECONDS);
    // Peak at 15:00 UTC, a second harmonic for an asymmetric day.
    let main = (x - std::f64::consts::TAU * 15.0 / 24.0).cos();
    let second = 0.25 * (2.0 * x - std::f64::consts::TAU * 10.0 / 24.0).cos();
    (main + second) / 1.25
}

fn is_weekend(t: DateTime<Utc>) -> bool {
    use chrono::Datelike;
    matches!(t.weekday(), chrono::Weekday::Sat | chrono::Weekday::Sun)
}

impl FleetConfig {
    fn check(&self) -> Result<(), SimError> {
        let bad = |field, value: usize, expected| SimError::BadConfig { field, value: value.to_string(), expected };
        for (field, value) in [
            ("tenants", self.tenants),
            ("clusters_per_tenant", self.clusters_per_tenant),
            ("nodes_per_cluster", self.nodes_per_cluster),
            ("metrics", self.metrics),
            ("points", self.points),
        ] {
            if value == 0 {
                return Err(bad(field, value, "it must be at least 1"));
            }
        }
        if self.metrics > default_profiles().len() {
            return Err(bad("metrics", self.metrics, "at most 8 metric profiles are built in"));
        }
        if self.step_seconds <= 0 {
            return Err(SimError::BadConfig {
                field: "step_seconds",
                value: self.step_seconds.to_string(),
                expected: "it must be positive",
            });
        }
        for (field, p) in [
            ("anomaly_probability", self.anomaly_probability),
            ("incident_probability", self.incident_probability),
            ("tenant_incident_probability", self.tenant_incident_probability),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(SimError::BadConfig { field, value: p.to_string(), expected: "it must be in [0, 1]" });
            }
        }
        Ok(())
    }

    /// Total number of series the fleet will hold.
    pub fn num_series(&self) -> usize {
        self.tenants * self.clusters_per_tenant * self.nodes_per_cluster * self.metrics
    }

    /// Points per day at this step.
    pub fn points_per_day(&self) -> usize {
        (86_400 / self.step_seconds).max(1) as usize
    }
}

/// A planned injection into one series, before it is applied.
struct Injection {
    kind: AnomalyLabel,
    start: usize,
    len: usize,
    magnitude_sigma: f64,
    cluster_incident: bool,
    tenant_incident: bool,
}

fn plan_injection(cfg: &FleetConfig, profile: &MetricProfile, rng: &mut Rng) -> Option<Injection> {
    if !rng.chance(cfg.anomaly_probability) {
        return None;
    }
    let n = cfg.points;
    let day = cfg.points_per_day();
    let seasonal_ok = profile.is_seasonal() && n >= day + day / 2;
    // How far below the series' lowest level over `span` (at the lowest level a series of this
    // profile is given, on a weekend, with the node's load a tenth of the swing lower than the
    // daily shape) the floor lies, in noise sigmas, less a margin of three: room for a dip, a
    // shift down or more noise without being cut at the floor.
    let room = |span: std::ops::Range<usize>| {
        let lowest = span
            .map(|i| daily_shape(cfg.start + Duration::seconds(cfg.step_seconds * i as i64), 0.0))
            .fold(f64::INFINITY, f64::min);
        let level = profile.base * 0.8;
        (level * (1.0 + profile.daily_amplitude * (lowest - 0.1) - profile.weekend_dip) - profile.floor) / profile.noise
            - 3.0
    };
    let roll = rng.uniform();
    let mut kind = match roll {
        r if r < 0.15 => AnomalyLabel::Spike,
        r if r < 0.3 => AnomalyLabel::Dip,
        r if r < 0.5 => AnomalyLabel::Trend,
        r if r < 0.65 => AnomalyLabel::LevelShift,
        r if r < 0.8 => AnomalyLabel::VarianceChange,
        _ if seasonal_ok => AnomalyLabel::Seasonal,
        _ => AnomalyLabel::Trend,
    };
    // Leave room for learning before the anomaly and for seeing the series after it.
    let (len, earliest) = match kind {
        AnomalyLabel::Spike | AnomalyLabel::Dip => (rng.index(1, 6), n / 10),
        AnomalyLabel::Trend => (rng.index(30, 181), n / 10),
        AnomalyLabel::LevelShift => (rng.index(30, 121), n / 10),
        AnomalyLabel::VarianceChange => (rng.index(60, 241), n / 10),
        _ => (rng.index(60, 241), day + day / 10),
    };
    let latest = n.saturating_sub(len + n / 20 + 10);
    if latest <= earliest {
        return None;
    }
    let mut magnitude_sigma = match kind {
        AnomalyLabel::Spike | AnomalyLabel::Dip => rng.range(6.0, 14.0),
        AnomalyLabel::Trend | AnomalyLabel::LevelShift => rng.range(6.0, 15.0),
        AnomalyLabel::VarianceChange => rng.range(3.0, 6.0),
        _ => profile.base * profile.daily_amplitude / profile.noise,
    };
    let down = rng.chance(0.5);
    let start = rng.index(earliest, latest);
    match kind {
        // A dip where the floor leaves no room for one is a spike.
        AnomalyLabel::Dip if magnitude_sigma > room(start..start + len) => kind = AnomalyLabel::Spike,
        AnomalyLabel::Dip => magnitude_sigma = -magnitude_sigma,
        // A shift down holds to the end of the series: room over every day.
        AnomalyLabel::LevelShift if down && magnitude_sigma <= room(0..n.min(day)) => {
            magnitude_sigma = -magnitude_sigma
        }
        // Noise the floor would cut (about 2.5 sigmas of it) is a shift up instead.
        AnomalyLabel::VarianceChange if 2.5 * magnitude_sigma > room(start..start + len) => {
            kind = AnomalyLabel::LevelShift;
            magnitude_sigma *= 2.5;
        }
        _ => {}
    }
    if kind != AnomalyLabel::Seasonal {
        return Some(Injection { kind, start, len, magnitude_sigma, cluster_incident: false, tenant_incident: false });
    }
    // A seasonal break is only an anomaly where the cycle of twelve hours away differs from this
    // one (near the cycle's crossings it does not): place it where the swap moves the series by
    // at least 6 noise sigmas somewhere inside it.
    for _ in 0..50 {
        let start = rng.index(earliest, latest);
        let swing = (start..start + len)
            .map(|i| {
                let t = cfg.start + Duration::seconds(cfg.step_seconds * i as i64);
                (daily_shape(t, DAY_SECONDS / 2.0) - daily_shape(t, 0.0)).abs()
            })
            .fold(0.0, f64::max);
        if swing * magnitude_sigma >= 6.0 {
            return Some(Injection {
                kind,
                start,
                len,
                magnitude_sigma,
                cluster_incident: false,
                tenant_incident: false,
            });
        }
    }
    None
}

/// One node's shared load: the daily cycle, the weekend dip and a slowly wandering AR(1) term.
fn node_load(timestamps: &[DateTime<Utc>], rng: &mut Rng) -> Vec<f64> {
    let phase = rng.range(-1800.0, 1800.0); // nodes differ by up to half an hour
    let mut ar = 0.0;
    timestamps
        .iter()
        .map(|&t| {
            ar = 0.98 * ar + 0.01 * rng.normal();
            daily_shape(t, phase) + ar
        })
        .collect()
}

/// Generates one series from its profile, the node's load, and an optional injection.
fn generate_values(
    profile: &MetricProfile,
    timestamps: &[DateTime<Utc>],
    load: &[f64],
    injections: &[Injection],
    rng: &mut Rng,
) -> Vec<f64> {
    let level = profile.base * rng.range(0.8, 1.2);
    let amp = level * profile.daily_amplitude;
    let t0 = timestamps.first().map_or(0, |t| t.timestamp());
    let mut noise_state = 0.0;
    let mut values = Vec::with_capacity(timestamps.len());
    for (i, &t) in timestamps.iter().enumerate() {
        let mut cycle = profile.load_coupling * load[i] + (1.0 - profile.load_coupling) * daily_shape(t, 0.0);
        for inj in injections.iter().filter(|inj| inj.kind == AnomalyLabel::Seasonal) {
            if (inj.start..inj.start + inj.len).contains(&i) {
                // A seasonal break: this stretch follows the cycle of twelve hours away.
                cycle = daily_shape(t, DAY_SECONDS / 2.0);
            }
        }
        let weekend = if is_weekend(t) { -profile.weekend_dip * level } else { 0.0 };
        let drift = profile.drift_per_day * level * (t.timestamp() - t0) as f64 / DAY_SECONDS;
        noise_state = 0.3 * noise_state + (1.0f64 - 0.09).sqrt() * rng.normal();
        // A variance change scales the noise over its stretch.
        let noise_scale = injections
            .iter()
            .filter(|inj| inj.kind == AnomalyLabel::VarianceChange && (inj.start..inj.start + inj.len).contains(&i))
            .fold(1.0, |scale, inj| scale * inj.magnitude_sigma);
        let mut v = level + amp * cycle + weekend + drift + profile.noise * noise_scale * noise_state;
        for inj in injections {
            let end = inj.start + inj.len;
            let size = inj.magnitude_sigma * profile.noise;
            match inj.kind {
                AnomalyLabel::Spike | AnomalyLabel::Dip if (inj.start..end).contains(&i) => v += size,
                AnomalyLabel::LevelShift if i >= inj.start => v += size,
                AnomalyLabel::Trend if i >= inj.start => {
                    let progress = ((i - inj.start + 1) as f64 / inj.len as f64).min(1.0);
                    v += size * progress;
                }
                _ => {}
            }
        }
        values.push(v.max(profile.floor));
    }
    values
}

/// Simulates a fleet. The same configuration gives the same fleet, whatever the machine.
///
/// ```
/// use analytics_sim::{simulate_fleet, FleetConfig};
///
/// let cfg = FleetConfig { tenants: 1, clusters_per_tenant: 1, nodes_per_cluster: 2, metrics: 3, points: 500, ..Default::default() };
/// let fleet = simulate_fleet(&cfg)?;
/// assert_eq!(fleet.series.len(), 6);
/// assert_eq!(simulate_fleet(&cfg)?.series, fleet.series);
/// # Ok::<(), analytics_sim::SimError>(())
/// ```
pub fn simulate_fleet(cfg: &FleetConfig) -> Result<Fleet, SimError> {
    cfg.check()?;
    let mut series = Vec::with_capacity(cfg.num_series());
    let mut truth = Vec::new();
    for ti in 0..cfg.tenants {
        for ci in 0..cfg.clusters_per_tenant {
            for ni in 0..cfg.nodes_per_cluster {
                let (s, t) = node(cfg, ti, ci, ni)?;
                series.extend(s);
                truth.extend(t);
            }
        }
    }
    Ok(Fleet { series, truth, profiles: default_profiles().into_iter().take(cfg.metrics).collect() })
}

/// Simulates one node of the fleet: the same series, to the bit, as `simulate_fleet` gives for
/// it, without generating the rest. This is what lets a very large fleet be processed node by
/// node in bounded memory. Indices count from 0.
pub fn simulate_node(
    cfg: &FleetConfig,
    tenant: usize,
    cluster: usize,
    node_in_cluster: usize,
) -> Result<(Vec<MetricSeries>, Vec<GroundTruth>), SimError> {
    cfg.check()?;
    for (field, i, n) in [
        ("tenant", tenant, cfg.tenants),
        ("cluster", cluster, cfg.clusters_per_tenant),
        ("node", node_in_cluster, cfg.nodes_per_cluster),
    ] {
        if i >= n {
            return Err(SimError::BadConfig {
                field,
                value: i.to_string(),
                expected: "an index below the fleet's size",
            });
        }
    }
    node(cfg, tenant, cluster, node_in_cluster)
}

fn node(cfg: &FleetConfig, ti: usize, ci: usize, ni: usize) -> Result<(Vec<MetricSeries>, Vec<GroundTruth>), SimError> {
    let profiles: Vec<MetricProfile> = default_profiles().into_iter().take(cfg.metrics).collect();
    let timestamps: Vec<DateTime<Utc>> =
        (0..cfg.points).map(|i| cfg.start + Duration::seconds(cfg.step_seconds * i as i64)).collect();
    let (tenant, cluster) = (tenant_name(ti), cluster_name(ci));
    let mut cluster_rng = Rng::new(cfg.seed, 0xC1u64 << 48 | (ti as u64) << 24 | ci as u64);
    let incident = (cluster_rng.chance(cfg.incident_probability) && cfg.points > 40).then(|| {
        let len = cluster_rng.index(3, 9);
        let start = cluster_rng.index(cfg.points / 5, cfg.points - len - cfg.points / 20 - 5);
        (start, len, cluster_rng.range(8.0, 14.0))
    });
    // A tenant-wide incident: drawn from the tenant's own stream, so every cluster of the
    // tenant draws the same one.
    let mut tenant_rng = Rng::new(cfg.seed, 0x7E_u64 << 48 | ti as u64);
    let tenant_incident = (tenant_rng.chance(cfg.tenant_incident_probability) && cfg.points > 40).then(|| {
        let len = tenant_rng.index(3, 9);
        let start = tenant_rng.index(cfg.points / 5, cfg.points - len - cfg.points / 20 - 5);
        (start, len, tenant_rng.range(8.0, 14.0))
    });
    // Nodes are numbered from 1 across the whole fleet, in tenant, cluster, node order.
    let node_index = ((ti * cfg.clusters_per_tenant + ci) * cfg.nodes_per_cluster + ni) as u64 + 1;
    let node = format!("node-{:02}", ni + 1);
    let mut node_rng = Rng::new(cfg.seed, node_index << 8);
    let load = node_load(&timestamps, &mut node_rng);
    let mut series = Vec::with_capacity(profiles.len());
    let mut truth = Vec::new();
    for (mi, profile) in profiles.iter().enumerate() {
        // Separate streams for the plan and the values: the same series with and without an
        // anomaly differ only where the anomaly is.
        let stream = node_index << 8 | (mi as u64 + 1);
        let mut plan_rng = Rng::new(cfg.seed ^ 0x005E_ED0F_A40A_11E5, stream);
        let mut rng = Rng::new(cfg.seed, stream);
        let mut injections: Vec<Injection> = plan_injection(cfg, profile, &mut plan_rng).into_iter().collect();
        // The tenant's incident first, then the cluster's, each where nothing else is near.
        for (wide, tenant_wide) in [(tenant_incident, true), (incident, false)] {
            let Some((start, len, magnitude_sigma)) = wide else { continue };
            let hit = matches!(profile.name, "request_latency_ms" | "error_rate");
            let overlaps = injections.iter().any(|i| i.start < start + len + 30 && start < i.start + i.len + 30);
            if hit && !overlaps {
                injections.push(Injection {
                    kind: AnomalyLabel::Spike,
                    start,
                    len,
                    magnitude_sigma,
                    cluster_incident: !tenant_wide,
                    tenant_incident: tenant_wide,
                });
            }
        }
        let values = generate_values(profile, &timestamps, &load, &injections, &mut rng);
        let s = MetricSeries::new(
            tenant.as_str(),
            cluster.as_str(),
            node.as_str(),
            profile.name,
            timestamps.clone(),
            values,
        )?;
        injections.sort_by_key(|i| i.start);
        for inj in injections {
            truth.push(GroundTruth {
                key: s.key(),
                start_index: inj.start,
                end_index: inj.start + inj.len,
                start: timestamps[inj.start],
                end: timestamps[inj.start + inj.len - 1],
                kind: inj.kind,
                magnitude_sigma: inj.magnitude_sigma,
                cluster_incident: inj.cluster_incident,
                tenant_incident: inj.tenant_incident,
            });
        }
        series.push(s);
    }
    Ok((series, truth))
}

/// Writes series as the long CSV of the design: `tenant,cluster,node,metric,timestamp,value`,
/// with RFC 3339 UTC timestamps and values printed so they read back exactly.
pub fn write_long_csv<'a, W: Write>(series: impl IntoIterator<Item = &'a MetricSeries>, mut out: W) -> io::Result<()> {
    writeln!(out, "tenant,cluster,node,metric,timestamp,value")?;
    for s in series {
        let prefix = format!("{},{},{},{}", s.tenant_id(), s.cluster_id(), s.node_id(), s.metric_name());
        for (t, v) in s.timestamps().iter().zip(s.values()) {
            writeln!(out, "{prefix},{},{v}", t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))?;
        }
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> FleetConfig {
        FleetConfig {
            tenants: 2,
            clusters_per_tenant: 2,
            nodes_per_cluster: 3,
            metrics: 6,
            anomaly_probability: 0.5,
            ..Default::default()
        }
    }

    #[test]
    fn deterministic_for_a_seed_and_different_across_seeds() {
        let a = simulate_fleet(&small()).unwrap();
        let b = simulate_fleet(&small()).unwrap();
        assert_eq!(a.series, b.series);
        assert_eq!(a.truth, b.truth);
        let c = simulate_fleet(&FleetConfig { seed: 43, ..small() }).unwrap();
        assert_ne!(a.series[0].values(), c.series[0].values());
    }

    #[test]
    fn sizes_and_order() {
        let f = simulate_fleet(&small()).unwrap();
        assert_eq!(f.series.len(), 2 * 2 * 3 * 6);
        let nodes: Vec<(String, String, String)> = f
            .series
            .iter()
            .map(|s| (s.tenant_id().to_string(), s.cluster_id().to_string(), s.node_id().to_string()))
            .collect();
        assert!(nodes.windows(2).all(|w| w[0] <= w[1]), "nodes come in key order");
        let metrics: Vec<&str> = f.series[..6].iter().map(|s| s.metric_name().as_str()).collect();
        assert_eq!(
            metrics,
            ["cpu_usage", "memory_used", "request_latency_ms", "network_in_mbps", "disk_write_mbps", "error_rate"]
        );
        assert!(f.series.iter().all(|s| s.len() == 2880));
    }

    #[test]
    fn injected_anomalies_are_where_the_truth_says() {
        let cfg = FleetConfig { anomaly_probability: 1.0, incident_probability: 0.0, ..small() };
        let f = simulate_fleet(&cfg).unwrap();
        let clean = simulate_fleet(&FleetConfig { anomaly_probability: 0.0, ..cfg.clone() }).unwrap();
        assert!(f.truth.len() >= f.series.len() * 9 / 10, "{} of {}", f.truth.len(), f.series.len());
        for g in &f.truth {
            let i = f.series.iter().position(|s| s.key() == g.key).unwrap();
            let (dirty, base) = (f.series[i].values(), clean.series[i].values());
            let profile = &f.profiles[i % cfg.metrics];
            // Outside the anomaly (and before it, for trends that persist) the series is untouched.
            assert_eq!(dirty[..g.start_index], base[..g.start_index]);
            let biggest = (g.start_index..g.end_index).map(|j| (dirty[j] - base[j]).abs()).fold(0.0, f64::max);
            assert!(biggest > 3.0 * profile.noise, "{:?} {} changed by only {biggest}", g.kind, g.key);
            if !matches!(g.kind, AnomalyLabel::Trend | AnomalyLabel::LevelShift) {
                assert_eq!(dirty[g.end_index..], base[g.end_index..]);
            }
            // A dip goes down, a spike up; a variance change moves both ways.
            let moved = |j: usize| dirty[j] - base[j];
            match g.kind {
                AnomalyLabel::Spike => assert!((g.start_index..g.end_index).all(|j| moved(j) > 0.0)),
                AnomalyLabel::Dip => assert!((g.start_index..g.end_index).all(|j| moved(j) < 0.0)),
                AnomalyLabel::VarianceChange => {
                    assert!((g.start_index..g.end_index).any(|j| moved(j) > 0.0));
                    assert!((g.start_index..g.end_index).any(|j| moved(j) < 0.0));
                }
                _ => {}
            }
        }
        for kind in AnomalyLabel::ALL.into_iter().filter(|k| *k != AnomalyLabel::Normal) {
            assert!(f.truth.iter().any(|g| g.kind == kind), "no {kind}");
        }
    }

    #[test]
    fn tenant_incidents_hit_every_node_of_the_tenant_at_once() {
        let cfg = FleetConfig {
            anomaly_probability: 0.0,
            incident_probability: 0.0,
            tenant_incident_probability: 1.0,
            ..small()
        };
        let f = simulate_fleet(&cfg).unwrap();
        let nodes = cfg.tenants * cfg.clusters_per_tenant * cfg.nodes_per_cluster;
        assert_eq!(f.truth.len(), 2 * nodes, "error rate and latency on every node");
        assert!(f.truth.iter().all(|g| g.tenant_incident && !g.cluster_incident));
        for tenant in f.truth.iter().map(|g| &g.key.tenant_id) {
            let starts: std::collections::BTreeSet<_> =
                f.truth.iter().filter(|g| &g.key.tenant_id == tenant).map(|g| g.start_index).collect();
            assert_eq!(starts.len(), 1, "one start across the tenant's clusters");
        }
        // Off by default: the default fleet has none.
        assert!(simulate_fleet(&small()).unwrap().truth.iter().all(|g| !g.tenant_incident));
    }

    #[test]
    fn cluster_incidents_hit_every_node_of_the_cluster() {
        let cfg = FleetConfig { anomaly_probability: 0.0, incident_probability: 1.0, ..small() };
        let f = simulate_fleet(&cfg).unwrap();
        // latency and error rate on each of 3 nodes of each of 4 clusters.
        assert_eq!(f.truth.len(), 4 * 3 * 2);
        assert!(f.truth.iter().all(|g| g.cluster_incident && g.kind == AnomalyLabel::Spike));
    }

    #[test]
    fn metrics_on_a_node_move_together() {
        let f =
            simulate_fleet(&FleetConfig { anomaly_probability: 0.0, incident_probability: 0.0, ..small() }).unwrap();
        let (cpu, net) = (f.series[0].values(), f.series[3].values());
        let corr = correlation(cpu, net);
        assert!(corr > 0.9, "cpu and network correlation {corr}");
    }

    fn correlation(a: &[f64], b: &[f64]) -> f64 {
        let n = a.len() as f64;
        let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
        let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
        let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
        let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
        cov / (va * vb).sqrt()
    }

    #[test]
    fn one_node_alone_is_the_same_as_in_the_fleet() {
        let cfg = small();
        let fleet = simulate_fleet(&cfg).unwrap();
        let (series, _) = simulate_node(&cfg, 1, 0, 2).unwrap();
        // Tenant 1, cluster 0, node 2: after one whole tenant (clusters x nodes) and two nodes.
        let at = (cfg.clusters_per_tenant * cfg.nodes_per_cluster + 2) * cfg.metrics;
        assert_eq!(series, fleet.series[at..at + cfg.metrics]);
        assert!(simulate_node(&cfg, 2, 0, 0).unwrap_err().to_string().starts_with("tenant is 2"));
    }

    #[test]
    fn bad_config_is_refused() {
        let err = simulate_fleet(&FleetConfig { nodes_per_cluster: 0, ..Default::default() }).unwrap_err();
        assert_eq!(err.to_string(), "nodes_per_cluster is 0; it must be at least 1");
        let err = simulate_fleet(&FleetConfig { metrics: 9, ..Default::default() }).unwrap_err();
        assert_eq!(err.to_string(), "metrics is 9; at most 8 metric profiles are built in");
    }

    #[test]
    fn long_csv_export() {
        let cfg = FleetConfig {
            tenants: 1,
            clusters_per_tenant: 1,
            nodes_per_cluster: 1,
            metrics: 1,
            points: 3,
            ..Default::default()
        };
        let f = simulate_fleet(&cfg).unwrap();
        let mut out = Vec::new();
        write_long_csv(&f.series, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "tenant,cluster,node,metric,timestamp,value");
        assert_eq!(lines.len(), 4);
        assert!(lines[1].starts_with("acme,prod-eu,node-01,cpu_usage,2024-03-04T00:00:00Z,"));
        let v: f64 = lines[1].rsplit(',').next().unwrap().parse().unwrap();
        assert_eq!(v, f.series[0].values()[0]);
    }
}
