//! The routing group's JSON HTTP admin API, served by every site.
//!
//! Every request needs `Authorization: Bearer <admin token>`. Writes are linearizable and
//! validated: they go through Raft (forwarded to the leader by whichever replica got
//! them), and the state machine applies all of a command or none of it.
//!
//! | method and path | what |
//! | --- | --- |
//! | `GET /api/routing/status` | this replica's view: role, leader, term, members, fsync figures |
//! | `GET /api/routing/state` | the whole routing state, read linearizably |
//! | `POST /api/routing/commands` | a [`Command`] as JSON; answers `{response, index}` |
//! | `POST /api/routing/members` | `{node_id, site, rpc_addr, witness}`: add a replica (leader only) |
//! | `DELETE /api/routing/members/{id}` | remove a voter (leader only), refused if quorum would be lost |
//!
//! Errors are `{"error": "...", "retry": bool}`: 400 for a body that is not a command,
//! 401 without the token, 422 for a refusal (nothing applied), 409 for a membership change
//! refused or asked of a follower, 503 while no leader is known (retry).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::node::{NodeError, RoutingNode};
use crate::state::Command;
use crate::typ::{NodeId, SiteNode};

#[derive(Clone)]
struct Api {
    node: RoutingNode,
    token: String,
}

/// The admin API of `node`, guarded by `token`.
pub fn router(node: RoutingNode, token: String) -> Router {
    Router::new()
        .route("/api/routing/status", get(status))
        .route("/api/routing/state", get(state))
        .route("/api/routing/commands", post(command))
        .route("/api/routing/members", post(add_member))
        .route("/api/routing/members/{id}", delete(remove_member))
        .with_state(Api { node, token })
}

/// An answer that is an error: its status and a body saying what to do.
struct ApiError(StatusCode, String, bool);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1, "retry": self.2 }))).into_response()
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        let retry = e.is_retryable();
        let status = match &e {
            NodeError::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            NodeError::Membership(_) => StatusCode::CONFLICT,
            _ if retry => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, e.to_string(), retry)
    }
}

impl Api {
    fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let given = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match given {
            Some(token) if constant_time_eq(token.as_bytes(), self.token.as_bytes()) => Ok(()),
            _ => Err(ApiError(
                StatusCode::UNAUTHORIZED,
                "send the site's admin token as `Authorization: Bearer <token>` (admin_token in the site's config)".into(),
                false,
            )),
        }
    }
}

/// Compares two tokens in time that does not depend on where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn status(State(api): State<Api>, headers: HeaderMap) -> Result<Response, ApiError> {
    api.check(&headers)?;
    Ok(Json(api.node.status()).into_response())
}

async fn state(State(api): State<Api>, headers: HeaderMap) -> Result<Response, ApiError> {
    api.check(&headers)?;
    let state = api.node.read_linearizable(Clone::clone).await?;
    Ok(Json(state).into_response())
}

async fn command(
    State(api): State<Api>,
    headers: HeaderMap,
    body: String,
) -> Result<Response, ApiError> {
    api.check(&headers)?;
    let command: Command = serde_json::from_str(&body).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!(
                "the body is not a routing command: {e} (line {}, column {})",
                e.line(),
                e.column()
            ),
            false,
        )
    })?;
    let written = api.node.write(command).await?;
    Ok(Json(written).into_response())
}

#[derive(Debug, Deserialize)]
struct NewMember {
    node_id: NodeId,
    #[serde(default)]
    site: String,
    rpc_addr: String,
    #[serde(default)]
    witness: bool,
}

async fn add_member(
    State(api): State<Api>,
    headers: HeaderMap,
    body: String,
) -> Result<Response, ApiError> {
    api.check(&headers)?;
    let member: NewMember = serde_json::from_str(&body).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("the body is not a member {{node_id, site, rpc_addr, witness}}: {e}"),
            false,
        )
    })?;
    let node = SiteNode {
        site: member.site,
        rpc_addr: member.rpc_addr,
        witness: member.witness,
    };
    let status = api.node.add_member(member.node_id, node).await?;
    Ok(Json(status).into_response())
}

async fn remove_member(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    api.check(&headers)?;
    let id: NodeId = id.parse().map_err(|_| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("member id {id:?} is not a replica number"),
            false,
        )
    })?;
    let status = api.node.remove_member(id).await?;
    Ok(Json(status).into_response())
}
