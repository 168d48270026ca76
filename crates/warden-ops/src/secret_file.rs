//! Files that hold secrets — seeds, creds, private keys, onboarding packages — written so
//! that nobody else can read or redirect them: the contents go to a new file created 0600
//! (with a random name, exclusively) in the target's directory, which is then renamed over
//! the target. The target itself is never opened: a symlink there is replaced, not
//! followed, and a file someone else created there is replaced, not written into (so it
//! cannot keep its owner or its mode). Readers see the old file or the new one, never half.

use std::io::Write;
use std::path::Path;

/// Writes `contents` to `path` as described in the module docs. With `sync`, the data
/// reaches the disk before the rename (one creds file); without, it does not (an export of
/// thousands of files, which is repaired by exporting again).
pub fn write(path: &Path, contents: &[u8], sync: bool) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} names no file", path.display()),
        )
    })?;
    // tempfile creates the file with O_EXCL and mode 0600 on Unix.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", name.to_string_lossy()))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(contents)?;
    if sync {
        tmp.as_file().sync_all()?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::write;

    #[test]
    fn a_new_file_is_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alice.creds");
        write(&path, b"secret", true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"secret");
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        // Nothing else is left in the directory (no temporary file).
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_symlink_at_the_target_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let path = dir.path().join("alice.creds");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        write(&path, b"secret", false).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_file(), "the link itself was replaced");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), b"secret");
    }

    #[test]
    fn a_file_someone_else_made_is_replaced_not_written_into() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alice.creds");
        std::fs::write(&path, b"old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let me = own_uid();
        if me == 0 {
            // As root (CI), make it really someone else's, as in a shared directory.
            std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
        }
        let before = std::fs::metadata(&path).unwrap();
        // A reader who opened the old file before keeps the old inode: our bytes never
        // go into a file whose owner or mode someone else chose.
        let other = std::fs::File::open(&path).unwrap();
        write(&path, b"secret", true).unwrap();
        let after = std::fs::metadata(&path).unwrap();
        assert_ne!(
            before.ino(),
            after.ino(),
            "a new file, not the old one rewritten"
        );
        assert_eq!(after.permissions().mode() & 0o777, 0o600);
        assert_eq!(after.uid(), me);
        let mut old = String::new();
        std::io::Read::read_to_string(&mut &other, &mut old).unwrap();
        assert_eq!(old, "old");
    }

    /// This process's user id, as the owner of files it creates.
    fn own_uid() -> u32 {
        let dir = tempfile::tempdir().unwrap();
        let probe = dir.path().join("probe");
        std::fs::write(&probe, b"").unwrap();
        std::fs::metadata(&probe).unwrap().uid()
    }

    #[test]
    fn a_missing_directory_is_an_error_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("alice.creds");
        assert!(write(&path, b"secret", true).is_err());
        assert!(!dir.path().join("missing").exists());
    }
}
