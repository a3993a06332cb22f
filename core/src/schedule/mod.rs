//! Schedules: when a workflow runs on its own (`config.run.schedule`).
//!
//! The schedule is part of the run spec, so it follows the run spec's
//! approval rules: a schedule set or changed on another device runs here
//! only once this device approved it, and only on the device it names as
//! `owner`. This module is the pure part: the type and its validation
//! (here), when occurrences fall (`occurrences.rs`, with the DST rule) and
//! what an agent does with the occurrences it finds due (`plan.rs`). The
//! agent that acts on the plan lives in `flowkeep-app`.

mod occurrences;
mod plan;

pub use occurrences::{Compiled, Occurrences};
pub use plan::{grace_ms, jitter_of, plan, Action, Due, Plan, MAX_RECORDS_PER_PLAN};

use serde::{Deserialize, Serialize};

use crate::validation::custom_rules::duration_ms_wide;
use crate::FieldError;

/// A workflow's schedule. Exactly one of `cron` and `interval`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// A cron expression (5 fields, or 6 with seconds first), read in
    /// `timezone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// IANA time zone of `cron` (`Europe/Berlin`); UTC when absent.
    #[serde(
        default,
        alias = "tz",
        alias = "time_zone",
        skip_serializing_if = "Option::is_none"
    )]
    pub timezone: Option<String>,
    /// A fixed period written like the `duration` rule (`2s`, `15m`, `1h30m`);
    /// occurrences fall on multiples of it since the Unix epoch, so every
    /// device and every restart agrees on them.
    #[serde(default, alias = "every", skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// What happens to occurrences that passed while no agent ran.
    #[serde(default, skip_serializing_if = "Missed::is_default")]
    pub missed: Missed,
    /// How far back `run_once` / `run_all` catch up (a duration; default 1d).
    /// Older missed occurrences are recorded as skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_up: Option<String>,
    /// What happens when an occurrence comes while the previous run is going.
    #[serde(default, skip_serializing_if = "Overlap::is_default")]
    pub overlap: Overlap,
    /// Spread starts by up to this long after the occurrence (a duration),
    /// the same on every device for a given occurrence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<String>,
    /// A paused schedule records nothing; when it is resumed it starts from
    /// that moment (the paused time is not "missed").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// The device that runs it. Filled in with the device that sets a
    /// schedule without one; changed with `flowkeep schedule own`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum Missed {
    /// Record every missed occurrence as `skipped`.
    #[default]
    Skip,
    /// Run the latest missed occurrence (within `catch_up`), skip the others.
    RunOnce,
    /// Run every missed occurrence within `catch_up`, oldest first.
    RunAll,
}

impl Missed {
    fn is_default(&self) -> bool {
        *self == Missed::Skip
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Missed::Skip => "skip",
            Missed::RunOnce => "run_once",
            Missed::RunAll => "run_all",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// Record the new occurrence as `skipped` while a run is going.
    #[default]
    Skip,
    /// Start it once the running one ended.
    Queue,
    /// Cancel the running one, then start.
    CancelPrevious,
    /// Start it alongside.
    Allow,
}

impl Overlap {
    fn is_default(&self) -> bool {
        *self == Overlap::Skip
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Overlap::Skip => "skip",
            Overlap::Queue => "queue",
            Overlap::CancelPrevious => "cancel_previous",
            Overlap::Allow => "allow",
        }
    }
}

impl Schedule {
    /// Shortest interval: one second.
    pub const MIN_INTERVAL_MS: u64 = 1_000;
    /// Longest interval, catch-up window or jitter: 366 days.
    pub const MAX_SPAN_MS: u64 = 366 * 86_400_000;
    /// Catch-up window when none is given.
    pub const DEFAULT_CATCH_UP_MS: u64 = 86_400_000;
    /// Longest device id in `owner`.
    const MAX_OWNER_LEN: usize = 128;

    /// Every problem with the schedule at once, fields under `prefix`
    /// (`run.schedule`). Messages quote at most 64 characters of a value.
    pub fn check(&self, prefix: &str) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let at = |f: &str| format!("{prefix}.{f}");
        match (&self.cron, &self.interval) {
            (None, None) => errors.push(FieldError::new(
                prefix,
                "required",
                "a schedule needs either \"cron\" (with an optional \"timezone\") or \"interval\" (like \"2s\" or \"1h\")",
            )),
            (Some(_), Some(_)) => errors.push(FieldError::new(
                at("interval"),
                "exclusive",
                "give either \"cron\" or \"interval\", not both",
            )),
            _ => {}
        }
        if let Some(cron) = &self.cron {
            if let Err(why) = occurrences::parse_cron(cron) {
                errors.push(FieldError::new(
                    at("cron"),
                    "cron",
                    format!("\"{}\" is not a cron expression: {why}", short(cron)),
                ));
            }
        }
        if let Some(tz) = &self.timezone {
            if self.interval.is_some() && self.cron.is_none() {
                errors.push(FieldError::new(
                    at("timezone"),
                    "unused",
                    "a time zone applies to a cron schedule only; an interval is the same everywhere",
                ));
            } else if tz.parse::<chrono_tz::Tz>().is_err() {
                errors.push(FieldError::new(
                    at("timezone"),
                    "timezone",
                    format!(
                        "\"{}\" is not an IANA time zone like Europe/Berlin or America/New_York",
                        short(tz)
                    ),
                ));
            }
        }
        if let Some(iv) = &self.interval {
            match span(iv) {
                None => errors.push(FieldError::new(
                    at("interval"),
                    "duration",
                    format!("\"{}\" is not a duration like 2s, 15m or 1h30m", short(iv)),
                )),
                Some(ms) if !(Self::MIN_INTERVAL_MS..=Self::MAX_SPAN_MS).contains(&ms) => errors
                    .push(FieldError::new(
                        at("interval"),
                        "range",
                        "must be between 1s and 366d",
                    )),
                _ => {}
            }
        }
        for (name, value) in [("catch_up", &self.catch_up), ("jitter", &self.jitter)] {
            let Some(v) = value else { continue };
            match span(v) {
                None => errors.push(FieldError::new(
                    at(name),
                    "duration",
                    format!("\"{}\" is not a duration like 30s, 1h or 7d", short(v)),
                )),
                Some(ms) if ms > Self::MAX_SPAN_MS => {
                    errors.push(FieldError::new(at(name), "range", "must be at most 366d"))
                }
                _ => {}
            }
        }
        if let (Some(j), Some(iv)) = (self.jitter_ms(), self.interval_ms()) {
            if j >= iv {
                errors.push(FieldError::new(
                    at("jitter"),
                    "range",
                    "must be shorter than the interval (or runs would pass each other)",
                ));
            }
        }
        if let Some(owner) = &self.owner {
            let ok = !owner.is_empty()
                && owner.len() <= Self::MAX_OWNER_LEN
                && owner
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                errors.push(FieldError::new(
                    at("owner"),
                    "format",
                    "must be a device id (letters, digits, - and _; at most 128)",
                ));
            }
        }
        errors
    }

    pub fn interval_ms(&self) -> Option<u64> {
        self.interval.as_deref().and_then(span)
    }
    pub fn jitter_ms(&self) -> Option<u64> {
        self.jitter.as_deref().and_then(span)
    }
    pub fn catch_up_ms(&self) -> u64 {
        self.catch_up
            .as_deref()
            .and_then(span)
            .unwrap_or(Self::DEFAULT_CATCH_UP_MS)
    }

    /// When occurrences fall, if the schedule is valid.
    pub fn compile(&self) -> Result<Compiled, String> {
        Compiled::new(self)
    }

    /// One line for lists: `cron 0 3 * * * (Europe/Berlin)` or `every 2s`.
    pub fn describe(&self) -> String {
        match (&self.cron, &self.interval) {
            (Some(c), _) => format!("cron {c} ({})", self.timezone.as_deref().unwrap_or("UTC")),
            (None, Some(i)) => format!("every {i}"),
            (None, None) => "no schedule".to_owned(),
        }
    }
}

/// Gives a schedule written without an owner one: the owner it had before
/// this edit (ownership moves only with `schedule own`), else `device`, the
/// device that sets it. A schedule that came without an owner (from another
/// device) and that this edit leaves as it was keeps none: an edit of
/// something else does not make this device run it.
pub fn settle_owner(
    spec: &mut crate::workflow::WorkflowSpec,
    before: Option<&crate::workflow::WorkflowSpec>,
    device: &str,
) {
    let Some(schedule) = spec.config.run.as_mut().and_then(|r| r.schedule.as_mut()) else {
        return;
    };
    if schedule.owner.is_some() {
        return;
    }
    let previous = before
        .and_then(|b| b.config.run.as_ref())
        .and_then(|r| r.schedule.as_ref());
    match previous {
        Some(p) if p == schedule => {}
        Some(Schedule {
            owner: Some(owner), ..
        }) => schedule.owner = Some(owner.clone()),
        _ => schedule.owner = Some(device.to_owned()),
    }
}

fn span(s: &str) -> Option<u64> {
    duration_ms_wide(s).map(|ms| u64::try_from(ms).unwrap_or(u64::MAX))
}

fn short(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> Schedule {
        serde_json::from_value(v).unwrap()
    }

    fn fields(s: &Schedule) -> Vec<String> {
        s.check("run.schedule")
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn an_owner_is_settled_only_for_a_schedule_the_edit_writes() {
        let spec_with = |schedule: Option<Schedule>| {
            let mut s = crate::workflow::WorkflowSpec {
                name: "n".into(),
                description: String::new(),
                version: "1".into(),
                tags: vec![],
                config: Default::default(),
            };
            s.config.run = Some(crate::config::RunSpec {
                command: vec!["true".into()],
                cwd: None,
                env: Default::default(),
                timeout_s: None,
                inherit_env: vec![],
                schedule,
            });
            s
        };
        let ownerless = parse(serde_json::json!({"interval": "1m"}));
        let owned = |o: &str| Schedule {
            owner: Some(o.into()),
            ..ownerless.clone()
        };
        let owner = |s: &crate::workflow::WorkflowSpec| {
            s.config
                .run
                .as_ref()
                .unwrap()
                .schedule
                .as_ref()
                .unwrap()
                .owner
                .clone()
        };

        // New here: this device owns it.
        let mut new = spec_with(Some(ownerless.clone()));
        settle_owner(&mut new, None, "me");
        assert_eq!(owner(&new).as_deref(), Some("me"));

        // Written again without its owner (a form that leaves it out): the
        // owner it had stays.
        let before = spec_with(Some(owned("other")));
        let mut edit = spec_with(Some(parse(serde_json::json!({"interval": "5m"}))));
        settle_owner(&mut edit, Some(&before), "me");
        assert_eq!(owner(&edit).as_deref(), Some("other"));

        // Came without an owner from elsewhere, and this edit changes
        // something else: it stays without one (it runs nowhere), rather
        // than becoming this device's to run.
        let before = spec_with(Some(ownerless.clone()));
        let mut rename = before.clone();
        rename.name = "renamed".into();
        settle_owner(&mut rename, Some(&before), "me");
        assert_eq!(owner(&rename), None);

        // Came without an owner, and this edit rewrites the schedule: this
        // device set it, so it owns it.
        let mut rewrite = spec_with(Some(parse(serde_json::json!({"interval": "5m"}))));
        settle_owner(&mut rewrite, Some(&before), "me");
        assert_eq!(owner(&rewrite).as_deref(), Some("me"));
    }

    #[test]
    fn the_spellings_of_a_schedule_are_accepted() {
        let a = parse(serde_json::json!({"interval": "2s", "missed": "skip"}));
        let b = parse(serde_json::json!({"every": "2s"}));
        assert_eq!(a, b);
        assert!(a.check("run.schedule").is_empty());
        for key in ["timezone", "tz", "time_zone"] {
            let s = parse(serde_json::json!({"cron": "0 9 * * *", key: "Europe/Berlin"}));
            assert_eq!(s.timezone.as_deref(), Some("Europe/Berlin"));
            assert!(s.check("run.schedule").is_empty());
        }
        let full = parse(serde_json::json!({
            "cron": "*/5 * * * *", "timezone": "America/New_York", "missed": "run_all",
            "catch_up": "2h", "overlap": "cancel_previous", "jitter": "30s", "paused": true,
            "owner": "0193-abc"
        }));
        assert!(
            full.check("run.schedule").is_empty(),
            "{:?}",
            full.check("p")
        );
        // Canonical form written back: defaults left out.
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            serde_json::json!({"interval": "2s"})
        );
    }

    #[test]
    fn every_problem_is_reported_at_once_naming_its_field() {
        let s = parse(serde_json::json!({
            "cron": "61 25 * * *", "timezone": "Mars/Olympus_Mons", "jitter": "soon",
            "catch_up": "400d", "owner": "a b"
        }));
        assert_eq!(
            fields(&s),
            [
                "run.schedule.cron",
                "run.schedule.timezone",
                "run.schedule.catch_up",
                "run.schedule.jitter",
                "run.schedule.owner"
            ]
        );
        assert_eq!(fields(&Schedule::default()), ["run.schedule"]);
        let both = parse(serde_json::json!({"cron": "* * * * *", "interval": "1m"}));
        assert_eq!(fields(&both), ["run.schedule.interval"]);
        for iv in ["0s", "500ms", "367d", "two"] {
            let s = parse(serde_json::json!({"interval": iv}));
            assert_eq!(fields(&s), ["run.schedule.interval"], "{iv}");
        }
        let jitter = parse(serde_json::json!({"interval": "10s", "jitter": "10s"}));
        assert_eq!(fields(&jitter), ["run.schedule.jitter"]);
        let tz_on_interval = parse(serde_json::json!({"interval": "10s", "timezone": "UTC"}));
        assert_eq!(fields(&tz_on_interval), ["run.schedule.timezone"]);
    }

    #[test]
    fn unknown_keys_and_policies_are_refused() {
        for v in [
            serde_json::json!({"interval": "2s", "when": "soon"}),
            serde_json::json!({"interval": "2s", "missed": "later"}),
            serde_json::json!({"interval": "2s", "overlap": "sometimes"}),
        ] {
            assert!(
                serde_json::from_value::<Schedule>(v.clone()).is_err(),
                "{v}"
            );
        }
    }
}
