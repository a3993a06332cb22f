//! Starting the command, pumping its output, and stopping it on timeout or
//! cancel. The child runs in its own process group so that stopping it
//! also stops whatever it started.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use super::tail::Tail;
use super::OutputStream;

/// Bytes of each stream kept in the execution record; the whole output is
/// in the log file.
pub(crate) const TAIL_BYTES: usize = 16 * 1024;
/// Between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(20);
/// How long output may keep flowing after the child exited (grandchildren
/// holding the pipes) before the group is stopped.
const DRAIN: Duration = Duration::from_secs(2);

pub(crate) enum Ending {
    Exited(ExitStatus),
    TimedOut,
    Cancelled,
}

pub(crate) struct Finished {
    pub ending: Ending,
    pub stdout: Tail,
    pub stderr: Tail,
}

pub(crate) struct Spec<'a> {
    pub command: &'a [String],
    pub cwd: Option<&'a str>,
    /// The job's whole environment: nothing else of ours is passed on.
    pub env: Vec<(OsString, OsString)>,
    pub stdin: Vec<u8>,
    pub timeout: Option<Duration>,
    pub log: &'a Path,
    /// Clear texts masked wherever the output goes (log, tails, sink).
    pub secrets: &'a [String],
}

use super::OutputSink as Sink;

pub(crate) fn run(spec: Spec<'_>, cancel: &AtomicBool, sink: Sink) -> std::io::Result<Finished> {
    let mut cmd =
        super::launch::command(&spec.command[0], &spec.command[1..], &spec.env, spec.cwd)?;
    cmd.env_clear()
        .envs(spec.env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    if let Some(cwd) = spec.cwd {
        cmd.current_dir(cwd);
    }
    let log = Arc::new(Mutex::new(Log::new(
        flowkeep_store::private::create_new(spec.log)?,
        LOG_HEAD_BYTES,
        LOG_TAIL_BYTES,
    )));
    let mut child = cmd.spawn()?;
    let group = Pid::from_raw(child.id() as i32);

    let mut stdin = child.stdin.take().expect("piped");
    let input = spec.stdin;
    // A child that never reads stdin must not block us: write on a thread
    // and ignore a closed pipe.
    std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });

    let (done_tx, done_rx) = mpsc::channel();
    let out = pump(
        child.stdout.take().expect("piped"),
        OutputStream::Stdout,
        log.clone(),
        sink.clone(),
        done_tx.clone(),
        crate::secrets::masker::Masker::new(spec.secrets),
    );
    let err = pump(
        child.stderr.take().expect("piped"),
        OutputStream::Stderr,
        log.clone(),
        sink,
        done_tx,
        crate::secrets::masker::Masker::new(spec.secrets),
    );

    let deadline = spec.timeout.map(|t| Instant::now() + t);
    let ending = loop {
        if let Some(status) = child.try_wait()? {
            break Ending::Exited(status);
        }
        if cancel.load(Ordering::SeqCst) {
            stop(&mut child, group);
            break Ending::Cancelled;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            stop(&mut child, group);
            break Ending::TimedOut;
        }
        std::thread::sleep(POLL);
    };

    // Both pumps end when every holder of the pipes is gone.
    let mut open = 2;
    let until = Instant::now() + DRAIN;
    while open > 0 {
        match done_rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(()) => open -= 1,
            Err(_) => {
                // Something the child started still holds its output.
                let _ = killpg(group, Signal::SIGKILL);
                while open > 0 && done_rx.recv_timeout(GRACE).is_ok() {
                    open -= 1;
                }
                break;
            }
        }
    }
    log.lock().unwrap_or_else(|p| p.into_inner()).finish();
    let stdout = take(out);
    let stderr = take(err);
    Ok(Finished {
        ending,
        stdout,
        stderr,
    })
}

/// SIGTERM to the group, then SIGKILL after the grace period.
fn stop(child: &mut Child, group: Pid) {
    let _ = killpg(group, Signal::SIGTERM);
    let until = Instant::now() + GRACE;
    while Instant::now() < until {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(POLL);
    }
    let _ = killpg(group, Signal::SIGKILL);
    let _ = child.wait();
}

type Pumped = Arc<Mutex<Tail>>;

fn pump(
    mut from: impl Read + Send + 'static,
    stream: OutputStream,
    log: Arc<Mutex<Log>>,
    sink: Sink,
    done: mpsc::Sender<()>,
    mut masker: Option<crate::secrets::masker::Masker>,
) -> Pumped {
    let tail = Arc::new(Mutex::new(Tail::new(TAIL_BYTES)));
    let kept = tail.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        // The log gets whole lines, so that stdout and stderr lines never
        // cut into each other there; the live sink gets bytes as they come.
        let mut line = Vec::new();
        loop {
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    // A job's secrets never reach its recorded output.
                    let masked;
                    let chunk = match masker.as_mut() {
                        Some(m) => {
                            masked = m.feed(&buf[..n]);
                            &masked[..]
                        }
                        None => &buf[..n],
                    };
                    sink(stream, chunk);
                    kept.lock().unwrap_or_else(|p| p.into_inner()).push(chunk);
                    line.extend_from_slice(chunk);
                    let complete = match line.iter().rposition(|&b| b == b'\n') {
                        Some(i) => i + 1,
                        None if line.len() >= MAX_LOG_LINE => line.len(),
                        None => 0,
                    };
                    if complete > 0 {
                        write_log(&log, &line[..complete]);
                        line.drain(..complete);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        if let Some(rest) = masker.as_mut().map(|m| m.finish()) {
            if !rest.is_empty() {
                sink(stream, &rest);
                kept.lock().unwrap_or_else(|p| p.into_inner()).push(&rest);
                line.extend_from_slice(&rest);
            }
        }
        if !line.is_empty() {
            write_log(&log, &line);
        }
        let _ = done.send(());
    });
    tail
}

/// A line longer than this goes to the log in pieces.
const MAX_LOG_LINE: usize = 64 * 1024;

fn write_log(log: &Mutex<Log>, bytes: &[u8]) {
    log.lock().unwrap_or_else(|p| p.into_inner()).line(bytes);
}

/// `output.log` keeps at most about this much: the first `LOG_HEAD_BYTES`
/// and the last `LOG_TAIL_BYTES`, with one line marking the cut between.
pub(crate) const LOG_HEAD_BYTES: u64 = 5 * 1024 * 1024;
pub(crate) const LOG_TAIL_BYTES: u64 = 5 * 1024 * 1024;

/// The run's `output.log`, capped: while the whole output fits in head +
/// tail it goes to the file as it comes (so the file can be followed
/// live). Once it would not, the file is cut back to the head and the last
/// lines are kept in memory, in a ring of whole lines, to be written after
/// a `[flowkeep: N bytes cut]` line when the run ends.
pub(crate) struct Log {
    file: File,
    head_cap: u64,
    tail_cap: u64,
    /// Bytes in the file.
    written: u64,
    /// End of the last whole line that fits in the head.
    head_end: u64,
    /// The head is full: lines from here on are tail candidates.
    head_full: bool,
    /// Lines after the head, newest last, at most `tail_cap` bytes.
    tail: VecDeque<Vec<u8>>,
    tail_bytes: u64,
    /// Bytes after the head that are neither in the file nor the ring.
    cut: u64,
    capped: bool,
    finished: bool,
}

impl Log {
    pub(crate) fn new(file: File, head_cap: u64, tail_cap: u64) -> Log {
        Log {
            file,
            head_cap,
            tail_cap,
            written: 0,
            head_end: 0,
            head_full: false,
            tail: VecDeque::new(),
            tail_bytes: 0,
            cut: 0,
            capped: false,
            finished: false,
        }
    }

    /// One whole line (or a piece of a very long one).
    pub(crate) fn line(&mut self, bytes: &[u8]) {
        if self.finished {
            return;
        }
        let len = bytes.len() as u64;
        if !self.head_full && self.head_end + len <= self.head_cap {
            self.head_end += len;
            self.write(bytes);
            return;
        }
        self.head_full = true;
        self.tail.push_back(bytes.to_vec());
        self.tail_bytes += len;
        while self.tail_bytes > self.tail_cap {
            let Some(old) = self.tail.pop_front() else {
                break;
            };
            self.tail_bytes -= old.len() as u64;
            self.cut += old.len() as u64;
        }
        if self.capped {
            return;
        }
        if self.written + len <= self.head_cap + self.tail_cap {
            self.write(bytes);
            return;
        }
        // From now on the file holds the head only, until `finish`.
        self.capped = true;
        let _ = self.file.set_len(self.head_end);
        let _ = self.file.seek(SeekFrom::Start(self.head_end));
        self.written = self.head_end;
    }

    /// The run ended: writes the cut marker and the kept tail, if the output
    /// was cut. Later lines (a straggler still writing) are dropped.
    pub(crate) fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        if self.capped {
            let marker = format!("[flowkeep: {} bytes cut]\n", self.cut);
            self.write(marker.as_bytes());
            let tail = std::mem::take(&mut self.tail);
            for line in &tail {
                self.write(line);
            }
        }
        let _ = self.file.flush();
    }

    fn write(&mut self, bytes: &[u8]) {
        // A full disk must not stop the run; the log is best effort.
        if self.file.write_all(bytes).is_ok() {
            self.written += bytes.len() as u64;
        }
    }
}

fn take(t: Pumped) -> Tail {
    let mut guard = t.lock().unwrap_or_else(|p| p.into_inner());
    std::mem::replace(&mut *guard, Tail::new(TAIL_BYTES))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(lines: &[Vec<u8>], head: u64, tail: u64) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("output.log");
        let mut log = Log::new(
            flowkeep_store::private::create_new(&path).unwrap(),
            head,
            tail,
        );
        for l in lines {
            log.line(l);
        }
        log.finish();
        String::from_utf8(std::fs::read(&path).unwrap()).unwrap()
    }

    fn lines(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| format!("line {i:03}\n").into_bytes())
            .collect()
    }

    #[test]
    fn output_that_fits_is_kept_whole() {
        let all = lines(10); // 9 bytes each
        let text = log_of(&all, 45, 45);
        assert_eq!(
            text,
            all.concat().iter().map(|&b| b as char).collect::<String>()
        );
    }

    #[test]
    fn long_output_keeps_head_and_tail_in_whole_lines_and_marks_the_cut() {
        let all = lines(100); // 900 bytes
        let text = log_of(&all, 40, 40);
        // Head: 4 whole lines (36 bytes <= 40); tail: the last 4 (36 <= 40).
        assert_eq!(
            text,
            "line 000\nline 001\nline 002\nline 003\n[flowkeep: 828 bytes cut]\nline 096\nline 097\nline 098\nline 099\n"
        );
        assert!(text.len() <= 40 + 40 + "[flowkeep: 828 bytes cut]\n".len());
    }

    #[test]
    fn just_over_the_cap_cuts_a_little() {
        let all = lines(11); // 99 bytes, cap 90
        let text = log_of(&all, 45, 45);
        assert!(text.starts_with("line 000\n"), "{text}");
        assert!(text.ends_with("line 010\n"), "{text}");
        assert!(
            text.contains("line 004\n[flowkeep: 9 bytes cut]\nline 006\n"),
            "{text}"
        );
        let kept: usize = text.lines().filter(|l| l.starts_with("line")).count();
        assert_eq!(kept, 10, "{text}");
    }
}
