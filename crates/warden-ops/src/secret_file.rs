//! Files that hold secrets — seeds, creds, private keys, onboarding packages — written so
//! that nobody else can read or redirect them: the contents go to a new file created 0600
//! (with a random name, exclusively) in the target's directory, which is then renamed over
//! the target. The target itself is never opened: a symlink there is replaced, not
//! followed, and a file someone else created there is replaced, not written into (so it
//! cannot keep its owner or its mode). Readers see the old file or the new one, never half.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `contents` to `path` as described in the module docs. With `sync`, the data
/// reaches the disk before the rename (one creds file); without, it does not (an export of
/// thousands of files, which is repaired by exporting again).
pub fn write(path: &Path, contents: &[u8], sync: bool) -> std::io::Result<()> {
    Prepared::at(path)?.write(contents, sync)
}

/// A secret file made ready before the operation that produces its contents: the target
/// was checked and the new 0600 file already exists beside it. A command that creates a
/// secret (a user and its creds) prepares its output first, so that an output it cannot
/// write (a missing or read-only directory, a device such as `/dev/null`, a directory)
/// fails before anything is committed. Dropped without [`Prepared::write`], the new file
/// is removed and the target is untouched.
#[derive(Debug)]
pub struct Prepared {
    tmp: tempfile::NamedTempFile,
    target: PathBuf,
}

impl Prepared {
    /// Checks `path` and creates the new file beside it. Refused: a path naming no file, a
    /// directory, and anything that is not a regular file or a symlink (a device, pipe or
    /// socket), which a rename would replace — as root, `-o /dev/null` would otherwise
    /// replace the device node with a creds file.
    pub fn at(path: &Path) -> std::io::Result<Prepared> {
        use std::io::{Error, ErrorKind};
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = path.file_name().ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("{} names no file", path.display()),
            )
        })?;
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("{} is a directory", path.display()),
                ));
            }
            Ok(m) if !m.is_file() && !m.is_symlink() => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "{} is not a regular file (a device, pipe or socket); use -o - for standard output",
                        path.display()
                    ),
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        // tempfile creates the file with O_EXCL and mode 0600 on Unix.
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{}.", name.to_string_lossy()))
            .suffix(".tmp")
            .tempfile_in(dir)?;
        Ok(Prepared {
            tmp,
            target: path.to_path_buf(),
        })
    }

    /// Where the file will be.
    pub fn path(&self) -> &Path {
        &self.target
    }

    /// Writes `contents` to the new file and renames it over the target.
    pub fn write(mut self, contents: &[u8], sync: bool) -> std::io::Result<()> {
        self.tmp.write_all(contents)?;
        if sync {
            self.tmp.as_file().sync_all()?;
        }
        self.tmp.persist(&self.target).map_err(|e| e.error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::path::Path;

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

    #[test]
    fn a_device_or_directory_at_the_target_is_refused_before_anything_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let err = super::Prepared::at(Path::new("/dev/null")).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let meta = std::fs::metadata("/dev/null").unwrap();
        assert!(!meta.is_file(), "/dev/null is still a device");
        let err = super::Prepared::at(dir.path()).unwrap_err();
        assert!(err.to_string().contains("is a directory"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_prepared_file_dropped_unwritten_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alice.creds");
        let prepared = super::Prepared::at(&path).unwrap();
        assert_eq!(prepared.path(), path);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "the new file"
        );
        drop(prepared);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
