//! Warden and a live nats-server's account resolver: drift (which accounts the server
//! holds in step with Warden, stale, missing or unknown to Warden), its repair, pushes of
//! account JWTs, the delivery of the outbox on demand, and an account's current usage as
//! the server reports it. `warden sync`, `warden push` and the console's sync page all run
//! these operations, so both give the same answer.
//!
//! A [`DriftCache`] keeps the last comparison with one server in memory for a page that
//! shows it (the console's sync page), refreshed in the background — every so often,
//! after the relay delivered changes, and when asked — so a page load reads it instead of
//! asking the server about every account.
//!
//! A [`ResolverLink`] names the server and keeps one system-user connection, made on first
//! use and dropped after a failure that may be the connection's (so the next operation
//! connects again). Every request is bounded by the link's timeout. A server that cannot
//! be reached is [`OpsError::Unavailable`].

use std::collections::BTreeMap;
use std::time::Duration;

use nats_jwt::{AccountPublicKey, KeyPair, Operator, OperatorClaims};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use warden_nats::{NatsUrls, ResolverClient, ResolverError};

use crate::relay::{Connections, DrainReport, RelayConfig};
use crate::{OpsError, Result, Scope, Warden};

/// A nats-server whose resolver Warden compares with and pushes to, with the connection
/// kept between operations.
pub struct ResolverLink {
    url: String,
    timeout: Duration,
    lanes: usize,
    concurrency: usize,
    client: Mutex<Option<ResolverClient>>,
}

impl ResolverLink {
    /// A link to the server at `url`; connecting and each request wait at most `timeout`.
    pub fn new(url: impl Into<String>, timeout: Duration) -> ResolverLink {
        ResolverLink {
            url: url.into(),
            timeout,
            lanes: 1,
            concurrency: 64,
            client: Mutex::new(None),
        }
    }

    /// A link for one bulk run (the command line): the relay's defaults for timeout,
    /// connections and pushes in flight.
    pub fn bulk(url: impl Into<String>) -> ResolverLink {
        let cfg = RelayConfig::new(url);
        ResolverLink {
            url: cfg.nats_url,
            timeout: cfg.timeout,
            lanes: cfg.lanes,
            concurrency: cfg.concurrency,
            client: Mutex::new(None),
        }
    }

    /// The server URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bound on connecting and on each request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The system-user connection, made now if there is none.
    async fn client(&self, w: &Warden) -> Result<ResolverClient> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        // The actor was allowed the operation; connecting as the system user is Warden's
        // own work, whatever the actor may download.
        let creds = w.trusted().system_user_creds().await?;
        let c = ResolverClient::connect_lanes(&self.url, &creds, self.timeout, self.lanes)
            .await
            .map_err(|e| resolver_error(&self.url, e))?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Maps a request's failure, forgetting the connection when it may be at fault.
    async fn failed(&self, e: ResolverError) -> OpsError {
        if connection_trouble(&e) {
            *self.client.lock().await = None;
        }
        resolver_error(&self.url, e)
    }
}

/// Whether a failure may be the connection's (so it is made again next time).
fn connection_trouble(e: &ResolverError) -> bool {
    !matches!(
        e,
        ResolverError::Refused { .. } | ResolverError::Untrusted(_)
    )
}

/// What a resolver failure means: the server's trouble is [`OpsError::Unavailable`];
/// a request Warden could not build is Warden's own failure.
fn resolver_error(url: &str, e: ResolverError) -> OpsError {
    match e {
        ResolverError::Connect { .. } => OpsError::unavailable(e),
        ResolverError::Timeout { .. }
        | ResolverError::NoResponders { .. }
        | ResolverError::Refused { .. }
        | ResolverError::BadReply { .. }
        | ResolverError::Nats { .. } => OpsError::unavailable(format!("{url}: {e}")),
        ResolverError::Credentials(_)
        | ResolverError::Jwt(_)
        | ResolverError::EmptyDelete
        | ResolverError::NotOperatorKey { .. }
        | ResolverError::InvalidAccountKey { .. }
        | ResolverError::Untrusted(_) => OpsError::Jwt(e.to_string()),
    }
}

/// Where one of Warden's accounts stands on the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    /// The server holds the same JWT.
    InSync,
    /// The server holds another JWT (and it is not newer than Warden's).
    Stale,
    /// The server holds another JWT with a later issue time than Warden's.
    NewerOnServer,
    /// The server does not hold it.
    Missing,
}

impl SyncState {
    /// How people read it (`in sync`, `stale`, `stale (newer on server)`, `missing`).
    pub fn label(self) -> &'static str {
        match self {
            SyncState::InSync => "in sync",
            SyncState::Stale => "stale",
            SyncState::NewerOnServer => "stale (newer on server)",
            SyncState::Missing => "missing",
        }
    }
}

/// One of Warden's accounts on the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccountDrift {
    /// The account's name.
    pub name: String,
    /// Its public key.
    pub public_key: String,
    /// Where it stands.
    pub state: SyncState,
}

/// The server's resolver compared with Warden.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DriftReport {
    /// Every account Warden keeps on the resolver, by name.
    pub accounts: Vec<AccountDrift>,
    /// Public keys of Warden's accounts the server does not hold.
    pub missing: Vec<String>,
    /// Public keys of Warden's accounts the server holds another JWT of.
    pub stale: Vec<String>,
    /// The part of `stale` whose JWT on the server is newer than Warden's.
    pub newer_on_server: Vec<String>,
    /// Public keys of accounts the server holds and Warden does not.
    pub unknown: Vec<String>,
}

impl DriftReport {
    /// Whether the server is in step with Warden.
    pub fn in_step(&self) -> bool {
        self.missing.is_empty() && self.stale.is_empty() && self.unknown.is_empty()
    }

    /// Accounts not in sync.
    pub fn drifting(&self) -> usize {
        self.accounts
            .iter()
            .filter(|a| a.state != SyncState::InSync)
            .count()
    }
}

/// One server of those given, compared with Warden on a connection of its own.
#[derive(Clone, Debug, Serialize)]
pub struct ServerDriftReport {
    /// The URL it was read at.
    pub url: String,
    /// Its `server_name` (its id when it has none); empty when it could not be read.
    pub server_name: String,
    /// Its server id (`N…`); empty when it could not be read.
    pub server_id: String,
    /// Its nats-server version.
    pub version: String,
    /// Why it could not be read (it is then not in step, and the lists are empty).
    pub error: Option<String>,
    /// The part of `stale` not pinned on this server: copies in its cluster differ from
    /// Warden's, and the replies do not say whose (see `warden_nats::drift::cluster_drift`).
    pub unattributed: Vec<String>,
    /// Its resolver against Warden.
    #[serde(flatten)]
    pub report: DriftReport,
}

impl ServerDriftReport {
    /// Whether it was read and is in step with Warden.
    pub fn in_step(&self) -> bool {
        self.error.is_none() && self.report.in_step()
    }
}

/// Every server given, each compared with Warden ([`Warden::cluster_drift_check`]).
#[derive(Clone, Debug, Default, Serialize)]
pub struct ClusterDriftReport {
    /// One per URL given, in that order.
    pub servers: Vec<ServerDriftReport>,
    /// Client addresses (`HOST:PORT`) the servers announce for their cluster that were not
    /// given, so not compared.
    pub not_compared: Vec<String>,
}

impl ClusterDriftReport {
    /// Whether every server given was read and is in step with Warden.
    pub fn in_step(&self) -> bool {
        self.servers.iter().all(ServerDriftReport::in_step)
    }

    /// Public keys that are `pick`ed on any server, sorted, once each.
    pub fn union(&self, pick: impl Fn(&DriftReport) -> &Vec<String>) -> Vec<String> {
        let mut keys: Vec<String> = self
            .servers
            .iter()
            .flat_map(|s| pick(&s.report).iter().cloned())
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }
}

/// What the repair of one server did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ServerRepair {
    /// The URL it was repaired at.
    pub url: String,
    /// Its `server_name` (empty when it could not be read).
    pub server_name: String,
    /// Its server id (empty when it could not be read).
    pub server_id: String,
    /// Accounts pushed to it (missing and stale ones).
    pub pushed: usize,
    /// Unknown accounts it was asked to delete.
    pub deleted: usize,
    /// What failed, one line each.
    pub errors: Vec<String>,
}

/// What [`Warden::cluster_drift_fix`] did, and the comparison afterwards.
#[derive(Clone, Debug, Serialize)]
pub struct ClusterDriftRepair {
    /// One per URL given, in that order.
    pub servers: Vec<ServerRepair>,
    /// Every server compared again after the repairs.
    pub after: ClusterDriftReport,
    /// Whether every server is in step afterwards and nothing failed.
    pub in_step: bool,
}

/// What a repair did.
#[derive(Clone, Debug, Serialize)]
pub struct DriftRepair {
    /// Accounts pushed (missing and stale ones).
    pub pushed: usize,
    /// Unknown accounts the server was asked to delete.
    pub deleted: usize,
    /// Whether the server is in step with Warden afterwards.
    pub in_step: bool,
    /// What failed, one line each.
    pub errors: Vec<String>,
}

/// The result of pushing one account.
#[derive(Clone, Debug, Serialize)]
pub struct PushOutcome {
    /// The account's name.
    pub account: String,
    /// Its public key.
    pub public_key: String,
    /// Whether the server took it.
    pub ok: bool,
    /// The server's reply, or what failed.
    pub reply: String,
}

/// Current usage of an account as the server reports it (summed over its connections).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Client connections now (`total` of CONNZ).
    pub connections: u64,
    /// How many connections the sums below cover (CONNZ pages at 1024).
    pub listed: u64,
    /// Subscriptions over the listed connections.
    pub subscriptions: u64,
    /// Messages the clients published (server's `in_msgs`).
    pub in_msgs: u64,
    /// Bytes the clients published.
    pub in_bytes: u64,
    /// Messages delivered to the clients (server's `out_msgs`).
    pub out_msgs: u64,
    /// Bytes delivered to the clients.
    pub out_bytes: u64,
}

#[derive(Deserialize)]
struct ApiReply<T> {
    data: Option<T>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Connz {
    #[serde(default)]
    total: u64,
    #[serde(default)]
    connections: Option<Vec<ConnInfo>>,
}

#[derive(Deserialize)]
struct ConnInfo {
    #[serde(default)]
    subscriptions: u64,
    #[serde(default)]
    in_msgs: u64,
    #[serde(default)]
    out_msgs: u64,
    #[serde(default)]
    in_bytes: u64,
    #[serde(default)]
    out_bytes: u64,
}

/// Parses a CONNZ reply (`{"server":…,"data":{"total":…,"connections":[…]}}`).
pub fn parse_connz(payload: &[u8]) -> std::result::Result<Usage, String> {
    let reply: ApiReply<Connz> =
        serde_json::from_slice(payload).map_err(|e| format!("unreadable CONNZ reply: {e}"))?;
    if let Some(e) = reply.error {
        return Err(format!("the server answered with an error: {e}"));
    }
    let data = reply.data.ok_or("the CONNZ reply has no data")?;
    let conns = data.connections.unwrap_or_default();
    let mut u = Usage {
        connections: data.total.max(conns.len() as u64),
        listed: conns.len() as u64,
        ..Usage::default()
    };
    for c in &conns {
        u.subscriptions += c.subscriptions;
        u.in_msgs += c.in_msgs;
        u.out_msgs += c.out_msgs;
        u.in_bytes += c.in_bytes;
        u.out_bytes += c.out_bytes;
    }
    Ok(u)
}

impl Warden {
    /// The operator's claims (for trust checks) and its signing key (for delete requests).
    async fn operator_signer(&self) -> Result<(OperatorClaims, KeyPair)> {
        let op = self.trusted().operator().await?;
        let claims = nats_jwt::decode::<Operator>(&op.jwt)
            .map_err(|e| OpsError::Jwt(format!("stored operator JWT: {e}")))?;
        let signer = KeyPair::from_seed(&self.store.seed(&op.signing_key).await?)?;
        Ok((claims, signer))
    }

    /// Warden's accounts as the resolver should hold them: public key → (name, JWT).
    async fn expected_on_resolver(&self) -> Result<BTreeMap<String, (String, String)>> {
        Ok(self
            .trusted()
            .account_jwts()
            .await?
            .into_iter()
            .map(|(name, key, jwt)| (key, (name, jwt)))
            .collect())
    }

    async fn compare(
        &self,
        link: &ResolverLink,
        expected: &BTreeMap<String, (String, String)>,
    ) -> Result<DriftReport> {
        let jwts = expected_jwts(expected);
        let client = link.client(self).await?;
        let d = match warden_nats::drift(&client, &jwts).await {
            Ok(d) => d,
            Err(e) => return Err(link.failed(e).await),
        };
        Ok(drift_report(expected, d))
    }

    /// Compares the servers at `urls`, each alone, with Warden (`warden sync --check` given
    /// one server or several); needs `read`.
    ///
    /// In a cluster of full resolvers every server answers the resolver's requests, so asking
    /// "the cluster" reads whichever server answers first and hides one that missed an update.
    /// Here each server is read on a connection of its own
    /// ([`warden_nats::drift::cluster_drift`]): the accounts it holds come from the LIST reply
    /// that names it, so missing and unknown accounts are its own; a copy that differs from
    /// Warden's is pinned on it when the LOOKUP replies allow (else it is listed in
    /// [`ServerDriftReport::unattributed`]), and the report names each server. A server that cannot be read
    /// is in the report with the error (and not in step); when none can be, that is the error.
    ///
    /// What it sees: the JWTs in each server's resolver directory now. Not seen: what a server
    /// would fetch from its peers when a client of an account it lacks connects, or what their
    /// periodic sync would bring it later; so a routed server reported missing an account may
    /// heal on its own, a server outside the cluster (or whose peers lack it too) will not.
    /// Servers the given ones announce for their cluster but that were not given are listed in
    /// [`ClusterDriftReport::not_compared`], by address.
    pub async fn cluster_drift_check(&self, urls: &NatsUrls) -> Result<ClusterDriftReport> {
        self.need(Scope::Read, "comparing NATS with Warden")?;
        let expected = self.expected_on_resolver().await?;
        let creds = self.trusted().system_user_creds().await?;
        let (report, _) = compare_servers(urls, &creds, &expected, bulk_timeout()).await;
        if let Some(first) = report.servers.first()
            && report.servers.iter().all(|s| s.error.is_some())
        {
            return Err(OpsError::unavailable(
                first.error.clone().unwrap_or_default(),
            ));
        }
        Ok(report)
    }

    /// Repairs every server at `urls` that is not in step (`warden sync --fix`): each lagging
    /// server gets its missing and stale accounts pushed, and is asked to delete its unknown
    /// ones, on a connection to that server itself; then all are compared again; needs
    /// `write`. A push to one server of a cluster also reaches its routed peers (so a peer may
    /// get the same push twice, which changes nothing). Failures are listed per server, not
    /// returned as an error, unless no server could be read at all.
    pub async fn cluster_drift_fix(&self, urls: &NatsUrls) -> Result<ClusterDriftRepair> {
        self.need(Scope::Write, "repairing NATS drift")?;
        let expected = self.expected_on_resolver().await?;
        let creds = self.trusted().system_user_creds().await?;
        let (operator, signer) = self.operator_signer().await?;
        let timeout = bulk_timeout();
        let jwts = expected_jwts(&expected);
        let (before, clients) = compare_servers(urls, &creds, &expected, timeout).await;
        if let Some(first) = before.servers.first()
            && before.servers.iter().all(|s| s.error.is_some())
        {
            return Err(OpsError::unavailable(
                first.error.clone().unwrap_or_default(),
            ));
        }
        let mut servers = Vec::with_capacity(urls.len());
        for (seen, client) in before.servers.iter().zip(&clients) {
            let mut repair = ServerRepair {
                url: seen.url.clone(),
                server_name: seen.server_name.clone(),
                server_id: seen.server_id.clone(),
                ..ServerRepair::default()
            };
            if let Some(e) = &seen.error {
                repair.errors.push(e.clone());
            }
            let (Some(client), None) = (client, &seen.error) else {
                servers.push(repair);
                continue;
            };
            let url = &seen.url;
            // A push reaches the server itself and its routed peers; each lagging server is
            // repaired on its own connection, so one outside the cluster gets it too.
            let d = &seen.report;
            let to_push: Vec<String> = d
                .missing
                .iter()
                .chain(&d.stale)
                .filter_map(|k| jwts.get(k).cloned())
                .collect();
            for r in client.push_own_many(&operator, &to_push, 64).await {
                match r {
                    Ok(_) => repair.pushed += 1,
                    Err(e) => repair.errors.push(resolver_error(url, e).to_string()),
                }
            }
            let mut keys: Vec<AccountPublicKey> = Vec::new();
            for k in &d.unknown {
                match k.parse() {
                    Ok(key) => keys.push(key),
                    Err(e) => repair.errors.push(format!("{k}: {e}")),
                }
            }
            if !keys.is_empty() {
                match warden_nats::delete_request(&signer, &keys) {
                    Ok(req) => match client.delete(&req).await {
                        Ok(_) => repair.deleted = keys.len(),
                        Err(e) => repair.errors.push(resolver_error(url, e).to_string()),
                    },
                    Err(e) => repair.errors.push(e.to_string()),
                }
            }
            servers.push(repair);
        }
        let (after, _) = compare_servers(urls, &creds, &expected, timeout).await;
        Ok(ClusterDriftRepair {
            in_step: after.in_step() && servers.iter().all(|s| s.errors.is_empty()),
            servers,
            after,
        })
    }
}

/// The timeout of one run of the command line (the relay's).
fn bulk_timeout() -> Duration {
    RelayConfig::new("").timeout
}

/// Warden's accounts as public key → JWT.
fn expected_jwts(expected: &BTreeMap<String, (String, String)>) -> BTreeMap<String, String> {
    expected
        .iter()
        .map(|(k, (_, j))| (k.clone(), j.clone()))
        .collect()
}

/// Each server at `urls`, on a connection of its own, compared with `expected`
/// ([`warden_nats::drift::cluster_drift`]); with the connections, for a repair.
async fn compare_servers(
    urls: &NatsUrls,
    creds: &str,
    expected: &BTreeMap<String, (String, String)>,
    timeout: Duration,
) -> (ClusterDriftReport, Vec<Option<ResolverClient>>) {
    let jwts = expected_jwts(expected);
    let connects = urls
        .urls()
        .iter()
        .map(|url| ResolverClient::connect_alone(url, creds, timeout));
    let connected = futures::future::join_all(connects).await;
    let mut errors: Vec<Option<String>> = Vec::with_capacity(connected.len());
    let mut clients: Vec<Option<ResolverClient>> = Vec::with_capacity(connected.len());
    for (url, c) in urls.urls().iter().zip(connected) {
        match c {
            Ok(c) => {
                errors.push(None);
                clients.push(Some(c));
            }
            Err(e) => {
                errors.push(Some(resolver_error(url, e).to_string()));
                clients.push(None);
            }
        }
    }
    let reachable: Vec<ResolverClient> = clients.iter().flatten().cloned().collect();
    let mut read = warden_nats::drift::cluster_drift(&reachable, &jwts)
        .await
        .into_iter();
    let mut servers = Vec::with_capacity(urls.len());
    let mut announced: Vec<String> = Vec::new();
    for ((url, error), client) in urls.urls().iter().zip(errors).zip(&clients) {
        let mut row = ServerDriftReport {
            url: url.clone(),
            server_name: String::new(),
            server_id: String::new(),
            version: String::new(),
            error,
            unattributed: Vec::new(),
            report: DriftReport::default(),
        };
        if client.is_some() {
            match read.next() {
                Some(Ok(seen)) => {
                    row.server_name = seen.server.name;
                    row.server_id = seen.server.id;
                    row.version = seen.server.version;
                    row.unattributed = seen.unattributed;
                    row.report = drift_report(expected, seen.drift);
                    announced.extend(seen.announced);
                }
                Some(Err(e)) => row.error = Some(resolver_error(url, e).to_string()),
                None => row.error = Some(format!("{url}: not read")),
            }
        }
        servers.push(row);
    }
    let given: Vec<String> = urls.urls().iter().map(|u| host_port(u)).collect();
    let mut not_compared: Vec<String> = announced
        .iter()
        .map(|a| host_port(a))
        .filter(|a| !given.contains(a))
        .collect();
    not_compared.sort();
    not_compared.dedup();
    (
        ClusterDriftReport {
            servers,
            not_compared,
        },
        clients,
    )
}

/// `HOST:PORT` of a server URL (scheme, user info and trailing slash dropped), to match the
/// addresses servers announce against the URLs given.
fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.trim_end_matches('/').to_ascii_lowercase()
}

/// The report of one server's drift, with Warden's accounts by name.
fn drift_report(
    expected: &BTreeMap<String, (String, String)>,
    d: warden_nats::Drift,
) -> DriftReport {
    let mut accounts: Vec<AccountDrift> = expected
        .iter()
        .map(|(key, (name, _))| AccountDrift {
            name: name.clone(),
            public_key: key.clone(),
            state: if d.missing.contains(key) {
                SyncState::Missing
            } else if d.newer_on_server.contains(key) {
                SyncState::NewerOnServer
            } else if d.stale.contains(key) {
                SyncState::Stale
            } else {
                SyncState::InSync
            },
        })
        .collect();
    accounts.sort_by(|a, b| (&a.name, &a.public_key).cmp(&(&b.name, &b.public_key)));
    DriftReport {
        accounts,
        missing: d.missing,
        stale: d.stale,
        newer_on_server: d.newer_on_server,
        unknown: d.unknown,
    }
}

impl Warden {
    /// Compares the server's resolver with Warden (`warden sync --check`); needs `read`.
    pub async fn drift_check(&self, link: &ResolverLink) -> Result<DriftReport> {
        self.need(Scope::Read, "comparing NATS with Warden")?;
        let expected = self.expected_on_resolver().await?;
        self.compare(link, &expected).await
    }

    /// Repairs drift (`warden sync --fix`): pushes the missing and stale accounts, asks
    /// the server to delete the unknown ones, and compares again; needs `write`. Failures
    /// of single pushes are listed in the result, not returned as an error.
    pub async fn drift_fix(&self, link: &ResolverLink) -> Result<DriftRepair> {
        self.need(Scope::Write, "repairing NATS drift")?;
        let expected = self.expected_on_resolver().await?;
        let before = self.compare(link, &expected).await?;
        let (operator, signer) = self.operator_signer().await?;
        let client = link.client(self).await?;
        let to_push: Vec<String> = before
            .missing
            .iter()
            .chain(&before.stale)
            .filter_map(|k| expected.get(k).map(|(_, j)| j.clone()))
            .collect();
        let mut errors = Vec::new();
        for r in client
            .push_own_many(&operator, &to_push, link.concurrency)
            .await
        {
            if let Err(e) = r {
                errors.push(link.failed(e).await.to_string());
            }
        }
        let mut keys: Vec<AccountPublicKey> = Vec::new();
        for k in &before.unknown {
            match k.parse() {
                Ok(key) => keys.push(key),
                Err(e) => errors.push(format!("{k}: {e}")),
            }
        }
        if !keys.is_empty() {
            match warden_nats::delete_request(&signer, &keys) {
                Ok(req) => {
                    if let Err(e) = client.delete(&req).await {
                        errors.push(link.failed(e).await.to_string());
                    }
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        let after = self.compare(link, &expected).await?;
        Ok(DriftRepair {
            pushed: to_push.len(),
            deleted: keys.len(),
            in_step: after.in_step(),
            errors,
        })
    }

    /// Pushes the current JWT of `account` (by name), or of every account Warden keeps on
    /// the resolver, each checked for operator trust first; needs `write`. A push the
    /// server refuses is listed in the result with what it said.
    pub async fn push_accounts(
        &self,
        link: &ResolverLink,
        account: Option<&str>,
    ) -> Result<Vec<PushOutcome>> {
        self.push_accounts_with(link, account, &crate::progress::Quiet)
            .await
    }

    /// [`Warden::push_accounts`], reporting each wave of pushes to `progress`.
    pub async fn push_accounts_with(
        &self,
        link: &ResolverLink,
        account: Option<&str>,
        progress: &dyn crate::progress::Progress,
    ) -> Result<Vec<PushOutcome>> {
        self.need(Scope::Write, "pushing accounts to NATS")?;
        let accounts: Vec<(String, String, String)> = match account {
            Some(name) => {
                let v = self.trusted().account(name).await?;
                vec![(v.name, v.public_key, v.jwt)]
            }
            None => self.trusted().account_jwts().await?,
        };
        let (operator, _) = self.operator_signer().await?;
        let client = link.client(self).await?;
        let jwts: Vec<String> = accounts.iter().map(|(_, _, j)| j.clone()).collect();
        // Waves of a few windows each keep the pipeline full and let progress move.
        let wave = (link.concurrency * 4).max(1);
        progress.start(jwts.len() as u64, "pushing accounts");
        let mut results = Vec::with_capacity(jwts.len());
        for chunk in jwts.chunks(wave) {
            results.extend(
                client
                    .push_own_many(&operator, chunk, link.concurrency)
                    .await,
            );
            progress.advance(chunk.len() as u64);
        }
        progress.finish();
        let mut out = Vec::with_capacity(accounts.len());
        for ((name, key, _), r) in accounts.into_iter().zip(results) {
            let (ok, reply) = match r {
                Ok(reply) => (true, format!("{} {}", reply.code, reply.message)),
                Err(e) => (false, link.failed(e).await.to_string()),
            };
            out.push(PushOutcome {
                account: name,
                public_key: key,
                ok,
                reply,
            });
        }
        Ok(out)
    }

    /// Delivers everything due in the outbox now (`warden push` without an account), as
    /// the relay would; needs `write`. Failed rows stay queued and are counted.
    pub async fn push_outbox(&self, nats_url: &str) -> Result<DrainReport> {
        self.need(Scope::Write, "delivering the outbox to NATS")?;
        let cfg = RelayConfig::new(nats_url);
        let trusted = self.trusted();
        let conns = Connections::open(&trusted, &cfg).await?;
        crate::relay::drain_all(&trusted, &conns, &cfg).await
    }

    /// The current usage of the account with public key `account_key`, as the server
    /// reports it, or `None` when it does not answer within the link's timeout; needs
    /// `read`. In a cluster each server answers for its own connections; this takes the
    /// first answer.
    pub async fn account_usage(
        &self,
        link: &ResolverLink,
        account_key: &str,
    ) -> Result<Option<Usage>> {
        self.need(Scope::Read, "reading account usage")?;
        let key = AccountPublicKey::new(account_key).map_err(OpsError::invalid)?;
        let client = link.client(self).await?;
        let subject = format!("$SYS.REQ.ACCOUNT.{}.CONNZ", key.as_str());
        let ask = client.client().request(subject, "{}".into());
        match tokio::time::timeout(link.timeout, ask).await {
            Err(_) => Ok(None),
            Ok(Err(e)) => {
                use async_nats::RequestErrorKind as K;
                match e.kind() {
                    K::TimedOut | K::NoResponders => Ok(None),
                    _ => {
                        *link.client.lock().await = None;
                        Err(OpsError::unavailable(format!("{}: {e}", link.url)))
                    }
                }
            }
            Ok(Ok(msg)) => parse_connz(&msg.payload)
                .map(Some)
                .map_err(|e| OpsError::unavailable(format!("{}: {e}", link.url))),
        }
    }
}

/// An account's JetStream use as the server reports it, or why it could not be read (the
/// server cannot be reached, did not answer in time, or has no JetStream for the account).
pub type JetStreamUse = std::result::Result<warden_nats::account_jsz::AccountJetStream, String>;

impl Warden {
    /// The JetStream use of the account with public key `account_key` (memory, storage,
    /// streams, consumers), asked of the server `link` names and waited for at most `wait`
    /// in all, connecting included; needs `read`. A server that cannot tell is an `Ok`
    /// holding the reason: the caller shows it in place of the figures.
    pub async fn account_jetstream(
        &self,
        link: &ResolverLink,
        account_key: &str,
        wait: Duration,
    ) -> Result<JetStreamUse> {
        self.need(Scope::Read, "reading account usage")?;
        let key = AccountPublicKey::new(account_key).map_err(OpsError::invalid)?;
        let ask = async {
            let client = match link.client(self).await {
                Ok(c) => c,
                Err(e) => return Err(e.to_string()),
            };
            warden_nats::account_jsz::account_jsz(client.client(), key.as_str(), wait)
                .await
                .map_err(|e| e.to_string())
        };
        Ok(match tokio::time::timeout(wait, ask).await {
            Ok(answer) => answer,
            Err(_) => Err(format!("{} did not answer within {wait:?}", link.url)),
        })
    }
}

/// One comparison of a server's resolver with Warden, as a [`DriftCache`] keeps it.
#[derive(Clone, Debug)]
pub struct DriftSnapshot {
    /// When it was computed (unix seconds, when the comparison began).
    pub computed_at: i64,
    /// How long the comparison took.
    pub took: Duration,
    /// The comparison, or why the server could not be compared with (what the error says).
    pub outcome: std::result::Result<DriftReport, String>,
}

/// The last comparison of one server's resolver with Warden, kept in memory: pages read
/// it ([`DriftCache::latest`]) instead of comparing on every load; [`DriftCache::run`]
/// refreshes it in the background; [`DriftCache::refresh`] compares now (one comparison at
/// a time).
pub struct DriftCache {
    link: std::sync::Arc<ResolverLink>,
    latest: std::sync::RwLock<Option<std::sync::Arc<DriftSnapshot>>>,
    running: Mutex<()>,
    wake: tokio::sync::Notify,
}

impl DriftCache {
    /// A cache of the comparisons with the server `link` names (nothing computed yet).
    pub fn new(link: std::sync::Arc<ResolverLink>) -> DriftCache {
        DriftCache {
            link,
            latest: std::sync::RwLock::new(None),
            running: Mutex::new(()),
            wake: tokio::sync::Notify::new(),
        }
    }

    /// The server it compares with.
    pub fn link(&self) -> &std::sync::Arc<ResolverLink> {
        &self.link
    }

    /// The last comparison, if one was made.
    pub fn latest(&self) -> Option<std::sync::Arc<DriftSnapshot>> {
        self.latest.read().map(|l| l.clone()).unwrap_or(None)
    }

    /// Compares now as `w`'s actor (who needs `read`) and keeps the result: a server that
    /// cannot be reached is kept as such (the page says so); any other error (the actor
    /// may not read) is returned and nothing is kept.
    pub async fn refresh(&self, w: &Warden) -> Result<std::sync::Arc<DriftSnapshot>> {
        w.need(Scope::Read, "comparing NATS with Warden")?;
        // One comparison at a time: they would only slow each other down on the server.
        let _one = self.running.lock().await;
        self.compare_now(w).await
    }

    /// Compares and keeps the result; the caller holds `running`.
    async fn compare_now(&self, w: &Warden) -> Result<std::sync::Arc<DriftSnapshot>> {
        let started = std::time::Instant::now();
        let computed_at = crate::now();
        let outcome = match w.drift_check(&self.link).await {
            Ok(r) => Ok(r),
            Err(e) if e.kind() == crate::ErrorKind::Unavailable => Err(e.to_string()),
            Err(e) => return Err(e),
        };
        let snap = std::sync::Arc::new(DriftSnapshot {
            computed_at,
            took: started.elapsed(),
            outcome,
        });
        if let Ok(mut l) = self.latest.write() {
            *l = Some(snap.clone());
        }
        Ok(snap)
    }

    /// The last comparison, or (none made yet) one made now; a comparison running
    /// meanwhile (the background task's first) is waited for and its result used.
    pub async fn latest_or_refresh(&self, w: &Warden) -> Result<std::sync::Arc<DriftSnapshot>> {
        if let Some(s) = self.latest() {
            return Ok(s);
        }
        w.need(Scope::Read, "comparing NATS with Warden")?;
        let _one = self.running.lock().await;
        match self.latest() {
            Some(s) => Ok(s),
            None => self.compare_now(w).await,
        }
    }

    /// Records pushes that the server took: those accounts now hold the JWT Warden pushed
    /// (in sync) in the kept comparison, until the next one.
    pub fn pushed(&self, outcomes: &[PushOutcome]) {
        let Ok(mut l) = self.latest.write() else {
            return;
        };
        let Some(snap) = l.as_ref() else { return };
        let Ok(report) = &snap.outcome else { return };
        let mut report = report.clone();
        for p in outcomes.iter().filter(|p| p.ok) {
            if let Some(a) = report
                .accounts
                .iter_mut()
                .find(|a| a.public_key == p.public_key)
            {
                a.state = SyncState::InSync;
            }
            for list in [
                &mut report.missing,
                &mut report.stale,
                &mut report.newer_on_server,
            ] {
                list.retain(|k| k != &p.public_key);
            }
        }
        *l = Some(std::sync::Arc::new(DriftSnapshot {
            computed_at: snap.computed_at,
            took: snap.took,
            outcome: Ok(report),
        }));
    }

    /// Asks the background task ([`DriftCache::run`]) to compare again soon.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Keeps the comparison fresh until `stop` turns `true` (or its sender is gone): one
    /// now, then one every `every`, one soon after `delivered()` (a count of outbox rows
    /// the relay delivered) moves, and one when [`DriftCache::wake`] is called; `w` acts
    /// (it needs `read`). A refusal to read ends the task (logged).
    pub async fn run(
        self: std::sync::Arc<Self>,
        w: Warden,
        every: Duration,
        delivered: impl Fn() -> u64 + Send,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        /// How often the relay's delivery count is looked at.
        const POLL: Duration = Duration::from_secs(1);
        let mut seen = delivered();
        let mut last = tokio::time::Instant::now();
        let mut due = true;
        loop {
            if *stop.borrow() {
                return;
            }
            if due {
                if let Err(e) = self.refresh(&w).await {
                    tracing::warn!("drift comparison stopped: {e}");
                    return;
                }
                last = tokio::time::Instant::now();
            }
            tokio::select! {
                _ = stop.changed() => {
                    // A stop, or a sender gone (nobody can stop it otherwise).
                    return;
                }
                () = self.wake.notified() => due = true,
                () = tokio::time::sleep(POLL) => {
                    let now = delivered();
                    due = now != seen || last.elapsed() >= every;
                    seen = now;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connz_sums_connections() {
        let reply = br#"{"server":{"name":"n"},"data":{"server_id":"x","num_connections":2,"total":2,
            "connections":[{"cid":1,"subscriptions":3,"in_msgs":5,"out_msgs":1,"in_bytes":50,"out_bytes":10},
                           {"cid":2,"subscriptions":1,"in_msgs":0,"out_msgs":4,"in_bytes":0,"out_bytes":40}]}}"#;
        let u = parse_connz(reply).unwrap();
        assert_eq!(
            u,
            Usage {
                connections: 2,
                listed: 2,
                subscriptions: 4,
                in_msgs: 5,
                in_bytes: 50,
                out_msgs: 5,
                out_bytes: 50,
            }
        );
        let none = br#"{"data":{"total":0,"connections":null}}"#;
        assert_eq!(parse_connz(none).unwrap(), Usage::default());
        assert!(parse_connz(br#"{"error":{"code":500,"description":"x"}}"#).is_err());
        assert!(parse_connz(b"nope").is_err());
    }

    #[test]
    fn connection_failures_are_unavailable() {
        let e = resolver_error(
            "nats://127.0.0.1:1",
            ResolverError::Connect {
                url: "nats://127.0.0.1:1".into(),
                reason: "refused".into(),
            },
        );
        assert_eq!(e.kind(), crate::ErrorKind::Unavailable);
        assert!(e.to_string().contains("nats://127.0.0.1:1"), "{e}");
        let e = resolver_error("u", ResolverError::EmptyDelete);
        assert_eq!(e.kind(), crate::ErrorKind::Internal);
    }
}
