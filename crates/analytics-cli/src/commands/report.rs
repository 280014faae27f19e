//! `analytics report`: one self-contained HTML file (inline SVG and CSS, no scripts, no network
//! fetches) drawn from the result store alone: per tenant, its clusters' and worst nodes' scores;
//! per top node, each anomalous metric's series (full width, with value and time ticks) with its
//! anomalous events shaded, labelled and explained. The incidents of the run come first, each linking to its nodes' charts. Large
//! fleets stay readable: each tenant shows its worst 20 nodes as bars and the
//! rest as a histogram.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use analytics_io::ResultStore;
use analytics_types::{AggregateLevel, AggregatedAnomalyScore, AnomalyLabel, AnomalyResult, Incident, SeriesKey};
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use crate::ReportArgs;

const WORST_NODES_SHOWN: usize = 20;
/// Incidents listed at the top of the page.
const INCIDENTS_SHOWN: usize = 10;

/// The id of a plotted node's section: `node/tenant/cluster/node`, whitespace replaced (an id
/// holds none), escaped for an attribute.
fn node_anchor(tenant: &str, cluster: &str, node: &str) -> String {
    esc(&format!("node/{tenant}/{cluster}/{node}").replace(char::is_whitespace, "_"))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn color(label: AnomalyLabel) -> &'static str {
    match label {
        AnomalyLabel::Spike => "#d62728",
        AnomalyLabel::Dip => "#1f77b4",
        AnomalyLabel::LevelShift => "#8c564b",
        AnomalyLabel::Trend => "#ff7f0e",
        AnomalyLabel::VarianceChange => "#17becf",
        AnomalyLabel::Seasonal => "#9467bd",
        AnomalyLabel::Normal => "#7f7f7f",
    }
}

/// A score as a colour from green (0) through amber to red (1).
fn heat(score: f64) -> String {
    let s = score.clamp(0.0, 1.0);
    let (r, g) = if s < 0.5 { ((s * 2.0 * 220.0) as u8, 170u8) } else { (220u8, ((1.0 - s) * 2.0 * 170.0) as u8) };
    format!("rgb({r},{g},60)")
}

/// Horizontal bars: one row per (label, score).
fn bars(rows: &[(String, f64)]) -> String {
    let (w, row_h, label_w) = (640.0, 18.0, 220.0);
    let h = row_h * rows.len() as f64 + 4.0;
    let mut svg = format!(r#"<svg width="{w}" height="{h}" role="img" xmlns="http://www.w3.org/2000/svg">"#);
    for (i, (label, score)) in rows.iter().enumerate() {
        let y = i as f64 * row_h + 2.0;
        let bw = (w - label_w - 50.0) * score.clamp(0.0, 1.0);
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end" font-size="12">{}</text><rect x="{label_w}" y="{y}" width="{bw:.1}" height="{}" fill="{}"/><text x="{}" y="{}" font-size="11">{score:.3}</text>"#,
            label_w - 6.0,
            y + 12.0,
            esc(label),
            row_h - 4.0,
            heat(*score),
            label_w + bw + 4.0,
            y + 12.0
        );
    }
    svg + "</svg>"
}

/// A histogram of scores in ten bins (for the nodes not drawn one by one).
fn histogram(scores: &[f64]) -> String {
    let mut bins = [0usize; 10];
    for s in scores {
        bins[((s * 10.0) as usize).min(9)] += 1;
    }
    let max = bins.iter().copied().max().unwrap_or(1).max(1) as f64;
    let (w, h) = (400.0, 90.0);
    let mut svg = format!(r#"<svg width="{w}" height="{}" role="img" xmlns="http://www.w3.org/2000/svg">"#, h + 18.0);
    for (i, &n) in bins.iter().enumerate() {
        let bh = h * n as f64 / max;
        let x = i as f64 * w / 10.0;
        let _ = write!(
            svg,
            r#"<rect x="{x}" y="{}" width="{}" height="{bh:.1}" fill="{}"><title>{n} nodes scoring {:.1}-{:.1}</title></rect><text x="{}" y="{}" font-size="10">{:.1}</text>"#,
            h - bh,
            w / 10.0 - 2.0,
            heat(i as f64 / 10.0 + 0.05),
            i as f64 / 10.0,
            (i + 1) as f64 / 10.0,
            x + 2.0,
            h + 14.0,
            i as f64 / 10.0
        );
    }
    svg + "</svg>"
}

/// A line plot of a series (min/max-decimated to at most 800 columns), as wide as the page, with
/// value and time ticks; each anomalous event is shaded over its own span (its window's when the
/// result carries no event) and labelled above the plot, a label skipped where it would touch
/// the one before.
fn plot(ts: &[DateTime<Utc>], vs: &[f64], windows: &[&AnomalyResult]) -> String {
    const W: f64 = 960.0;
    const H: f64 = 210.0;
    let (left, right, top, bottom) = (64.0, 12.0, 20.0, 34.0);
    if ts.is_empty() {
        return "<p>(no stored values for this series)</p>".into();
    }
    let (t0, t1) = (ts[0].timestamp() as f64, ts[ts.len() - 1].timestamp().max(ts[0].timestamp() + 1) as f64);
    let (lo, hi) = vs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let plot_h = H - top - bottom;
    let x = |t: f64| left + (W - left - right) * ((t - t0) / (t1 - t0)).clamp(0.0, 1.0);
    let y = |v: f64| top + plot_h * (1.0 - (v - lo) / span);
    let mut svg = format!(
        r#"<svg viewBox="0 0 {W} {H}" width="100%" role="img" xmlns="http://www.w3.org/2000/svg" font-size="11">"#
    );
    // Value ticks and grid lines: four levels from the lowest value to the highest.
    for k in 0..4 {
        let v = lo + span * f64::from(k) / 3.0;
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{}" y1="{yv:.1}" y2="{yv:.1}" stroke="#e4e4e4"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            W - right,
            left - 6.0,
            y(v) + 4.0,
            analytics_explain::format_value(v, None),
            yv = y(v)
        );
    }
    // Time ticks on round times (the step of 1 h to 7 d that gives four to eight of them); the
    // date is shown at the first tick and wherever it changes.
    let steps = [3600.0, 7200.0, 10_800.0, 21_600.0, 43_200.0, 86_400.0, 172_800.0, 604_800.0];
    let step = steps.iter().copied().find(|s| (t1 - t0) / s <= 8.0).unwrap_or(604_800.0);
    let mut last_day = String::new();
    let mut t = (t0 / step).ceil() * step;
    while t <= t1 {
        if let Some(at) = DateTime::<Utc>::from_timestamp(t as i64, 0) {
            let day = at.format("%Y-%m-%d").to_string();
            let label =
                if day == last_day { at.format("%H:%M").to_string() } else { at.format("%Y-%m-%d %H:%M").to_string() };
            last_day = day;
            let _ = write!(
                svg,
                r##"<line x1="{xt:.1}" x2="{xt:.1}" y1="{}" y2="{}" stroke="#888"/><text x="{xt:.1}" y="{}" text-anchor="middle">{label}</text>"##,
                H - bottom,
                H - bottom + 5.0,
                H - bottom + 18.0,
                xt = x(t)
            );
        }
        t += step;
    }
    // The events, shaded; their labels above the plot, none closer than 56 units to the last.
    let mut spans: Vec<(f64, f64, &AnomalyResult)> = windows
        .iter()
        .map(|r| {
            let (a, b) = r.evidence().and_then(|e| e.event_span()).unwrap_or((r.window_start(), r.window_end()));
            (x(a.timestamp() as f64), x(b.timestamp() as f64), *r)
        })
        .collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut last_label = f64::NEG_INFINITY;
    for (a, b, r) in spans {
        let c = color(r.anomaly_label());
        let _ = write!(
            svg,
            r#"<rect x="{a:.1}" y="{top}" width="{:.1}" height="{plot_h}" fill="{c}" opacity="0.3"><title>{}</title></rect>"#,
            (b - a).max(3.0),
            esc(r.explanation().unwrap_or(""))
        );
        if a - last_label >= 56.0 {
            let _ = write!(svg, r#"<text x="{a:.1}" y="{}" fill="{c}">{}</text>"#, top - 6.0, r.anomaly_label());
            last_label = a;
        }
    }
    // Min/max decimation: each column keeps its lowest and highest value, so spikes survive.
    let cols = 800usize;
    let mut pts = String::new();
    let per = ts.len().div_ceil(cols).max(1);
    for chunk in ts.iter().zip(vs).collect::<Vec<_>>().chunks(per) {
        let (tmin, vmin) = chunk
            .iter()
            .min_by(|a, b| a.1.total_cmp(b.1))
            .map(|(t, v)| (t.timestamp() as f64, **v))
            .unwrap_or_default();
        let (tmax, vmax) = chunk
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(t, v)| (t.timestamp() as f64, **v))
            .unwrap_or_default();
        let (first, second) = if tmin <= tmax { ((tmin, vmin), (tmax, vmax)) } else { ((tmax, vmax), (tmin, vmin)) };
        for (t, v) in [first, second] {
            let _ = write!(pts, "{:.1},{:.1} ", x(t), y(v));
        }
    }
    let _ = write!(
        svg,
        r##"<polyline points="{pts}" fill="none" stroke="#1f77b4" stroke-width="1.2"/><line x1="{left}" x2="{}" y1="{}" y2="{}" stroke="#888"/>"##,
        W - right,
        H - bottom,
        H - bottom
    );
    svg + "</svg>"
}

/// "What is wrong now": the run's first incidents, broadest first, each with its sentence and
/// its nodes, linked to their charts when they are plotted below.
fn incidents_section(incidents: &[Incident], plotted: &std::collections::BTreeSet<String>) -> String {
    let mut html = format!("<h2 id=\"incidents\">Incidents: {}</h2>", incidents.len());
    if incidents.is_empty() {
        return html + "<p>No anomalous event in this run.</p>";
    }
    if incidents.len() > INCIDENTS_SHOWN {
        let _ = write!(
            html,
            "<p class=\"muted\">The {INCIDENTS_SHOWN} broadest (most nodes, then most events, then score).</p>"
        );
    }
    html += "<ol class=\"incidents\">";
    for i in incidents.iter().take(INCIDENTS_SHOWN) {
        let mut nodes: Vec<(&str, &str)> =
            i.members().iter().map(|m| (m.key.cluster_id.as_str(), m.key.node_id.as_str())).collect();
        nodes.sort_unstable();
        nodes.dedup();
        let links: Vec<String> = nodes
            .iter()
            .map(|(c, n)| {
                let anchor = node_anchor(i.tenant_id().as_str(), c, n);
                let name = esc(&format!("{c}/{n}"));
                if plotted.contains(&anchor) {
                    format!("<a href=\"#{anchor}\">{name}</a>")
                } else {
                    name
                }
            })
            .collect();
        let _ = write!(
            html,
            "<li><b>{}</b>, {} of {} nodes, score {:.3}: {}<br><span class=\"muted\">nodes: {}</span></li>",
            i.scope(),
            i.nodes_affected(),
            i.nodes_in_scope(),
            i.score(),
            esc(i.summary()),
            links.join(", ")
        );
    }
    html + "</ol>"
}

pub(crate) fn run(args: &ReportArgs) -> Result<()> {
    anyhow::ensure!(
        args.store.exists(),
        "the store {} does not exist; run `analytics detect` first",
        args.store.display()
    );
    let store = ResultStore::open(&args.store)?;
    let run = store.latest_run()?.with_context(|| format!("the store {} holds no run yet", args.store.display()))?;
    let results = store.results(run.id)?;
    let aggregates = store.aggregates(run.id)?;
    let incidents = store.incidents(run.id)?;
    // Tenants and clusters in the order of what they rank: score, then anomalous windows.
    let (tenants, clusters, nodes): (Vec<_>, Vec<_>, Vec<_>) = {
        let by =
            |l| aggregates.iter().filter(|a: &&AggregatedAnomalyScore| a.level() == l).cloned().collect::<Vec<_>>();
        let ranked = |v: Vec<AggregatedAnomalyScore>| analytics_aggregate::top_n(&v, v.len());
        (ranked(by(AggregateLevel::Tenant)), ranked(by(AggregateLevel::Cluster)), by(AggregateLevel::Node))
    };
    let mut by_series: BTreeMap<SeriesKey, Vec<&AnomalyResult>> = BTreeMap::new();
    for r in results.iter().filter(|r| r.is_anomaly()) {
        by_series.entry(r.key()).or_default().push(r);
    }

    let mut html = String::from(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Anomaly report</title><style>\
         body{font-family:system-ui,sans-serif;margin:2em;max-width:1000px;color:#222}h1,h2,h3{font-weight:600}\
         h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}.muted{color:#666}.why{margin:.3em 0 1.2em}\
         table{border-collapse:collapse}td,th{padding:2px 10px;text-align:left}td.num{text-align:right}\
         .key span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}</style></head><body>",
    );
    let _ = write!(
        html,
        "<h1>Anomaly report</h1><p class=\"muted\">Run {} of engine <b>{}</b> over {} ({} series, {} points), data from {} to {}, written {}.</p>\
         <p class=\"key\">Windows: {}. \
         Scores in [0, 1]: 0.3 is one point in a thousand of a series' own history, 0.5 one in 10^5, 1 one in 10^10 or rarer.</p>",
        run.id,
        esc(&run.engine),
        esc(&run.source),
        run.series,
        run.points,
        run.range_start.format("%Y-%m-%d %H:%M UTC"),
        run.range_end.format("%Y-%m-%d %H:%M UTC"),
        run.finished_at.format("%Y-%m-%d %H:%M UTC"),
        AnomalyLabel::ALL
            .iter()
            .filter(|l| **l != AnomalyLabel::Normal)
            .map(|l| format!("<span style=\"background:{}\"></span>{}", color(*l), l.as_str().replace('_', " ")))
            .collect::<String>(),
    );
    let top = analytics_aggregate::top_n(&nodes, args.top);
    let plotted: std::collections::BTreeSet<String> = top
        .iter()
        .map(|n| {
            node_anchor(
                n.tenant_id().as_str(),
                n.cluster_id().map_or("?", |x| x.as_str()),
                n.node_id().map_or("?", |x| x.as_str()),
            )
        })
        .collect();
    html += &incidents_section(&incidents, &plotted);
    html += "<h2>Tenants</h2><table><tr><th>tenant</th><th>score</th><th title=\"the tail probability of its rarest labelled anomaly; equal scores rank by it\">rarest</th><th>metrics</th><th>anomalous windows</th></tr>";
    for t in &tenants {
        let _ = write!(
            html,
            "<tr><td>{}</td><td class=\"num\">{:.3}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(t.tenant_id().as_str()),
            t.aggregate_score(),
            crate::output::rarest(t.decades()),
            t.num_metrics_analyzed(),
            t.num_anomalies_detected()
        );
    }
    html += "</table>";
    for t in &tenants {
        let tid = t.tenant_id();
        let _ = write!(html, "<h2>Tenant {}</h2><h3>Clusters</h3>", esc(tid.as_str()));
        let rows: Vec<(String, f64)> = clusters
            .iter()
            .filter(|c| c.tenant_id() == tid)
            .map(|c| (c.cluster_id().map_or("?", |x| x.as_str()).to_owned(), c.aggregate_score()))
            .collect();
        html += &bars(&rows);
        let mine: Vec<AggregatedAnomalyScore> = nodes.iter().filter(|n| n.tenant_id() == tid).cloned().collect();
        let worst = analytics_aggregate::top_n(&mine, WORST_NODES_SHOWN);
        let _ = write!(html, "<h3>Worst {} of {} nodes</h3>", worst.len(), mine.len());
        let rows: Vec<(String, f64)> = worst
            .iter()
            .map(|n| {
                (
                    format!(
                        "{}/{}",
                        n.cluster_id().map_or("?", |x| x.as_str()),
                        n.node_id().map_or("?", |x| x.as_str())
                    ),
                    n.aggregate_score(),
                )
            })
            .collect();
        html += &bars(&rows);
        if mine.len() > worst.len() {
            let rest: Vec<f64> = analytics_aggregate::top_n(&mine, mine.len())[worst.len()..]
                .iter()
                .map(|n| n.aggregate_score())
                .collect();
            let _ = write!(html, "<h3>The other {} nodes, by score</h3>", rest.len());
            html += &histogram(&rest);
        }
    }
    let _ = write!(html, "<h2>The {} worst nodes</h2>", top.len());
    for n in &top {
        let (c, nd) = (n.cluster_id().map_or("?", |x| x.as_str()), n.node_id().map_or("?", |x| x.as_str()));
        let _ = write!(
            html,
            "<h3 id=\"{}\">{} / {} / {}: {:.3}</h3><p class=\"muted\">{} metrics, {} anomalous windows.</p>",
            node_anchor(n.tenant_id().as_str(), c, nd),
            esc(n.tenant_id().as_str()),
            esc(c),
            esc(nd),
            n.aggregate_score(),
            n.num_metrics_analyzed(),
            n.num_anomalies_detected()
        );
        let mut any = false;
        for (key, windows) in by_series
            .iter()
            .filter(|(k, _)| &k.tenant_id == n.tenant_id() && k.cluster_id.as_str() == c && k.node_id.as_str() == nd)
        {
            any = true;
            let (ts, vs) = store.samples(run.id, key)?;
            let _ = write!(html, "<h4>{}</h4>", esc(key.metric_name.as_str()));
            html += &plot(&ts, &vs, windows);
            let mut seen = std::collections::BTreeSet::new();
            for w in windows.iter().filter(|w| w.explanation().is_some_and(|e| seen.insert(e.to_owned()))) {
                let _ = write!(html, "<p class=\"why\">{}</p>", esc(w.explanation().unwrap_or("")));
            }
        }
        if !any {
            html += "<p>No window of this node was labelled anomalous: its score comes from high but unlabelled points.</p>";
        }
    }
    html += "</body></html>\n";
    std::fs::write(&args.out, &html).with_context(|| format!("cannot write {}", args.out.display()))?;
    crate::output::emit(&format!(
        "wrote {} ({} KiB): {} tenants, {} clusters, {} nodes, {} top nodes plotted\n",
        args.out.display(),
        html.len() / 1024,
        tenants.len(),
        clusters.len(),
        nodes.len(),
        top.len()
    ))
}
