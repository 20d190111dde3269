//! Figures from counters: the one place each definition in `DEFINITIONS.md` is coded.
//!
//! Rows keep only counters (sums), so any row — an engine row, a stored row, an hour
//! made of four quarters — gets its figures from this one function. A figure with
//! nothing to divide by is `None`, never 0 or 100%.

use super::{CostModel, EngineConfig};
use crate::model::{Counters, Dimension, Figure};

/// Every definition the engine computes with, and its version, in the order figures
/// are listed; `DEFINITIONS.md` writes each one out. A change of rule is a new version.
pub const DEFINITIONS: &[(&str, u32)] = &[
    ("count.offered", 1),
    ("count.answered", 1),
    ("count.abandoned", 1),
    ("count.short_abandoned", 1),
    ("count.handled", 1),
    ("sl.abandons_in_denominator", 1),
    ("sl.answered_only", 1),
    ("sl.short_abandons_excluded", 1),
    ("asa", 1),
    ("aht", 1),
    ("abandon_rate", 1),
    ("abandon_rate.short_abandons_excluded", 1),
    ("abandon_wait", 1),
    ("occupancy", 1),
    ("transfer_rate", 1),
    ("overflow_rate", 1),
    ("fcr.no_repeat_within_window", 1),
    ("cost.per_handled_contact", 1),
];

/// What figures need besides the counters: the tenant's cost model and the row's
/// dimension (queue rows carry no agent time, so figures built on it are undefined
/// there).
#[derive(Debug, Clone, Copy, Default)]
pub struct FigureContext<'a> {
    /// The tenant's cost model, if it has one.
    pub cost: Option<&'a CostModel>,
    /// The row's dimension, if known.
    pub dimension: Option<&'a Dimension>,
}

impl<'a> FigureContext<'a> {
    /// The context for rows of `tenant` under `config`.
    pub fn for_tenant(config: &'a EngineConfig, tenant: &str) -> Self {
        FigureContext {
            cost: config.costs.get(tenant).filter(|c| !c.is_zero()),
            dimension: None,
        }
    }

    /// The same for a row of `dimension`.
    pub fn with_dimension<'b>(&self, dimension: &'b Dimension) -> FigureContext<'b>
    where
        'a: 'b,
    {
        FigureContext {
            cost: self.cost,
            dimension: Some(dimension),
        }
    }
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

fn fig(name: &str, definition: &str, value: Option<f64>) -> Figure {
    let version = DEFINITIONS
        .iter()
        .find(|(d, _)| *d == definition)
        .map_or(1, |(_, v)| *v);
    Figure {
        name: name.to_owned(),
        value,
        definition: definition.to_owned(),
        version,
    }
}

/// Every figure of a row, in a fixed order. Where several definitions share a name
/// (`service_level`, `abandon_rate`), the first is the default one a screen shows.
pub fn figures(c: &Counters, ctx: &FigureContext<'_>) -> Vec<Figure> {
    let count = |n: u64| Some(n as f64);
    let queue_row = matches!(ctx.dimension, Some(Dimension::Queue(_)));
    let sl_all = c.answered + c.abandoned;
    let sl_no_short = sl_all.saturating_sub(c.short_abandoned);
    let available = c.staffed_ms.saturating_sub(c.not_ready_ms);
    vec![
        fig("offered", "count.offered", count(c.offered)),
        fig("answered", "count.answered", count(c.answered)),
        fig("abandoned", "count.abandoned", count(c.abandoned)),
        fig(
            "short_abandoned",
            "count.short_abandoned",
            count(c.short_abandoned),
        ),
        fig("handled", "count.handled", count(c.handled)),
        fig(
            "service_level",
            "sl.abandons_in_denominator",
            ratio(c.answered_within_sl, sl_all),
        ),
        fig(
            "service_level",
            "sl.answered_only",
            ratio(c.answered_within_sl, c.answered),
        ),
        fig(
            "service_level",
            "sl.short_abandons_excluded",
            ratio(c.answered_within_sl, sl_no_short),
        ),
        fig(
            "asa_secs",
            "asa",
            ratio(c.answer_wait_ms, c.answered).map(|v| v / 1000.0),
        ),
        fig(
            "aht_secs",
            "aht",
            ratio(c.talk_ms + c.hold_ms + c.wrap_ms, c.handled).map(|v| v / 1000.0),
        ),
        fig(
            "abandon_rate",
            "abandon_rate",
            ratio(c.abandoned, c.offered),
        ),
        fig(
            "abandon_rate",
            "abandon_rate.short_abandons_excluded",
            ratio(
                c.abandoned.saturating_sub(c.short_abandoned),
                c.offered.saturating_sub(c.short_abandoned),
            ),
        ),
        fig(
            "avg_abandon_wait_secs",
            "abandon_wait",
            ratio(c.abandon_wait_ms, c.abandoned).map(|v| v / 1000.0),
        ),
        fig(
            "occupancy",
            "occupancy",
            if queue_row {
                None
            } else {
                ratio(c.busy_ms, available)
            },
        ),
        fig(
            "transfer_rate",
            "transfer_rate",
            ratio(c.transferred, c.answered),
        ),
        fig(
            "overflow_rate",
            "overflow_rate",
            ratio(c.overflowed, c.offered),
        ),
        fig(
            "fcr_rate",
            "fcr.no_repeat_within_window",
            ratio(c.fcr_resolved, c.fcr_eligible),
        ),
        fig(
            "fcr_pending",
            "fcr.no_repeat_within_window",
            count(c.fcr_pending),
        ),
        fig(
            "cost_per_contact",
            "cost.per_handled_contact",
            cost_per_contact(c, ctx.cost, queue_row),
        ),
    ]
}

fn cost_per_contact(c: &Counters, cost: Option<&CostModel>, queue_row: bool) -> Option<f64> {
    let m = cost.filter(|m| !m.is_zero())?;
    if c.handled == 0 || (queue_row && m.agent_cost_per_staffed_hour > 0.0) {
        return None;
    }
    let agent = m.agent_cost_per_staffed_hour * c.staffed_ms as f64 / 3_600_000.0;
    let voice = m.voice_cost_per_talk_minute * (c.talk_ms + c.hold_ms) as f64 / 60_000.0;
    let fixed = m.cost_per_handled_contact * c.handled as f64;
    Some((agent + voice + fixed) / c.handled as f64)
}
