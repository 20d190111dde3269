//! Memory per idle agent and per waiting contact, through the real router and agent
//! actors. Counts bytes requested from the allocator (live after the step, so freed
//! temporaries do not count); allocator overhead is not included.
//!
//! Run with `cargo bench -p hotline-acd --bench memory`. Goals: ≤ 2 KiB per idle agent,
//! ≤ 4 KiB per waiting contact.

use std::alloc::System;
use std::sync::Arc;

use hotline_acd::agent::{AgentEndpoint, AgentLink};
use hotline_acd::engine::{Arrival, Offer};
use hotline_acd::ids::IdSource;
use hotline_acd::site::{Site, SiteOptions};
use hotline_acd::workload::mixed_skills;
use hotline_core::channel::Channel;
use hotline_core::event::NullSink;
use hotline_core::ids::{ContactId, QueueId, TenantId};
use hotline_core::time::SystemClock;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

struct Idle;

impl AgentEndpoint for Idle {
    fn offered(&self, _: &AgentLink, _: &Offer) {}
}

fn live(region: &Region<'_, System>) -> f64 {
    let c = region.change();
    c.bytes_allocated as f64 - c.bytes_deallocated as f64
}

async fn start(config: &hotline_acd::config::SiteConfig) -> Site {
    Site::start(
        config.clone(),
        SiteOptions {
            sink: Arc::new(NullSink),
            clock: Arc::new(SystemClock),
            ids: IdSource::Random,
            shards: SiteOptions::default_shards(),
        },
    )
    .await
    .expect("site")
}

/// Live bytes for a site of `agents` agents, all logged in and ready (idle: no contacts)
/// when `login`, else configured but logged out.
async fn idle_site(agents: usize, login: bool) -> (f64, Site) {
    let region = Region::new(GLOBAL);
    let config = mixed_skills(agents, 50, 3);
    let site = start(&config).await;
    if login {
        for a in &config.agents {
            site.login(a.id.clone(), Arc::new(Idle), true)
                .await
                .expect("login");
        }
    }
    drop(config);
    site.snapshot().await.expect("snapshot");
    (live(&region), site)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        // Logged-out profiles first: a stopped site's actors free their memory in the
        // background, which would blur a region measured after it.
        let (small_out, s3) = idle_site(1000, false).await;
        let (large_out, s4) = idle_site(2000, false).await;
        let per_profile = (large_out - small_out) / 1000.0;
        let (small, s1) = idle_site(1000, true).await;
        let (large, s2) = idle_site(2000, true).await;
        let per_agent = (large - small) / 1000.0;
        s1.stop().await;
        s3.stop().await;
        s4.stop().await;

        // Waiting contacts: a site whose agents are all logged out, so every arrival waits.
        let config = mixed_skills(1000, 50, 3);
        let site = start(&config).await;
        let tenant = TenantId::new("bench").expect("valid");
        let queues: Vec<QueueId> = config.queues.iter().map(|q| q.id.clone()).collect();
        // Warm up the engine's maps so growth doubling is amortized like in a long run.
        let n = 100_000u128;
        let region = Region::new(GLOBAL);
        for i in 0..n {
            site.arrive(Arrival::new(ContactId::from_u128(i + 1), tenant.clone(), queues[i as usize % queues.len()].clone(), Channel::Voice))
            .await
            .expect("arrive");
        }
        site.snapshot().await.expect("snapshot");
        let per_contact = live(&region) / n as f64;
        println!("memory per idle agent (logged in, ready; router record + session in its shard): {:.0} bytes ({:.2} KiB; goal ≤ 2 KiB)", per_agent, per_agent / 1024.0);
        println!("  of which the router's record of the agent (profile, index bits, session data): {:.0} bytes; the rest is its session in an agent shard", per_profile);
        println!("memory per waiting contact (engine record, index, waiting set): {:.0} bytes ({:.2} KiB; goal ≤ 4 KiB)", per_contact, per_contact / 1024.0);
        println!("{}", serde_json::json!({ "bytes_per_idle_agent": per_agent, "bytes_per_agent_profile": per_profile, "bytes_per_waiting_contact": per_contact }));
        site.stop().await;
        s2.stop().await;
    });
}
