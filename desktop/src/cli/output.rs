//! What a CLI command answers: a result rendered for people and as JSON,
//! or a failure in the one error shape.

use std::borrow::Cow;

use flowkeep_core::{ErrorBody, ErrorCode, FieldError};

/// What went wrong, in the DESIGN.md error shape.
#[derive(Debug)]
pub enum Failure {
    Store(flowkeep_app::Error),
    /// Input the CLI could not read (malformed JSON, bad date, ...).
    Input(Vec<FieldError>),
    Other(anyhow::Error),
}

impl From<flowkeep_app::Error> for Failure {
    fn from(e: flowkeep_app::Error) -> Self {
        Failure::Store(e)
    }
}

impl From<FieldError> for Failure {
    fn from(e: FieldError) -> Self {
        Failure::Input(vec![e])
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Other(e.into())
    }
}

impl Failure {
    pub fn body(&self) -> ErrorBody {
        match self {
            Failure::Store(e) => e.body(),
            Failure::Input(fields) => ErrorBody {
                code: ErrorCode::InvalidInput,
                message: format!(
                    "invalid input: {}",
                    fields
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                fields: fields.clone(),
            },
            Failure::Other(e) => ErrorBody {
                code: ErrorCode::Internal,
                message: format!("{e:#}"),
                fields: vec![],
            },
        }
    }
}

/// A command's result: JSON for `--json`, text for people, and the exit code.
pub struct Rendered {
    pub json: serde_json::Value,
    pub text: String,
    pub exit: u8,
}

impl Rendered {
    pub fn ok(json: serde_json::Value, text: String) -> Rendered {
        Rendered {
            json,
            text,
            exit: 0,
        }
    }
}

/// Text as it may reach a terminal: every control character but line
/// breaks and tabs, and every Unicode control that reorders what is shown,
/// written escaped (`\u{1b}`) rather than sent. Names, errors and run
/// output can come from another device; an escape sequence in them must
/// not drive the terminal of whoever reads them (clear it, retitle it, hide
/// or fake a line).
pub fn printable(text: &str) -> Cow<'_, str> {
    let plain = |c: char| c == '\n' || c == '\t' || !(c.is_control() || reorders(c));
    // A carriage return ends a line written on Windows; alone, it moves
    // back over the line shown.
    let mut chars = text.chars().peekable();
    let shown_as_is = |c: char, next: Option<&char>| plain(c) || (c == '\r' && next == Some(&'\n'));
    let mut out: Option<String> = None;
    let mut at = 0;
    while let Some(c) = chars.next() {
        if !shown_as_is(c, chars.peek()) {
            let out = out.get_or_insert_with(|| {
                let mut s = String::with_capacity(text.len() + 16);
                s.push_str(&text[..at]);
                s
            });
            out.extend(c.escape_unicode());
        } else if let Some(out) = &mut out {
            out.push(c);
        }
        at += c.len_utf8();
    }
    out.map_or(Cow::Borrowed(text), Cow::Owned)
}

/// Bidirectional formatting characters: they reorder the text after them.
fn reorders(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn escapes_reach_a_terminal_as_text_and_lines_stay_lines() {
        assert_eq!(printable("plain\tand\nlines"), "plain\tand\nlines");
        assert_eq!(
            printable("a\u{1b}[2Jb\u{7}\r\u{9b}c"),
            "a\\u{1b}[2Jb\\u{7}\\u{d}\\u{9b}c"
        );
        assert_eq!(printable("x\u{202e}gnp.exe"), "x\\u{202e}gnp.exe");
        assert_eq!(printable("ünïcödé ✓"), "ünïcödé ✓");
        assert_eq!(printable("windows\r\nlines\r"), "windows\r\nlines\\u{d}");
    }
}
