//! Where Warden keeps its data: the data directory (flag, `WARDEN_DATA_DIR`, or the
//! XDG data home), the default SQLite URL inside it, and the master key file.

use std::path::{Path, PathBuf};

/// Resolves the data directory: the given one, else `$XDG_DATA_HOME/warden`, else
/// `~/.local/share/warden`, else `./.warden`.
pub fn data_dir(given: Option<&Path>) -> PathBuf {
    if let Some(dir) = given {
        return dir.to_path_buf();
    }
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("warden");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home).join(".local/share/warden");
    }
    PathBuf::from(".warden")
}

/// The default database URL for a data directory: `sqlite://<dir>/warden.db`.
pub fn default_database_url(data_dir: &Path) -> String {
    format!("sqlite://{}/warden.db", data_dir.display())
}

/// Creates the data directory (0700) if missing.
pub fn ensure_data_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Writes a file that holds secrets (creds, seeds, packages): see
/// [`warden_ops::secret_file::write`] (a new 0600 file renamed into place; a symlink or
/// someone else's file at the target is replaced, never written through).
pub fn write_secret_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    warden_ops::secret_file::write(path, contents, true)
}
