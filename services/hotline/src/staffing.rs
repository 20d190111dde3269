//! `hotline kpi staffing`: how many agents a forecast needs (Erlang C), with the service
//! level, ASA and occupancy they would give.

use hotline_kpi::erlang::{self, ErlangA};

use crate::cli::Failure;

/// Options of `hotline kpi staffing`.
#[derive(Debug, Clone, clap::Args)]
pub struct StaffingArgs {
    /// Contacts forecast for the interval.
    #[arg(long)]
    pub contacts: f64,
    /// Length of the interval, minutes.
    #[arg(long, default_value_t = 30.0)]
    pub interval_mins: f64,
    /// Average handle time (talk + wrap-up), seconds.
    #[arg(long)]
    pub aht_secs: f64,
    /// Service-level target, 0–1 (e.g. 0.8 for 80%).
    #[arg(long, default_value_t = 0.8)]
    pub sl: f64,
    /// Service-level threshold, seconds (e.g. 20 for "answered within 20 s").
    #[arg(long, default_value_t = 20.0)]
    pub sl_secs: f64,
    /// Mean patience, seconds: also show what abandonment (Erlang A) would do at the
    /// staffing found.
    #[arg(long)]
    pub patience_secs: Option<f64>,
    /// Give up above this many agents.
    #[arg(long, default_value_t = 100_000)]
    pub max_agents: u32,
    /// Print one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
}

/// Runs `hotline kpi staffing`.
pub fn run(a: StaffingArgs) -> Result<(), Failure> {
    let bad = |m: &str| Err(Failure::Config(m.to_owned()));
    if !(a.contacts.is_finite() && a.contacts >= 0.0) {
        return bad("--contacts must be a number of contacts, 0 or more");
    }
    if !(a.interval_mins.is_finite() && a.interval_mins > 0.0) {
        return bad("--interval-mins must be a positive number of minutes");
    }
    if !(a.aht_secs.is_finite() && a.aht_secs > 0.0) {
        return bad("--aht-secs must be a positive number of seconds");
    }
    if !(0.0..=1.0).contains(&a.sl) {
        return bad("--sl is a fraction between 0 and 1 (0.8 means 80%)");
    }
    if !(a.sl_secs.is_finite() && a.sl_secs >= 0.0) {
        return bad("--sl-secs must be 0 or more seconds");
    }
    let rate = a.contacts / (a.interval_mins * 60.0);
    let (agents, f) = erlang::staffing(rate, a.aht_secs, a.sl, a.sl_secs, a.max_agents)
        .map_err(|e| Failure::Config(format!("{e}; check the forecast or raise --max-agents")))?;
    let with_patience = match a.patience_secs {
        Some(p) => Some(
            ErlangA {
                arrival_rate: rate,
                handle_time_secs: a.aht_secs,
                patience_secs: p,
                agents,
                threshold_secs: a.sl_secs,
            }
            .figures()
            .map_err(|e| Failure::Config(format!("--patience-secs: {e}")))?,
        ),
        None => None,
    };
    if a.json {
        let mut j = serde_json::json!({
            "agents": agents,
            "service_level": f.service_level,
            "asa_secs": f.asa_secs,
            "occupancy": f.occupancy,
            "prob_wait": f.prob_wait,
            "offered_load_erlangs": f.offered_load_erlangs,
            "definitions": {
                "model": "Erlang C (M/M/c, no abandonment), v1",
                "service_level": "P(answered within sl_secs) over all contacts, v1",
                "asa_secs": "mean wait of answered contacts, zero waits included, v1",
                "occupancy": "offered load / agents, v1",
            },
        });
        if let Some(w) = with_patience {
            j["with_abandonment"] = serde_json::json!({
                "model": "Erlang A (M/M/c+M), v1",
                "service_level": w.service_level,
                "asa_secs": w.asa_secs,
                "abandon_rate": w.abandon_rate,
                "occupancy": w.occupancy,
            });
        }
        println!("{j}");
    } else {
        println!(
            "{:.0} contacts in {} min, AHT {} s, target {:.0}% within {} s:",
            a.contacts,
            a.interval_mins,
            a.aht_secs,
            a.sl * 100.0,
            a.sl_secs
        );
        println!(
            "  agents needed   {agents}  (offered load {:.2} Erlangs)",
            f.offered_load_erlangs
        );
        println!("  service level   {:.1}%", f.service_level * 100.0);
        println!("  ASA             {:.1} s", f.asa_secs);
        println!("  occupancy       {:.1}%", f.occupancy * 100.0);
        if let Some(w) = with_patience {
            println!(
                "  with abandonment (Erlang A): service level {:.1}%, ASA {:.1} s, abandoned {:.1}%",
                w.service_level * 100.0,
                w.asa_secs,
                w.abandon_rate * 100.0
            );
        }
    }
    Ok(())
}
