//! The account resolver protocol of nats-server, spoken as a system-account user.
//!
//! A server running a `full` (or `cache`) resolver answers these requests from clients of the
//! system account (facts §10.2):
//!
//! | request | payload | reply |
//! |---|---|---|
//! | `$SYS.REQ.CLAIMS.UPDATE` | raw account JWT | `{"data":{"account","code","message"},"server":{…}}` |
//! | `$SYS.REQ.CLAIMS.DELETE` | operator-signed generic JWT ([`delete_request`]) | `{"data":{"code","message"},"server":{…}}` |
//! | `$SYS.REQ.CLAIMS.LIST` | empty | `{"data":["A…",…],"server":{…}}` |
//! | `$SYS.REQ.ACCOUNT.<A…>.CLAIMS.LOOKUP` | empty | the raw JWT, or **no reply at all** if unknown |
//!
//! Errors come back as `{"error":{"account","code","description"},"server":{…}}` and become
//! [`ResolverError::Refused`].
//!
//! Pitfalls handled here:
//! * Requests are sent **without NATS headers**: nats-server 2.9.10 decodes the raw message and
//!   fails with "expected 3 chunks" when headers are present.
//! * nats-server stores a pushed account without checking that the trusted operator issued it
//!   (facts §10.4 for 2.9.10; the tests show 2.15.1 does the same: a foreign-operator and a
//!   self-signed account both get "jwt updated" and appear in LIST). [`ResolverClient::push`]
//!   runs [`verify_trust`](crate::trust::verify_trust) first, and Warden pushes only through it.
//!   [`ResolverClient::update`] is the raw request.
//! * A `MEMORY` resolver (or a user outside the system account) has no responders on these
//!   subjects: [`ResolverError::NoResponders`].
//! * LOOKUP of an unknown account gets no reply from 2.9.10 and an empty reply from 2.15:
//!   [`ResolverClient::lookup`] turns both into `None`. On 2.9.10 that costs the full request
//!   timeout, and a server too slow to answer in time is indistinguishable from "unknown".
//! * In a cluster every server replies to UPDATE/DELETE/LIST/LOOKUP; [`ResolverClient::list`]
//!   and [`ResolverClient::lookup`] take the first reply, whichever server sent it. To read one
//!   server's own resolver see [`crate::drift::cluster_drift`]: LIST replies name their
//!   server, LOOKUP replies do not.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::{ConnectOptions, RequestErrorKind};
use futures::StreamExt as _;
use nats_jwt::{AccountPublicKey, GenericClaims, KeyKind, KeyPair, OperatorClaims};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::trust::{TrustError, check_own_trust, verify_trust};

/// Subject of account updates (payload: the raw account JWT).
pub const UPDATE_SUBJECT: &str = "$SYS.REQ.CLAIMS.UPDATE";
/// Subject of account deletes (payload: a generic JWT from [`delete_request`]).
pub const DELETE_SUBJECT: &str = "$SYS.REQ.CLAIMS.DELETE";
/// Subject listing the accounts a server holds.
pub const LIST_SUBJECT: &str = "$SYS.REQ.CLAIMS.LIST";

/// Subject of the LOOKUP request for one account.
pub fn lookup_subject(account: &AccountPublicKey) -> String {
    format!("$SYS.REQ.ACCOUNT.{account}.CLAIMS.LOOKUP")
}

/// Errors talking to the account resolver.
#[derive(thiserror::Error, Debug)]
pub enum ResolverError {
    /// The creds text is not a decorated user JWT plus seed.
    #[error("system account creds are unusable: {0}")]
    Credentials(String),
    /// Connecting (or authenticating) failed.
    #[error("cannot connect to nats-server at {url}: {reason}")]
    Connect {
        /// The URL tried.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// No reply within the request timeout.
    #[error("no reply on {subject} within {timeout:?}")]
    Timeout {
        /// The request subject.
        subject: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// Nobody listens on the subject: the server has no `full`/`cache` resolver (e.g. `MEMORY`),
    /// or the connected user is not in the system account.
    #[error(
        "no responders on {subject}: the server needs a `full` or `cache` resolver and the creds \
         must be of a system account user"
    )]
    NoResponders {
        /// The request subject.
        subject: String,
    },
    /// The server answered with an error.
    #[error("nats-server refused the request (code {code}): {description}")]
    Refused {
        /// HTTP-like code from the reply (e.g. 500).
        code: u16,
        /// The server's description, e.g. "jwt update resulted in error - expected 3 chunks".
        description: String,
        /// The account the reply names, if any (`"n/a"` and empty become `None`).
        account: Option<String>,
    },
    /// The reply is not what the protocol says.
    #[error("unexpected reply on {subject}: {reason}")]
    BadReply {
        /// The request subject.
        subject: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Building a JWT failed.
    #[error("cannot build the request JWT: {0}")]
    Jwt(#[from] nats_jwt::JwtError),
    /// [`delete_request`] was given no accounts.
    #[error("a delete request needs at least one account")]
    EmptyDelete,
    /// [`delete_request`] was given a key that is not an operator key.
    #[error(
        "delete requests must be signed by an operator key (identity or signing key), not a {found} key"
    )]
    NotOperatorKey {
        /// The kind of key given.
        found: KeyKind,
    },
    /// An account public key given to a request is not valid.
    #[error("{key:?} is not an account public key: {reason}")]
    InvalidAccountKey {
        /// The string given.
        key: String,
        /// Why it is not one.
        reason: String,
    },
    /// The account JWT is not trusted by the operator; it was not sent.
    #[error("not pushed: {0}")]
    Untrusted(#[from] TrustError),
    /// Any other client-side NATS failure.
    #[error("NATS request on {subject} failed: {reason}")]
    Nats {
        /// The request subject.
        subject: String,
        /// What went wrong.
        reason: String,
    },
}

/// Identity of the server that answered (the `server` object of a reply).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ServerInfo {
    /// `server_name` (the server id when unnamed).
    #[serde(default)]
    pub name: String,
    /// Server id (`N…`).
    #[serde(default)]
    pub id: String,
    /// Server version, e.g. `"2.9.10"`.
    #[serde(default, rename = "ver")]
    pub version: String,
}

/// A successful `$SYS.REQ.CLAIMS.UPDATE` reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateReply {
    /// The account updated (the JWT's subject).
    pub account: Option<String>,
    /// 200 on success.
    pub code: u16,
    /// `"jwt updated"` (full resolver), `"jwt updated cache"` / `"jwt update cache skipped"`
    /// (cache resolver).
    pub message: String,
    /// The server that answered.
    pub server: ServerInfo,
    /// From sending the request to its answer (the push's round trip, waiting behind the
    /// requests before it on its connection included).
    pub took: Duration,
}

/// A successful `$SYS.REQ.CLAIMS.DELETE` reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteReply {
    /// 200 on success.
    pub code: u16,
    /// E.g. `"deleted 1 accounts"`.
    pub message: String,
    /// The server that answered.
    pub server: ServerInfo,
}

#[derive(Deserialize)]
struct Envelope<D> {
    data: Option<D>,
    error: Option<WireError>,
    server: Option<ServerInfo>,
}

#[derive(Deserialize)]
struct WireError {
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    code: u16,
    #[serde(default)]
    description: String,
}

#[derive(Debug, Deserialize)]
struct WireStatus {
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    code: u16,
    #[serde(default)]
    message: String,
}

/// Parses a `{"data":…}` / `{"error":…}` reply; the error side becomes `Refused`.
fn parse_reply<D: DeserializeOwned>(
    subject: &str,
    payload: &[u8],
) -> Result<(D, ServerInfo), ResolverError> {
    let bad = |reason: String| ResolverError::BadReply {
        subject: subject.to_string(),
        reason,
    };
    let env: Envelope<D> = serde_json::from_slice(payload).map_err(|e| {
        bad(format!(
            "not the expected JSON ({e}): {}",
            String::from_utf8_lossy(&payload[..payload.len().min(200)])
        ))
    })?;
    if let Some(err) = env.error {
        return Err(ResolverError::Refused {
            code: err.code,
            description: err.description,
            account: err.account.filter(|a| !a.is_empty() && a != "n/a"),
        });
    }
    let data = env
        .data
        .ok_or_else(|| bad("neither \"data\" nor \"error\" is set".into()))?;
    Ok((data, env.server.unwrap_or_default()))
}

/// A connection to nats-server as a system-account user, speaking the account resolver protocol.
///
/// Cheap to share: requests take `&self` and may run concurrently (they are multiplexed on the
/// connection).
///
/// A server handles the requests of one connection one after the other (the system handlers run
/// in that connection's read loop), so pipelining on one connection hides the round trips but
/// not the server's per-update work. For bulk pushes, [`ResolverClient::connect_lanes`] opens
/// several connections and [`ResolverClient::update_many`] spreads the requests over them.
#[derive(Clone)]
pub struct ResolverClient {
    /// Never empty; the first is used for single requests.
    lanes: Vec<async_nats::Client>,
    timeout: Duration,
}

impl std::fmt::Debug for ResolverClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolverClient")
            .field("lanes", &self.lanes.len())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Runs `calls` with at most `concurrency` (at least 1) in flight; results in input order.
/// The futures are made up front (they are lazy): a closure inside the stream would make the
/// caller's future fail the compiler's higher-ranked `Send` check when spawned.
///
/// Answers are taken as they come (not in order, which would let one slow answer hold back
/// the requests behind it across every lane) and put back in order at the end.
async fn in_order<F: std::future::Future>(calls: Vec<F>, concurrency: usize) -> Vec<F::Output> {
    let numbered: Vec<_> = calls
        .into_iter()
        .enumerate()
        .map(|(i, call)| async move { (i, call.await) })
        .collect();
    let mut out: Vec<(usize, F::Output)> = futures::stream::iter(numbered)
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    out.sort_unstable_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

/// The order in which a batch of account JWTs may be pushed: waves, each pushed (pipelined)
/// only after the previous one was answered; indices into `jwts`, each exactly once.
///
/// An account never shares a wave with an account it imports from. The reason is a race in
/// nats-server (2.9.10 and 2.15.1 alike): applying an exporter's update re-applies every importer
/// whose imports were incomplete from that importer's *last completed* JWT. When the importer's
/// own update is being applied at the same moment on another connection, the server re-applies
/// the older JWT over the newer one and then records the newer one as current, so later pushes
/// of it are skipped as "same claims": a device restored after a revocation stayed refused
/// (its old `*` revocation back in force) until the next change of its account. Exporters go
/// first; accounts that import from each other in a cycle go one at a time. JWTs whose payload
/// does not parse have no dependencies (their push fails on its own).
///
/// Only the payload's `sub` and import accounts are read, without checking the signature: the
/// order is no matter of trust (pushes check it, the server too), and a batch of 10,000
/// accounts should not pay 10,000 more Ed25519 verifications.
pub fn push_waves(jwts: &[String]) -> Vec<Vec<usize>> {
    waves_of(&jwts.iter().map(|jwt| imports_of(jwt)).collect::<Vec<_>>())
}

/// [`push_waves`] from each JWT's subject and the accounts it imports from, already read
/// (`None`: no dependencies).
fn waves_of(subjects: &[Option<(String, Vec<String>)>]) -> Vec<Vec<usize>> {
    // Which batch entries carry each account (a lookup, so a batch of n costs O(n + imports)).
    let mut by_subject: std::collections::HashMap<&str, Vec<usize>> =
        std::collections::HashMap::new();
    for (i, s) in subjects.iter().enumerate() {
        if let Some((sub, _)) = s {
            by_subject.entry(sub.as_str()).or_default().push(i);
        }
    }
    // deps[i]: the indices of the accounts `i` imports from, other than itself.
    let deps: Vec<Vec<usize>> = subjects
        .iter()
        .map(|me| {
            let Some((sub, from)) = me else {
                return Vec::new();
            };
            let mut d: Vec<usize> = from
                .iter()
                .filter(|f| *f != sub)
                .filter_map(|f| by_subject.get(f.as_str()))
                .flatten()
                .copied()
                .collect();
            d.sort_unstable();
            d.dedup();
            d
        })
        .collect();
    let mut wave_of: Vec<Option<usize>> = vec![None; subjects.len()];
    let mut waves: Vec<Vec<usize>> = Vec::new();
    loop {
        let ready: Vec<usize> = (0..subjects.len())
            .filter(|&i| wave_of[i].is_none())
            .filter(|&i| {
                deps[i]
                    .iter()
                    .all(|&j| wave_of[j].is_some_and(|w| w < waves.len()))
            })
            .collect();
        if ready.is_empty() {
            break;
        }
        for &i in &ready {
            wave_of[i] = Some(waves.len());
        }
        waves.push(ready);
    }
    // Left over: accounts in (or behind) an import cycle, one per wave, in input order.
    waves.extend(
        (0..subjects.len())
            .filter(|&i| wave_of[i].is_none())
            .map(|i| vec![i]),
    );
    waves
}

/// An account JWT's subject and the accounts it imports from, read from its payload.
fn imports_of(jwt: &str) -> Option<(String, Vec<String>)> {
    #[derive(Deserialize)]
    struct Payload {
        sub: String,
        #[serde(default)]
        nats: Body,
    }
    #[derive(Deserialize, Default)]
    struct Body {
        #[serde(default)]
        imports: Vec<From>,
    }
    #[derive(Deserialize)]
    struct From {
        account: String,
    }
    let payload = jwt.trim().split('.').nth(1)?;
    let bytes = data_encoding::BASE64URL_NOPAD
        .decode(payload.trim_end_matches('=').as_bytes())
        .ok()?;
    let p: Payload = serde_json::from_slice(&bytes).ok()?;
    Some((
        p.sub,
        p.nats.imports.into_iter().map(|i| i.account).collect(),
    ))
}

/// Runs `call(i)` for every index of `jwts`, wave by wave as [`push_waves`] orders them, with at
/// most `concurrency` in flight within a wave; results in input order.
async fn in_waves<F, Fut, T>(jwts: &[String], concurrency: usize, call: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    run_waves(push_waves(jwts), concurrency, call).await
}

/// Runs `call(i)` for every index in `waves`, wave by wave, with at most `concurrency` in
/// flight within a wave; results in index order.
async fn run_waves<F, Fut, T>(waves: Vec<Vec<usize>>, concurrency: usize, call: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut results: Vec<(usize, T)> = Vec::with_capacity(waves.iter().map(Vec::len).sum());
    for wave in waves {
        let calls = wave.iter().map(|&i| call(i)).collect();
        results.extend(wave.into_iter().zip(in_order(calls, concurrency).await));
    }
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Account JWTs of Warden's own, checked with [`check_own_trust`] and put in push order
/// ([`push_waves`]) before anything is sent: the checking is CPU work that a relay does
/// while the batch before is still in flight, and [`ResolverClient::push_checked`] then
/// only sends.
#[derive(Debug, Default)]
pub struct OwnPushes {
    jwts: Vec<String>,
    /// Per JWT: why it must not be pushed (`None`: it may).
    refused: Vec<Option<TrustError>>,
    /// The JWTs that may be pushed, in waves (indices into `jwts`).
    waves: Vec<Vec<usize>>,
}

impl OwnPushes {
    /// Checks each JWT against `operator`'s trust (decoding it once, for the check and for
    /// its place in the waves). Untrusted JWTs leave the waves and are never sent.
    pub fn check(operator: &OperatorClaims, jwts: Vec<String>) -> OwnPushes {
        let mut refused: Vec<Option<TrustError>> = Vec::with_capacity(jwts.len());
        let mut subjects = Vec::with_capacity(jwts.len());
        for jwt in &jwts {
            match check_own_trust(operator, jwt) {
                Ok(claims) => {
                    let from = claims.nats.imports.iter();
                    subjects.push(Some((
                        claims.sub.to_string(),
                        from.map(|i| i.account.to_string()).collect(),
                    )));
                    refused.push(None);
                }
                Err(e) => {
                    subjects.push(None);
                    refused.push(Some(e));
                }
            }
        }
        let waves: Vec<Vec<usize>> = waves_of(&subjects)
            .into_iter()
            .map(|wave| wave.into_iter().filter(|&i| refused[i].is_none()).collect())
            .filter(|wave: &Vec<usize>| !wave.is_empty())
            .collect();
        OwnPushes {
            jwts,
            refused,
            waves,
        }
    }

    /// How many JWTs were checked.
    pub fn len(&self) -> usize {
        self.jwts.len()
    }

    /// Whether there is nothing to push.
    pub fn is_empty(&self) -> bool {
        self.jwts.is_empty()
    }
}

impl ResolverClient {
    /// Connect with the creds text of a user of the system account. `timeout` bounds the connect
    /// and, afterwards, every request (and so how long [`ResolverClient::lookup`] waits before
    /// concluding that an account is unknown).
    pub async fn connect(
        url: &str,
        sys_creds: &str,
        timeout: Duration,
    ) -> Result<ResolverClient, ResolverError> {
        Self::connect_lanes(url, sys_creds, timeout, 1).await
    }

    /// Like [`ResolverClient::connect`] with `lanes` (at least 1) connections, over which
    /// [`ResolverClient::update_many`] and the other bulk calls spread their requests.
    pub async fn connect_lanes(
        url: &str,
        sys_creds: &str,
        timeout: Duration,
        lanes: usize,
    ) -> Result<ResolverClient, ResolverError> {
        Self::connect_with(url, sys_creds, timeout, lanes, false).await
    }

    /// A connection to the one server at `url` and to no other: neither the servers it
    /// announces for its cluster nor, after a disconnect, another one: its INFO names the
    /// server, and what it asks starts from that server's own
    /// resolver (see [`crate::drift::cluster_drift`]). A list of several URLs is refused.
    pub async fn connect_alone(
        url: &str,
        sys_creds: &str,
        timeout: Duration,
    ) -> Result<ResolverClient, ResolverError> {
        if url.contains(',') {
            return Err(ResolverError::Connect {
                url: url.to_string(),
                reason: "one server is read at a time; give one URL".into(),
            });
        }
        Self::connect_with(url, sys_creds, timeout, 1, true).await
    }

    async fn connect_with(
        url: &str,
        sys_creds: &str,
        timeout: Duration,
        lanes: usize,
        alone: bool,
    ) -> Result<ResolverClient, ResolverError> {
        // The error from parsing never contains the creds text or the seed.
        let mut options = ConnectOptions::with_credentials(sys_creds)
            .map_err(|e| ResolverError::Credentials(e.to_string()))?
            .name("warden-resolver")
            .retain_servers_order()
            .connection_timeout(timeout)
            .request_timeout(Some(timeout));
        if alone {
            options = options.ignore_discovered_servers();
        }
        let connect_err = |reason: String| ResolverError::Connect {
            url: url.to_string(),
            reason,
        };
        // Every lane gets the whole server list: when its server dies it moves on to
        // another, and the requests that failed meanwhile are retried by the caller.
        let servers = crate::urls::server_addrs(url).map_err(|e| connect_err(e.to_string()))?;
        let mut clients = Vec::with_capacity(lanes.max(1));
        for _ in 0..lanes.max(1) {
            let client = tokio::time::timeout(timeout, options.clone().connect(&servers))
                .await
                .map_err(|_| connect_err(format!("no connection within {timeout:?}")))?
                .map_err(|e| connect_err(e.to_string()))?;
            clients.push(client);
        }
        Ok(ResolverClient {
            lanes: clients,
            timeout,
        })
    }

    /// The underlying NATS client (the first lane).
    pub fn client(&self) -> &async_nats::Client {
        &self.lanes[0]
    }

    /// How many connections this client has.
    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }

    fn lane(&self, index: usize) -> &async_nats::Client {
        &self.lanes[index % self.lanes.len()]
    }

    /// The request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// One request without headers; maps the client's error kinds.
    async fn request(
        &self,
        lane: usize,
        subject: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, ResolverError> {
        match self
            .lane(lane)
            .request(subject.to_string(), payload.into())
            .await
        {
            Ok(msg) => Ok(msg.payload.to_vec()),
            Err(e) => Err(match e.kind() {
                RequestErrorKind::TimedOut => ResolverError::Timeout {
                    subject: subject.to_string(),
                    timeout: self.timeout,
                },
                RequestErrorKind::NoResponders => ResolverError::NoResponders {
                    subject: subject.to_string(),
                },
                _ => ResolverError::Nats {
                    subject: subject.to_string(),
                    reason: e.to_string(),
                },
            }),
        }
    }

    /// `$SYS.REQ.CLAIMS.UPDATE` with the raw JWT, without headers. This is the raw request: the
    /// server (2.9.10) does not check who issued the account, so Warden calls
    /// [`ResolverClient::push`] instead.
    pub async fn update(&self, account_jwt: &str) -> Result<UpdateReply, ResolverError> {
        self.update_on(0, account_jwt).await
    }

    async fn update_on(
        &self,
        lane: usize,
        account_jwt: &str,
    ) -> Result<UpdateReply, ResolverError> {
        let sent = std::time::Instant::now();
        let payload = self
            .request(lane, UPDATE_SUBJECT, account_jwt.trim().as_bytes().to_vec())
            .await?;
        let took = sent.elapsed();
        let (status, server) = parse_reply::<WireStatus>(UPDATE_SUBJECT, &payload)?;
        Ok(UpdateReply {
            account: status.account.filter(|a| !a.is_empty()),
            code: status.code,
            message: status.message,
            server,
            took,
        })
    }

    /// Many updates, pipelined with at most `concurrency` (at least 1) requests in flight in
    /// all, spread round-robin over the lanes, exporters before their importers
    /// ([`push_waves`]); results in input order.
    pub async fn update_many(
        &self,
        jwts: &[String],
        concurrency: usize,
    ) -> Vec<Result<UpdateReply, ResolverError>> {
        in_waves(jwts, concurrency, |i| self.update_on(i, &jwts[i])).await
    }

    /// Checks the account JWT with [`verify_trust`] and, only if it passes, sends it with
    /// [`ResolverClient::update`].
    pub async fn push(
        &self,
        operator: &OperatorClaims,
        account_jwt: &str,
    ) -> Result<UpdateReply, ResolverError> {
        self.push_on(0, operator, account_jwt).await
    }

    async fn push_on(
        &self,
        lane: usize,
        operator: &OperatorClaims,
        account_jwt: &str,
    ) -> Result<UpdateReply, ResolverError> {
        verify_trust(operator, account_jwt)?;
        self.update_on(lane, account_jwt).await
    }

    /// [`ResolverClient::push`] for many JWTs, pipelined like [`ResolverClient::update_many`];
    /// untrusted JWTs are never sent. Results in input order.
    pub async fn push_many(
        &self,
        operator: &OperatorClaims,
        jwts: &[String],
        concurrency: usize,
    ) -> Vec<Result<UpdateReply, ResolverError>> {
        in_waves(jwts, concurrency, |i| self.push_on(i, operator, &jwts[i])).await
    }

    /// [`ResolverClient::push_many`] for account JWTs Warden signed itself and read from its
    /// own store (the relay): the trust check is [`check_own_trust`], which leaves the
    /// signature to the server. Results in input order.
    pub async fn push_own_many(
        &self,
        operator: &OperatorClaims,
        jwts: &[String],
        concurrency: usize,
    ) -> Vec<Result<UpdateReply, ResolverError>> {
        self.push_checked(OwnPushes::check(operator, jwts.to_vec()), concurrency)
            .await
    }

    /// Sends what [`OwnPushes::check`] let through, wave by wave, with at most `concurrency`
    /// requests in flight; the refused JWTs get their refusal. Results in the order the JWTs
    /// were checked in.
    pub async fn push_checked(
        &self,
        pushes: OwnPushes,
        concurrency: usize,
    ) -> Vec<Result<UpdateReply, ResolverError>> {
        let OwnPushes {
            jwts,
            refused,
            waves,
        } = pushes;
        let mut pushed = run_waves(waves, concurrency, |i| self.update_on(i, &jwts[i]))
            .await
            .into_iter();
        refused
            .into_iter()
            .map(|refusal| match refusal {
                Some(e) => Err(e.into()),
                None => pushed.next().unwrap_or_else(|| {
                    Err(ResolverError::Nats {
                        subject: UPDATE_SUBJECT.to_string(),
                        reason: "the push was not made".into(),
                    })
                }),
            })
            .collect()
    }

    /// `$SYS.REQ.CLAIMS.DELETE` with an operator-signed generic delete JWT (see
    /// [`delete_request`]). The server needs `allow_delete: true` and refuses to delete the
    /// system account.
    pub async fn delete(&self, delete_jwt: &str) -> Result<DeleteReply, ResolverError> {
        let payload = self
            .request(0, DELETE_SUBJECT, delete_jwt.trim().as_bytes().to_vec())
            .await?;
        let (status, server) = parse_reply::<WireStatus>(DELETE_SUBJECT, &payload)?;
        Ok(DeleteReply {
            code: status.code,
            message: status.message,
            server,
        })
    }

    /// `$SYS.REQ.CLAIMS.LIST`: the public keys of the accounts the server holds (deleted ones
    /// excluded), sorted.
    pub async fn list(&self) -> Result<Vec<String>, ResolverError> {
        let payload = self.request(0, LIST_SUBJECT, Vec::new()).await?;
        let (mut keys, _) = parse_reply::<Vec<String>>(LIST_SUBJECT, &payload)?;
        keys.sort();
        Ok(keys)
    }

    /// `$SYS.REQ.ACCOUNT.<account>.CLAIMS.LOOKUP`: the JWT the server holds, or `None` for an
    /// unknown account (2.9.10 does not answer, so that is the request timeout expiring; 2.15
    /// answers an empty message).
    pub async fn lookup(&self, account: &str) -> Result<Option<String>, ResolverError> {
        self.lookup_on(0, account).await
    }

    async fn lookup_on(&self, lane: usize, account: &str) -> Result<Option<String>, ResolverError> {
        let key = AccountPublicKey::new(account).map_err(|e| ResolverError::InvalidAccountKey {
            key: account.to_string(),
            reason: e.to_string(),
        })?;
        let subject = lookup_subject(&key);
        match self.request(lane, &subject, Vec::new()).await {
            Ok(payload) => {
                let jwt = String::from_utf8(payload).map_err(|_| ResolverError::BadReply {
                    subject: subject.clone(),
                    reason: "the JWT is not UTF-8".into(),
                })?;
                let jwt = jwt.trim();
                if jwt.is_empty() {
                    // 2.15 answers an empty message where 2.9.10 stays silent.
                    Ok(None)
                } else {
                    Ok(Some(jwt.to_string()))
                }
            }
            Err(ResolverError::Timeout { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// [`ResolverClient::lookup`] of many accounts, at most `concurrency` in flight; results in
    /// input order.
    pub async fn lookup_many(
        &self,
        accounts: &[String],
        concurrency: usize,
    ) -> Vec<Result<Option<String>, ResolverError>> {
        let calls = accounts
            .iter()
            .enumerate()
            .map(|(i, a)| self.lookup_on(i, a))
            .collect();
        in_order(calls, concurrency).await
    }

    /// The server this client is connected to, as its INFO named it (`name` falls back to the
    /// id when the server has no `server_name`).
    pub fn connected_server(&self) -> ServerInfo {
        let info = self.client().server_info();
        ServerInfo {
            name: if info.server_name.is_empty() {
                info.server_id.clone()
            } else {
                info.server_name
            },
            id: info.server_id,
            version: info.version,
        }
    }

    /// The client URLs the connected server announces for its cluster (its INFO's
    /// `connect_urls`, `HOST:PORT` each; empty for a server without routes).
    pub fn announced_urls(&self) -> Vec<String> {
        self.client().server_info().connect_urls
    }

    /// `$SYS.REQ.CLAIMS.LIST` as every server that hears it answers: each reply names its
    /// server. Collects until `expected` servers answered, or no further reply came within the
    /// timeout (fails only when none did). Keys sorted; servers in the order they answered.
    pub async fn list_each(
        &self,
        expected: usize,
    ) -> Result<Vec<(ServerInfo, Vec<String>)>, ResolverError> {
        let client = self.client();
        let nats = |reason: String| ResolverError::Nats {
            subject: LIST_SUBJECT.to_string(),
            reason,
        };
        let inbox = client.new_inbox();
        let mut replies = client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| nats(e.to_string()))?;
        client
            .publish_with_reply(LIST_SUBJECT, inbox, Vec::new().into())
            .await
            .map_err(|e| nats(e.to_string()))?;
        let mut out: Vec<(ServerInfo, Vec<String>)> = Vec::new();
        while out.len() < expected.max(1) {
            let msg = match tokio::time::timeout(self.timeout, replies.next()).await {
                Err(_) if !out.is_empty() => break,
                Err(_) => {
                    return Err(ResolverError::Timeout {
                        subject: LIST_SUBJECT.to_string(),
                        timeout: self.timeout,
                    });
                }
                Ok(None) => return Err(nats("the connection closed".into())),
                Ok(Some(msg)) => msg,
            };
            if msg.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
                return Err(ResolverError::NoResponders {
                    subject: LIST_SUBJECT.to_string(),
                });
            }
            let (mut keys, server) = parse_reply::<Vec<String>>(LIST_SUBJECT, &msg.payload)?;
            keys.sort();
            if !out.iter().any(|(s, _)| s.id == server.id) {
                out.push((server, keys));
            }
        }
        Ok(out)
    }

    /// `$SYS.REQ.ACCOUNT.<key>.CLAIMS.LOOKUP` for each `(key, holders)`, collecting every
    /// JWT any server answers until `holders` came for each key (empty replies, 2.15's "not
    /// here", are skipped), or until no reply came within the timeout. The replies do not say
    /// which server sent them. At most `concurrency` keys are asked at a time.
    pub async fn lookup_each(
        &self,
        wanted: &[(String, usize)],
        concurrency: usize,
    ) -> Result<BTreeMap<String, Vec<String>>, ResolverError> {
        let client = self.client();
        let nats = |reason: String| ResolverError::Nats {
            subject: lookup_subject_str("*"),
            reason,
        };
        let prefix = client.new_inbox();
        let mut replies = client
            .subscribe(format!("{prefix}.*"))
            .await
            .map_err(|e| nats(e.to_string()))?;
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut next = 0usize;
        let mut open: BTreeMap<usize, usize> = BTreeMap::new(); // index → replies still due
        loop {
            while open.len() < concurrency.max(1) && next < wanted.len() {
                let (key, holders) = &wanted[next];
                let account =
                    AccountPublicKey::new(key).map_err(|e| ResolverError::InvalidAccountKey {
                        key: key.clone(),
                        reason: e.to_string(),
                    })?;
                out.entry(key.clone()).or_default();
                if *holders > 0 {
                    client
                        .publish_with_reply(
                            lookup_subject(&account),
                            format!("{prefix}.{next}"),
                            Vec::new().into(),
                        )
                        .await
                        .map_err(|e| nats(e.to_string()))?;
                    open.insert(next, *holders);
                }
                next += 1;
            }
            if open.is_empty() {
                return Ok(out);
            }
            let msg = match tokio::time::timeout(self.timeout, replies.next()).await {
                // Whoever has not answered by now is not going to: what came is the answer.
                Err(_) => {
                    open.clear();
                    continue;
                }
                Ok(None) => return Err(nats("the connection closed".into())),
                Ok(Some(msg)) => msg,
            };
            let Some(index) = msg
                .subject
                .rsplit('.')
                .next()
                .and_then(|i| i.parse::<usize>().ok())
            else {
                continue;
            };
            let Some(due) = open.get_mut(&index) else {
                continue;
            };
            let jwt = String::from_utf8_lossy(&msg.payload).trim().to_string();
            if jwt.is_empty() || msg.status.is_some() {
                continue;
            }
            out.entry(wanted[index].0.clone()).or_default().push(jwt);
            *due -= 1;
            if *due == 0 {
                open.remove(&index);
            }
        }
    }
}

fn lookup_subject_str(account: &str) -> String {
    format!("$SYS.REQ.ACCOUNT.{account}.CLAIMS.LOOKUP")
}

/// The generic JWT nats-server accepts on `$SYS.REQ.CLAIMS.DELETE`: `iss` = `sub` = the operator
/// key that signs (identity or signing key), `nats` = `{"accounts":[…],"version":2}` (facts §7,
/// §10.4). Duplicates are dropped, order kept. Refuses an empty list and a non-operator key.
pub fn delete_request(
    operator_key: &KeyPair,
    accounts: &[AccountPublicKey],
) -> Result<String, ResolverError> {
    if operator_key.kind() != KeyKind::Operator {
        return Err(ResolverError::NotOperatorKey {
            found: operator_key.kind(),
        });
    }
    if accounts.is_empty() {
        return Err(ResolverError::EmptyDelete);
    }
    let mut list: Vec<serde_json::Value> = Vec::with_capacity(accounts.len());
    for a in accounts {
        let v = serde_json::Value::String(a.to_string());
        if !list.contains(&v) {
            list.push(v);
        }
    }
    let mut claims = GenericClaims::new(operator_key.public_key().as_str());
    claims
        .nats
        .body
        .insert("accounts".into(), serde_json::Value::Array(list));
    Ok(claims.encode(operator_key)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nats_jwt::{AnyClaims, decode_any};

    /// An account JWT signed by `op` for `kp`, importing from `from`.
    fn account(op: &KeyPair, kp: &KeyPair, from: &[&KeyPair]) -> String {
        let key = kp.account_public_key().expect("account key");
        let mut c = nats_jwt::AccountClaims::new(&key, "A");
        for f in from {
            c.nats.imports.push(nats_jwt::Import::new(
                "svc.>".parse().expect("subject"),
                f.account_public_key().expect("account key"),
                nats_jwt::ExportType::Service,
            ));
        }
        c.encode(op).expect("encodes")
    }

    #[test]
    fn exporters_are_pushed_before_their_importers() {
        let op = KeyPair::generate(KeyKind::Operator);
        let [hub, d1, d2, other, tenant] =
            std::array::from_fn(|_| KeyPair::generate(KeyKind::Account));
        // Input order puts importers first, as a BTreeMap of keys may.
        let jwts = vec![
            account(&op, &d1, &[&hub]),
            account(&op, &tenant, &[&d2]),
            account(&op, &hub, &[]),
            account(&op, &d2, &[&hub, &d2]), // an import from itself is no dependency
            account(&op, &other, &[&KeyPair::generate(KeyKind::Account)]),
            "not a jwt".to_string(),
        ];
        assert_eq!(
            push_waves(&jwts),
            vec![vec![2, 4, 5], vec![0, 3], vec![1]],
            "hub (and what depends on nothing in the batch) first, then its importers, then theirs"
        );
    }

    #[test]
    fn an_import_cycle_is_pushed_one_at_a_time() {
        let op = KeyPair::generate(KeyKind::Operator);
        let [x, y, z, free] = std::array::from_fn(|_| KeyPair::generate(KeyKind::Account));
        let jwts = vec![
            account(&op, &x, &[&y]),
            account(&op, &y, &[&x]),
            account(&op, &z, &[&y]),
            account(&op, &free, &[]),
        ];
        assert_eq!(push_waves(&jwts), vec![vec![3], vec![0], vec![1], vec![2]]);
        assert!(push_waves(&[]).is_empty());
    }

    #[test]
    fn delete_request_shape() {
        let op = KeyPair::generate(KeyKind::Operator);
        let a = KeyPair::generate(KeyKind::Account)
            .account_public_key()
            .expect("account key");
        let token = delete_request(&op, &[a.clone(), a.clone()]).expect("encodes");
        let AnyClaims::Generic(c) = decode_any(&token).expect("decodes") else {
            panic!("not generic");
        };
        assert_eq!(c.iss, op.public_key().as_str());
        assert_eq!(c.sub, c.iss);
        assert_eq!(
            c.nats.body.get("accounts"),
            Some(&serde_json::json!([a.as_str()]))
        );
        assert!(!c.nats.body.contains_key("type"));
    }

    #[test]
    fn delete_request_refusals() {
        let op = KeyPair::generate(KeyKind::Operator);
        assert!(matches!(
            delete_request(&op, &[]),
            Err(ResolverError::EmptyDelete)
        ));
        let acc = KeyPair::generate(KeyKind::Account);
        let a = acc.account_public_key().expect("account key");
        assert!(matches!(
            delete_request(&acc, &[a]),
            Err(ResolverError::NotOperatorKey {
                found: KeyKind::Account
            })
        ));
    }

    #[test]
    fn parses_replies() {
        let ok = br#"{"data":{"account":"AX","code":200,"message":"jwt updated"},"server":{"name":"n","host":"h","id":"NID","ver":"2.9.10","seq":1,"jetstream":false,"time":"t"}}"#;
        let (s, server) = parse_reply::<WireStatus>("S", ok).expect("parses");
        assert_eq!((s.code, s.message.as_str()), (200, "jwt updated"));
        assert_eq!(server.version, "2.9.10");
        assert_eq!(server.id, "NID");

        let err = br#"{"error":{"account":"n/a","code":500,"description":"jwt update resulted in error - expected 3 chunks"},"server":{"name":"n"}}"#;
        match parse_reply::<WireStatus>("S", err) {
            Err(ResolverError::Refused {
                code,
                description,
                account,
            }) => {
                assert_eq!(code, 500);
                assert!(description.contains("expected 3 chunks"));
                assert_eq!(account, None);
            }
            other => panic!("unexpected {other:?}"),
        }

        assert!(matches!(
            parse_reply::<WireStatus>("S", b"garbage"),
            Err(ResolverError::BadReply { .. })
        ));
        assert!(matches!(
            parse_reply::<WireStatus>("S", br#"{"server":{}}"#),
            Err(ResolverError::BadReply { .. })
        ));
        let list = br#"{"data":["A1","A2"],"server":{"name":"n"}}"#;
        let (keys, _) = parse_reply::<Vec<String>>("S", list).expect("parses");
        assert_eq!(keys, vec!["A1", "A2"]);
    }
}
