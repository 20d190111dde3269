//! [`Desk`]: the desk's state and what every request does to it.
//!
//! One mutex guards the desk's state (sessions, agents, chats); it is never held
//! across a call to the ACD. A command is checked against the state, sent to the ACD,
//! and its result written back; what changed is pushed to the pages concerned.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hotline_acd::AcdError;
use hotline_acd::engine::{Arrival, Offer};
use hotline_acd::site::Site;
use hotline_core::agent::{AgentStatus, NotReadyReason};
use hotline_core::channel::Channel;
use hotline_core::event::{ContactEvent, ContactEventKind, Event, EventBody, EventSink};
use hotline_core::ids::{AgentId, ContactId, EventId, QueueId, TenantId};
use hotline_core::time::{Clock, Timestamp};

use crate::agents::{self, Count, DeskAgent, Held, Ringing};
use crate::auth::{self, Session, Sessions, TokenError};
use crate::config::{DeskConfig, Role};
use crate::hub::{Chat, ChatState, Conn, Hub};
use crate::intake::{Intake, IntakeChat, IntakeOutcome};
use crate::schema::{
    self, AgentRow, Author, ChatLine, ErrorCode, ForcedState, QueueChoice, QueueView, ServerFrame,
    StaffRequest, WaitingView,
};

/// A password hash no password matches, verified against for unknown users so a
/// wrong user name takes as long as a wrong password.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$k0tBPd0sBmWcpDLUzLTvm5uoBU9n2V9fw0lfjVNWszk";

/// What a request ends in, when not plain success: an error frame's code and text.
pub type Failure = (ErrorCode, String);

/// What the desk runs on besides its configuration.
pub struct DeskOptions {
    /// The chat intake (the built-in [`crate::intake::ScriptedIntake`] or an IVR's).
    pub intake: Arc<dyn Intake>,
}

/// The desk's mutable state.
pub struct State {
    /// Sessions by token.
    pub sessions: Sessions,
    /// Agents logged in at this desk.
    pub agents: std::collections::HashMap<AgentId, DeskAgent>,
    /// Open chats.
    pub hub: Hub,
}

/// The desk's shared core; [`Desk`] is a handle on it.
pub struct Inner {
    pub(crate) config: Arc<DeskConfig>,
    pub(crate) site: Site,
    sink: Arc<dyn EventSink>,
    clock: Arc<dyn Clock>,
    pub(crate) intake: Arc<dyn Intake>,
    state: Mutex<State>,
    next_conn: AtomicU64,
    me: std::sync::Weak<Inner>,
}

/// The agent desktop, supervisor view and chat channel of one site. Cloning shares it.
#[derive(Clone)]
pub struct Desk {
    pub(crate) inner: Arc<Inner>,
}

impl Desk {
    /// A desk over `site`, recording what it adds (dispositions) through `sink` — the
    /// site's own event sink, so they land beside the contact's other events.
    pub fn new(
        config: DeskConfig,
        site: Site,
        sink: Arc<dyn EventSink>,
        options: DeskOptions,
    ) -> Result<Desk, crate::config::ConfigError> {
        config
            .validate()
            .map_err(|message| crate::config::ConfigError {
                file: "desk configuration".into(),
                message,
            })?;
        let clock = site.clock().clone();
        let ttl = Duration::from_secs(config.session_ttl_secs);
        let inner = Arc::new_cyclic(|me| Inner {
            config: Arc::new(config),
            site,
            sink,
            clock,
            intake: options.intake,
            state: Mutex::new(State {
                sessions: Sessions::new(ttl),
                agents: Default::default(),
                hub: Hub::default(),
            }),
            next_conn: AtomicU64::new(1),
            me: me.clone(),
        });
        Ok(Desk { inner })
    }

    /// A desk with the built-in scripted intake.
    pub fn with_scripted_intake(
        config: DeskConfig,
        site: Site,
        sink: Arc<dyn EventSink>,
    ) -> Result<Desk, crate::config::ConfigError> {
        let intake = Arc::new(crate::intake::ScriptedIntake::new(Arc::new(config.clone())));
        Self::new(config, site, sink, DeskOptions { intake })
    }

    /// Follows the site's events: a queued chat that the ACD ends by itself (queue full,
    /// no agents, too long a wait, voicemail) is ended on the customer's page with a
    /// message that says so, rather than left "queued". Give it every event the site
    /// publishes (it ignores all but chats' terminal events).
    pub fn follow(&self, events: &[hotline_core::event::Event]) {
        self.inner.follow(events);
    }

    /// The pages and sockets, under `/desk`; merge it into a site's router.
    pub fn router(&self) -> axum::Router {
        crate::ws::router(self.clone())
    }

    /// The configuration in force.
    pub fn config(&self) -> &DeskConfig {
        &self.inner.config
    }
}

// === impl Inner: bookkeeping ===

impl Inner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub(crate) fn conn(&self, tx: tokio::sync::mpsc::UnboundedSender<ServerFrame>) -> Conn {
        Conn {
            id: self.next_conn.fetch_add(1, Ordering::Relaxed),
            tx,
        }
    }

    /// Forgets a closed connection wherever it was registered.
    pub(crate) fn unregister(&self, conn: u64) {
        let mut st = self.lock();
        for a in st.agents.values_mut() {
            a.conns.retain(|c| c.id != conn);
        }
    }

    fn push_agent(&self, st: &mut State, agent: &AgentId) {
        let now = self.now();
        let State { agents, hub, .. } = st;
        if let Some(a) = agents.get_mut(agent) {
            let frame = ServerFrame::Agent(agents::agent_state(a, hub, now));
            a.tell(&frame);
        }
    }

    /// Sends a message frame to every agent page holding (or ringing with) `contact`.
    fn push_to_holders(&self, st: &mut State, contact: &ContactId, frame: &ServerFrame) {
        for a in st.agents.values_mut() {
            let holds = a.held.iter().any(|h| &h.contact == contact)
                || a.ringing
                    .as_ref()
                    .is_some_and(|r| &r.offer.contact == contact);
            if holds {
                a.tell(frame);
            }
        }
    }

    /// Forgets a chat that nobody needs any more.
    fn maybe_forget(&self, st: &mut State, contact: &ContactId) {
        let held = st
            .agents
            .values()
            .any(|a| a.held.iter().any(|h| &h.contact == contact));
        if let Some(c) = st.hub.get(contact)
            && c.state == ChatState::Ended
            && c.customer_gone
            && !held
        {
            st.hub.remove(contact);
        }
    }
}

// === impl Inner: what the ACD pushes (through agents::DeskEndpoint) ===

impl Inner {
    /// An offer; false when it is another tenant's (the endpoint rejects it).
    pub(crate) fn offered(&self, agent: &AgentId, offer: &Offer) -> bool {
        let now = self.now();
        let mut st = self.lock();
        let Some(a) = st.agents.get_mut(agent) else {
            return false;
        };
        if a.tenant != offer.tenant {
            tracing::info!(agent = %agent, contact = %offer.contact, tenant = %offer.tenant,
                "offer of another tenant's contact returned: the agent's desk session is for {}", a.tenant);
            return false;
        }
        a.count(now, Count::Offered);
        a.ringing = Some(Ringing {
            offer: offer.clone(),
            until: now + offer.no_answer,
        });
        self.push_agent(&mut st, agent);
        true
    }

    pub(crate) fn rescinded(&self, agent: &AgentId, contact: ContactId) {
        let now = self.now();
        let mut st = self.lock();
        let Some(a) = st.agents.get_mut(agent) else {
            return;
        };
        if a.ringing
            .as_ref()
            .is_some_and(|r| r.offer.contact == contact)
        {
            a.ringing = None;
            a.count(now, Count::Missed);
            self.push_agent(&mut st, agent);
        }
    }

    pub(crate) fn customer_ended(&self, agent: &AgentId, contact: ContactId) {
        let now = self.now();
        let mut st = self.lock();
        if let Some(a) = st.agents.get_mut(agent)
            && let Some(h) = a.holding(&contact)
        {
            h.customer_left = true;
            h.connected = false;
            h.since = now;
            h.ended_at = Some(now);
        }
        self.push_agent(&mut st, agent);
    }

    pub(crate) fn status_changed(&self, agent: &AgentId, status: AgentStatus) {
        let now = self.now();
        let mut st = self.lock();
        let Some(a) = st.agents.get_mut(agent) else {
            return;
        };
        let gone = status == AgentStatus::LoggedOut;
        a.set_status(now, status);
        self.push_agent(&mut st, agent);
        if gone && let Some(a) = st.agents.remove(agent) {
            // Logged out (by the agent or a supervisor): the sessions end with it.
            st.sessions.close_user(&a.tenant, &a.id);
        }
    }
}

// === impl Inner: staff requests ===

fn acd_failure(e: AcdError) -> Failure {
    match e {
        AcdError::Unavailable(_) => (ErrorCode::Unavailable, e.to_string()),
        AcdError::UnknownContact(_) | AcdError::NotYours { .. } | AcdError::NotOffered { .. } => (
            ErrorCode::NotFound,
            format!("{e}; refresh to see what you hold now"),
        ),
        AcdError::UnknownQueue { .. } => (ErrorCode::NotFound, e.to_string()),
        other => (ErrorCode::Refused, other.to_string()),
    }
}

fn not_found(contact: &ContactId) -> Failure {
    (
        ErrorCode::NotFound,
        format!("no contact {contact} of yours; it may have ended or moved"),
    )
}

fn held_view<'a>(
    st: &'a mut State,
    s: &Session,
    contact: &ContactId,
) -> Result<&'a mut Held, Failure> {
    st.agents
        .get_mut(&s.user)
        .and_then(|a| a.holding(contact))
        .filter(|h| h.tenant == s.tenant)
        .ok_or_else(|| not_found(contact))
}

impl Inner {
    /// Logs in; on success the connection is registered for the user's pushes.
    pub(crate) async fn login(
        &self,
        tenant: TenantId,
        user: AgentId,
        password: String,
        conn: &Conn,
    ) -> Result<(String, Session), Failure> {
        let found = self.config.user(&tenant, &user).cloned();
        let hash = found
            .as_ref()
            .map_or(DUMMY_HASH.to_owned(), |u| u.password_hash.clone());
        let ok = tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
            .await
            .unwrap_or(false);
        let Some(u) = found.filter(|_| ok) else {
            return Err((
                ErrorCode::BadCredentials,
                "wrong tenant, user or password; check them and try again".into(),
            ));
        };
        if u.role == Role::Agent {
            self.attach_agent(&u.tenant, &u.id, u.display_name())
                .await?;
        }
        let now = self.now();
        let mut st = self.lock();
        let (token, session) = st
            .sessions
            .open(now, u.tenant.clone(), u.id.clone(), u.role);
        if let Some(a) = st.agents.get_mut(&u.id) {
            a.conns.push(conn.clone());
        }
        Ok((token, session))
    }

    /// Logs the agent in at the ACD unless this desk has it already.
    async fn attach_agent(
        &self,
        tenant: &TenantId,
        id: &AgentId,
        name: &str,
    ) -> Result<(), Failure> {
        {
            let st = self.lock();
            if let Some(a) = st.agents.get(id) {
                if &a.tenant != tenant {
                    return Err((
                        ErrorCode::Refused,
                        format!(
                            "agent {id} is logged in for tenant {} here; log out there first",
                            a.tenant
                        ),
                    ));
                }
                return Ok(());
            }
        }
        let now = self.now();
        self.lock().agents.insert(
            id.clone(),
            DeskAgent::new(tenant.clone(), id.clone(), name.to_owned(), now),
        );
        let me = self
            .me
            .upgrade()
            .ok_or((ErrorCode::Unavailable, "the desk is stopping".to_string()))?;
        match self
            .site
            .login(id.clone(), agents::endpoint(id.clone(), &me), false)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                self.lock().agents.remove(id);
                Err(match e {
                    AcdError::AlreadyLoggedIn(_) => (
                        ErrorCode::Refused,
                        format!(
                            "agent {id} is already logged in at this site from another device; log out there first"
                        ),
                    ),
                    AcdError::UnknownAgent(_) => (
                        ErrorCode::Refused,
                        format!(
                            "agent {id} is not configured at site {}; ask an administrator to add it",
                            self.site.id()
                        ),
                    ),
                    other => acd_failure(other),
                })
            }
        }
    }

    /// Resumes a session by token; registers the connection.
    pub(crate) fn resume(&self, token: &str, conn: &Conn) -> Result<Session, Failure> {
        let now = self.now();
        let mut st = self.lock();
        let s = st.sessions.touch(now, token).map_err(token_failure)?;
        if s.role == Role::Agent {
            let Some(a) = st.agents.get_mut(&s.user) else {
                return Err((
                    ErrorCode::UnknownSession,
                    "you were logged out; log in again".into(),
                ));
            };
            a.conns.retain(|c| c.id != conn.id);
            a.conns.push(conn.clone());
        }
        Ok(s)
    }

    /// Checks that the session behind `token` is still alive (renewing it).
    pub(crate) fn check(&self, token: &str) -> Result<Session, Failure> {
        let now = self.now();
        self.lock()
            .sessions
            .touch(now, token)
            .map_err(token_failure)
    }

    /// The `welcome` frame for a session.
    pub(crate) async fn welcome(&self, token: String, s: &Session) -> ServerFrame {
        let tenant = self.config.tenant(&s.tenant);
        let queues = match self.site.snapshot().await {
            Ok(snap) => snap
                .queues
                .into_iter()
                .filter(|q| q.tenant == s.tenant)
                .map(|q| QueueChoice {
                    name: if q.name.is_empty() {
                        q.queue.to_string()
                    } else {
                        q.name
                    },
                    queue: q.queue,
                    channel: q.channel,
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        let name = self
            .config
            .user(&s.tenant, &s.user)
            .map_or(s.user.to_string(), |u| u.display_name().to_owned());
        ServerFrame::Welcome {
            token,
            tenant: s.tenant.clone(),
            user: s.user.clone(),
            name,
            role: s.role.as_str(),
            dispositions: tenant.map(|t| t.dispositions.clone()).unwrap_or_default(),
            not_ready_reasons: tenant
                .map(|t| t.not_ready_reasons.clone())
                .unwrap_or_default(),
            queues,
        }
    }

    /// The agent's whole state frame, for a page that just (re)connected.
    pub(crate) fn agent_frame(&self, agent: &AgentId) -> Option<ServerFrame> {
        let now = self.now();
        let st = self.lock();
        let a = st.agents.get(agent)?;
        Some(ServerFrame::Agent(agents::agent_state(a, &st.hub, now)))
    }

    /// Does what a logged-in staff member asked. `Ok` carries nothing: changes are
    /// pushed to the pages concerned, and the caller acknowledges.
    pub(crate) async fn staff(&self, s: &Session, req: StaffRequest) -> Result<(), Failure> {
        use StaffRequest as R;
        let agent_only = matches!(
            req,
            R::Ready {}
                | R::NotReady { .. }
                | R::Accept { .. }
                | R::Reject { .. }
                | R::Send { .. }
                | R::End { .. }
                | R::Transfer { .. }
                | R::WrapUp { .. }
        );
        let supervisor_only = matches!(req, R::ForceState { .. } | R::MoveContact { .. });
        if (agent_only && s.role != Role::Agent) || (supervisor_only && s.role != Role::Supervisor)
        {
            return Err((
                ErrorCode::Forbidden,
                format!(
                    "a {} cannot do that; log in with the right role",
                    s.role.as_str()
                ),
            ));
        }
        let me = self.site.agent(s.user.clone());
        match req {
            R::Login { .. } | R::Resume { .. } | R::Ping {} => Ok(()),
            R::Ready {} => me.go_ready().await.map_err(acd_failure),
            R::NotReady { reason } => {
                self.check_reason(s, &reason)?;
                me.go_not_ready(NotReadyReason::Code(reason))
                    .await
                    .map_err(acd_failure)
            }
            R::Accept { contact } => self.accept(s, contact).await,
            R::Reject { contact } => {
                self.ringing_for(s, &contact)?;
                me.reject(contact).await.map_err(acd_failure)?;
                let now = self.now();
                let mut st = self.lock();
                if let Some(a) = st.agents.get_mut(&s.user) {
                    a.ringing = None;
                    a.count(now, Count::Rejected);
                }
                self.push_agent(&mut st, &s.user);
                Ok(())
            }
            R::Send { contact, text } => self.send(s, contact, text),
            R::End { contact } => self.end(s, contact).await,
            R::Transfer { contact, queue } => self.transfer(s, contact, queue).await,
            R::WrapUp {
                contact,
                code,
                notes,
            } => self.wrap_up(s, contact, code, notes).await,
            R::LogOut {} => self.log_out(s).await,
            R::ForceState {
                agent,
                state,
                reason,
            } => self.force(s, agent, state, reason).await,
            R::MoveContact { contact, queue } => self.move_contact(s, contact, queue).await,
        }
    }

    fn check_reason(&self, s: &Session, reason: &str) -> Result<(), Failure> {
        let reasons = self
            .config
            .tenant(&s.tenant)
            .map(|t| t.not_ready_reasons.clone())
            .unwrap_or_default();
        if reasons.iter().any(|r| r == reason) {
            Ok(())
        } else {
            Err((
                ErrorCode::BadMessage,
                format!(
                    "not-ready reason {reason:?} is not one of tenant {}'s: {}",
                    s.tenant,
                    reasons.join(", ")
                ),
            ))
        }
    }

    fn ringing_for(&self, s: &Session, contact: &ContactId) -> Result<Offer, Failure> {
        let st = self.lock();
        st.agents
            .get(&s.user)
            .and_then(|a| a.ringing.as_ref())
            .map(|r| r.offer.clone())
            .filter(|o| &o.contact == contact && o.tenant == s.tenant)
            .ok_or_else(|| {
                (
                    ErrorCode::NotFound,
                    format!(
                        "no offer of contact {contact} is ringing for you; it may have rung out"
                    ),
                )
            })
    }

    async fn accept(&self, s: &Session, contact: ContactId) -> Result<(), Failure> {
        let offer = self.ringing_for(s, &contact)?;
        self.site
            .agent(s.user.clone())
            .accept(contact)
            .await
            .map_err(acd_failure)?;
        let now = self.now();
        let mut st = self.lock();
        let name = match st.agents.get_mut(&s.user) {
            Some(a) => {
                a.ringing = None;
                a.count(now, Count::Answered);
                a.held.push(Held {
                    contact,
                    tenant: offer.tenant.clone(),
                    channel: offer.channel,
                    queue: offer.queue.clone(),
                    trace: offer.trace,
                    connected: true,
                    since: now,
                    answered_at: now,
                    ended_at: None,
                    customer_left: false,
                    transferred: false,
                });
                a.name.clone()
            }
            None => s.user.to_string(),
        };
        if let Some(c) = st.hub.of_tenant(&s.tenant, &contact) {
            c.state = ChatState::Connected {
                agent: s.user.clone(),
                name: name.clone(),
            };
            c.note(now, format!("{name} joined the chat"));
            c.tell_view();
        }
        self.push_agent(&mut st, &s.user);
        Ok(())
    }

    fn send(&self, s: &Session, contact: ContactId, text: String) -> Result<(), Failure> {
        schema::check_text("text", &text, schema::MAX_TEXT_CHARS, false)
            .map_err(|m| (ErrorCode::BadMessage, m))?;
        let now = self.now();
        let mut st = self.lock();
        let h = held_view(&mut st, s, &contact)?;
        if !h.connected {
            return Err((
                ErrorCode::Refused,
                "the conversation has ended; finish the wrap-up".into(),
            ));
        }
        if h.channel != Channel::Chat {
            return Err((
                ErrorCode::Refused,
                format!("contact {contact} is not a chat"),
            ));
        }
        let name = st.agents.get(&s.user).map(|a| a.name.clone());
        let Some(chat) = st.hub.of_tenant(&s.tenant, &contact) else {
            return Err(not_found(&contact));
        };
        let frame = chat.add(ChatLine {
            from: Author::Agent,
            name,
            text,
            at_ms: now.millis(),
        });
        self.push_to_holders(&mut st, &contact, &frame);
        Ok(())
    }

    /// Checks that the agent is in conversation with `contact`; `refusal` says why not.
    fn in_conversation(
        &self,
        s: &Session,
        contact: &ContactId,
        refusal: &str,
    ) -> Result<(), Failure> {
        let mut st = self.lock();
        if held_view(&mut st, s, contact)?.connected {
            Ok(())
        } else {
            Err((ErrorCode::Refused, refusal.to_owned()))
        }
    }

    /// Records that the agent's conversation with `contact` is over (wrap-up begins).
    fn conversation_over(
        st: &mut State,
        s: &Session,
        contact: &ContactId,
        now: Timestamp,
        transferred: bool,
    ) {
        if let Ok(h) = held_view(st, s, contact) {
            h.connected = false;
            h.transferred = transferred;
            h.since = now;
            h.ended_at = Some(now);
        }
    }

    async fn end(&self, s: &Session, contact: ContactId) -> Result<(), Failure> {
        self.in_conversation(s, &contact, "the conversation has already ended")?;
        self.site
            .agent(s.user.clone())
            .end(contact)
            .await
            .map_err(acd_failure)?;
        let now = self.now();
        let mut st = self.lock();
        Self::conversation_over(&mut st, s, &contact, now, false);
        if let Some(c) = st.hub.of_tenant(&s.tenant, &contact) {
            c.state = ChatState::Ended;
            c.note(
                now,
                "The agent ended the chat. Thank you for contacting us.",
            );
            c.tell_view();
        }
        self.push_agent(&mut st, &s.user);
        Ok(())
    }

    async fn transfer(
        &self,
        s: &Session,
        contact: ContactId,
        queue: QueueId,
    ) -> Result<(), Failure> {
        self.in_conversation(
            s,
            &contact,
            "only a contact in conversation can be transferred",
        )?;
        self.site
            .agent(s.user.clone())
            .transfer(contact, queue.clone())
            .await
            .map_err(acd_failure)?;
        let now = self.now();
        let mut st = self.lock();
        Self::conversation_over(&mut st, s, &contact, now, true);
        if let Some(a) = st.agents.get_mut(&s.user) {
            a.count(now, Count::Transferred);
        }
        if let Some(c) = st.hub.of_tenant(&s.tenant, &contact) {
            c.state = ChatState::Queued {
                queue: queue.clone(),
                since: now,
            };
            c.note(
                now,
                format!("You are being transferred ({queue}). Please wait for the next agent."),
            );
            c.tell_view();
        }
        self.push_agent(&mut st, &s.user);
        Ok(())
    }

    async fn wrap_up(
        &self,
        s: &Session,
        contact: ContactId,
        code: String,
        notes: String,
    ) -> Result<(), Failure> {
        let codes = self
            .config
            .tenant(&s.tenant)
            .map(|t| t.dispositions.clone())
            .unwrap_or_default();
        if !codes.contains(&code) {
            return Err((
                ErrorCode::BadMessage,
                format!(
                    "disposition {code:?} is not one of tenant {}'s: {}",
                    s.tenant,
                    codes.join(", ")
                ),
            ));
        }
        schema::check_text("notes", &notes, schema::MAX_NOTES_CHARS, true)
            .map_err(|m| (ErrorCode::BadMessage, m))?;
        let held = {
            let mut st = self.lock();
            let h = held_view(&mut st, s, &contact)?;
            if h.connected {
                return Err((
                    ErrorCode::Refused,
                    "end the conversation (or transfer it) before wrapping up".into(),
                ));
            }
            h.clone()
        };
        match self
            .site
            .agent(s.user.clone())
            .finish_wrap_up(contact)
            .await
        {
            // Refused by the session: its wrap-up time already ran out.
            Ok(()) | Err(AcdError::Agent { .. } | AcdError::NotYours { .. }) => {}
            Err(e) => return Err(acd_failure(e)),
        }
        let now = self.now();
        self.sink.publish(&[Event {
            id: EventId::random(),
            at: now,
            tenant: held.tenant.clone(),
            site: self.site.id().clone(),
            trace: held.trace,
            body: EventBody::Contact(ContactEvent {
                contact,
                channel: held.channel,
                queue: Some(held.queue.clone()),
                agent: Some(s.user.clone()),
                kind: ContactEventKind::Dispositioned { code, notes },
            }),
        }]);
        let mut st = self.lock();
        if let Some(a) = st.agents.get_mut(&s.user) {
            a.held.retain(|h| h.contact != contact);
            if !held.transferred {
                let handle_ms = now.since(held.answered_at).as_millis() as u64;
                a.count(now, Count::Handled { handle_ms });
            }
        }
        self.push_agent(&mut st, &s.user);
        self.maybe_forget(&mut st, &contact);
        Ok(())
    }

    async fn log_out(&self, s: &Session) -> Result<(), Failure> {
        if s.role == Role::Agent {
            let holding = self
                .lock()
                .agents
                .get(&s.user)
                .is_some_and(|a| !a.held.is_empty());
            if holding {
                return Err((
                    ErrorCode::Refused,
                    "finish your contacts (end and wrap up) before logging out".into(),
                ));
            }
            match self.site.agent(s.user.clone()).log_out().await {
                Ok(()) | Err(AcdError::NotLoggedIn(_)) => {}
                Err(e) => return Err(acd_failure(e)),
            }
            let mut st = self.lock();
            st.agents.remove(&s.user);
        }
        self.lock().sessions.close_user(&s.tenant, &s.user);
        Ok(())
    }
}

fn token_failure(e: TokenError) -> Failure {
    match e {
        TokenError::Expired => (
            ErrorCode::SessionExpired,
            "your session expired; log in again".into(),
        ),
        TokenError::Unknown => (
            ErrorCode::UnknownSession,
            "this session is not known (logged out?); log in again".into(),
        ),
    }
}

// === impl Inner: supervisors ===

impl Inner {
    /// The supervisor's view of its tenant.
    pub(crate) async fn supervisor_frame(&self, s: &Session) -> Result<ServerFrame, Failure> {
        let snap = self.site.snapshot().await.map_err(acd_failure)?;
        let queues = snap
            .queues
            .iter()
            .filter(|q| q.tenant == s.tenant)
            .map(|q| QueueView {
                queue: q.queue.clone(),
                name: q.name.clone(),
                channel: q.channel,
                waiting: q.waiting,
                offered: q.offered,
                oldest_wait_secs: q.oldest_wait_secs,
                agents_logged_in: q.agents_logged_in,
                agents_available: q.agents_available,
                answered: q.counters.answered,
                abandoned: q.counters.abandoned,
            })
            .collect();
        let st = self.lock();
        let agents = snap
            .agents
            .iter()
            .filter(|a| a.serves.contains(&s.tenant))
            .map(|a| AgentRow {
                agent: a.agent.clone(),
                name: if a.name.is_empty() {
                    a.agent.to_string()
                } else {
                    a.name.clone()
                },
                state: a.status.name(),
                reason: match &a.status {
                    AgentStatus::NotReady(r) => Some(r.clone()),
                    _ => None,
                },
                since_ms: st.agents.get(&a.agent).map(|d| d.since.millis()),
                contacts: a
                    .contacts
                    .iter()
                    .filter(|c| c.tenant == s.tenant)
                    .map(|c| c.contact)
                    .collect(),
            })
            .collect();
        let waiting = st
            .hub
            .iter()
            .filter(|c| c.tenant == s.tenant)
            .filter_map(|c| match &c.state {
                ChatState::Queued { queue, since } => Some(WaitingView {
                    contact: c.contact,
                    queue: queue.clone(),
                    since_ms: since.millis(),
                    attributes: c.attributes.clone(),
                }),
                _ => None,
            })
            .collect();
        Ok(ServerFrame::Supervisor {
            queues,
            agents,
            waiting,
        })
    }

    async fn force(
        &self,
        s: &Session,
        agent: AgentId,
        state: ForcedState,
        reason: Option<String>,
    ) -> Result<(), Failure> {
        let snap = self.site.snapshot().await.map_err(acd_failure)?;
        if !snap
            .agents
            .iter()
            .any(|a| a.agent == agent && a.serves.contains(&s.tenant))
        {
            return Err((
                ErrorCode::NotFound,
                format!("no agent {agent} serves tenant {}", s.tenant),
            ));
        }
        let handle = self.site.agent(agent.clone());
        match state {
            ForcedState::Ready => handle.go_ready().await,
            ForcedState::NotReady => {
                let reason = match reason {
                    Some(r) => {
                        self.check_reason(s, &r)?;
                        NotReadyReason::Code(r)
                    }
                    None => NotReadyReason::Supervisor,
                };
                handle.go_not_ready(reason).await
            }
            ForcedState::LogOut => handle.log_out().await,
        }
        .map_err(|e| match e {
            AcdError::NotLoggedIn(_) => (
                ErrorCode::Refused,
                format!("agent {agent} is not logged in at this site"),
            ),
            other => acd_failure(other),
        })
    }

    async fn move_contact(
        &self,
        s: &Session,
        contact: ContactId,
        queue: QueueId,
    ) -> Result<(), Failure> {
        let waiting = {
            let mut st = self.lock();
            st.hub
                .of_tenant(&s.tenant, &contact)
                .is_some_and(|c| matches!(c.state, ChatState::Queued { .. }))
        };
        if !waiting {
            return Err((
                ErrorCode::NotFound,
                format!("no waiting contact {contact} in tenant {}", s.tenant),
            ));
        }
        self.site
            .move_contact(contact, queue.clone())
            .await
            .map_err(acd_failure)?;
        let now = self.now();
        let mut st = self.lock();
        if let Some(c) = st.hub.of_tenant(&s.tenant, &contact) {
            // A move keeps the contact's age, as the ACD does.
            let since = match c.state {
                ChatState::Queued { since, .. } => since,
                _ => now,
            };
            c.state = ChatState::Queued {
                queue: queue.clone(),
                since,
            };
            c.note(
                now,
                "You have been moved to another queue; please keep waiting.",
            );
            c.tell_view();
        }
        Ok(())
    }
}

// === impl Inner: customers ===

impl Inner {
    /// Starts a chat: registers it, runs its intake, and queues it when the intake says.
    pub(crate) fn start_chat(
        &self,
        tenant: TenantId,
        entry: Option<String>,
        conn: &Conn,
    ) -> Result<ContactId, Failure> {
        let Some(t) = self.config.tenant(&tenant).filter(|t| !t.chat.is_empty()) else {
            return Err((
                ErrorCode::NotFound,
                format!("tenant {tenant} has no web chat here"),
            ));
        };
        let entry = match entry {
            Some(e) if t.chat.iter().any(|c| c.entry == e) => e,
            Some(e) => {
                return Err((
                    ErrorCode::NotFound,
                    format!("tenant {tenant} has no chat entry {e:?}"),
                ));
            }
            None => t.chat[0].entry.clone(),
        };
        let contact = ContactId::random();
        let (mut chat_io, to_intake, mut from_intake) =
            IntakeChat::new(tenant.clone(), entry, contact);
        {
            let mut st = self.lock();
            if st.hub.len() >= self.config.max_chats {
                return Err((
                    ErrorCode::Unavailable,
                    "all chat lines are busy; please try again in a few minutes".into(),
                ));
            }
            let mut chat = Chat::new(
                tenant,
                contact,
                auth::new_token(),
                self.config.history_limit,
            );
            chat.customer.push(conn.clone());
            chat.to_intake = Some(to_intake);
            chat_io.trace = chat.trace;
            chat.tell_view();
            st.hub.insert(chat);
        }
        let me = self
            .me
            .upgrade()
            .ok_or((ErrorCode::Unavailable, "the desk is stopping".to_string()))?;
        tokio::spawn(async move {
            let intake = me.intake.clone();
            let run = intake.run(chat_io);
            tokio::pin!(run);
            let outcome = loop {
                tokio::select! {
                    Some(text) = from_intake.recv() => me.bot_says(contact, text),
                    outcome = &mut run => break outcome,
                }
            };
            while let Ok(text) = from_intake.try_recv() {
                me.bot_says(contact, text);
            }
            me.intake_done(contact, outcome).await;
        });
        Ok(contact)
    }

    fn bot_says(&self, contact: ContactId, text: String) {
        let now = self.now();
        if let Some(c) = self.lock().hub.get_mut(&contact) {
            c.add(ChatLine {
                from: Author::Bot,
                name: None,
                text,
                at_ms: now.millis(),
            });
        }
    }

    async fn intake_done(&self, contact: ContactId, outcome: IntakeOutcome) {
        let (tenant, trace, gone) = {
            let mut st = self.lock();
            let Some(c) = st.hub.get_mut(&contact) else {
                return;
            };
            c.to_intake = None;
            (c.tenant.clone(), c.trace, c.customer_gone)
        };
        let IntakeOutcome::Queue {
            queue,
            priority,
            attributes,
        } = outcome
        else {
            self.end_chat(contact, "This chat has ended.");
            return;
        };
        if gone {
            self.end_chat(contact, "");
            return;
        }
        {
            let now = self.now();
            let mut st = self.lock();
            if let Some(c) = st.hub.get_mut(&contact) {
                c.attributes = attributes;
                c.state = ChatState::Queued {
                    queue: queue.clone(),
                    since: now,
                };
                c.tell_view();
            }
        }
        let mut arrival = Arrival::new(contact, tenant, queue.clone(), Channel::Chat);
        arrival.priority = priority;
        arrival.trace = Some(trace);
        if let Err(e) = self.site.arrive(arrival).await {
            tracing::warn!(contact = %contact, queue = %queue, error = %e, "chat not queued");
            self.end_chat(
                contact,
                "Sorry, we cannot take your chat right now. Please try again later.",
            );
        }
    }

    /// See [`Desk::follow`].
    pub(crate) fn follow(&self, events: &[hotline_core::event::Event]) {
        use hotline_core::event::{ContactEventKind, EventBody};
        for e in events {
            let EventBody::Contact(c) = &e.body else {
                continue;
            };
            if c.channel != Channel::Chat {
                continue;
            }
            let say = match &c.kind {
                ContactEventKind::Failed { .. } => {
                    "Sorry, no agent can take your chat right now. Please try again later."
                }
                ContactEventKind::Voicemail { .. } => {
                    "Sorry, no agent can take your chat right now. We have your message and will get back to you."
                }
                _ => continue,
            };
            let queued = matches!(
                self.lock().hub.get_mut(&c.contact).map(|chat| &chat.state),
                Some(ChatState::Queued { .. })
            );
            if queued {
                self.end_chat(c.contact, say);
            }
        }
    }

    fn end_chat(&self, contact: ContactId, say: &str) {
        let now = self.now();
        let mut st = self.lock();
        if let Some(c) = st.hub.get_mut(&contact) {
            c.state = ChatState::Ended;
            if !say.is_empty() {
                c.note(now, say);
            }
            c.tell_view();
        }
        self.maybe_forget(&mut st, &contact);
    }

    /// Resumes a chat by token; registers the connection.
    pub(crate) fn resume_chat(&self, token: &str, conn: &Conn) -> Result<ContactId, Failure> {
        let mut st = self.lock();
        let Some(c) = st.hub.by_token(token).filter(|c| !c.customer_gone) else {
            return Err((
                ErrorCode::UnknownSession,
                "this chat is over or unknown; start a new one".into(),
            ));
        };
        c.customer.retain(|k| k.id != conn.id);
        c.customer.push(conn.clone());
        let frame = ServerFrame::Chat(c.view());
        let _ = conn.tx.send(frame);
        Ok(c.contact)
    }

    /// A customer's message.
    pub(crate) fn customer_says(&self, contact: ContactId, text: String) -> Result<(), Failure> {
        schema::check_text("text", &text, schema::MAX_TEXT_CHARS, false)
            .map_err(|m| (ErrorCode::BadMessage, m))?;
        let now = self.now();
        let mut st = self.lock();
        let Some(c) = st.hub.get_mut(&contact) else {
            return Err((
                ErrorCode::UnknownSession,
                "this chat is over; start a new one".into(),
            ));
        };
        if c.state == ChatState::Ended {
            return Err((
                ErrorCode::Refused,
                "this chat has ended; start a new one".into(),
            ));
        }
        let frame = c.add(ChatLine {
            from: Author::Customer,
            name: None,
            text: text.clone(),
            at_ms: now.millis(),
        });
        if let Some(tx) = &c.to_intake {
            let _ = tx.send(text);
        }
        self.push_to_holders(&mut st, &contact, &frame);
        Ok(())
    }

    /// The customer's page connection closed: unless the customer comes back within
    /// the grace period, the customer has left.
    pub(crate) fn customer_dropped(&self, contact: ContactId, conn: u64) {
        let generation = {
            let mut st = self.lock();
            let Some(c) = st.hub.get_mut(&contact) else {
                return;
            };
            c.customer.retain(|k| k.id != conn);
            if !c.customer.is_empty() {
                return;
            }
            c.disconnects += 1;
            c.disconnects
        };
        let Some(me) = self.me.upgrade() else { return };
        let grace = Duration::from_secs(self.config.customer_grace_secs);
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let back = {
                let st = me.lock();
                st.hub
                    .get(&contact)
                    .is_none_or(|c| !c.customer.is_empty() || c.disconnects != generation)
            };
            if !back {
                me.customer_left(contact).await;
            }
        });
    }

    /// The customer left: an abandon while queued (or ringing), the end of the
    /// conversation while connected.
    pub(crate) async fn customer_left(&self, contact: ContactId) {
        let state = {
            let mut st = self.lock();
            let Some(c) = st.hub.get_mut(&contact) else {
                return;
            };
            if c.customer_gone {
                return;
            }
            c.customer_gone = true;
            c.to_intake = None;
            c.state.clone()
        };
        match state {
            ChatState::Queued { .. } | ChatState::Connected { .. } => {
                if let Err(e) = self.site.hang_up(contact).await {
                    tracing::debug!(contact = %contact, error = %e, "hang-up refused (it moved on meanwhile)");
                }
                let now = self.now();
                let mut st = self.lock();
                if let Some(c) = st.hub.get_mut(&contact) {
                    c.state = ChatState::Ended;
                    let frame = c.note(now, "The customer left the chat.");
                    self.push_to_holders(&mut st, &contact, &frame);
                }
                self.maybe_forget(&mut st, &contact);
            }
            ChatState::Intake => {}
            ChatState::Ended => {
                let mut st = self.lock();
                self.maybe_forget(&mut st, &contact);
            }
        }
    }
}
