//! The nsc operator directory and keystore as `warden import nsc` reads them: confined
//! to the directories it was given, one bounded file at a time.
//!
//! An nsc store is input like any other, and may have been made by someone else. So:
//!
//! - Every name taken from the store and used to build a path (the operator name in
//!   `.nsc`, account directory names, user file names, public keys) must be a single
//!   path component: not empty, not `.` or `..`, no `/`, no NUL ([`component`]).
//! - No symbolic link below `--store` or `--keys` is followed, wherever it points:
//!   a link met on the way to a file, or in a directory listed, refuses the import.
//!   (The directories given on the command line may themselves be links: the user
//!   chose them.) Refusing every link rather than resolving links and checking the
//!   target's prefix keeps the rule simple to state and to check; nsc never writes links.
//! - Each file is checked with `lstat` component by component, then opened, and the
//!   opened file must be the very file checked (same device and inode): a directory
//!   swapped for a link between the check and the open is caught, not followed.
//! - Only regular files are read, and at most [`MAX_FILE`] bytes of each, through
//!   `take`: a huge file is refused without ever being held in memory.
//!
//! Every refusal is `Invalid`, names the offending path and says why; the import reads
//! everything before it writes anything, so a refusal leaves the Warden store untouched.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{NscError, Result};

/// The largest file read from an nsc store or keystore. nsc's own files (JWTs, seeds,
/// creds) are a few KiB; an account JWT with thousands of exports stays well below this.
pub const MAX_FILE: u64 = 1 << 20;

/// Checks that `name` (what the store calls `what`, e.g. "the operator name in .nsc")
/// is one path component, so that joining it to a directory stays in that directory.
pub fn component(name: &str, what: &str) -> Result<()> {
    let why = if name.is_empty() {
        Some("it is empty")
    } else if name == "." || name == ".." {
        Some("it names a directory itself, not an entry in it")
    } else if name.contains('/') {
        Some("it holds '/'")
    } else if name.contains('\0') {
        Some("it holds a NUL byte")
    } else {
        None
    };
    match why {
        None => Ok(()),
        Some(why) => Err(NscError::Invalid(format!(
            "{what} {name:?} is not a single file name ({why}): it would lead outside the nsc store; nothing was imported"
        ))),
    }
}

/// Which entries [`Tree::list`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entries {
    /// Subdirectories, by name.
    Dirs,
    /// Regular `*.jwt` files, by name without the extension.
    JwtFiles,
}

/// A directory given on the command line (`--store`'s operator directory, `--keys`),
/// read without leaving it. See the module docs.
#[derive(Clone, Debug)]
pub struct Tree {
    root: PathBuf,
    /// The flag that named it, for messages (`--store`, `--keys`).
    flag: &'static str,
}

fn refuse(path: &Path, why: impl std::fmt::Display) -> NscError {
    NscError::Invalid(format!("{}: {why}; nothing was imported", path.display()))
}

fn link_refused(path: &Path, flag: &str) -> NscError {
    refuse(
        path,
        format!(
            "is a symbolic link, and import nsc follows no links below {flag} (it reads nothing outside the directories it is given)"
        ),
    )
}

impl Tree {
    /// The directory `root`, named on the command line by `flag`.
    pub fn new(root: PathBuf, flag: &'static str) -> Tree {
        Tree { root, flag }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `root/rel…`, each component of `rel` checked.
    fn path(&self, rel: &[&str]) -> Result<PathBuf> {
        let mut p = self.root.clone();
        for c in rel {
            component(c, "the path component")?;
            p.push(c);
        }
        Ok(p)
    }

    /// `lstat` of every component of `rel` below the root, refusing links. `None` when
    /// one is missing, or a non-directory stands where a directory is needed (nothing
    /// is there to read); else the metadata of the last one.
    fn walk(&self, rel: &[&str]) -> Result<Option<std::fs::Metadata>> {
        let mut p = self.root.clone();
        let mut last = None;
        for (i, c) in rel.iter().enumerate() {
            component(c, "the path component")?;
            p.push(c);
            let meta = match std::fs::symlink_metadata(&p) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(NscError::io(&p, e)),
            };
            if meta.file_type().is_symlink() {
                return Err(link_refused(&p, self.flag));
            }
            if i + 1 < rel.len() && !meta.is_dir() {
                return Ok(None);
            }
            last = Some(meta);
        }
        Ok(last)
    }

    /// Whether `rel` is a directory (not a link to one: a link is refused).
    pub fn is_dir(&self, rel: &[&str]) -> Result<bool> {
        Ok(self.walk(rel)?.is_some_and(|m| m.is_dir()))
    }

    /// Whether something (anything but a link, which is refused) is at `rel`.
    pub fn exists(&self, rel: &[&str]) -> Result<bool> {
        Ok(self.walk(rel)?.is_some())
    }

    /// The text of the file at `rel`, `None` when there is none. Refused: a link on the
    /// way or at the end, anything but a regular file, more than [`MAX_FILE`] bytes,
    /// text that is not UTF-8.
    pub fn read(&self, rel: &[&str]) -> Result<Option<String>> {
        let path = self.path(rel)?;
        let Some(checked) = self.walk(rel)? else {
            return Ok(None);
        };
        if !checked.is_file() {
            return Err(refuse(
                &path,
                "is not a regular file (a directory, device, pipe or socket)",
            ));
        }
        if checked.len() > MAX_FILE {
            return Err(too_large(&path, Some(checked.len())));
        }
        let file = std::fs::File::open(&path).map_err(|e| NscError::io(&path, e))?;
        let opened = file.metadata().map_err(|e| NscError::io(&path, e))?;
        // The file opened must be the one checked: if a component was swapped for a
        // link in between, the open followed it somewhere else.
        if opened.dev() != checked.dev() || opened.ino() != checked.ino() || !opened.is_file() {
            return Err(refuse(
                &path,
                format!(
                    "changed while it was being read (replaced, perhaps by a symbolic link); import nsc reads nothing outside {}",
                    self.flag
                ),
            ));
        }
        // `take` bounds the read whatever the size claimed: one byte more than allowed
        // is enough to know the file is too large.
        let mut bytes = Vec::new();
        file.take(MAX_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| NscError::io(&path, e))?;
        if bytes.len() as u64 > MAX_FILE {
            return Err(too_large(&path, None));
        }
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| refuse(&path, "is not UTF-8 text, so not an nsc file"))
    }

    /// Sorted names of the entries of the directory `rel` (none when it is missing).
    /// Refused: a link anywhere on the way or among the entries, a name that is not
    /// UTF-8 or not a single component.
    pub fn list(&self, rel: &[&str], which: Entries) -> Result<Vec<String>> {
        let dir = self.path(rel)?;
        match self.walk(rel)? {
            Some(m) if m.is_dir() => {}
            _ => return Ok(Vec::new()),
        }
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| NscError::io(&dir, e))? {
            let entry = entry.map_err(|e| NscError::io(&dir, e))?;
            let path = entry.path();
            // `DirEntry::file_type` does not follow links.
            let kind = entry.file_type().map_err(|e| NscError::io(&path, e))?;
            if kind.is_symlink() {
                return Err(link_refused(&path, self.flag));
            }
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                return Err(refuse(&path, "has a name that is not UTF-8"));
            };
            let name = match which {
                Entries::Dirs if kind.is_dir() => name,
                Entries::JwtFiles if kind.is_file() => match name.strip_suffix(".jwt") {
                    Some(stem) => stem.to_string(),
                    None => continue,
                },
                _ => continue,
            };
            component(&name, &format!("the name of {}", path.display()))?;
            out.push(name);
        }
        out.sort();
        Ok(out)
    }
}

fn too_large(path: &Path, size: Option<u64>) -> NscError {
    refuse(
        path,
        format!(
            "is {}larger than the {} MiB an nsc file may be, so it was not read",
            size.map(|s| format!("{s} bytes, ")).unwrap_or_default(),
            MAX_FILE >> 20
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, Tree) {
        let dir = tempfile::tempdir().unwrap();
        let t = Tree::new(dir.path().join("store"), "--store");
        std::fs::create_dir_all(t.root().join("accounts/A/users")).unwrap();
        (dir, t)
    }

    #[test]
    fn names_that_are_not_one_component_are_refused() {
        for bad in ["", ".", "..", "../x", "a/b", "/etc", "a\0b"] {
            let err = component(bad, "the account name").unwrap_err();
            assert!(
                err.to_string().contains("not a single file name"),
                "{bad:?}: {err}"
            );
        }
        for good in ["ACME", "a.b", "..x", "x..", "Exporter-Acct", "é"] {
            component(good, "the account name").unwrap();
        }
    }

    #[test]
    fn a_file_through_or_at_a_link_is_refused_and_a_missing_one_is_none() {
        let (dir, t) = tree();
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("A.jwt"), "secret").unwrap();
        std::os::unix::fs::symlink(outside.join("A.jwt"), t.root().join("accounts/A/A.jwt"))
            .unwrap();
        std::os::unix::fs::symlink(&outside, t.root().join("accounts/B")).unwrap();
        let err = t.read(&["accounts", "A", "A.jwt"]).unwrap_err().to_string();
        assert!(
            err.contains("symbolic link") && err.contains("A.jwt"),
            "{err}"
        );
        let err = t.read(&["accounts", "B", "A.jwt"]).unwrap_err().to_string();
        assert!(
            err.contains("symbolic link") && err.contains("accounts/B"),
            "{err}"
        );
        let err = t
            .list(&["accounts"], Entries::Dirs)
            .unwrap_err()
            .to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(t.read(&["accounts", "C", "C.jwt"]).unwrap(), None);
        assert!(t.read(&["..", "outside", "A.jwt"]).is_err());
    }

    #[test]
    fn a_file_larger_than_the_limit_is_refused_and_one_at_the_limit_is_read() {
        let (_dir, t) = tree();
        let users = t.root().join("accounts/A/users");
        let f = std::fs::File::create(users.join("huge.jwt")).unwrap();
        f.set_len(300 << 20).unwrap();
        std::fs::write(users.join("max.jwt"), vec![b'a'; MAX_FILE as usize]).unwrap();
        let err = t
            .read(&["accounts", "A", "users", "huge.jwt"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("larger than the 1 MiB"), "{err}");
        let max = t.read(&["accounts", "A", "users", "max.jwt"]).unwrap();
        assert_eq!(max.map(|s| s.len()), Some(MAX_FILE as usize));
        assert_eq!(
            t.list(&["accounts", "A", "users"], Entries::JwtFiles)
                .unwrap(),
            vec!["huge", "max"]
        );
    }

    #[test]
    fn a_jwt_file_named_only_by_its_extension_is_refused() {
        let (_dir, t) = tree();
        std::fs::write(t.root().join("accounts/A/users/.jwt"), "x").unwrap();
        let err = t
            .list(&["accounts", "A", "users"], Entries::JwtFiles)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a single file name"), "{err}");
    }
}
