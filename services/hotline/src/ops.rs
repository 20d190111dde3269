//! `hotline ops …`: what runbooks call. Today: `ops topics`, which creates the event
//! log's topics and checks them.

use hotline_eventlog::topics;

use crate::cli::Failure;
use crate::logs::{self, LogTarget};

/// Options of `hotline ops topics`.
#[derive(Debug, Clone, clap::Args)]
pub struct TopicsArgs {
    /// The event log: `embedded:PATH` or `kafka://HOST:PORT[,…]`.
    #[arg(
        long,
        env = "HOTLINE_EVENT_LOG",
        default_value = "embedded:hotline-data/events"
    )]
    pub event_log: LogTarget,
    /// Only check: report missing or different topics and exit 1, create nothing.
    #[arg(long)]
    pub check: bool,
}

/// Runs `hotline ops topics`.
pub fn topics(args: TopicsArgs) -> Result<(), Failure> {
    let runtime = crate::cli::runtime()?;
    runtime.block_on(async {
        let log = logs::open(&args.event_log).await?;
        let specs = topics::specs();
        println!("event log {} ({}):", args.event_log, log.kind());
        if args.check {
            let mut problems = 0;
            for spec in &specs {
                match log.describe_topic(&spec.name).await {
                    Ok(Some(info)) if info.partitions >= spec.partitions => {
                        println!("{}", logs::describe(&info, "ok"));
                    }
                    Ok(Some(info)) => {
                        problems += 1;
                        println!(
                            "{}",
                            logs::describe(
                                &info,
                                &format!("WRONG: needs {} partitions", spec.partitions)
                            )
                        );
                    }
                    Ok(None) => {
                        problems += 1;
                        println!("  {:<24} MISSING", spec.name);
                    }
                    Err(e) => return Err(unreachable_log(&args.event_log, e)),
                }
            }
            if problems > 0 {
                return Err(Failure::Runtime(anyhow::anyhow!(
                    "{problems} topic(s) missing or wrong; run `hotline ops topics --event-log {}` to create them",
                    args.event_log
                )));
            }
            println!("all {} topic(s) ok", specs.len());
            return Ok(());
        }
        let before: Vec<bool> = {
            let mut v = Vec::new();
            for spec in &specs {
                v.push(
                    log.describe_topic(&spec.name)
                        .await
                        .map_err(|e| unreachable_log(&args.event_log, e))?
                        .is_some(),
                );
            }
            v
        };
        let infos = log
            .ensure_topics(&specs)
            .await
            .map_err(|e| unreachable_log(&args.event_log, e))?;
        for (info, existed) in infos.iter().zip(before) {
            println!(
                "{}",
                logs::describe(info, if existed { "ok (existed)" } else { "created" })
            );
        }
        Ok(())
    })
}

fn unreachable_log(target: &LogTarget, e: hotline_eventlog::Error) -> Failure {
    if e.is_retryable() {
        Failure::Runtime(anyhow::anyhow!(
            "event log {target} did not answer: {e}; check the broker is up and the address is right"
        ))
    } else {
        Failure::Runtime(anyhow::anyhow!("event log {target}: {e}"))
    }
}
