//! Masks a job's secrets in its output as it streams: every occurrence of
//! a secret's clear text becomes `••••`, also when it arrives split across
//! reads (the last few bytes are held back until the next read or the end).

use flowkeep_core::secret::MASK;

pub struct Masker {
    secrets: Vec<Vec<u8>>,
    hold: usize,
    buf: Vec<u8>,
}

impl Masker {
    /// `None` when there is nothing to mask (the output passes untouched).
    pub fn new(secrets: &[String]) -> Option<Masker> {
        let mut secrets: Vec<Vec<u8>> = secrets
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| s.as_bytes().to_vec())
            .collect();
        if secrets.is_empty() {
            return None;
        }
        // Longest first, so a secret that contains another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        let hold = secrets.iter().map(Vec::len).max().unwrap_or(1) - 1;
        Some(Masker {
            secrets,
            hold,
            buf: Vec::new(),
        })
    }

    /// Takes a chunk; returns what can be passed on now.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.buf.extend_from_slice(chunk);
        self.replace();
        let keep = self.hold.min(self.buf.len());
        let out_len = self.buf.len() - keep;
        self.buf.drain(..out_len).collect()
    }

    /// The rest, at the end of the stream.
    pub fn finish(&mut self) -> Vec<u8> {
        self.replace();
        std::mem::take(&mut self.buf)
    }

    fn replace(&mut self) {
        for s in &self.secrets {
            let mut i = 0;
            while i + s.len() <= self.buf.len() {
                if self.buf[i..i + s.len()] == s[..] {
                    self.buf.splice(i..i + s.len(), MASK.bytes());
                    i += MASK.len();
                } else {
                    i += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through(secrets: &[&str], chunks: &[&str]) -> String {
        let s: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
        let mut m = Masker::new(&s).unwrap();
        let mut out = Vec::new();
        for c in chunks {
            out.extend(m.feed(c.as_bytes()));
        }
        out.extend(m.finish());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_secret_is_masked_also_when_split_across_reads() {
        assert_eq!(through(&["hunter2"], &["pw=hunter2\n"]), "pw=••••\n");
        assert_eq!(
            through(&["hunter2"], &["pw=hun", "ter2 and hunter2"]),
            "pw=•••• and ••••"
        );
        assert_eq!(
            through(&["hunter2"], &["h", "u", "n", "t", "e", "r", "2", "!"]),
            "••••!"
        );
        assert_eq!(
            through(&["abc", "abcdef"], &["xabcdefx abc"]),
            "x••••x ••••"
        );
        assert_eq!(through(&["zzz"], &["nothing here"]), "nothing here");
        assert!(Masker::new(&[String::new()]).is_none());
    }
}
