//! Reading a run's `output.log` while it is written: a piece at a time from a
//! byte offset, for the UI's live output and `flowkeep exec logs --follow`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use flowkeep_core::commands::{GetRunOutput, Input, RunId, RunOutput};

use super::rundir;
use crate::{Error, Result, RunService};

const DEFAULT_LIMIT: u32 = 64 * 1024;

impl RunService<'_> {
    /// The piece of a run's output from `from`. Only this device has the
    /// output of the runs it ran; another device's run is not found here.
    pub fn output(&self, mut input: GetRunOutput) -> Result<RunOutput> {
        input.check()?;
        // The status first: a run recorded as ended has its whole log on
        // disk (the log is closed before the end is recorded).
        let run = self.get(RunId {
            id: input.id.clone(),
        })?;
        let ended = run.status.is_terminal();
        let not_here = || Error::NotFound {
            entity: "output of run",
            id: format!("{} (its output is kept on the device that ran it)", run.id),
        };
        if run.device_id != self.device_id() {
            return Err(not_here());
        }
        let path = self
            .runs_dir()
            .and_then(|dir| rundir::path_of(dir, &run.id))
            .ok_or_else(not_here)?
            .join("output.log");
        let from = input.from.unwrap_or(0);
        let limit = input.limit.unwrap_or(DEFAULT_LIMIT) as u64;
        let mut file = match File::open(&path) {
            Ok(f) => f,
            // Recorded without one (imported, or started and finished
            // through the API by a program of its own).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && ended => {
                return Err(Error::NotFound {
                    entity: "output of run",
                    id: format!("{} (it was recorded without an output log)", run.id),
                })
            }
            // Queued: its log appears when it starts.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(RunOutput {
                    text: String::new(),
                    from,
                    next: from,
                    size: 0,
                    cut: false,
                    finished: false,
                })
            }
            Err(e) => return Err(e.into()),
        };
        let size = file.metadata()?.len();
        // A log that outgrew its cap is cut back to its head while the run
        // goes on; the reader goes on from there.
        let (start, cut) = if from > size {
            (size, true)
        } else {
            (from, false)
        };
        file.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::new();
        file.take(limit).read_to_end(&mut buf)?;
        let at_end = start + buf.len() as u64 >= size;
        let keep = whole_chars(&buf, ended && at_end);
        let next = start + keep as u64;
        buf.truncate(keep);
        Ok(RunOutput {
            text: String::from_utf8_lossy(&buf).into_owned(),
            from: start,
            next,
            size,
            cut,
            finished: ended && next >= size,
        })
    }
}

/// How many bytes of `buf` to hand out: all of them, but a UTF-8 character
/// cut by the end of `buf` waits for the next piece, unless `last` (the log
/// is complete: then it is shown as it is, replaced).
fn whole_chars(buf: &[u8], last: bool) -> usize {
    if last {
        return buf.len();
    }
    match std::str::from_utf8(buf) {
        Ok(_) => buf.len(),
        // Incomplete at the end: stop before it. Invalid bytes elsewhere
        // are replaced when decoded; only the unfinished tail waits.
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        Err(_) => {
            // Invalid in the middle: find whether the very end is an
            // unfinished character (at most 3 bytes back).
            let tail_start = buf.len().saturating_sub(3);
            (tail_start..buf.len())
                .find(|&i| {
                    std::str::from_utf8(&buf[i..])
                        .is_err_and(|e| e.valid_up_to() == 0 && e.error_len().is_none())
                })
                .unwrap_or(buf.len())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_character_cut_by_the_end_of_a_piece_waits_for_the_next() {
        let e_acute = "é".as_bytes(); // 2 bytes
        let mut buf = b"caf".to_vec();
        buf.push(e_acute[0]);
        assert_eq!(whole_chars(&buf, false), 3);
        assert_eq!(
            whole_chars(&buf, true),
            4,
            "the log is complete: shown as it is"
        );
        buf.push(e_acute[1]);
        assert_eq!(whole_chars(&buf, false), 5);
        let mut bad = b"a\xFFb".to_vec();
        assert_eq!(
            whole_chars(&bad, false),
            3,
            "invalid bytes in the middle are replaced, not held"
        );
        bad.extend_from_slice(&"€".as_bytes()[..2]);
        assert_eq!(
            whole_chars(&bad, false),
            3,
            "an unfinished euro sign after invalid bytes waits"
        );
    }
}
