//! KPI engine: the contact-center figures Hotline reports and plans staffing with.
//!
//! # Layout
//!
//! - [`erlang`]: exact queueing figures for a single queue in steady state —
//!   [`erlang::ErlangC`] (M/M/c, contacts never abandon), [`erlang::ErlangA`]
//!   (M/M/c+M, contacts abandon after an exponential patience) and
//!   [`erlang::staffing`], the fewest agents that meet a service-level target.
//!   Every model returns one [`erlang::QueueFigures`] whose fields carry the same
//!   definitions as the measured KPIs (service level over all arrivals, ASA over
//!   answered contacts including zero waits, occupancy of staffed agents), so the
//!   simulator can compare what it measured with what theory predicts and the
//!   `hotline kpi staffing` command can print it as JSON.
//!
//! Data flows one way: a forecast (arrival rate, handle time, patience) and a
//! staffing level go in, a [`erlang::QueueFigures`] comes out. Nothing here reads
//! a clock or does I/O.
#![forbid(unsafe_code)]

pub mod erlang;
