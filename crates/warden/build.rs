//! Build script of the `warden` binary: records the git commit it is built from, so that
//! `warden --version` names it (`0.1.0 (1a2b3c4)`, `-dirty` when the checkout had
//! uncommitted changes to tracked files).
//!
//! Outside a git checkout (built from a source package or a crate tarball) the commit is
//! `unknown`, unless the builder names it in `WARDEN_GIT_COMMIT`.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=WARDEN_GIT_COMMIT");
    let commit = match std::env::var("WARDEN_GIT_COMMIT") {
        Ok(c) if !c.trim().is_empty() => c.trim().to_string(),
        _ => from_git().unwrap_or_else(|| "unknown".to_string()),
    };
    println!("cargo:rustc-env=WARDEN_GIT_COMMIT={commit}");
}

/// The short commit of HEAD with `-dirty` when tracked files differ from it; `None` when
/// git or a checkout is missing.
fn from_git() -> Option<String> {
    let commit = git(&["rev-parse", "--short", "HEAD"])?;
    // Run again when HEAD moves: a checkout (HEAD itself) or a commit on the branch (its ref,
    // loose or packed). Not on every change of the index, which `git status` rewrites at
    // will: that would rebuild the crate all day in a busy checkout. So `-dirty` tells the
    // state of the tree when HEAD last moved (exact in a fresh checkout, as CI and release
    // builds are).
    for path in ["HEAD".to_string(), "packed-refs".to_string()]
        .into_iter()
        .chain(
            git(&["rev-parse", "--symbolic-full-name", "HEAD"]).filter(|r| r.starts_with("refs/")),
        )
    {
        if let Some(p) = git(&["rev-parse", "--path-format=absolute", "--git-path", &path])
            && PathBuf::from(&p).exists()
        {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    // --no-optional-locks: `status` must not refresh (write) the index, which would make
    // cargo see it changed and run this script again on every build.
    let dirty = git(&[
        "--no-optional-locks",
        "status",
        "--porcelain",
        "--untracked-files=no",
    ])
    .is_some_and(|s| !s.is_empty());
    Some(if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    })
}

/// Standard output of `git ARGS`, trimmed; `None` when git fails or is absent.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
}
