/// The last `cap` bytes of a stream, plus how many bytes went by in all.
pub(crate) struct Tail {
    buf: Vec<u8>,
    cap: usize,
    pub total: u64,
}

impl Tail {
    pub(crate) fn new(cap: usize) -> Tail {
        Tail {
            buf: Vec::with_capacity(cap.min(64 * 1024)),
            cap,
            total: 0,
        }
    }

    pub(crate) fn push(&mut self, chunk: &[u8]) {
        self.total += chunk.len() as u64;
        if chunk.len() >= self.cap {
            self.buf.clear();
            self.buf.extend_from_slice(&chunk[chunk.len() - self.cap..]);
            return;
        }
        let overflow = (self.buf.len() + chunk.len()).saturating_sub(self.cap);
        if overflow > 0 {
            self.buf.drain(..overflow);
        }
        self.buf.extend_from_slice(chunk);
    }

    pub(crate) fn truncated(&self) -> bool {
        self.total > self.buf.len() as u64
    }

    /// The kept bytes as text; a character cut at the start is replaced.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }

    /// The last non-empty line as JSON, if it is JSON that fits in a run's output
    /// (`{"result": …}` at most `MAX_JSON_DEPTH` deep): whatever a job
    /// prints, its run is recorded.
    pub(crate) fn json_result(&self) -> Option<serde_json::Value> {
        let text = self.text();
        let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
        serde_json::from_str(line.trim()).ok().filter(|v| {
            flowkeep_core::remote::json_depth(v) < flowkeep_core::remote::MAX_JSON_DEPTH
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_result_is_the_last_line_as_json_when_a_run_can_hold_it() {
        let mut t = Tail::new(1 << 16);
        t.push(b"working\n{\"ok\": [1, 2]}\n\n");
        assert_eq!(t.json_result(), Some(serde_json::json!({"ok": [1, 2]})));
        let mut deep = Tail::new(1 << 16);
        // Valid JSON, but nested deeper than a run's output may be.
        let levels = flowkeep_core::remote::MAX_JSON_DEPTH;
        deep.push(format!("{}1{}", "[".repeat(levels), "]".repeat(levels)).as_bytes());
        assert_eq!(deep.json_result(), None);
    }

    #[test]
    fn keeps_only_the_last_bytes() {
        let mut t = Tail::new(8);
        t.push(b"hello ");
        t.push(b"world!");
        assert_eq!(t.text(), "o world!");
        assert_eq!(t.total, 12);
        assert!(t.truncated());
        t.push(b"0123456789abc");
        assert_eq!(
            t.text(),
            "56789abc",
            "a chunk longer than the cap keeps its own end"
        );
        assert_eq!(t.total, 25);
    }

    #[test]
    fn result_is_the_last_line_if_json() {
        let mut t = Tail::new(1024);
        t.push(b"working\n{\"doubled\": 42}\n\n");
        assert_eq!(t.json_result(), Some(serde_json::json!({"doubled": 42})));
        t.push(b"done\n");
        assert_eq!(t.json_result(), None);
    }
}
