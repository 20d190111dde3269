//! The desk's pages: static HTML, JavaScript and CSS embedded in the binary (no build
//! step, nothing fetched from elsewhere). Their text goes through the i18n table in
//! `common.js` (English and 简体中文).

/// The agent desktop (`/desk`).
pub const AGENT_HTML: &str = include_str!("../assets/agent.html");
/// The supervisor view (`/desk/supervisor`).
pub const SUPERVISOR_HTML: &str = include_str!("../assets/supervisor.html");
/// The customer's chat widget (`/desk/chat?tenant=ID`).
pub const CHAT_HTML: &str = include_str!("../assets/chat.html");

const ASSETS: &[(&str, &str, &str)] = &[
    (
        "common.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/common.js"),
    ),
    (
        "agent.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/agent.js"),
    ),
    (
        "supervisor.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/supervisor.js"),
    ),
    (
        "chat.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/chat.js"),
    ),
    (
        "desk.css",
        "text/css; charset=utf-8",
        include_str!("../assets/desk.css"),
    ),
];

/// An asset's content type and body, by file name.
pub fn asset(name: &str) -> Option<(&'static str, &'static str)> {
    ASSETS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, mime, body)| (*mime, *body))
}
