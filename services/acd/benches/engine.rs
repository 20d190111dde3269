//! The matching engine against the naive linear-scan router, decision for decision.
//!
//! One iteration: a contact arrives in one of 50 queues, the router picks an agent among
//! 1,000 with mixed skills (half of them busy), and the agent is released again. Run with
//! `cargo bench -p hotline-acd --bench engine`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use hotline_acd::engine::{Arrival, Availability, Effect, Engine};
use hotline_acd::ids::IdSource;
use hotline_acd::naive::NaiveRouter;
use hotline_acd::workload::mixed_skills;
use hotline_core::agent::AgentStatus;
use hotline_core::channel::Channel;
use hotline_core::ids::{ContactId, QueueId, TenantId};
use hotline_core::time::Timestamp;

const AGENTS: usize = 1000;
const QUEUES: usize = 50;

fn engine_decisions(c: &mut Criterion) {
    let config = mixed_skills(AGENTS, QUEUES, 7);
    let mut engine = Engine::new(&config, IdSource::sequential(0)).expect("valid config");
    let mut now = Timestamp(1);
    for a in 0..AGENTS as u32 {
        engine.set_availability(
            now,
            a,
            Availability {
                logged_in: true,
                ready: true,
                status: AgentStatus::Ready,
            },
        );
    }
    let tenant = TenantId::new("bench").expect("valid");
    let queues: Vec<QueueId> = (0..QUEUES)
        .map(|q| QueueId::new(format!("q{q}")).expect("valid"))
        .collect();
    // Occupy half the agents with long contacts so the index works on a mixed floor.
    let mut n = 0u128;
    let mut effects = Vec::new();
    let mut events = Vec::new();
    for i in 0..AGENTS / 2 {
        n += 1;
        engine
            .arrive(
                now,
                Arrival::new(
                    ContactId::from_u128(n),
                    tenant.clone(),
                    queues[i % QUEUES].clone(),
                    Channel::Voice,
                ),
            )
            .expect("arrive");
        engine.take_output(&mut effects, &mut events);
        for e in effects.drain(..) {
            if let Effect::Offer(o) = e {
                engine.accepted(now, o.contact, o.agent_ix).expect("accept");
            }
        }
        events.clear();
    }
    let mut q = 0usize;
    c.bench_function(
        "engine: arrive, decide, release (1000 agents x 50 queues)",
        |b| {
            b.iter(|| {
                n += 1;
                q = (q + 7) % QUEUES;
                now = Timestamp(now.0 + 1);
                let contact = ContactId::from_u128(n);
                engine
                    .arrive(
                        now,
                        Arrival::new(contact, tenant.clone(), queues[q].clone(), Channel::Voice),
                    )
                    .expect("arrive");
                engine.take_output(&mut effects, &mut events);
                for e in effects.drain(..) {
                    if let Effect::Offer(o) = e {
                        engine.accepted(now, o.contact, o.agent_ix).expect("accept");
                        engine.ended(now, o.contact, o.agent_ix).expect("end");
                        engine
                            .wrap_up_done(now, o.contact, o.agent_ix)
                            .expect("done");
                    }
                }
                engine.take_output(&mut effects, &mut events);
                black_box(events.len());
                events.clear();
                effects.clear();
            })
        },
    );

    let mut naive = NaiveRouter::new(&config);
    let mut t = 0u64;
    for i in 0..AGENTS / 2 {
        naive.arrive(i % QUEUES);
    }
    c.bench_function(
        "naive: scan, decide, release (1000 agents x 50 queues)",
        |b| {
            b.iter(|| {
                t += 1;
                q = (q + 7) % QUEUES;
                if let Some(a) = naive.arrive(black_box(q)) {
                    naive.release(a, q, t);
                }
            })
        },
    );
}

criterion_group!(benches, engine_decisions);
criterion_main!(benches);
