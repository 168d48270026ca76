//! The console's onboarding and rooms views: the onboarding packages (of every tenant or
//! one), paged, with their state (issued → delivered → activated, or revoked) and a
//! revoke button, and the rooms of the chat gateway, paged, with their rules (read-only).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::list::ListQuery;
use super::pages::{account_link, csrf_field, seq, tenant_link, user_link};
use super::render::{count, esc, page, plural, seg, when};
use super::{
    ConsoleError, ConsoleResult, ConsoleState, CsrfForm, Problem, Session, check_csrf, session,
};
use warden_ops::overview::RoomSummary;
use warden_ops::tokens::Scope;

fn state_class(state: &str) -> &'static str {
    match state {
        "activated" => "ok",
        "revoked" => "bad",
        _ => "warn",
    }
}

/// `GET /console/onboarding[?tenant=SLUG&q=…&sort=issued|id|tenant|state|user&dir=…&page=N]`:
/// the packages (of one tenant), newest first unless sorted otherwise, paged.
pub(crate) async fn packages(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    render_packages(&s, &sess, &ListQuery::new(q), None).await
}

/// The onboarding page (the page of the list `lq` asks for, of the tenant it names), with
/// the problem of a form sent from it when it was refused (the page then has the
/// problem's status).
async fn render_packages(
    s: &ConsoleState,
    sess: &Session,
    lq: &ListQuery,
    problem: Option<&Problem>,
) -> ConsoleResult<Response> {
    let w = s.ops(sess);
    let seq = seq(&w).await?;
    let tenant = lq.get("tenant");
    // Newest first unless another order is asked for.
    let asked = if lq.get("sort").is_none() {
        lq.clone()
            .or_default("sort", "issued")
            .or_default("dir", "desc")
    } else {
        lq.clone()
    };
    let list = w.packages_page(tenant, &asked.request("")?).await?;
    let tenants = w.list_tenants().await?;
    let account_of: BTreeMap<&str, &str> = tenants
        .iter()
        .map(|t| (t.slug.as_str(), t.account.as_str()))
        .collect();
    let path = "/console/onboarding";
    let mut rows = String::new();
    for p in &list.items {
        let user = match account_of.get(p.tenant.as_str()) {
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
            "<tr id=\"pkg-{id}\"><td><code>{id}</code></td><td>{tenant}</td><td>{comp} @ {site}</td><td class=\"{cls}\" data-state=\"{state}\">{state}</td><td>{user}</td><td>{issued}</td><td>{delivered}</td><td>{activated}</td><td>{refused}</td><td>{revoke}</td></tr>",
            id = esc(&p.id),
            tenant = tenant_link(&p.tenant),
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
    if rows.is_empty() {
        rows = if list.total == 0 {
            "<tr><td colspan=\"10\" class=\"muted\">No onboarding packages. Make one on a tenant's page, with <code>warden onboarding create</code> or <code>POST /v1/onboarding</code>.</td></tr>".into()
        } else {
            "<tr><td colspan=\"10\" class=\"muted\">no packages match</td></tr>".into()
        };
    }
    let of_tenant = match tenant {
        Some(t) => {
            let account = account_of
                .get(t)
                .map(|a| format!(" (account {})", account_link(a)))
                .unwrap_or_default();
            format!(
                "<p class=\"filters\" id=\"packages-tenant\">Tenant {}{account}. <a href=\"{}\">Every tenant's packages</a></p>",
                tenant_link(t),
                esc(&lq.href(path, &[("tenant", None), ("page", None)]))
            )
        }
        None => String::new(),
    };
    let body = format!(
        r#"{problem}<p>A package goes <strong>issued</strong> (made, one-time download token handed out) → <strong>delivered</strong> (downloaded) → <strong>activated</strong> (its collector connected). Revoking one revokes its collector user in the tenant account and its certificate.</p>
{of_tenant}{search}
<section id="packages" data-live aria-labelledby="h-packages"><h2 id="h-packages">{n}{filter}</h2>
{pager}
<div class="scroll"><table><thead><tr>{h_id}{h_tenant}<th scope="col">Collector</th>{h_state}{h_user}{h_issued}<th scope="col">Delivered</th><th scope="col">Activated</th><th scope="col">Refused downloads</th><th scope="col">Action</th></tr></thead><tbody>{rows}</tbody></table></div>
{pager_end}
</section>"#,
        problem = problem.map(Problem::block).unwrap_or_default(),
        n = plural(list.total, "onboarding package", "onboarding packages"),
        filter = tenant
            .map(|t| format!(" of tenant {}", esc(t)))
            .unwrap_or_default(),
        search = lq.search_form(
            path,
            "",
            "packages",
            "Search packages (id, tenant, collector, site, user, state)"
        ),
        pager = lq.pager(path, "", "packages", &list, "package", "packages"),
        pager_end = lq.pager(path, "", "packages-end", &list, "package", "packages"),
        h_id = lq.header(path, "", &list, "id", "Package"),
        h_tenant = lq.header(path, "", &list, "tenant", "Tenant"),
        h_state = lq.header(path, "", &list, "state", "State"),
        h_user = lq.header(path, "", &list, "user", "User"),
        h_issued = lq.header(path, "", &list, "issued", "Issued"),
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
        Err(e) => render_packages(&s, &sess, &ListQuery::default(), Some(&Problem::of(&e))).await,
    }
}

/// `GET /console/rooms[?q=…&sort=id|name|kind|owner|created&dir=…&page=N]`: the chat
/// gateway's rooms, paged.
pub(crate) async fn rooms(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> ConsoleResult<Html<String>> {
    let sess = session(&s, &headers).await?;
    let w = s.ops(&sess);
    let seq = seq(&w).await?;
    let lq = ListQuery::new(q);
    let list = w.rooms_page(&lq.request("")?).await?;
    let path = "/console/rooms";
    let mut rows = String::new();
    for RoomSummary { room: r, rules } in &list.items {
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
        rows = if list.total == 0 {
            "<tr><td colspan=\"6\" class=\"muted\">no rooms</td></tr>".into()
        } else {
            "<tr><td colspan=\"6\" class=\"muted\">no rooms match</td></tr>".into()
        };
    }
    let body = format!(
        r#"{search}<section id="rooms" data-live aria-labelledby="h-rooms"><h2 id="h-rooms">{n} rooms</h2>
{pager}
<div class="scroll"><table><thead><tr>{h_name}{h_kind}{h_owner}<th scope="col">Rules</th><th scope="col">Messages</th>{h_created}</tr></thead><tbody>{rows}</tbody></table></div>
{pager_end}
<p class="hint">Rooms belong to the chat gateway (<code>/rooms</code>, <code>/chat</code>); they are changed there, by their members.</p></section>"#,
        n = count(list.total),
        search = lq.search_form(path, "", "rooms", "Search rooms (name, kind, owner)"),
        pager = lq.pager(path, "", "rooms", &list, "room", "rooms"),
        pager_end = lq.pager(path, "", "rooms-end", &list, "room", "rooms"),
        h_name = lq.header(path, "", &list, "name", "Room"),
        h_kind = lq.header(path, "", &list, "kind", "Kind"),
        h_owner = lq.header(path, "", &list, "owner", "Owner"),
        h_created = lq.header(path, "", &list, "created", "Created"),
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
