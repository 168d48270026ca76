//! `warden bench cluster`: how a cluster of nats-servers running `full` account resolvers
//! spreads the account updates Warden pushes to one of them, against one server alone in
//! the same run.
//!
//! Three servers on 127.0.0.1 with configs Warden rendered (operator trust, full resolver,
//! routes to each other, clustered JetStream), and one server without routes:
//!
//! - **bulk**: N new accounts pushed to node 1 the way the relay pushes (its lanes and
//!   requests in flight); the push time, and the time after the last reply until node 3's
//!   own store holds every one of those JWTs;
//! - **one update at scale**: with the N accounts in place, a user of one of them revoked
//!   and the account pushed to node 1; the time until node 3 disconnects a client of that
//!   user connected to node 3 (p50/p99 over the rounds), and afterwards a new connect of
//!   the user refused there;
//! - each server's resident memory (VARZ `mem`) before and after the N accounts.
//!
//! Node 3 is read where its state lives, not through a request any server may answer: the
//! full resolver keeps one `<account>.jwt` file per account in its directory, which the
//! bench compares with the pushed JWTs; as a cross-check, node 3's own reply to
//! `$SYS.REQ.CLAIMS.LIST` (every server answers it and names itself:
//! [`ResolverClient::list_each`]). A LOOKUP would not
//! do: its reply does not say which server sent it, and a resolver lacking an account
//! fetches it from its peers when asked. Memory is asked of each server by its id
//! (`$SYS.REQ.SERVER.<id>.VARZ`).
//!
//! Every resolver of the cluster subscribes to the update subject itself, so a push
//! published on node 1 reaches nodes 2 and 3 over the routes as an ordinary message
//! (each stores it and answers; the pusher keeps the first answer): what the lag shows is
//! that delivery plus node 3's own store work, not a relay by node 1.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use nats_jwt::{Operator, OperatorClaims};
use serde::Serialize;
use tokio::sync::mpsc;
use warden_core::{AccountSpec, UserSpec};
use warden_nats::ResolverClient;
use warden_nats::config::{ClusterBlock, ServerConfig};
use warden_nats::resolver::ServerInfo;
use warden_ops::Warden;
use warden_ops::relay::RelayConfig;

use crate::bench::callout::percentile;
use crate::bench::server::BenchServer;
use crate::cli::print_json;

/// Servers in the cluster; the bench pushes to the first and watches the last.
const NODES: usize = 3;
/// Bound on a server's store catching up with a bulk push (past one resolver sync
/// interval, 2 minutes in the rendered config, so a missed update would still arrive).
const STORE_BOUND: Duration = Duration::from_secs(150);
/// Bound on every other wait (cluster formed, a revoked client disconnected).
const WAIT: Duration = Duration::from_secs(30);
/// How long a LIST waits for a server's answer: at 10,000 accounts a server reads every
/// JWT file to answer, which took over 5 s on a loaded machine (load average 5–9).
const LIST_WAIT: Duration = Duration::from_secs(20);
/// The account whose user is revoked in the one-update rounds (one of the N).
const TARGET: &str = "ACC_000000";

/// Arguments of `warden bench cluster`.
#[derive(Debug, Clone)]
pub struct ClusterBenchOptions {
    /// Accounts pushed in bulk.
    pub accounts: u32,
    /// One-update rounds (a user revoked each time).
    pub rounds: u32,
    /// nats-server binary the bench starts.
    pub nats_server: PathBuf,
}

/// Result of `warden bench cluster`.
#[derive(Debug, Serialize)]
pub struct ClusterBenchReport {
    /// Accounts pushed in bulk.
    pub accounts: u32,
    /// One-update rounds.
    pub rounds: u32,
    /// nats-server version line.
    pub nats_server: String,
    /// `/proc/loadavg` (1, 5, 15 minutes) when the bench started.
    pub load_start: String,
    /// `/proc/loadavg` when it ended.
    pub load_end: String,
    /// Connections the bulk push is spread over (the relay's).
    pub lanes: usize,
    /// Pushes in flight at once (the relay's).
    pub concurrency: usize,
    /// Seconds to create the N accounts in Warden (one transaction each; not pushed).
    pub create_seconds: f64,
    /// Three routed servers: pushed to node 1, node 3 watched.
    pub cluster: TopologyReport,
    /// One server alone: pushed to and watched.
    pub single: TopologyReport,
    /// Cluster ÷ single.
    pub ratio: Ratios,
}

/// What one topology did.
#[derive(Debug, Serialize)]
pub struct TopologyReport {
    /// Servers.
    pub servers: usize,
    /// The server pushed to.
    pub pushed_to: String,
    /// The server whose own state is read.
    pub watched: String,
    /// The bulk push.
    pub bulk: BulkReport,
    /// One update at scale.
    pub one_update: OneUpdateReport,
    /// Each server's memory.
    pub memory: Vec<ServerMemory>,
}

/// N accounts pushed at once.
#[derive(Debug, Serialize)]
pub struct BulkReport {
    /// Seconds until every push was answered.
    pub push_seconds: f64,
    /// Accounts pushed per second.
    pub accounts_per_s: f64,
    /// Pushes that failed.
    pub failed: usize,
    /// The first failure, if any.
    pub first_error: Option<String>,
    /// Which server's answer came first, per push (server name → pushes).
    pub answered_first_by: BTreeMap<String, usize>,
    /// Milliseconds after the last answer until the watched server's resolver directory
    /// held every pushed JWT (`null` when it did not within the bound).
    pub lag_ms: Option<f64>,
    /// Reads of that directory it took (1: complete at the first read, so the lag is at
    /// most that read's own duration).
    pub reads: u32,
    /// Milliseconds of the last read (the resolution of `lag_ms`).
    pub last_read_ms: f64,
    /// Pushed accounts the watched server still lacked (or held another JWT of) at the end.
    pub missing: usize,
    /// Pushed accounts named in the watched server's own `$SYS.REQ.CLAIMS.LIST` reply.
    pub listed: usize,
    /// Bytes of the watched server's resolver directory (all its `.jwt` files).
    pub store_bytes: u64,
}

/// A user revoked and its account pushed, `rounds` times.
#[derive(Debug, Serialize)]
pub struct OneUpdateReport {
    /// Rounds.
    pub rounds: u32,
    /// From the push until the watched server disconnected the user's client: p50, ms.
    pub enforced_ms_p50: f64,
    /// The same, p99 (with 20 rounds: the slowest).
    pub enforced_ms_p99: f64,
    /// The same, slowest.
    pub enforced_ms_max: f64,
    /// The push's own answer (first server to answer), p50, ms.
    pub push_ms_p50: f64,
    /// Afterwards a new connect of the last revoked user to the watched server was refused.
    pub refused_after: bool,
}

/// One server's resident memory, as its VARZ reports it.
#[derive(Debug, Serialize)]
pub struct ServerMemory {
    /// Server name (its id when unnamed).
    pub server: String,
    /// Bytes before the bulk push.
    pub before_bytes: u64,
    /// Bytes after the bulk push and the rounds.
    pub after_bytes: u64,
}

/// Cluster figures divided by the single server's.
#[derive(Debug, Serialize)]
pub struct Ratios {
    /// Bulk push seconds.
    pub push_seconds: f64,
    /// One update enforced, p50.
    pub enforced_p50: f64,
    /// One update enforced, p99.
    pub enforced_p99: f64,
}

/// A server the bench started and reads.
struct Node {
    server: BenchServer,
    name: String,
    resolver_dir: PathBuf,
}

/// Runs `warden bench cluster`.
pub async fn bench(json: bool, args: ClusterBenchOptions) -> anyhow::Result<()> {
    if args.accounts == 0 || args.rounds == 0 {
        return Err(
            crate::cli::UsageError("--accounts and --rounds must be at least 1".into()).into(),
        );
    }
    let load_start = loadavg();
    let dir = tempfile::Builder::new()
        .prefix("warden-bench-cluster-")
        .tempdir()?;
    let w = crate::bench::fresh_warden(dir.path(), None, false).await?;
    let result = run(&w, json, &args, dir.path(), load_start).await;
    w.close().await;
    let out = result?;
    if json {
        return print_json(&out);
    }
    print_text(&out);
    Ok(())
}

async fn run(
    w: &Warden,
    json: bool,
    args: &ClusterBenchOptions,
    dir: &Path,
    load_start: String,
) -> anyhow::Result<ClusterBenchReport> {
    // The servers start before the N accounts exist, so they preload only Warden's own
    // and learn the rest from the pushes.
    let mut single = start_nodes(w, &args.nats_server, &dir.join("single"), 1).await?;
    let mut cluster = start_nodes(w, &args.nats_server, &dir.join("cluster"), NODES).await?;
    let version = single[0].server.version.clone();

    let bar = crate::bench::progress(json, u64::from(args.accounts), "accounts");
    let t = Instant::now();
    for i in 0..args.accounts {
        w.add_account(&format!("ACC_{i:06}"), AccountSpec::default())
            .await?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let create_seconds = t.elapsed().as_secs_f64();
    let accounts: Vec<(String, String)> = w
        .account_jwts()
        .await?
        .into_iter()
        .filter(|(name, _, _)| name.starts_with("ACC_"))
        .map(|(_, key, jwt)| (key, jwt))
        .collect();
    anyhow::ensure!(
        accounts.len() == args.accounts as usize,
        "{} accounts made, {} expected",
        accounts.len(),
        args.accounts
    );

    let op = w.operator().await?;
    let operator = nats_jwt::decode::<Operator>(&op.jwt).context("the operator JWT")?;
    let sys_creds = w.system_user_creds().await?;
    let relay = RelayConfig::new(String::new());
    let ctx = Ctx {
        w,
        operator: &operator,
        sys_creds: &sys_creds,
        accounts: &accounts,
        relay: &relay,
        rounds: args.rounds,
    };

    let cluster_report = ctx.measure(&mut cluster, "cluster").await;
    for n in &mut cluster {
        n.server.stop();
    }
    let cluster_report = cluster_report?;
    let single_report = ctx.measure(&mut single, "single").await;
    single[0].server.stop();
    let single_report = single_report?;

    let div = |a: f64, b: f64| a / b.max(1e-9);
    Ok(ClusterBenchReport {
        accounts: args.accounts,
        rounds: args.rounds,
        nats_server: version,
        load_start,
        load_end: loadavg(),
        lanes: relay.lanes,
        concurrency: relay.concurrency,
        create_seconds,
        ratio: Ratios {
            push_seconds: div(
                cluster_report.bulk.push_seconds,
                single_report.bulk.push_seconds,
            ),
            enforced_p50: div(
                cluster_report.one_update.enforced_ms_p50,
                single_report.one_update.enforced_ms_p50,
            ),
            enforced_p99: div(
                cluster_report.one_update.enforced_ms_p99,
                single_report.one_update.enforced_ms_p99,
            ),
        },
        cluster: cluster_report,
        single: single_report,
    })
}

/// `count` servers, configs rendered by Warden (operator trust, full resolver, Warden's
/// own accounts preloaded, JetStream), started one after the other: one alone is named
/// `single`; several are `n1`, `n2`, … with routes to each other, which form afterwards
/// ([`Ctx::measure`] waits for them).
async fn start_nodes(
    w: &Warden,
    bin: &Path,
    dir: &Path,
    count: usize,
) -> anyhow::Result<Vec<Node>> {
    let op = w.operator().await?;
    let preload = w.account_jwts().await?;
    // Every port held until all are chosen, so no two are the same.
    let listeners = (0..count * 2)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    let ports = listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect::<std::io::Result<Vec<u16>>>()?;
    drop(listeners);
    let route = |i: usize| format!("nats-route://127.0.0.1:{}", ports[count + i]);
    let mut nodes = Vec::with_capacity(count);
    for i in 0..count {
        let name = if count == 1 {
            "single".to_string()
        } else {
            format!("n{}", i + 1)
        };
        let node_dir = dir.join(&name);
        let mut cfg = ServerConfig::new(
            format!("127.0.0.1:{}", ports[i]),
            op.jwt.clone(),
            op.system_account.clone(),
            node_dir.join("resolver"),
        );
        cfg.server_name = Some(name.clone());
        cfg.preload = preload.clone();
        cfg.jetstream_dir = Some(node_dir.join("js"));
        if count > 1 {
            cfg.cluster = Some(ClusterBlock {
                name: "bench".into(),
                listen: format!("127.0.0.1:{}", ports[count + i]),
                routes: (0..count).filter(|&j| j != i).map(route).collect(),
                tls: None,
            });
        }
        nodes.push(Node {
            server: BenchServer::run(bin, &node_dir, &cfg).await?,
            name,
            resolver_dir: node_dir.join("resolver"),
        });
    }
    Ok(nodes)
}

/// What every measurement needs.
struct Ctx<'a> {
    w: &'a Warden,
    operator: &'a OperatorClaims,
    sys_creds: &'a str,
    /// The N accounts: (public key, JWT).
    accounts: &'a [(String, String)],
    relay: &'a RelayConfig,
    rounds: u32,
}

impl Ctx<'_> {
    /// The bulk push and the rounds on `nodes`: pushed to the first, the last watched.
    async fn measure(&self, nodes: &mut [Node], tag: &str) -> anyhow::Result<TopologyReport> {
        let first = &nodes[0];
        let watched = &nodes[nodes.len() - 1];
        // Short: a LIST waits this long for servers that do not answer (yet).
        let sys = ResolverClient::connect(&first.server.url, self.sys_creds, LIST_WAIT).await?;
        let servers = await_servers(&sys, nodes.len()).await?;
        let id_of = |n: &Node| -> anyhow::Result<ServerInfo> {
            servers
                .iter()
                .find(|s| s.name == n.name)
                .cloned()
                .ok_or_else(|| anyhow!("server {} did not answer", n.name))
        };
        let infos = nodes
            .iter()
            .map(id_of)
            .collect::<anyhow::Result<Vec<_>>>()?;
        let watched_info = infos[infos.len() - 1].clone();
        let mut mem_before = Vec::new();
        for s in &infos {
            mem_before.push(varz_mem(sys.client(), &s.id).await?);
        }

        // Bulk, over the relay's lanes.
        let pusher = ResolverClient::connect_lanes(
            &first.server.url,
            self.sys_creds,
            self.relay.timeout,
            self.relay.lanes,
        )
        .await?;
        let jwts: Vec<String> = self.accounts.iter().map(|(_, j)| j.clone()).collect();
        let t = Instant::now();
        let results = pusher
            .push_many(self.operator, &jwts, self.relay.concurrency)
            .await;
        let push_seconds = t.elapsed().as_secs_f64();
        let mut answered_first_by = BTreeMap::new();
        let mut failed = 0;
        let mut first_error = None;
        for r in results {
            match r {
                Ok(reply) if reply.code == 200 => {
                    *answered_first_by.entry(reply.server.name).or_insert(0) += 1;
                }
                Ok(reply) => {
                    failed += 1;
                    first_error.get_or_insert(format!("{} {}", reply.code, reply.message));
                }
                Err(e) => {
                    failed += 1;
                    first_error.get_or_insert(e.to_string());
                }
            }
        }
        let store_dir = watched.resolver_dir.clone();
        let want = self.accounts.to_vec();
        let caught_up =
            tokio::task::spawn_blocking(move || await_store(&store_dir, &want, STORE_BOUND))
                .await?;
        let listed = list_of(&sys, &watched_info.id, nodes.len())
            .await?
            .intersection(
                &self
                    .accounts
                    .iter()
                    .map(|(k, _)| k.clone())
                    .collect::<BTreeSet<_>>(),
            )
            .count();
        let store_bytes = dir_bytes(&watched.resolver_dir);

        let one_update = self
            .rounds(&pusher, &watched.server.url, tag)
            .await
            .context("one update at scale")?;

        let mut memory = Vec::new();
        for (s, before) in infos.iter().zip(mem_before) {
            memory.push(ServerMemory {
                server: s.name.clone(),
                before_bytes: before,
                after_bytes: varz_mem(sys.client(), &s.id).await?,
            });
        }
        Ok(TopologyReport {
            servers: nodes.len(),
            pushed_to: infos[0].name.clone(),
            watched: watched_info.name.clone(),
            bulk: BulkReport {
                push_seconds,
                accounts_per_s: self.accounts.len() as f64 / push_seconds.max(1e-9),
                failed,
                first_error,
                answered_first_by,
                lag_ms: (caught_up.missing == 0).then_some(caught_up.seconds * 1000.0),
                reads: caught_up.reads,
                last_read_ms: caught_up.last_read * 1000.0,
                missing: caught_up.missing,
                listed,
                store_bytes,
            },
            one_update,
            memory,
        })
    }

    /// `rounds` times: a new user of [`TARGET`] connects to the watched server, is revoked,
    /// its account pushed through `pusher`; timed until the watched server disconnects it.
    async fn rounds(
        &self,
        pusher: &ResolverClient,
        watched_url: &str,
        tag: &str,
    ) -> anyhow::Result<OneUpdateReport> {
        let mut enforced = Vec::new();
        let mut pushed = Vec::new();
        let mut last_creds = None;
        for i in 0..self.rounds {
            let user = format!("revoked_{tag}_{i}");
            self.w.add_user(TARGET, &user, UserSpec::default()).await?;
            let creds = self.w.creds(TARGET, &user).await?;
            let (tx, mut events) = mpsc::unbounded_channel();
            let first_attempt = std::sync::atomic::AtomicBool::new(true);
            let client = async_nats::ConnectOptions::with_credentials(&creds)?
                .name("warden-bench-revoked")
                .ignore_discovered_servers()
                // The client is dropped once the server closed it: no reconnect is tried
                // (it would be refused, and logged) before the bench ends. The callback is
                // asked before every attempt, the first connect's too.
                .reconnect_delay_callback(move |_| {
                    if first_attempt.swap(false, std::sync::atomic::Ordering::Relaxed) {
                        Duration::ZERO
                    } else {
                        Duration::from_secs(3600)
                    }
                })
                .event_callback(move |e| {
                    let tx = tx.clone();
                    async move {
                        let _ = tx.send(e);
                    }
                })
                .connect(watched_url)
                .await
                .with_context(|| format!("user {user} could not connect"))?;
            client.flush().await?;
            self.w.revoke_user(TARGET, &user).await?;
            let jwt = self.w.account(TARGET).await?.jwt;

            let t = Instant::now();
            pusher.push(self.operator, &jwt).await?;
            pushed.push(t.elapsed().as_secs_f64() * 1000.0);
            let deadline = tokio::time::Instant::now() + WAIT;
            loop {
                match tokio::time::timeout_at(deadline, events.recv()).await {
                    Err(_) => {
                        return Err(anyhow!(
                            "user {user} was still connected {WAIT:?} after its revocation was pushed"
                        ));
                    }
                    Ok(None) => return Err(anyhow!("the client's events ended")),
                    // Either is the server acting on the revocation: it sends the error
                    // and closes the connection.
                    Ok(Some(
                        async_nats::Event::Disconnected | async_nats::Event::ServerError(_),
                    )) => {
                        break;
                    }
                    Ok(Some(_)) => {}
                }
            }
            enforced.push(t.elapsed().as_secs_f64() * 1000.0);
            drop(client);
            last_creds = Some(creds);
        }
        let refused_after = match last_creds {
            Some(creds) => tokio::time::timeout(
                WAIT,
                async_nats::ConnectOptions::with_credentials(&creds)?
                    .ignore_discovered_servers()
                    .connect(watched_url),
            )
            .await
            .map_err(|_| anyhow!("a connect of a revoked user got no answer"))?
            .is_err(),
            None => false,
        };
        enforced.sort_by(f64::total_cmp);
        pushed.sort_by(f64::total_cmp);
        Ok(OneUpdateReport {
            rounds: self.rounds,
            enforced_ms_p50: percentile(&enforced, 0.50),
            enforced_ms_p99: percentile(&enforced, 0.99),
            enforced_ms_max: enforced.last().copied().unwrap_or(0.0),
            push_ms_p50: percentile(&pushed, 0.50),
            refused_after,
        })
    }
}

/// The servers answering `$SYS.REQ.CLAIMS.LIST` through `sys`, once `expected` of them do
/// (a cluster whose routes formed), bounded by [`WAIT`].
async fn await_servers(sys: &ResolverClient, expected: usize) -> anyhow::Result<Vec<ServerInfo>> {
    let deadline = Instant::now() + WAIT;
    loop {
        let replies = sys.list_each(expected).await?;
        if replies.len() >= expected {
            return Ok(replies.into_iter().map(|(s, _)| s).collect());
        }
        if Instant::now() > deadline {
            return Err(anyhow!(
                "{} of {expected} servers answered within {WAIT:?}: the routes did not form",
                replies.len()
            ));
        }
    }
}

/// The accounts that server `id` names in its own `$SYS.REQ.CLAIMS.LIST` reply.
async fn list_of(
    sys: &ResolverClient,
    id: &str,
    servers: usize,
) -> anyhow::Result<BTreeSet<String>> {
    sys.list_each(servers)
        .await?
        .into_iter()
        .find(|(s, _)| s.id == id)
        .map(|(_, keys)| keys.into_iter().collect())
        .ok_or_else(|| anyhow!("server {id} did not answer the list request"))
}

/// Resident memory of server `id` in bytes: its VARZ `mem`, asked of that server alone.
async fn varz_mem(client: &async_nats::Client, id: &str) -> anyhow::Result<u64> {
    let subject = format!("$SYS.REQ.SERVER.{id}.VARZ");
    let msg = tokio::time::timeout(WAIT, client.request(subject.clone(), Vec::new().into()))
        .await
        .map_err(|_| anyhow!("{subject}: no answer within {WAIT:?}"))??;
    let v: serde_json::Value = serde_json::from_slice(&msg.payload)?;
    v["data"]["mem"]
        .as_u64()
        .ok_or_else(|| anyhow!("{subject}: no data.mem in the reply"))
}

/// How a resolver directory caught up.
struct StoreWait {
    /// Seconds from the call until it held everything (or the bound passed).
    seconds: f64,
    /// Reads of the directory.
    reads: u32,
    /// Seconds of the last read.
    last_read: f64,
    /// Accounts still missing (or with another JWT) at the end.
    missing: usize,
}

/// Reads the full resolver's directory `dir` until it holds every `(key, jwt)` of `want`
/// (the file `<key>.jwt` with that JWT), or `bound` passed. Each read looks only at what
/// was still missing. Polled: the files are the server's state and announce nothing.
fn await_store(dir: &Path, want: &[(String, String)], bound: Duration) -> StoreWait {
    let start = Instant::now();
    let mut missing: Vec<usize> = (0..want.len()).collect();
    let mut reads = 0;
    loop {
        let read = Instant::now();
        missing.retain(|&i| {
            let (key, jwt) = &want[i];
            std::fs::read_to_string(dir.join(format!("{key}.jwt")))
                .map_or(true, |held| held.trim() != jwt.trim())
        });
        reads += 1;
        let last_read = read.elapsed().as_secs_f64();
        if missing.is_empty() || start.elapsed() > bound {
            return StoreWait {
                seconds: start.elapsed().as_secs_f64(),
                reads,
                last_read,
                missing: missing.len(),
            };
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Bytes of the `.jwt` files in `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "jwt"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`), or `"?"` where there is none.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn print_text(r: &ClusterBenchReport) {
    println!(
        "{} accounts, {} rounds, {}; load {} at the start, {} at the end; {} lanes, {} in flight; accounts created in {:.1} s",
        r.accounts,
        r.rounds,
        r.nats_server,
        r.load_start,
        r.load_end,
        r.lanes,
        r.concurrency,
        r.create_seconds
    );
    for (label, t) in [("cluster", &r.cluster), ("single", &r.single)] {
        let b = &t.bulk;
        let lag = b.lag_ms.map_or_else(
            || "never (bound passed)".to_string(),
            |l| format!("{l:.0} ms"),
        );
        println!(
            "{label} ({} servers, pushed to {}, watched {}): bulk {:.2} s = {:.0} accounts/s ({} failed); {} held them all {} after the last answer ({} reads, last {:.0} ms; {} listed, {} missing, {} bytes on disk)",
            t.servers,
            t.pushed_to,
            t.watched,
            b.push_seconds,
            b.accounts_per_s,
            b.failed,
            t.watched,
            lag,
            b.reads,
            b.last_read_ms,
            b.listed,
            b.missing,
            b.store_bytes
        );
        let o = &t.one_update;
        println!(
            "{label}: one revocation enforced on {} after p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (push answered p50 {:.1} ms); new connect refused: {}",
            t.watched,
            o.enforced_ms_p50,
            o.enforced_ms_p99,
            o.enforced_ms_max,
            o.push_ms_p50,
            o.refused_after
        );
        for m in &t.memory {
            println!(
                "{label}: {} memory {:.1} MiB before, {:.1} MiB after",
                m.server,
                m.before_bytes as f64 / 1048576.0,
                m.after_bytes as f64 / 1048576.0
            );
        }
    }
    println!(
        "cluster / single: bulk push {:.2}x, one update p50 {:.2}x, p99 {:.2}x",
        r.ratio.push_seconds, r.ratio.enforced_p50, r.ratio.enforced_p99
    );
}
