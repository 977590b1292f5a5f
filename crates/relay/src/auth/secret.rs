//! The relay's signing secret: 512 random bits generated on first start and
//! kept in `<data dir>/auth-secret`, readable only by the relay's user
//! (mode 0600 on Unix). Never a constant; never logged.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use rand::RngCore;
use rand::rngs::OsRng;

use super::AuthError;

/// File name of the secret inside the relay's data directory.
pub const SECRET_FILE: &str = "auth-secret";
/// Bytes generated for a new secret (512 bits; HS256 needs at least 256).
const SECRET_LEN: usize = 64;
/// Shortest secret accepted from disk (256 bits).
const MIN_SECRET_LEN: usize = 32;

/// Secret key material. `Debug` does not print it.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// A fresh random secret from the operating system's generator.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; SECRET_LEN];
        OsRng.fill_bytes(&mut bytes);
        Secret(bytes)
    }

    /// Wraps existing key material; refuses fewer than 256 bits.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, AuthError> {
        if bytes.len() < MIN_SECRET_LEN {
            return Err(AuthError::Internal(
                "signing secret shorter than 256 bits".into(),
            ));
        }
        Ok(Secret(bytes))
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Loads `<dir>/auth-secret`, creating the directory and a new secret
    /// (mode 0600) when it does not exist yet. An existing file that other
    /// users can read is tightened to 0600 with a warning.
    pub fn load_or_create(dir: &Path) -> Result<Self, AuthError> {
        let path = dir.join(SECRET_FILE);
        std::fs::create_dir_all(dir).map_err(|e| io_err("creating data dir", dir, e))?;
        match std::fs::File::open(&path) {
            Ok(mut file) => {
                tighten(&path, &file)?;
                let mut bytes = Vec::new();
                file.read_to_end(&mut bytes)
                    .map_err(|e| io_err("reading", &path, e))?;
                Secret::from_bytes(bytes)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(&path),
            Err(e) => Err(io_err("opening", &path, e)),
        }
    }
}

fn create(path: &PathBuf) -> Result<Secret, AuthError> {
    let secret = Secret::generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(secret.as_bytes())
                .map_err(|e| io_err("writing", path, e))?;
            file.sync_all().map_err(|e| io_err("syncing", path, e))?;
            tracing::info!(path = %path.display(), "generated a new token signing secret");
            Ok(secret)
        }
        // Another relay process created it between our open and create:
        // use theirs, so both sign with the same key.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let bytes = std::fs::read(path).map_err(|e| io_err("reading", path, e))?;
            Secret::from_bytes(bytes)
        }
        Err(e) => Err(io_err("creating", path, e)),
    }
}

#[cfg(unix)]
fn tighten(path: &Path, file: &std::fs::File) -> Result<(), AuthError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = file.metadata().map_err(|e| io_err("inspecting", path, e))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "signing secret was readable by others; setting mode 0600");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io_err("restricting", path, e))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn tighten(_path: &Path, _file: &std::fs::File) -> Result<(), AuthError> {
    Ok(())
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> AuthError {
    AuthError::Internal(format!("{what} {}: {e}", path.display()))
}
