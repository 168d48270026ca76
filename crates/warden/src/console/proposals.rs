//! The console's proposals inbox (`/console/proposals`, governance): open
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
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use warden_core::governance::{
    Address, Change, ObjectType, ProposalKind, ProposalStatus, Relationship,
};

use super::directory::{dir_user_link, role_link, task_link};
use super::list::ListQuery;
use super::pages::{csrf_field, seq};
use super::render::{esc, page, plural, when};
use super::{
    ConsoleError, ConsoleResult, ConsoleState, Flash, Problem, Session, check_csrf, form_session,
    session,
};
use warden_ops::governance::ProposalInput;
use warden_ops::page::PageRequest;
use warden_ops::tokens::Scope;

/// Most ids one batch may carry (a bound on the work of one form post).
const MAX_BATCH: usize = 200;

/// A link to the object of an address (role, task or directory user page).
fn object_link(t: ObjectType, id: &str) -> String {
    match t {
        ObjectType::Role => format!("role {}", role_link(id)),
        ObjectType::Task => format!("task {}", task_link(id)),
        ObjectType::User => format!("user {}", dir_user_link(id)),
        other => format!("{} {}", esc(other.as_str()), esc(id)),
    }
}

/// What a proposal does, as a sentence: "Add user ulrich as member of role sales",
/// "Make olivia the manager of user ulrich", "Remove task orders from role sales".
fn sentence(change: Change, a: &Address) -> String {
    let object = object_link(a.object_type, &a.object_id);
    let related = object_link(a.related_type, &a.related_id);
    let verb = match change {
        Change::Add => "Add",
        Change::Remove => "Remove",
        _ => "Update",
    };
    match (a.relationship, a.related_type) {
        (Relationship::Manager, _) if change == Change::Remove => format!(
            "Remove {} as the manager of {object}",
            dir_user_link(&a.related_id)
        ),
        (Relationship::Manager, _) => format!(
            "Make {} the manager of {object}",
            dir_user_link(&a.related_id)
        ),
        (_, ObjectType::Task) if change == Change::Remove => {
            format!("Remove {related} from {object}")
        }
        (_, ObjectType::Task) => format!("{verb} {related} to {object}"),
        (rel, _) => format!("{verb} {related} as {} of {object}", esc(rel.as_str())),
    }
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

/// `GET /console/proposals[?show=to-approve&o_q=…&o_sort=…&o_page=N&c_…]`: open
/// proposals (prefix `o_`) and closed ones (prefix `c_`, newest closed first), each
/// searched, sorted and paged.
pub(crate) async fn inbox(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    let lq = ListQuery::new(q);
    let to_approve = lq.get("show") == Some("to-approve");
    if to_approve && sess.acting.is_none() {
        return Err(ConsoleError::Invalid(
            "pick the directory user to act as before listing what they may approve".into(),
        ));
    }
    let flash = s.take_flash(&headers);
    render_inbox(&s, &sess, &lq, flash, None).await
}

/// A form of the proposals page refused: the problem, and the new-proposal form's values
/// as typed (when that was the form).
struct Refusal<'a> {
    problem: Problem,
    typed: Option<&'a ProposeForm>,
}

/// The proposals page (all open proposals, or those the acting user may approve), with
/// the result of the last action or the refusal of a form sent from it (the page then has
/// the problem's status).
async fn render_inbox(
    s: &ConsoleState,
    sess: &Session,
    lq: &ListQuery,
    flash: Option<Flash>,
    refusal: Option<Refusal<'_>>,
) -> ConsoleResult<Response> {
    let w = s.ops(sess);
    let seq = seq(&w).await?;
    let acting = sess.acting.clone();
    let to_approve = acting.is_some() && lq.get("show") == Some("to-approve");
    let path = "/console/proposals";
    let open = w
        .open_proposals_page(acting.as_deref(), to_approve, &lq.request("o_")?)
        .await?;
    // Closed ones need no approval facts: the newest closed first unless asked.
    let closed = w
        .closed_proposals_page(&lq.clone().or_default("c_dir", "desc").request("c_")?)
        .await?;
    let can_write = sess.offers(Scope::Write);
    // Deciding is done as the acting directory user: until one is picked, the buttons
    // are shown disabled (the decide form refuses too).
    let disabled = if acting.is_none() { " disabled" } else { "" };
    let mut orows = String::new();
    for p in &open.items {
        let pr = &p.proposal;
        let (pick, actions) = if can_write {
            (
                format!(
                    "<input type=\"checkbox\" form=\"decide\" name=\"id\" value=\"{id}\" id=\"pick-{id}\" aria-label=\"Select proposal {id}\">",
                    id = esc(&p.id)
                ),
                format!(
                    "<button type=\"submit\" form=\"decide\" name=\"one\" value=\"confirm:{id}\" id=\"approve-{id}\"{disabled}>Approve</button> <button type=\"submit\" form=\"decide\" name=\"one\" value=\"reject:{id}\" class=\"danger\" id=\"reject-{id}\"{disabled}>Reject</button>",
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
            "<tr id=\"proposal-{id}\" data-status=\"{status}\"><td>{pick}</td><td><code>{id}</code></td><td class=\"sentence\">{address}<br><small class=\"muted\">{kind} {change} · {message}</small></td><td>{initiator}</td><td>{reason}</td><td>{expires}{grant}</td><td class=\"approvers\">{approvers}<br><small class=\"muted\">and their managers, and system administrators</small></td><td>{actions}</td></tr>",
            id = esc(&p.id),
            status = esc(pr.status.as_str()),
            kind = esc(pr.kind.as_str()),
            message = esc(&p.message),
            change = esc(pr.change.as_str()),
            address = sentence(pr.change, &pr.address),
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
        orows = "<tr><td colspan=\"9\" class=\"muted\">No open proposals.</td></tr>".into();
    }
    let mut crows = String::new();
    for pr in &closed.items {
        let cls = match pr.status {
            ProposalStatus::Confirmed => "ok",
            ProposalStatus::Rejected => "bad",
            _ => "muted",
        };
        let _ = write!(
            crows,
            "<tr id=\"closed-{id}\" data-status=\"{status}\"><td><code>{id}</code></td><td class=\"sentence\">{address}<br><small class=\"muted\">{kind} {change}</small></td><td>{initiator}</td><td class=\"{cls}\">{status}</td><td>{closer}</td><td>{just}</td><td>{closed_at}</td></tr>",
            id = esc(&pr.id),
            kind = esc(pr.kind.as_str()),
            change = esc(pr.change.as_str()),
            address = sentence(pr.change, &pr.address),
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
        crows = "<tr><td colspan=\"7\" class=\"muted\">None yet.</td></tr>".into();
    }
    // Whom to act as: typed (the id), or picked from the matches of a search of the
    // directory (a page of them, however many users the directory holds).
    let act_as = if can_write {
        let who = lq.get("who").unwrap_or("");
        let matches = if who.is_empty() {
            String::new()
        } else {
            let found = w
                .dir_users_page(&PageRequest::new(who, "", false, 1, Some(ACT_AS_MATCHES)))
                .await?;
            let mut items = String::new();
            for u in &found.items {
                let _ = write!(
                    items,
                    "<li><form class=\"inline\" method=\"post\" action=\"/console/proposals/act-as\">{csrf}<input type=\"hidden\" name=\"user\" value=\"{v}\"><button type=\"submit\" id=\"act-as-{v}\">Act as {v}</button></form>{name}</li>",
                    csrf = csrf_field(&sess.csrf),
                    v = esc(&u.user.id),
                    name = u
                        .user
                        .name
                        .as_deref()
                        .map(|n| format!(" <span class=\"muted\">{}</span>", esc(n)))
                        .unwrap_or_default(),
                );
            }
            let said = if found.matched == 0 {
                format!("No directory user matches “{}”.", esc(who))
            } else if found.matched > found.items.len() {
                format!(
                    "The first {} of {} directory users matching “{}”: type more to narrow.",
                    found.items.len(),
                    found.matched,
                    esc(who)
                )
            } else {
                format!("Directory users matching “{}”:", esc(who))
            };
            format!(
                "<p id=\"act-as-found\">{said}</p><ul class=\"entries\" id=\"act-as-matches\">{items}</ul>"
            )
        };
        format!(
            r#"<section class="card" id="act-as-card" aria-labelledby="h-act-as"><h2 id="h-act-as">Act as</h2>
<form method="post" action="/console/proposals/act-as" id="act-as">{csrf}
<label for="act-as-user">Directory user to act as (id)</label>
<input id="act-as-user" name="user" value="{current}" autocomplete="off" required>
<button type="submit">Act as</button>
</form>
<form method="get" action="/console/proposals" class="search" role="search" id="act-as-find"><label for="act-as-q">Find a directory user (id, name, email)</label><span class="search-row"><input type="search" id="act-as-q" name="who" value="{who}" autocomplete="off"><button type="submit">Find</button></span></form>
{matches}
<p class="hint">Approvals and rejections are made as this directory user, under the same rule as <code>warden confirm --as</code>.</p>
</section>"#,
            csrf = csrf_field(&sess.csrf),
            current = esc(acting.as_deref().unwrap_or("")),
            who = esc(who),
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
<button type="submit" name="batch" value="confirm" id="confirm-selected"{disabled}>Confirm selected</button>
<button type="submit" name="batch" value="reject" class="danger" id="reject-selected"{disabled}>Reject selected</button>
{need_actor}</form>"#,
            csrf = csrf_field(&sess.csrf),
            need_actor = if acting.is_none() {
                "<p class=\"hint\" id=\"decide-needs-actor\">Pick the directory user to act as (above) to approve or reject.</p>"
            } else {
                ""
            },
        )
    } else {
        String::new()
    };
    let typed = refusal.as_ref().and_then(|r| r.typed);
    let option = |v: &str, chosen: Option<&str>| {
        let sel = if chosen == Some(v) { " selected" } else { "" };
        format!("<option value=\"{v}\"{sel}>{v}</option>")
    };
    let propose = if can_write {
        let kinds: String = ProposalKind::ALL
            .iter()
            .map(|k| option(k.as_str(), typed.map(|t| t.kind.trim())))
            .collect();
        let changes: String = Change::ALL
            .iter()
            .map(|c| option(c.as_str(), typed.map(|t| t.change.trim())))
            .collect();
        format!(
            r#"<form method="post" action="/console/proposals/new" class="card" id="propose">{csrf}
<h2>New proposal</h2>
<div class="grid2">
<div><label for="p-kind">Kind</label><select id="p-kind" name="kind">{kinds}</select></div>
<div><label for="p-change">Change</label><select id="p-change" name="change">{changes}</select></div>
<div><label for="p-object">Role, task, or (for a manager) the user</label><input id="p-object" name="object" value="{object}" required autocomplete="off"></div>
<div><label for="p-related">User or task it relates (for a manager: the new manager)</label><input id="p-related" name="related" value="{related}" required autocomplete="off"></div>
<div><label for="p-reason">Reason</label><input id="p-reason" name="reason" value="{reason}" autocomplete="off"></div>
<div><label for="p-grant">Grant expires (e.g. 30d, 2027-01-31; empty: never)</label><input id="p-grant" name="grant_expires" value="{grant}" autocomplete="off"></div>
</div>
<button type="submit" id="propose-submit">Propose</button>
<p class="hint">Proposed as the directory user you act as, like <code>warden propose … --as</code>.</p>
</form>"#,
            csrf = csrf_field(&sess.csrf),
            object = esc(typed.map_or("", |t| t.object.as_str())),
            related = esc(typed.map_or("", |t| t.related.as_str())),
            reason = esc(typed.map_or("", |t| t.reason.as_str())),
            grant = esc(typed.map_or("", |t| t.grant_expires.as_str())),
        )
    } else {
        String::new()
    };
    let body = format!(
        r#"{notice}{act_as}{acting_text}{filter}
<section id="proposals-open" data-live aria-labelledby="h-proposals-open"><h2 id="h-proposals-open">{n_open}</h2>
{o_search}{o_pager}
<div class="scroll"><table><thead><tr><th scope="col">Pick</th>{o_id}{o_kind}{o_initiator}<th scope="col">Reason</th>{o_expires}<th scope="col">Who may approve</th><th scope="col">Action</th></tr></thead><tbody>{orows}</tbody></table></div></section>
{decide}
{propose}
<section id="proposals-closed" data-live aria-labelledby="h-proposals-closed"><h2 id="h-proposals-closed">{n_closed}</h2>
{c_search}{c_pager}
<div class="scroll"><table><thead><tr><th scope="col">Id</th>{c_kind}<th scope="col">Initiator</th>{c_status}<th scope="col">Closed by</th><th scope="col">Justification / reason</th>{c_closed}</tr></thead><tbody>{crows}</tbody></table></div></section>"#,
        notice = match &refusal {
            Some(r) => r.problem.block(),
            None => notice(flash),
        },
        n_open = plural(open.total, "open proposal", "open proposals"),
        o_search = lq.search_form(path, "o_", "open", "Search open proposals"),
        o_pager = lq.pager(path, "o_", "open", &open, "open proposal", "open proposals"),
        o_id = lq.header(path, "o_", &open, "id", "Id"),
        o_kind = lq.header(path, "o_", &open, "kind", "Proposal"),
        o_initiator = lq.header(path, "o_", &open, "initiator", "Initiator"),
        o_expires = lq.header(path, "o_", &open, "expires", "Expires"),
        n_closed = plural(closed.total, "closed proposal", "closed proposals"),
        c_search = lq.search_form(path, "c_", "closed", "Search closed proposals"),
        c_pager = lq.pager(
            path,
            "c_",
            "closed",
            &closed,
            "closed proposal",
            "closed proposals"
        ),
        c_kind = lq.header(path, "c_", &closed, "kind", "Proposal"),
        c_status = lq.header(path, "c_", &closed, "status", "Status"),
        c_closed = lq.header(path, "c_", &closed, "closed", "Closed"),
    );
    let status = refusal.map_or(StatusCode::OK, |r| r.problem.status);
    Ok((
        status,
        page("Proposals", "/console/proposals", sess, seq, &body),
    )
        .into_response())
}

/// The proposals page showing `problem` (a form sent from it refused, nothing changed).
async fn refused(
    s: &ConsoleState,
    sess: &Session,
    problem: Problem,
    typed: Option<&ProposeForm>,
) -> ConsoleResult<Response> {
    let lq = ListQuery::default();
    render_inbox(s, sess, &lq, None, Some(Refusal { problem, typed })).await
}

/// Most directory users listed as matches of the act-as search.
const ACT_AS_MATCHES: usize = 20;

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
) -> ConsoleResult<Response> {
    // Whom the session acts as is the session's own setting (it changes nothing in
    // Warden); it is offered to sessions that may propose and decide. Each proposal and
    // decision made as that user is decided by its operation.
    let sess = form_session(&s, &headers, Scope::Write).await?;
    check_csrf(&sess, form.csrf.as_deref())?;
    let user = form.user.trim();
    let acting = if user.is_empty() {
        None
    } else {
        // Only an existing directory user can be acted as.
        match s.ops(&sess).dir_user(user).await {
            Ok(u) => Some(u.id),
            Err(e) => return refused(&s, &sess, Problem::of(&e), None).await,
        }
    };
    s.set_acting(&headers, acting);
    Ok(Redirect::to("/console/proposals").into_response())
}

/// `POST /console/proposals/decide`: fields `csrf`, `justification`, `reason`, and either
/// `one=confirm:ID` / `one=reject:ID` (a row's button) or `batch=confirm|reject` with the
/// checked `id`s. Each proposal is closed in its own transaction; the page then shows a
/// result line per id.
pub(crate) async fn decide(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    let w = s.ops(&sess);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    check_csrf(&sess, field("csrf"))?;
    let Some(actor) = sess.acting.clone() else {
        let p = Problem::invalid("pick the directory user to act as first (the \"Act as\" form)");
        return refused(&s, &sess, p, None).await;
    };
    let (action, ids): (&str, Vec<String>) = match (field("one"), field("batch")) {
        (Some(one), _) => match one.split_once(':') {
            Some((a, id)) if !id.is_empty() => (a, vec![id.to_string()]),
            _ => {
                let p = Problem::invalid(format!("bad action {one:?}"));
                return refused(&s, &sess, p, None).await;
            }
        },
        (None, Some(b)) => (
            b,
            fields
                .iter()
                .filter(|(k, v)| k == "id" && !v.is_empty())
                .map(|(_, v)| v.clone())
                .collect(),
        ),
        (None, None) => {
            return refused(&s, &sess, Problem::invalid("no action chosen"), None).await;
        }
    };
    if ids.is_empty() {
        let p = Problem::invalid("select at least one proposal");
        return refused(&s, &sess, p, None).await;
    }
    if ids.len() > MAX_BATCH {
        let p = Problem::invalid(format!("at most {MAX_BATCH} proposals at once"));
        return refused(&s, &sess, p, None).await;
    }
    let justification = field("justification")
        .map(str::trim)
        .filter(|j| !j.is_empty());
    let reason = field("reason").map(str::trim).unwrap_or("");
    let mut lines = Vec::new();
    let mut all_ok = true;
    match action {
        "confirm" => {
            for r in w.confirm_many(&actor, &ids, justification).await {
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
                match w.reject(&actor, id, reason).await {
                    Ok(_) => lines.push(format!("{id}: rejected as {actor}")),
                    Err(e) => {
                        all_ok = false;
                        lines.push(format!("{id}: not rejected: {e}"));
                    }
                }
            }
        }
        other => {
            let p = Problem::invalid(format!("unknown action {other:?}"));
            return refused(&s, &sess, p, None).await;
        }
    }
    tracing::info!(token_id = %sess.token_id, acting = %actor, action, count = ids.len(), "console proposals");
    s.set_flash(
        &headers,
        Flash {
            ok: all_ok,
            text: lines.join("\n"),
        },
    );
    Ok(Redirect::to("/console/proposals").into_response())
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
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    let w = s.ops(&sess);
    check_csrf(&sess, form.csrf.as_deref())?;
    let Some(actor) = sess.acting.clone() else {
        let p = Problem::invalid("pick the directory user to act as first (the \"Act as\" form)");
        return refused(&s, &sess, p, Some(&form)).await;
    };
    let input = match proposal_input(&form) {
        Ok(input) => input,
        Err(p) => return refused(&s, &sess, p, Some(&form)).await,
    };
    let flash = match w.propose(&actor, input).await {
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
    Ok(Redirect::to("/console/proposals").into_response())
}

/// The proposal the form describes, or what is wrong with it.
fn proposal_input(form: &ProposeForm) -> Result<ProposalInput, Problem> {
    let kind: ProposalKind = form
        .kind
        .trim()
        .parse()
        .map_err(|_| Problem::invalid(format!("unknown proposal kind {:?}", form.kind)))?;
    let change: Change = form
        .change
        .trim()
        .parse()
        .map_err(|_| Problem::invalid(format!("unknown change {:?}", form.change)))?;
    let (object, related) = (form.object.trim(), form.related.trim());
    if object.is_empty() || related.is_empty() {
        return Err(Problem::invalid(
            "a proposal names both what it changes and whom or what it relates",
        ));
    }
    let grant_expires_at = match form.grant_expires.trim() {
        "" => None,
        text => warden_core::parse::parse_expiry(text, warden_ops::now())
            .map_err(|e| Problem::invalid(format!("grant expiry: {e}")))?,
    };
    let reason = Some(form.reason.trim().to_string()).filter(|r| !r.is_empty());
    Ok(ProposalInput {
        kind,
        change,
        object: object.to_string(),
        related: related.to_string(),
        reason,
        grant_expires_at,
        expires_at: None,
    })
}
