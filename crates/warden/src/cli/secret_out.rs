//! Where a command that hands out a secret (creds, a package, a leaf node's creds) puts
//! it: standard output, or a file prepared before the operation runs. Preparing first
//! means an output Warden cannot write — a missing directory, a device like `/dev/null`,
//! a directory — is refused before anything is created, so the command can simply be
//! run again with a better `-o`.

use std::path::Path;

use warden_ops::secret_file::Prepared;

use super::UsageError;

/// `-o FILE` or `-o -` as given, made ready.
#[derive(Debug)]
pub enum SecretOut {
    /// `-o -`: standard output.
    Stdout,
    /// A new 0600 file beside the target, renamed over it once written.
    File(Prepared),
}

impl SecretOut {
    /// Prepares `-o`: `None` when the flag was not given (the command's default applies),
    /// standard output for `-`, else the file. A target that can never hold a file is a
    /// usage error (exit 2); a directory Warden cannot write is a failure (exit 1).
    pub fn prepare(arg: Option<&Path>) -> anyhow::Result<Option<SecretOut>> {
        arg.map(SecretOut::to).transpose()
    }

    /// Prepares a required `-o`: standard output for `-`, else the file.
    pub fn to(path: &Path) -> anyhow::Result<SecretOut> {
        if path.as_os_str() == "-" {
            return Ok(SecretOut::Stdout);
        }
        match Prepared::at(path) {
            Ok(p) => Ok(SecretOut::File(p)),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
                Err(UsageError(format!("cannot write {}: {e}", path.display())).into())
            }
            Err(e) => Err(anyhow::anyhow!("cannot write {}: {e}", path.display())),
        }
    }

    /// Writes `contents` (fsynced before the rename). On failure, `done` says what the
    /// operation already did and how to fetch the secret again, so nobody re-runs a
    /// command that would now say "already exists".
    pub fn write(self, contents: &[u8], done: &str) -> anyhow::Result<()> {
        match self {
            SecretOut::Stdout => super::write_out(contents),
            SecretOut::File(p) => {
                let path = p.path().to_path_buf();
                p.write(contents, true)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}; {done}", path.display()))
            }
        }
    }
}
