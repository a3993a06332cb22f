//! YAML text for workflow files: the canonical form written (keys sorted,
//! block style, one value per line, so a one-field edit is a one-line
//! diff), and reading what a person wrote (comments, anchors, aliases and
//! `<<` merge keys allowed), with the line of a problem.

use serde_json::Value;

/// The first line of every file written.
pub const HEADER: &str =
    "# A Flowkeep workflow. Edit it, then: flowkeep workflow import --dir <this folder>\n";

/// The canonical text of a document.
pub fn write(doc: &Value) -> String {
    // serde_json's map keeps keys sorted, so the order is the same on
    // every export.
    let body = serde_yaml_ng::to_string(doc).expect("a JSON value is valid YAML");
    format!("{HEADER}{body}")
}

/// A problem in a file's text, with where it is (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: Option<usize>,
    pub message: String,
}

/// Reads a file's text as a JSON-like value: anchors and merge keys
/// resolved; keys must be text.
pub fn read(text: &str) -> Result<Value, SyntaxError> {
    let mut v: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|e| SyntaxError {
        line: e.location().map(|l| l.line()),
        message: e.to_string(),
    })?;
    v.apply_merge().map_err(|e| SyntaxError {
        line: e.location().map(|l| l.line()),
        message: e.to_string(),
    })?;
    serde_json::to_value(&v).map_err(|e| SyntaxError {
        line: None,
        message: format!("not a workflow document: {e}"),
    })
}

/// The line (1-based) where a field path (`config.values.n`,
/// `config.fields[2].max`, `tags[1]`) is written in block-style YAML, or
/// the nearest enclosing key found. Best effort: a value written in flow
/// style (`{a: 1}`) is reported at its key's line.
pub fn line_of(text: &str, path: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found: Option<usize> = None;
    // The block the next segment is looked for in: lines [start, end) with
    // indentation greater than `indent`.
    let (mut start, mut end, mut indent) = (0usize, lines.len(), -1i64);
    for seg in segments(path) {
        let hit = match &seg {
            Segment::Key(key) => find_key(&lines, start, end, indent, key),
            Segment::Index(i) => find_item(&lines, start, end, indent, *i),
        };
        let Some((at, col)) = hit else { break };
        found = Some(at + 1);
        indent = col;
        match seg {
            // A key's block goes on while lines are deeper, or are items of
            // a sequence written at the key's own column.
            Segment::Key(_) => {
                start = at + 1;
                end = block_end(&lines, start, col, true);
            }
            // An item's block ends at the next item; its first key sits on
            // the dash's line.
            Segment::Index(_) => {
                end = block_end(&lines, at + 1, col, false);
                start = at;
            }
        }
    }
    found
}

enum Segment {
    Key(String),
    Index(usize),
}

fn segments(path: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            if i > 0 {
                out.push(Segment::Key(rest[..i].to_owned()));
            }
            rest = &rest[i..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let Some(close) = stripped.find(']') else {
                    break;
                };
                if let Ok(n) = stripped[..close].parse() {
                    out.push(Segment::Index(n));
                }
                rest = &stripped[close + 1..];
            }
        } else if !rest.is_empty() {
            out.push(Segment::Key(rest.to_owned()));
        }
    }
    out
}

fn indent_of(line: &str) -> i64 {
    (line.len() - line.trim_start_matches(' ').len()) as i64
}

fn is_content(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && !t.starts_with('#')
}

/// The first line at or after `start` whose indentation is at most `col`
/// (the end of the block that began before `start`).
fn block_end(lines: &[&str], start: usize, col: i64, items_at_col: bool) -> usize {
    (start..lines.len())
        .find(|&i| {
            let l = lines[i];
            is_content(l)
                && (indent_of(l) < col
                    || (indent_of(l) == col && !(items_at_col && l.trim_start().starts_with("- "))))
        })
        .unwrap_or(lines.len())
}

/// `key:` inside the block, at its first level; returns the line and the
/// key's column.
fn find_key(
    lines: &[&str],
    start: usize,
    end: usize,
    parent: i64,
    key: &str,
) -> Option<(usize, i64)> {
    let mut level: Option<i64> = None;
    for (i, line) in lines.iter().enumerate().take(end).skip(start) {
        if !is_content(line) {
            continue;
        }
        // A key after a list dash (`- key: v`) sits at the dash's column + 2.
        let mut col = indent_of(line);
        let mut body = line.trim_start();
        while let Some(rest) = body.strip_prefix("- ") {
            col += 2 + (rest.len() - rest.trim_start().len()) as i64;
            body = rest.trim_start();
        }
        if col <= parent {
            continue;
        }
        let level = *level.get_or_insert(col);
        if col != level {
            continue;
        }
        let bare = body.strip_prefix(key).is_some_and(|r| r.starts_with(':'));
        let quoted = [format!("\"{key}\":"), format!("'{key}':")]
            .iter()
            .any(|q| body.starts_with(q.as_str()));
        if bare || quoted {
            return Some((i, col));
        }
    }
    None
}

/// The `n`-th list item (`- `) inside the block.
fn find_item(
    lines: &[&str],
    start: usize,
    end: usize,
    parent: i64,
    n: usize,
) -> Option<(usize, i64)> {
    let mut level: Option<i64> = None;
    let mut seen = 0;
    for (i, line) in lines.iter().enumerate().take(end).skip(start) {
        if !is_content(line) {
            continue;
        }
        let col = indent_of(line);
        // A sequence under a key may sit at the key's own column.
        if col < parent || (col == parent && !line.trim_start().starts_with("- ")) {
            continue;
        }
        if !line.trim_start().starts_with('-') {
            continue;
        }
        let level = *level.get_or_insert(col);
        if col != level {
            continue;
        }
        if seen == n {
            return Some((i, col));
        }
        seen += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_canonical_text_is_stable_and_reads_back() {
        let doc = json!({"name": "A", "config": {"values": {"b": 2, "a": "x: y"}, "fields": []}, "tags": ["t"]});
        let text = write(&doc);
        assert_eq!(text, write(&doc));
        assert!(text.starts_with(HEADER));
        assert_eq!(read(&text).unwrap(), doc);
        // Keys sorted at every level, one value per line.
        let a = text.find("  a:").unwrap();
        let b = text.find("  b:").unwrap();
        assert!(a < b, "{text}");
    }

    #[test]
    fn a_hand_written_file_with_comments_anchors_and_merge_keys_reads() {
        let text = "\
# my workflow
name: Hand written   # trailing comment
defaults: &d
  retries: 3
  mode: fast
config:
  values:
    <<: *d
    mode: safe
";
        let v = read(text).unwrap();
        assert_eq!(v["config"]["values"], json!({"retries": 3, "mode": "safe"}));
        assert_eq!(v["name"], "Hand written");
    }

    #[test]
    fn a_syntax_error_has_its_line() {
        let err = read("name: ok\ntags: [unclosed\n  id: {\n").unwrap_err();
        assert!(err.line.is_some_and(|l| l >= 2), "{err:?}");
    }

    #[test]
    fn a_field_path_is_found_on_its_line() {
        let text = "\
# header
config:
  fields:
  - key: a
    type: text
  - key: n
    max: 5
    type: number
  values:
    a: x
    n: 9
name: W
tags:
- one
- two
";
        assert_eq!(line_of(text, "config.values.n"), Some(11));
        assert_eq!(line_of(text, "config.fields[1].max"), Some(7));
        assert_eq!(line_of(text, "config.fields[1]"), Some(6));
        assert_eq!(line_of(text, "tags[1]"), Some(15));
        assert_eq!(line_of(text, "name"), Some(12));
        // Not there: the nearest enclosing key.
        assert_eq!(line_of(text, "config.values.zzz"), Some(9));
        assert_eq!(line_of(text, "colour"), None);
    }
}
