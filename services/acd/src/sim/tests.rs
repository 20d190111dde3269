//! The simulator against queueing theory.
//!
//! Tolerances: each figure is compared to Erlang C (no patience) or Erlang A
//! (exponential patience) within four standard errors estimated by batch means (20
//! batches of the counted window, after a warm-up that removes the empty-start bias),
//! plus a small absolute floor for figures near 0 or 1 whose batch variance can vanish.
//! With 19 degrees of freedom, |t| > 4 has probability below 0.1% per comparison; the
//! runs are seeded, so a pass is reproducible rather than lucky-once.

use hotline_kpi::erlang::{ErlangA, ErlangC, QueueFigures};

use super::*;

fn mean_se(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

fn check(name: &str, sim: f64, batches: &[f64], theory: f64, floor: f64) {
    let (_, se) = mean_se(batches);
    let tol = (4.0 * se).max(floor);
    assert!(
        (sim - theory).abs() <= tol,
        "{name}: simulated {sim:.5}, theory {theory:.5}, tolerance {tol:.5} (4 × SE {se:.5})"
    );
}

fn compare(report: &SimReport, theory: &QueueFigures) {
    let b = &report.batches;
    let sl: Vec<f64> = b.iter().map(Figures::service_level).collect();
    let asa: Vec<f64> = b.iter().map(Figures::asa_secs).collect();
    let ab: Vec<f64> = b.iter().map(Figures::abandon_rate).collect();
    check(
        "service level",
        report.service_level,
        &sl,
        theory.service_level,
        0.004,
    );
    check("ASA", report.asa_secs, &asa, theory.asa_secs, 0.05);
    check(
        "abandon rate",
        report.abandon_rate,
        &ab,
        theory.abandon_rate,
        0.002,
    );
    check(
        "occupancy",
        report.occupancy,
        &report.batch_occupancy,
        theory.occupancy,
        0.003,
    );
}

struct Case {
    agents: u32,
    occupancy: f64,
    patience: Option<f64>,
    hours: f64,
}

fn run_case(case: &Case, seed: u64) -> (SimReport, QueueFigures) {
    let aht = 180.0;
    let sl = 20.0;
    // For Erlang C, occupancy = offered load / agents; choose λ to hit it.
    let per_hour = case.occupancy * f64::from(case.agents) / aht * 3600.0;
    let mut cfg = SimConfig::single_queue(
        case.agents,
        per_hour,
        aht,
        case.patience,
        case.hours,
        sl,
        seed,
    );
    cfg.warmup_hours = case.hours / 20.0;
    let report = run(&cfg, |_| {}).unwrap();
    let lambda = per_hour / 3600.0;
    let theory = match case.patience {
        None => ErlangC {
            arrival_rate: lambda,
            handle_time_secs: aht,
            agents: case.agents,
            threshold_secs: sl,
        }
        .figures()
        .unwrap(),
        Some(p) => ErlangA {
            arrival_rate: lambda,
            handle_time_secs: aht,
            patience_secs: p,
            agents: case.agents,
            threshold_secs: sl,
        }
        .figures()
        .unwrap(),
    };
    (report, theory)
}

#[test]
fn light_load_agrees_with_erlang_c() {
    let (r, t) = run_case(
        &Case {
            agents: 10,
            occupancy: 0.5,
            patience: None,
            hours: 2000.0,
        },
        1,
    );
    compare(&r, &t);
}

#[test]
fn busy_load_agrees_with_erlang_c() {
    let (r, t) = run_case(
        &Case {
            agents: 30,
            occupancy: 0.85,
            patience: None,
            hours: 1000.0,
        },
        2,
    );
    compare(&r, &t);
}

#[test]
fn very_heavy_load_agrees_with_erlang_c() {
    let (r, t) = run_case(
        &Case {
            agents: 100,
            occupancy: 0.97,
            patience: None,
            hours: 1500.0,
        },
        3,
    );
    assert!(
        t.asa_secs > 20.0,
        "the case should be heavy: ASA {}",
        t.asa_secs
    );
    compare(&r, &t);
}

#[test]
fn impatient_callers_at_heavy_load_agree_with_erlang_a() {
    let (r, t) = run_case(
        &Case {
            agents: 30,
            occupancy: 0.95,
            patience: Some(120.0),
            hours: 1000.0,
        },
        4,
    );
    assert!(t.abandon_rate > 0.01);
    compare(&r, &t);
}

#[test]
fn an_overloaded_queue_with_impatient_callers_agrees_with_erlang_a() {
    // Offered load above the agents: only abandonment keeps it stable.
    let (r, t) = run_case(
        &Case {
            agents: 20,
            occupancy: 1.15,
            patience: Some(90.0),
            hours: 1000.0,
        },
        5,
    );
    assert!(t.abandon_rate > 0.1);
    compare(&r, &t);
}

#[test]
fn light_load_with_patient_callers_agrees_with_erlang_a() {
    let (r, t) = run_case(
        &Case {
            agents: 10,
            occupancy: 0.6,
            patience: Some(600.0),
            hours: 2000.0,
        },
        6,
    );
    compare(&r, &t);
}

#[test]
fn the_same_seed_gives_the_same_run_and_another_seed_another() {
    let cfg = SimConfig::single_queue(5, 80.0, 180.0, Some(60.0), 20.0, 20.0, 42);
    let a = run(&cfg, |_| {}).unwrap();
    let b = run(&cfg, |_| {}).unwrap();
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
    let c = run(&SimConfig { seed: 43, ..cfg }, |_| {}).unwrap();
    assert_ne!(a.offered, c.offered);
}

#[test]
fn lognormal_handle_times_keep_their_mean() {
    let mut cfg = SimConfig::single_queue(20, 300.0, 200.0, None, 200.0, 20.0, 7);
    cfg.handle = HandleTime::Lognormal {
        mean_secs: 200.0,
        cv: 1.5,
    };
    let r = run(&cfg, |_| {}).unwrap();
    let aht: Vec<f64> = r.batches.iter().map(Figures::aht_secs).collect();
    check("AHT", r.aht_secs, &aht, 200.0, 1.0);
}

#[test]
fn progress_is_reported_from_start_to_end() {
    let cfg = SimConfig::single_queue(5, 80.0, 180.0, None, 10.0, 20.0, 1);
    let mut seen = vec![];
    run(&cfg, |f| seen.push(f)).unwrap();
    assert!(seen.len() > 10);
    assert!(seen.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(*seen.last().unwrap(), 1.0);
}

#[test]
fn a_multi_queue_run_reports_each_queue_and_they_add_up_to_the_total() {
    let text = include_str!("../../../hotline/demo/scenario.toml");
    let base = SimConfig::single_queue(1, 1.0, 180.0, Some(180.0), 48.0, 20.0, 11);
    let cfg = SimConfig::from_scenario(text, "scenario.toml", base).unwrap();
    let r = run(&cfg, |_| {}).unwrap();
    assert_eq!(r.queues.len(), 3);
    assert_eq!(r.queues.iter().map(|q| q.offered).sum::<u64>(), r.offered);
    assert_eq!(r.queues.iter().map(|q| q.answered).sum::<u64>(), r.answered);
    assert_eq!(
        r.queues.iter().map(|q| q.abandoned).sum::<u64>(),
        r.abandoned
    );
    // The Spanish queue's stream has a 240 s lognormal handle time, the others 180 s.
    let es = r
        .queues
        .iter()
        .find(|q| q.queue.as_str() == "billing-es")
        .unwrap();
    assert!((es.aht_secs - 240.0).abs() < 20.0, "AHT {}", es.aht_secs);
}

#[test]
fn a_scenario_naming_an_unknown_queue_is_refused_with_its_name() {
    let text = "site = \"s\"\n[[tenant]]\nid = \"t\"\nskills = []\n[[queue]]\ntenant = \"t\"\nid = \"q\"\n[[agent]]\nid = \"a\"\nserves = [{ tenant = \"t\" }]\n[[sim.stream]]\ntenant = \"t\"\nqueue = \"nope\"\nper_hour = 10\n";
    let base = SimConfig::single_queue(1, 1.0, 180.0, None, 1.0, 20.0, 1);
    let err = SimConfig::from_scenario(text, "bad.toml", base).unwrap_err();
    assert_eq!(
        err.to_string(),
        "[[sim.stream]] 1 (t/nope) names unknown queue \"t/nope\""
    );
}
