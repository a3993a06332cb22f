//! When a schedule's occurrences fall, as Unix milliseconds.
//!
//! An interval falls on multiples of itself since the Unix epoch. A cron
//! expression is matched against the wall clock of its time zone (croner,
//! on naive local times), and each local time becomes an instant by one
//! rule, the same on every device:
//! - a local time that exists once is that instant;
//! - a local time in a repeated hour (clocks going back) is its **first**
//!   instant, so the hour runs once, not twice;
//! - a local time in a skipped hour (clocks going forward) runs once at the
//!   next valid instant (the moment of the change); several local times in
//!   the same gap fall together and run once.

use chrono::{DateTime, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;

use super::Schedule;

/// A schedule ready to say when it falls.
#[derive(Debug, Clone)]
pub struct Compiled {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Interval(i64),
    Cron(Box<Cron>, Tz),
}

pub(super) fn parse_cron(expr: &str) -> Result<Cron, String> {
    let cron = Cron::new(expr.trim())
        .with_seconds_optional()
        .parse()
        .map_err(|e| e.to_string())?;
    // A valid pattern that never matches (30 February) is refused too: it
    // would be a schedule that silently never runs. The reference instant
    // is fixed so the answer does not depend on a clock.
    let from = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap();
    cron.find_next_occurrence(&from, false)
        .map_err(|_| "it never matches a date".to_owned())?;
    Ok(cron)
}

impl Compiled {
    pub fn new(s: &Schedule) -> Result<Compiled, String> {
        if let Some(expr) = &s.cron {
            let tz = match &s.timezone {
                Some(name) => name
                    .parse::<Tz>()
                    .map_err(|_| format!("unknown time zone {name}"))?,
                None => Tz::UTC,
            };
            let cron = parse_cron(expr)?;
            return Ok(Compiled {
                kind: Kind::Cron(Box::new(cron), tz),
            });
        }
        match s.interval_ms() {
            Some(ms) if (Schedule::MIN_INTERVAL_MS..=Schedule::MAX_SPAN_MS).contains(&ms) => {
                Ok(Compiled {
                    kind: Kind::Interval(ms as i64),
                })
            }
            _ => Err("a schedule needs a valid cron or interval".to_owned()),
        }
    }

    /// The period of an interval schedule.
    pub fn interval_ms(&self) -> Option<i64> {
        match self.kind {
            Kind::Interval(ms) => Some(ms),
            Kind::Cron(..) => None,
        }
    }

    /// The first occurrence strictly after `t` (Unix ms), if any (a cron
    /// expression may stop matching past the years croner searches).
    pub fn next_after(&self, t: i64) -> Option<i64> {
        match &self.kind {
            Kind::Interval(ms) => t.div_euclid(*ms).checked_add(1)?.checked_mul(*ms),
            Kind::Cron(cron, tz) => next_cron(cron, *tz, t),
        }
    }

    /// Occurrences after `t`, in order.
    pub fn after(&self, t: i64) -> Occurrences<'_> {
        Occurrences { c: self, t }
    }

    /// The local wall-clock time of `t` in the schedule's zone (UTC for an
    /// interval), for messages.
    pub fn local(&self, t: i64) -> String {
        let tz = match &self.kind {
            Kind::Cron(_, tz) => *tz,
            Kind::Interval(_) => Tz::UTC,
        };
        match tz.timestamp_millis_opt(t) {
            chrono::LocalResult::Single(d) => d.format("%Y-%m-%d %H:%M:%S %Z").to_string(),
            _ => t.to_string(),
        }
    }
}

/// Iterator over a schedule's occurrences after an instant.
pub struct Occurrences<'a> {
    c: &'a Compiled,
    t: i64,
}

impl Iterator for Occurrences<'_> {
    type Item = i64;
    fn next(&mut self) -> Option<i64> {
        let n = self.c.next_after(self.t)?;
        self.t = n;
        Some(n)
    }
}

fn naive_of(tz: Tz, t: i64) -> Option<NaiveDateTime> {
    Some(tz.timestamp_millis_opt(t).single()?.naive_local())
}

/// The instant a local time stands for, by the module's rule.
fn instant_of(tz: Tz, local: NaiveDateTime) -> Option<i64> {
    match tz.from_local_datetime(&local) {
        chrono::LocalResult::Single(d) => Some(d.timestamp_millis()),
        chrono::LocalResult::Ambiguous(first, _) => Some(first.timestamp_millis()),
        chrono::LocalResult::None => gap_end(tz, local),
    }
}

/// The moment the clocks jumped over `local`: the first instant whose
/// local time is later than it.
fn gap_end(tz: Tz, local: NaiveDateTime) -> Option<i64> {
    let as_utc = local.and_utc().timestamp_millis();
    // Read with the offset of a day before, the local time is an instant
    // already past the jump; the jump lies within the day before that.
    let before = tz
        .offset_from_utc_datetime(&(local - chrono::Duration::days(1)))
        .fix()
        .local_minus_utc() as i64
        * 1000;
    let mut hi = as_utc - before;
    let mut lo = hi - 86_400_000;
    if naive_of(tz, hi)? <= local {
        return None;
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if naive_of(tz, mid)? > local {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

fn next_cron(cron: &Cron, tz: Tz, t: i64) -> Option<i64> {
    // Local time maps to instants monotonically, so nothing before the
    // local time of `t` can fall after `t`; in a repeated hour the loop
    // walks past local times whose (first) instant already passed.
    let mut local = naive_of(tz, t)?;
    for _ in 0..100_000 {
        let at = Utc.from_utc_datetime(&local);
        let next: DateTime<Utc> = cron.find_next_occurrence(&at, false).ok()?;
        local = next.naive_utc();
        let instant = instant_of(tz, local)?;
        if instant > t {
            return Some(instant);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sched(v: serde_json::Value) -> Compiled {
        serde_json::from_value::<Schedule>(v)
            .unwrap()
            .compile()
            .unwrap()
    }

    fn ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    fn iso(t: i64) -> String {
        Utc.timestamp_millis_opt(t)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    }

    #[test]
    fn an_interval_falls_on_multiples_of_itself() {
        let c = sched(serde_json::json!({"interval": "2s"}));
        assert_eq!(c.next_after(0), Some(2000));
        assert_eq!(c.next_after(1999), Some(2000));
        assert_eq!(c.next_after(2000), Some(4000));
        assert_eq!(c.next_after(-1), Some(0));
        assert_eq!(
            c.after(3000).take(3).collect::<Vec<_>>(),
            [4000, 6000, 8000]
        );
    }

    #[test]
    fn cron_is_read_in_its_time_zone() {
        let c = sched(serde_json::json!({"cron": "0 3 * * *", "timezone": "Europe/Berlin"}));
        // Winter: 03:00 CET is 02:00 UTC; summer: 03:00 CEST is 01:00 UTC.
        assert_eq!(
            iso(c.next_after(ms("2026-01-10T12:00:00Z")).unwrap()),
            "2026-01-11T02:00:00Z"
        );
        assert_eq!(
            iso(c.next_after(ms("2026-07-10T12:00:00Z")).unwrap()),
            "2026-07-11T01:00:00Z"
        );
        let utc = sched(serde_json::json!({"cron": "30 9 * * 1"}));
        assert_eq!(
            iso(utc.next_after(ms("2026-12-03T00:00:00Z")).unwrap()),
            "2026-12-07T09:30:00Z"
        );
    }

    #[test]
    fn a_time_in_a_skipped_hour_runs_once_at_the_change() {
        // Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
        let c = sched(serde_json::json!({"cron": "30 2 * * *", "timezone": "Europe/Berlin"}));
        let got: Vec<String> = c
            .after(ms("2026-03-27T12:00:00Z"))
            .take(3)
            .map(iso)
            .collect();
        assert_eq!(
            got,
            [
                "2026-03-28T01:30:00Z",
                "2026-03-29T01:00:00Z",
                "2026-03-30T00:30:00Z"
            ]
        );
        // Every quarter hour inside the gap falls together: one run.
        let q = sched(serde_json::json!({"cron": "*/15 1-3 * * *", "timezone": "Europe/Berlin"}));
        let got: Vec<String> = q
            .after(ms("2026-03-29T00:40:00Z"))
            .take(3)
            .map(iso)
            .collect();
        assert_eq!(
            got,
            [
                "2026-03-29T00:45:00Z",
                "2026-03-29T01:00:00Z",
                "2026-03-29T01:15:00Z"
            ]
        );
    }

    #[test]
    fn a_time_in_a_repeated_hour_runs_once() {
        // Berlin, 2026-10-25: 03:00 CEST goes back to 02:00 CET.
        let c = sched(serde_json::json!({"cron": "30 2 * * *", "timezone": "Europe/Berlin"}));
        let got: Vec<String> = c
            .after(ms("2026-10-24T12:00:00Z"))
            .take(2)
            .map(iso)
            .collect();
        assert_eq!(got, ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]);
        // Asked from inside the second pass, the repeated times are over.
        assert_eq!(
            iso(c.next_after(ms("2026-10-25T01:10:00Z")).unwrap()),
            "2026-10-26T01:30:00Z"
        );
        let every = sched(serde_json::json!({"cron": "0,30 * * * *", "timezone": "Europe/Berlin"}));
        let got: Vec<String> = every
            .after(ms("2026-10-24T23:45:00Z"))
            .take(5)
            .map(iso)
            .collect();
        // 02:00 and 02:30 local once each (CEST), then 03:00 CET.
        assert_eq!(
            got,
            [
                "2026-10-25T00:00:00Z",
                "2026-10-25T00:30:00Z",
                "2026-10-25T02:00:00Z",
                "2026-10-25T02:30:00Z",
                "2026-10-25T03:00:00Z"
            ]
        );
    }

    #[test]
    fn a_pattern_that_never_matches_is_refused() {
        assert!(parse_cron("0 0 30 2 *").is_err());
        assert!(parse_cron("61 25 * * *").is_err());
        assert!(parse_cron("0 0 29 2 *").is_ok());
    }

    const ZONES: [&str; 7] = [
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "Australia/Lord_Howe",
        "America/Sao_Paulo",
        "Asia/Kolkata",
        "Pacific/Chatham",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(100))]

        /// Occurrences strictly increase; each falls on a local time the
        /// pattern matches, or (skipped hour) at the moment of a jump; no
        /// local time runs twice (repeated hour); none is left out.
        #[test]
        fn cron_occurrences_follow_the_rule(
            zone in 0..ZONES.len(),
            minute in prop_oneof![Just("*/20".to_owned()), (0u32..60).prop_map(|m| m.to_string())],
            hour in prop_oneof![Just("*".to_owned()), (0u32..24).prop_map(|h| h.to_string())],
            start in 1_700_000_000_000i64..1_900_000_000_000,
        ) {
            let expr = format!("{minute} {hour} * * *");
            let c = sched(serde_json::json!({"cron": expr, "timezone": ZONES[zone]}));
            let tz: Tz = ZONES[zone].parse().unwrap();
            let cron = parse_cron(&expr).unwrap();
            let mut last = start;
            let mut seen_local = std::collections::HashSet::new();
            for t in c.after(start).take(12) {
                prop_assert!(t > last, "{} after {}", iso(t), iso(last));
                let local = naive_of(tz, t).unwrap();
                let matches = cron.is_time_matching(&Utc.from_utc_datetime(&local)).unwrap();
                let at_jump = naive_of(tz, t - 1).unwrap() + chrono::Duration::milliseconds(1) != local;
                prop_assert!(matches || at_jump, "{} ({local}) neither matches nor is a jump", iso(t));
                prop_assert!(seen_local.insert(local), "local {local} twice");
                // Nothing the pattern matches lies between two occurrences
                // (checked minute by minute on the local clock).
                let mut m = last + 60_000 - last.rem_euclid(60_000);
                while m < t {
                    if let Some(l) = naive_of(tz, m) {
                        let hit = cron.is_time_matching(&Utc.from_utc_datetime(&l)).unwrap();
                        // A hit in a repeated hour's second pass stands for
                        // an earlier instant (its first), so is not one.
                        prop_assert!(!hit || instant_of(tz, l) != Some(m),
                            "{} ({l}) matches but was left out", iso(m));
                    }
                    m += 60_000;
                }
                last = t;
            }
        }
    }
}
