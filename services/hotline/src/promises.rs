//! Durable promises at a site: callbacks and voicemails the customer was promised live
//! in the routing state, so the loss of the site that made them loses none.
//!
//! - A contact that asks for a callback (`callback_requested`) or leaves a voicemail
//!   (`voicemail`) becomes a promise owned by this site (`CreatePromise`). A callback
//!   in line here is claimed at once: the contact itself is the work.
//! - The worker claims this site's pending promises and works each as a callback
//!   contact in the promise's queue; the contact's `done` completes the promise, any
//!   other end gives it back (`ReleasePromise`) for another attempt later.
//! - When another site is marked down, the worker takes over its open promises whose
//!   queue has agents logged in here (`TakeOverPromise`; if two survivors race, the
//!   first committed wins) and works them the same way. The state machine lets only the owner claim and only the claimer
//!   complete, once: none is lost, none is done twice.
//! - A site cut off in a minority cannot commit a claim, so it starts no work on a
//!   promise it cannot record.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hotline_acd::engine::Arrival;
use hotline_acd::site::Site;
use hotline_core::channel::Channel;
use hotline_core::event::{ContactEventKind, Event, EventBody};
use hotline_core::ids::{ContactId, SiteId};
use hotline_routing::node::RoutingNode;
use hotline_routing::state::{
    Command, NewPromise, PromiseId, PromiseKind, PromiseOutcome, PromiseState, Response, SiteStatus,
};

/// How long a promise whose attempt failed waits before the next one.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// A site's promise keeping.
#[derive(Clone)]
pub struct Promises {
    inner: Arc<Inner>,
}

struct Inner {
    me: SiteId,
    site: Site,
    node: RoutingNode,
    /// Contacts here working a promise.
    work: Mutex<HashMap<ContactId, PromiseId>>,
    /// Promises being claimed right now, or resting after a failed attempt (until).
    resting: Mutex<HashMap<PromiseId, Instant>>,
    /// Callback contacts this worker made, so their `callback_requested` makes no new
    /// promise.
    own: Mutex<HashSet<ContactId>>,
    /// Customers by contact, from `arrived`, for the promise's "whom to call".
    customers: Mutex<HashMap<ContactId, String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Promises {
    /// The promises of site `me`.
    pub fn new(me: SiteId, site: Site, node: RoutingNode) -> Self {
        Promises {
            inner: Arc::new(Inner {
                me,
                site,
                node,
                work: Mutex::new(HashMap::new()),
                resting: Mutex::new(HashMap::new()),
                own: Mutex::new(HashSet::new()),
                customers: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Follows the site's events: new promises from callback requests and voicemails,
    /// completions and failed attempts from the ends of the contacts working them.
    pub async fn follow(self, mut events: tokio::sync::mpsc::UnboundedReceiver<Event>) {
        while let Some(e) = events.recv().await {
            let EventBody::Contact(c) = &e.body else {
                continue;
            };
            let me = &self.inner;
            match &c.kind {
                ContactEventKind::Arrived {
                    customer: Some(customer),
                } => {
                    lock(&me.customers).insert(c.contact, customer.to_string());
                }
                ContactEventKind::CallbackRequested if !lock(&me.own).contains(&c.contact) => {
                    if let Some(queue) = &c.queue {
                        self.create(
                            &e,
                            c.contact,
                            queue.clone(),
                            PromiseKind::Callback,
                            String::new(),
                        )
                        .await;
                    }
                }
                ContactEventKind::Voicemail { reason } => {
                    if let Some(queue) = &c.queue {
                        self.create(
                            &e,
                            c.contact,
                            queue.clone(),
                            PromiseKind::Voicemail,
                            format!("voicemail ({reason}) of contact {}", c.contact),
                        )
                        .await;
                    }
                }
                _ => {}
            }
            if c.kind.is_terminal() {
                lock(&me.customers).remove(&c.contact);
                lock(&me.own).remove(&c.contact);
                let working = lock(&me.work).remove(&c.contact);
                if let Some(id) = working {
                    let done = matches!(c.kind, ContactEventKind::Done { .. });
                    self.finish(id, done).await;
                }
            }
        }
    }

    async fn create(
        &self,
        e: &Event,
        contact: ContactId,
        queue: hotline_core::ids::QueueId,
        kind: PromiseKind,
        note: String,
    ) {
        let me = &self.inner;
        let customer = lock(&me.customers)
            .get(&contact)
            .cloned()
            .unwrap_or_else(|| format!("contact {contact}"));
        let command = Command::CreatePromise(Box::new(NewPromise {
            site: me.me.clone(),
            kind,
            tenant: e.tenant.clone(),
            queue,
            customer,
            note,
            contact: Some(contact),
            at_ms: now_ms(),
        }));
        let id = match me.node.write(command).await {
            Ok(w) => match w.response {
                Response::Created { id } => id,
                other => {
                    tracing::warn!(?other, "unexpected answer to a new promise");
                    return;
                }
            },
            Err(err) => {
                // Without the routing group the promise is only as safe as this site:
                // the customer still gets called back from here if the contact lives.
                tracing::warn!(%contact, error = %err, "could not record a promise in the routing state");
                return;
            }
        };
        tracing::info!(promise = %id, %contact, ?kind, "promise recorded");
        if kind == PromiseKind::Callback {
            // The contact in line here is the work: claim it now.
            let claimed = me
                .node
                .write(Command::ClaimPromise {
                    id,
                    site: me.me.clone(),
                    at_ms: now_ms(),
                })
                .await;
            if claimed.is_ok() {
                lock(&me.work).insert(contact, id);
            }
        }
    }

    async fn finish(&self, id: PromiseId, done: bool) {
        let me = &self.inner;
        let command = if done {
            Command::CompletePromise {
                id,
                site: me.me.clone(),
                outcome: PromiseOutcome::Handled,
                at_ms: now_ms(),
            }
        } else {
            lock(&me.resting).insert(id, Instant::now() + RETRY_AFTER);
            Command::ReleasePromise {
                id,
                site: me.me.clone(),
                at_ms: now_ms(),
            }
        };
        for _ in 0..25 {
            match me.node.write(command.clone()).await {
                Ok(_) => {
                    tracing::info!(promise = %id, done, "promise {}", if done { "completed" } else { "released for another attempt" });
                    return;
                }
                Err(hotline_routing::node::NodeError::Refused(r)) => {
                    tracing::warn!(promise = %id, refusal = %r, "promise update refused");
                    return;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        tracing::warn!(promise = %id, "could not record the promise's end; it stays claimed");
    }

    /// Runs the worker until `stop`: takes over a down site's promises and works this
    /// site's pending ones.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = tick.tick() => self.round().await,
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        return;
                    }
                }
            }
        }
    }

    async fn round(&self) {
        let me = &self.inner;
        let status = me.node.read(|s| s.site(&me.me).map(|site| site.status));
        if status != Some(SiteStatus::Active) && status != Some(SiteStatus::Draining) {
            return;
        }
        // Take over only what agents logged in here can do: a survivor without them
        // would hold the promise and keep nobody's word.
        let staffed: HashSet<(String, String)> = match me.site.snapshot().await {
            Ok(snap) => snap
                .queues
                .iter()
                .filter(|q| q.agents_logged_in > 0)
                .map(|q| (q.tenant.to_string(), q.queue.to_string()))
                .collect(),
            Err(_) => return,
        };
        let take_over: Vec<PromiseId> = me.node.read(|s| {
            s.promises_to_take_over(&me.me)
                .iter()
                .filter(|p| staffed.contains(&(p.tenant.to_string(), p.queue.to_string())))
                .map(|p| p.id)
                .collect()
        });
        for id in take_over {
            let taken = me
                .node
                .write(Command::TakeOverPromise {
                    id,
                    site: me.me.clone(),
                    at_ms: now_ms(),
                })
                .await;
            if taken.is_ok() {
                tracing::info!(promise = %id, "took over a promise of a down site");
            }
        }
        lock(&me.resting).retain(|_, until| *until > Instant::now());
        let working: HashSet<PromiseId> = lock(&me.work).values().copied().collect();
        let resting: HashSet<PromiseId> = lock(&me.resting).keys().copied().collect();
        // (id, pending?) of this site's open promises nobody here works on.
        let open: Vec<(PromiseId, bool)> = me.node.read(|s| {
            s.open_promises_of(&me.me)
                .filter(|p| !working.contains(&p.id) && !resting.contains(&p.id))
                .map(|p| (p.id, p.state == PromiseState::Pending))
                .collect()
        });
        for (id, pending) in open {
            if !pending {
                // Claimed here in an earlier life of this process: that contact is gone.
                let _ = me
                    .node
                    .write(Command::ReleasePromise {
                        id,
                        site: me.me.clone(),
                        at_ms: now_ms(),
                    })
                    .await;
                continue;
            }
            self.work_on(id).await;
        }
    }

    /// Claims a pending promise and puts a callback contact for it in line here.
    async fn work_on(&self, id: PromiseId) {
        let me = &self.inner;
        lock(&me.resting).insert(id, Instant::now() + RETRY_AFTER);
        let Some((tenant, queue, customer, channel)) = me.node.read(|s| {
            s.promise(&id).map(|p| {
                let channel = s
                    .queue(&p.tenant, &p.queue)
                    .map_or(Channel::Voice, |q| q.channel);
                (
                    p.tenant.clone(),
                    p.queue.clone(),
                    p.customer.clone(),
                    channel,
                )
            })
        }) else {
            return;
        };
        // Without a committed claim, no work starts (a minority site cannot commit).
        if let Err(e) = me
            .node
            .write(Command::ClaimPromise {
                id,
                site: me.me.clone(),
                at_ms: now_ms(),
            })
            .await
        {
            tracing::debug!(promise = %id, error = %e, "promise not claimed");
            return;
        }
        let contact = ContactId::random();
        lock(&me.own).insert(contact);
        lock(&me.work).insert(contact, id);
        let mut arrival = Arrival::new(contact, tenant, queue, channel);
        arrival.customer = Some(customer.into());
        let queued = me.site.arrive(arrival).await;
        if let Err(e) = queued {
            tracing::warn!(promise = %id, error = %e, "could not queue the promise's callback");
            lock(&me.work).remove(&contact);
            self.finish(id, false).await;
            return;
        }
        // A callback in line; refused if an agent took it at once (then it is simply
        // being handled).
        let _ = me.site.request_callback(contact).await;
        tracing::info!(promise = %id, %contact, "working a promise");
    }
}
