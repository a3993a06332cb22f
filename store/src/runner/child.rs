//! Starting the command, pumping its output, and stopping it on timeout or
//! cancel. The child runs in its own process group so that stopping it
//! also stops whatever it started.

use std::fs::File;
use std::io::{Read, Write};
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
    pub env: Vec<(String, String)>,
    pub stdin: Vec<u8>,
    pub timeout: Option<Duration>,
    pub log: &'a Path,
}

use super::OutputSink as Sink;

pub(crate) fn run(spec: Spec<'_>, cancel: &AtomicBool, sink: Sink) -> std::io::Result<Finished> {
    let mut cmd =
        super::launch::command(&spec.command[0], &spec.command[1..], &spec.env, spec.cwd)?;
    cmd.envs(spec.env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    if let Some(cwd) = spec.cwd {
        cmd.current_dir(cwd);
    }
    let log = Arc::new(Mutex::new(File::create(spec.log)?));
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
    );
    let err = pump(
        child.stderr.take().expect("piped"),
        OutputStream::Stderr,
        log,
        sink,
        done_tx,
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
    log: Arc<Mutex<File>>,
    sink: Sink,
    done: mpsc::Sender<()>,
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
                    let chunk = &buf[..n];
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
        if !line.is_empty() {
            write_log(&log, &line);
        }
        let _ = done.send(());
    });
    tail
}

/// A line longer than this goes to the log in pieces.
const MAX_LOG_LINE: usize = 64 * 1024;

fn write_log(log: &Mutex<File>, bytes: &[u8]) {
    if let Ok(mut f) = log.lock() {
        let _ = f.write_all(bytes);
    }
}

fn take(t: Pumped) -> Tail {
    let mut guard = t.lock().unwrap_or_else(|p| p.into_inner());
    std::mem::replace(&mut *guard, Tail::new(TAIL_BYTES))
}
