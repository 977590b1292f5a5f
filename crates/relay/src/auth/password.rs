//! Password hashing with argon2id (the `argon2` crate's defaults:
//! argon2id v19, m = 19 MiB, t = 2, p = 1) in PHC string form.
//!
//! Verification of an unknown user runs against a dummy hash so a login
//! attempt takes the same time whether or not the user exists.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::rngs::OsRng;

use super::AuthError;

/// Longest password accepted, in bytes (argon2 is costly on huge input).
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Hashes `password` with a random salt. CPU-heavy: call from
/// `spawn_blocking` in async code.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    if password.is_empty() || password.len() > MAX_PASSWORD_LEN {
        return Err(AuthError::BadRequest("password must be 1 to 1024 bytes"));
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Internal(format!("hashing password: {e}")))
}

/// Whether `password` matches the PHC string `hash`. A malformed stored
/// hash counts as a mismatch (and is logged). Constant-time in the
/// password (argon2 compares the outputs in constant time).
pub fn verify_password(password: &str, hash: &str) -> bool {
    if password.len() > MAX_PASSWORD_LEN {
        return false;
    }
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(e) => {
            tracing::warn!(error = %e, "stored password hash is malformed");
            false
        }
    }
}

/// Runs the same verification as [`verify_password`] against a fixed dummy
/// hash and returns `false`: used when the user does not exist, so timing
/// does not reveal which user names exist.
pub fn verify_dummy(password: &str) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let hash = DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(b"tmux-bridge dummy password", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    });
    let _ = verify_password(password, hash);
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let h = hash_password("correct horse").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("correct horsf", &h));
        assert!(!verify_password("x", "not a phc string"));
        assert!(!verify_dummy("correct horse"));
        assert!(hash_password("").is_err());
    }
}
