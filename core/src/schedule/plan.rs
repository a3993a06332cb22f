//! What an agent does with a schedule's occurrences at a given moment: a
//! pure decision from the schedule, the last occurrence already recorded
//! and the wall clock.
//!
//! Every occurrence after the cursor that is due gets exactly one record:
//! a run, or a `skipped` run saying why. One on time (reached within the
//! grace period after it was due) runs; one missed (the agent was not
//! running, the machine slept, the clock jumped) follows `missed`:
//! `skip` records it skipped, `run_once` runs the latest missed one within
//! the catch-up window, `run_all` runs every missed one within it. Missed
//! occurrences older than the catch-up window, and any beyond the newest
//! `MAX_RECORDS_PER_PLAN`, are summed up in one skipped record (at the
//! first of them), so a laptop closed for a month does not write a million
//! records.

use sha2::{Digest, Sha256};

use super::{Compiled, Missed, Schedule};

/// Most records one plan writes, the summary included.
pub const MAX_RECORDS_PER_PLAN: usize = 1000;

/// How late an occurrence may be reached and still count as on time: the
/// interval (between 1 s and 60 s), or 60 s for cron.
pub fn grace_ms(c: &Compiled) -> i64 {
    c.interval_ms().map_or(60_000, |ms| ms.clamp(1_000, 60_000))
}

/// The delay after `occurrence` at which it is due: `jitter` spread by a
/// hash of the workflow and the occurrence, so every device agrees.
pub fn jitter_of(s: &Schedule, key: &str, occurrence: i64) -> i64 {
    let Some(j) = s.jitter_ms().filter(|j| *j > 0) else {
        return 0;
    };
    let mut h = Sha256::new();
    h.update(key.as_bytes());
    h.update(occurrence.to_be_bytes());
    let d = h.finalize();
    let n = u64::from_be_bytes(d[..8].try_into().expect("8 bytes"));
    (n % j) as i64
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Run,
    /// Record it as `skipped` with this reason.
    Skip(String),
}

/// One occurrence to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// The scheduled instant (Unix ms): the occurrence's key with the
    /// workflow.
    pub occurrence: i64,
    pub action: Action,
    /// How many occurrences this record stands for: 1, or more for the
    /// summary of occurrences too old or too many to record one by one.
    pub covers: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// In order of occurrence.
    pub due: Vec<Due>,
    /// When the next occurrence after these is due (jitter included).
    pub next_due_at: Option<i64>,
}

/// The plan at `now` for occurrences after `after` (the later of the last
/// recorded occurrence and the moment the schedule took effect).
pub fn plan(s: &Schedule, c: &Compiled, key: &str, after: i64, now: i64) -> Plan {
    let due_at = |o: i64| o.saturating_add(jitter_of(s, key, o));
    let grace = grace_ms(c);
    let window_start = now.saturating_sub(s.catch_up_ms() as i64);
    let mut due = Vec::new();
    let mut start = after;
    let mut summary: Option<Summary> = None;
    // Older than the catch-up window: one summary record.
    if let Some(first) = c.next_after(after).filter(|o| *o <= window_start) {
        let (count, exact) = count_between(c, after, window_start);
        start = window_start;
        summary = Some(Summary {
            first,
            count,
            exact,
            why: "older than the catch-up window",
        });
    }
    // More due than one plan records: walk only the newest ones. Walking
    // every occurrence of a year of a per-second cron took minutes.
    let skip_to = newest_start(c, start, now, &due_at);
    if skip_to > start {
        if let Some(first) = c.next_after(start).filter(|o| *o <= skip_to) {
            let (count, exact) = count_between(c, start, skip_to);
            summary = Some(match summary {
                Some(older) => older.and(count, exact),
                None => Summary {
                    first,
                    count,
                    exact,
                    why: TOO_MANY,
                },
            });
        }
        start = skip_to;
    }
    let mut found: std::collections::VecDeque<i64> = Default::default();
    let mut next_due_at = None;
    let mut dropped: Option<(i64, u64)> = None;
    for o in c.after(start) {
        if due_at(o) > now {
            next_due_at = Some(due_at(o));
            break;
        }
        found.push_back(o);
        if found.len() > MAX_RECORDS_PER_PLAN - 1 {
            let gone = found.pop_front().expect("not empty");
            dropped = Some(dropped.map_or((gone, 1), |(f, n)| (f, n + 1)));
        }
    }
    if let Some((first, n)) = dropped {
        summary = Some(match summary {
            Some(earlier) => earlier.and(n, true),
            None => Summary {
                first,
                count: n,
                exact: true,
                why: TOO_MANY,
            },
        });
        // Room for the summary record.
        if found.len() >= MAX_RECORDS_PER_PLAN {
            found.pop_front();
        }
    }
    if let Some(sum) = summary {
        let n = sum.count;
        due.push(Due {
            occurrence: sum.first,
            action: Action::Skip(format!(
                "missed: {}{n} occurrence{} from {} on, while no agent ran ({}; missed: {})",
                if sum.exact { "" } else { "at least " },
                if n == 1 { "" } else { "s" },
                c.local(sum.first),
                sum.why,
                s.missed.as_str()
            )),
            covers: n,
        });
    }
    let missed: Vec<bool> = found
        .iter()
        .map(|o| now.saturating_sub(due_at(*o)) > grace)
        .collect();
    let latest_missed = found
        .iter()
        .zip(&missed)
        .filter(|(_, m)| **m)
        .map(|(o, _)| *o)
        .next_back();
    for (o, was_missed) in found.iter().copied().zip(missed) {
        let action = if !was_missed {
            Action::Run
        } else {
            match s.missed {
                Missed::Skip => Action::Skip(format!(
                    "missed: due at {} while no agent ran (missed: skip)",
                    c.local(o)
                )),
                Missed::RunOnce if Some(o) == latest_missed => Action::Run,
                Missed::RunOnce => Action::Skip(format!(
                    "missed: due at {}; run_once runs only the latest missed occurrence",
                    c.local(o)
                )),
                Missed::RunAll => Action::Run,
            }
        };
        due.push(Due {
            occurrence: o,
            action,
            covers: 1,
        });
    }
    if next_due_at.is_none() {
        next_due_at = found
            .back()
            .copied()
            .or(Some(start))
            .and_then(|o| c.next_after(o))
            .map(due_at);
    }
    Plan { due, next_due_at }
}

const TOO_MANY: &str = "more than the agent records at once";

/// Counting a cron's occurrences one by one stops here; past it a summary
/// says "at least".
const MAX_COUNTED: u64 = 100_000;

/// Occurrences summed up in one skipped record.
struct Summary {
    first: i64,
    count: u64,
    /// False when counting stopped at [`MAX_COUNTED`].
    exact: bool,
    why: &'static str,
}

impl Summary {
    /// This summary followed by `count` more (the first stays).
    fn and(self, count: u64, exact: bool) -> Summary {
        Summary {
            count: self.count.saturating_add(count),
            exact: self.exact && exact,
            why: TOO_MANY,
            ..self
        }
    }
}

/// How many occurrences fall in `(after, until]`, and whether that is
/// exact: an interval's by division, a cron's one by one up to
/// [`MAX_COUNTED`].
fn count_between(c: &Compiled, after: i64, until: i64) -> (u64, bool) {
    if until <= after {
        return (0, true);
    }
    if let Some(ms) = c.interval_ms() {
        let n = until.div_euclid(ms) - after.div_euclid(ms);
        return (n.max(0) as u64, true);
    }
    let n = c
        .after(after)
        .take_while(|o| *o <= until)
        .take(MAX_COUNTED as usize + 1)
        .count() as u64;
    (n.min(MAX_COUNTED), n <= MAX_COUNTED)
}

/// A moment at or after `start` after which more occurrences are due by
/// `now` than one plan records, yet at most a few times that many (found
/// by doubling a span back from `now`); `start` itself when there are not
/// that many after it. Each try walks at most one plan's worth.
fn newest_start(c: &Compiled, start: i64, now: i64, due_at: &dyn Fn(i64) -> i64) -> i64 {
    let more_than_a_plan = |from: i64| {
        c.after(from)
            .take_while(|o| due_at(*o) <= now)
            .nth(MAX_RECORDS_PER_PLAN)
            .is_some()
    };
    if !more_than_a_plan(start) {
        return start;
    }
    let mut span = 1_000i64;
    loop {
        let probe = now.saturating_sub(span);
        if probe <= start {
            return start;
        }
        if more_than_a_plan(probe) {
            return probe;
        }
        span = span.saturating_mul(2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn schedule(v: serde_json::Value) -> (Schedule, Compiled) {
        let s: Schedule = serde_json::from_value(v).unwrap();
        let c = s.compile().unwrap();
        (s, c)
    }

    fn runs(p: &Plan) -> Vec<i64> {
        p.due
            .iter()
            .filter(|d| d.action == Action::Run)
            .map(|d| d.occurrence)
            .collect()
    }
    fn skips(p: &Plan) -> Vec<i64> {
        p.due
            .iter()
            .filter(|d| d.action != Action::Run)
            .map(|d| d.occurrence)
            .collect()
    }

    #[test]
    fn on_time_occurrences_run_and_the_next_is_announced() {
        let (s, c) = schedule(serde_json::json!({"interval": "2s"}));
        let p = plan(&s, &c, "wf", 10_000, 12_050);
        assert_eq!(runs(&p), [12_000]);
        assert_eq!(p.next_due_at, Some(14_000));
        let nothing = plan(&s, &c, "wf", 12_000, 13_000);
        assert!(nothing.due.is_empty());
        assert_eq!(nothing.next_due_at, Some(14_000));
    }

    #[test]
    fn missed_occurrences_follow_the_policy() {
        // The agent was away from 10 s to 20.5 s: 12..18 s are missed, 20 s is on time.
        let (skip, c) = schedule(serde_json::json!({"interval": "2s"}));
        let p = plan(&skip, &c, "wf", 10_000, 20_500);
        assert_eq!(runs(&p), [20_000]);
        assert_eq!(skips(&p), [12_000, 14_000, 16_000, 18_000]);
        let Action::Skip(why) = &p.due[0].action else {
            panic!()
        };
        assert!(why.contains("missed: skip"), "{why}");

        let (once, c) = schedule(serde_json::json!({"interval": "2s", "missed": "run_once"}));
        let p = plan(&once, &c, "wf", 10_000, 20_500);
        assert_eq!(runs(&p), [18_000, 20_000]);
        assert_eq!(skips(&p), [12_000, 14_000, 16_000]);

        let (all, c) = schedule(serde_json::json!({"interval": "2s", "missed": "run_all"}));
        let p = plan(&all, &c, "wf", 10_000, 20_500);
        assert_eq!(runs(&p), [12_000, 14_000, 16_000, 18_000, 20_000]);
    }

    #[test]
    fn older_than_the_catch_up_window_is_one_summary_record() {
        let (s, c) =
            schedule(serde_json::json!({"interval": "1m", "missed": "run_all", "catch_up": "5m"}));
        let now = 3_600_000 + 1_000; // an hour after the cursor at 0
        let p = plan(&s, &c, "wf", 0, now);
        let Action::Skip(why) = &p.due[0].action else {
            panic!("{p:?}")
        };
        assert_eq!(p.due[0].occurrence, 60_000);
        assert!(why.contains("55 occurrences"), "{why}");
        assert_eq!(runs(&p).len(), 5, "the last five minutes run");
        assert_eq!(runs(&p).last(), Some(&3_600_000));
    }

    #[test]
    fn a_long_absence_writes_a_bounded_number_of_records() {
        let (s, c) = schedule(serde_json::json!({"interval": "1s", "catch_up": "7d"}));
        let p = plan(&s, &c, "wf", 0, 7 * 86_400_000);
        assert_eq!(p.due.len(), MAX_RECORDS_PER_PLAN);
        assert!(
            matches!(&p.due[0].action, Action::Skip(w) if w.contains("more than the agent records at once"))
        );
        assert_eq!(p.due.last().unwrap().occurrence, 7 * 86_400_000);
    }

    #[test]
    fn a_year_of_a_per_second_cron_is_planned_from_its_newest_occurrences() {
        // Two years without an agent, a window of a year: walking every
        // second of it one by one took minutes.
        let (s, c) = schedule(serde_json::json!({
            "cron": "* * * * * *", "missed": "run_all", "catch_up": "366d"
        }));
        let now = 1_800_000_000_500;
        let p = plan(&s, &c, "wf", now - 2 * 366 * 86_400_000, now);
        assert_eq!(p.due.len(), MAX_RECORDS_PER_PLAN);
        assert_eq!(runs(&p).len(), MAX_RECORDS_PER_PLAN - 1);
        assert_eq!(runs(&p).last(), Some(&1_800_000_000_000));
        assert_eq!(runs(&p)[0], 1_800_000_000_000 - 998_000, "one second apart");
        let Action::Skip(why) = &p.due[0].action else {
            panic!("{:?}", p.due[0])
        };
        assert!(why.contains("missed: at least "), "{why}");
        assert!(p.due[0].covers > MAX_COUNTED, "{why}");
        assert_eq!(p.next_due_at, Some(1_800_000_001_000));
    }

    #[test]
    fn an_interval_summary_counts_exactly_however_long_the_absence() {
        let (s, c) = schedule(serde_json::json!({"interval": "1s", "catch_up": "366d"}));
        let now = 3 * 366 * 86_400_000;
        let p = plan(&s, &c, "wf", 0, now);
        let seconds = (now / 1000) as u64;
        assert_eq!(p.due[0].covers, seconds - (MAX_RECORDS_PER_PLAN as u64 - 1));
        let Action::Skip(why) = &p.due[0].action else {
            panic!("{:?}", p.due[0])
        };
        assert!(
            why.contains(&format!("missed: {} occurrences", p.due[0].covers)),
            "{why}"
        );
        assert_eq!(p.due.last().unwrap().occurrence, now);
        let covered: u64 = p.due.iter().map(|d| d.covers).sum();
        assert_eq!(covered, seconds, "every occurrence recorded or summed up");
    }

    #[test]
    fn jitter_delays_the_start_the_same_way_everywhere() {
        let (s, c) = schedule(serde_json::json!({"interval": "1m", "jitter": "30s"}));
        let j = jitter_of(&s, "wf", 60_000);
        assert!((0..30_000).contains(&j));
        assert_eq!(j, jitter_of(&s, "wf", 60_000));
        assert!(plan(&s, &c, "wf", 0, 60_000 + j - 1).due.is_empty());
        assert_eq!(runs(&plan(&s, &c, "wf", 0, 60_000 + j)), [60_000]);
    }

    /// What an agent would do over a timeline: it wakes at each instant in
    /// `wakes` (gaps are sleeps, suspends, crashes), plans from the last
    /// recorded occurrence and records the plan.
    fn simulate(s: &Schedule, c: &Compiled, start: i64, wakes: &[i64]) -> Vec<Due> {
        let mut recorded: Vec<Due> = Vec::new();
        for &now in wakes {
            let after = recorded.last().map_or(start, |d| d.occurrence.max(start));
            recorded.extend(plan(s, c, "wf", after, now).due);
        }
        recorded
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Over random wake-ups (sleeps, suspends, restarts): no occurrence is
        /// recorded twice, every due one is recorded (one by one, or in a
        /// summary when older than the window), runs on time always run, and
        /// missed ones run only as the policy allows.
        #[test]
        fn no_occurrence_is_doubled_or_lost(
            interval_s in 1u64..120,
            missed in 0usize..3,
            steps in proptest::collection::vec(prop_oneof![
                4 => 1i64..3_000,          // the agent's usual wake-ups
                1 => 3_000i64..600_000,    // a suspend or a crash
            ], 1..60),
        ) {
            let policy = ["skip", "run_once", "run_all"][missed];
            let (s, c) = schedule(serde_json::json!({
                "interval": format!("{interval_s}s"), "missed": policy, "catch_up": "1h"
            }));
            check_recorded(&s, &c, 1_000_000_000_000, &steps, policy)?;
        }

        /// The same over cron schedules in zones with daylight saving, the
        /// agent waking around the clock changes.
        #[test]
        fn no_cron_occurrence_is_doubled_or_lost_across_clock_changes(
            zone in 0..4usize,
            minute in prop_oneof![Just("*/5".to_owned()), Just("*/15".to_owned()), (0u32..60).prop_map(|m| m.to_string())],
            hour in prop_oneof![Just("*".to_owned()), Just("1-3".to_owned()), Just("2".to_owned())],
            missed in 0usize..3,
            transition in 0..5usize,
            offset_min in -180i64..180,
            steps in proptest::collection::vec(prop_oneof![
                4 => 1i64..120_000,
                1 => 120_000i64..7_200_000,
            ], 1..80),
        ) {
            let zones = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago"];
            // Near a change of the clocks in 2026 (spring or autumn, either hemisphere).
            // Berlin spring and autumn, New York spring, Lord Howe's half hour back,
            // Santiago autumn.
            let changes = [1_774_746_000_000i64, 1_792_890_000_000, 1_772_953_200_000, 1_775_314_800_000, 1_775_358_000_000];
            let policy = ["skip", "run_once", "run_all"][missed];
            let (s, c) = schedule(serde_json::json!({
                "cron": format!("{minute} {hour} * * *"), "timezone": zones[zone],
                "missed": policy, "catch_up": "6h"
            }));
            check_recorded(&s, &c, changes[transition] + offset_min * 60_000, &steps, policy)?;
        }
    }

    /// Simulates the wake-ups `steps` apart from `start` and checks the
    /// records: none twice or out of order; every occurrence up to the
    /// last wake recorded, or stood for by a summary (older than the
    /// window); with `skip`, runs only within the grace period.
    fn check_recorded(
        s: &Schedule,
        c: &Compiled,
        start: i64,
        steps: &[i64],
        policy: &str,
    ) -> Result<(), TestCaseError> {
        let mut wakes = Vec::new();
        let mut t = start;
        for st in steps {
            t += st;
            wakes.push(t);
        }
        let recorded = simulate(s, c, start, &wakes);
        let occ: Vec<i64> = recorded.iter().map(|d| d.occurrence).collect();
        let mut sorted = occ.clone();
        sorted.sort();
        sorted.dedup();
        prop_assert_eq!(
            &sorted,
            &occ,
            "an occurrence recorded twice or out of order"
        );
        let summaries: Vec<i64> = recorded
            .iter()
            .filter(|d| d.covers > 1)
            .map(|d| d.occurrence)
            .collect();
        let last = *wakes.last().unwrap();
        for o in c.after(start).take_while(|o| *o <= last) {
            prop_assert!(
                occ.contains(&o) || summaries.iter().any(|f| *f <= o),
                "occurrence {} lost",
                o
            );
        }
        if policy == "skip" {
            check_skip_policy(c, &recorded, start, &wakes)?;
        }
        Ok(())
    }

    fn check_skip_policy(
        c: &Compiled,
        recorded: &[Due],
        start: i64,
        wakes: &[i64],
    ) -> Result<(), TestCaseError> {
        let mut prev = start;
        for &now in wakes {
            for d in recorded
                .iter()
                .filter(|d| d.occurrence > prev && d.occurrence <= now && d.action == Action::Run)
            {
                prop_assert!(
                    now - d.occurrence <= grace_ms(c),
                    "ran {} ms late",
                    now - d.occurrence
                );
            }
            prev = now;
        }
        Ok(())
    }
}
