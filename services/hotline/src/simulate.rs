//! `hotline sim`: runs the ACD in virtual time and reports what a contact center would see.

use std::time::Instant;

use anyhow::Context;
use hotline_acd::sim::{self, HandleTime, SimConfig, SimReport};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{Failure, Handle, SimArgs};

fn check(ok: bool, what: &str) -> Result<(), Failure> {
    if ok {
        Ok(())
    } else {
        Err(Failure::Config(what.to_owned()))
    }
}

/// Builds the simulation the arguments describe, refusing values that make no sense.
pub fn config(args: &SimArgs) -> Result<SimConfig, Failure> {
    check(args.agents >= 1, "--agents must be at least 1")?;
    check(
        args.arrivals_per_hour.is_finite() && args.arrivals_per_hour > 0.0,
        "--arrivals-per-hour must be a positive number",
    )?;
    check(
        args.aht_secs.is_finite() && args.aht_secs > 0.0,
        "--aht-secs must be a positive number of seconds",
    )?;
    check(
        args.hours.is_finite() && args.hours > 0.0,
        "--hours must be positive",
    )?;
    check(
        args.warmup_hours >= 0.0 && args.warmup_hours < args.hours,
        "--warmup-hours must be at least 0 and less than --hours",
    )?;
    check(
        args.sl_secs.is_finite() && args.sl_secs >= 0.0,
        "--sl-secs must be at least 0",
    )?;
    check(
        args.handle_cv.is_finite() && args.handle_cv > 0.0,
        "--handle-cv must be positive",
    )?;
    if let Some(p) = args.patience_secs {
        check(
            p.is_finite() && p > 0.0,
            "--patience-secs must be a positive number of seconds",
        )?;
    }
    let mut cfg = SimConfig::single_queue(
        args.agents,
        args.arrivals_per_hour,
        args.aht_secs,
        args.patience_secs,
        args.hours,
        args.sl_secs,
        args.seed,
    );
    cfg.warmup_hours = args.warmup_hours;
    cfg.handle = match args.handle {
        Handle::Exponential => HandleTime::Exponential {
            mean_secs: args.aht_secs,
        },
        Handle::Lognormal => HandleTime::Lognormal {
            mean_secs: args.aht_secs,
            cv: args.handle_cv,
        },
    };
    if let Some(path) = &args.scenario {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Failure::Config(format!("cannot read scenario {}: {e}", path.display()))
        })?;
        cfg = SimConfig::from_scenario(&text, &path.display().to_string(), cfg)
            .map_err(|e| Failure::Config(e.to_string()))?;
    }
    Ok(cfg)
}

/// Runs `hotline sim`.
pub fn run(args: SimArgs) -> Result<(), Failure> {
    let cfg = config(&args)?;
    let bar = if args.json {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(1000);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} simulating [{bar:40}] {percent:>3}% {elapsed_precise}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar
    };
    let started = Instant::now();
    let report =
        sim::run(&cfg, |f| bar.set_position((f * 1000.0) as u64)).context("simulation failed")?;
    bar.finish_and_clear();
    let wall = started.elapsed().as_secs_f64();
    if args.json {
        println!("{}", json(&report, wall));
    } else {
        print_summary(&cfg, &report, wall);
    }
    Ok(())
}

/// The report as one JSON object (with the wall time).
pub fn json(report: &SimReport, wall_secs: f64) -> serde_json::Value {
    serde_json::json!({
        "offered": report.offered,
        "answered": report.answered,
        "abandoned": report.abandoned,
        "service_level": report.service_level,
        "asa_secs": report.asa_secs,
        "abandon_rate": report.abandon_rate,
        "occupancy": report.occupancy,
        "aht_secs": report.aht_secs,
        "agents": report.agents,
        "hours": report.hours,
        "sl_secs": report.sl_secs,
        "seed": report.seed,
        "contacts_simulated": report.contacts_simulated,
        "wall_secs": wall_secs,
        "queues": report.queues,
        "definitions": {
            "service_level": "answered within sl_secs / offered (abandons count as missed), v1",
            "asa_secs": "mean wait of answered contacts, zero waits included, v1",
            "abandon_rate": "abandoned / offered, v1",
            "occupancy": "busy agent time (talk + wrap-up) / staffed agent time, v1",
        },
    })
}

fn print_summary(cfg: &SimConfig, r: &SimReport, wall: f64) {
    println!(
        "Simulated {:.1} h with {} agent(s), seed {}",
        r.hours, r.agents, r.seed
    );
    if cfg.warmup_hours > 0.0 {
        println!(
            "  (the first {:.1} h are warm-up, left out of the figures)",
            cfg.warmup_hours
        );
    }
    println!("  offered        {:>10}", r.offered);
    println!("  answered       {:>10}", r.answered);
    println!(
        "  abandoned      {:>10}  ({:.2}%)",
        r.abandoned,
        r.abandon_rate * 100.0
    );
    println!(
        "  service level  {:>9.2}%  answered within {} s of all offered",
        r.service_level * 100.0,
        r.sl_secs
    );
    println!("  ASA            {:>9.1} s", r.asa_secs);
    println!("  AHT            {:>9.1} s", r.aht_secs);
    println!("  occupancy      {:>9.2}%", r.occupancy * 100.0);
    if r.queues.len() > 1 {
        println!("  per queue (by the queue contacts arrived in):");
        println!(
            "    {:<24} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8}",
            "queue", "offered", "answered", "abandoned", "SL", "ASA s", "AHT s"
        );
        for q in &r.queues {
            println!(
                "    {:<24} {:>9} {:>9} {:>9} {:>7.1}% {:>8.1} {:>8.1}",
                format!("{}/{}", q.tenant, q.queue),
                q.offered,
                q.answered,
                q.abandoned,
                q.service_level * 100.0,
                q.asa_secs,
                q.aht_secs
            );
        }
    }
    let per_min = r.contacts_simulated as f64 / wall * 60.0;
    println!(
        "{} contacts in {:.2} s of wall time ({:.0} contacts per minute)",
        r.contacts_simulated, wall, per_min
    );
}
