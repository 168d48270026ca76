//! `warden bench …`: the flags of the measurements (`bench/` runs them and prints their
//! reports).

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use crate::bench;

/// Subcommands of `warden bench`.
#[derive(Subcommand, Debug)]
pub enum BenchCmd {
    /// JWT issuance rate vs raw Ed25519 signing rate, on one core and on N threads.
    Issue {
        /// Tokens to issue (and signatures to make) per thread and round (5 rounds, the
        /// fastest counts).
        #[arg(long, default_value_t = 20_000)]
        count: u32,
        /// Threads issuing (and signing) at once in the second measurement (default: one
        /// per core).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
        threads: Option<u32>,
    },
    /// Time N `user add` operations on a fresh SQLite database.
    UserAdd {
        /// Users to add.
        #[arg(long, default_value_t = 1_000)]
        count: u32,
    },
    /// Export an organisation of N units and M users as an nsc store: wall time.
    Export(ExportArgs),
    /// Provision N devices (store + JWTs + resolver pushes): wall time and devices per second.
    Devices(DevicesArgs),
    /// Add N tenants and push them: wall time, platform JWT size, one more at N.
    Tenants(TenantsArgs),
    /// Import N directory users and M roles (apply_sync_plan), and time proposals end to end until nats-server enforces them.
    Governance(GovernanceArgs),
    /// Rooms gateway: 10,000 idle websockets (memory) and 1,000 clients in 100 rooms
    /// (deliveries per second, latency), against a `warden chat` child and a real nats-server.
    Chat(ChatBenchArgs),
    /// The floor `bench chat --floor` measures the gateway against: a bare websocket
    /// fan-out of rooms (no token check, no store, no NATS), started by the bench.
    #[command(hide = true)]
    ChatFloor {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        http: std::net::SocketAddr,
    },
    /// Rotate the operator signing key over N accounts on a real nats-server, against
    /// re-signing and pushing each account on its own (the nsc way): both timed.
    Rotate(RotateBenchArgs),
    /// Auth callout: connects per second (and p50/p99 of one) through a real nats-server
    /// whose clients Warden's responder authorizes, against the Ed25519 signing ceiling.
    Callout(CalloutBenchArgs),
    /// A cluster of three full resolvers: N accounts pushed to node 1 until node 3 holds
    /// them, one revocation until node 3 enforces it; against one server alone.
    Cluster(ClusterBenchArgs),
    /// Account pushes: the relay draining N new accounts against a bare NATS client
    /// pushing as many JWTs of the same size on the same server and connections.
    Push(PushBenchArgs),
    /// `org apply` of N people in one unit on a fresh store: users per second against
    /// key generation plus Ed25519 signing on the same cores.
    Org {
        /// People (Service persons, each a user) in the unit.
        #[arg(long, default_value_t = 10_000)]
        people: u32,
        /// Use this (empty) PostgreSQL database instead of a fresh SQLite file.
        #[arg(long, value_name = "URL")]
        pg: Option<String>,
    },
}

/// Arguments of `warden bench push`.
#[derive(Args, Debug)]
pub struct PushBenchArgs {
    /// Accounts per measured round.
    #[arg(long, default_value_t = 2_000)]
    pub accounts: u32,
    /// Pairs of rounds, one bare and one Warden each (alternating which goes first).
    #[arg(long, default_value_t = 5)]
    pub pairs: u32,
    /// Which relay drains Warden's rounds: `push` (`warden push`: one drain of all that is
    /// due) or `serve` (the relay loop of `warden serve`, started for each round and timed
    /// from its connecting).
    #[arg(long, value_enum, default_value_t = RelayArg::Push)]
    pub relay: RelayArg,
    /// nats-server binary the bench starts.
    #[arg(
        long,
        env = "WARDEN_NATS_SERVER_2_15",
        default_value = "nats-server",
        value_name = "PATH"
    )]
    pub nats_server: PathBuf,
}

/// `--relay` of `warden bench push`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RelayArg {
    /// `warden push`: one drain of everything due.
    Push,
    /// The relay loop of `warden serve`.
    Serve,
}

/// Arguments of `warden bench cluster`.
#[derive(Args, Debug)]
pub struct ClusterBenchArgs {
    /// Accounts pushed in bulk.
    #[arg(long, default_value_t = 10_000)]
    pub accounts: u32,
    /// One-update rounds (a user revoked each time).
    #[arg(long, default_value_t = 20)]
    pub rounds: u32,
    /// nats-server binary the bench starts (four of them).
    #[arg(long, default_value = "nats-server", value_name = "PATH")]
    pub nats_server: PathBuf,
}

/// Arguments of `warden bench callout`.
#[derive(Args, Debug)]
pub struct CalloutBenchArgs {
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    pub clients: u32,
    /// Connects each client makes, one after the other.
    #[arg(long, default_value_t = 250)]
    pub connects: u32,
    /// Seal authorization requests and responses with a curve key.
    #[arg(long)]
    pub xkey: bool,
    /// nats-server binary the bench starts (2.10 or later: auth callout).
    #[arg(
        long,
        env = "WARDEN_NATS_SERVER_2_15",
        default_value = "nats-server",
        value_name = "PATH"
    )]
    pub nats_server: PathBuf,
}

/// Arguments of `warden bench rotate`.
#[derive(Args, Debug)]
pub struct RotateBenchArgs {
    /// Accounts to create and rotate.
    #[arg(long, default_value_t = 10_000)]
    pub accounts: u32,
    /// nats-server binary the bench starts.
    #[arg(
        long,
        env = "WARDEN_NATS_SERVER_2_15",
        default_value = "nats-server",
        value_name = "PATH"
    )]
    pub nats_server: PathBuf,
}

/// Arguments of `warden bench devices`.
#[derive(Args, Debug)]
pub struct DevicesArgs {
    /// Devices to provision.
    #[arg(long, default_value_t = 10_000)]
    pub count: u32,
    /// Use this (empty) PostgreSQL database instead of a fresh SQLite file.
    #[arg(long, value_name = "URL")]
    pub pg: Option<String>,
    /// nats-server binary the bench starts.
    #[arg(long, default_value = "nats-server")]
    pub nats_server: PathBuf,
    /// Devices revoked afterwards (to measure the hub JWT).
    #[arg(long, default_value_t = 100)]
    pub revoke: u32,
    /// Outbox rows the relay reads per batch (default: the relay's, as `serve` uses).
    #[arg(long, value_name = "ROWS", value_parser = clap::value_parser!(i64).range(1..))]
    pub batch: Option<i64>,
}

impl From<DevicesArgs> for bench::devices::DevicesOptions {
    fn from(a: DevicesArgs) -> Self {
        bench::devices::DevicesOptions {
            count: a.count,
            pg: a.pg,
            nats_server: a.nats_server,
            revoke: a.revoke,
            batch: a.batch,
        }
    }
}

/// Arguments of `warden bench tenants`.
#[derive(Args, Debug)]
pub struct TenantsArgs {
    /// Tenants to add.
    #[arg(long, default_value_t = 1_000)]
    pub count: u32,
    /// nats-server binary the bench starts.
    #[arg(long, default_value = "nats-server")]
    pub nats_server: PathBuf,
}

impl From<TenantsArgs> for bench::tenants::TenantsOptions {
    fn from(a: TenantsArgs) -> Self {
        bench::tenants::TenantsOptions {
            count: a.count,
            nats_server: a.nats_server,
        }
    }
}

/// Arguments of `warden bench export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Units (accounts).
    #[arg(long, default_value_t = 100)]
    pub units: u32,
    /// Users in all.
    #[arg(long, default_value_t = 10_000)]
    pub users: u32,
}

impl From<ExportArgs> for bench::nsc::ExportOptions {
    fn from(a: ExportArgs) -> Self {
        bench::nsc::ExportOptions {
            units: a.units,
            users: a.users,
        }
    }
}

/// Flags of `warden bench governance`.
#[derive(Args, Debug)]
pub struct GovernanceArgs {
    /// Directory users to import.
    #[arg(long, default_value_t = 10_000)]
    pub users: u32,
    /// Roles to import.
    #[arg(long, default_value_t = 1_000)]
    pub roles: u32,
    /// Members per role.
    #[arg(long, default_value_t = 10)]
    pub members: u32,
    /// Proposals timed end to end.
    #[arg(long, default_value_t = 20)]
    pub rounds: u32,
    /// nats-server binary the bench starts.
    #[arg(long, default_value = "nats-server")]
    pub nats_server: PathBuf,
}

impl From<GovernanceArgs> for bench::governance::GovernanceOptions {
    fn from(a: GovernanceArgs) -> Self {
        bench::governance::GovernanceOptions {
            users: a.users,
            roles: a.roles,
            members: a.members,
            rounds: a.rounds,
            nats_server: a.nats_server,
        }
    }
}

/// Arguments of `warden bench chat`.
#[derive(Args, Debug)]
pub struct ChatBenchArgs {
    /// nats-server binary the bench starts.
    #[arg(
        long,
        env = "WARDEN_NATS_SERVER_2_15",
        default_value = "nats-server",
        value_name = "PATH"
    )]
    pub nats_server: PathBuf,
    /// Clients of the delivery phase (0 skips it).
    #[arg(long, default_value_t = 1_000)]
    pub clients: u32,
    /// Rooms the clients are spread over (evenly).
    #[arg(long, default_value_t = 100)]
    pub rooms: u32,
    /// Messages per second each client sends.
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Idle connections held in the memory phase (0 skips it).
    #[arg(long, default_value_t = 10_000)]
    pub idle: u32,
    /// Gateway binary (default: this executable).
    #[arg(long, value_name = "PATH")]
    pub warden: Option<PathBuf>,
    /// Closed loop instead of a fixed rate: messages each sender sends (0: off).
    #[arg(long, default_value_t = 0)]
    pub messages: u32,
    /// Closed loop: a sender's own messages in flight at most (the next goes when an
    /// echo arrives).
    #[arg(long, default_value_t = 1)]
    pub window: u32,
    /// Closed loop: senders per room.
    #[arg(long, default_value_t = 1)]
    pub senders_per_room: u32,
    /// Run the delivery phase a second time against the floor (a bare websocket fan-out
    /// of the same rooms: no token check, no store, no NATS; run by this executable, whatever
    /// --warden names) and report both, with their ratios.
    #[arg(long)]
    pub floor: bool,
}

impl From<ChatBenchArgs> for bench::chat::ChatBenchOptions {
    fn from(a: ChatBenchArgs) -> Self {
        bench::chat::ChatBenchOptions {
            nats_server: a.nats_server,
            clients: a.clients,
            rooms: a.rooms,
            rate: a.rate,
            seconds: a.seconds,
            idle: a.idle,
            warden: a.warden,
            messages: a.messages,
            window: a.window,
            senders_per_room: a.senders_per_room,
            floor: a.floor,
        }
    }
}

/// Runs `warden bench …`.
pub async fn run(json: bool, cmd: BenchCmd) -> anyhow::Result<()> {
    match cmd {
        BenchCmd::Issue { count, threads } => bench::issue(json, count, threads),
        BenchCmd::UserAdd { count } => bench::user_add(json, count).await,
        BenchCmd::Export(a) => bench::nsc::bench_export(json, a.into()).await,
        BenchCmd::Devices(a) => bench::devices::bench(json, a.into()).await,
        BenchCmd::Org { people, pg } => {
            bench::org::bench(json, bench::org::OrgBenchOptions { people, pg }).await
        }
        BenchCmd::Tenants(a) => bench::tenants::bench(json, a.into()).await,
        BenchCmd::Governance(a) => bench::governance::bench(json, a.into()).await,
        BenchCmd::Chat(a) => bench::chat::bench(json, a.into()).await,
        BenchCmd::ChatFloor { http } => bench::fanout::serve(http).await,
        BenchCmd::Rotate(a) => {
            let opts = bench::rotate::RotateOptionsBench {
                accounts: a.accounts,
                nats_server: a.nats_server,
            };
            bench::rotate::bench(json, opts).await
        }
        BenchCmd::Callout(a) => {
            let opts = bench::callout::CalloutBenchOptions {
                clients: a.clients,
                connects: a.connects,
                xkey: a.xkey,
                nats_server: a.nats_server,
            };
            bench::callout::bench(json, opts).await
        }
        BenchCmd::Cluster(a) => {
            let opts = bench::cluster::ClusterBenchOptions {
                accounts: a.accounts,
                rounds: a.rounds,
                nats_server: a.nats_server,
            };
            bench::cluster::bench(json, opts).await
        }
        BenchCmd::Push(a) => {
            let opts = bench::push::PushBenchOptions {
                accounts: a.accounts,
                pairs: a.pairs,
                relay: match a.relay {
                    RelayArg::Push => bench::push::Relay::Push,
                    RelayArg::Serve => bench::push::Relay::Serve,
                },
                nats_server: a.nats_server,
            };
            bench::push::bench(json, opts).await
        }
    }
}
