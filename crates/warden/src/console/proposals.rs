//! The console's proposals inbox (`/console/proposals`, issue 7 governance): open
//! proposals (all, or those the acting directory user may close) with who may approve
//! them, closed ones with closer and justification, approve / reject forms — one
//! proposal at a time or a batch of checked ones, with a result per id — and a form for a
//! new proposal, made as the acting user.
//!
//! The console signs in with an API token, but governance acts as a *directory user*:
//! the operator picks one ("Act as"), which the server-side session remembers. The
//! approval rule is the same as on the CLI and HTTP API ([`warden_ops::Warden::confirm`]);
//! a refusal is shown on the page and changes nothing. New proposals arrive through the
//! console's ledger event stream (`proposal.open` is a ledger event).

use std::fmt::Write as _;

use axum::extract::{Form, Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, Redirect};
use serde::Deserialize;
use warden_core::governance::{Address, Change, ProposalKind, ProposalStatus, Relationship};
use warden_store::governance::ProposalFilter;

use super::directory::{dir_user_link, role_link, task_link};
use super::pages::{csrf_field, seq};
use super::render::{esc, page, when};
use super::{ConsoleError, ConsoleResult, ConsoleState, Flash, check_csrf, session_with};
use warden_ops::tokens::Scope;

/// Most ids one batch may carry (a bound on the work of one form post).
const MAX_BATCH: usize = 200;

/// Closed proposals shown (the newest closed first).
const CLOSED_SHOWN: usize = 200;

/// Query of the inbox: `show=to-approve` lists only what the acting user may close.
#[derive(Deserialize)]
pub(crate) struct InboxQuery {
    show: Option<String>,
}

fn address_text(a: &Address) -> String {
    let object = match a.object_type {
        warden_core::governance::ObjectType::Role => role_link(&a.object_id),
        warden_core::governance::ObjectType::Task => task_link(&a.object_id),
        warden_core::governance::ObjectType::User => dir_user_link(&a.object_id),
        _ => esc(&a.object_id),
    };
    let related = match a.related_type {
        warden_core::governance::ObjectType::User => dir_user_link(&a.related_id),
        warden_core::governance::ObjectType::Task => task_link(&a.related_id),
        _ => esc(&a.related_id),
    };
    let verb = if a.relationship == Relationship::Manager {
        "manager of"
    } else {
        a.relationship.as_str()
    };
    format!(
        "<code>({}, {}, {}, {}, {})</code><br>{related} {} {} {object}",
        esc(a.object_type.as_str()),
        esc(&a.object_id),
        esc(a.related_type.as_str()),
        esc(a.relationship.as_str()),
        esc(&a.related_id),
        if a.relationship == Relationship::Manager {
            "→"
        } else {
            "as"
        },
        esc(verb),
    )
}

/// The result of the last action: one line per proposal id.
fn notice(flash: Option<Flash>) -> String {
    match flash {
        None => String::new(),
        Some(f) => {
            let items: String = f
                .text
                .lines()
                .map(|l| {
                    let cls = if l.contains(": confirmed")
                        || l.contains(": rejected")
                        || l.contains(": proposed")
                    {
                        "ok"
                    } else {
                        "error"
                    };
                    format!("<li class=\"{cls}\">{}</li>", esc(l))
                })
                .collect();
            let role = if f.ok { "status" } else { "alert" };
            format!(
                "<div class=\"{}\" role=\"{role}\" id=\"proposal-results\" data-ok=\"{}\"><ul>{items}</ul></div>",
                if f.ok { "notice" } else { "form-error" },
                f.ok
            )
        }
    }
}

/// `GET /console/proposals[?show=to-approve]`.
pub(crate) async fn inbox(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Query(q): Query<InboxQuery>,
) -> ConsoleResult<Html<String>> {
    let sess = session_with(&s, &headers, Scope::Read).await?;
    let seq = seq(&s).await?;
    let acting = sess.acting.clone();
    let to_approve = q.show.as_deref() == Some("to-approve");
    if to_approve && acting.is_none() {
        return Err(ConsoleError::Invalid(
            "pick the directory user to act as before listing what they may approve".into(),
        ));
    }
    let open = s
        .warden
        .proposals(
            acting.as_deref(),
            false,
            to_approve,
            Some(ProposalStatus::Open),
        )
        .await?;
    // Closed ones need no approval facts: read them straight from the store, newest
    // closed first, and show a bounded number.
    let mut closed = Vec::new();
    for status in [
        ProposalStatus::Confirmed,
        ProposalStatus::Rejected,
        ProposalStatus::Expired,
    ] {
        let filter = ProposalFilter {
            status: Some(status),
            initiator: None,
            limit: 0,
        };
        closed.extend(
            s.warden
                .store()
                .proposals(&filter)
                .await
                .map_err(|e| ConsoleError::Ops(e.into()))?,
        );
    }
    closed.sort_by(|a, b| {
        (b.closed_at, b.created_at, &b.id).cmp(&(a.closed_at, a.created_at, &a.id))
    });
    let n_closed = closed.len();
    closed.truncate(CLOSED_SHOWN);
    let can_write = sess.allows(Scope::Write);
    let users = s.warden.dir_users().await?;
    let mut orows = String::new();
    for p in &open {
        let pr = &p.proposal;
        let (pick, actions) = if can_write {
            (
                format!(
                    "<input type=\"checkbox\" form=\"decide\" name=\"id\" value=\"{id}\" id=\"pick-{id}\" aria-label=\"Select proposal {id}\">",
                    id = esc(&p.id)
                ),
                format!(
                    "<button type=\"submit\" form=\"decide\" name=\"one\" value=\"confirm:{id}\" id=\"approve-{id}\">Approve</button> <button type=\"submit\" form=\"decide\" name=\"one\" value=\"reject:{id}\" class=\"danger\" id=\"reject-{id}\">Reject</button>",
                    id = esc(&p.id)
                ),
            )
        } else {
            (String::new(), String::new())
        };
        let approvers = if p.approvers.is_empty() {
            "<span class=\"muted\">nobody directly</span>".to_string()
        } else {
            p.approvers
                .iter()
                .map(|a| dir_user_link(a))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = write!(
            orows,
            "<tr id=\"proposal-{id}\" data-status=\"{status}\"><td>{pick}</td><td><code>{id}</code></td><td>{kind}<br><small>{message}</small></td><td>{change}</td><td>{address}</td><td>{initiator}</td><td>{reason}</td><td>{expires}{grant}</td><td class=\"approvers\">{approvers}<br><small class=\"muted\">and their managers, and system administrators</small></td><td>{actions}</td></tr>",
            id = esc(&p.id),
            status = esc(pr.status.as_str()),
            kind = esc(pr.kind.as_str()),
            message = esc(&p.message),
            change = esc(pr.change.as_str()),
            address = address_text(&pr.address),
            initiator = dir_user_link(&pr.initiator),
            reason = esc(pr.reason.as_deref().unwrap_or("—")),
            expires = esc(&when(pr.expires_at)),
            grant = pr
                .grant_expires_at
                .map(|t| format!("<br><small>grant until {}</small>", esc(&when(Some(t)))))
                .unwrap_or_default(),
        );
    }
    if orows.is_empty() {
        orows = "<tr><td colspan=\"10\" class=\"muted\">No open proposals.</td></tr>".into();
    }
    let mut crows = String::new();
    for pr in &closed {
        let cls = match pr.status {
            ProposalStatus::Confirmed => "ok",
            ProposalStatus::Rejected => "bad",
            _ => "muted",
        };
        let _ = write!(
            crows,
            "<tr id=\"closed-{id}\" data-status=\"{status}\"><td><code>{id}</code></td><td>{kind} {change}</td><td>{address}</td><td>{initiator}</td><td class=\"{cls}\">{status}</td><td>{closer}</td><td>{just}</td><td>{closed_at}</td></tr>",
            id = esc(&pr.id),
            kind = esc(pr.kind.as_str()),
            change = esc(pr.change.as_str()),
            address = address_text(&pr.address),
            initiator = dir_user_link(&pr.initiator),
            status = esc(pr.status.as_str()),
            closer = pr
                .closer
                .as_deref()
                .map(dir_user_link)
                .unwrap_or_else(|| "<span class=\"muted\">—</span>".into()),
            just = esc(pr.justification.as_deref().unwrap_or("—")),
            closed_at = esc(&when(pr.closed_at)),
        );
    }
    if crows.is_empty() {
        crows = "<tr><td colspan=\"8\" class=\"muted\">None yet.</td></tr>".into();
    }
    let mut options = String::from("<option value=\"\">(pick a directory user)</option>");
    for u in &users {
        let id = &u.user.id;
        let selected = if acting.as_deref() == Some(id.as_str()) {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            options,
            "<option value=\"{v}\"{selected}>{v}</option>",
            v = esc(id)
        );
    }
    let act_as = if can_write {
        format!(
            r#"<form method="post" action="/console/proposals/act-as" class="card" id="act-as">{csrf}
<label for="act-as-user">Act as directory user</label>
<select id="act-as-user" name="user">{options}</select>
<button type="submit">Act as</button>
<p class="hint">Approvals and rejections are made as this directory user, under the same rule as <code>warden confirm --as</code>.</p>
</form>"#,
            csrf = csrf_field(&sess.csrf),
        )
    } else {
        String::new()
    };
    let acting_text = match &acting {
        Some(a) => format!("<p id=\"acting\">Acting as {}.</p>", dir_user_link(a)),
        None => "<p id=\"acting\" class=\"muted\">Not acting as anyone yet.</p>".into(),
    };
    let filter = match &acting {
        Some(a) if to_approve => format!(
            "<p id=\"filter\">Showing open proposals {} may approve. <a href=\"/console/proposals\">Show all</a></p>",
            esc(a)
        ),
        Some(a) => format!(
            "<p id=\"filter\">Showing all open proposals. <a href=\"/console/proposals?show=to-approve\">Only those {} may approve</a></p>",
            esc(a)
        ),
        None => "<p id=\"filter\">Showing all open proposals.</p>".into(),
    };
    let decide = if can_write {
        format!(
            r#"<form method="post" action="/console/proposals/decide" class="card" id="decide">{csrf}
<label for="justification">Justification (for approvals)</label>
<input id="justification" name="justification" autocomplete="off">
<label for="reason">Reason (needed to reject)</label>
<input id="reason" name="reason" autocomplete="off">
<button type="submit" name="batch" value="confirm" id="confirm-selected">Confirm selected</button>
<button type="submit" name="batch" value="reject" class="danger" id="reject-selected">Reject selected</button>
</form>"#,
            csrf = csrf_field(&sess.csrf),
        )
    } else {
        String::new()
    };
    let propose = if can_write {
        let kinds: String = ProposalKind::ALL
            .iter()
            .map(|k| format!("<option value=\"{v}\">{v}</option>", v = k.as_str()))
            .collect();
        let changes: String = Change::ALL
            .iter()
            .map(|c| format!("<option value=\"{v}\">{v}</option>", v = c.as_str()))
            .collect();
        format!(
            r#"<form method="post" action="/console/proposals/new" class="card" id="propose">{csrf}
<h2>New proposal</h2>
<div class="grid2">
<div><label for="p-kind">Kind</label><select id="p-kind" name="kind">{kinds}</select></div>
<div><label for="p-change">Change</label><select id="p-change" name="change">{changes}</select></div>
<div><label for="p-object">Role, task, or (for a manager) the user</label><input id="p-object" name="object" required autocomplete="off"></div>
<div><label for="p-related">User or task it relates (for a manager: the new manager)</label><input id="p-related" name="related" required autocomplete="off"></div>
<div><label for="p-reason">Reason</label><input id="p-reason" name="reason" autocomplete="off"></div>
<div><label for="p-grant">Grant expires (e.g. 30d, 2027-01-31; empty: never)</label><input id="p-grant" name="grant_expires" autocomplete="off"></div>
</div>
<button type="submit" id="propose-submit">Propose</button>
<p class="hint">Proposed as the directory user you act as, like <code>warden propose … --as</code>.</p>
</form>"#,
            csrf = csrf_field(&sess.csrf),
        )
    } else {
        String::new()
    };
    let body = format!(
        r#"{notice}{act_as}{acting_text}{filter}
<section id="proposals-open" data-live aria-labelledby="h-proposals-open"><h2 id="h-proposals-open">{n_open} open proposals</h2>
<div class="scroll"><table><thead><tr><th scope="col">Pick</th><th scope="col">Id</th><th scope="col">Kind</th><th scope="col">Change</th><th scope="col">Address</th><th scope="col">Initiator</th><th scope="col">Reason</th><th scope="col">Expires</th><th scope="col">Who may approve</th><th scope="col">Action</th></tr></thead><tbody>{orows}</tbody></table></div></section>
{decide}
{propose}
<section id="proposals-closed" data-live aria-labelledby="h-proposals-closed"><h2 id="h-proposals-closed">{n_closed} closed proposals{shown}</h2>
<div class="scroll"><table><thead><tr><th scope="col">Id</th><th scope="col">Kind</th><th scope="col">Address</th><th scope="col">Initiator</th><th scope="col">Status</th><th scope="col">Closed by</th><th scope="col">Justification / reason</th><th scope="col">Closed</th></tr></thead><tbody>{crows}</tbody></table></div></section>"#,
        notice = notice(s.take_flash(&headers)),
        n_open = open.len(),
        shown = if n_closed > closed.len() {
            format!(" (the newest {} shown)", closed.len())
        } else {
            String::new()
        },
    );
    Ok(page("Proposals", "/console/proposals", &sess, seq, &body))
}

/// The act-as form.
#[derive(Deserialize)]
pub(crate) struct ActAsForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    user: String,
}

/// `POST /console/proposals/act-as`: remembers the acting directory user in the session.
pub(crate) async fn act_as(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Form(form): Form<ActAsForm>,
) -> ConsoleResult<Redirect> {
    let sess = session_with(&s, &headers, Scope::Write).await?;
    check_csrf(&sess, form.csrf.as_deref())?;
    let user = form.user.trim();
    let acting = if user.is_empty() {
        None
    } else {
        // Only an existing directory user can be acted as.
        Some(s.warden.dir_user(user).await?.id)
    };
    s.set_acting(&headers, acting);
    Ok(Redirect::to("/console/proposals"))
}

/// `POST /console/proposals/decide`: fields `csrf`, `justification`, `reason`, and either
/// `one=confirm:ID` / `one=reject:ID` (a row's button) or `batch=confirm|reject` with the
/// checked `id`s. Each proposal is closed in its own transaction; the page then shows a
/// result line per id.
pub(crate) async fn decide(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> ConsoleResult<Redirect> {
    let sess = session_with(&s, &headers, Scope::Write).await?;
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    check_csrf(&sess, field("csrf"))?;
    let Some(actor) = sess.acting.clone() else {
        return Err(ConsoleError::Invalid(
            "pick the directory user to act as first (the \"Act as\" form)".into(),
        ));
    };
    let (action, ids): (&str, Vec<String>) = match (field("one"), field("batch")) {
        (Some(one), _) => match one.split_once(':') {
            Some((a, id)) if !id.is_empty() => (a, vec![id.to_string()]),
            _ => return Err(ConsoleError::Invalid(format!("bad action {one:?}"))),
        },
        (None, Some(b)) => (
            b,
            fields
                .iter()
                .filter(|(k, v)| k == "id" && !v.is_empty())
                .map(|(_, v)| v.clone())
                .collect(),
        ),
        (None, None) => return Err(ConsoleError::Invalid("no action chosen".into())),
    };
    if ids.is_empty() {
        return Err(ConsoleError::Invalid("select at least one proposal".into()));
    }
    if ids.len() > MAX_BATCH {
        return Err(ConsoleError::Invalid(format!(
            "at most {MAX_BATCH} proposals at once"
        )));
    }
    let justification = field("justification")
        .map(str::trim)
        .filter(|j| !j.is_empty());
    let reason = field("reason").map(str::trim).unwrap_or("");
    let mut lines = Vec::new();
    let mut all_ok = true;
    match action {
        "confirm" => {
            for r in s.warden.confirm_many(&actor, &ids, justification).await {
                if r.ok {
                    let reissued = r.proposal.as_ref().map(|p| p.reissued.len()).unwrap_or(0);
                    lines.push(format!(
                        "{}: confirmed as {actor} ({reissued} NATS user(s) re-issued)",
                        r.id
                    ));
                } else {
                    all_ok = false;
                    lines.push(format!(
                        "{}: not confirmed: {}",
                        r.id,
                        r.error.unwrap_or_default()
                    ));
                }
            }
        }
        "reject" => {
            for id in &ids {
                match s.warden.reject(&actor, id, reason).await {
                    Ok(_) => lines.push(format!("{id}: rejected as {actor}")),
                    Err(e) => {
                        all_ok = false;
                        lines.push(format!("{id}: not rejected: {e}"));
                    }
                }
            }
        }
        other => return Err(ConsoleError::Invalid(format!("unknown action {other:?}"))),
    }
    tracing::info!(token_id = %sess.token_id, acting = %actor, action, count = ids.len(), "console proposals");
    s.set_flash(
        &headers,
        Flash {
            ok: all_ok,
            text: lines.join("\n"),
        },
    );
    Ok(Redirect::to("/console/proposals"))
}

/// The new-proposal form.
#[derive(Deserialize)]
pub(crate) struct ProposeForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    change: String,
    #[serde(default)]
    object: String,
    #[serde(default)]
    related: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    grant_expires: String,
}

/// `POST /console/proposals/new`: a proposal made as the acting directory user. Malformed
/// fields are a `400` page; what the governance rules refuse (unknown users, roles or
/// tasks, a relationship that already exists…) is shown on the inbox, nothing written.
pub(crate) async fn propose(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Form(form): Form<ProposeForm>,
) -> ConsoleResult<Redirect> {
    let sess = session_with(&s, &headers, Scope::Write).await?;
    check_csrf(&sess, form.csrf.as_deref())?;
    let Some(actor) = sess.acting.clone() else {
        return Err(ConsoleError::Invalid(
            "pick the directory user to act as first (the \"Act as\" form)".into(),
        ));
    };
    let kind: ProposalKind = form
        .kind
        .trim()
        .parse()
        .map_err(|_| ConsoleError::Invalid(format!("unknown proposal kind {:?}", form.kind)))?;
    let change: Change = form
        .change
        .trim()
        .parse()
        .map_err(|_| ConsoleError::Invalid(format!("unknown change {:?}", form.change)))?;
    let (object, related) = (form.object.trim(), form.related.trim());
    if object.is_empty() || related.is_empty() {
        return Err(ConsoleError::Invalid(
            "a proposal names both what it changes and whom or what it relates".into(),
        ));
    }
    let grant_expires_at = match form.grant_expires.trim() {
        "" => None,
        text => warden_core::parse::parse_expiry(text, warden_ops::now())
            .map_err(|e| ConsoleError::Invalid(format!("grant expiry: {e}")))?,
    };
    let reason = Some(form.reason.trim().to_string()).filter(|r| !r.is_empty());
    let input = warden_ops::governance::ProposalInput {
        kind,
        change,
        object: object.to_string(),
        related: related.to_string(),
        reason,
        grant_expires_at,
        expires_at: None,
    };
    let flash = match s.warden.propose(&actor, input).await {
        Ok(v) => Flash {
            ok: true,
            text: format!(
                "{}: proposed as {actor} ({}); may approve: {}",
                v.id,
                v.message,
                if v.approvers.is_empty() {
                    "system administrators".to_string()
                } else {
                    v.approvers.iter().cloned().collect::<Vec<_>>().join(", ")
                }
            ),
        },
        Err(e) => Flash {
            ok: false,
            text: format!("not proposed: {e}"),
        },
    };
    tracing::info!(token_id = %sess.token_id, acting = %actor, ok = flash.ok, "console proposal");
    s.set_flash(&headers, flash);
    Ok(Redirect::to("/console/proposals"))
}
