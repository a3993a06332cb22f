//! The `format` rule of text fields.

use std::net::Ipv4Addr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Email,
    Url,
    Uuid,
    Date,
    DateTime,
    Semver,
    Hostname,
    Ipv4,
    Path,
}

impl Format {
    pub const NAMES: [&'static str; 9] = [
        "email", "url", "uuid", "date", "datetime", "semver", "hostname", "ipv4", "path",
    ];

    pub fn parse(name: &str) -> Option<Format> {
        Some(match name {
            "email" => Format::Email,
            "url" => Format::Url,
            "uuid" => Format::Uuid,
            "date" => Format::Date,
            "datetime" => Format::DateTime,
            "semver" => Format::Semver,
            "hostname" => Format::Hostname,
            "ipv4" => Format::Ipv4,
            "path" => Format::Path,
            _ => return None,
        })
    }

    /// `Err` carries the message shown to the user.
    pub fn check(self, s: &str) -> Result<(), String> {
        let ok = match self {
            Format::Email => is_email(s),
            Format::Url => url::Url::parse(s).is_ok_and(|u| u.has_host() || u.scheme() == "file"),
            Format::Uuid => uuid::Uuid::try_parse(s).is_ok(),
            Format::Date => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
            Format::DateTime => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
            Format::Semver => semver::Version::parse(s).is_ok(),
            Format::Hostname => is_hostname(s),
            Format::Ipv4 => s.parse::<Ipv4Addr>().is_ok(),
            Format::Path => !s.trim().is_empty() && !s.contains('\0'),
        };
        if ok {
            Ok(())
        } else {
            Err(self.expectation().to_owned())
        }
    }

    fn expectation(self) -> &'static str {
        match self {
            Format::Email => "must be an email address like name@example.org",
            Format::Url => "must be a URL like https://example.org/path",
            Format::Uuid => "must be a UUID like 0190a5c2-7b5e-7cc1-8f3a-2d1e4b6a9c00",
            Format::Date => "must be a date like 2026-11-26",
            Format::DateTime => "must be a date and time like 2026-11-26T12:00:00Z",
            Format::Semver => "must be a semantic version like 1.2.3",
            Format::Hostname => "must be a host name like db.example.org",
            Format::Ipv4 => "must be an IPv4 address like 192.0.2.10",
            Format::Path => "must be a path",
        }
    }
}

fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !local.contains(char::is_whitespace)
        && !local.contains('@')
        && domain.contains('.')
        && is_hostname(domain)
}

/// RFC 1123 host names: dot-separated labels of letters, digits and inner hyphens.
fn is_hostname(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_format_accepts_and_rejects() {
        let cases: [(Format, &str, &str); 9] = [
            (Format::Email, "ops@example.org", "ops at example.org"),
            (Format::Url, "https://example.org/hook", "not a url"),
            (
                Format::Uuid,
                "0190a5c2-7b5e-7cc1-8f3a-2d1e4b6a9c00",
                "0190a5c2-xyz",
            ),
            (Format::Date, "2026-02-28", "2026-02-30"),
            (
                Format::DateTime,
                "2026-11-26T12:00:00+01:00",
                "2026-11-26 12:00",
            ),
            (Format::Semver, "1.2.3-rc.1", "1.2"),
            (Format::Hostname, "db-1.example.org", "-bad-.example"),
            (Format::Ipv4, "192.0.2.10", "192.0.2.300"),
            (Format::Path, "/var/data/in.csv", "   "),
        ];
        for (format, good, bad) in cases {
            assert_eq!(
                format.check(good),
                Ok(()),
                "{format:?} should accept {good}"
            );
            let err = format.check(bad).expect_err(bad);
            assert!(err.starts_with("must be"), "{format:?}: {err}");
        }
    }

    #[test]
    fn every_name_parses() {
        for name in Format::NAMES {
            assert!(Format::parse(name).is_some(), "{name}");
        }
        assert_eq!(Format::parse("colour"), None);
    }
}
