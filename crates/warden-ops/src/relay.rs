//! The outbox relay: delivers what NATS must learn of, in the order it was
//! written, and retries until it succeeds, so a NATS outage (or a crash of Warden)
//! loses nothing.
//!
//! - `account.update`: the account's *current* JWT (so several queued updates of
//!   one account cost one push) is checked for operator trust — nats-server stores
//!   pushed JWTs without that check — and pushed to `$SYS.REQ.CLAIMS.UPDATE` as the
//!   system account's user, pipelined over several connections.
//! - `account.delete`: one operator-signed delete request for the batch, on
//!   `$SYS.REQ.CLAIMS.DELETE`.
//! - `event`: published on `<prefix>.events.<action>` as Warden's service user (when the
//!   store has none, as after `import nsc`, events stay in the ledger only).
//!
//! A message is marked delivered, with the server's reply, only after NATS
//! answered; failures are retried with exponential backoff. Only one relay per
//! database runs at a time ([`warden_store::RelayLock`]).
//!
//! [`RelayStats`] counts what the relay does (rows delivered and failed, batch latency,
//! connections opened, lost and refused, whether this process holds the lock and is
//! connected), for the metrics and the health of `warden serve`.
//!
//! Shutdown interrupts whatever [`run`] waits on (the lock, a connection, a batch
//! NATS does not answer) within [`STOP_GRACE`]: the rows of an interrupted batch stay
//! pending and are delivered after the next start.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nats_jwt::{AccountPublicKey, KeyPair, Operator, OperatorClaims};
use tokio::sync::watch;
use warden_nats::{OwnPushes, ResolverClient, ResolverError, delete_request};
use warden_store::OutboxRow;

use crate::{
    OpsError, Result, TOPIC_ACCOUNT_DELETE, TOPIC_ACCOUNT_UPDATE, TOPIC_EVENT, Warden, now,
};

/// How the relay talks to NATS.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Server URL.
    pub nats_url: String,
    /// Outbox rows read per batch.
    pub batch: i64,
    /// Pushes in flight at once.
    pub concurrency: usize,
    /// Connections the pushes are spread over (a server serialises one connection's requests).
    pub lanes: usize,
    /// Bound on connecting and on each request.
    pub timeout: Duration,
    /// Longest wait between retries of a failed message.
    pub max_backoff: Duration,
    /// How often an idle relay looks for new rows (other processes write them).
    pub idle_poll: Duration,
}

impl RelayConfig {
    /// Defaults for a server at `nats_url`.
    pub fn new(nats_url: impl Into<String>) -> Self {
        RelayConfig {
            nats_url: nats_url.into(),
            batch: 1_024,
            concurrency: 256,
            lanes: 4,
            timeout: Duration::from_secs(5),
            max_backoff: Duration::from_secs(30),
            idle_poll: Duration::from_millis(250),
        }
    }
}

/// What one pass over the outbox did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct DrainReport {
    /// Outbox rows delivered.
    pub delivered: usize,
    /// Outbox rows that failed (to be retried).
    pub failed: usize,
    /// Accounts pushed.
    pub accounts_pushed: usize,
    /// Accounts deleted.
    pub accounts_deleted: usize,
    /// Events published.
    pub events_published: usize,
    /// Device streams created in the hub.
    pub streams_created: usize,
    /// Seconds spent creating device streams.
    pub stream_seconds: f64,
    /// The first failure, if any.
    pub first_error: Option<String>,
    /// Round trip of each account push the server answered (for the push histogram).
    #[serde(skip)]
    pub push_times: Vec<Duration>,
}

/// Live connections of a relay.
pub struct Connections {
    resolver: ResolverClient,
    /// `None` when the store has no service user (an operator imported from nsc): no
    /// account exists where the change stream could be read, so events are not published.
    events: Option<async_nats::Client>,
    operator: OperatorClaims,
    operator_signer: KeyPair,
    prefix: String,
}

impl Connections {
    /// Connects as the system user (resolver) and as the service user (events).
    pub async fn open(warden: &Warden, cfg: &RelayConfig) -> Result<Connections> {
        let op = warden.operator().await?;
        let operator = nats_jwt::decode::<Operator>(&op.jwt)
            .map_err(|e| OpsError::Jwt(format!("stored operator JWT: {e}")))?;
        let operator_signer = KeyPair::from_seed(&warden.store().seed(&op.signing_key).await?)?;
        let sys_creds = warden.system_user_creds().await?;
        let resolver =
            ResolverClient::connect_lanes(&cfg.nats_url, &sys_creds, cfg.timeout, cfg.lanes)
                .await
                .map_err(|e| OpsError::unavailable(format!("{}: {e}", cfg.nats_url)))?;
        let events = match warden.service_user_creds().await {
            Ok(service_creds) => Some(
                async_nats::ConnectOptions::with_credentials(&service_creds)
                    .map_err(|e| OpsError::Jwt(format!("the service user's creds: {e}")))?
                    .name("warden-events")
                    .connection_timeout(cfg.timeout)
                    .retain_servers_order()
                    .connect(warden_nats::servers(&cfg.nats_url))
                    .await
                    .map_err(|e| {
                        OpsError::unavailable(format!(
                            "cannot connect to {} as Warden's service user: {e}",
                            cfg.nats_url
                        ))
                    })?,
            ),
            Err(OpsError::NotFound(what)) => {
                tracing::info!(
                    "no service user ({what}): account pushes only, the change stream is not published"
                );
                None
            }
            Err(e) => return Err(e),
        };
        Ok(Connections {
            resolver,
            events,
            operator,
            operator_signer,
            prefix: warden.settings().service_prefix.clone(),
        })
    }

    /// The resolver client (system user).
    pub fn resolver(&self) -> &ResolverClient {
        &self.resolver
    }

    /// The operator claims used for trust checks.
    pub fn operator(&self) -> &OperatorClaims {
        &self.operator
    }

    /// The operator signing key (for delete requests).
    pub fn operator_signer(&self) -> &KeyPair {
        &self.operator_signer
    }
}

/// The operator's claims (for trust checks) and issuing key (for delete requests), read now.
async fn current_operator(warden: &Warden) -> Result<(OperatorClaims, KeyPair)> {
    let op = warden
        .store()
        .operator()
        .await?
        .ok_or(OpsError::NotInitialised)?;
    let claims = nats_jwt::decode::<Operator>(&op.jwt)
        .map_err(|e| OpsError::Jwt(format!("stored operator JWT: {e}")))?;
    let signer = KeyPair::from_seed(&warden.store().seed(&op.signing_key).await?)?;
    Ok((claims, signer))
}

fn backoff(attempts: i64, max: Duration) -> i64 {
    let secs = 1i64 << attempts.clamp(0, 16);
    secs.min(max.as_secs().max(1) as i64)
}

/// Publishes change-stream events on `<prefix>.events.<action>` as the service user; rows
/// published and flushed go to `delivered`, the others to `failed`.
async fn publish_events(
    stream: &async_nats::Client,
    prefix: &str,
    events: &[OutboxRow],
    cfg: &RelayConfig,
    report: &mut DrainReport,
    delivered: &mut Vec<(i64, String)>,
    failed: &mut Vec<(OutboxRow, String)>,
) {
    /// The one field of an event the subject needs (read without building the whole
    /// payload as a JSON value).
    #[derive(serde::Deserialize)]
    struct Action<'a> {
        #[serde(borrow)]
        action: Option<std::borrow::Cow<'a, str>>,
    }
    let mut published = Vec::new();
    for row in events {
        let action = serde_json::from_str::<Action<'_>>(&row.payload)
            .ok()
            .and_then(|a| a.action);
        let subject = format!(
            "{}.events.{}",
            prefix,
            action.as_deref().unwrap_or("unknown")
        );
        match stream.publish(subject, row.payload.clone().into()).await {
            Ok(()) => published.push(row),
            Err(e) => failed.push((row.clone(), e.to_string())),
        }
    }
    if !published.is_empty() {
        match tokio::time::timeout(cfg.timeout, stream.flush()).await {
            Ok(Ok(())) => {
                report.events_published += published.len();
                delivered.extend(published.iter().map(|r| (r.id, "published".to_string())));
            }
            Ok(Err(e)) => failed.extend(published.iter().map(|r| ((*r).clone(), e.to_string()))),
            Err(_) => failed.extend(
                published
                    .iter()
                    .map(|r| ((*r).clone(), "flush timed out".to_string())),
            ),
        }
    }
}

/// Rows `drain_all` reads for its first batch: nothing is in flight while it is read and
/// checked, so it is kept small; the batches after it are read (and their JWTs checked)
/// while the one before is being pushed.
const FIRST_BATCH: i64 = 256;

/// Due outbox rows read at once, sorted by what delivers them, with what sending them needs
/// from the store, the account JWTs already checked for trust.
struct Batch {
    rows: Vec<OutboxRow>,
    /// The account updates' rows (indices into `rows`), one group per account whose
    /// current JWT is in `pushes`, in the same order.
    pushed: Vec<Vec<usize>>,
    /// The current JWT of each account in `pushed`, checked and in waves.
    pushes: OwnPushes,
    /// Updates of accounts deleted since (their delete request carries the news).
    skipped: Vec<usize>,
    deletes: Vec<usize>,
    streams: Vec<usize>,
    events: Vec<usize>,
    /// Rows with a topic the relay does not know, and why.
    unknown: Vec<(usize, String)>,
    /// The operator's issuing key as stored now, for delete requests (`None` when no row
    /// needs it): a signing key rotation may have changed it since the connections were
    /// opened (a relay of `serve` lives for days).
    operator_signer: Option<KeyPair>,
    /// How long reading and checking took.
    took: Duration,
    /// When its reading began (a batch's latency runs from there to its recording).
    read_at: Instant,
}

impl Batch {
    fn empty() -> Batch {
        Batch {
            rows: Vec::new(),
            pushed: Vec::new(),
            pushes: OwnPushes::default(),
            skipped: Vec::new(),
            deletes: Vec::new(),
            streams: Vec::new(),
            events: Vec::new(),
            unknown: Vec::new(),
            operator_signer: None,
            took: Duration::ZERO,
            read_at: Instant::now(),
        }
    }

    /// The id after which the next batch starts.
    fn last_id(&self) -> i64 {
        self.rows.last().map_or(0, |r| r.id)
    }
}

/// Reads up to `limit` due rows with ids above `after` and the accounts' current JWTs, and
/// checks the JWTs against the operator's trust as stored now (off the runtime's threads:
/// in `drain_all` this runs while the batch before is being pushed).
async fn read_batch(warden: &Warden, after: i64, limit: i64) -> Result<Batch> {
    let began = std::time::Instant::now();
    let rows = warden
        .store()
        .pending_outbox_after(now(), after, limit)
        .await?;
    let mut batch = Batch::empty();
    batch.read_at = began;
    let mut by_account: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        match row.topic.as_str() {
            TOPIC_ACCOUNT_UPDATE => by_account.entry(&row.payload).or_default().push(i),
            TOPIC_ACCOUNT_DELETE => batch.deletes.push(i),
            TOPIC_EVENT => batch.events.push(i),
            crate::device::TOPIC_DEVICE_STREAM => batch.streams.push(i),
            other => batch
                .unknown
                .push((i, format!("unknown outbox topic {other:?}"))),
        }
    }
    let wanted: Vec<String> = by_account.keys().map(|k| k.to_string()).collect();
    let mut current: std::collections::HashMap<String, String> = warden
        .store()
        .account_jwts_by_key(&wanted)
        .await?
        .into_iter()
        .collect();
    let mut jwts = Vec::with_capacity(by_account.len());
    for (key, group) in by_account {
        match current.remove(key) {
            Some(jwt) => {
                batch.pushed.push(group);
                jwts.push(jwt);
            }
            None => batch.skipped.extend(group),
        }
    }
    if !jwts.is_empty() || !batch.deletes.is_empty() {
        let (operator, signer) = current_operator(warden).await?;
        if !jwts.is_empty() {
            batch.pushes = tokio::task::spawn_blocking(move || OwnPushes::check(&operator, jwts))
                .await
                .map_err(|e| OpsError::Jwt(format!("checking account JWTs: {e}")))?;
        }
        batch.operator_signer = Some(signer);
    }
    batch.rows = rows;
    batch.took = began.elapsed();
    Ok(batch)
}

/// What sending a batch did, before its events are published and everything is recorded
/// in the store ([`finish`]).
struct Sent {
    report: DrainReport,
    delivered: Vec<(i64, String)>,
    failed: Vec<(OutboxRow, String)>,
    /// The change events of the batch, published only after everything else in it went out.
    events: Vec<OutboxRow>,
    /// When the batch's reading began.
    read_at: Instant,
}

/// Sends a batch to NATS: account pushes, device streams, deletions. Writes nothing to the
/// store, and leaves the change events to [`finish`].
async fn send_batch(conns: &Connections, cfg: &RelayConfig, batch: Batch, warden: &Warden) -> Sent {
    let Batch {
        rows,
        pushed,
        pushes,
        skipped,
        deletes,
        streams,
        events,
        unknown,
        operator_signer,
        took: _,
        read_at,
    } = batch;
    let mut report = DrainReport::default();
    let mut delivered: Vec<(i64, String)> = Vec::new();
    let mut failed: Vec<(OutboxRow, String)> = unknown
        .into_iter()
        .map(|(i, why)| (rows[i].clone(), why))
        .collect();
    delivered.extend(
        skipped
            .iter()
            .map(|&i| (rows[i].id, "skipped: account deleted".to_string())),
    );

    // Account updates: the current JWT of each account once.
    let results = conns.resolver.push_checked(pushes, cfg.concurrency).await;
    for (group, result) in pushed.iter().zip(results) {
        match result {
            Ok(reply) => {
                report.accounts_pushed += 1;
                report.push_times.push(reply.took);
                let text = format!("{} {} ({})", reply.code, reply.message, reply.server.name);
                delivered.extend(group.iter().map(|&i| (rows[i].id, text.clone())));
            }
            Err(e) => failed.extend(group.iter().map(|&i| (rows[i].clone(), e.to_string()))),
        }
    }

    // Device streams in the hub (after the pushes, so the hub has JetStream).
    let started = std::time::Instant::now();
    let streams: Vec<&OutboxRow> = streams.iter().map(|&i| &rows[i]).collect();
    let (ok, bad) =
        crate::device::create_streams(warden, &cfg.nats_url, cfg.timeout, &streams).await;
    report.stream_seconds += started.elapsed().as_secs_f64();
    report.streams_created += ok.len();
    delivered.extend(ok);
    failed.extend(bad);

    // Deletions: one request for all of them.
    let mut accounts = Vec::new();
    let mut valid = Vec::new();
    for &i in &deletes {
        match rows[i].payload.parse::<AccountPublicKey>() {
            Ok(k) => {
                accounts.push(k);
                valid.push(i);
            }
            Err(e) => failed.push((rows[i].clone(), format!("bad account key: {e}"))),
        }
    }
    if !accounts.is_empty() {
        let signer = operator_signer.as_ref().unwrap_or(&conns.operator_signer);
        let outcome = match delete_request(signer, &accounts) {
            Ok(jwt) => conns.resolver.delete(&jwt).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(reply) => {
                report.accounts_deleted += accounts.len();
                let text = format!("{} {}", reply.code, reply.message);
                delivered.extend(valid.iter().map(|&i| (rows[i].id, text.clone())));
            }
            Err(e) => failed.extend(valid.iter().map(|&i| (rows[i].clone(), e.to_string()))),
        }
    }

    let events = if events.is_empty() {
        Vec::new()
    } else {
        // The rows are taken out rather than cloned (the batch is done with them).
        let mut rows: Vec<Option<OutboxRow>> = rows.into_iter().map(Some).collect();
        events.iter().filter_map(|&i| rows[i].take()).collect()
    };
    Sent {
        report,
        delivered,
        failed,
        events,
        read_at,
    }
}

/// Whether a sent batch had something besides its events to deliver and none of it went
/// through: what comes next would most likely fail the same way.
fn went_nowhere(sent: &Sent) -> bool {
    sent.delivered.is_empty() && !sent.failed.is_empty()
}

/// Publishes a sent batch's change events, then records it all: delivered rows marked,
/// failed ones rescheduled with backoff.
async fn finish(
    warden: &Warden,
    conns: &Connections,
    cfg: &RelayConfig,
    sent: Sent,
) -> Result<DrainReport> {
    let Sent {
        mut report,
        mut delivered,
        mut failed,
        events,
        read_at: _,
    } = sent;
    match conns.events.as_ref() {
        Some(stream) => {
            publish_events(
                stream,
                &conns.prefix,
                &events,
                cfg,
                &mut report,
                &mut delivered,
                &mut failed,
            )
            .await
        }
        // No service user, so no account to read the stream in: the events stay in the
        // ledger only.
        None => delivered.extend(
            events
                .iter()
                .map(|r| (r.id, "not published: no service user".to_string())),
        ),
    }
    report.delivered = delivered.len();
    report.failed = failed.len();
    report.first_error = failed.first().map(|(_, e)| e.clone());
    warden
        .store()
        .mark_delivered_many(&delivered, now())
        .await?;
    for (row, error) in &failed {
        let next = now() + backoff(row.attempts, cfg.max_backoff);
        warden.store().mark_failed(row.id, error, next).await?;
    }
    Ok(report)
}

/// Adds one batch's report to the running total.
fn add_up(total: &mut DrainReport, r: DrainReport) {
    total.delivered += r.delivered;
    total.failed += r.failed;
    total.accounts_pushed += r.accounts_pushed;
    total.accounts_deleted += r.accounts_deleted;
    total.events_published += r.events_published;
    total.streams_created += r.streams_created;
    total.stream_seconds += r.stream_seconds;
    total.push_times.extend(r.push_times);
    if total.first_error.is_none() {
        total.first_error = r.first_error;
    }
}

/// Delivers everything due now, for `warden push`: batch after batch, pipelined (see
/// [`drain_pipelined`]).
pub async fn drain_all(
    warden: &Warden,
    conns: &Connections,
    cfg: &RelayConfig,
) -> Result<DrainReport> {
    Ok(drain_pipelined(warden, conns, cfg, |_, _| {}, || false)
        .await?
        .total)
}

/// What a pipelined drain did.
#[derive(Debug, Default)]
struct Drained {
    /// Everything delivered and failed, all batches together.
    total: DrainReport,
    /// Rows read.
    seen: usize,
    /// Whether it stopped because a batch went nowhere (see [`went_nowhere`]): the
    /// connections are most likely lost.
    stalled: bool,
}

/// Delivers what is due batch after batch, pipelined: while one batch's pushes are in
/// flight, the batch before has its change events published and is recorded, and the next
/// one is read and its JWTs checked, so the pushes never wait on the store or on the
/// checks between batches. A batch's events still go out only after everything else in it
/// was answered. The first batch is small ([`FIRST_BATCH`] rows), as nothing overlaps its
/// reading.
///
/// It stops when nothing is left, when a batch went nowhere, or when `stop` says so
/// (checked between batches: the batch in flight is finished, the one read after it is
/// left due). `on_batch` hears of
/// every recorded batch with the time from its reading to its recording.
async fn drain_pipelined(
    warden: &Warden,
    conns: &Connections,
    cfg: &RelayConfig,
    mut on_batch: impl FnMut(&DrainReport, Duration),
    stop: impl Fn() -> bool,
) -> Result<Drained> {
    let mut drained = Drained::default();
    let mut batch = read_batch(warden, 0, cfg.batch.min(FIRST_BATCH)).await?;
    let mut unfinished: Option<Sent> = None;
    loop {
        if stop() {
            // Asked to stop: a batch read but not sent yet stays due; the one in flight
            // is finished.
            batch = Batch::empty();
        }
        if batch.rows.is_empty() {
            if let Some(sent) = unfinished.take() {
                let began = Instant::now();
                let read_at = sent.read_at;
                let r = finish(warden, conns, cfg, sent).await?;
                drained.stalled |= r.delivered == 0 && r.failed > 0;
                on_batch(&r, read_at.elapsed());
                add_up(&mut drained.total, r);
                tracing::debug!(
                    finish_ms = began.elapsed().as_millis() as u64,
                    "relay: the last batch's events published and everything recorded"
                );
            }
            return Ok(drained);
        }
        let after = batch.last_id();
        let (rows, read) = (batch.rows.len(), batch.took);
        drained.seen += rows;
        let previous = unfinished.take();
        let began = Instant::now();
        let (sent, finished, next) = tokio::join!(
            async {
                let sent = send_batch(conns, cfg, batch, warden).await;
                (sent, began.elapsed())
            },
            async {
                match previous {
                    Some(p) => {
                        let read_at = p.read_at;
                        let r = finish(warden, conns, cfg, p).await?;
                        Ok::<_, OpsError>(Some((r, read_at.elapsed())))
                    }
                    None => Ok(None),
                }
            },
            read_batch(warden, after, cfg.batch),
        );
        let (sent, sending) = sent;
        tracing::debug!(
            rows,
            accounts = sent.report.accounts_pushed,
            read_ms = read.as_millis() as u64,
            send_ms = sending.as_millis() as u64,
            overlapped_ms = began.elapsed().as_millis() as u64,
            "relay batch (pipelined: the sends overlap finishing the batch before and reading the next)"
        );
        // Stop when nothing went through (failed rows are rescheduled into the future):
        // the pushes of this batch, or the events of the one before.
        let finished = finished?;
        let nowhere = went_nowhere(&sent)
            || finished
                .as_ref()
                .is_some_and(|(r, _)| r.delivered == 0 && r.failed > 0);
        drained.stalled |= nowhere;
        if let Some((r, took)) = finished {
            on_batch(&r, took);
            add_up(&mut drained.total, r);
        }
        unfinished = Some(sent);
        batch = if nowhere { Batch::empty() } else { next? };
    }
}

/// Upper bounds (seconds) of the relay's batch latency histogram: a batch is one round of
/// pushes, deletes, stream creations and event publications, from reading its rows to
/// marking them; with NATS gone it lasts up to the request timeout (5 s by default).
pub const BATCH_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Upper bounds (seconds) of the histogram of single account pushes: one request's round
/// trip, from sending it to the server's answer (a push waits behind up to a window of
/// others on its connection, so bulk pushes land in the higher buckets).
pub const PUSH_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// What the relay of this process did since it started, and its connection now (for
/// metrics and readiness). Shared by [`run`] and whoever reads it; every field is an
/// atomic, so reading never holds the relay up.
#[derive(Debug, Default)]
pub struct RelayStats {
    running: AtomicBool,
    lock_held: AtomicBool,
    connected: AtomicBool,
    /// Unix seconds of the last change of `connected` (0: never).
    since: AtomicI64,
    delivered: AtomicU64,
    failed: AtomicU64,
    connects: AtomicU64,
    connect_failures: AtomicU64,
    losses: AtomicU64,
    buckets: [AtomicU64; BATCH_BUCKETS.len()],
    sum_micros: AtomicU64,
    count: AtomicU64,
    push_buckets: [AtomicU64; PUSH_BUCKETS.len()],
    push_sum_micros: AtomicU64,
    push_count: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// A copy of [`RelayStats`] at one moment.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct RelaySnapshot {
    /// Whether a relay runs in this process at all.
    pub running: bool,
    /// Whether this process holds the relay lock (only one process relays per database).
    pub lock_held: bool,
    /// Whether the relay's connections to NATS are up (false while it does not hold the lock).
    pub connected: bool,
    /// Unix seconds of the last change of `connected` (0: never).
    pub since: i64,
    /// Outbox rows delivered.
    pub delivered: u64,
    /// Failed deliveries of outbox rows (each attempt counted; the row is retried).
    pub failed: u64,
    /// Connections to NATS opened (the first and every reconnect).
    pub connects: u64,
    /// Attempts to connect that failed.
    pub connect_failures: u64,
    /// Connections found lost (a batch that delivered nothing, or a client that reports
    /// itself disconnected), after which the relay reconnects.
    pub losses: u64,
    /// Cumulative batch latency histogram: `(upper bound in seconds, count)`.
    pub buckets: Vec<(f64, u64)>,
    /// Sum of the batch latencies, seconds.
    pub sum_secs: f64,
    /// Batches observed.
    pub count: u64,
    /// Cumulative histogram of single account pushes' round trips: `(upper bound in
    /// seconds, count)`.
    pub push_buckets: Vec<(f64, u64)>,
    /// Sum of the push round trips, seconds.
    pub push_sum_secs: f64,
    /// Account pushes the server answered.
    pub push_count: u64,
    /// The last connection or delivery error, if the relay is not connected or its last
    /// batch failed.
    pub last_error: Option<String>,
}

impl RelayStats {
    /// The counts now.
    pub fn snapshot(&self) -> RelaySnapshot {
        RelaySnapshot {
            running: self.running.load(Ordering::Relaxed),
            lock_held: self.lock_held.load(Ordering::Relaxed),
            connected: self.connected.load(Ordering::Relaxed),
            since: self.since.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            connects: self.connects.load(Ordering::Relaxed),
            connect_failures: self.connect_failures.load(Ordering::Relaxed),
            losses: self.losses.load(Ordering::Relaxed),
            buckets: BATCH_BUCKETS
                .iter()
                .zip(&self.buckets)
                .map(|(b, c)| (*b, c.load(Ordering::Relaxed)))
                .collect(),
            sum_secs: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            count: self.count.load(Ordering::Relaxed),
            push_buckets: PUSH_BUCKETS
                .iter()
                .zip(&self.push_buckets)
                .map(|(b, c)| (*b, c.load(Ordering::Relaxed)))
                .collect(),
            push_sum_secs: self.push_sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            push_count: self.push_count.load(Ordering::Relaxed),
            last_error: self.last_error.lock().map(|e| e.clone()).unwrap_or(None),
        }
    }

    /// Counts one batch: its rows delivered and failed, and how long it took.
    pub fn observe_batch(&self, delivered: usize, failed: usize, elapsed: Duration) {
        self.delivered
            .fetch_add(delivered as u64, Ordering::Relaxed);
        self.failed.fetch_add(failed as u64, Ordering::Relaxed);
        crate::metrics::observe_histogram(
            &BATCH_BUCKETS,
            &self.buckets,
            &self.sum_micros,
            &self.count,
            elapsed,
        );
    }

    /// Counts the round trips of a batch's account pushes.
    pub fn observe_pushes(&self, times: &[Duration]) {
        for took in times {
            crate::metrics::observe_histogram(
                &PUSH_BUCKETS,
                &self.push_buckets,
                &self.push_sum_micros,
                &self.push_count,
                *took,
            );
        }
    }

    fn set_error(&self, error: Option<String>) {
        if let Ok(mut e) = self.last_error.lock() {
            *e = error;
        }
    }

    fn set_connected(&self, up: bool) {
        if self.connected.swap(up, Ordering::Relaxed) != up
            || self.since.load(Ordering::Relaxed) == 0
        {
            self.since.store(now(), Ordering::Relaxed);
        }
    }

    fn connected_now(&self) {
        self.connects.fetch_add(1, Ordering::Relaxed);
        self.set_connected(true);
        self.set_error(None);
    }

    fn connect_failed(&self, error: String) {
        self.connect_failures.fetch_add(1, Ordering::Relaxed);
        self.set_connected(false);
        self.set_error(Some(error));
    }

    fn lost(&self, error: Option<String>) {
        self.losses.fetch_add(1, Ordering::Relaxed);
        self.set_connected(false);
        if error.is_some() {
            self.set_error(error);
        }
    }
}

/// Marks the relay stopped in its stats when [`run`] ends, however it ends.
struct Running<'a>(&'a RelayStats);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::Relaxed);
        self.0.lock_held.store(false, Ordering::Relaxed);
        self.0.connected.store(false, Ordering::Relaxed);
    }
}

/// How long a batch in flight when shutdown is signalled may take to finish (and be
/// marked) before it is dropped; also the bound on releasing the relay lock.
pub const STOP_GRACE: Duration = Duration::from_millis(400);

/// Runs the relay until `shutdown` becomes true: waits for the relay lock, keeps
/// connections up and drains the outbox, counting all it does in `stats`. Returns
/// within about twice [`STOP_GRACE`] of the shutdown, whatever the state of NATS and
/// of the database.
pub async fn run(
    warden: Warden,
    cfg: RelayConfig,
    mut shutdown: watch::Receiver<bool>,
    stats: Arc<RelayStats>,
) -> Result<()> {
    stats.running.store(true, Ordering::Relaxed);
    let _running = Running(&stats);
    let mut lock = None;
    let mut conns: Option<Connections> = None;
    let mut reconnect_wait = Duration::from_millis(200);
    while !*shutdown.borrow() {
        if lock.is_none() {
            match unless_stopped(&mut shutdown, warden.store().try_relay_lock()).await {
                None => break,
                Some(Ok(Some(l))) => {
                    tracing::info!("this process relays the outbox");
                    stats.lock_held.store(true, Ordering::Relaxed);
                    lock = Some(l)
                }
                Some(Ok(None)) => {
                    // A standby: another process relays.
                    wait(&mut shutdown, Duration::from_secs(2)).await;
                    continue;
                }
                Some(Err(e)) => {
                    tracing::warn!("relay lock: {e}");
                    wait(&mut shutdown, Duration::from_secs(2)).await;
                    continue;
                }
            }
        }
        if conns.is_none() {
            match unless_stopped(&mut shutdown, Connections::open(&warden, &cfg)).await {
                None => break,
                Some(Ok(c)) => {
                    tracing::info!(url = %cfg.nats_url, "relay connected");
                    conns = Some(c);
                    reconnect_wait = Duration::from_millis(200);
                    stats.connected_now();
                }
                Some(Err(e)) => {
                    // Logged once per outage, not on every retry.
                    if stats.connected.load(Ordering::Relaxed)
                        || stats.connect_failures.load(Ordering::Relaxed) == 0
                    {
                        tracing::warn!("relay cannot connect to NATS: {e:#}");
                    } else {
                        tracing::debug!("relay cannot connect to NATS: {e:#}");
                    }
                    stats.connect_failed(format!("{e:#}"));
                    wait(&mut shutdown, reconnect_wait).await;
                    reconnect_wait = (reconnect_wait * 2).min(cfg.max_backoff);
                    continue;
                }
            }
        }
        let Some(c) = conns.as_ref() else { continue };
        // An idle relay sends nothing, so it learns of a lost server from its client.
        if c.resolver.client().connection_state() != async_nats::connection::State::Connected {
            if stats.connected.load(Ordering::Relaxed) {
                tracing::warn!(url = %cfg.nats_url, "relay lost its NATS connection");
                stats.lost(Some(format!("lost the connection to {}", cfg.nats_url)));
            }
        } else if !stats.connected.load(Ordering::Relaxed) {
            // The client reconnected by itself.
            stats.set_connected(true);
            stats.set_error(None);
        }
        // A backlog (an `org apply`, a signing key rotation) is drained pipelined, as
        // `warden push` does; shutdown is heard between batches as well as within one.
        let asked_to_stop = shutdown.clone();
        let observe = |report: &DrainReport, took: Duration| {
            stats.observe_batch(report.delivered, report.failed, took);
            stats.observe_pushes(&report.push_times);
            if report.failed > 0 {
                tracing::warn!(failed = report.failed, error = ?report.first_error, "outbox delivery failed; will retry");
            }
        };
        let drain = drain_pipelined(&warden, c, &cfg, observe, || *asked_to_stop.borrow());
        match unless_stopped(&mut shutdown, drain).await {
            None => {
                tracing::info!(
                    "relay stopped in the middle of a batch; its undelivered rows stay pending"
                );
                break;
            }
            Some(Ok(drained)) => {
                if drained.stalled {
                    conns = None;
                    stats.lost(drained.total.first_error.clone());
                    wait(&mut shutdown, reconnect_wait).await;
                    reconnect_wait = (reconnect_wait * 2).min(cfg.max_backoff);
                } else if drained.seen == 0 {
                    wait(&mut shutdown, cfg.idle_poll).await;
                }
            }
            Some(Err(e)) => {
                tracing::warn!("relay: {e:#}");
                wait(&mut shutdown, Duration::from_secs(1)).await;
            }
        }
    }
    if let Some(l) = lock
        && tokio::time::timeout(STOP_GRACE, l.release()).await.is_err()
    {
        // Its connection closes with the process, which releases it all the same.
        tracing::warn!("relay lock not released within {STOP_GRACE:?}");
    }
    Ok(())
}

/// Runs `step` to its end, unless shutdown is signalled first: then it has
/// [`STOP_GRACE`] more to finish (a batch NATS is answering is marked), after which it
/// is dropped and `None` returned. Dropping never marks anything: a batch is marked
/// delivered only after NATS answered, in one transaction.
async fn unless_stopped<T>(
    shutdown: &mut watch::Receiver<bool>,
    step: impl Future<Output = T>,
) -> Option<T> {
    let mut step = std::pin::pin!(step);
    let signalled = tokio::select! {
        done = &mut step => return Some(done),
        signalled = async { shutdown.wait_for(|stop| *stop).await.is_ok() } => signalled,
    };
    if !signalled {
        // The sender is gone without a shutdown: none can come any more.
        return Some(step.await);
    }
    tokio::time::timeout(STOP_GRACE, step).await.ok()
}

/// Waits `d`, or less when shutdown is signalled.
async fn wait(shutdown: &mut watch::Receiver<bool>, d: Duration) {
    let _ = tokio::time::timeout(d, shutdown.wait_for(|stop| *stop)).await;
}

/// Errors of a push that came from the server refusing, not from the connection.
pub fn is_refusal(e: &ResolverError) -> bool {
    matches!(
        e,
        ResolverError::Refused { .. } | ResolverError::Untrusted(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_step_is_dropped_once_shutdown_has_waited_its_grace() {
        let (tx, mut rx) = watch::channel(false);
        // Nothing signalled: the step runs to its end.
        assert_eq!(unless_stopped(&mut rx, async { 7 }).await, Some(7));
        // A step that never ends (a NATS that never answers) is dropped after the grace.
        tx.send_replace(true);
        let started = tokio::time::Instant::now();
        let never = unless_stopped(&mut rx, std::future::pending::<()>()).await;
        assert_eq!(never, None);
        let took = started.elapsed();
        assert!(took >= STOP_GRACE && took < STOP_GRACE * 4, "{took:?}");
        // A step that finishes within the grace (a batch NATS answers) is kept.
        let quick = unless_stopped(&mut rx, async {
            tokio::time::sleep(STOP_GRACE / 4).await;
            "marked"
        })
        .await;
        assert_eq!(quick, Some("marked"));
    }

    #[tokio::test]
    async fn without_a_sender_a_step_runs_to_its_end() {
        let (tx, mut rx) = watch::channel(false);
        drop(tx);
        let done = unless_stopped(&mut rx, async {
            tokio::time::sleep(STOP_GRACE * 2).await;
            "done"
        })
        .await;
        assert_eq!(done, Some("done"));
    }
}
