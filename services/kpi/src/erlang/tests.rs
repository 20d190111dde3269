//! Checks of the Erlang figures against textbook values, against independent
//! direct computations (plain sums, a brute-force chain solved by ODE
//! integration), and properties that must hold for any forecast.

use super::*;
use proptest::prelude::*;

// === independent references ===

/// Erlang C by the textbook direct sum, terms A^k/k! built one factor at a
/// time in log space so large loads neither overflow nor need a gamma function.
fn erlang_c_by_direct_sum(load: f64, agents: u32) -> f64 {
    let c = f64::from(agents);
    let mut ln_term = 0.0; // ln(A^0 / 0!)
    let mut ln_terms = vec![ln_term];
    for k in 1..=agents {
        ln_term += load.ln() - f64::from(k).ln();
        ln_terms.push(ln_term);
    }
    let ln_top = ln_terms[agents as usize] + (c / (c - load)).ln();
    let ln_below = ln_terms[..agents as usize]
        .iter()
        .fold(f64::NEG_INFINITY, |acc, &t| ln_add_exp(acc, t));
    1.0 / (1.0 + (ln_below - ln_top).exp())
}

/// What a brute-force solution of the M/M/c+M chain gives: π_n by plain
/// products over n = 0..=`states`, then the answered-by-`t` and wait figures
/// by RK4 integration of the tagged contact's absorbing chain.
struct BruteForce {
    prob_wait: f64,
    prob_answered: f64,
    abandon_by_flow: f64,
    occupancy_by_busy_agents: f64,
    service_level: f64,
    asa_secs: f64,
}

fn brute_force_erlang_a(queue: &ErlangA, states: usize) -> BruteForce {
    let lambda = queue.arrival_rate;
    let mu = 1.0 / queue.handle_time_secs;
    let theta = 1.0 / queue.patience_secs;
    let c = queue.agents as usize;

    let mut pi = vec![1.0_f64];
    for n in 1..=states {
        let death = (n.min(c) as f64) * mu + (n.saturating_sub(c) as f64) * theta;
        pi.push(pi[n - 1] * lambda / death);
    }
    let total: f64 = pi.iter().sum();
    for p in &mut pi {
        *p /= total;
    }
    let prob_wait: f64 = pi[c..].iter().sum();
    let mean_queue: f64 = pi[c..].iter().enumerate().map(|(k, p)| k as f64 * p).sum();
    let busy: f64 = pi
        .iter()
        .enumerate()
        .map(|(n, p)| n.min(c) as f64 * p)
        .sum();

    // Tagged contact: p[i] = P(i ahead and still waiting), answered from 0.
    let full = c as f64 * mu;
    let advance = |i: usize| full + i as f64 * theta;
    let derivative = |p: &[f64], time: f64| -> (Vec<f64>, f64, f64) {
        let dp = (0..p.len())
            .map(|i| {
                let inflow = if i + 1 < p.len() {
                    advance(i + 1) * p[i + 1]
                } else {
                    0.0
                };
                inflow - (advance(i) + theta) * p[i]
            })
            .collect();
        let d_answered = advance(0) * p[0];
        (dp, d_answered, time * d_answered)
    };
    let dt = 0.02;
    let mut p = pi[c..].to_vec();
    let mut answered = 0.0;
    let mut wait_of_answered = 0.0;
    let mut answered_within = None;
    let mut time = 0.0;
    let horizon = 1500.0;
    while time < horizon {
        if answered_within.is_none() && time >= queue.threshold_secs - 1e-9 {
            answered_within = Some(answered);
        }
        let shifted = |p: &[f64], d: &[f64], h: f64| -> Vec<f64> {
            p.iter().zip(d).map(|(x, dx)| x + h * dx).collect()
        };
        let (k1, a1, w1) = derivative(&p, time);
        let (k2, a2, w2) = derivative(&shifted(&p, &k1, dt / 2.0), time + dt / 2.0);
        let (k3, a3, w3) = derivative(&shifted(&p, &k2, dt / 2.0), time + dt / 2.0);
        let (k4, a4, w4) = derivative(&shifted(&p, &k3, dt), time + dt);
        for i in 0..p.len() {
            p[i] += dt / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
        }
        answered += dt / 6.0 * (a1 + 2.0 * a2 + 2.0 * a3 + a4);
        wait_of_answered += dt / 6.0 * (w1 + 2.0 * w2 + 2.0 * w3 + w4);
        time += dt;
    }
    let prob_answered = (1.0 - prob_wait) + answered;
    BruteForce {
        prob_wait,
        prob_answered,
        abandon_by_flow: theta * mean_queue / lambda,
        occupancy_by_busy_agents: busy / c as f64,
        service_level: (1.0 - prob_wait) + answered_within.expect("threshold within horizon"),
        asa_secs: wait_of_answered / prob_answered,
    }
}

fn erlang_c(arrival_rate: f64, handle_time_secs: f64, agents: u32, t: f64) -> QueueFigures {
    ErlangC {
        arrival_rate,
        handle_time_secs,
        agents,
        threshold_secs: t,
    }
    .figures()
    .expect("stable Erlang C queue")
}

fn erlang_a(
    arrival_rate: f64,
    handle_time_secs: f64,
    patience_secs: f64,
    agents: u32,
    t: f64,
) -> QueueFigures {
    ErlangA {
        arrival_rate,
        handle_time_secs,
        patience_secs,
        agents,
        threshold_secs: t,
    }
    .figures()
    .expect("Erlang A queue settles")
}

fn assert_close(actual: f64, expected: f64, tolerance: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: got {actual}, expected {expected} ± {tolerance}"
    );
}

/// 100 contacts per half hour at 180 s AHT: the classic 10-Erlang example.
const HALF_HOUR_RATE: f64 = 100.0 / 1800.0;

// === Erlang B and C ===

#[test]
fn erlang_b_recursion_matches_the_truncated_poisson_formula() {
    // B(c, A) = (A^c/c!) / Σ_{k≤c} A^k/k!, small enough to form directly.
    for (load, agents) in [(2.0, 3_u32), (10.0, 11), (7.5, 12)] {
        let terms: Vec<f64> = (0..=agents)
            .scan(1.0, |term, k| {
                if k > 0 {
                    *term *= load / f64::from(k);
                }
                Some(*term)
            })
            .collect();
        let direct = terms[agents as usize] / terms.iter().sum::<f64>();
        assert_close(erlang_b(load, agents), direct, 1e-14, "Erlang B");
    }
}

#[test]
fn ten_erlangs_wait_with_textbook_probabilities_on_eleven_and_twelve_agents() {
    let eleven = erlang_c(HALF_HOUR_RATE, 180.0, 11, 20.0);
    let twelve = erlang_c(HALF_HOUR_RATE, 180.0, 12, 20.0);
    assert_close(eleven.offered_load_erlangs, 10.0, 1e-12, "load");
    assert_close(eleven.prob_wait, 0.6821, 5e-5, "C(11, 10)");
    assert_close(twelve.prob_wait, 0.4494, 5e-5, "C(12, 10)");
    assert_close(
        eleven.prob_wait,
        erlang_c_by_direct_sum(10.0, 11),
        1e-13,
        "C(11, 10) direct",
    );
    assert_close(
        twelve.prob_wait,
        erlang_c_by_direct_sum(10.0, 12),
        1e-13,
        "C(12, 10) direct",
    );
}

#[test]
fn erlang_c_service_level_asa_and_occupancy_follow_the_closed_forms() {
    let figures = erlang_c(HALF_HOUR_RATE, 180.0, 12, 20.0);
    let c = erlang_c_by_direct_sum(10.0, 12);
    assert_close(
        figures.service_level,
        1.0 - c * (-2.0 * 20.0 / 180.0_f64).exp(),
        1e-12,
        "SL",
    );
    assert_close(figures.asa_secs, c * 180.0 / 2.0, 1e-10, "ASA");
    assert_close(figures.occupancy, 10.0 / 12.0, 1e-12, "occupancy");
    assert_eq!(figures.abandon_rate, 0.0);
}

#[test]
fn erlang_c_service_level_at_zero_threshold_is_the_chance_of_not_waiting() {
    let figures = erlang_c(HALF_HOUR_RATE, 180.0, 13, 0.0);
    assert_close(
        figures.service_level,
        1.0 - figures.prob_wait,
        1e-15,
        "SL at t = 0",
    );
}

#[test]
fn erlang_c_handles_thousands_of_agents_without_overflow() {
    let figures = erlang_c(5000.0 / 300.0, 300.0, 5100, 20.0);
    let direct = erlang_c_by_direct_sum(5000.0, 5100);
    assert!(figures.prob_wait.is_finite() && figures.prob_wait > 0.0);
    assert!((figures.prob_wait - direct).abs() <= 1e-10 * direct.max(1e-300));
}

#[test]
fn erlang_c_refuses_a_load_its_agents_cannot_carry() {
    let error = ErlangC {
        arrival_rate: HALF_HOUR_RATE,
        handle_time_secs: 180.0,
        agents: 10,
        threshold_secs: 20.0,
    }
    .figures()
    .unwrap_err();
    assert_eq!(
        error,
        ErlangError::Unstable {
            load_erlangs: 10.0,
            agents: 10
        }
    );
    let message = error.to_string();
    assert!(
        message.contains("10 Erlangs") && message.contains("10 agents"),
        "{message}"
    );
}

#[test]
fn inputs_outside_their_domain_are_refused_by_name() {
    let good = ErlangA {
        arrival_rate: 0.1,
        handle_time_secs: 60.0,
        patience_secs: 30.0,
        agents: 8,
        threshold_secs: 20.0,
    };
    let cases = [
        (
            ErlangA {
                arrival_rate: -1.0,
                ..good
            },
            "arrival_rate",
        ),
        (
            ErlangA {
                arrival_rate: f64::NAN,
                ..good
            },
            "arrival_rate",
        ),
        (
            ErlangA {
                handle_time_secs: 0.0,
                ..good
            },
            "handle_time_secs",
        ),
        (
            ErlangA {
                patience_secs: 0.0,
                ..good
            },
            "patience_secs",
        ),
        (
            ErlangA {
                patience_secs: f64::NAN,
                ..good
            },
            "patience_secs",
        ),
        (ErlangA { agents: 0, ..good }, "agents"),
        (
            ErlangA {
                threshold_secs: -5.0,
                ..good
            },
            "threshold_secs",
        ),
    ];
    for (queue, field) in cases {
        match queue.figures() {
            Err(ErlangError::InvalidInput { name, .. }) => assert_eq!(name, field),
            other => panic!("{field}: expected InvalidInput, got {other:?}"),
        }
    }
    assert!(matches!(
        staffing(0.1, 60.0, 1.5, 20.0, 100),
        Err(ErlangError::InvalidInput {
            name: "sl_target",
            ..
        })
    ));
}

#[test]
fn no_arrivals_means_every_contact_is_answered_at_once() {
    for figures in [
        erlang_c(0.0, 60.0, 3, 20.0),
        erlang_a(0.0, 60.0, 30.0, 3, 20.0),
    ] {
        assert_eq!(figures.prob_wait, 0.0);
        assert_eq!(figures.service_level, 1.0);
        assert_eq!(figures.asa_secs, 0.0);
        assert_eq!(figures.abandon_rate, 0.0);
        assert_eq!(figures.occupancy, 0.0);
    }
}

// === staffing ===

#[test]
fn staffing_a_hundred_contacts_per_half_hour_at_eighty_in_twenty_needs_fourteen_agents() {
    let service_level_by_direct_formula = |agents: u32| {
        let spare = f64::from(agents) - 10.0;
        1.0 - erlang_c_by_direct_sum(10.0, agents) * (-spare * 20.0 / 180.0).exp()
    };
    assert!(service_level_by_direct_formula(13) < 0.8);
    assert!(service_level_by_direct_formula(14) >= 0.8);

    let (agents, figures) = staffing(HALF_HOUR_RATE, 180.0, 0.8, 20.0, 100).unwrap();
    assert_eq!(agents, 14);
    assert_close(
        figures.service_level,
        service_level_by_direct_formula(14),
        1e-12,
        "SL",
    );
    assert_close(
        figures.service_level,
        0.88835,
        5e-5,
        "textbook SL with 14 agents",
    );
}

#[test]
fn staffing_reports_a_target_out_of_reach_of_the_agent_cap() {
    let error = staffing(HALF_HOUR_RATE, 180.0, 0.8, 20.0, 13).unwrap_err();
    assert!(matches!(
        error,
        ErlangError::TargetUnreachable { max_agents: 13, .. }
    ));
    let too_few = staffing(HALF_HOUR_RATE, 180.0, 0.8, 20.0, 10).unwrap_err();
    assert!(matches!(
        too_few,
        ErlangError::TargetUnreachable { max_agents: 10, .. }
    ));
}

#[test]
fn staffing_with_no_target_takes_the_smallest_stable_team() {
    let (agents, _) = staffing(HALF_HOUR_RATE, 180.0, 0.0, 20.0, 100).unwrap();
    assert_eq!(agents, 11);
}

// === Erlang A ===

#[test]
fn erlang_a_matches_a_brute_force_solution_of_the_chain() {
    // Overloaded without abandonment (A = 3.6 on 3 agents), settled by patience.
    let queue = ErlangA {
        arrival_rate: 0.06,
        handle_time_secs: 60.0,
        patience_secs: 40.0,
        agents: 3,
        threshold_secs: 20.0,
    };
    let figures = queue.figures().unwrap();
    let brute = brute_force_erlang_a(&queue, 60);
    assert_close(figures.prob_wait, brute.prob_wait, 1e-12, "P(wait)");
    assert_close(
        figures.abandon_rate,
        brute.abandon_by_flow,
        1e-12,
        "abandon rate",
    );
    assert_close(
        figures.abandon_rate,
        1.0 - brute.prob_answered,
        1e-9,
        "1 − P(answered)",
    );
    assert_close(
        figures.occupancy,
        brute.occupancy_by_busy_agents,
        1e-12,
        "occupancy",
    );
    assert_close(
        figures.service_level,
        brute.service_level,
        1e-9,
        "service level",
    );
    assert_close(figures.asa_secs, brute.asa_secs, 1e-7, "ASA");
}

#[test]
fn erlang_a_abandon_rate_equals_the_share_not_answered() {
    let figures = erlang_a(0.5, 240.0, 90.0, 100, 20.0);
    let prob_answered = figures.occupancy * 100.0 / figures.offered_load_erlangs;
    assert_close(
        figures.abandon_rate + prob_answered,
        1.0,
        1e-12,
        "answered + abandoned",
    );
}

#[test]
fn erlang_a_with_endless_patience_is_erlang_c() {
    let a = erlang_a(HALF_HOUR_RATE, 180.0, f64::INFINITY, 12, 20.0);
    assert_eq!(a, erlang_c(HALF_HOUR_RATE, 180.0, 12, 20.0));
    let unstable = ErlangA {
        arrival_rate: HALF_HOUR_RATE,
        handle_time_secs: 180.0,
        patience_secs: f64::INFINITY,
        agents: 10,
        threshold_secs: 20.0,
    };
    assert!(matches!(
        unstable.figures(),
        Err(ErlangError::Unstable { .. })
    ));
}

#[test]
fn the_chain_without_abandonment_reproduces_the_erlang_c_closed_forms() {
    let chain = Chain {
        arrival_rate: HALF_HOUR_RATE,
        handle_time_secs: 180.0,
        abandon_rate: 0.0,
        agents: 12,
    };
    let queue = chain.queue_distribution().unwrap();
    for t in [0.0, 5.0, 20.0, 60.0, 600.0] {
        let exact = erlang_c(HALF_HOUR_RATE, 180.0, 12, t);
        let machinery = chain.figures(&queue, t);
        assert_close(machinery.prob_wait, exact.prob_wait, 1e-12, "P(wait)");
        assert_close(machinery.service_level, exact.service_level, 1e-12, "SL");
        assert_close(machinery.asa_secs, exact.asa_secs, 1e-9, "ASA");
        assert_close(machinery.occupancy, exact.occupancy, 1e-12, "occupancy");
    }
}

#[test]
fn erlang_a_with_very_long_patience_agrees_with_the_erlang_c_closed_forms() {
    // The gap is O(θ): about 1e-7 in P(wait) at θ = 1e-9 here, 1e-10 at 1e-12.
    for t in [0.0, 20.0, 120.0] {
        let exact = erlang_c(HALF_HOUR_RATE, 180.0, 12, t);
        let nearly = erlang_a(HALF_HOUR_RATE, 180.0, 1e12, 12, t);
        assert_close(nearly.prob_wait, exact.prob_wait, 1e-9, "P(wait)");
        assert_close(nearly.service_level, exact.service_level, 1e-9, "SL");
        assert_close(nearly.asa_secs, exact.asa_secs, 1e-6, "ASA");
        assert!(nearly.abandon_rate < 1e-9);
    }
}

#[test]
fn erlang_a_settles_a_queue_offered_more_work_than_its_agents_can_do() {
    // Twice the work the agents can do: roughly half the contacts must abandon.
    let figures = erlang_a(2.0, 60.0, 30.0, 60, 20.0);
    assert!(figures.abandon_rate >= 0.5 - 1e-9, "{figures:?}");
    assert!(figures.abandon_rate < 0.6, "{figures:?}");
    assert!(
        figures.occupancy > 0.95 && figures.occupancy <= 1.0,
        "{figures:?}"
    );
    assert!(figures.prob_wait > 0.99, "{figures:?}");
}

#[test]
fn erlang_a_service_level_at_zero_threshold_is_the_chance_of_not_waiting() {
    let figures = erlang_a(0.06, 60.0, 40.0, 3, 0.0);
    assert_close(
        figures.service_level,
        1.0 - figures.prob_wait,
        1e-15,
        "SL at t = 0",
    );
}

#[test]
fn erlang_a_with_a_huge_threshold_counts_every_answered_contact() {
    let figures = erlang_a(0.5, 240.0, 90.0, 100, 1e6);
    assert_close(
        figures.service_level,
        1.0 - figures.abandon_rate,
        1e-12,
        "SL at t = ∞",
    );
}

#[test]
fn erlang_a_stays_exact_for_a_large_center() {
    // 5 contacts/s at 5 min AHT on 1450 agents, 2 min patience, 60 s threshold.
    let figures = erlang_a(5.0, 300.0, 120.0, 1450, 60.0);
    for value in [
        figures.occupancy,
        figures.prob_wait,
        figures.service_level,
        figures.abandon_rate,
    ] {
        assert!((0.0..=1.0).contains(&value), "{figures:?}");
    }
    assert!(
        figures.asa_secs.is_finite() && figures.asa_secs >= 0.0,
        "{figures:?}"
    );
}

#[test]
fn poisson_windows_sum_to_one_and_centre_on_the_mean() {
    for mean in [0.01, 0.5, 3.0, 40.0, 1e4, 1e7] {
        let (first, weights) = poisson_window(mean);
        let total: f64 = weights.iter().sum();
        let centre: f64 = weights
            .iter()
            .enumerate()
            .map(|(j, w)| (first + j) as f64 * w)
            .sum();
        assert_close(total, 1.0, 1e-14, "total weight");
        assert!(
            (centre - mean).abs() <= 1e-9 * mean.max(1.0),
            "mean {mean}: {centre}"
        );
    }
}

#[test]
fn answered_within_gives_the_hypoexponential_cdf_for_one_position() {
    // One contact ahead: answered after Exp(r0 + …) stages r1 = cμ + 2θ, r0 = cμ + θ.
    let (full, theta, t) = (0.5_f64, 0.25_f64, 3.0_f64);
    let (r1, r0) = (full + 2.0 * theta, full + theta);
    let answered = (full + theta) / r1 * full / r0;
    let cdf = 1.0 - (r0 * (-r1 * t).exp() - r1 * (-r0 * t).exp()) / (r0 - r1);
    let got = answered_within(&[0.0, 1.0], full, theta, t);
    assert_close(got, answered * cdf, 1e-14, "P(answered within t | 1 ahead)");
}

#[test]
fn queue_figures_serialize_with_their_field_names() {
    let json = serde_json::to_value(erlang_c(HALF_HOUR_RATE, 180.0, 12, 20.0)).unwrap();
    for field in [
        "offered_load_erlangs",
        "occupancy",
        "prob_wait",
        "service_level",
        "asa_secs",
        "abandon_rate",
    ] {
        assert!(json[field].is_number(), "{field} missing from {json}");
    }
}

// === properties ===

/// A forecast: arrival rate (per s), AHT (s), threshold (s).
fn forecast() -> impl Strategy<Value = (f64, f64, f64)> {
    (10.0..1000.0_f64, 30.0..600.0_f64, 0.0..120.0_f64)
        .prop_map(|(per_hour, aht, t)| (per_hour / 3600.0, aht, t))
}

/// Smallest stable staffing for a load.
fn least_stable(load: f64) -> u32 {
    load.floor() as u32 + 1
}

proptest! {
    #[test]
    fn erlang_c_service_level_rises_and_asa_falls_with_each_added_agent(
        (rate, aht, t) in forecast(),
        extra in 0_u32..15,
    ) {
        let agents = least_stable(rate * aht) + extra;
        let fewer = erlang_c(rate, aht, agents, t);
        let more = erlang_c(rate, aht, agents + 1, t);
        prop_assert!(more.service_level >= fewer.service_level - 1e-12);
        prop_assert!(more.asa_secs <= fewer.asa_secs + 1e-12);
        prop_assert!(more.prob_wait <= fewer.prob_wait + 1e-12);
        prop_assert!((0.0..=1.0).contains(&fewer.service_level));
    }

    #[test]
    fn erlang_a_service_level_rises_and_asa_and_abandonment_fall_with_each_added_agent(
        (rate, aht, t) in forecast(),
        patience in 5.0..600.0_f64,
        agents in 1_u32..200,
    ) {
        let fewer = erlang_a(rate, aht, patience, agents, t);
        let more = erlang_a(rate, aht, patience, agents + 1, t);
        prop_assert!(more.service_level >= fewer.service_level - 1e-12, "{fewer:?} {more:?}");
        prop_assert!(more.asa_secs <= fewer.asa_secs + 1e-9, "{fewer:?} {more:?}");
        prop_assert!(more.abandon_rate <= fewer.abandon_rate + 1e-12, "{fewer:?} {more:?}");
        for figures in [fewer, more] {
            for value in [
                figures.abandon_rate,
                figures.service_level,
                figures.prob_wait,
                figures.occupancy,
            ] {
                prop_assert!((0.0..=1.0).contains(&value), "{figures:?}");
            }
        }
    }

    #[test]
    fn erlang_a_answered_and_abandoned_shares_add_up_to_one(
        (rate, aht, t) in forecast(),
        patience in 5.0..600.0_f64,
        agents in 1_u32..200,
    ) {
        let queue = ErlangA {
            arrival_rate: rate,
            handle_time_secs: aht,
            patience_secs: patience,
            agents,
            threshold_secs: t,
        };
        let figures = queue.figures().unwrap();
        let prob_answered = figures.occupancy * f64::from(agents) / figures.offered_load_erlangs;
        prop_assert!((prob_answered + figures.abandon_rate - 1.0).abs() < 1e-9, "{figures:?}");
        prop_assert!(figures.service_level <= prob_answered + 1e-12);
    }

    #[test]
    fn erlang_a_approaches_erlang_c_as_patience_grows(
        (rate, aht, t) in forecast(),
        extra in 0_u32..15,
    ) {
        // At most 97% busy, so the Erlang C queue is not too long to hold.
        let load = rate * aht;
        let agents = (load / 0.97).ceil() as u32 + extra;
        let exact = erlang_c(rate, aht, agents, t);
        let error_at = |patience: f64| {
            let a = erlang_a(rate, aht, patience, agents, t);
            (a.service_level - exact.service_level).abs()
                + (a.prob_wait - exact.prob_wait).abs()
                + (a.asa_secs - exact.asa_secs).abs() / aht
                + a.abandon_rate
        };
        // The gap closes in proportion to θ = 1/patience.
        let (near, nearer) = (error_at(1e9), error_at(1e12));
        prop_assert!(nearer < 1e-6, "error {nearer}");
        prop_assert!(nearer <= near / 100.0 + 1e-10, "{near} then {nearer}");
    }
}
