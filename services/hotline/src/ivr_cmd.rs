//! `hotline ivr check FILE [--config SITE]`: validate an IVR flow file against a site's
//! tenants, queues and skills, and say what is wrong, where.
//!
//! Each problem is one `FILE:LINE:COL: message` line on standard output (what editors
//! and CI annotations read); the command exits 1 when there is any, 64 when the file
//! or the site configuration cannot be read, and 0 with a one-line summary when the
//! flow is clean.

use std::path::PathBuf;

use hotline_ivr::flow::NodeKind;
use hotline_ivr::{Catalog, check};

use crate::cli::{Failure, load_site};

/// Options of `hotline ivr check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The flow file (YAML).
    pub file: PathBuf,
    /// The ACD site configuration whose queues and skills the flow may name; the
    /// bundled demo (what `hotline up` runs) when absent.
    #[arg(long, env = "HOTLINE_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Runs `hotline ivr check`.
pub fn check(args: CheckArgs) -> Result<(), Failure> {
    let site = load_site(args.config.as_ref())?;
    let name = args.file.display().to_string();
    let text = std::fs::read_to_string(&args.file).map_err(|e| {
        Failure::Config(format!(
            "cannot read the flow file {name}: {e}; check the path (flows are YAML files)"
        ))
    })?;
    match check::load(&text, &name, &Catalog::from_site(&site)) {
        Ok(flow) => {
            let mut queues: Vec<&str> = flow
                .nodes
                .iter()
                .filter_map(|n| match &n.kind {
                    NodeKind::Queue { queue, .. } | NodeKind::Callback { queue, .. } => {
                        Some(queue.value.as_str())
                    }
                    _ => None,
                })
                .collect();
            queues.sort_unstable();
            queues.dedup();
            println!(
                "{name}: ok — flow {} of tenant {}, {} node(s), {} calendar(s), queues {}",
                flow.name,
                flow.tenant,
                flow.nodes.len(),
                flow.calendars.len(),
                if queues.is_empty() {
                    "none".to_owned()
                } else {
                    queues.join(", ")
                }
            );
            Ok(())
        }
        Err(errors) => {
            for line in errors.lines() {
                println!("{line}");
            }
            let n = errors.diagnostics.len();
            Err(Failure::Runtime(anyhow::anyhow!(
                "{n} error{} in {name}; fix {} and check again",
                if n == 1 { "" } else { "s" },
                if n == 1 { "it" } else { "them" }
            )))
        }
    }
}
