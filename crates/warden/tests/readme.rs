//! The README's shell blocks, run as a newcomer runs them: in order, in one real `bash`
//! (`set -euo pipefail`), started in a fresh directory outside the checkout, against
//! the nats-server of the line under test (2.9.10 and 2.15.x). Then what the README
//! promises is checked: the subscriber got 'first order', the server refused the
//! publish to billing.refund, `describe` decoded the creds, the API answered with the
//! captured token, the devices of examples/devices.csv were added, the organisation
//! was applied and the nsc export imported again.
//!
//! Only what a test must is its own: the build (the test's binary is already built:
//! `CARGO_BIN_EXE_warden`), hence `WARDEN_SRC` and `PATH` (a directory where `warden`
//! is that binary and `nats-server` the line under test), and the ports (the README's
//! 4333 and 7480 become free ones, so both lines can run at once). `HOME` and `TMPDIR`
//! are the test's directory, so nothing outside it is touched.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use warden_testkit::{NatsServerBinary, ServerLine, free_port};

/// The document whose blocks run.
const README: &str = include_str!("../../../README.md");

/// The developer's blocks of "Two commands", not run here: one builds a release and
/// initialises `~/.local/share/warden`, the other runs this whole test suite.
const NOT_RUN: [&str; 2] = ["cargo run --release -p warden -- init\n", "scripts/test\n"];

/// The README's lines that build Warden and put it on `PATH`, in this order.
const SRC_LINE: &str = "export WARDEN_SRC=$(git rev-parse --show-toplevel)";
const BUILD_LINE: &str = "cargo build --release";
const PATH_LINE: &str = "export PATH=$WARDEN_SRC/target/release:$PATH";

/// The ports the README uses: the nats-server's client port and `serve --http`'s.
const NATS_PORT: &str = "127.0.0.1:4333";
const HTTP_PORT: &str = "127.0.0.1:7480";

/// Longest the whole walk-through may take (a release of every bound it waits on).
const DEADLINE: Duration = Duration::from_secs(240);

/// A line that separates the blocks' output (on stdout and stderr alike).
const MARK: &str = "@@@ readme block";

/// The ```sh blocks of `doc`, in order, each without its fences.
fn shell_blocks(doc: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match current.as_mut() {
            None if line.trim_end() == "```sh" => current = Some(String::new()),
            None => {}
            Some(_) if line.trim_end() == "```" => blocks.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    assert!(current.is_none(), "README.md has an unclosed ```sh block");
    blocks
}

/// A value as one single-quoted shell word.
fn quoted(path: &Path) -> String {
    let s = path.to_str().expect("a UTF-8 path");
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The script bash runs: every block but the developer's, with the build and the ports
/// replaced; each block's output starts with a mark; at the end, the test's own check
/// that the revoked alice is refused, and the background jobs stopped.
fn script(bin_dir: &Path, nats: u16, http: u16) -> (String, usize) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.canonicalize().expect("the checkout");
    let mut script = String::from(
        "set -euo pipefail\n\
         # Whatever happens, what the blocks started in the background stops with them.\n\
         trap 'kill $(jobs -p) 2>/dev/null || true; wait' EXIT\n",
    );
    for port in [NATS_PORT, HTTP_PORT] {
        assert!(README.contains(port), "README.md no longer uses {port}");
    }
    let mut run = 0;
    for block in shell_blocks(README) {
        if NOT_RUN.contains(&block.as_str()) {
            continue;
        }
        let mut block = block;
        if block.contains(SRC_LINE) {
            let mut lines: Vec<String> = block.lines().map(str::to_string).collect();
            let src = lines
                .iter()
                .position(|l| l.starts_with(SRC_LINE))
                .expect("the WARDEN_SRC line");
            // Outside the checkout git cannot say where it is: the test knows.
            lines[src] = format!("export WARDEN_SRC={}", quoted(&root));
            // The test's binary is built already.
            assert!(
                lines[src + 1].starts_with(BUILD_LINE),
                "README.md: the build follows the WARDEN_SRC line: {:?}",
                lines[src + 1]
            );
            lines.remove(src + 1);
            assert_eq!(
                lines[src + 1],
                PATH_LINE,
                "README.md: PATH follows the build"
            );
            lines[src + 1] = format!("export PATH={}:$PATH", quoted(bin_dir));
            block = lines.join("\n") + "\n";
        }
        assert!(
            !block.contains(":4222"),
            "a README block uses 4222, the port of a shared server"
        );
        block = block
            .replace(NATS_PORT, &format!("127.0.0.1:{nats}"))
            .replace(HTTP_PORT, &format!("127.0.0.1:{http}"));
        script.push_str(&format!(
            "printf '\\n{MARK} {run}\\n'; printf '\\n{MARK} {run}\\n' >&2\n"
        ));
        script.push_str(&block);
        run += 1;
    }
    // The README's promise after `warden user revoke alice`: refused within a moment.
    // Polled (bounded): the revocation reaches the server through serve or push.
    script.push_str(&format!(
        "printf '\\n{MARK} end\\n'; printf '\\n{MARK} end\\n' >&2\n\
         printf 'scratch %s\\n' \"$PWD\"\n\
         for _ in $(seq 100); do\n\
         \x20   if ! warden tool pub --nats nats://127.0.0.1:{nats} --creds alice.creds orders.new late; then\n\
         \x20       echo 'alice refused'; break\n\
         \x20   fi\n\
         \x20   sleep 0.1\n\
         done\n"
    ));
    (script, run)
}

/// Output of a finished bash, and how it ended.
struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Ran {
    /// What block `i` (or `"end"`) wrote on `stream`.
    fn part<'a>(stream: &'a str, i: &str) -> &'a str {
        let mark = format!("{MARK} {i}\n");
        let start = stream
            .find(&mark)
            .unwrap_or_else(|| panic!("block {i} did not run"))
            + mark.len();
        let rest = &stream[start..];
        &rest[..rest.find(MARK).unwrap_or(rest.len())]
    }

    fn out(&self, i: &str) -> &str {
        Self::part(&self.stdout, i)
    }

    fn err(&self, i: &str) -> &str {
        Self::part(&self.stderr, i)
    }
}

/// Reads a pipe to its end on a thread of its own.
fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Runs `script` with bash in `dir` (its own process group, killed whole if it outlives
/// [`DEADLINE`] and once it has finished, so no stray child keeps a pipe open).
fn run_bash(dir: &Path, script: &str) -> Ran {
    let home = dir.join("home");
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&home).expect("home");
    std::fs::create_dir_all(&tmp).expect("tmp");
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", &home)
        .env("TMPDIR", &tmp)
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("start bash");
    let group = child.id();
    let stdout = drain(child.stdout.take().expect("stdout"));
    let stderr = drain(child.stderr.take().expect("stderr"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = rx.recv_timeout(DEADLINE);
    // Whatever is left of the group (nothing, when the trap did its work).
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{group}")])
        .stderr(Stdio::null())
        .status();
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    let status = match status {
        Ok(s) => s.expect("wait for bash"),
        Err(_) => panic!(
            "the README's blocks did not finish within {DEADLINE:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
        ),
    };
    Ran {
        status,
        stdout,
        stderr,
    }
}

/// A directory of links: `warden` to the test's binary, `nats-server` to the line's.
fn bin_dir(dir: &Path, server: &NatsServerBinary) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_warden"), bin.join("warden")).expect("link");
    std::os::unix::fs::symlink(&server.path, bin.join("nats-server")).expect("link");
    bin
}

fn assert_has(text: &str, needle: &str, what: &str) {
    assert!(text.contains(needle), "{what}: no {needle:?} in\n{text}");
}

/// A secret file the README says is written 0600.
fn assert_secret(path: &Path) {
    let mode = std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{}", path.display());
}

fn walkthrough_runs_as_written(line: ServerLine) {
    let server = NatsServerBinary::get(line);
    let dir = tempfile::tempdir().expect("temp dir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    assert!(
        !dir.path()
            .starts_with(root.canonicalize().expect("the checkout")),
        "the test runs outside the checkout"
    );
    let (nats, http) = (free_port(), free_port());
    assert_ne!(nats, http);
    let (script, blocks) = script(&bin_dir(dir.path(), &server), nats, http);
    // The walk-through, serve, devices, organisation and nsc.
    assert!(blocks >= 4, "README.md has {blocks} blocks to run");
    let ran = run_bash(dir.path(), &script);
    let all = format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        ran.status.code(),
        ran.stdout,
        ran.stderr
    );
    assert!(ran.status.success(), "the README's blocks failed: {all}");

    // The walk-through.
    let (out, err) = (ran.out("0"), ran.err("0"));
    assert_has(out, "initialised operator ACME", "init");
    assert_has(out, "operator     ACME", "status");
    assert_has(out, "account SHOP added", "account add");
    assert_has(out, "pub allow     orders.>", "user show");
    assert_has(err, "listening on orders.>", "tool sub");
    assert_has(out, "[orders.new] first order", "the subscriber");
    assert_has(
        err,
        "error: server refused the publish to billing.refund:",
        "the refused publish",
    );
    assert_has(&err.to_lowercase(), "permissions violation", "the refusal");
    assert_has(out, "exit status 1", "the refused publish");
    assert_has(out, "user JWT \"alice\"", "describe");
    assert_has(out, "signature  valid", "describe");
    assert_has(
        out,
        "seed       present, matches the subject (not shown)",
        "describe",
    );

    // serve, the ledger and the API with the captured token.
    let (out, err) = (ran.out("1"), ran.err("1"));
    assert_has(
        out,
        &format!("warden serve: http://127.0.0.1:{http}"),
        "serve",
    );
    // /readyz answered (NATS may still be connecting: ready or degraded, never 503).
    assert!(
        out.contains(r#""status":"ready""#) || out.contains(r#""status":"degraded""#),
        "/readyz:\n{out}"
    );
    assert_has(out, "user alice revoked in account SHOP", "revoke");
    assert_has(out, "user.revoke", "audit list");
    assert_has(out, "ledger intact", "audit verify");
    assert_has(err, "created with scopes read,write", "token create");
    assert_has(out, "\"name\":\"SHOP\"", "GET /v1/accounts");

    // Devices, from examples/devices.csv.
    let (out, err) = (ran.out("2"), ran.err("2"));
    assert_has(
        err,
        "device sensor-1 added; creds written to sensor-1.creds",
        "device add",
    );
    assert_has(
        out,
        "4 devices added, 0 already present",
        "device add --from",
    );
    assert_has(out, "\"model\":\"p-40\",\"site\":\"plant\"", "device list");
    assert_has(err, "device sensor-1 rotated", "device rotate");
    assert_has(out, "device sensor-1 revoked", "device revoke");

    // The organisation and nsc.
    let out = ran.out("3");
    assert_has(
        out,
        "dry run: 14 changes planned, nothing written",
        "org apply --dry-run",
    );
    assert_has(out, "applied 14 changes", "org apply");
    assert_has(out, "organisation thecowboyai", "org show");
    assert_has(
        out,
        "exported operator ACME (nsc) to ./nsc-export",
        "export",
    );
    assert_has(out, "imported operator ACME", "import");
    assert_has(out, "everything was carried", "import");

    // After the revocation, alice is refused.
    let end = ran.out("end");
    assert_has(end, "alice refused", "alice after `user revoke`");
    assert_has(
        &ran.err("end").to_lowercase(),
        "authorization violation",
        "alice after `user revoke`",
    );

    // The files the README says it writes, 0600, in the scratch directory.
    let scratch = end
        .lines()
        .find_map(|l| l.strip_prefix("scratch "))
        .map(PathBuf::from)
        .expect("the scratch directory");
    assert!(scratch.starts_with(dir.path()), "{}", scratch.display());
    for file in [
        "alice.creds",
        "sensor-1.creds",
        "creds/sensor-2.creds",
        "creds/sensor-3.creds",
        "creds/pump-1.creds",
        "creds/gateway-1.creds",
    ] {
        assert_secret(&scratch.join(file));
    }
    assert!(scratch.join("nsc-export/manifest.json").is_file());
    // `nats-server` was the line under test.
    let log = std::fs::read_to_string(scratch.join("nats.log")).expect("nats.log");
    assert_has(&log, &format!("Version:  {}", server.version), "nats.log");
    // describe "hides the seed".
    let creds = std::fs::read_to_string(scratch.join("alice.creds")).expect("alice.creds");
    let seed = creds
        .lines()
        .find(|l| l.starts_with("SU"))
        .expect("a user seed in the creds");
    assert!(!ran.stdout.contains(seed), "describe printed the seed");
}

#[test]
fn readme_blocks_run_as_written_2_9() {
    walkthrough_runs_as_written(ServerLine::V2_9);
}

#[test]
fn readme_blocks_run_as_written_2_15() {
    walkthrough_runs_as_written(ServerLine::V2_15);
}
