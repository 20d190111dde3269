//! Helpers for Hotline's tests.
//!
//! # Layout
//!
//! - [`browser`]: runs a real-browser script (`node …mjs`, driving the system Chromium
//!   through playwright-core, as `ops/dev/install-browser` sets up) with a deadline,
//!   and decides whether such a test runs, is skipped (`HOTLINE_SKIP_BROWSER=1`) or
//!   fails saying what to install. `web/harness.mjs` is the scripts' side: named
//!   checks, polling with a deadline, launching Chromium.
//!
//! The status page's and the wallboard's browser tests predate this crate and keep
//! their own copies; new browser tests use it.
#![forbid(unsafe_code)]

pub mod browser;
