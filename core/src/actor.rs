//! Who made a change: the name every event records beside the device. It
//! is shown on one line of history, so it must be one line of plain text.

use crate::FieldError;

/// The longest actor name recorded (also for names claimed by another
/// device's changes, `remote::claimed_author`).
pub const MAX_CHARS: usize = 100;

/// A name given for this device's user, trimmed, or why it cannot be one.
/// `field` names where it came from (`FLOWKEEP_ACTOR`).
pub fn check(field: &str, name: &str) -> Result<String, FieldError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(FieldError::new(field, "length", "must not be blank"));
    }
    if name.chars().count() > MAX_CHARS {
        return Err(FieldError::new(
            field,
            "length",
            format!("must be at most {MAX_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        // A line break would fake a line of history; an escape, a terminal.
        return Err(FieldError::new(
            field,
            "format",
            "must be one line without control characters",
        ));
    }
    Ok(name.to_owned())
}

/// A name read from the system (a login name), made safe to record:
/// control characters dropped, cut at [`MAX_CHARS`]; `None` when nothing
/// is left.
pub fn from_system(name: &str) -> Option<String> {
    let plain: String = name.chars().filter(|c| !c.is_control()).collect();
    let plain = plain.trim();
    (!plain.is_empty()).then(|| crate::remote::clip(plain, MAX_CHARS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_actor_is_one_line_of_plain_text() {
        assert_eq!(check("FLOWKEEP_ACTOR", " alice ").unwrap(), "alice");
        assert_eq!(check("FLOWKEEP_ACTOR", "Zoë Ñ").unwrap(), "Zoë Ñ");
        for (bad, code) in [
            ("", "length"),
            ("   ", "length"),
            ("evil\nfake line", "format"),
            ("a\u{1b}[2J", "format"),
        ] {
            let e = check("FLOWKEEP_ACTOR", bad).unwrap_err();
            assert_eq!(
                (e.field.as_str(), e.code.as_str()),
                ("FLOWKEEP_ACTOR", code),
                "{bad:?}"
            );
        }
        let long = "a".repeat(MAX_CHARS + 1);
        assert_eq!(check("FLOWKEEP_ACTOR", &long).unwrap_err().code, "length");
        assert!(check("FLOWKEEP_ACTOR", &long[1..]).is_ok());
    }

    #[test]
    fn a_system_name_is_cleaned_not_refused() {
        assert_eq!(from_system("bob\n").as_deref(), Some("bob"));
        assert_eq!(from_system("\u{7}"), None);
        assert_eq!(
            from_system("x".repeat(500).as_str())
                .unwrap()
                .chars()
                .count(),
            MAX_CHARS
        );
    }
}
