//! Exact steady-state figures for one queue: Erlang C, Erlang A and staffing.
//!
//! Contacts arrive as a Poisson stream at rate λ (per second); each is handled by
//! one of `c` agents for an exponential time with mean AHT (μ = 1/AHT); contacts
//! wait first come, first served. Two models:
//!
//! - [`ErlangC`] (M/M/c): contacts never abandon. Closed forms; needs λ·AHT < c.
//! - [`ErlangA`] (M/M/c+M): each waiting contact abandons after an exponential
//!   patience with mean P (θ = 1/P). Always stable; solved exactly on the
//!   birth–death chain of the number of contacts in the system.
//!
//! # Definitions
//!
//! Both models fill one [`QueueFigures`] with the definitions the measured KPIs
//! use, so a simulator can compare like with like:
//!
//! - service level: P(answered within `t`) over **all** arrivals — an abandoned
//!   contact counts as missed, an immediately answered one as met;
//! - ASA: mean wait of **answered** contacts, zero waits included;
//! - occupancy: busy agents / staffed agents = λ·P(answered)·AHT / c;
//! - abandon rate: abandoned contacts / arrivals.
//!
//! # Numerics
//!
//! No factorials or powers are formed: the Erlang B blocking probability comes
//! from the recursion B(0) = 1, B(k) = A·B(k−1) / (k + A·B(k−1)), which stays in
//! [0, 1] for any load and thousands of agents. Erlang A's stationary law above
//! `c` is built in log space and truncated once the remaining tail is below
//! [`TAIL_TOLERANCE`] of the total mass (at most [`MAX_QUEUE_STATES`] queue
//! positions). Its service level sums, over the queue positions an arrival can
//! find, the hypoexponential waiting-time CDF, evaluated for all positions at
//! once by uniformization with Poisson weights built by recursion outward from
//! the mode, so no weight underflows or overflows.

use serde::Serialize;

#[cfg(test)]
mod tests;

/// Relative mass below which Erlang A's stationary tail is dropped: far below
/// anything a simulation can measure, far above rounding of the kept terms.
pub const TAIL_TOLERANCE: f64 = 1e-14;

/// Most queue positions (states n ≥ c) Erlang A will hold, so a forecast with an
/// almost endless patience on an overloaded queue fails loudly instead of
/// exhausting memory. Each position costs two `f64`s and one step of work per
/// uniformization step.
pub const MAX_QUEUE_STATES: usize = 1 << 20;

/// Unnormalized Poisson weight (relative to the mode's weight of 1) below which
/// the window of uniformization steps is cut.
const POISSON_CUTOFF: f64 = 1e-20;

/// Mass still waiting in the uniformized chain, relative to the mass that
/// started waiting, below which the chain counts as absorbed.
const ABSORBED_TOLERANCE: f64 = 1e-16;

/// What can go wrong computing queue figures.
///
/// All variants describe the inputs, so none is worth retrying unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ErlangError {
    /// Without abandonment a queue only settles when agents outnumber the
    /// offered load; otherwise waits grow without bound and no figure exists.
    #[error(
        "queue is unstable: offered load of {load_erlangs} Erlangs needs more than {agents} agents"
    )]
    Unstable {
        /// Offered load λ·AHT that the agents could not carry.
        load_erlangs: f64,
        /// Agents that were staffed.
        agents: u32,
    },

    /// An input outside its domain (negative rate, zero agents, NaN, …).
    #[error("{name} must be {expected}, got {value}")]
    InvalidInput {
        /// Name of the offending input, as the field or argument is called.
        name: &'static str,
        /// What the input must be.
        expected: &'static str,
        /// The value given.
        value: f64,
    },

    /// Erlang A's stationary law did not fall below [`TAIL_TOLERANCE`] within
    /// [`MAX_QUEUE_STATES`] positions: patience is too long for an overloaded
    /// queue to be solved exactly here.
    #[error(
        "Erlang A queue length does not settle within {max_states} positions \
         (offered load {load_erlangs} Erlangs on {agents} agents, patience {patience_secs} s)"
    )]
    TooManyStates {
        /// The cap that was hit, [`MAX_QUEUE_STATES`].
        max_states: usize,
        /// Offered load λ·AHT.
        load_erlangs: f64,
        /// Agents that were staffed.
        agents: u32,
        /// Mean patience in seconds.
        patience_secs: f64,
    },

    /// [`staffing`] reached its agent cap without meeting the target.
    #[error(
        "service level {target} within {threshold_secs} s is not reached with at most \
         {max_agents} agents (offered load {load_erlangs} Erlangs)"
    )]
    TargetUnreachable {
        /// Service level that was asked for.
        target: f64,
        /// Answer-time threshold in seconds.
        threshold_secs: f64,
        /// Most agents staffing was allowed to try.
        max_agents: u32,
        /// Offered load λ·AHT.
        load_erlangs: f64,
    },
}

/// Results in this module default to [`ErlangError`].
pub type Result<T, E = ErlangError> = std::result::Result<T, E>;

/// Steady-state figures of one queue, with the same definitions as the measured
/// KPIs so predicted and observed values can be compared field by field.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct QueueFigures {
    /// λ·AHT: the agent-seconds of work arriving per second. Staffing starts
    /// from it, and a queue without abandonment needs more agents than this.
    pub offered_load_erlangs: f64,
    /// Fraction of staffed agent time spent handling contacts,
    /// λ·P(answered)·AHT / c. What agents feel; cost per contact follows it.
    pub occupancy: f64,
    /// Probability an arriving contact finds every agent busy and has to queue
    /// (Erlang C's C(c, A); for Erlang A, P(n ≥ c) at arrival).
    pub prob_wait: f64,
    /// P(answered within the threshold) over all arrivals: abandoned contacts
    /// count as missed. The figure service-level targets are stated in.
    pub service_level: f64,
    /// Mean wait in seconds of answered contacts, zero waits included (ASA).
    pub asa_secs: f64,
    /// Fraction of arrivals that abandon before being answered; 0 for Erlang C.
    pub abandon_rate: f64,
}

// === impl ErlangC ===

/// M/M/c queue without abandonment: the classic staffing model, and the limit of
/// [`ErlangA`] as patience grows without bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErlangC {
    /// Contacts arriving per second (λ ≥ 0).
    pub arrival_rate: f64,
    /// Mean handle time in seconds (AHT > 0), talk plus wrap-up: the time an
    /// agent is unavailable per contact.
    pub handle_time_secs: f64,
    /// Agents staffed on the queue (c ≥ 1).
    pub agents: u32,
    /// Answer-time threshold `t` of the service level, in seconds (≥ 0).
    pub threshold_secs: f64,
}

impl ErlangC {
    /// Computes the queue's figures in closed form: C(c, A) from Erlang B,
    /// SL = 1 − C·e^{−(cμ−λ)t}, ASA = C·AHT / (c − A), occupancy = A / c.
    ///
    /// Fails with [`ErlangError::Unstable`] when λ·AHT ≥ c, because then no
    /// steady state exists.
    pub fn figures(&self) -> Result<QueueFigures> {
        validate_rate(self.arrival_rate)?;
        validate_handle_time(self.handle_time_secs)?;
        validate_agents(self.agents)?;
        validate_threshold(self.threshold_secs)?;

        let load = self.arrival_rate * self.handle_time_secs;
        let agents = f64::from(self.agents);
        if load >= agents {
            return Err(ErlangError::Unstable {
                load_erlangs: load,
                agents: self.agents,
            });
        }
        let prob_wait = erlang_c(load, self.agents);
        let spare = agents - load;
        Ok(QueueFigures {
            offered_load_erlangs: load,
            occupancy: load / agents,
            prob_wait,
            service_level: 1.0
                - prob_wait * (-spare * self.threshold_secs / self.handle_time_secs).exp(),
            asa_secs: prob_wait * self.handle_time_secs / spare,
            abandon_rate: 0.0,
        })
    }
}

/// Erlang B blocking probability B(c, A) by the stable recursion; no factorials.
fn erlang_b(load: f64, agents: u32) -> f64 {
    let mut blocking = 1.0;
    for k in 1..=agents {
        let carried = load * blocking;
        blocking = carried / (f64::from(k) + carried);
    }
    blocking
}

/// Erlang C waiting probability C(c, A) = B / (1 − ρ(1 − B)); needs A < c.
fn erlang_c(load: f64, agents: u32) -> f64 {
    let blocking = erlang_b(load, agents);
    let rho = load / f64::from(agents);
    blocking / (1.0 - rho * (1.0 - blocking))
}

// === impl ErlangA ===

/// M/M/c+M queue: waiting contacts abandon after an exponential patience. The
/// model to compare a simulation with abandonment against, and the honest one
/// for an overloaded queue, which Erlang C cannot describe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErlangA {
    /// Contacts arriving per second (λ ≥ 0).
    pub arrival_rate: f64,
    /// Mean handle time in seconds (AHT > 0).
    pub handle_time_secs: f64,
    /// Mean patience of a waiting contact in seconds (P > 0); abandonment rate
    /// θ = 1/P. `f64::INFINITY` means contacts never abandon and gives exactly
    /// [`ErlangC`]'s figures (and its stability requirement).
    pub patience_secs: f64,
    /// Agents staffed on the queue (c ≥ 1).
    pub agents: u32,
    /// Answer-time threshold `t` of the service level, in seconds (≥ 0).
    pub threshold_secs: f64,
}

impl ErlangA {
    /// Computes the queue's figures exactly on the birth–death chain of the
    /// number of contacts in the system (births λ, deaths min(n, c)μ +
    /// max(n − c, 0)θ), as seen by arrivals (PASTA).
    ///
    /// An arrival finding k contacts queued ahead moves up at rate a_i = cμ + iθ
    /// while i are ahead and abandons at rate θ, so it is answered with
    /// probability Π a_i/(a_i + θ) after a wait that, given it is answered, is a
    /// sum of independent Exp(a_i + θ) for i = k, …, 0.
    ///
    /// Fails with [`ErlangError::TooManyStates`] when the queue length does not
    /// settle within [`MAX_QUEUE_STATES`] positions.
    pub fn figures(&self) -> Result<QueueFigures> {
        validate_rate(self.arrival_rate)?;
        validate_handle_time(self.handle_time_secs)?;
        validate_agents(self.agents)?;
        validate_threshold(self.threshold_secs)?;
        if self.patience_secs.is_nan() || self.patience_secs <= 0.0 {
            return Err(ErlangError::InvalidInput {
                name: "patience_secs",
                expected: "positive (infinite for no abandonment)",
                value: self.patience_secs,
            });
        }
        if self.patience_secs.is_infinite() {
            return ErlangC {
                arrival_rate: self.arrival_rate,
                handle_time_secs: self.handle_time_secs,
                agents: self.agents,
                threshold_secs: self.threshold_secs,
            }
            .figures();
        }
        let load = self.arrival_rate * self.handle_time_secs;
        if self.arrival_rate == 0.0 {
            return Ok(QueueFigures {
                offered_load_erlangs: 0.0,
                occupancy: 0.0,
                prob_wait: 0.0,
                service_level: 1.0,
                asa_secs: 0.0,
                abandon_rate: 0.0,
            });
        }
        let chain = Chain {
            arrival_rate: self.arrival_rate,
            handle_time_secs: self.handle_time_secs,
            abandon_rate: 1.0 / self.patience_secs,
            agents: self.agents,
        };
        let queue = chain
            .queue_distribution()
            .ok_or(ErlangError::TooManyStates {
                max_states: MAX_QUEUE_STATES,
                load_erlangs: load,
                agents: self.agents,
                patience_secs: self.patience_secs,
            })?;
        Ok(chain.figures(&queue, self.threshold_secs))
    }
}

/// The M/M/c+M birth–death chain with positive arrival rate. `abandon_rate` may
/// be 0 (Erlang C) when the load is below `agents`, which tests use to check
/// this machinery against the closed forms.
#[derive(Debug, Clone, Copy)]
struct Chain {
    /// λ, per second, > 0.
    arrival_rate: f64,
    /// AHT = 1/μ, seconds.
    handle_time_secs: f64,
    /// θ = 1/patience, per second, ≥ 0.
    abandon_rate: f64,
    /// c ≥ 1.
    agents: u32,
}

impl Chain {
    /// Service completion rate with every agent busy, cμ.
    fn full_service_rate(&self) -> f64 {
        f64::from(self.agents) / self.handle_time_secs
    }

    /// Stationary P(n = c + k) for k = 0, 1, … until the rest of the tail is
    /// below [`TAIL_TOLERANCE`] of the total; `None` past [`MAX_QUEUE_STATES`].
    ///
    /// Relative to π_c, states below c carry (1 − B)/B (B = Erlang B) and state
    /// c + k carries Π_{j=1..k} λ/(cμ + jθ); both are kept as logarithms so an
    /// overloaded queue's long climb to its mode cannot overflow.
    fn queue_distribution(&self) -> Option<Vec<f64>> {
        let load = self.arrival_rate * self.handle_time_secs;
        let blocking = erlang_b(load, self.agents);
        if blocking == 0.0 {
            // B underflowed: the load is so light that nobody ever waits.
            return Some(vec![0.0]);
        }
        let ln_below = (1.0 - blocking).ln() - blocking.ln();
        let ln_arrival = self.arrival_rate.ln();
        let full = self.full_service_rate();
        let ln_tolerance = TAIL_TOLERANCE.ln();

        let mut ln_weights = vec![0.0_f64];
        let mut ln_total = ln_add_exp(ln_below, 0.0);
        loop {
            let k = ln_weights.len();
            let ratio = self.arrival_rate / (full + k as f64 * self.abandon_rate);
            let last = ln_weights[k - 1];
            if ratio < 1.0 {
                // Terms only shrink from here, each by at most `ratio`, so the
                // rest of the tail is below last · ratio / (1 − ratio).
                let ln_rest = last + ratio.ln() - (-ratio).ln_1p();
                if ln_rest < ln_tolerance + ln_total {
                    break;
                }
            }
            if k >= MAX_QUEUE_STATES {
                return None;
            }
            let next = last + ln_arrival - (full + k as f64 * self.abandon_rate).ln();
            ln_total = ln_add_exp(ln_total, next);
            ln_weights.push(next);
        }
        // Normalize in linear scale against the largest term: rounding then
        // stays relative to each term instead of to |ln total|.
        let ln_peak = ln_weights.iter().copied().fold(ln_below, f64::max);
        let mut queue: Vec<f64> = ln_weights.iter().map(|w| (w - ln_peak).exp()).collect();
        let total = (ln_below - ln_peak).exp() + queue.iter().sum::<f64>();
        for p in &mut queue {
            *p /= total;
        }
        Some(queue)
    }

    /// Figures from the truncated stationary law of the queue positions.
    fn figures(&self, queue: &[f64], threshold_secs: f64) -> QueueFigures {
        let full = self.full_service_rate();
        let theta = self.abandon_rate;
        let prob_wait = queue.iter().sum::<f64>().min(1.0);

        // Walk positions k = 0, 1, …, keeping P(answered | k) and the mean of the
        // wait given answered, Σ_{i ≤ k} 1/(a_i + θ), as running values.
        let mut prob_answered_given = 1.0;
        let mut mean_wait_given = 0.0;
        let mut answered_after_wait = 0.0;
        let mut wait_of_answered = 0.0;
        let mut mean_queue_length = 0.0;
        for (k, &pi) in queue.iter().enumerate() {
            let advance = full + k as f64 * theta;
            prob_answered_given *= advance / (advance + theta);
            mean_wait_given += 1.0 / (advance + theta);
            answered_after_wait += pi * prob_answered_given;
            wait_of_answered += pi * prob_answered_given * mean_wait_given;
            mean_queue_length += pi * k as f64;
        }
        let prob_answered = (1.0 - prob_wait) + answered_after_wait;
        let answered_within = answered_within(queue, full, theta, threshold_secs);
        let occupancy =
            self.arrival_rate * prob_answered * self.handle_time_secs / f64::from(self.agents);
        // Clamps only absorb last-bit rounding of figures that are 0 or 1 in
        // exact arithmetic (a swamped queue's occupancy, say).
        QueueFigures {
            offered_load_erlangs: self.arrival_rate * self.handle_time_secs,
            occupancy: occupancy.clamp(0.0, 1.0),
            prob_wait,
            service_level: ((1.0 - prob_wait) + answered_within).clamp(0.0, 1.0),
            asa_secs: wait_of_answered / prob_answered,
            abandon_rate: (theta * mean_queue_length / self.arrival_rate).clamp(0.0, 1.0),
        }
    }
}

/// P(an arrival queues, is answered, and waited at most `t`), given the
/// probability `queue[k]` of arriving with k contacts ahead.
///
/// With i ahead, the contact moves to i − 1 (or is answered from 0) at rate
/// a_i = cμ + iθ and abandons at rate θ. Uniformizing this absorbing chain at
/// rate Λ = max(a_i + θ) turns the answered-by-t probability into
/// Σ_m Poisson(m; Λt) · S_m, where S_m is the answered mass after m steps of
/// the embedded discrete chain; every position is evolved at once.
///
/// Steps past `last_step` carry no Poisson weight worth counting, and a contact
/// more than `last_step` positions back needs more steps than that to be
/// answered, so those positions are left out: the work is at most
/// min(positions, Λt)·Λt however long the queue.
fn answered_within(queue: &[f64], full_service_rate: f64, theta: f64, t: f64) -> f64 {
    let Some(deepest) = queue.len().checked_sub(1) else {
        return 0.0;
    };
    let exit_rate = |i: usize| full_service_rate + (i + 1) as f64 * theta;
    let steps_needed = |rate: f64| {
        let mean = rate * t;
        (mean + 12.0 * mean.sqrt() + 12.0).ceil() as usize
    };
    let top = deepest.min(steps_needed(exit_rate(deepest)));
    let uniform_rate = exit_rate(top);
    let mean_steps = uniform_rate * t;
    let last_step = steps_needed(uniform_rate);
    let started: f64 = queue[..=top].iter().sum();
    if started == 0.0 || mean_steps == 0.0 {
        return 0.0;
    }

    let mut mass = queue[..=top].to_vec();
    let mut active = top;
    let mut answered = 0.0;
    // answered_by[m] = S_m, the answered mass after m steps.
    let mut answered_by = vec![0.0];
    for _ in 0..last_step {
        answered += mass[0] * full_service_rate / uniform_rate;
        let mut waiting = 0.0;
        for i in 0..=active {
            let stay = (uniform_rate - exit_rate(i)) / uniform_rate;
            let from_behind = if i < active {
                mass[i + 1] * (full_service_rate + (i + 1) as f64 * theta) / uniform_rate
            } else {
                0.0
            };
            mass[i] = mass[i] * stay + from_behind;
            waiting += mass[i];
        }
        answered_by.push(answered);
        if waiting < ABSORBED_TOLERANCE * started {
            break;
        }
        // Mass only moves toward position 0; drop emptied positions at the top.
        while active > 0 && mass[active] < f64::MIN_POSITIVE {
            active -= 1;
        }
    }

    let final_answered = answered;
    let (first, weights) = poisson_window(mean_steps);
    // Σ_m w_m S_m, with S_m = final_answered past the steps we ran.
    let shortfall: f64 = weights
        .iter()
        .enumerate()
        .map(|(j, w)| {
            let step = first + j;
            let s = answered_by.get(step).copied().unwrap_or(final_answered);
            w * (final_answered - s)
        })
        .sum();
    // Steps before the window have negligible weight; they only lower the sum.
    final_answered - shortfall
}

/// Poisson(`mean`) probabilities over the window of counts that matter:
/// returns the first count and the weights from it on. Built by recursion
/// outward from the mode (weight 1 there) and normalized at the end, so no
/// factorial, power or exponential of a large number is formed.
fn poisson_window(mean: f64) -> (usize, Vec<f64>) {
    if mean <= 0.0 {
        return (0, vec![1.0]);
    }
    let mode = mean.floor() as usize;

    let mut above = Vec::new();
    let mut weight = 1.0;
    let mut count = mode;
    loop {
        count += 1;
        weight *= mean / count as f64;
        if weight < POISSON_CUTOFF {
            break;
        }
        above.push(weight);
    }

    let mut below = Vec::new();
    weight = 1.0;
    count = mode;
    while count > 0 {
        weight *= count as f64 / mean;
        count -= 1;
        if weight < POISSON_CUTOFF {
            break;
        }
        below.push(weight);
    }

    let first = mode - below.len();
    let mut weights: Vec<f64> = below.into_iter().rev().collect();
    weights.push(1.0);
    weights.extend(above);
    let total: f64 = weights.iter().sum();
    for w in &mut weights {
        *w /= total;
    }
    (first, weights)
}

/// ln(eᵃ + eᵇ) without overflow; either side may be ±∞.
fn ln_add_exp(a: f64, b: f64) -> f64 {
    let (high, low) = if a >= b { (a, b) } else { (b, a) };
    if low == f64::NEG_INFINITY || high == f64::INFINITY {
        return high;
    }
    high + (low - high).exp().ln_1p()
}

// === staffing ===

/// The fewest agents whose Erlang C service level (answered within
/// `threshold_secs`) reaches `sl_target`, with that staffing's figures.
///
/// Starts at the smallest stable staffing, ⌊λ·AHT⌋ + 1, and adds one agent at
/// a time, because service level rises with every agent. Erlang C ignores
/// abandonment, so the answer errs on the side of more agents. Fails with
/// [`ErlangError::TargetUnreachable`] when `max_agents` is not enough.
pub fn staffing(
    arrival_rate: f64,
    handle_time_secs: f64,
    sl_target: f64,
    threshold_secs: f64,
    max_agents: u32,
) -> Result<(u32, QueueFigures)> {
    validate_rate(arrival_rate)?;
    validate_handle_time(handle_time_secs)?;
    validate_threshold(threshold_secs)?;
    if !(0.0..=1.0).contains(&sl_target) {
        return Err(ErlangError::InvalidInput {
            name: "sl_target",
            expected: "a fraction in [0, 1]",
            value: sl_target,
        });
    }
    let load = arrival_rate * handle_time_secs;
    let unreachable = ErlangError::TargetUnreachable {
        target: sl_target,
        threshold_secs,
        max_agents,
        load_erlangs: load,
    };
    // ⌊A⌋ + 1 is the least c with c > A; a load beyond u32 cannot be staffed.
    let least_stable = load.floor() + 1.0;
    if least_stable > f64::from(max_agents) {
        return Err(unreachable);
    }
    let mut agents = least_stable as u32;
    loop {
        let figures = ErlangC {
            arrival_rate,
            handle_time_secs,
            agents,
            threshold_secs,
        }
        .figures()?;
        if figures.service_level >= sl_target {
            return Ok((agents, figures));
        }
        if agents >= max_agents {
            return Err(unreachable);
        }
        agents += 1;
    }
}

// === validation ===

fn validate_rate(arrival_rate: f64) -> Result<()> {
    if arrival_rate.is_finite() && arrival_rate >= 0.0 {
        return Ok(());
    }
    Err(ErlangError::InvalidInput {
        name: "arrival_rate",
        expected: "finite and at least 0 (contacts per second)",
        value: arrival_rate,
    })
}

fn validate_handle_time(handle_time_secs: f64) -> Result<()> {
    if handle_time_secs.is_finite() && handle_time_secs > 0.0 {
        return Ok(());
    }
    Err(ErlangError::InvalidInput {
        name: "handle_time_secs",
        expected: "finite and positive",
        value: handle_time_secs,
    })
}

fn validate_threshold(threshold_secs: f64) -> Result<()> {
    if threshold_secs.is_finite() && threshold_secs >= 0.0 {
        return Ok(());
    }
    Err(ErlangError::InvalidInput {
        name: "threshold_secs",
        expected: "finite and at least 0",
        value: threshold_secs,
    })
}

fn validate_agents(agents: u32) -> Result<()> {
    if agents > 0 {
        return Ok(());
    }
    Err(ErlangError::InvalidInput {
        name: "agents",
        expected: "at least 1",
        value: 0.0,
    })
}
