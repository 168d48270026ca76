//! The console's onboarding and rooms views: onboarding packages grouped by tenant with
//! their state (issued → delivered → activated, or revoked) and a revoke button, and the
//! rooms of the chat gateway with their rules (read-only).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::pages::{account_link, csrf_field, seq, user_link};
use super::render::{esc, page, seg, when};
use super::{
    ConsoleError, ConsoleResult, ConsoleState, CsrfForm, Problem, Session, check_csrf, session,
};
use warden_ops::overview::RoomSummary;
use warden_ops::tokens::Scope;

/// Query of the onboarding page: one tenant only.
#[derive(Deserialize)]
pub(crate) struct TenantFilter {
    tenant: Option<String>,
}

fn state_class(state: &str) -> &'static str {
    match state {
        "activated" => "ok",
        "revoked" => "bad",
        _ => "warn",
    }
}

/// `GET /console/onboarding[?tenant=SLUG]`.
pub(crate) async fn packages(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Query(q): Query<TenantFilter>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    let tenant = q.tenant.as_deref().map(str::trim).filter(|t| !t.is_empty());
    render_packages(&s, &sess, tenant, None).await
}

/// The onboarding page (of one tenant, or all), with the problem of a form sent from it
/// when it was refused (the page then has the problem's status).
async fn render_packages(
    s: &ConsoleState,
    sess: &Session,
    tenant: Option<&str>,
    problem: Option<&Problem>,
) -> ConsoleResult<Response> {
    let w = s.ops(sess);
    let seq = seq(&w).await?;
    let list = w.list_packages(tenant).await?;
    let tenants = w.list_tenants().await?;
    let account_of: BTreeMap<&str, &str> = tenants
        .iter()
        .map(|t| (t.slug.as_str(), t.account.as_str()))
        .collect();
    let mut by_tenant: BTreeMap<&str, Vec<_>> = BTreeMap::new();
    for p in &list {
        by_tenant.entry(p.tenant.as_str()).or_default().push(p);
    }
    let mut sections = String::new();
    for (slug, pkgs) in &by_tenant {
        let mut rows = String::new();
        for p in pkgs {
            let user = match account_of.get(slug) {
                Some(acc) => user_link(acc, &p.user),
                None => esc(&p.user),
            };
            let revoke = if sess.offers(Scope::Write) && p.state != "revoked" {
                format!(
                    "<form class=\"inline\" method=\"post\" action=\"/console/onboarding/{}/revoke\">{}<button type=\"submit\" class=\"danger\" aria-label=\"Revoke package {}\">Revoke</button></form>",
                    seg(&p.id),
                    csrf_field(&sess.csrf),
                    esc(&p.id)
                )
            } else {
                String::new()
            };
            let _ = write!(
                rows,
                "<tr id=\"pkg-{id}\"><td><code>{id}</code></td><td>{comp} @ {site}</td><td class=\"{cls}\" data-state=\"{state}\">{state}</td><td>{user}</td><td>{issued}</td><td>{delivered}</td><td>{activated}</td><td>{refused}</td><td>{revoke}</td></tr>",
                id = esc(&p.id),
                comp = esc(&p.component),
                site = esc(&p.site),
                cls = state_class(&p.state),
                state = esc(&p.state),
                issued = esc(&when(Some(p.issued_at))),
                delivered = esc(&when(p.delivered_at)),
                activated = esc(&when(p.activated_at)),
                refused = p.refused_downloads,
            );
        }
        let account = account_of
            .get(slug)
            .map(|a| format!(" (account {})", account_link(a)))
            .unwrap_or_default();
        let _ = write!(
            sections,
            r#"<section aria-labelledby="h-t-{id}"><h2 id="h-t-{id}">Tenant {slug}{account}</h2>
<div class="scroll"><table><thead><tr><th scope="col">Package</th><th scope="col">Collector</th><th scope="col">State</th><th scope="col">User</th><th scope="col">Issued</th><th scope="col">Delivered</th><th scope="col">Activated</th><th scope="col">Refused downloads</th><th scope="col">Action</th></tr></thead><tbody>{rows}</tbody></table></div></section>"#,
            id = seg(slug),
            slug = esc(slug),
        );
    }
    if sections.is_empty() {
        sections = "<p class=\"muted\">No onboarding packages. Make one with <code>warden onboarding create</code> or <code>POST /v1/onboarding</code>.</p>".into();
    }
    let body = format!(
        r#"{problem}<p>A package goes <strong>issued</strong> (made, one-time download token handed out) → <strong>delivered</strong> (downloaded) → <strong>activated</strong> (its collector connected). Revoking one revokes its collector user in the tenant account and its certificate.</p>
<section id="packages" data-live aria-labelledby="h-packages"><h2 id="h-packages">{n} packages{filter}</h2>
{sections}
</section>"#,
        problem = problem.map(Problem::block).unwrap_or_default(),
        n = list.len(),
        filter = tenant
            .map(|t| format!(" of tenant {}", esc(t)))
            .unwrap_or_default(),
    );
    let status = problem.map_or(StatusCode::OK, |p| p.status);
    let html = page(
        "Onboarding packages",
        "/console/onboarding",
        sess,
        seq,
        &body,
    );
    Ok((status, html).into_response())
}

/// `POST /console/onboarding/{id}/revoke`.
pub(crate) async fn revoke_package(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    check_csrf(&sess, form.csrf.as_deref())?;
    match s.ops(&sess).revoke_package(&id).await {
        Ok(p) => Ok(
            Redirect::to(&format!("/console/onboarding?tenant={}", seg(&p.tenant))).into_response(),
        ),
        Err(e) => render_packages(&s, &sess, None, Some(&Problem::of(&e))).await,
    }
}

/// Rooms shown on the rooms page.
const ROOMS_PAGE: i64 = 500;

/// `GET /console/rooms`.
pub(crate) async fn rooms(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
) -> ConsoleResult<Html<String>> {
    let sess = session(&s, &headers).await?;
    let w = s.ops(&sess);
    let seq = seq(&w).await?;
    let list = w.rooms_overview(ROOMS_PAGE).await?;
    let mut rows = String::new();
    for RoomSummary { room: r, rules } in &list {
        let _ = write!(
            rows,
            "<tr id=\"room-{id}\"><td><a href=\"/console/rooms/{id}\">{name}</a></td><td>{kind}</td><td><code>{owner}</code></td><td>{rules}</td><td>{msgs}</td><td>{created}</td></tr>",
            id = r.id,
            name = esc(&r.name),
            kind = esc(&r.kind),
            owner = esc(&r.owner_user),
            msgs = r.last_message_id,
            created = esc(&when(Some(r.created_at))),
        );
    }
    if rows.is_empty() {
        rows = "<tr><td colspan=\"6\" class=\"muted\">no rooms</td></tr>".into();
    }
    let body = format!(
        r#"<section id="rooms" data-live aria-labelledby="h-rooms"><h2 id="h-rooms">{n} rooms</h2>
<div class="scroll"><table><thead><tr><th scope="col">Room</th><th scope="col">Kind</th><th scope="col">Owner</th><th scope="col">Rules</th><th scope="col">Messages</th><th scope="col">Created</th></tr></thead><tbody>{rows}</tbody></table></div>
<p class="hint">Rooms belong to the chat gateway (<code>/rooms</code>, <code>/chat</code>); they are changed there, by their members.</p></section>"#,
        n = list.len(),
    );
    Ok(page("Rooms", "/console/rooms", &sess, seq, &body))
}

/// `GET /console/rooms/{id}`: a room's rules (who may read, write, ban, administer).
pub(crate) async fn room(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ConsoleResult<Html<String>> {
    let sess = session(&s, &headers).await?;
    let w = s.ops(&sess);
    let seq = seq(&w).await?;
    let id: i64 = id
        .parse()
        .map_err(|_| ConsoleError::Invalid(format!("{id:?} is not a room id")))?;
    let (r, rules) = w.room_detail(id).await?;
    let mut rows = String::new();
    for rule in &rules {
        let mut rights = Vec::new();
        for (letter, word) in [
            ('r', "read"),
            ('w', "write"),
            ('a', "administer"),
            ('b', "banned"),
        ] {
            if rule.permissions.contains(letter) {
                rights.push(word);
            }
        }
        let _ = write!(
            rows,
            "<tr><td><code>{}</code></td><td><code>{}</code> ({})</td><td>{}</td><td>{}</td></tr>",
            esc(&rule.entity_uuid),
            esc(&rule.permissions),
            rights.join(", "),
            rule.level,
            esc(&when(Some(rule.updated_at))),
        );
    }
    if rows.is_empty() {
        rows = "<tr><td colspan=\"4\" class=\"muted\">no rules</td></tr>".into();
    }
    let body = format!(
        r#"<dl class="facts"><dt>Kind</dt><dd>{kind}</dd><dt>Owner user</dt><dd><code>{ou}</code></dd><dt>Owner entity</dt><dd><code>{oe}</code></dd>
<dt>Administering level</dt><dd>{lvl}</dd><dt>Rule cap</dt><dd>{cap}</dd><dt>Messages</dt><dd>{msgs}</dd><dt>Created</dt><dd>{created}</dd></dl>
<section id="room-rules" data-live aria-labelledby="h-rules"><h2 id="h-rules">{n} rules (members)</h2>
<div class="scroll"><table><thead><tr><th scope="col">User or entity</th><th scope="col">Rights</th><th scope="col">From level</th><th scope="col">Changed</th></tr></thead><tbody>{rows}</tbody></table></div></section>
<p><a href="/console/rooms">All rooms</a></p>"#,
        kind = esc(&r.kind),
        ou = esc(&r.owner_user),
        oe = esc(&r.owner_entity),
        lvl = r.level_admin,
        cap = r.rule_cap,
        msgs = r.last_message_id,
        created = esc(&when(Some(r.created_at))),
        n = rules.len(),
    );
    Ok(page(
        &format!("Room {}", r.name),
        "/console/rooms",
        &sess,
        seq,
        &body,
    ))
}
