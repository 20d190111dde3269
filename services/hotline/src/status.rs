//! The status page: queues and agents live, as HTML (polling) and JSON.

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hotline_acd::engine::SiteSnapshot;
use hotline_acd::site::Site;
use hotline_core::ids::TenantId;
use serde::{Deserialize, Serialize};

const PAGE: &str = include_str!("../assets/status.html");

/// What `/api/status` answers.
#[derive(Debug, Serialize)]
pub struct Status {
    /// The site snapshot (queues, agents, counters).
    #[serde(flatten)]
    pub snapshot: SiteSnapshot,
    /// Per queue, in the snapshot's order: service level since start.
    pub service_levels: Vec<ServiceLevel>,
    /// Every site this page can show (`?site=ID`), the shown one included.
    pub sites: Vec<String>,
}

/// A queue's service level since start, with its definition.
#[derive(Debug, Serialize)]
pub struct ServiceLevel {
    /// Answered within the threshold ÷ (answered + abandoned), or `null` before any.
    pub value: Option<f64>,
    /// Average speed of answer, seconds.
    pub asa_secs: Option<f64>,
    /// The definition used.
    pub definition: &'static str,
}

#[derive(Debug, Deserialize)]
struct Filter {
    tenant: Option<String>,
    site: Option<String>,
}

/// The sites a page shows; the first is the default.
type Sites = std::sync::Arc<Vec<Site>>;

/// Builds the router: `/` (page), `/api/status` (JSON), `/healthz`, over one or more
/// sites (`?site=ID` picks one; the first by default).
pub fn app(sites: Vec<Site>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/status", get(status))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(std::sync::Arc::new(sites))
}

async fn page() -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-store")], Html(PAGE))
}

async fn status(State(sites): State<Sites>, Query(filter): Query<Filter>) -> Response {
    let names: Vec<String> = sites.iter().map(|s| s.id().to_string()).collect();
    let site = match filter.site.as_deref() {
        None => sites.first(),
        Some(id) => sites.iter().find(|s| s.id().as_str() == id),
    };
    let Some(site) = site else {
        return (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({
                "error": format!("unknown site {:?}; this page shows {}", filter.site.unwrap_or_default(), names.join(", "))
            })),
        )
            .into_response();
    };
    let tenant = match filter.tenant.as_deref().map(TenantId::new).transpose() {
        Ok(t) => t,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({ "error": e.to_string() })),
            )
                .into_response();
        }
    };
    let mut snapshot = match site.snapshot().await {
        Ok(s) => s,
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({ "error": e.to_string(), "retryable": e.is_retryable() })),
            )
                .into_response();
        }
    };
    if let Some(t) = &tenant {
        let known = snapshot.queues.iter().any(|q| &q.tenant == t)
            || snapshot.agents.iter().any(|a| a.serves.contains(t));
        if !known {
            // As for any object of another tenant: not found, never "forbidden".
            return (
                StatusCode::NOT_FOUND,
                Json(serde_json::json!({ "error": format!("unknown tenant {t}") })),
            )
                .into_response();
        }
        snapshot.queues.retain(|q| &q.tenant == t);
        // Agents who serve this tenant (shared agents appear for each of their tenants).
        snapshot.agents.retain(|a| a.serves.contains(t));
        for a in &mut snapshot.agents {
            // A shared agent's other tenants' contacts are not this tenant's business.
            a.contacts.retain(|c| &c.tenant == t);
        }
        // The site-wide count would reveal other tenants' traffic.
        snapshot.contacts = snapshot
            .queues
            .iter()
            .map(|q| (q.waiting + q.offered) as usize)
            .sum::<usize>()
            + snapshot
                .agents
                .iter()
                .flat_map(|a| &a.contacts)
                .filter(|c| c.state != hotline_core::contact::ContactState::Offered)
                .count();
    }
    let service_levels = snapshot
        .queues
        .iter()
        .map(|q| {
            let c = &q.counters;
            let denominator = c.answered + c.abandoned;
            ServiceLevel {
                value: (denominator > 0).then(|| c.answered_in_sl as f64 / denominator as f64),
                asa_secs: (c.answered > 0).then(|| c.answered_wait_ms as f64 / 1000.0 / c.answered as f64),
                definition: "answered within the threshold / (answered + abandoned), since start; v1",
            }
        })
        .collect();
    Json(Status {
        snapshot,
        service_levels,
        sites: names,
    })
    .into_response()
}
