//! The agent: runs the schedules this device owns (`flowkeep agent`).
//!
//! Each pass reads the wall clock, asks `core::schedule::plan` what is due
//! since each schedule's cursor (the later of the moment the schedule took
//! effect and the last occurrence recorded) and records every due
//! occurrence exactly once: the run's start record carries the occurrence,
//! checked against the log in the same transaction, so a second agent, a
//! restart after a crash or a retry never records it twice; one that was
//! never recorded is found again on the next pass, so none is lost. It
//! sleeps at most a second between passes and re-reads the wall clock each
//! time: a suspend or a clock jump shows up as occurrences that are late,
//! which the missed-run policy then decides.

mod lock;

pub use lock::{status, AgentLock, AgentStatus};

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use flowkeep_core::schedule::{self, Action, Compiled, Overlap};

use crate::service::ScheduleEntry;
use crate::{Error, Result, RunRequest, Service};

/// Longest sleep between passes: how soon a suspend, a clock jump or a
/// changed schedule is noticed.
pub const MAX_SLEEP: Duration = Duration::from_secs(1);

struct Tracked {
    entry: ScheduleEntry,
    compiled: Option<Compiled>,
    /// When the next occurrence is due; `None`: plan at the next pass.
    next_due: Option<i64>,
}

struct Job {
    cancel: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

/// What the agent did, for its log and for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    Started {
        workflow_id: String,
        run_id: String,
        occurrence: i64,
    },
    Skipped {
        workflow_id: String,
        occurrence: i64,
        reason: String,
    },
    Failed {
        workflow_id: String,
        occurrence: i64,
        error: String,
    },
}

pub struct Agent {
    svc: Arc<Service>,
    tracked: HashMap<String, Tracked>,
    seen_seq: Option<i64>,
    jobs: Arc<Mutex<HashMap<String, Vec<Job>>>>,
    /// One queue per workflow for `overlap: queue`.
    queues: HashMap<String, Arc<Mutex<()>>>,
    stop: Arc<AtomicBool>,
    notes: Notes,
}

impl Agent {
    pub fn new(svc: Arc<Service>, stop: Arc<AtomicBool>) -> Agent {
        Agent {
            svc,
            tracked: HashMap::new(),
            seen_seq: None,
            jobs: Default::default(),
            queues: HashMap::new(),
            stop,
            notes: Arc::new(log_note),
        }
    }

    /// Also tells `f` what the agent does.
    pub fn on_note(mut self, f: impl Fn(Note) + Send + Sync + 'static) -> Agent {
        self.notes = Arc::new(move |n| {
            log_note(n.clone());
            f(n)
        });
        self
    }

    /// Runs passes until `stop` is set, then cancels the runs it started
    /// (recorded `cancelled`) and waits for them to be recorded.
    pub fn run(&mut self) -> Result<()> {
        let mut last_pass = self.svc.now_ms();
        while !self.stop.load(Ordering::Relaxed) {
            let now = self.svc.now_ms();
            if now < last_pass || now - last_pass > MAX_SLEEP.as_millis() as i64 + 2_000 {
                tracing::info!(
                    gap_ms = now - last_pass,
                    "the wall clock moved by more than the agent slept (suspend or clock change): re-planning"
                );
                for t in self.tracked.values_mut() {
                    t.next_due = None;
                }
            }
            last_pass = now;
            let sleep = self.pass()?;
            let until = std::time::Instant::now() + sleep;
            while !self.stop.load(Ordering::Relaxed) {
                let left = until.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                std::thread::sleep(left.min(Duration::from_millis(100)));
            }
        }
        self.shutdown();
        Ok(())
    }

    /// Waits for the runs this agent started to end (queued ones included).
    pub fn drain(&mut self) {
        for j in self.take_jobs() {
            let _ = j.handle.join();
        }
    }

    /// Cancels the runs this agent started and waits for them.
    pub fn shutdown(&mut self) {
        let jobs = self.take_jobs();
        for j in &jobs {
            j.cancel.store(true, Ordering::Relaxed);
        }
        for j in jobs {
            let _ = j.handle.join();
        }
    }

    fn take_jobs(&self) -> Vec<Job> {
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .flat_map(|(_, v)| v)
            .collect()
    }

    /// One pass at the service clock's now. Returns how long to sleep.
    pub fn pass(&mut self) -> Result<Duration> {
        self.refresh()?;
        let now = self.svc.now_ms();
        let me = self.svc.device_id().to_owned();
        let mut next: Option<i64> = None;
        // Planned under the borrow of the tracked set, acted on after it:
        // a pass over 10,000 schedules with nothing due allocates nothing.
        let mut todo = Vec::new();
        for (id, t) in self.tracked.iter_mut() {
            let runs_here = t.entry.approved
                && !t.entry.schedule.paused
                && t.entry.schedule.owner.as_deref() == Some(me.as_str());
            let Some(compiled) = t.compiled.as_ref().filter(|_| runs_here) else {
                continue;
            };
            if t.next_due.is_some_and(|d| d > now) {
                next = min(next, t.next_due);
                continue;
            }
            let p = schedule::plan(&t.entry.schedule, compiled, id, t.entry.cursor(), now);
            t.next_due = p.next_due_at;
            next = min(next, p.next_due_at);
            if let Some(last) = p.due.last() {
                t.entry.last_occurrence = Some(last.occurrence);
            }
            if !p.due.is_empty() {
                todo.push((t.entry.clone(), p.due));
            }
        }
        for (entry, due) in todo {
            let mut runs = Vec::new();
            for d in due {
                match d.action {
                    Action::Skip(reason) => self.skip(&entry, d.occurrence, &reason)?,
                    Action::Run => runs.push(d.occurrence),
                }
            }
            if !runs.is_empty() {
                self.start(&entry, runs)?;
            }
        }
        self.reap();
        let sleep = next.map_or(MAX_SLEEP, |n| {
            Duration::from_millis(
                (n - self.svc.now_ms()).clamp(5, MAX_SLEEP.as_millis() as i64) as u64,
            )
        });
        Ok(sleep)
    }

    /// Reloads the schedules that changed since the last pass (all at the
    /// first): edits, approvals, handovers, deletions, merges.
    fn refresh(&mut self) -> Result<()> {
        let svc = self.svc.schedules();
        let entries = match self.seen_seq {
            None => {
                let (_, last) = svc.changed_since(i64::MAX)?;
                self.seen_seq = Some(last);
                self.tracked.clear();
                svc.entries()?
            }
            Some(seq) => {
                let (ids, last) = svc.changed_since(seq)?;
                self.seen_seq = Some(last);
                if ids.is_empty() {
                    return Ok(());
                }
                for id in &ids {
                    self.tracked.remove(id);
                }
                svc.entries_of(&ids)?
            }
        };
        for entry in entries {
            let compiled = match entry.schedule.compile() {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(workflow = %entry.workflow_id, "schedule not used: {e}");
                    None
                }
            };
            self.tracked.insert(
                entry.workflow_id.clone(),
                Tracked {
                    entry,
                    compiled,
                    next_due: None,
                },
            );
        }
        Ok(())
    }

    fn skip(&self, entry: &ScheduleEntry, occurrence: i64, reason: &str) -> Result<()> {
        if self
            .svc
            .schedules()
            .skip(&entry.workflow_id, occurrence, reason)?
        {
            (self.notes)(Note::Skipped {
                workflow_id: entry.workflow_id.clone(),
                occurrence,
                reason: reason.to_owned(),
            });
        }
        Ok(())
    }

    /// Starts the runs one pass found due for a workflow. Several (a
    /// catch-up, or one late and one on time) run one after another in
    /// order; `overlap` decides about runs already going before them.
    fn start(&mut self, entry: &ScheduleEntry, occurrences: Vec<i64>) -> Result<()> {
        let going = self.svc.schedules().going(&entry.workflow_id)?;
        let overlap = entry.schedule.overlap;
        let mut queue = None;
        if !going.is_empty() {
            match overlap {
                Overlap::Skip => {
                    let reason =
                        format!("run {} was still going (overlap: skip)", going.join(", "));
                    for o in occurrences {
                        self.skip(entry, o, &reason)?;
                    }
                    return Ok(());
                }
                Overlap::Allow => {}
                Overlap::CancelPrevious => {
                    // Only runs this agent started can be stopped from here;
                    // one started by hand runs on beside the new one.
                    if let Some(jobs) = self
                        .jobs
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get(&entry.workflow_id)
                    {
                        for j in jobs {
                            j.cancel.store(true, Ordering::Relaxed);
                        }
                    }
                }
                Overlap::Queue => {}
            }
        }
        if overlap == Overlap::Queue {
            queue = Some(
                self.queues
                    .entry(entry.workflow_id.clone())
                    .or_default()
                    .clone(),
            );
        }
        let cancel = Arc::new(AtomicBool::new(false));
        let (svc, wf, notes, stop) = (
            self.svc.clone(),
            entry.workflow_id.clone(),
            self.notes.clone(),
            self.stop.clone(),
        );
        let job_cancel = cancel.clone();
        let handle = std::thread::spawn(move || {
            let _turn = queue
                .as_ref()
                .map(|q| q.lock().unwrap_or_else(|p| p.into_inner()));
            if queue.is_some() {
                // Wait for runs started elsewhere (by hand) too.
                while !stop.load(Ordering::Relaxed)
                    && svc.schedules().going(&wf).is_ok_and(|g| !g.is_empty())
                {
                    std::thread::sleep(Duration::from_millis(200));
                }
                if stop.load(Ordering::Relaxed) {
                    // Not recorded: the next agent finds it missed.
                    return;
                }
            }
            for occurrence in occurrences {
                if stop.load(Ordering::Relaxed) || job_cancel.load(Ordering::Relaxed) {
                    // Not recorded: the next pass or agent finds it missed.
                    return;
                }
                run_one(&svc, &wf, occurrence, &job_cancel, notes.clone());
            }
        });
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(entry.workflow_id.clone())
            .or_default()
            .push(Job { cancel, handle });
        Ok(())
    }

    /// Forgets runs that ended.
    fn reap(&self) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        for list in jobs.values_mut() {
            list.retain(|j| !j.handle.is_finished());
        }
        jobs.retain(|_, v| !v.is_empty());
    }
}

type Notes = Arc<dyn Fn(Note) + Send + Sync>;

fn run_one(svc: &Service, wf: &str, occurrence: i64, cancel: &AtomicBool, notes: Notes) {
    let started = Arc::new(AtomicBool::new(false));
    let (flag, told) = (started.clone(), notes.clone());
    let on_start: crate::OnStart = Box::new(move |run| {
        flag.store(true, Ordering::Relaxed);
        told(Note::Started {
            workflow_id: run.workflow_id.clone(),
            run_id: run.id.clone(),
            occurrence,
        });
    });
    let req = RunRequest {
        workflow_id: wf.to_owned(),
        overrides: vec![],
        trigger: "schedule".to_owned(),
        on_start: Some(on_start),
        occurrence: Some(occurrence),
    };
    let sink: crate::OutputSink = Arc::new(|_, _| {});
    match svc.runs().run(req, cancel, sink) {
        Ok(_) => {}
        // Another agent recorded it first.
        Err(Error::Conflict(_)) if !started.load(Ordering::Relaxed) => {}
        Err(e) if !started.load(Ordering::Relaxed) => {
            // Refused before it started (an invalid config, a missing
            // approval): recorded as skipped with why, so it is visible and
            // not retried at every pass.
            let reason = format!("could not start: {e}");
            match svc.schedules().skip(wf, occurrence, &reason) {
                Ok(true) => notes(Note::Skipped {
                    workflow_id: wf.to_owned(),
                    occurrence,
                    reason,
                }),
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(workflow = %wf, "cannot record a skipped occurrence: {e}")
                }
            }
        }
        Err(e) => notes(Note::Failed {
            workflow_id: wf.to_owned(),
            occurrence,
            error: e.to_string(),
        }),
    }
}

fn min(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn log_note(n: Note) {
    match n {
        Note::Started {
            workflow_id,
            run_id,
            occurrence,
        } => {
            tracing::info!(workflow = %workflow_id, run = %run_id, occurrence, "scheduled run started")
        }
        Note::Skipped {
            workflow_id,
            occurrence,
            reason,
        } => tracing::info!(workflow = %workflow_id, occurrence, %reason, "occurrence skipped"),
        Note::Failed {
            workflow_id,
            occurrence,
            error,
        } => {
            tracing::warn!(workflow = %workflow_id, occurrence, %error, "scheduled run not recorded")
        }
    }
}
