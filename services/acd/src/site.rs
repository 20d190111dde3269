//! [`Site`]: the handle the rest of Hotline uses to talk to a site's ACD.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use hotline_core::agent::NotReadyReason;
use hotline_core::event::EventSink;
use hotline_core::ids::{AgentId, ContactId, QueueId, SiteId, TenantId, TraceId};
use hotline_core::time::{Clock, Timestamp};
use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use crate::agent::{AgentCmd, AgentEndpoint, AgentLink, AgentView};
use crate::config::SiteConfig;
use crate::engine::{
    Arrival, Reservation, ReserveRefusal, SiteSnapshot, TransferContact, TransferRefusal,
};
use crate::error::AcdError;
use crate::ids::IdSource;
use crate::journal::Journal;
use crate::router::{RemoteMsg, RouterActor, RouterArgs, RouterMsg};

/// How long a request waits for the ACD before reporting it unavailable.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// A clock that follows tokio's time, so tests with paused time (and `advance`) move
/// the ACD's timestamps and timers together.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    base: Timestamp,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock reading `base` now.
    pub fn starting_at(base: Timestamp) -> Self {
        Self {
            base,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        self.base + self.start.elapsed()
    }
}

/// What a site needs besides its configuration.
pub struct SiteOptions {
    /// Where events go.
    pub sink: Arc<dyn EventSink>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Where ids come from.
    pub ids: IdSource,
    /// How many agent shards (actors owning agents' sessions) to run.
    pub shards: usize,
}

impl SiteOptions {
    /// Shards by default: one per core, at least two, so agents' work spreads over the
    /// runtime's workers.
    pub fn default_shards() -> usize {
        std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
    }
}

/// A running site ACD. Cloning shares it.
#[derive(Clone)]
pub struct Site {
    id: SiteId,
    /// The router now (the supervisor replaces it after a failure).
    router: Arc<RwLock<Option<ActorRef<RouterMsg>>>>,
    supervisor: ActorRef<SupervisorMsg>,
    clock: Arc<dyn Clock>,
}

/// What the site's supervisor handles (only supervision events, and stopping).
pub enum SupervisorMsg {}

/// Everything needed to start (or restart) the router.
struct SupervisorArgs {
    config: SiteConfig,
    sink: Arc<dyn EventSink>,
    clock: Arc<dyn Clock>,
    ids: IdSource,
    shards: usize,
    journal: Arc<Mutex<Journal>>,
    router: Arc<RwLock<Option<ActorRef<RouterMsg>>>>,
}

/// The site's supervisor: starts the router linked to itself and, when the router
/// fails, stops its shards and starts a new router, which rebuilds the site from the
/// journal.
struct SiteSupervisor;

struct SupervisorState {
    args: SupervisorArgs,
    restarts: u64,
}

impl SupervisorState {
    async fn start_router(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
    ) -> Result<ActorRef<RouterMsg>, AcdError> {
        let a = &self.args;
        let router_args = RouterArgs {
            config: a.config.clone(),
            sink: a.sink.clone(),
            clock: a.clock.clone(),
            ids: a.ids.fork(self.restarts << 48),
            shards: a.shards,
            journal: a.journal.clone(),
        };
        let (router, _) = Actor::spawn_linked(None, RouterActor, router_args, myself.get_cell())
            .await
            .map_err(|e| AcdError::Unavailable(format!("cannot start the router: {e}")))?;
        *a.router.write().unwrap_or_else(|e| e.into_inner()) = Some(router.clone());
        Ok(router)
    }
}

impl Actor for SiteSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let mut state = SupervisorState { args, restarts: 0 };
        state.start_router(&myself).await?;
        Ok(state)
    }

    async fn post_stop(
        &self,
        myself: ActorRef<SupervisorMsg>,
        _state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        myself.stop_children(Some("site stopping".into()));
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        evt: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match evt {
            SupervisionEvent::ActorFailed(cell, err) => {
                tracing::error!(error = %err, "router failed; restarting it from the journal");
                // The old router's shards hold sessions the new router will rebuild.
                cell.stop_children(Some("router failed".into()));
                state.restarts += 1;
                state.start_router(&myself).await?;
            }
            SupervisionEvent::ActorTerminated(..) => myself.stop(None),
            _ => {}
        }
        Ok(())
    }
}

impl Site {
    /// Validates the configuration and starts the router.
    pub async fn start(config: SiteConfig, options: SiteOptions) -> Result<Site, AcdError> {
        config.validate()?;
        let id = config.site.clone();
        let clock = options.clock.clone();
        let slot = Arc::new(RwLock::new(None));
        let args = SupervisorArgs {
            config,
            sink: options.sink,
            clock: options.clock,
            ids: options.ids,
            shards: options.shards,
            journal: Arc::new(Mutex::new(Journal::default())),
            router: slot.clone(),
        };
        let (supervisor, _) = Actor::spawn(None, SiteSupervisor, args)
            .await
            .map_err(|e| AcdError::Unavailable(format!("cannot start the site: {e}")))?;
        if slot.read().unwrap_or_else(|e| e.into_inner()).is_none() {
            return Err(AcdError::Unavailable("the router did not start".into()));
        }
        Ok(Site {
            id,
            router: slot,
            supervisor,
            clock,
        })
    }

    /// The site's id.
    pub fn id(&self) -> &SiteId {
        &self.id
    }

    /// The site's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The router actor now (for benchmarks that send without waiting). After a router
    /// failure the supervisor replaces it; ask again rather than keep it.
    pub fn router(&self) -> ActorRef<RouterMsg> {
        self.router
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .expect("the router is set before the site is returned")
    }

    async fn ask<T: Send + 'static>(
        &self,
        build: impl FnOnce(RpcReplyPort<T>) -> RouterMsg,
    ) -> Result<T, AcdError> {
        match self.router().call(build, Some(CALL_TIMEOUT)).await {
            Ok(CallResult::Success(v)) => Ok(v),
            Ok(CallResult::Timeout) => Err(AcdError::Unavailable("router timed out".into())),
            Ok(CallResult::SenderError) | Err(_) => {
                Err(AcdError::Unavailable("router stopped".into()))
            }
        }
    }

    /// A contact arrives and joins its queue.
    pub async fn arrive(&self, arrival: Arrival) -> Result<(), AcdError> {
        self.ask(|r| RouterMsg::Arrive(arrival, Some(r))).await?
    }

    /// The customer hung up.
    pub async fn hang_up(&self, contact: ContactId) -> Result<(), AcdError> {
        self.ask(|r| RouterMsg::HangUp(contact, Some(r))).await?
    }

    /// The customer asked to be called back; the request keeps its place.
    pub async fn request_callback(&self, contact: ContactId) -> Result<(), AcdError> {
        self.ask(|r| RouterMsg::RequestCallback(contact, Some(r)))
            .await?
    }

    /// Moves a waiting contact to another queue of its tenant.
    pub async fn move_contact(&self, contact: ContactId, to: QueueId) -> Result<(), AcdError> {
        self.ask(|r| RouterMsg::Move {
            contact,
            to,
            reply: Some(r),
        })
        .await?
    }

    async fn ask_remote<T: Send + 'static>(
        &self,
        build: impl FnOnce(RpcReplyPort<T>) -> RemoteMsg,
    ) -> Result<T, AcdError> {
        self.ask(|r| RouterMsg::Remote(build(r))).await
    }

    /// Cross-site overflow, origin: holds a waiting contact for a transfer (it keeps its
    /// place but is offered to nobody here).
    pub async fn hold(&self, contact: ContactId) -> Result<TransferContact, AcdError> {
        self.ask_remote(|r| RemoteMsg::Hold(contact, r)).await?
    }

    /// Cross-site overflow, origin: ends a hold without a transfer; answers whether the
    /// contact is still here (a customer who hung up while held is abandoned now).
    pub async fn release_hold(&self, contact: ContactId) -> Result<bool, AcdError> {
        self.ask_remote(|r| RemoteMsg::Release(contact, r)).await?
    }

    /// Cross-site overflow, origin: the target took the contact; answers whether the
    /// customer hung up while it was held (then tell the target).
    pub async fn transfer_out(
        &self,
        contact: ContactId,
        site: SiteId,
        reason: String,
    ) -> Result<bool, AcdError> {
        self.ask_remote(|reply| RemoteMsg::TransferOut {
            contact,
            site,
            reason,
            reply,
        })
        .await?
    }

    /// Cross-site overflow, origin: contacts of a queue waiting at least `min_wait`,
    /// oldest first, with their traces and waits.
    pub async fn waiting_longer_than(
        &self,
        tenant: TenantId,
        queue: QueueId,
        min_wait: Duration,
        limit: usize,
    ) -> Result<Vec<(ContactId, TraceId, Duration)>, AcdError> {
        self.ask_remote(|reply| RemoteMsg::Waiting {
            tenant,
            queue,
            min_wait,
            limit,
            reply,
        })
        .await
    }

    /// Cross-site overflow, target: reserves a ready agent for `ttl`.
    pub async fn reserve(
        &self,
        tenant: TenantId,
        queue: QueueId,
        ttl: Duration,
    ) -> Result<Result<Reservation, ReserveRefusal>, AcdError> {
        self.ask_remote(|reply| RemoteMsg::Reserve {
            tenant,
            queue,
            ttl,
            reply,
        })
        .await
    }

    /// Cross-site overflow, target: gives a reservation's slot back.
    pub async fn cancel_reservation(&self, id: u64) -> Result<bool, AcdError> {
        self.ask_remote(|r| RemoteMsg::Cancel(id, r)).await
    }

    /// Cross-site overflow, target: takes a contact transferred under a reservation.
    pub async fn transfer_in(
        &self,
        reservation: u64,
        contact: TransferContact,
    ) -> Result<Result<(), TransferRefusal>, AcdError> {
        self.ask_remote(|reply| RemoteMsg::TransferIn {
            reservation,
            contact,
            reply,
        })
        .await
    }

    /// Logs an agent in; offers go to `endpoint`.
    pub async fn login(
        &self,
        agent: AgentId,
        endpoint: Arc<dyn AgentEndpoint>,
        ready: bool,
    ) -> Result<AgentHandle, AcdError> {
        self.ask(|reply| RouterMsg::Login {
            agent: agent.clone(),
            endpoint,
            ready,
            reply,
        })
        .await??;
        Ok(self.agent(agent))
    }

    /// A handle on a logged-in agent. It looks the agent's actor up on every call, so it
    /// stays valid across a restart of that actor.
    pub fn agent(&self, agent: AgentId) -> AgentHandle {
        AgentHandle {
            site: self.clone(),
            agent,
        }
    }

    /// The site as a status page shows it.
    pub async fn snapshot(&self) -> Result<SiteSnapshot, AcdError> {
        self.ask(RouterMsg::Snapshot).await
    }

    /// Runs the engine's consistency check.
    pub async fn check_invariants(&self) -> Result<Result<(), String>, AcdError> {
        self.ask(RouterMsg::CheckInvariants).await
    }

    /// Stops the router and every agent shard, and waits for them.
    pub async fn stop(&self) {
        let _ = self
            .supervisor
            .stop_and_wait(Some("site stopping".into()), Some(CALL_TIMEOUT))
            .await;
    }
}

/// A logged-in agent, for desks and tests.
#[derive(Clone)]
pub struct AgentHandle {
    site: Site,
    agent: AgentId,
}

impl AgentHandle {
    /// The agent.
    pub fn id(&self) -> &AgentId {
        &self.agent
    }

    /// A link to the agent's session right now.
    pub async fn link(&self) -> Result<AgentLink, AcdError> {
        let agent = self.agent.clone();
        self.site.ask(|r| RouterMsg::Agent(agent, r)).await?
    }

    async fn ask(&self, cmd: AgentCmd) -> Result<(), AcdError> {
        self.link().await?.ask(cmd).await
    }

    /// Accepts an offer.
    pub async fn accept(&self, contact: ContactId) -> Result<(), AcdError> {
        self.ask(AgentCmd::Answer {
            contact,
            accept: true,
        })
        .await
    }

    /// Rejects an offer; the contact returns to its place.
    pub async fn reject(&self, contact: ContactId) -> Result<(), AcdError> {
        self.ask(AgentCmd::Answer {
            contact,
            accept: false,
        })
        .await
    }

    /// Ends the conversation; wrap-up begins.
    pub async fn end(&self, contact: ContactId) -> Result<(), AcdError> {
        self.ask(AgentCmd::End(contact)).await
    }

    /// Transfers a contact in conversation to queue `to` of its tenant (same channel):
    /// it waits there again and this agent's wrap-up for it begins. Refused, changing
    /// nothing, when the agent is not in conversation with it or the queue cannot take
    /// it (unknown to the tenant, another channel).
    pub async fn transfer(&self, contact: ContactId, to: QueueId) -> Result<(), AcdError> {
        let agent = self.agent.clone();
        self.site
            .ask(|r| RouterMsg::Transfer {
                contact,
                agent,
                to,
                reply: Some(r),
            })
            .await?
    }

    /// Ends wrap-up early.
    pub async fn finish_wrap_up(&self, contact: ContactId) -> Result<(), AcdError> {
        self.ask(AgentCmd::FinishWrapUp(contact)).await
    }

    /// Extends wrap-up.
    pub async fn extend_wrap_up(&self, contact: ContactId, secs: u32) -> Result<(), AcdError> {
        self.ask(AgentCmd::ExtendWrapUp { contact, secs }).await
    }

    /// Takes contacts.
    pub async fn go_ready(&self) -> Result<(), AcdError> {
        self.ask(AgentCmd::GoReady).await
    }

    /// Stops taking new contacts.
    pub async fn go_not_ready(&self, reason: NotReadyReason) -> Result<(), AcdError> {
        self.ask(AgentCmd::GoNotReady(reason)).await
    }

    /// Logs out.
    pub async fn log_out(&self) -> Result<(), AcdError> {
        self.ask(AgentCmd::LogOut).await
    }

    /// The agent's own view.
    pub async fn view(&self) -> Result<AgentView, AcdError> {
        self.link().await?.view().await
    }
}
