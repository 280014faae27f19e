//! Labels, measured against the simulator's ground truth: every injected event (spikes, dips,
//! level shifts, trends, variance changes, seasonal breaks, cluster incidents) classified over
//! its true interval, plus stretches with nothing injected; and the sentences checked against
//! their own evidence. The per-shape table this prints is the one in docs/explanations.md.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;

use analytics_explain::{classify, detect_period, Period, Shape, ShapeConfig};
use analytics_sim::{simulate_fleet, FleetConfig, GroundTruth, Rng};
use analytics_types::{AnomalyLabel, MetricSeries};

fn fleet_config(seed: u64, anomaly_probability: f64) -> FleetConfig {
    FleetConfig {
        seed,
        tenants: 2,
        clusters_per_tenant: 2,
        nodes_per_cluster: 10,
        metrics: 8,
        anomaly_probability,
        incident_probability: 0.5,
        ..FleetConfig::default()
    }
}

fn period_of(series: &MetricSeries) -> Option<Period> {
    detect_period(series.timestamps(), series.values())
}

/// Classifies every anomaly the simulator injects into four fleets (seeds 1 to 4, about 1,500
/// events) over its true interval, and hands each to `f` with its series and shape.
fn each_injected(mut f: impl FnMut(&GroundTruth, &MetricSeries, Shape)) {
    let cfg = ShapeConfig::default();
    for seed in 1..=4 {
        let fleet = simulate_fleet(&fleet_config(seed, 1.0)).unwrap();
        let index: BTreeMap<_, _> = fleet.series.iter().map(|s| (s.key(), s)).collect();
        for g in &fleet.truth {
            let s = index[&g.key];
            let shape = classify(s.timestamps(), s.values(), g.start_index..g.end_index, period_of(s), &cfg).unwrap();
            f(g, s, shape);
        }
    }
}

/// One injected event, classified.
struct Case {
    truth: AnomalyLabel,
    predicted: AnomalyLabel,
    /// Whether a whole cycle (a day) and 30 points precede the event: only then can a seasonal
    /// expectation be formed.
    after_first_cycle: bool,
    /// Whether the evidence's numbers agree with what was injected (None: labelled wrongly, not
    /// checked).
    numbers: Option<Result<(), String>>,
}

/// Whether `shape`'s numbers agree with the injected event `g` on a series of noise `noise`:
/// - every label: the peak lies in the event (for a trend, or a shift, up to the end of what
///   was looked at after it), and a deviation's sign is the injection's;
/// - spike and dip: the baseline is within 4 noise sigmas of what the series would have been
///   at the peak without the injection;
/// - level shift: the move it states (from the level before to the level during) has the
///   injection's sign, and is within half the injection and 4 noise sigmas of it;
/// - trend: the move from the level before to the peak has the injection's sign;
/// - variance change: the spread during over the spread before is within 1.5 times (either
///   way) of the factor the noise was scaled by.
fn numbers_agree(g: &GroundTruth, s: &MetricSeries, noise: f64, shape: &Shape) -> Result<(), String> {
    let e = &shape.evidence;
    let peak = s.timestamps().iter().position(|t| *t == e.peak_time).ok_or("peak time not in the series")?;
    let size = g.magnitude_sigma * noise;
    let (start, end) = (g.start_index, g.end_index);
    let check = |ok: bool, what: &str| if ok { Ok(()) } else { Err(format!("{what}: {e:?}")) };
    match g.kind {
        AnomalyLabel::Spike | AnomalyLabel::Dip => {
            check((start..end).contains(&peak), "peak outside the event")?;
            check(e.deviation_sigma.signum() == size.signum(), "deviation's sign")?;
            let clean = e.peak_value - size;
            check((e.baseline - clean).abs() <= 4.0 * noise, "baseline against the clean value")
        }
        AnomalyLabel::LevelShift => {
            check((start..end + 30).contains(&peak), "peak outside the event")?;
            check(e.deviation_sigma.signum() == size.signum(), "deviation's sign")?;
            let moved = e.level_during.ok_or("no level during")? - e.level_before;
            check(moved.signum() == size.signum(), "the stated move's sign")?;
            check((moved - size).abs() <= 0.5 * size.abs() + 4.0 * noise, "the stated move's size")
        }
        AnomalyLabel::Trend => {
            check((start..end + 30).contains(&peak), "peak outside the event")?;
            check(e.deviation_sigma > 0.0, "deviation's sign")?;
            check(e.peak_value > e.level_before, "the stated move's sign")
        }
        AnomalyLabel::VarianceChange => {
            check((start..end).contains(&peak), "peak outside the event")?;
            let ratio = e.spread_during.ok_or("no spread during")? / e.spread_before.ok_or("no spread before")?;
            check((g.magnitude_sigma / 1.5..=g.magnitude_sigma * 1.5).contains(&ratio), "spread ratio")
        }
        AnomalyLabel::Seasonal | AnomalyLabel::Normal => check((start..end).contains(&peak), "peak outside the event"),
    }
}

/// The property test of the labels: every anomaly the simulator injects into 40 fleets of 320
/// series (seeds 1 to 40, two days at one minute; about 14,000 events, at least a thousand of
/// each shape), classified over its true interval, plus stretches of clean series. Checks each
/// label and, where the label is right, each number of its evidence against what was injected
/// (`numbers_agree`). Prints the confusion matrix and, per shape, label accuracy (all events,
/// and those after the series' first cycle) and how often the numbers agree.
#[test]
fn labels_and_numbers_of_injected_events_match_the_truth() {
    let cfg = ShapeConfig::default();
    let seeds: Vec<u64> = (1..=40).collect();
    // Two threads, one half of the seeds each.
    let mut cases: Vec<Case> = std::thread::scope(|scope| {
        let workers: Vec<_> = seeds
            .chunks(seeds.len().div_ceil(2))
            .map(|chunk| {
                let cfg = &cfg;
                scope.spawn(move || {
                    let mut cases = Vec::new();
                    for &seed in chunk {
                        let fc = fleet_config(seed, 1.0);
                        let fleet = simulate_fleet(&fc).unwrap();
                        let index: BTreeMap<_, _> = fleet.series.iter().map(|s| (s.key(), s)).collect();
                        let noise: BTreeMap<_, _> = fleet.profiles.iter().map(|p| (p.name, p.noise)).collect();
                        let mut periods = BTreeMap::new();
                        for g in &fleet.truth {
                            let s = index[&g.key];
                            let period = *periods.entry(g.key.clone()).or_insert_with(|| period_of(s));
                            let shape =
                                classify(s.timestamps(), s.values(), g.start_index..g.end_index, period, cfg).unwrap();
                            let right = shape.label == g.kind;
                            cases.push(Case {
                                truth: g.kind,
                                predicted: shape.label,
                                after_first_cycle: g.start_index >= fc.points_per_day() + 30,
                                numbers: right.then(|| numbers_agree(g, s, noise[s.metric_name().as_str()], &shape)),
                            });
                        }
                    }
                    cases
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    // Normal stretches: random intervals of clean series, of the same lengths anomalies have.
    let clean = simulate_fleet(&FleetConfig { incident_probability: 0.0, ..fleet_config(99, 0.0) }).unwrap();
    let mut rng = Rng::new(7, 7);
    for s in &clean.series {
        let period = period_of(s);
        for _ in 0..2 {
            let len = [1, 3, 5, 30, 120, 240][rng.index(0, 6)];
            let start = rng.index(s.len() / 10, s.len() - len - 40);
            let shape = classify(s.timestamps(), s.values(), start..start + len, period, &cfg).unwrap();
            cases.push(Case {
                truth: AnomalyLabel::Normal,
                predicted: shape.label,
                after_first_cycle: start >= 1440 + 30,
                numbers: None,
            });
        }
    }

    const N: usize = AnomalyLabel::ALL.len();
    let idx = |l: AnomalyLabel| AnomalyLabel::ALL.iter().position(|&x| x == l).unwrap();
    let mut matrix = [[0usize; N]; N];
    for c in &cases {
        matrix[idx(c.truth)][idx(c.predicted)] += 1;
    }
    let injected = cases.iter().filter(|c| c.truth != AnomalyLabel::Normal).count();
    println!(
        "\nconfusion matrix over {} cases ({injected} injected events), rows = truth, columns = predicted",
        cases.len()
    );
    print!("{:>16}", "");
    for label in AnomalyLabel::ALL {
        print!(" {:>9}", label.as_str().replace('_', " "));
    }
    println!();
    for (i, label) in AnomalyLabel::ALL.iter().enumerate() {
        print!("{:>16}", label.as_str());
        for count in matrix[i] {
            print!(" {count:>9}");
        }
        println!();
    }
    println!(
        "\n{:>16} {:>7} {:>9} {:>12} {:>20} {:>14}",
        "shape", "events", "accuracy", "first cycle", "after a whole cycle", "numbers agree"
    );
    let share = |part: usize, whole: usize| part as f64 / whole.max(1) as f64;
    let mut failures = Vec::new();
    for label in AnomalyLabel::ALL {
        let of: Vec<&Case> = cases.iter().filter(|c| c.truth == label).collect();
        let right = |cs: &[&Case]| cs.iter().filter(|c| c.predicted == c.truth).count();
        let (early, late): (Vec<&Case>, Vec<&Case>) = of.iter().partition(|c| !c.after_first_cycle);
        let checked: Vec<&Result<(), String>> = of.iter().filter_map(|c| c.numbers.as_ref()).collect();
        let agree = checked.iter().filter(|r| r.is_ok()).count();
        let accuracy = share(right(&of), of.len());
        println!(
            "{:>16} {:>7} {:>8.1}% {:>11.1}% {:>19.1}% {:>13}",
            label.as_str(),
            of.len(),
            100.0 * accuracy,
            100.0 * share(right(&early), early.len()),
            100.0 * share(right(&late), late.len()),
            if label == AnomalyLabel::Normal {
                "-".to_owned()
            } else {
                format!("{:.1}%", 100.0 * share(agree, checked.len()))
            },
        );
        for r in checked.iter().filter_map(|r| r.as_ref().err()).take(2) {
            println!("    {r}");
        }
        if label == AnomalyLabel::Normal {
            // Stretches of clean series, not injected: a floor, not the aim.
            if accuracy < 0.85 {
                failures.push(format!("normal stretches: {accuracy:.3} < 0.85"));
            }
            continue;
        }
        if of.len() < 1000 {
            failures.push(format!("only {} injected {label} events", of.len()));
        }
        if accuracy < 0.94 {
            failures.push(format!("{label}: label accuracy {accuracy:.3} < 0.94"));
        }
        let late_accuracy = share(right(&late), late.len());
        if late_accuracy < 0.95 {
            failures.push(format!("{label}: label accuracy after a whole cycle {late_accuracy:.3} < 0.95"));
        }
        if share(agree, checked.len()) < 0.95 {
            failures.push(format!("{label}: numbers agree in {agree} of {}", checked.len()));
        }
    }
    let overall = share(cases.iter().filter(|c| c.predicted == c.truth).count(), cases.len());
    println!("overall accuracy {:.1}%", 100.0 * overall);
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Every sentence says what its own evidence says: over the simulator's injected events (four
/// fleets, about 1,500 events), a spike "spiked to" or "dropped to" as its deviation's sign
/// says, a trend "rose" from a lower level to a higher peak or "fell" from a higher one to a
/// lower, "above" or "below" its baseline as the deviation's sign says, the numbers printed are
/// the evidence's (a trend's baseline too), and "since" is said only of what runs to the end of
/// the data. Before the verb followed the level's move, 5 of 1,491 trends "rose" to a lower
/// value or "fell" to a higher one.
#[test]
fn sentences_say_what_their_evidence_says() {
    use analytics_explain::{explain_series, format_value, unit_of};
    let mut checked = 0;
    let mut wrong: Vec<String> = Vec::new();
    each_injected(|g, _, shape| {
        let text = explain_series(&g.key, None, &shape);
        let e = &shape.evidence;
        let unit = unit_of(g.key.metric_name.as_str());
        let v = |x: f64| format_value(x, unit);
        let up = e.deviation_sigma >= 0.0;
        let side = if up { "robust sigma above" } else { "robust sigma below" };
        let mut fine = shape.label == AnomalyLabel::Normal || text.contains(side);
        match shape.label {
            AnomalyLabel::Spike | AnomalyLabel::Dip => {
                fine &= text.contains(&format!("{} {}", if up { "spiked to" } else { "dipped to" }, v(e.peak_value)));
                fine &= up == (shape.label == AnomalyLabel::Spike);
                fine &= text.contains(&format!("of {}", v(e.baseline)));
            }
            AnomalyLabel::LevelShift => {
                let during = e.level_during.unwrap_or(f64::NAN);
                let shifted_up = text.contains(" shifted up from ");
                fine &= shifted_up || text.contains(" shifted down from ");
                fine &= text.contains(&format!("from {} to {}", v(e.level_before), v(during)));
                fine &= if shifted_up { during >= e.level_before } else { during < e.level_before };
                fine &= text.contains(&format!("baseline of {}", v(e.baseline)));
                fine &= !text.contains(" since;") || shape.after_to_end;
            }
            AnomalyLabel::VarianceChange => {
                let (before, during) = (e.spread_before.unwrap_or(f64::NAN), e.spread_during.unwrap_or(f64::NAN));
                let grew = text.contains("spread grew");
                fine &= grew || text.contains("spread shrank");
                fine &= grew == (during >= before);
                fine &= text.contains(&format!("from {} to {}", v(before), v(during)));
                fine &= text.contains(&format!("around {}", v(e.level_during.unwrap_or(f64::NAN))));
            }
            AnomalyLabel::Trend => {
                let rose = text.contains(" rose from ");
                fine &= rose || text.contains(" fell from ");
                fine &= text.contains(&format!("from {} to {}", v(e.level_before), v(e.peak_value)));
                fine &= text.contains(&format!("baseline of {}", v(e.baseline)));
                fine &= if rose { e.peak_value >= e.level_before } else { e.peak_value <= e.level_before };
                fine &= !text.contains(" since.") || shape.after_to_end;
            }
            AnomalyLabel::Seasonal | AnomalyLabel::Normal => fine &= text.contains(&v(e.peak_value)),
        }
        checked += 1;
        if !fine {
            wrong.push(text);
        }
    });
    println!("{checked} sentences checked, {} inconsistent", wrong.len());
    for w in wrong.iter().take(5) {
        println!("  {w}");
    }
    assert!(checked > 1000);
    assert!(wrong.is_empty(), "{} of {checked} sentences contradict their evidence", wrong.len());
}
