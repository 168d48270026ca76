//! `warden bench chat`: the rooms gateway under load, measured from outside. The bench
//! starts a real nats-server and a `warden chat` gateway as a child process (so its
//! memory is its own), then drives real websocket clients from this process:
//!
//! - idle phase: N idle sockets (authenticated, each in a room, answering pings) held at
//!   once; the gateway's resident memory (`VmRSS` of `/proc/PID/status`) before and
//!   after, and bytes per connection;
//! - delivery phase: C clients in R rooms, each sending messages at a steady rate for S
//!   seconds; deliveries per second and delivery latency (the send time travels in the
//!   message text and is read by every receiver on the same clock);
//! - or, with `--messages N`, the closed loop: `--senders-per-room` members of each room
//!   send N messages each, keeping at most `--window` of their own in flight (the next
//!   one goes as soon as the sender's own echo arrives), so the gateway's round trip —
//!   store, publish, deliver — sets the pace rather than a fixed rate.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use warden_chat::token::{ChatClaims, sign};

use warden_ops::rooms::{ChatUser, NewRoomRequest, Rooms, RoomsPolicy, RuleRequest};
use warden_ops::{InitOptions, Warden};

use crate::bench::{CpuTime, cpu_time};

const AUDIENCE: &str = "chat.bench.invalid";
const ISSUER: &str = "users.bench.invalid";
/// Every bench client's entity: one entity rule `rw` per room lets them all in.
const ENTITY: &str = "e-bench";
/// Bound on every single step (connect, handshake, reply).
const STEP: Duration = Duration::from_secs(30);
/// Sockets opened at once while connecting.
const CONNECT_CONCURRENCY: usize = 200;

/// What `warden bench chat` measures, and against what.
#[derive(Debug, Clone)]
pub struct ChatBenchOptions {
    /// nats-server binary the bench starts.
    pub nats_server: PathBuf,
    /// Clients of the delivery phase (0 skips it).
    pub clients: u32,
    /// Rooms the clients are spread over (evenly).
    pub rooms: u32,
    /// Messages per second each client sends.
    pub rate: f64,
    /// Seconds of sending.
    pub seconds: u64,
    /// Idle connections held in the memory phase (0 skips it).
    pub idle: u32,
    /// Gateway binary (default: this executable).
    pub warden: Option<PathBuf>,
    /// Closed loop: messages each sender sends (0: the fixed-rate phase instead).
    pub messages: u32,
    /// Closed loop: a sender's own messages in flight at most.
    pub window: u32,
    /// Closed loop: senders per room (the first members of each room).
    pub senders_per_room: u32,
    /// Run the delivery phase again against the floor ([`super::fanout`]).
    pub floor: bool,
}

/// The idle phase's figures.
#[derive(Debug, Serialize)]
pub struct IdleReport {
    /// Sockets held at once.
    pub connections: u32,
    /// Seconds to open, authenticate and join them all.
    pub connect_seconds: f64,
    /// Gateway resident memory before, KiB.
    pub rss_before_kib: u64,
    /// Gateway resident memory with every socket open, KiB.
    pub rss_after_kib: u64,
    /// (after − before) / connections.
    pub bytes_per_connection: u64,
    /// The gateway's anonymous resident memory (`RssAnon`: its heap and stacks, without
    /// the pages of its executable) before, KiB.
    pub rss_anon_before_kib: u64,
    /// The same with every socket open, KiB.
    pub rss_anon_after_kib: u64,
    /// The gateway's resident pages of files (`RssFile`: its executable, libraries)
    /// with every socket open, KiB.
    pub rss_file_after_kib: u64,
}

/// The delivery phase's figures.
#[derive(Debug, Serialize)]
pub struct DeliveryReport {
    /// Clients connected.
    pub clients: u32,
    /// Rooms.
    pub rooms: u32,
    /// `rate` (every client sends at a fixed rate) or `closed_loop`.
    pub mode: &'static str,
    /// Messages per second each client meant to send (fixed rate).
    pub rate_per_client: f64,
    /// Closed loop: senders per room, their window and messages each.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_loop: Option<ClosedLoop>,
    /// Seconds of sending.
    pub seconds: f64,
    /// Messages sent.
    pub sent: u64,
    /// Deliveries expected (every message to every member of its room, the sender too).
    pub expected_deliveries: u64,
    /// Deliveries received.
    pub delivered: u64,
    /// Seconds from the first send to the last delivery (at least the sending time).
    pub delivery_seconds: f64,
    /// Deliveries per second over that time.
    pub delivered_per_s: f64,
    /// Delivery latency (send to receipt), milliseconds.
    pub latency_ms_p50: f64,
    /// 99th percentile.
    pub latency_ms_p99: f64,
    /// Worst.
    pub latency_ms_max: f64,
    /// Error frames received, by code.
    pub errors: BTreeMap<String, u64>,
    /// Gateway resident memory at the end, KiB.
    pub rss_kib: u64,
    /// Of which anonymous (`RssAnon`), KiB.
    pub rss_anon_kib: u64,
    /// Of which pages of files (`RssFile`: the executable and libraries), KiB.
    pub rss_file_kib: u64,
    /// The gateway's CPU time while deliveries ran (from the first send to the last
    /// delivery), user, milliseconds.
    pub gateway_cpu_user_ms: u64,
    /// The same, system (kernel) time, milliseconds.
    pub gateway_cpu_system_ms: u64,
    /// The gateway's CPU time per delivery (user + system), microseconds: the cost of a
    /// delivery, less dependent than the rates on what else the machine runs.
    pub gateway_cpu_us_per_delivery: f64,
}

/// The shape of the closed-loop workload.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ClosedLoop {
    /// Senders per room.
    pub senders_per_room: u32,
    /// Own messages in flight per sender, at most.
    pub window: u32,
    /// Messages each sender sends.
    pub messages: u32,
    /// Latency of the senders' own copies of their messages (the echo that lets a sender
    /// send its next one), milliseconds: the loop's round trip, beside the latency of every
    /// delivery.
    pub echo_latency_ms_p50: f64,
    /// 99th percentile.
    pub echo_latency_ms_p99: f64,
}

/// Everything `warden bench chat` measured.
#[derive(Debug, Serialize)]
pub struct ChatBenchReport {
    /// `nats-server --version`.
    pub nats_server: String,
    /// The gateway binary.
    pub gateway: String,
    /// Whether this executable is an optimised build.
    pub release_build: bool,
    /// CPUs available.
    pub cpus: usize,
    /// `/proc/loadavg` when the bench started.
    pub load_at_start: String,
    /// Soft limit of open files after raising it.
    pub nofile_limit: u64,
    /// Idle phase (absent when skipped).
    pub idle: Option<IdleReport>,
    /// Delivery phase (absent when skipped).
    pub delivery: Option<DeliveryReport>,
    /// With `--floor`: the same delivery phase against a bare websocket fan-out (no token
    /// check, no store, no NATS), run right after the gateway's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor: Option<DeliveryReport>,
    /// With `--floor`: the gateway's figures divided by the floor's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_to_floor: Option<FloorRatios>,
}

/// The gateway's delivery figures as ratios of the floor's, from the same run.
#[derive(Debug, Serialize)]
pub struct FloorRatios {
    /// Deliveries per second (below 1: the gateway is slower).
    pub delivered_per_s: f64,
    /// Latency p50 (above 1: the gateway is slower).
    pub latency_p50: f64,
    /// Latency p99.
    pub latency_p99: f64,
    /// CPU per delivery of the serving process.
    pub cpu_per_delivery: f64,
}

impl FloorRatios {
    fn of(gateway: &DeliveryReport, floor: &DeliveryReport) -> FloorRatios {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        FloorRatios {
            delivered_per_s: ratio(gateway.delivered_per_s, floor.delivered_per_s),
            latency_p50: ratio(gateway.latency_ms_p50, floor.latency_ms_p50),
            latency_p99: ratio(gateway.latency_ms_p99, floor.latency_ms_p99),
            cpu_per_delivery: ratio(
                gateway.gateway_cpu_us_per_delivery,
                floor.gateway_cpu_us_per_delivery,
            ),
        }
    }
}

/// The `p` quantile (0 to 1) of `sorted` microseconds, in milliseconds (0 when empty).
fn percentile_ms(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[idx]) / 1000.0
}

fn usage(msg: impl Into<String>) -> anyhow::Error {
    crate::cli::UsageError(msg.into()).into()
}

/// The serving child (the gateway, or with `--floor` the floor), killed on drop.
struct ServerChild {
    child: Child,
    addr: String,
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServerChild {
    fn rss_kib(&self) -> Result<u64> {
        status_kib(self.child.id(), "VmRSS")
    }

    fn rss_anon_kib(&self) -> Result<u64> {
        status_kib(self.child.id(), "RssAnon")
    }

    fn rss_file_kib(&self) -> Result<u64> {
        status_kib(self.child.id(), "RssFile")
    }

    fn cpu(&self) -> Result<CpuTime> {
        cpu_time(self.child.id())
    }
}

/// A `KiB` field (`VmRSS`, `RssAnon`) of a process's `/proc/PID/status`.
fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow!("no {field} in /proc/{pid}/status"))
}

/// Runs `warden bench chat`.
pub async fn bench(json: bool, args: ChatBenchOptions) -> Result<()> {
    if args.rooms == 0 || (args.clients > 0 && args.clients < args.rooms) {
        return Err(usage("--rooms must be at least 1 and at most --clients"));
    }
    if !(args.rate > 0.0 && args.rate <= 1_000.0) || args.seconds == 0 {
        return Err(usage(
            "--rate must be in (0, 1000] messages per second and --seconds at least 1",
        ));
    }
    if args.floor && args.clients == 0 {
        return Err(usage(
            "--floor repeats the delivery phase against a bare fan-out: it needs --clients above 0",
        ));
    }
    if args.messages > 0 {
        if args.window == 0 {
            return Err(usage("--window must be at least 1"));
        }
        if args.senders_per_room == 0
            || u64::from(args.senders_per_room) * u64::from(args.rooms) > u64::from(args.clients)
        {
            return Err(usage(
                "--senders-per-room must be at least 1 and at most --clients / --rooms",
            ));
        }
    }
    // Sockets of the bench and of the gateway (a child inherits the raised limit), plus
    // the files and NATS connections of each.
    let want = u64::from(args.idle.max(args.clients)) + 512;
    let nofile = rlimit::increase_nofile_limit(want).context("raising the open files limit")?;
    if nofile < want {
        bail!(
            "{} connections need {want} open files, the hard limit allows {nofile}: raise it (ulimit -Hn) or lower --idle/--clients",
            args.idle.max(args.clients)
        );
    }
    let load_at_start = std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string();

    let dir = tempfile::Builder::new()
        .prefix("warden-bench-chat-")
        .tempdir()?;
    let data = dir.path().join("data");
    crate::paths::ensure_data_dir(&data)?;
    let url = crate::paths::default_database_url(&data);
    let key = warden_store::MasterKey::from_env_or_file(&data, true)?;
    let store = warden_store::Store::open(&url, key).await?;
    let mut w = Warden::open(store, warden_ops::Actor::operator("bench")).await?;
    w.init(InitOptions {
        operator: "BENCH".into(),
        account: None,
        user: None,
        settings: Default::default(),
        service_urls: vec![],
        migrations: warden_core::default_migrations(warden_core::bootstrap::DEFAULT_SERVICE_PREFIX),
    })
    .await?;
    let creds = crate::chat::gateway_creds(&w, crate::chat::DEFAULT_ACCOUNT).await?;
    let creds_path = dir.path().join("gateway.creds");
    crate::paths::write_secret_file(&creds_path, creds.as_bytes())?;
    let room_ids = create_rooms(&w, args.rooms).await?;
    let server =
        crate::bench::server::BenchServer::start(&w, &args.nats_server, dir.path()).await?;

    let secret = data_encoding::HEXLOWER.encode(&rand::random::<[u8; 32]>());
    let warden_bin = match &args.warden {
        Some(p) => p.clone(),
        None => std::env::current_exe().context("locating this executable")?,
    };
    // A closed-loop sender sends as fast as its echoes come back: the rate limit must not
    // be what is measured.
    let rate_flag = if args.messages > 0 {
        100_000
    } else {
        ((args.rate * 2.0).ceil() as u64).max(20)
    };
    let gateway = start_gateway(
        &warden_bin,
        &data,
        &url,
        &server.url,
        &creds_path,
        &secret,
        rate_flag,
        dir.path(),
    )?;
    let tokens = Tokens { secret };

    let idle = if args.idle > 0 {
        Some(idle_phase(json, &gateway, &tokens, &room_ids, args.idle).await?)
    } else {
        None
    };
    let delivery = deliveries(json, &gateway, &tokens, &room_ids, &args).await?;
    drop(gateway);
    let floor = if args.floor && args.clients > 0 {
        let floor = start_floor(dir.path())?;
        deliveries(json, &floor, &tokens, &room_ids, &args).await?
    } else {
        None
    };
    let gateway_to_floor = match (&delivery, &floor) {
        (Some(d), Some(f)) => Some(FloorRatios::of(d, f)),
        _ => None,
    };
    let report = ChatBenchReport {
        nats_server: server.version.clone(),
        gateway: warden_bin.display().to_string(),
        release_build: !cfg!(debug_assertions),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_at_start,
        nofile_limit: nofile,
        idle,
        delivery,
        floor,
        gateway_to_floor,
    };
    print_report(json, &report)
}

/// The delivery phase the options ask for (none without clients).
async fn deliveries(
    json: bool,
    server: &ServerChild,
    tokens: &Tokens,
    rooms: &[i64],
    args: &ChatBenchOptions,
) -> Result<Option<DeliveryReport>> {
    Ok(if args.clients > 0 && args.messages > 0 {
        Some(closed_loop_phase(json, server, tokens, rooms, args).await?)
    } else if args.clients > 0 {
        Some(delivery_phase(json, server, tokens, rooms, args).await?)
    } else {
        None
    })
}

fn print_report(json: bool, r: &ChatBenchReport) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    println!(
        "gateway {} ({} build), {}; {} CPUs, load at start {}",
        r.gateway,
        if r.release_build { "release" } else { "debug" },
        r.nats_server,
        r.cpus,
        r.load_at_start
    );
    if let Some(i) = &r.idle {
        println!(
            "idle: {} sockets held (opened, authenticated, joined in {:.1} s); gateway RSS {} KiB -> {} KiB: {} bytes per connection (anonymous {} KiB -> {} KiB; files {} KiB)",
            i.connections,
            i.connect_seconds,
            i.rss_before_kib,
            i.rss_after_kib,
            i.bytes_per_connection,
            i.rss_anon_before_kib,
            i.rss_anon_after_kib,
            i.rss_file_after_kib
        );
    }
    if let Some(d) = &r.delivery {
        print_delivery("gateway", d);
    }
    if let Some(d) = &r.floor {
        print_delivery("floor (bare websocket fan-out)", d);
    }
    if let Some(q) = &r.gateway_to_floor {
        println!(
            "gateway / floor: {:.2}× the deliveries per second, {:.2}× the p50, {:.2}× the p99, {:.2}× the CPU per delivery",
            q.delivered_per_s, q.latency_p50, q.latency_p99, q.cpu_per_delivery
        );
    }
    Ok(())
}

/// One delivery phase's human line, for the serving process `who`.
fn print_delivery(who: &str, d: &DeliveryReport) {
    if let Some(c) = &d.closed_loop {
        println!(
            "{who}: closed loop, {} clients in {} rooms, {} sender(s) per room with {} in flight, {} messages each: {} sent, {} of {} delivered in {:.2} s, {:.0} deliveries/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (senders' echoes p50 {:.2} ms, p99 {:.2} ms); RSS {} KiB ({} KiB anonymous, {} KiB files); CPU {} ms user + {} ms system = {:.1} µs per delivery",
            d.clients,
            d.rooms,
            c.senders_per_room,
            c.window,
            c.messages,
            d.sent,
            d.delivered,
            d.expected_deliveries,
            d.delivery_seconds,
            d.delivered_per_s,
            d.latency_ms_p50,
            d.latency_ms_p99,
            d.latency_ms_max,
            c.echo_latency_ms_p50,
            c.echo_latency_ms_p99,
            d.rss_kib,
            d.rss_anon_kib,
            d.rss_file_kib,
            d.gateway_cpu_user_ms,
            d.gateway_cpu_system_ms,
            d.gateway_cpu_us_per_delivery
        );
    } else {
        println!(
            "{who}: {} clients in {} rooms, {} msg/s each for {:.0} s: {} sent, {} of {} delivered, {:.0} deliveries/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; RSS {} KiB ({} KiB anonymous, {} KiB files); CPU {} ms user + {} ms system = {:.1} µs per delivery",
            d.clients,
            d.rooms,
            d.rate_per_client,
            d.seconds,
            d.sent,
            d.delivered,
            d.expected_deliveries,
            d.delivered_per_s,
            d.latency_ms_p50,
            d.latency_ms_p99,
            d.latency_ms_max,
            d.rss_kib,
            d.rss_anon_kib,
            d.rss_file_kib,
            d.gateway_cpu_user_ms,
            d.gateway_cpu_system_ms,
            d.gateway_cpu_us_per_delivery
        );
    }
    if !d.errors.is_empty() {
        println!("{who}: errors: {:?}", d.errors);
    }
}

/// Rooms owned by the bench, each open to every member of [`ENTITY`], made through the
/// rooms operations (as the gateway would) before the gateway starts.
async fn create_rooms(w: &Warden, n: u32) -> Result<Vec<i64>> {
    let rooms = Rooms::new(
        w.clone(),
        RoomsPolicy {
            create_level: 0,
            max_message_bytes: 4096,
        },
    );
    let owner = ChatUser {
        user_uuid: "u-bench-owner".into(),
        entity_uuid: ENTITY.into(),
        level_on_entity: 1_000,
    };
    let mut ids = Vec::with_capacity(n as usize);
    for i in 0..n {
        let room = rooms
            .create(
                &owner,
                NewRoomRequest {
                    name: format!("bench-{i}"),
                    kind: Some("group".into()),
                    level_admin: Some(1_000),
                    rule_cap: Some(10),
                },
            )
            .await?;
        rooms
            .put_rule(
                &owner,
                room.room.id,
                RuleRequest {
                    entity_uuid: ENTITY.into(),
                    permissions: "rw".into(),
                    level: Some(0),
                },
            )
            .await?;
        ids.push(room.room.id);
    }
    Ok(ids)
}

#[allow(clippy::too_many_arguments)]
fn start_gateway(
    bin: &Path,
    data: &Path,
    url: &str,
    nats: &str,
    creds: &Path,
    secret: &str,
    rate: u64,
    dir: &Path,
) -> Result<ServerChild> {
    let mut cmd = Command::new(bin);
    cmd.arg("--data-dir")
        .arg(data)
        .args(["--database-url", url, "chat", "--nats", nats])
        .args(["--http", "127.0.0.1:0", "--creds"])
        .arg(creds)
        .args(["--chat-rate", &rate.to_string()])
        .args(["--chat-burst", &(rate * 2).to_string()])
        .env("WARDEN_CHAT_HS256_SECRET", secret)
        .env("WARDEN_CHAT_AUDIENCE", AUDIENCE)
        .env("WARDEN_CHAT_ISSUER", ISSUER)
        .env_remove("WARDEN_DATABASE_URL");
    spawn_server(cmd, &dir.join("gateway.log"))
}

/// The floor ([`super::fanout`]), run by this executable.
fn start_floor(dir: &Path) -> Result<ServerChild> {
    let mut cmd = Command::new(std::env::current_exe().context("locating this executable")?);
    cmd.args(["bench", "chat-floor", "--http", "127.0.0.1:0"]);
    spawn_server(cmd, &dir.join("floor.log"))
}

/// Starts `cmd` (stderr to `log`) and reads the address it prints on its first line.
fn spawn_server(mut cmd: Command, log_path: &Path) -> Result<ServerChild> {
    let log = std::fs::File::create(log_path)?;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {}", cmd.get_program().to_string_lossy()))?;
    let stdout = child.stdout.take().context("server stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let mut gw = ServerChild {
        child,
        addr: String::new(),
    };
    let line = rx.recv_timeout(STEP).map_err(|_| {
        anyhow!(
            "the server did not print its address (log: {})",
            log_path.display()
        )
    })?;
    gw.addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .ok_or_else(|| anyhow!("the server printed {line:?} (log: {})", log_path.display()))?
        .to_string();
    Ok(gw)
}

struct Tokens {
    secret: String,
}

impl Tokens {
    fn for_client(&self, i: u32) -> Result<String> {
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs() as i64
            + 24 * 3600;
        Ok(sign(
            &ChatClaims {
                aud: AUDIENCE.into(),
                iss: ISSUER.into(),
                exp,
                user_uuid: format!("u-bench-{i}"),
                entity_uuid: ENTITY.into(),
                level_on_entity: 1,
            },
            self.secret.as_bytes(),
        )?)
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A server frame, as much as the bench reads of it.
#[derive(Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    code: Option<String>,
}

async fn next_frame(ws: &mut Socket) -> Result<Frame> {
    loop {
        let msg = tokio::time::timeout(STEP, ws.next())
            .await
            .map_err(|_| anyhow!("no reply from the gateway in {STEP:?}"))?
            .ok_or_else(|| anyhow!("the gateway closed the socket"))??;
        match msg {
            Message::Text(t) => return Ok(serde_json::from_str(t.as_str())?),
            Message::Close(c) => bail!("the gateway closed the socket: {c:?}"),
            _ => continue,
        }
    }
}

async fn expect_status(ws: &mut Socket, want: &str) -> Result<()> {
    let f = next_frame(ws).await?;
    if f.kind == "status" && f.content.as_deref() == Some(want) {
        Ok(())
    } else {
        bail!(
            "expected {want}, got {} {:?} {:?}",
            f.kind,
            f.content,
            f.code
        )
    }
}

/// Opens a socket, authenticates as client `i` and joins `room`.
async fn open_client(addr: &str, token: String, room: i64) -> Result<Socket> {
    // Small buffers on the client side: ten thousand sockets live in this process.
    let cfg = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut ws, _) = tokio::time::timeout(
        STEP,
        tokio_tungstenite::connect_async_with_config(format!("ws://{addr}/chat"), Some(cfg), true),
    )
    .await
    .map_err(|_| anyhow!("connecting took more than {STEP:?}"))??;
    expect_status(&mut ws, "START?").await?;
    let hello = serde_json::json!({"type": "token", "content": token}).to_string();
    ws.send(Message::text(hello)).await?;
    expect_status(&mut ws, "READY").await?;
    let select = serde_json::json!({"type": "select_room", "room_id": room}).to_string();
    ws.send(Message::text(select)).await?;
    expect_status(&mut ws, "CONNECTED").await?;
    Ok(ws)
}

/// Opens `n` clients (client `i` in room `i % rooms`), a bounded number at a time.
async fn open_clients(
    json: bool,
    what: &str,
    addr: &str,
    tokens: &Tokens,
    rooms: &[i64],
    n: u32,
) -> Result<Vec<(u32, Socket)>> {
    let bar = super::super::bench::progress(json, u64::from(n), what);
    let mut jobs = Vec::with_capacity(n as usize);
    for i in 0..n {
        jobs.push((i, tokens.for_client(i)?, rooms[i as usize % rooms.len()]));
    }
    let opened: Vec<Result<(u32, Socket)>> = futures::stream::iter(jobs)
        .map(|(i, token, room)| {
            let bar = bar.clone();
            async move {
                let ws = open_client(addr, token, room)
                    .await
                    .with_context(|| format!("client {i}"))?;
                bar.inc(1);
                Ok((i, ws))
            }
        })
        .buffer_unordered(CONNECT_CONCURRENCY)
        .collect()
        .await;
    bar.finish_and_clear();
    opened.into_iter().collect()
}

async fn idle_phase(
    json: bool,
    gw: &ServerChild,
    tokens: &Tokens,
    rooms: &[i64],
    n: u32,
) -> Result<IdleReport> {
    let rss_before_kib = gw.rss_kib()?;
    let rss_anon_before_kib = gw.rss_anon_kib()?;
    let t0 = Instant::now();
    let sockets = open_clients(json, "idle sockets", &gw.addr, tokens, rooms, n).await?;
    let connect_seconds = t0.elapsed().as_secs_f64();
    // Every socket keeps reading (answering the gateway's pings) while held.
    let mut readers = Vec::with_capacity(sockets.len());
    for (_, mut ws) in sockets {
        readers.push(tokio::spawn(async move {
            while let Some(Ok(_)) = ws.next().await {}
        }));
    }
    // Every socket was acknowledged (CONNECTED) before this: the gateway holds them all.
    let rss_after_kib = gw.rss_kib()?;
    let rss_anon_after_kib = gw.rss_anon_kib()?;
    let rss_file_after_kib = gw.rss_file_kib()?;
    for r in &readers {
        r.abort();
    }
    let grown = rss_after_kib.saturating_sub(rss_before_kib) * 1024;
    Ok(IdleReport {
        connections: n,
        connect_seconds,
        rss_before_kib,
        rss_after_kib,
        bytes_per_connection: grown / u64::from(n),
        rss_anon_before_kib,
        rss_anon_after_kib,
        rss_file_after_kib,
    })
}

/// What one receiving client saw.
#[derive(Default)]
struct Seen {
    latencies_us: Vec<u32>,
    /// Closed loop: the latencies of the sender's own copies (its echoes), which pace it.
    echo_latencies_us: Vec<u32>,
    /// When the last message arrived (since the start of sending).
    last_arrival: Duration,
    errors: BTreeMap<String, u64>,
}

async fn delivery_phase(
    json: bool,
    gw: &ServerChild,
    tokens: &Tokens,
    rooms: &[i64],
    args: &ChatBenchOptions,
) -> Result<DeliveryReport> {
    let sockets = open_clients(json, "clients", &gw.addr, tokens, rooms, args.clients).await?;
    let cpu_before = gw.cpu()?;
    let epoch = Instant::now();
    let sending = Duration::from_secs(args.seconds);
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let sent = Arc::new(AtomicU64::new(0));
    let delivered = Arc::new(AtomicU64::new(0));
    let mut per_room_sent: Vec<Arc<AtomicU64>> = Vec::new();
    for _ in rooms {
        per_room_sent.push(Arc::new(AtomicU64::new(0)));
    }
    let members_per_room: Vec<u64> = (0..rooms.len())
        .map(|r| {
            (0..args.clients)
                .filter(|i| *i as usize % rooms.len() == r)
                .count() as u64
        })
        .collect();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut receivers = Vec::new();
    let mut senders = Vec::new();
    for (i, ws) in sockets {
        let (mut sink, mut stream) = ws.split();
        let room_sent = per_room_sent[i as usize % rooms.len()].clone();
        let sent = sent.clone();
        // Senders start spread over one interval, so the load is steady, not in waves.
        let offset = interval.mul_f64(f64::from(i) / f64::from(args.clients));
        senders.push(tokio::spawn(async move {
            let start = tokio::time::Instant::from_std(epoch) + offset;
            let mut tick = tokio::time::interval_at(start, interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut seq = 0u64;
            loop {
                tick.tick().await;
                let at = epoch.elapsed();
                if at >= sending {
                    break;
                }
                let body = serde_json::json!({
                    "type": "message",
                    "content": format!("bench {i} {seq} {}", at.as_micros()),
                })
                .to_string();
                if sink.send(Message::text(body)).await.is_err() {
                    break;
                }
                seq += 1;
                sent.fetch_add(1, Ordering::Relaxed);
                room_sent.fetch_add(1, Ordering::Relaxed);
            }
            sink
        }));
        let delivered = delivered.clone();
        let mut stop = stop_rx.clone();
        receivers.push(tokio::spawn(async move {
            let mut seen = Seen::default();
            loop {
                let msg = tokio::select! {
                    m = stream.next() => m,
                    _ = stop.wait_for(|s| *s) => break,
                };
                let Some(Ok(Message::Text(t))) = msg else {
                    match msg {
                        Some(Ok(_)) => continue,
                        _ => break,
                    }
                };
                let now = epoch.elapsed();
                let Ok(f) = serde_json::from_str::<Frame>(t.as_str()) else {
                    *seen.errors.entry("not_json".into()).or_default() += 1;
                    continue;
                };
                match f.kind.as_str() {
                    "message" => {
                        let sent_us = f
                            .content
                            .as_deref()
                            .and_then(|c| c.rsplit(' ').next())
                            .and_then(|t| t.parse::<u128>().ok());
                        if let Some(sent_us) = sent_us {
                            let lat = now.as_micros().saturating_sub(sent_us);
                            seen.latencies_us.push(lat.min(u128::from(u32::MAX)) as u32);
                            delivered.fetch_add(1, Ordering::Relaxed);
                            seen.last_arrival = now;
                        }
                    }
                    "error" => {
                        *seen
                            .errors
                            .entry(f.code.unwrap_or_else(|| "?".into()))
                            .or_default() += 1;
                    }
                    _ => {}
                }
            }
            seen
        }));
    }

    let bar = super::super::bench::progress(json, args.seconds, "sending (s)");
    while epoch.elapsed() < sending {
        tokio::time::sleep(Duration::from_millis(250)).await; // progress display only
        bar.set_position(epoch.elapsed().as_secs().min(args.seconds));
    }
    let mut sinks = Vec::new();
    for s in senders {
        sinks.push(s.await.context("sender task")?);
    }
    let sent_total = sent.load(Ordering::Relaxed);
    let expected: u64 = per_room_sent
        .iter()
        .zip(&members_per_room)
        .map(|(s, m)| s.load(Ordering::Relaxed) * m)
        .sum();
    // Drain: until every delivery arrived, or ten seconds without progress.
    let mut last = delivered.load(Ordering::Relaxed);
    let mut last_change = Instant::now();
    while delivered.load(Ordering::Relaxed) < expected
        && last_change.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(100)).await; // polling a counter
        let now = delivered.load(Ordering::Relaxed);
        if now != last {
            last = now;
            last_change = Instant::now();
        }
    }
    bar.finish_and_clear();
    let cpu = gw.cpu()?.since(cpu_before);
    let rss_kib = gw.rss_kib()?;
    let rss_anon_kib = gw.rss_anon_kib()?;
    let rss_file_kib = gw.rss_file_kib()?;
    let _ = stop_tx.send(true);
    let mut latencies = Vec::new();
    let mut errors = BTreeMap::new();
    let mut span = sending;
    for r in receivers {
        let seen = r.await.context("receiver task")?;
        span = span.max(seen.last_arrival);
        latencies.extend(seen.latencies_us);
        for (k, v) in seen.errors {
            *errors.entry(k).or_default() += v;
        }
    }
    drop(sinks);
    latencies.sort_unstable();
    let pct = |p: f64| percentile_ms(&latencies, p);
    let delivered_total = delivered.load(Ordering::Relaxed);
    Ok(DeliveryReport {
        clients: args.clients,
        rooms: rooms.len() as u32,
        mode: "rate",
        rate_per_client: args.rate,
        closed_loop: None,
        seconds: sending.as_secs_f64(),
        sent: sent_total,
        expected_deliveries: expected,
        delivered: delivered_total,
        delivery_seconds: span.as_secs_f64(),
        // Over the time deliveries took: sending, plus the tail of the last ones.
        delivered_per_s: delivered_total as f64 / span.as_secs_f64(),
        latency_ms_p50: pct(0.50),
        latency_ms_p99: pct(0.99),
        latency_ms_max: pct(1.0),
        errors,
        rss_kib,
        rss_anon_kib,
        rss_file_kib,
        gateway_cpu_user_ms: cpu.user_ms,
        gateway_cpu_system_ms: cpu.system_ms,
        gateway_cpu_us_per_delivery: (cpu.user_ms + cpu.system_ms) as f64 * 1000.0
            / delivered_total.max(1) as f64,
    })
}

/// Reads one frame a client received at `now` into `seen`: a bench message's latency
/// (its send time is the last word of its text), or an error's code. Returns the index
/// of the client that sent the message, if it was one.
fn record(seen: &mut Seen, text: &str, now: Duration, delivered: &AtomicU64) -> Option<u32> {
    let Ok(f) = serde_json::from_str::<Frame>(text) else {
        *seen.errors.entry("not_json".into()).or_default() += 1;
        return None;
    };
    match f.kind.as_str() {
        "message" => {
            let content = f.content.as_deref()?;
            let mut words = content.split(' ');
            let sender = words.nth(1).and_then(|w| w.parse::<u32>().ok());
            let sent_us = content
                .rsplit(' ')
                .next()
                .and_then(|t| t.parse::<u128>().ok())?;
            let lat = now.as_micros().saturating_sub(sent_us);
            seen.latencies_us.push(lat.min(u128::from(u32::MAX)) as u32);
            delivered.fetch_add(1, Ordering::Relaxed);
            seen.last_arrival = now;
            sender
        }
        "error" => {
            *seen
                .errors
                .entry(f.code.unwrap_or_else(|| "?".into()))
                .or_default() += 1;
            None
        }
        _ => None,
    }
}

/// The closed loop: the first `senders_per_room` members of each room send `messages`
/// each, at most `window` of their own in flight; every member (senders too) times every
/// delivery from send to receipt.
async fn closed_loop_phase(
    json: bool,
    gw: &ServerChild,
    tokens: &Tokens,
    rooms: &[i64],
    args: &ChatBenchOptions,
) -> Result<DeliveryReport> {
    let sockets = open_clients(json, "clients", &gw.addr, tokens, rooms, args.clients).await?;
    let shape = ClosedLoop {
        senders_per_room: args.senders_per_room,
        window: args.window,
        messages: args.messages,
        echo_latency_ms_p50: 0.0,
        echo_latency_ms_p99: 0.0,
    };
    let members_per_room: Vec<u64> = (0..rooms.len())
        .map(|r| {
            (0..args.clients)
                .filter(|i| *i as usize % rooms.len() == r)
                .count() as u64
        })
        .collect();
    let expected: u64 = members_per_room
        .iter()
        .map(|m| m * u64::from(args.senders_per_room) * u64::from(args.messages))
        .sum();
    // Client i is in room i % rooms: clients 0 .. rooms × senders_per_room are the senders.
    let senders = rooms.len() as u32 * args.senders_per_room;
    let sent = Arc::new(AtomicU64::new(0));
    let delivered = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (go_tx, go_rx) = tokio::sync::watch::channel(None::<Instant>);
    let mut tasks = Vec::new();
    for (i, mut ws) in sockets {
        let delivered = delivered.clone();
        let sent = sent.clone();
        let mut stop = stop_rx.clone();
        let mut go = go_rx.clone();
        let to_send = if i < senders { args.messages } else { 0 };
        let window = args.window;
        tasks.push(tokio::spawn(async move {
            let mut seen = Seen::default();
            let Ok(epoch) = go
                .wait_for(Option::is_some)
                .await
                .map(|e| e.unwrap_or_else(Instant::now))
            else {
                return seen;
            };
            let (mut seq, mut in_flight) = (0u32, 0u32);
            loop {
                while seq < to_send && in_flight < window {
                    let body = serde_json::json!({
                        "type": "message",
                        "content": format!("bench {i} {seq} {}", epoch.elapsed().as_micros()),
                    })
                    .to_string();
                    if ws.send(Message::text(body)).await.is_err() {
                        return seen;
                    }
                    seq += 1;
                    in_flight += 1;
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                let msg = tokio::select! {
                    m = ws.next() => m,
                    _ = stop.wait_for(|s| *s) => break,
                };
                match msg {
                    Some(Ok(Message::Text(t))) => {
                        let from = record(&mut seen, t.as_str(), epoch.elapsed(), &delivered);
                        if from == Some(i) {
                            in_flight = in_flight.saturating_sub(1);
                            if let Some(&lat) = seen.latencies_us.last() {
                                seen.echo_latencies_us.push(lat);
                            }
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => break,
                }
            }
            seen
        }));
    }
    let bar = super::super::bench::progress(json, expected, "deliveries");
    let cpu_before = gw.cpu()?;
    let epoch = Instant::now();
    let _ = go_tx.send(Some(epoch));
    // Until every delivery arrived, or ten seconds without progress.
    let mut last = delivered.load(Ordering::Relaxed);
    let mut last_change = Instant::now();
    while last < expected && last_change.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await; // polling a counter
        let now = delivered.load(Ordering::Relaxed);
        bar.set_position(now);
        if now != last {
            last = now;
            last_change = Instant::now();
        }
    }
    bar.finish_and_clear();
    let cpu = gw.cpu()?.since(cpu_before);
    let rss_kib = gw.rss_kib()?;
    let rss_anon_kib = gw.rss_anon_kib()?;
    let rss_file_kib = gw.rss_file_kib()?;
    let _ = stop_tx.send(true);
    let mut latencies = Vec::new();
    let mut echoes = Vec::new();
    let mut errors = BTreeMap::new();
    let mut span = Duration::ZERO;
    for t in tasks {
        let seen = t.await.context("client task")?;
        span = span.max(seen.last_arrival);
        latencies.extend(seen.latencies_us);
        echoes.extend(seen.echo_latencies_us);
        for (k, v) in seen.errors {
            *errors.entry(k).or_default() += v;
        }
    }
    latencies.sort_unstable();
    echoes.sort_unstable();
    let pct = |p: f64| percentile_ms(&latencies, p);
    let delivered_total = delivered.load(Ordering::Relaxed);
    Ok(DeliveryReport {
        clients: args.clients,
        rooms: rooms.len() as u32,
        mode: "closed_loop",
        rate_per_client: 0.0,
        closed_loop: Some(ClosedLoop {
            echo_latency_ms_p50: percentile_ms(&echoes, 0.50),
            echo_latency_ms_p99: percentile_ms(&echoes, 0.99),
            ..shape
        }),
        seconds: span.as_secs_f64(),
        sent: sent.load(Ordering::Relaxed),
        expected_deliveries: expected,
        delivered: delivered_total,
        delivery_seconds: span.as_secs_f64(),
        delivered_per_s: delivered_total as f64 / span.as_secs_f64().max(1e-6),
        latency_ms_p50: pct(0.50),
        latency_ms_p99: pct(0.99),
        latency_ms_max: pct(1.0),
        errors,
        rss_kib,
        rss_anon_kib,
        rss_file_kib,
        gateway_cpu_user_ms: cpu.user_ms,
        gateway_cpu_system_ms: cpu.system_ms,
        gateway_cpu_us_per_delivery: (cpu.user_ms + cpu.system_ms) as f64 * 1000.0
            / delivered_total.max(1) as f64,
    })
}
