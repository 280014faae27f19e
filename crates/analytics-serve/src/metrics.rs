//! `/metrics` in Prometheus' text exposition format (version 0.0.4, which OpenMetrics scrapers
//! also accept): the scores of the series and their roll-ups, the open incidents, and, for the
//! admin token only, the service's own health.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use crate::auth::Access;
use crate::snapshot::{esc, num};
use crate::{lock, Service};

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The page for `access`.
pub(crate) fn render(svc: &Service, access: &Access) -> String {
    // The scores are formatted once per poll (the snapshot); a request only joins the
    // tenants it may see.
    let snap = svc.snapshot();
    let mut out = String::with_capacity(
        1024 + snap.families.iter().map(|f| f.by_tenant.values().map(String::len).sum::<usize>()).sum::<usize>(),
    );
    for family in &snap.families {
        header(&mut out, family.name, "gauge", family.help);
        for (tenant, lines) in &family.by_tenant {
            if access.sees(tenant) {
                out.push_str(lines);
            }
        }
    }
    let live = snap.live;
    let (tracked, points_total, dropped) = {
        let fleet = lock(&svc.fleet);
        (fleet.series.len(), fleet.points_total, fleet.dropped)
    };

    // Each family's samples follow its own header, as the text format (and OpenMetrics) wants.
    let incidents: Vec<(String, f64)> = svc
        .open_incidents()
        .iter()
        .filter(|i| access.sees(&i.tenant))
        .map(|inc| {
            let labels = format!(
                "scope=\"{}\",tenant=\"{}\",cluster=\"{}\",node=\"{}\",metric=\"{}\"",
                format!("{:?}", inc.scope).to_lowercase(),
                esc(&inc.tenant),
                esc(&inc.cluster),
                esc(&inc.node),
                esc(&inc.metric)
            );
            (labels, inc.score)
        })
        .collect();
    header(&mut out, "anomaly_incident_open", "gauge", "An incident open now (1), with its scope and place.");
    for (labels, _) in &incidents {
        let _ = writeln!(out, "anomaly_incident_open{{{labels}}} 1");
    }
    header(&mut out, "anomaly_incident_score", "gauge", "Highest score among an open incident's members.");
    for (labels, score) in &incidents {
        let _ = writeln!(out, "anomaly_incident_score{{{labels}}} {}", num(*score));
    }

    if *access != Access::Admin {
        return out;
    }
    let h = lock(&svc.health).clone();
    let gauge = |out: &mut String, name: &str, help: &str, v: f64| {
        header(out, name, "gauge", help);
        let _ = writeln!(out, "{name} {}", num(v));
    };
    let counter = |out: &mut String, name: &str, help: &str, v: u64| {
        header(out, name, "counter", help);
        let _ = writeln!(out, "{name} {v}");
    };
    gauge(&mut out, "analytics_serve_series_tracked", "Series with an engine state.", tracked as f64);
    gauge(&mut out, "analytics_serve_series_live", "Series not stale.", live as f64);
    counter(&mut out, "analytics_serve_points_total", "Points fed to the engines.", points_total);
    let rate = if h.last_poll_seconds > 0.0 { h.last_poll_points as f64 / h.last_poll_seconds } else { 0.0 };
    gauge(&mut out, "analytics_serve_points_per_second", "Points fed per second of the last poll's work.", rate);
    gauge(&mut out, "analytics_serve_poll_seconds", "Duration of the last poll.", h.last_poll_seconds);
    counter(&mut out, "analytics_serve_polls_total", "Polls made.", h.polls);
    let lag = h.newest_point.map_or(f64::NAN, |t| (chrono::Utc::now() - t).num_milliseconds() as f64 / 1000.0);
    gauge(&mut out, "analytics_serve_poll_lag_seconds", "Age of the newest point taken, by the wall clock.", lag);
    header(&mut out, "analytics_serve_samples_dropped_total", "counter", "Points dropped, by reason.");
    let _ = writeln!(out, "analytics_serve_samples_dropped_total{{reason=\"out_of_order\"}} {}", dropped.out_of_order);
    let _ = writeln!(out, "analytics_serve_samples_dropped_total{{reason=\"duplicate\"}} {}", dropped.duplicate);
    let nan: u64 = svc.sources.iter().map(|s| s.nan_dropped.load(Ordering::Relaxed)).sum();
    let _ = writeln!(out, "analytics_serve_samples_dropped_total{{reason=\"nan\"}} {nan}");
    header(&mut out, "analytics_serve_source_errors_total", "counter", "Failed polls of a source.");
    for s in &svc.sources {
        let _ = writeln!(
            out,
            "analytics_serve_source_errors_total{{source=\"{}\"}} {}",
            esc(&s.cfg.name),
            s.errors.load(Ordering::Relaxed)
        );
    }
    header(&mut out, "analytics_serve_source_unmapped_series_total", "counter", "Series left out for a missing label.");
    for s in &svc.sources {
        let _ = writeln!(
            out,
            "analytics_serve_source_unmapped_series_total{{source=\"{}\"}} {}",
            esc(&s.cfg.name),
            s.unmapped.load(Ordering::Relaxed)
        );
    }
    let age =
        h.last_checkpoint.map_or(f64::NAN, |t| (chrono::Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0);
    gauge(&mut out, "analytics_serve_checkpoint_age_seconds", "Seconds since the last checkpoint.", age);
    gauge(&mut out, "analytics_serve_checkpoint_series", "Series in the last checkpoint.", h.checkpoint_series as f64);
    counter(&mut out, "analytics_serve_checkpoint_errors_total", "Checkpoints that failed.", h.checkpoint_errors);
    counter(&mut out, "analytics_serve_alerts_sent_total", "Alerts delivered to Alertmanager.", h.alerts_sent);
    counter(&mut out, "analytics_serve_alert_errors_total", "Failed posts to Alertmanager.", h.alert_errors);
    counter(&mut out, "analytics_serve_series_forgotten_total", "Series dropped after forget_seconds.", h.forgotten);
    gauge(&mut out, "analytics_serve_series_restored", "Series resumed from checkpoints at start.", h.restored as f64);
    gauge(&mut out, "analytics_serve_uptime_seconds", "Seconds since start.", svc.started.elapsed().as_secs_f64());
    out
}
