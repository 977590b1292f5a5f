//! Permissions of a SQLite database on disk (issue 10): the database holds
//! transcripts and password hashes, so its directory is created 0700 and
//! its file 0600, whoever opens the store first, and an existing file that
//! others can read is narrowed to 0600. SQLite gives its `-wal` and `-shm`
//! files the mode of the database file (unix VFS), so they follow.
//!
//! Nothing here on other platforms: their ACLs are not modes.

use std::io;
use std::path::Path;

/// Creates `path`'s parent directory (0700) if missing and the database
/// file (0600) if missing; narrows an existing file readable by others to
/// 0600. Never widens anything and never touches an existing directory.
pub(crate) async fn prepare_sqlite_file(path: &Path) -> io::Result<()> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || prepare_blocking(&path))
        .await
        .map_err(io::Error::other)?
}

#[cfg(unix)]
fn prepare_blocking(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    for file in [
        path.to_owned(),
        sidecar(path, "-wal"),
        sidecar(path, "-shm"),
        sidecar(path, "-journal"),
    ] {
        let Ok(meta) = std::fs::metadata(&file) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode & 0o700))?;
            tracing::warn!(
                file = %file.display(),
                was = format!("{mode:o}"),
                now = format!("{:o}", mode & 0o700),
                "database file was readable by others; narrowed to its owner"
            );
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn prepare_blocking(path: &Path) -> io::Result<()> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    Ok(())
}

#[cfg(unix)]
fn sidecar(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    s.into()
}
