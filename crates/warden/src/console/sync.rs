//! The console's NATS sync page (`/console/sync`): per account whether the nats-server's
//! resolver holds Warden's current JWT (in sync / stale / missing) and which accounts the
//! server holds that Warden does not (unknown), with "push account" and "sync (fix)"
//! buttons; the outbox backlog and the relay's last error. Also the usage block of the
//! account page (connections, subscriptions, data in and out as the server reports them).

use std::fmt::Write as _;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::list::ListQuery;
use super::pages::{account_link, csrf_field, seq};
use super::render::{bytes, esc, limit, page, plural, short_key, size, when};
use super::{
    ASK_TIMEOUT, ConsoleResult, ConsoleState, CsrfForm, Flash, Problem, Session, check_csrf,
    session,
};
use std::time::Duration;

use warden_ops::drift::{JetStreamUse, SyncState};
use warden_ops::tokens::Scope;
use warden_ops::{AccountView, ErrorKind, OpsError, Warden};

/// The CSS class of a sync state's label.
fn state_class(state: SyncState) -> &'static str {
    match state {
        SyncState::InSync => "ok",
        SyncState::Stale | SyncState::NewerOnServer | SyncState::Missing => "bad",
    }
}

/// The outbox backlog and the error the oldest failing row last got, as HTML facts.
pub(super) async fn outbox_facts(w: &Warden) -> ConsoleResult<String> {
    let state = w.outbox_state().await?;
    let backlog = if state.pending == 0 {
        "<span class=\"ok\">all delivered to NATS</span>".to_string()
    } else {
        format!(
            "<span class=\"warn\">{} change(s) waiting for the relay</span>",
            state.pending
        )
    };
    let error = match &state.last_error {
        None => "<span class=\"muted\">none</span>".to_string(),
        Some((attempts, e)) => format!(
            "<span class=\"bad\">{} (after {attempts} attempt(s))</span>",
            esc(e)
        ),
    };
    Ok(format!(
        "{}<dt>Outbox</dt><dd id=\"outbox-pending\" data-pending=\"{}\">{backlog}</dd><dt>Last relay error</dt><dd id=\"relay-error\">{error}</dd>",
        nats_facts(),
        state.pending
    ))
}

/// NATS as this process sees it now (the relay's connection, or the NATS service's
/// client: what `/readyz` reports) and whether this process relays, as HTML facts.
fn nats_facts() -> String {
    use crate::http::metrics::{NatsState, observed};
    let (state, text) = match observed().nats_state() {
        NatsState::Connected => (
            "connected",
            "<span class=\"ok\">connected</span>".to_string(),
        ),
        NatsState::Unreachable(why) => (
            "unreachable",
            format!("<span class=\"bad\">{}</span>", esc(&why)),
        ),
        NatsState::Unknown => (
            "unknown",
            "<span class=\"muted\">not watched by this process</span>".to_string(),
        ),
    };
    let relay = observed().relay.snapshot();
    let relaying = if !relay.running {
        "<span class=\"muted\">not in this process</span>".to_string()
    } else if !relay.lock_held {
        "<span class=\"muted\">standby (another process relays)</span>".to_string()
    } else if relay.connected {
        "<span class=\"ok\">relaying</span>".to_string()
    } else {
        format!(
            "<span class=\"bad\">not connected{}</span>",
            relay
                .last_error
                .as_deref()
                .map(|e| format!(": {}", esc(e)))
                .unwrap_or_default()
        )
    };
    format!(
        "<dt>NATS</dt><dd id=\"nats-state\" data-state=\"{state}\">{text}</dd><dt>Relay</dt><dd id=\"relay-state\">{relaying}</dd>"
    )
}

/// Most accounts one "Push selected" may carry (a bound on the work of one form post).
const MAX_PUSH: usize = 500;

/// `GET /console/sync[?show=all&q=…&sort=name|state&dir=…&page=N]`: drifting accounts
/// (all with `show=all`), paged.
pub(crate) async fn sync_page(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    let flash = s.take_flash(&headers);
    render_sync(&s, &sess, &ListQuery::new(q), flash, None).await
}

/// The sync page (the page of the list `lq` asks for), with the notice of an action that
/// redirected here, or with the problem of a form sent from it (shown with the problem's
/// status).
async fn render_sync(
    s: &ConsoleState,
    sess: &Session,
    lq: &ListQuery,
    flash: Option<Flash>,
    problem: Option<&Problem>,
) -> ConsoleResult<Response> {
    let w = s.ops(sess);
    let seq = seq(&w).await?;
    let outbox = outbox_facts(&w).await?;
    let can_write = sess.offers(Scope::Write);
    let notice = match flash {
        None => problem.map(Problem::block).unwrap_or_default(),
        Some(Flash { ok: true, text }) => format!(
            "<p class=\"notice\" role=\"status\" id=\"sync-notice\">{}</p>",
            esc(&text)
        ),
        Some(Flash { ok: false, text }) => format!(
            "<div class=\"form-error\" role=\"alert\" id=\"sync-notice\"><p class=\"error\">{}</p></div>",
            esc(&text)
        ),
    };
    let show_all = lq.get("show") == Some("all");
    let path = "/console/sync";
    let check = format!(
        "<form method=\"post\" action=\"/console/sync/check\" id=\"check-form\">{}<button type=\"submit\" id=\"check-now\">Check now</button></form>",
        csrf_field(&sess.csrf)
    );
    let server = match &s.drift {
        None => "<p id=\"drift-unavailable\" class=\"muted\">This console does not know a nats-server (it runs outside <code>warden serve</code>): drift cannot be shown. Use <code>warden sync --check --nats URL</code>.</p>".to_string(),
        Some(cache) => {
            // The comparison kept in memory (the first one is made now, once).
            let snap = cache.latest_or_refresh(&w).await?;
            let link = cache.link();
            let compared = format!(
                "<p id=\"drift-computed\" data-computed-at=\"{at}\">Server <code>{url}</code>, resolver compared {ago} ({when}, in {took:.1} s). The comparison is kept and renewed in the background (every {every} s, and after the relay delivers changes).</p>{check}",
                at = snap.computed_at,
                url = esc(link.url()),
                ago = ago(snap.computed_at),
                when = esc(&when(Some(snap.computed_at))),
                took = snap.took.as_secs_f64(),
                every = super::DRIFT_EVERY.as_secs(),
            );
            match &snap.outcome {
            Err(e) => format!(
                "<p id=\"drift-unavailable\" class=\"bad\" role=\"alert\">The nats-server at <code>{}</code> did not answer within {}s: {}</p>{compared}",
                esc(link.url()),
                ASK_TIMEOUT.as_secs(),
                esc(e)
            ),
            Ok(report) => {
                let d = w.drift_page(report, show_all, &lq.request("")?)?;
                let mut rows = String::new();
                for a in &d.page.items {
                    let (name, key, state) = (&a.name, &a.public_key, a.state);
                    let pick = if can_write {
                        format!(
                            "<input type=\"checkbox\" form=\"push-form\" name=\"account\" value=\"{n}\" id=\"pick-{n}\" aria-label=\"Select account {n}\">",
                            n = esc(name),
                        )
                    } else {
                        String::new()
                    };
                    let _ = write!(
                        rows,
                        "<tr id=\"sync-{}\" data-state=\"{}\"><td>{pick}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
                        esc(name),
                        esc(&state.label().replace(' ', "-")),
                        account_link(name),
                        state_class(state),
                        state.label(),
                        short_key(key),
                    );
                }
                for key in &d.unknown {
                    let _ = write!(
                        rows,
                        "<tr id=\"sync-{}\" data-state=\"unknown\"><td></td><td class=\"muted\">(not in Warden)</td><td class=\"bad\">unknown</td><td>{}</td></tr>",
                        esc(key),
                        short_key(key),
                    );
                }
                if rows.is_empty() {
                    rows = "<tr><td colspan=\"4\" class=\"muted\">no account drifts</td></tr>".into();
                }
                let verdict = if d.drifting == 0 && d.unknown.is_empty() {
                    format!(
                        "<p id=\"drift-verdict\" class=\"ok\">The server is in step with Warden ({} in sync).</p>",
                        plural(d.in_sync, "account", "accounts")
                    )
                } else {
                    format!(
                        "<p id=\"drift-verdict\" class=\"bad\">Drift: {} not in sync, {} on the server; {} in sync.</p>",
                        plural(d.drifting, "account", "accounts"),
                        plural(d.unknown.len(), "unknown account", "unknown accounts"),
                        plural(d.in_sync, "account", "accounts"),
                    )
                };
                let toggle = if show_all {
                    format!(
                        "<p class=\"filters\" id=\"sync-filter\">Showing every account. <a href=\"{}\">Only those that drift</a></p>",
                        esc(&lq.href(path, &[("show", None), ("page", None)]))
                    )
                } else {
                    format!(
                        "<p class=\"filters\" id=\"sync-filter\">Showing the accounts that drift; the {} in sync are counted, not listed. <a href=\"{}\" id=\"show-all\">Show all</a></p>",
                        plural(d.in_sync, "account", "accounts"),
                        esc(&lq.href(path, &[("show", Some("all")), ("page", None)]))
                    )
                };
                let (n_one, n_many) = if show_all {
                    ("account", "accounts")
                } else {
                    ("drifting account", "drifting accounts")
                };
                let actions = if can_write {
                    format!(
                        r#"<div class="actions"><form method="post" action="/console/sync/push" id="push-form">{csrf}<button type="submit" id="push-selected">Push selected</button></form>
<form method="post" action="/console/sync/fix" id="sync-fix">{csrf}<button type="submit">Sync (fix): push missing and stale, delete unknown</button></form></div>"#,
                        csrf = csrf_field(&sess.csrf)
                    )
                } else {
                    String::new()
                };
                format!(
                    r#"{compared}
{verdict}
{toggle}
{search}
{pager}
<div class="scroll"><table><thead><tr><th scope="col">Pick</th>{h_name}{h_state}<th scope="col">Public key</th></tr></thead><tbody>{rows}</tbody></table></div>
{actions}"#,
                    search = lq.search_form(path, "", "sync", "Search accounts (name, key)"),
                    pager = lq.pager(path, "", "sync", &d.page, n_one, n_many),
                    h_name = lq.header(path, "", &d.page, "name", "Account"),
                    h_state = lq.header(path, "", &d.page, "state", "On the server"),
                )
            }
            }
        }
    };
    let body = format!(
        r#"{notice}<section id="relay" data-live aria-labelledby="h-relay"><h2 id="h-relay">Relay</h2>
<dl class="facts">{outbox}</dl></section>
<section id="drift" data-live aria-labelledby="h-drift"><h2 id="h-drift">Resolver drift</h2>
{server}
<p class="hint">In sync: the server holds Warden's current account JWT. Stale: it holds another one. Missing: it holds none. Unknown: it holds an account Warden does not have (sync deletes it; the server needs <code>allow_delete</code>).</p>
</section>"#
    );
    let status = problem.map_or(StatusCode::OK, |p| p.status);
    Ok((status, page("NATS sync", "/console/sync", sess, seq, &body)).into_response())
}

/// The result of a push or a repair: shown on the sync page after a redirect, so that
/// reloading it does not push again. A server that could not be reached is such a result
/// (the page says so); any other error is the form's, shown on the page at once.
async fn after_action(
    s: &ConsoleState,
    sess: &Session,
    headers: &HeaderMap,
    outcome: Result<Flash, OpsError>,
    failed: impl FnOnce(&OpsError) -> String,
) -> ConsoleResult<Response> {
    let flash = match outcome {
        Ok(flash) => flash,
        Err(e) if e.kind() == ErrorKind::Unavailable => Flash {
            ok: false,
            text: failed(&e),
        },
        Err(e) => {
            let lq = ListQuery::default();
            return render_sync(s, sess, &lq, None, Some(&Problem::of(&e))).await;
        }
    };
    s.set_flash(headers, flash);
    Ok(Redirect::to("/console/sync").into_response())
}

/// What the pushes of some accounts did, as the notice of the sync page.
fn push_flash(sess: &Session, pushed: &[warden_ops::drift::PushOutcome]) -> Flash {
    let ok: Vec<&str> = pushed
        .iter()
        .filter(|p| p.ok)
        .map(|p| p.account.as_str())
        .collect();
    let failed: Vec<String> = pushed
        .iter()
        .filter(|p| !p.ok)
        .map(|p| format!("{}: {}", p.account, p.reply))
        .collect();
    for p in pushed.iter().filter(|p| p.ok) {
        tracing::info!(token_id = %sess.token_id, account = %p.account, reply = %p.reply, "console push");
    }
    let text = match (ok.as_slice(), failed.is_empty()) {
        ([], true) => "Nothing was pushed.".to_string(),
        ([one], true) => format!("Pushed account {one} to the server."),
        (many, true) => format!(
            "Pushed {} to the server: {}.",
            plural(many.len(), "account", "accounts"),
            many.join(", ")
        ),
        (many, false) => format!(
            "Pushed {}; the push of {} failed: {}",
            plural(many.len(), "account", "accounts"),
            plural(failed.len(), "account", "accounts"),
            failed.join("; ")
        ),
    };
    Flash {
        ok: failed.is_empty() && !ok.is_empty(),
        text,
    }
}

/// `POST /console/sync/push`: fields `csrf` and one `account` per selected account;
/// pushes each one's current JWT now.
pub(crate) async fn push_selected(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    let csrf = fields
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str());
    check_csrf(&sess, csrf)?;
    let mut names: Vec<String> = fields
        .iter()
        .filter(|(k, v)| k == "account" && !v.trim().is_empty())
        .map(|(_, v)| v.trim().to_string())
        .collect();
    names.sort();
    names.dedup();
    let lq = ListQuery::default();
    if names.is_empty() {
        let p = Problem::invalid("select at least one account to push");
        return render_sync(&s, &sess, &lq, None, Some(&p)).await;
    }
    if names.len() > MAX_PUSH {
        let p = Problem::invalid(format!("at most {MAX_PUSH} accounts at once"));
        return render_sync(&s, &sess, &lq, None, Some(&p)).await;
    }
    let Some(link) = s.server.as_ref() else {
        let p = Problem::invalid("this console does not know a nats-server to push to");
        return render_sync(&s, &sess, &lq, None, Some(&p)).await;
    };
    let w = s.ops(&sess);
    let mut pushed = Vec::new();
    let mut outcome = Ok(());
    for name in &names {
        match w.push_accounts(link, Some(name)).await {
            Ok(mut p) => pushed.append(&mut p),
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    if let Some(cache) = &s.drift {
        cache.pushed(&pushed);
    }
    let outcome = outcome.map(|()| push_flash(&sess, &pushed));
    after_action(&s, &sess, &headers, outcome, |e| {
        format!("The push failed: {}", Problem::of(e).message)
    })
    .await
}

/// `POST /console/sync/push/{name}`: pushes one account's current JWT now.
pub(crate) async fn push(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<CsrfForm>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    check_csrf(&sess, form.csrf.as_deref())?;
    let Some(link) = s.server.as_ref() else {
        let p = Problem::invalid("this console does not know a nats-server to push to");
        let lq = ListQuery::default();
        return render_sync(&s, &sess, &lq, None, Some(&p)).await;
    };
    let outcome = s
        .ops(&sess)
        .push_accounts(link, Some(&name))
        .await
        .map(|pushed| {
            if let Some(cache) = &s.drift {
                cache.pushed(&pushed);
            }
            push_flash(&sess, &pushed)
        });
    after_action(&s, &sess, &headers, outcome, |e| {
        format!("The push of {name} failed: {}", Problem::of(e).message)
    })
    .await
}

/// `POST /console/sync/fix`: `warden sync --fix`.
pub(crate) async fn fix(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    check_csrf(&sess, form.csrf.as_deref())?;
    let Some(link) = s.server.as_ref() else {
        let p = Problem::invalid("this console does not know a nats-server to sync");
        let lq = ListQuery::default();
        return render_sync(&s, &sess, &lq, None, Some(&p)).await;
    };
    let w = s.ops(&sess);
    let outcome = w.drift_fix(link).await;
    // The page after the repair shows the comparison made now.
    if outcome.is_ok()
        && let Some(cache) = &s.drift
    {
        cache.refresh(&w).await?;
    }
    let outcome = outcome.map(|r| {
        if r.errors.is_empty() {
            tracing::info!(token_id = %sess.token_id, pushed = r.pushed, deleted = r.deleted, "console sync");
            Flash {
                ok: true,
                text: format!(
                    "Sync done: pushed {}, deleted {} unknown.",
                    plural(r.pushed, "account", "accounts"),
                    r.deleted
                ),
            }
        } else {
            Flash {
                ok: false,
                text: format!(
                    "Sync pushed {} and deleted {}, but: {}",
                    r.pushed,
                    r.deleted,
                    r.errors.join("; ")
                ),
            }
        }
    });
    after_action(&s, &sess, &headers, outcome, |e| {
        format!("Sync failed: {}", Problem::of(e).message)
    })
    .await
}

/// `POST /console/sync/check`: compares the server's resolver with Warden now (the
/// comparison the sync page shows), then shows the sync page.
pub(crate) async fn check_now(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    check_csrf(&sess, form.csrf.as_deref())?;
    let Some(cache) = &s.drift else {
        let p = Problem::invalid("this console does not know a nats-server to compare with");
        let lq = ListQuery::default();
        return render_sync(&s, &sess, &lq, None, Some(&p)).await;
    };
    cache.refresh(&s.ops(&sess)).await?;
    Ok(Redirect::to("/console/sync").into_response())
}

/// How long ago `unix` was, in words ("just now", "12 s ago", "3 min ago").
fn ago(unix: i64) -> String {
    let secs = (warden_ops::now() - unix).max(0);
    match secs {
        0..=1 => "just now".to_string(),
        2..=119 => format!("{secs} s ago"),
        120..=7199 => format!("{} min ago", secs / 60),
        _ => format!("{} h ago", secs / 3600),
    }
}

/// How long the account page waits for the server's JetStream figures (the page stays
/// fast when the server is slow or gone).
const JSZ_WAIT: Duration = Duration::from_secs(1);

/// The account page's JetStream block: what the account's streams hold now (memory,
/// storage, streams, consumers) next to its JetStream limits, or why it is not shown.
fn jetstream_section(a: &AccountView, js: Option<&Result<JetStreamUse, OpsError>>) -> String {
    let l = &a.spec.limits.jetstream;
    let inner = match js {
        None => "<p id=\"jetstream-unavailable\" class=\"muted\">Unavailable: this console does not know a nats-server.</p>".to_string(),
        Some(Err(e)) => format!(
            "<p id=\"jetstream-unavailable\" class=\"muted\">Unavailable: {}</p>",
            esc(&Problem::of(e).message)
        ),
        Some(Ok(Err(why))) => format!(
            "<p id=\"jetstream-unavailable\" class=\"muted\">Unavailable: {}</p>",
            esc(why)
        ),
        Some(Ok(Ok(u))) => format!(
            r#"<div class="scroll"><table id="jetstream-table"><thead><tr><th scope="col">What</th><th scope="col">Used</th><th scope="col">Limit</th></tr></thead><tbody>
<tr><th scope="row">Memory</th><td id="js-memory">{mem}</td><td>{mem_limit}</td></tr>
<tr><th scope="row">Storage</th><td id="js-storage">{disk}</td><td>{disk_limit}</td></tr>
<tr><th scope="row">Streams</th><td id="js-streams">{streams}</td><td>{streams_limit}</td></tr>
<tr><th scope="row">Consumers</th><td id="js-consumers">{consumers}</td><td>{consumers_limit}</td></tr>
</tbody></table></div>"#,
            mem = bytes(u.memory),
            mem_limit = size(l.mem_storage),
            disk = bytes(u.storage),
            disk_limit = size(l.disk_storage),
            streams = u.streams,
            streams_limit = limit(l.streams),
            consumers = u.consumers,
            consumers_limit = limit(l.consumer),
        ),
    };
    format!(
        r#"<section id="jetstream" aria-labelledby="h-jetstream"><h2 id="h-jetstream">JetStream use</h2>
{inner}
<p class="hint">As the nats-server reports it (<code>$SYS.REQ.ACCOUNT.&lt;key&gt;.JSZ</code>), asked for at most {wait} s.</p></section>"#,
        wait = JSZ_WAIT.as_secs()
    )
}

/// The account page's usage blocks: connections and traffic, and JetStream, as the
/// server reports them now (asked at the same time), next to the limits.
pub(super) async fn usage_section(s: &ConsoleState, w: &Warden, a: &AccountView) -> String {
    let (usage, js) = match &s.server {
        None => (None, None),
        Some(link) => {
            let (u, j) = tokio::join!(
                w.account_usage(link, &a.public_key),
                w.account_jetstream(link, &a.public_key, JSZ_WAIT)
            );
            (Some((link, u)), Some(j))
        }
    };
    let jetstream = jetstream_section(a, js.as_ref());
    let l = &a.spec.limits;
    let inner = match usage {
        None => "<p id=\"usage-none\" class=\"muted\">Not reported: this console does not know a nats-server.</p>".to_string(),
        Some((_link, usage)) => match usage {
            Ok(None) => format!(
                "<p id=\"usage-none\" class=\"muted\">Not reported: the server did not answer within {}s.</p>",
                ASK_TIMEOUT.as_secs()
            ),
            Err(e) => format!(
                "<p id=\"usage-none\" class=\"muted\">Not reported: {}</p>",
                esc(&Problem::of(&e).message)
            ),
            Ok(Some(u)) => format!(
                r#"<div class="scroll"><table id="usage-table"><thead><tr><th scope="col">What</th><th scope="col">Now</th><th scope="col">Limit</th></tr></thead><tbody>
<tr><th scope="row">Connections</th><td id="usage-connections">{conns}</td><td>{conn_limit}</td></tr>
<tr><th scope="row">Subscriptions</th><td id="usage-subscriptions">{subs}</td><td>{subs_limit} per connection</td></tr>
<tr><th scope="row">Published by clients</th><td id="usage-in">{in_msgs} msgs, {in_bytes}</td><td rowspan="2">data {data_limit}</td></tr>
<tr><th scope="row">Delivered to clients</th><td id="usage-out">{out_msgs} msgs, {out_bytes}</td></tr>
</tbody></table></div>{partial}"#,
                conns = u.connections,
                conn_limit = limit(l.conn),
                subs = u.subscriptions,
                subs_limit = limit(l.subs),
                in_msgs = u.in_msgs,
                in_bytes = bytes(u.in_bytes),
                out_msgs = u.out_msgs,
                out_bytes = bytes(u.out_bytes),
                data_limit = limit(l.data),
                partial = if u.listed < u.connections {
                    format!(
                        "<p class=\"hint\">Sums cover the first {} of {} connections.</p>",
                        u.listed, u.connections
                    )
                } else {
                    String::new()
                },
            ),
        },
    };
    format!(
        r#"<section id="usage" data-live aria-labelledby="h-usage"><h2 id="h-usage">Current usage</h2>
{inner}
<p class="hint">As the nats-server reports it (<code>$SYS.REQ.ACCOUNT.&lt;key&gt;.CONNZ</code>), summed over the account's current connections; counters restart with each connection.</p></section>
{jetstream}"#
    )
}
