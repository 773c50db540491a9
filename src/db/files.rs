//! The SQLite database file's permissions.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Creates the database file empty with mode 0600 if it does not exist yet, so that SQLite
/// opens an owner-only file whatever the data dir's mode and the process umask (it would
/// create it 0644). SQLite gives the `-wal` and `-shm` files the mode of the database file,
/// so they are owner-only too. An existing file is left as it is.
pub fn create_owner_only(path: &Path) -> std::io::Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}
