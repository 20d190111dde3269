//! Cross-site overflow between `hotline site` processes: the `SiteLink` gRPC service
//! (the target's half) and the worker that moves waiting contacts (the origin's half).
//!
//! Every `every` (250 ms) the worker reads, from the local routing replica, each queue
//! that has an overflow policy; asks the site's ACD for contacts that have waited long
//! enough (or all waiting ones, while the queue's local expected wait is above the
//! policy's bound); and for each asks the replica for the best site
//! ([`RoutingState::best_overflow_site`]). Then the handshake:
//!
//! 1. **hold** the contact at the origin (it keeps its place; nobody here is offered it);
//! 2. **reserve** at the target: it confirms its quorum and status, and takes a ready
//!    agent's slot for `reserve_ttl`; or refuses;
//! 3. **transfer**, retried with the same reservation id until the target answers (a
//!    retry of a transfer already taken answers ok again), the target is marked down, or
//!    `give_up_after` passes;
//! 4. on ok, **transfer out**: `overflowed` to the site, terminal here. On anything else,
//!    **release**: the contact is back in its place.
//!
//! Each attempt that does not move the contact is an `overflow_attempt` event with its
//! reason and outcome; the move itself is the `overflowed` event. The contact keeps its
//! id and trace at the target, so its events at both sites share one trace, and the
//! log lines of both sites carry it (`trace=…`).
//!
//! A site in a minority partition takes no overflow: a reservation is refused unless the
//! target's replica confirms a current leader with a linearizable read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hotline_acd::engine::TransferContact;
use hotline_acd::error::AcdError;
use hotline_acd::ids::IdSource;
use hotline_acd::site::Site;
use hotline_core::event::{
    ContactEvent, ContactEventKind, Event, EventBody, EventSink, OverflowOutcome,
};
use hotline_core::ids::{ContactId, QueueId, SiteId, TenantId, TraceId};
use hotline_core::time::Timestamp;
use hotline_proto::convert::{decode_channel, decode_name, decode_u128, uuid_bytes};
use hotline_proto::events::v1 as events_pb;
use hotline_proto::routing::v1 as pb;
use hotline_routing::node::RoutingNode;
use hotline_routing::state::{OverflowSkip, SiteStatus};
use pb::site_link_client::SiteLinkClient;
use pb::site_link_server::{SiteLink, SiteLinkServer};
use tonic::transport::Channel;
use tracing::Instrument;

/// How the worker and the handshake are paced.
#[derive(Debug, Clone, Copy)]
pub struct OverflowTiming {
    /// How often the worker looks at the queues.
    pub every: Duration,
    /// How long a target holds a reserved agent's slot for the transfer.
    pub reserve_ttl: Duration,
    /// How long one call to the target may take.
    pub call_timeout: Duration,
    /// How long the origin keeps retrying an unanswered transfer before it takes the
    /// contact back (unless the target is marked down sooner).
    pub give_up_after: Duration,
    /// How long a site that did not answer is passed over, and how long a contact that
    /// found no site waits before it looks again.
    pub retry_after: Duration,
    /// How old a target's summary may be to count.
    pub max_summary_age: Duration,
}

impl Default for OverflowTiming {
    fn default() -> Self {
        OverflowTiming {
            every: Duration::from_millis(250),
            reserve_ttl: Duration::from_secs(3),
            call_timeout: Duration::from_millis(800),
            give_up_after: Duration::from_secs(20),
            retry_after: Duration::from_secs(5),
            max_summary_age: Duration::from_secs(3),
        }
    }
}

/// Counters of the origin's half, for status pages and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct OverflowStats {
    /// Contacts moved to another site.
    pub moved_out: u64,
    /// Contacts taken from another site.
    pub taken_in: u64,
    /// Attempts that found no site.
    pub no_site: u64,
    /// Reservations refused.
    pub refused: u64,
    /// Calls that timed out or could not be made.
    pub timed_out: u64,
    /// Transfers that failed after a reservation.
    pub transfer_failed: u64,
}

/// A site's overflow: the worker, the `SiteLink` service, and forwarded hang-ups.
#[derive(Clone)]
pub struct Overflow {
    inner: Arc<Inner>,
}

struct Inner {
    me: SiteId,
    site: Site,
    node: RoutingNode,
    sink: Arc<dyn EventSink>,
    timing: OverflowTiming,
    ids: Mutex<IdSource>,
    /// Contacts moved away, with where they went: a later hang-up is forwarded there.
    moved: Mutex<HashMap<ContactId, (SiteId, Instant)>>,
    /// Contacts in a handshake, or waiting to try again, until when.
    busy: Mutex<HashMap<ContactId, Instant>>,
    /// Sites that did not answer lately, passed over until when: a dead target is
    /// skipped at once rather than until it is marked down or its summary goes stale.
    suspects: Mutex<HashMap<SiteId, Instant>>,
    clients: Mutex<HashMap<String, SiteLinkClient<Channel>>>,
    stats: Mutex<OverflowStats>,
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

/// What happened to one attempt, for the event and the counters.
struct Attempt {
    tenant: TenantId,
    queue: QueueId,
    contact: ContactId,
    trace: TraceId,
    reason: String,
}

impl Overflow {
    /// The overflow of site `me`, whose ACD is `site` and routing replica `node`;
    /// attempt events go to `sink`.
    pub fn new(
        me: SiteId,
        site: Site,
        node: RoutingNode,
        sink: Arc<dyn EventSink>,
        timing: OverflowTiming,
    ) -> Self {
        Overflow {
            inner: Arc::new(Inner {
                me,
                site,
                node,
                sink,
                timing,
                ids: Mutex::new(IdSource::Random),
                moved: Mutex::new(HashMap::new()),
                busy: Mutex::new(HashMap::new()),
                suspects: Mutex::new(HashMap::new()),
                clients: Mutex::new(HashMap::new()),
                stats: Mutex::new(OverflowStats::default()),
            }),
        }
    }

    /// The `SiteLink` gRPC service, to serve beside the routing replica before the
    /// site's ACD is up (the replica starts first): it refuses until
    /// [`LinkSlot::set`] gives it the site's overflow.
    pub fn service() -> (SiteLinkServer<LinkService>, LinkSlot) {
        let slot = LinkSlot(Arc::new(std::sync::OnceLock::new()));
        (
            SiteLinkServer::new(LinkService { slot: slot.clone() }),
            slot,
        )
    }

    /// The counters so far.
    pub fn stats(&self) -> OverflowStats {
        *lock(&self.inner.stats)
    }

    /// The customer hung up: at this site, or forwarded to the site the contact moved
    /// to. Refused (quietly) when the contact ended meanwhile.
    pub async fn hang_up(&self, contact: ContactId) {
        match self.inner.site.hang_up(contact).await {
            Err(AcdError::UnknownContact(_)) => {
                let to = lock(&self.inner.moved)
                    .get(&contact)
                    .map(|(s, _)| s.clone());
                if let Some(to) = to {
                    self.forward_hang_up(&to, contact).await;
                }
            }
            Err(e) => tracing::debug!(%contact, error = %e, "hang-up refused"),
            Ok(()) => {}
        }
    }

    /// Runs the worker until `stop` turns true.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(self.inner.timing.every);
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

    /// One look at every queue with a policy.
    async fn round(&self) {
        let me = self.inner.me.clone();
        let now = now_ms();
        // (tenant, queue, least wait) for each queue whose policy may fire now.
        let queues: Vec<(TenantId, QueueId, Duration)> = self.inner.node.read(|s| {
            if s.site(&me)
                .is_none_or(|site| site.status != SiteStatus::Active)
            {
                return Vec::new();
            }
            let mine = s.summary(&me);
            s.tenants()
                .flat_map(|t| t.queues.values().map(move |q| (t, q)))
                // A chat's customer is connected to this site's desk, which has no link to
                // another site's yet: chats stay (a policy on a chat queue is not used).
                .filter(|(_, q)| q.channel != hotline_core::channel::Channel::Chat)
                .filter_map(|(t, q)| {
                    let policy = q.overflow.as_ref()?;
                    let expected = mine
                        .and_then(|m| m.queue(&t.id, &q.id))
                        .map_or(0, |row| row.expected_wait_ms);
                    let min_wait = if policy.triggered(0, expected) {
                        Duration::ZERO
                    } else {
                        Duration::from_secs(u64::from(policy.after_wait_secs?))
                    };
                    Some((t.id.clone(), q.id.clone(), min_wait))
                })
                .collect()
        });
        lock(&self.inner.busy).retain(|_, until| *until > Instant::now());
        lock(&self.inner.moved).retain(|_, (_, at)| at.elapsed() < Duration::from_secs(3600));
        // Handshakes started this round per target: no more than it has ready agents
        // (the others would only be refused).
        let mut started: HashMap<SiteId, u32> = HashMap::new();
        for (tenant, queue, min_wait) in queues {
            let waiting = match self
                .inner
                .site
                .waiting_longer_than(tenant.clone(), queue.clone(), min_wait, 16)
                .await
            {
                Ok(w) => w,
                Err(e) => {
                    tracing::debug!(error = %e, "ACD unavailable for overflow");
                    return;
                }
            };
            for (contact, trace, waited) in waiting {
                if lock(&self.inner.busy).contains_key(&contact) {
                    continue;
                }
                let attempt = Attempt {
                    tenant: tenant.clone(),
                    queue: queue.clone(),
                    contact,
                    trace,
                    reason: if waited >= min_wait && min_wait > Duration::ZERO {
                        format!("waited {} s", waited.as_secs())
                    } else {
                        "local expected wait above the policy's bound".to_owned()
                    },
                };
                let max_age = self.inner.timing.max_summary_age.as_millis() as u64;
                let suspects: HashMap<SiteId, Instant> = {
                    let mut s = lock(&self.inner.suspects);
                    s.retain(|_, until| *until > Instant::now());
                    s.clone()
                };
                let choice = self.inner.node.read(|s| {
                    let candidates = s.overflow_candidates(&tenant, &queue, &me, now, max_age);
                    // The state's own choice (lowest score, then more ready agents, then
                    // policy order), among the sites that answered lately.
                    let best = candidates
                        .iter()
                        .enumerate()
                        .filter(|(_, c)| !suspects.contains_key(&c.site))
                        .filter_map(|(i, c)| c.verdict.as_ref().ok().map(|choice| (i, choice)))
                        .min_by_key(|(i, c)| (c.score_ms, std::cmp::Reverse(c.ready), *i))
                        .map(|(_, c)| c.clone());
                    best.ok_or_else(|| {
                        candidates
                            .into_iter()
                            .map(|c| match c.verdict {
                                Err(skip) => skip_text(&c.site, skip),
                                Ok(_) => format!("{} did not answer lately", c.site),
                            })
                            .collect::<Vec<_>>()
                            .join("; ")
                    })
                });
                match choice {
                    Err(detail) => {
                        // Nowhere to go: look again later, one event per look.
                        lock(&self.inner.busy)
                            .insert(contact, Instant::now() + self.inner.timing.retry_after);
                        lock(&self.inner.stats).no_site += 1;
                        self.attempt_event(&attempt, None, OverflowOutcome::NoSite, detail);
                    }
                    Ok(choice) => {
                        let n = started.entry(choice.site.clone()).or_default();
                        if *n >= choice.ready {
                            continue;
                        }
                        *n += 1;
                        let me = self.clone();
                        // Busy for the whole handshake; a backoff follows if it fails.
                        lock(&self.inner.busy)
                            .insert(contact, Instant::now() + Duration::from_secs(3600));
                        let span = tracing::info_span!("overflow", trace = %attempt.trace, contact = %contact, from = %self.inner.me, to = %choice.site);
                        tokio::spawn(
                            async move {
                                let to = choice.site.clone();
                                let moved = me.handshake(attempt, choice.site, choice.reason).await;
                                if !moved {
                                    me.backoff(contact, &to);
                                }
                            }
                            .instrument(span),
                        );
                    }
                }
            }
        }
    }

    /// A contact whose attempt did not move it waits before the next one: one round
    /// when the site did not answer (it is passed over now, so the next round asks
    /// another), four when it refused (not to hammer a site that said no).
    fn backoff(&self, contact: ContactId, to: &SiteId) {
        let rounds = if lock(&self.inner.suspects).contains_key(to) {
            1
        } else {
            4
        };
        lock(&self.inner.busy).insert(contact, Instant::now() + self.inner.timing.every * rounds);
    }

    /// Hold → reserve → transfer → transfer out, or release. Answers whether the
    /// contact moved.
    async fn handshake(&self, a: Attempt, to: SiteId, why: String) -> bool {
        let site = &self.inner.site;
        let held = match site.hold(a.contact).await {
            Ok(h) => h,
            // Offered or gone meanwhile: nothing to do.
            Err(_) => return false,
        };
        let reason = format!("{}; {why}", a.reason);
        let reservation = match self.reserve(&to, &held).await {
            Ok(Ok(r)) => r,
            Ok(Err(refused)) => {
                lock(&self.inner.stats).refused += 1;
                self.release(a.contact).await;
                self.attempt_event(&a, Some(to), OverflowOutcome::Refused, refused);
                return false;
            }
            Err(e) => {
                lock(&self.inner.stats).timed_out += 1;
                self.suspect(&to);
                self.release(a.contact).await;
                self.attempt_event(&a, Some(to), OverflowOutcome::TimedOut, e);
                return false;
            }
        };
        tracing::info!(reservation, "reserved an agent at the target; transferring");
        match self.transfer(&to, reservation, &held).await {
            Ok(()) => match site.transfer_out(a.contact, to.clone(), reason).await {
                Ok(hung_up) => {
                    lock(&self.inner.stats).moved_out += 1;
                    lock(&self.inner.moved).insert(a.contact, (to.clone(), Instant::now()));
                    if hung_up {
                        self.forward_hang_up(&to, a.contact).await;
                    }
                    tracing::info!("contact moved");
                    true
                }
                Err(e) => {
                    // Only a restarted router forgets a hold: the contact is at both
                    // sites now. The target's copy has the agent; end ours.
                    tracing::error!(error = %e, "transfer taken by the target but the hold here was lost; ending the copy here");
                    let _ = site.hang_up(a.contact).await;
                    true
                }
            },
            Err(detail) => {
                lock(&self.inner.stats).transfer_failed += 1;
                self.suspect(&to);
                self.release(a.contact).await;
                self.attempt_event(&a, Some(to), OverflowOutcome::TransferFailed, detail);
                false
            }
        }
    }

    fn suspect(&self, site: &SiteId) {
        lock(&self.inner.suspects)
            .insert(site.clone(), Instant::now() + self.inner.timing.retry_after);
    }

    async fn release(&self, contact: ContactId) {
        if let Err(e) = self.inner.site.release_hold(contact).await {
            tracing::warn!(%contact, error = %e, "could not release a held contact");
        }
    }

    async fn client(&self, to: &SiteId) -> Result<SiteLinkClient<Channel>, String> {
        let addr = self
            .inner
            .node
            .read(|s| s.site(to).map(|site| site.node_id));
        let node_id = addr.ok_or_else(|| format!("site {to} is not in the routing state"))?;
        let addr = self
            .inner
            .node
            .status()
            .members
            .into_iter()
            .find(|m| m.id == node_id)
            .map(|m| m.rpc_addr)
            .ok_or_else(|| format!("site {to}'s replica {node_id} is not a member"))?;
        if let Some(c) = lock(&self.inner.clients).get(&addr) {
            return Ok(c.clone());
        }
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| format!("bad address {addr}: {e}"))?
            .connect_timeout(self.inner.timing.call_timeout)
            .timeout(self.inner.timing.call_timeout)
            .tcp_nodelay(true);
        // Lazy: the first call connects, and a dead target fails that call in time.
        let client = SiteLinkClient::new(endpoint.connect_lazy());
        lock(&self.inner.clients).insert(addr, client.clone());
        Ok(client)
    }

    async fn reserve(
        &self,
        to: &SiteId,
        held: &TransferContact,
    ) -> Result<Result<u64, String>, String> {
        let mut client = self.client(to).await?;
        let request = pb::ReserveRequest {
            from_site: self.inner.me.to_string(),
            tenant: held.tenant.to_string(),
            queue: held.queue.to_string(),
            ttl_ms: self.inner.timing.reserve_ttl.as_millis() as u64,
            trace: uuid_bytes(held.trace.as_u128()),
        };
        let reply = tokio::time::timeout(self.inner.timing.call_timeout, client.reserve(request))
            .await
            .map_err(|_| {
                format!(
                    "site {to} did not answer within {:?}",
                    self.inner.timing.call_timeout
                )
            })?
            .map_err(|s| format!("site {to}: {}", s.message()))?
            .into_inner();
        Ok(match reply.reservation {
            Some(id) => Ok(id),
            None => Err(reply.refused),
        })
    }

    /// Sends the transfer until answered; `Err` with why the contact stays here.
    async fn transfer(
        &self,
        to: &SiteId,
        reservation: u64,
        held: &TransferContact,
    ) -> Result<(), String> {
        let request = pb::TransferRequest {
            from_site: self.inner.me.to_string(),
            reservation,
            contact: uuid_bytes(held.contact.as_u128()),
            tenant: held.tenant.to_string(),
            queue: held.queue.to_string(),
            channel: events_pb::Channel::from(held.channel).into(),
            priority: u32::from(held.priority),
            trace: uuid_bytes(held.trace.as_u128()),
            waited_ms: held.waited_ms,
            customer: held.customer.as_deref().unwrap_or_default().to_owned(),
        };
        let started = Instant::now();
        let mut last;
        loop {
            match self.client(to).await {
                Ok(mut client) => {
                    match tokio::time::timeout(
                        self.inner.timing.call_timeout,
                        client.transfer(request.clone()),
                    )
                    .await
                    {
                        Ok(Ok(reply)) => {
                            let refused = reply.into_inner().refused;
                            return if refused.is_empty() {
                                Ok(())
                            } else {
                                Err(refused)
                            };
                        }
                        Ok(Err(status)) => last = status.message().to_owned(),
                        Err(_) => last = "no answer in time".to_owned(),
                    }
                }
                Err(e) => last = e,
            }
            let down = self.inner.node.read(|s| {
                s.site(to)
                    .is_none_or(|site| site.status == SiteStatus::Down)
            });
            if down {
                return Err(format!(
                    "site {to} is down and the transfer was not confirmed ({last})"
                ));
            }
            if started.elapsed() > self.inner.timing.give_up_after {
                tracing::warn!(%to, "transfer unanswered for {:?}; taking the contact back (the target may hold a copy until its reservation check refuses it)", self.inner.timing.give_up_after);
                return Err(format!(
                    "site {to} did not confirm the transfer within {:?} ({last})",
                    self.inner.timing.give_up_after
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn forward_hang_up(&self, to: &SiteId, contact: ContactId) {
        for _ in 0..5 {
            if let Ok(mut client) = self.client(to).await {
                let request = pb::HangUpRequest {
                    contact: uuid_bytes(contact.as_u128()),
                };
                if client.hang_up(request).await.is_ok() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tracing::warn!(%contact, %to, "could not forward a hang-up to the site the contact moved to");
    }

    fn attempt_event(
        &self,
        a: &Attempt,
        to: Option<SiteId>,
        outcome: OverflowOutcome,
        detail: String,
    ) {
        tracing::info!(contact = %a.contact, trace = %a.trace, to = ?to.as_ref().map(SiteId::as_str), outcome = outcome.as_str(), %detail, "overflow attempt did not move the contact");
        let now = Timestamp(now_ms() * 1000);
        let event = Event {
            id: lock(&self.inner.ids).event(now),
            at: now,
            tenant: a.tenant.clone(),
            site: self.inner.me.clone(),
            trace: a.trace,
            body: EventBody::Contact(ContactEvent {
                contact: a.contact,
                channel: hotline_core::channel::Channel::Voice,
                queue: Some(a.queue.clone()),
                agent: None,
                kind: ContactEventKind::OverflowAttempt {
                    to,
                    reason: a.reason.clone(),
                    outcome,
                    detail,
                },
            }),
        };
        self.inner.sink.publish(&[event]);
    }
}

fn skip_text(site: &SiteId, skip: OverflowSkip) -> String {
    let why = match skip {
        OverflowSkip::IsOrigin => "is this site".to_owned(),
        OverflowSkip::NotActive(s) => format!("is {s}"),
        OverflowSkip::NoSummary => "has published no summary".to_owned(),
        OverflowSkip::Stale { age_ms } => format!("summary is {age_ms} ms old"),
        OverflowSkip::QueueNotServed => "serves no agent of the queue".to_owned(),
        OverflowSkip::NoReadyAgents => "has no ready agent".to_owned(),
    };
    format!("{site} {why}")
}

// === the target's half ===

/// The `SiteLink` gRPC service of one site.
pub struct LinkService {
    slot: LinkSlot,
}

/// Where the `SiteLink` service finds the site's overflow once the ACD is up.
#[derive(Clone)]
pub struct LinkSlot(Arc<std::sync::OnceLock<Overflow>>);

impl LinkSlot {
    /// Gives the service the site's overflow (once).
    pub fn set(&self, overflow: Overflow) {
        let _ = self.0.set(overflow);
    }
}

impl LinkService {
    fn overflow(&self) -> Result<&Overflow, tonic::Status> {
        self.slot.0.get().ok_or_else(|| {
            tonic::Status::unavailable("this site's ACD is still starting; try again")
        })
    }
}

fn bad(field: &str, e: impl std::fmt::Display) -> tonic::Status {
    tonic::Status::invalid_argument(format!("{field}: {e}"))
}

#[tonic::async_trait]
impl SiteLink for LinkService {
    async fn reserve(
        &self,
        request: tonic::Request<pb::ReserveRequest>,
    ) -> Result<tonic::Response<pb::ReserveReply>, tonic::Status> {
        let r = request.into_inner();
        let inner = &self.overflow()?.inner;
        let tenant: TenantId =
            decode_name("ReserveRequest.tenant", &r.tenant).map_err(|e| bad("tenant", e))?;
        let queue: QueueId =
            decode_name("ReserveRequest.queue", &r.queue).map_err(|e| bad("queue", e))?;
        let trace = decode_u128("ReserveRequest.trace", &r.trace)
            .map(TraceId::from_u128)
            .map_err(|e| bad("trace", e))?;
        let refuse = |why: String| {
            tracing::info!(%trace, from = %r.from_site, %tenant, %queue, %why, "reservation refused");
            Ok(tonic::Response::new(pb::ReserveReply {
                reservation: None,
                agent: String::new(),
                refused: why,
            }))
        };
        // A site cut off from the group's majority takes no overflow.
        let quorum = tokio::time::timeout(
            Duration::from_millis(500),
            inner
                .node
                .read_linearizable(|s| s.site(&inner.me).map(|site| site.status)),
        )
        .await;
        match quorum {
            Ok(Ok(Some(SiteStatus::Active))) => {}
            Ok(Ok(Some(status))) => return refuse(format!("site {} is {status}", inner.me)),
            Ok(Ok(None)) => return refuse(format!("site {} is not registered", inner.me)),
            Ok(Err(e)) => {
                return refuse(format!(
                    "site {} cannot confirm the routing group's quorum: {e}",
                    inner.me
                ));
            }
            Err(_) => {
                return refuse(format!(
                    "site {} cannot reach the routing group's leader",
                    inner.me
                ));
            }
        }
        let ttl = Duration::from_millis(r.ttl_ms.clamp(100, 30_000));
        match inner.site.reserve(tenant.clone(), queue.clone(), ttl).await {
            Ok(Ok(res)) => {
                tracing::info!(%trace, from = %r.from_site, %tenant, %queue, agent = %res.agent, reservation = res.id, "agent reserved for a contact from another site");
                Ok(tonic::Response::new(pb::ReserveReply {
                    reservation: Some(res.id),
                    agent: res.agent.to_string(),
                    refused: String::new(),
                }))
            }
            Ok(Err(refusal)) => refuse(refusal.to_string()),
            Err(e) => refuse(e.to_string()),
        }
    }

    async fn transfer(
        &self,
        request: tonic::Request<pb::TransferRequest>,
    ) -> Result<tonic::Response<pb::TransferReply>, tonic::Status> {
        let r = request.into_inner();
        let inner = &self.overflow()?.inner;
        let contact = TransferContact {
            contact: ContactId::from_u128(
                decode_u128("TransferRequest.contact", &r.contact)
                    .map_err(|e| bad("contact", e))?,
            ),
            tenant: decode_name("TransferRequest.tenant", &r.tenant)
                .map_err(|e| bad("tenant", e))?,
            queue: decode_name("TransferRequest.queue", &r.queue).map_err(|e| bad("queue", e))?,
            channel: decode_channel("TransferRequest.channel", r.channel)
                .map_err(|e| bad("channel", e))?,
            priority: u8::try_from(r.priority).map_err(|e| bad("priority", e))?,
            trace: TraceId::from_u128(
                decode_u128("TransferRequest.trace", &r.trace).map_err(|e| bad("trace", e))?,
            ),
            waited_ms: r.waited_ms,
            customer: (!r.customer.is_empty()).then(|| r.customer.as_str().into()),
        };
        let (id, trace) = (contact.contact, contact.trace);
        let refused = match inner.site.transfer_in(r.reservation, contact).await {
            Ok(Ok(())) => {
                lock(&inner.stats).taken_in += 1;
                tracing::info!(%trace, contact = %id, from = %r.from_site, "contact taken from another site");
                String::new()
            }
            Ok(Err(refusal)) => refusal.to_string(),
            // Unanswered, so the origin retries.
            Err(e) => return Err(tonic::Status::unavailable(e.to_string())),
        };
        Ok(tonic::Response::new(pb::TransferReply { refused }))
    }

    async fn cancel(
        &self,
        request: tonic::Request<pb::CancelRequest>,
    ) -> Result<tonic::Response<pb::CancelReply>, tonic::Status> {
        let existed = self
            .overflow()?
            .inner
            .site
            .cancel_reservation(request.into_inner().reservation)
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        Ok(tonic::Response::new(pb::CancelReply { existed }))
    }

    async fn hang_up(
        &self,
        request: tonic::Request<pb::HangUpRequest>,
    ) -> Result<tonic::Response<pb::HangUpReply>, tonic::Status> {
        let contact = ContactId::from_u128(
            decode_u128("HangUpRequest.contact", &request.into_inner().contact)
                .map_err(|e| bad("contact", e))?,
        );
        // Refused when it ended meanwhile; the answer is the same.
        self.overflow()?.hang_up(contact).await;
        Ok(tonic::Response::new(pb::HangUpReply {}))
    }
}
