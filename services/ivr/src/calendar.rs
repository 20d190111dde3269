//! Business hours and holidays in a tenant's time zone, as an `hours` node consults
//! them.
//!
//! A [`Calendar`] is weekly open intervals in local time plus holiday dates; whether a
//! moment is open is decided in the calendar's IANA time zone (jiff with its bundled
//! time-zone database, so a machine without `/usr/share/zoneinfo` decides the same).

use hotline_core::time::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::diag::Pos;
use crate::yaml::{self, Errs, Fields, Y};

/// What a calendar says about a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// Within an open interval.
    Open,
    /// Outside every open interval.
    Closed,
    /// A holiday: closed all day.
    Holiday,
}

/// One weekly rule: open on these days between two local times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRule {
    /// Monday first.
    pub days: [bool; 7],
    /// Minutes after local midnight when it opens.
    pub from_min: u16,
    /// Minutes after local midnight when it closes (up to 1440).
    pub to_min: u16,
}

/// A holiday: a local date, closed all day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holiday {
    /// The date in the calendar's time zone.
    pub date: Date,
    /// What it is called, for people reading the flow.
    pub name: String,
}

/// Business hours of one calendar.
#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    /// Its name in the flow's `calendars`.
    pub name: String,
    /// The IANA time-zone name it was written with.
    pub timezone: String,
    /// The time zone itself.
    tz: TimeZone,
    /// Weekly open intervals.
    pub open: Vec<OpenRule>,
    /// Closed all day on these dates.
    pub holidays: Vec<Holiday>,
}

impl Calendar {
    /// Whether the calendar is open at `now` (microseconds since the Unix epoch).
    pub fn opening(&self, now: Timestamp) -> Opening {
        let micros = i64::try_from(now.micros()).unwrap_or(i64::MAX);
        let Ok(ts) = jiff::Timestamp::from_microsecond(micros) else {
            return Opening::Closed;
        };
        let local = ts.to_zoned_datetime(self.tz.clone());
        let date = local.date();
        if self.holidays.iter().any(|h| h.date == date) {
            return Opening::Holiday;
        }
        let day = usize::from(local.weekday().to_monday_zero_offset().unsigned_abs());
        let minute = u16::try_from(local.hour()).unwrap_or(0) * 60
            + u16::try_from(local.minute()).unwrap_or(0);
        let open = self
            .open
            .iter()
            .any(|r| r.days[day] && (r.from_min..r.to_min).contains(&minute));
        if open { Opening::Open } else { Opening::Closed }
    }
}

const DAYS: [(&str, &str); 7] = [
    ("mon", "monday"),
    ("tue", "tuesday"),
    ("wed", "wednesday"),
    ("thu", "thursday"),
    ("fri", "friday"),
    ("sat", "saturday"),
    ("sun", "sunday"),
];

fn day_index(name: &str) -> Option<usize> {
    let name = name.trim().to_ascii_lowercase();
    DAYS.iter()
        .position(|(short, long)| name == *short || name == *long)
}

/// Parses `HH:MM` into minutes after midnight; `24:00` only when `end` is set.
fn clock_time(text: &str, end: bool) -> Option<u16> {
    let (h, m) = text.trim().split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    if m >= 60 {
        return None;
    }
    match h {
        0..=23 => Some(h * 60 + m),
        24 if end && m == 0 => Some(1440),
        _ => None,
    }
}

/// Parses one calendar (`timezone`, `open`, `holidays`).
pub(crate) fn parse(errs: &mut Errs, name: &str, at: Pos, node: &Y<'_>) -> Option<Calendar> {
    let before = errs.count();
    let owner = format!("calendar {name:?}");
    let f = Fields::new(errs, node, &owner, at, &["timezone", "open", "holidays"])?;
    let mut tz = None;
    let mut timezone = String::new();
    if let Some(v) = f.require(errs, "timezone", "timezone: Europe/London")
        && let Some(t) = yaml::text(errs, v, "`timezone`")
    {
        match TimeZone::get(&t) {
            Ok(z) => tz = Some(z),
            Err(_) => errs.at(
                yaml::pos(v),
                format!(
                    "{owner}: unknown time zone {t:?}; use an IANA name such as Europe/London, America/New_York or Asia/Shanghai"
                ),
            ),
        }
        timezone = t;
    }
    let mut open = Vec::new();
    if let Some(v) = f.require(
        errs,
        "open",
        "open: [{ days: [mon-fri], from: \"09:00\", to: \"17:00\" }]",
    ) && let Some(rules) = yaml::sequence(errs, v, &format!("{owner}: `open`"))
    {
        for r in rules {
            if let Some(rule) = parse_rule(errs, &owner, r) {
                open.push(rule);
            }
        }
    }
    let mut holidays: Vec<Holiday> = Vec::new();
    if let Some(v) = f.get("holidays")
        && let Some(items) = yaml::sequence(errs, v, &format!("{owner}: `holidays`"))
    {
        for h in items {
            if let Some(day) = parse_holiday(errs, &owner, h) {
                if holidays.iter().any(|o| o.date == day.date) {
                    errs.at(
                        yaml::pos(h),
                        format!("{owner}: holiday {} is listed twice", day.date),
                    );
                } else {
                    holidays.push(day);
                }
            }
        }
    }
    if errs.count() > before {
        return None;
    }
    Some(Calendar {
        name: name.to_owned(),
        timezone,
        tz: tz?,
        open,
        holidays,
    })
}

fn parse_rule(errs: &mut Errs, owner: &str, node: &Y<'_>) -> Option<OpenRule> {
    let at = yaml::pos(node);
    let f = Fields::new(
        errs,
        node,
        format!("{owner}: an `open` rule"),
        at,
        &["days", "from", "to"],
    )?;
    let mut days = [false; 7];
    let mut ok = true;
    if let Some(v) = f.require(errs, "days", "days: [mon-fri]") {
        for d in yaml::items(v) {
            let Some(t) = yaml::text(errs, d, "a day") else {
                ok = false;
                continue;
            };
            let range = match t.split_once('-') {
                Some((a, b)) => day_index(a).zip(day_index(b)),
                None => day_index(&t).map(|i| (i, i)),
            };
            match range {
                Some((a, b)) if a <= b => days[a..=b].iter_mut().for_each(|d| *d = true),
                _ => {
                    errs.at(
                        yaml::pos(d),
                        format!("{owner}: {t:?} is not a day or a range of days; write mon … sun, or a range such as mon-fri"),
                    );
                    ok = false;
                }
            }
        }
    } else {
        ok = false;
    }
    let mut time = |key: &str, end: bool| {
        let v = f.require(errs, key, &format!("{key}: \"09:00\""))?;
        let t = yaml::text(errs, v, &format!("`{key}`"))?;
        let m = clock_time(&t, end);
        if m.is_none() {
            errs.at(
                yaml::pos(v),
                format!(
                    "{owner}: `{key}` is {t:?}; write a local time as \"HH:MM\" from 00:00 to {}",
                    if end { "24:00" } else { "23:59" }
                ),
            );
        }
        m
    };
    let from = time("from", false);
    let to = time("to", true);
    let (from_min, to_min) = (from?, to?);
    if from_min >= to_min {
        errs.at(
            f.key_pos("to"),
            format!("{owner}: closes at or before it opens; `to` must be later than `from` (use two rules to span midnight)"),
        );
        return None;
    }
    ok.then_some(OpenRule {
        days,
        from_min,
        to_min,
    })
}

fn parse_holiday(errs: &mut Errs, owner: &str, node: &Y<'_>) -> Option<Holiday> {
    let (date_node, name) = if node.data.is_mapping() {
        let f = Fields::new(
            errs,
            node,
            format!("{owner}: a holiday"),
            yaml::pos(node),
            &["date", "name"],
        )?;
        let d = f.require(errs, "date", "date: 2026-12-25")?;
        let name = match f.get("name") {
            Some(n) => yaml::text(errs, n, "a holiday's `name`")?,
            None => String::new(),
        };
        (d, name)
    } else {
        (node, String::new())
    };
    let t = yaml::text(errs, date_node, "a holiday")?;
    match t.parse::<Date>() {
        Ok(date) if t.len() == 10 => Some(Holiday { date, name }),
        _ => {
            errs.at(
                yaml::pos(date_node),
                format!("{owner}: holiday {t:?} is not a date; write YYYY-MM-DD, e.g. 2026-12-25"),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_times_take_hh_mm_and_midnight_only_as_an_end() {
        assert_eq!(clock_time("08:30", false), Some(510));
        assert_eq!(clock_time("24:00", true), Some(1440));
        assert_eq!(clock_time("24:00", false), None);
        assert_eq!(clock_time("8:5", false), Some(485));
        assert_eq!(clock_time("12:60", false), None);
        assert_eq!(clock_time("noon", false), None);
    }

    #[test]
    fn day_names_are_short_or_long_in_any_case() {
        assert_eq!(day_index("Mon"), Some(0));
        assert_eq!(day_index("sunday"), Some(6));
        assert_eq!(day_index("funday"), None);
    }
}
