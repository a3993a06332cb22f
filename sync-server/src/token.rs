//! Workspace tokens: 32 random bytes shown once; only their SHA-256 is
//! stored. Tokens are high-entropy, so a fast hash is enough to make a
//! stolen database useless for connecting.

use sha2::{Digest, Sha256};

/// A workspace token: the enrolment secret a device trades for its own
/// credential.
pub const PREFIX: &str = "fks_";
/// A device credential: what `/sync` accepts.
pub const DEVICE_PREFIX: &str = "fkd_";

pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS random source works");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new token, as printed to the operator.
pub fn generate() -> String {
    format!("{PREFIX}{}", random_hex(32))
}

/// A new device credential.
pub fn generate_device() -> String {
    format!("{DEVICE_PREFIX}{}", random_hex(32))
}

pub fn hash(token: &str) -> String {
    Sha256::digest(token.trim().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hash_stably() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX) && a.len() == PREFIX.len() + 64);
        assert_eq!(hash(&a), hash(&format!(" {a}\n")));
        assert_ne!(hash(&a), hash(&b));
        assert_eq!(hash(&a).len(), 64);
    }
}
