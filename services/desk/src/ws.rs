//! HTTP and WebSocket: the desk's routes, and one loop per socket that parses frames
//! ([`crate::schema::parse`]), hands them to the desk, and writes what the desk pushes.

use std::time::Duration;

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tokio::sync::mpsc;

use crate::auth::Session;
use crate::config::Role;
use crate::desk::Desk;
use crate::schema::{self, ChatRequest, ErrorCode, ServerFrame, StaffRequest};

/// The routes under `/desk`.
pub fn router(desk: Desk) -> Router {
    Router::new()
        .route("/desk", get(|| async { Html(crate::pages::AGENT_HTML) }))
        .route("/desk/", get(|| async { Html(crate::pages::AGENT_HTML) }))
        .route(
            "/desk/supervisor",
            get(|| async { Html(crate::pages::SUPERVISOR_HTML) }),
        )
        .route(
            "/desk/chat",
            get(|| async { Html(crate::pages::CHAT_HTML) }),
        )
        .route("/desk/assets/{file}", get(asset))
        .route("/desk/ws", get(staff_socket))
        .route("/desk/ws/chat", get(chat_socket))
        .with_state(desk)
}

async fn asset(Path(file): Path<String>) -> Response {
    match crate::pages::asset(&file) {
        Some((mime, body)) => (
            [
                (header::CONTENT_TYPE, mime),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, format!("no desk asset {file}")).into_response(),
    }
}

async fn staff_socket(ws: WebSocketUpgrade, State(desk): State<Desk>) -> Response {
    ws.max_message_size(schema::MAX_FRAME_BYTES)
        .on_upgrade(move |socket| staff_loop(desk, socket))
}

async fn chat_socket(ws: WebSocketUpgrade, State(desk): State<Desk>) -> Response {
    ws.max_message_size(schema::MAX_FRAME_BYTES)
        .on_upgrade(move |socket| chat_loop(desk, socket))
}

/// What a socket read gave.
enum Read {
    Text(String),
    Closed,
    Skip,
    Binary,
}

fn read(msg: Option<Result<Message, axum::Error>>) -> Read {
    match msg {
        Some(Ok(Message::Text(t))) => Read::Text(t.to_string()),
        Some(Ok(Message::Binary(_))) => Read::Binary,
        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Read::Skip,
        Some(Ok(Message::Close(_)) | Err(_)) | None => Read::Closed,
    }
}

/// Writes a frame to the socket; false once the socket is gone.
async fn forward(socket: &mut WebSocket, frame: ServerFrame) -> bool {
    socket
        .send(Message::Text(frame.to_text().into()))
        .await
        .is_ok()
}

fn binary_refused() -> ServerFrame {
    ServerFrame::error(
        None,
        ErrorCode::BadMessage,
        "binary frames are not part of the schema; send JSON text",
    )
}

async fn staff_loop(desk: Desk, mut socket: WebSocket) {
    let inner = desk.inner.clone();
    let (tx, mut rx) = mpsc::unbounded_channel::<ServerFrame>();
    let conn = inner.conn(tx.clone());
    // The session's token, once logged in or resumed.
    let mut session: Option<(String, Session)> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            msg = socket.recv() => match read(msg) {
                Read::Closed => break,
                Read::Skip => {}
                Read::Binary => { let _ = tx.send(binary_refused()); }
                Read::Text(text) => {
                    match schema::parse::<StaffRequest>(&text) {
                        Err(rejected) => { let _ = tx.send(rejected.into()); }
                        Ok((reference, req)) => handle_staff(&desk, &conn, &tx, &mut session, reference, req).await,
                    }
                }
            },
            Some(frame) = rx.recv() => if !forward(&mut socket, frame).await { break },
            _ = tick.tick(), if session.as_ref().is_some_and(|(_, s)| s.role == Role::Supervisor) => {
                let Some((token, _)) = &session else { continue };
                match inner.check(token) {
                    Ok(s) => match inner.supervisor_frame(&s).await {
                        Ok(frame) => { let _ = tx.send(frame); }
                        Err((code, message)) => { let _ = tx.send(ServerFrame::error(None, code, message)); }
                    },
                    Err((code, message)) => {
                        session = None;
                        let _ = tx.send(ServerFrame::error(None, code, message));
                    }
                }
            }
        }
    }
    inner.unregister(conn.id);
}

async fn handle_staff(
    desk: &Desk,
    conn: &crate::hub::Conn,
    tx: &mpsc::UnboundedSender<ServerFrame>,
    session: &mut Option<(String, Session)>,
    reference: schema::Ref,
    req: StaffRequest,
) {
    let inner = &desk.inner;
    let reply = |r: Result<(), crate::desk::Failure>| {
        let frame = match r {
            Ok(()) => ServerFrame::Ack {
                reference: reference.clone(),
            },
            Err((code, message)) => ServerFrame::error(reference.clone(), code, message),
        };
        let _ = tx.send(frame);
    };
    match req {
        StaffRequest::Ping {} => {
            let _ = tx.send(ServerFrame::Pong { reference });
        }
        StaffRequest::Login {
            tenant,
            user,
            password,
        } => {
            let r = inner.login(tenant, user, password, conn).await;
            reply(welcome(desk, tx, session, r).await);
        }
        StaffRequest::Resume { token } => {
            let r = inner.resume(&token, conn).map(|s| (token, s));
            reply(welcome(desk, tx, session, r).await);
        }
        req => {
            let Some((token, _)) = session.as_ref() else {
                reply(Err((
                    ErrorCode::NotLoggedIn,
                    "log in (or resume your session) first".into(),
                )));
                return;
            };
            let s = match inner.check(token) {
                Ok(s) => s,
                Err(e) => {
                    *session = None;
                    reply(Err(e));
                    return;
                }
            };
            let logging_out = matches!(req, StaffRequest::LogOut {});
            let r = inner.staff(&s, req).await;
            if logging_out && r.is_ok() {
                *session = None;
            }
            reply(r);
        }
    }
}

/// After a login or a resume: the `welcome` frame and, for an agent, its whole state.
async fn welcome(
    desk: &Desk,
    tx: &mpsc::UnboundedSender<ServerFrame>,
    session: &mut Option<(String, Session)>,
    r: Result<(String, Session), crate::desk::Failure>,
) -> Result<(), crate::desk::Failure> {
    let (token, s) = r?;
    let inner = &desk.inner;
    let _ = tx.send(inner.welcome(token.clone(), &s).await);
    if let Some(frame) = inner.agent_frame(&s.user).filter(|_| s.role == Role::Agent) {
        let _ = tx.send(frame);
    }
    *session = Some((token, s));
    Ok(())
}

async fn chat_loop(desk: Desk, mut socket: WebSocket) {
    let inner = desk.inner.clone();
    let (tx, mut rx) = mpsc::unbounded_channel::<ServerFrame>();
    let conn = inner.conn(tx.clone());
    let mut contact = None;
    loop {
        tokio::select! {
            msg = socket.recv() => match read(msg) {
                Read::Closed => break,
                Read::Skip => {}
                Read::Binary => { let _ = tx.send(binary_refused()); }
                Read::Text(text) => {
                    let (reference, req) = match schema::parse::<ChatRequest>(&text) {
                        Ok(ok) => ok,
                        Err(rejected) => { let _ = tx.send(rejected.into()); continue; }
                    };
                    let r = match (req, contact) {
                        (ChatRequest::Ping {}, _) => { let _ = tx.send(ServerFrame::Pong { reference }); continue; }
                        (ChatRequest::Start { tenant, entry }, None) => inner.start_chat(tenant, entry, &conn).map(|c| { contact = Some(c); }),
                        (ChatRequest::Resume { token }, None) => inner.resume_chat(&token, &conn).map(|c| { contact = Some(c); }),
                        (ChatRequest::Start { .. } | ChatRequest::Resume { .. }, Some(_)) => {
                            Err((ErrorCode::Refused, "this connection already has a chat; open another page for a new one".into()))
                        }
                        (ChatRequest::Message { text }, Some(c)) => inner.customer_says(c, text),
                        (ChatRequest::Leave {}, Some(c)) => {
                            inner.customer_left(c).await;
                            Ok(())
                        }
                        (ChatRequest::Message { .. } | ChatRequest::Leave {}, None) => {
                            Err((ErrorCode::NotLoggedIn, "start (or resume) a chat first".into()))
                        }
                    };
                    let frame = match r {
                        Ok(()) => ServerFrame::Ack { reference },
                        Err((code, message)) => ServerFrame::error(reference, code, message),
                    };
                    let _ = tx.send(frame);
                }
            },
            Some(frame) = rx.recv() => if !forward(&mut socket, frame).await { break },
        }
    }
    if let Some(c) = contact {
        inner.customer_dropped(c, conn.id);
    }
}
