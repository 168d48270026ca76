//! `GET /console/events?after=SEQ`: new ledger entries as server-sent events (`event:
//! ledger`, `id: <seq>`, data: the entry's seq, action, object and actor as JSON).
//!
//! The ledger is read every [`POLL`] (as the session's actor) rather than fed from the
//! relay, because changes made by other processes (the CLI, another `serve`) land only in
//! the store. A reconnecting browser resumes from `Last-Event-ID`, so nothing is missed
//! between connections. The stream ends when the server shuts down.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;
use warden_ops::Warden;
use warden_store::LedgerEvent;

use super::{ConsoleResult, ConsoleState, session};

/// How often the store is asked for new ledger entries.
pub(crate) const POLL: Duration = Duration::from_millis(500);
/// Most entries read per poll.
const BATCH: i64 = 200;

#[derive(Deserialize)]
pub(crate) struct EventsQuery {
    after: Option<i64>,
}

struct Feed {
    /// The operations, as the session's actor (every poll is a read it may make).
    warden: Warden,
    after: i64,
    pending: VecDeque<LedgerEvent>,
    closing: watch::Receiver<bool>,
}

fn to_event(e: &LedgerEvent) -> Event {
    let data = json!({
        "seq": e.seq,
        "action": e.action,
        "object_kind": e.object_kind,
        "object_key": e.object_key,
        "actor": e.actor,
    });
    Event::default()
        .event("ledger")
        .id(e.seq.to_string())
        .data(data.to_string())
}

/// Resolves when the server starts shutting down (never, if nobody can tell it to).
async fn closed(rx: &mut watch::Receiver<bool>) {
    if rx.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn next(mut f: Feed) -> Option<(Result<Event, Infallible>, Feed)> {
    loop {
        if let Some(e) = f.pending.pop_front() {
            f.after = e.seq;
            return Some((Ok(to_event(&e)), f));
        }
        if *f.closing.borrow() {
            return None;
        }
        match f.warden.ledger_events(f.after, BATCH).await {
            Ok(events) if !events.is_empty() => {
                f.pending.extend(events);
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "console event stream: cannot read the ledger"),
        }
        let mut closing = f.closing.clone();
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = closed(&mut closing) => return None,
        }
    }
}

/// `GET /console/events`.
pub(crate) async fn events(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> ConsoleResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let sess = session(&s, &headers).await?;
    let w = s.ops(&sess);
    // A reconnect resumes after the last event the browser saw.
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    let after = match resume.or(q.after) {
        Some(n) => n.max(0),
        None => w.ledger_position().await?,
    };
    let feed = Feed {
        warden: w,
        after,
        pending: VecDeque::new(),
        closing: s.closing.clone(),
    };
    Ok(Sse::new(futures::stream::unfold(feed, next)).keep_alive(KeepAlive::default()))
}
