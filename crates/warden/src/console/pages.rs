//! The console's pages and form actions. Each page reads through [`warden_ops`] and
//! renders complete HTML (the parts that change are `data-live` sections the script
//! refreshes); each action checks the scope and CSRF token, calls the same operation as
//! the CLI, and redirects to the page that shows the result.

use std::fmt::Write as _;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use nats_jwt::{Permission, Subject};
use serde::Deserialize;
use warden_core::permcheck::{self, Direction};
use warden_core::{AccountSpec, UserSpec};

use super::account_model::{self, Forms};
use super::list::ListQuery;
use super::render::{count, esc, limit, page, plural, seg, short_key, size, when};
use super::{
    ConsoleError, ConsoleResult, ConsoleState, Problem, Session, check_csrf, session, svg,
};
use warden_core::device::DeviceState;
use warden_ops::page::AccountKind;
use warden_ops::tokens::Scope;
use warden_ops::{UserView, Warden};

/// The ledger position the page reflects (the ledger has no gaps: its length).
pub(super) async fn seq(w: &Warden) -> ConsoleResult<i64> {
    Ok(w.ledger_position().await?)
}

pub(super) fn account_link(name: &str) -> String {
    format!(
        "<a href=\"/console/accounts/{}\">{}</a>",
        seg(name),
        esc(name)
    )
}

pub(super) fn user_link(account: &str, user: &str) -> String {
    format!(
        "<a href=\"/console/accounts/{}/users/{}\">{}</a>",
        seg(account),
        seg(user),
        esc(user)
    )
}

pub(super) fn csrf_field(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(csrf)
    )
}

pub(super) fn subjects(list: &[Subject]) -> String {
    if list.is_empty() {
        "<span class=\"muted\">—</span>".into()
    } else {
        list.iter()
            .map(|s| format!("<code>{}</code>", esc(s.as_str())))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

pub(super) fn permission_rows(label: &str, p: &Permission) -> String {
    format!(
        "<tr><th scope=\"row\">{label} allow</th><td>{}</td></tr><tr><th scope=\"row\">{label} deny</th><td>{}</td></tr>",
        subjects(&p.allow),
        subjects(&p.deny)
    )
}

// ---------------------------------------------------------------------------------------
// Overview
// ---------------------------------------------------------------------------------------

/// `GET /console`.
pub(crate) async fn overview(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
) -> ConsoleResult<Html<String>> {
    let sess = session(&s, &headers).await?;
    let w = s.ops(&sess);
    let status = w.status().await?;
    let seq = seq(&w).await?;
    let op = status.operator.as_ref();
    let sys = w
        .system_account_name()
        .await?
        .map(|name| account_link(&name))
        .unwrap_or_else(|| "—".into());
    let outbox = super::sync::outbox_facts(&w).await?;
    let body = format!(
        r#"<section id="overview" data-live aria-labelledby="h-overview">
<h2 id="h-overview">At a glance</h2>
<dl class="facts">
<dt>Operator</dt><dd>{op_name} <code class="key">{op_key}</code></dd>
<dt>System account</dt><dd>{sys}</dd>
<dt>Accounts</dt><dd id="count-accounts">{accounts}</dd>
<dt>Users</dt><dd id="count-users">{users}</dd>
<dt>Ledger events</dt><dd>{events}</dd>
{outbox}
<dt>Database</dt><dd>{backend}</dd>
</dl>
</section>
<p><a href="/console/accounts">Accounts</a> · <a href="/console/hierarchy">Hierarchy</a> · <a href="/console/sync">NATS sync and drift</a> · <a href="/console/ledger">Ledger</a></p>"#,
        op_name = esc(op.map_or("(not initialised)", |o| o.name.as_str())),
        op_key = esc(op.map_or("", |o| o.public_key.as_str())),
        accounts = status.accounts,
        users = status.users,
        events = status.ledger_events,
        backend = esc(&status.backend),
    );
    Ok(page("Overview", "/console", &sess, seq, &body))
}

// ---------------------------------------------------------------------------------------
// Accounts
// ---------------------------------------------------------------------------------------

/// `GET /console/accounts[?q=…&sort=name|users|kind|created|updated&dir=asc|desc&page=N&per=N&kind=…]`.
pub(crate) async fn accounts(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    render_accounts(&s, &sess, &ListQuery::new(q), &NewAccount::default(), None).await
}

/// The accounts page (the page of the list `lq` asks for), its new-account form filled
/// with `typed`, and the problem of that form when it was sent and refused (the page then
/// has the problem's status).
async fn render_accounts(
    s: &ConsoleState,
    sess: &Session,
    lq: &ListQuery,
    typed: &NewAccount,
    problem: Option<&Problem>,
) -> ConsoleResult<Response> {
    let w = s.ops(sess);
    let seq = seq(&w).await?;
    let kind: Option<AccountKind> = lq.get("kind").map(str::parse).transpose()?;
    let list = w.accounts_page(kind, &lq.request("")?).await?;
    let path = "/console/accounts";
    let mut rows = String::new();
    for e in &list.items {
        let a = &e.account;
        let _ = write!(
            rows,
            "<tr id=\"account-{}\"><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.name),
            account_link(&a.name),
            match e.kind {
                AccountKind::Plain => String::new(),
                k => format!("<span class=\"tag\">{}</span>", k.as_str()),
            },
            count(a.users),
            short_key(&a.public_key),
            esc(a.spec.description.as_deref().unwrap_or("")),
        );
    }
    if rows.is_empty() {
        rows = "<tr><td colspan=\"5\" class=\"muted\">no accounts match</td></tr>".into();
    }
    let kinds: String = std::iter::once(("", "all kinds"))
        .chain(AccountKind::ALL.iter().map(|k| (k.as_str(), k.as_str())))
        .map(|(v, label)| {
            if lq.get("kind").unwrap_or("") == v {
                format!("<strong>{label}</strong>")
            } else {
                let v = (!v.is_empty()).then_some(v);
                format!(
                    "<a href=\"{}\">{label}</a>",
                    esc(&lq.href(path, &[("kind", v), ("page", None)]))
                )
            }
        })
        .collect::<Vec<_>>()
        .join(" · ");
    let heading = match kind {
        None => plural(list.total, "account", "accounts"),
        Some(k) => plural(
            list.total,
            &format!("{} account", k.as_str()),
            &format!("{} accounts", k.as_str()),
        ),
    };
    // A refused form is shown again with what was typed, whoever sent it.
    let form = if sess.offers(Scope::Write) || problem.is_some() {
        format!(
            r#"<section aria-labelledby="h-new-account" class="card">
<h2 id="h-new-account">New account</h2>
{problem}<form method="post" action="/console/accounts">
{csrf}
<label for="account-name">Name</label>
<input id="account-name" name="name" value="{name}" required autocomplete="off">
<label for="account-description">Description (optional)</label>
<input id="account-description" name="description" value="{description}" autocomplete="off">
<button type="submit">Create account</button>
</form>
</section>"#,
            csrf = csrf_field(&sess.csrf),
            problem = problem.map(Problem::block).unwrap_or_default(),
            name = esc(&typed.name),
            description = esc(&typed.description),
        )
    } else {
        String::new()
    };
    let body = format!(
        r#"{search}<p class="filters">Kind: {kinds}</p>
<section id="accounts" data-live aria-labelledby="h-accounts">
<h2 id="h-accounts">{heading}</h2>
{pager}
<div class="scroll"><table>
<thead><tr>{h_name}{h_kind}{h_users}<th scope="col">Public key</th><th scope="col">Description</th></tr></thead>
<tbody>{rows}</tbody>
</table></div>
{pager_end}
</section>
{form}"#,
        search = lq.search_form(
            path,
            "",
            "accounts",
            "Search accounts (name, key, description)"
        ),
        pager = lq.pager(path, "", "accounts", &list, "account", "accounts"),
        pager_end = lq.pager(path, "", "accounts-end", &list, "account", "accounts"),
        h_name = lq.header(path, "", &list, "name", "Name"),
        h_kind = lq.header(path, "", &list, "kind", "Kind"),
        h_users = lq.header(path, "", &list, "users", "Users"),
    );
    let status = problem.map_or(StatusCode::OK, |p| p.status);
    Ok((
        status,
        page("Accounts", "/console/accounts", sess, seq, &body),
    )
        .into_response())
}

#[derive(Deserialize, Default)]
pub(crate) struct NewAccount {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    csrf: Option<String>,
}

/// `POST /console/accounts`.
pub(crate) async fn add_account(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Form(form): Form<NewAccount>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    let w = s.ops(&sess);
    check_csrf(&sess, form.csrf.as_deref())?;
    let description = form.description.trim();
    let spec = AccountSpec {
        description: (!description.is_empty()).then(|| description.to_string()),
        ..AccountSpec::default()
    };
    match w.add_account(form.name.trim(), spec).await {
        Ok(view) => {
            Ok(Redirect::to(&format!("/console/accounts/{}", seg(&view.name))).into_response())
        }
        Err(e) => {
            let p = Problem::of(&e);
            render_accounts(&s, &sess, &ListQuery::default(), &form, Some(&p)).await
        }
    }
}

/// `GET /console/accounts/{name}[?q=…&sort=name|state|expires|created&dir=…&page=N]`
/// (the query pages the account's users).
pub(crate) async fn account(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    render_account(
        &s,
        &sess,
        &name,
        &ListQuery::new(q),
        &NewUser::default(),
        None,
        &Forms::default(),
    )
    .await
}

/// The account page with the account-model forms as `forms` says (typed values, problem).
pub(super) async fn render_account_model(
    s: &ConsoleState,
    sess: &Session,
    name: &str,
    forms: &Forms,
) -> ConsoleResult<Response> {
    let lq = ListQuery::default();
    render_account(s, sess, name, &lq, &NewUser::default(), None, forms).await
}

/// The account page, its new-user form filled with `typed`, and the problem of that form
/// when it was sent and refused (the page then has the problem's status).
async fn render_account(
    s: &ConsoleState,
    sess: &Session,
    name: &str,
    lq: &ListQuery,
    typed: &NewUser,
    problem: Option<&Problem>,
    forms: &Forms,
) -> ConsoleResult<Response> {
    let w = s.ops(sess);
    let seq = seq(&w).await?;
    let a = w.account(name).await?;
    let users = w.users_page(&a.name, &lq.request("")?).await?;
    let all = w.account_names_and_exporters().await?;
    let l = &a.spec.limits;
    let limits = format!(
        "<dl class=\"facts\"><dt>Connections</dt><dd>{}</dd><dt>Leaf connections</dt><dd>{}</dd>\
         <dt>Subscriptions</dt><dd>{}</dd><dt>Payload</dt><dd>{}</dd><dt>Data</dt><dd>{}</dd>\
         <dt>Imports</dt><dd>{}</dd><dt>Exports</dt><dd>{}</dd><dt>Wildcard exports</dt><dd>{}</dd>\
         <dt>Bearer users refused</dt><dd>{}</dd><dt>JetStream streams</dt><dd>{}</dd>\
         <dt>JetStream disk</dt><dd>{}</dd><dt>JetStream memory</dt><dd>{}</dd></dl>",
        limit(l.conn),
        limit(l.leaf),
        limit(l.subs),
        size(l.payload),
        size(l.data),
        limit(l.imports),
        limit(l.exports),
        if l.wildcards { "yes" } else { "no" },
        if l.disallow_bearer { "yes" } else { "no" },
        limit(l.jetstream.streams),
        size(l.jetstream.disk_storage),
        size(l.jetstream.mem_storage),
    );
    let model = account_model::sections(sess, &w, &a, &all, forms).await?;
    let mut user_rows = String::new();
    for u in &users.items {
        let _ = write!(
            user_rows,
            "<tr id=\"user-{}\"><td>{}</td><td>{}</td><td>{}</td><td><code class=\"key\">{}</code></td></tr>",
            esc(&u.name),
            user_link(&a.name, &u.name),
            if u.revoked_at.is_some() {
                "<span class=\"bad\">revoked</span>"
            } else {
                "active"
            },
            esc(&when(u.spec.expires_at)),
            short_key(&u.public_key)
        );
    }
    let form = if (sess.offers(Scope::Write) || problem.is_some()) && !a.system {
        format!(
            r#"<section aria-labelledby="h-new-user" class="card">
<h2 id="h-new-user">New user</h2>
{problem}<form method="post" action="/console/accounts/{acc}/users">
{csrf}
<label for="user-name">Name</label>
<input id="user-name" name="name" value="{name}" required autocomplete="off">
{roles}<label for="user-pub">Publish allow (subjects, separated by spaces or commas; empty: all)</label>
<input id="user-pub" name="pub_allow" value="{pub_allow}" autocomplete="off" placeholder="orders.>">
<label for="user-sub">Subscribe allow (subjects; empty: all)</label>
<input id="user-sub" name="sub_allow" value="{sub_allow}" autocomplete="off" placeholder="orders.> _INBOX.>">
<button type="submit">Create user</button>
</form>
</section>"#,
            acc = seg(&a.name),
            csrf = csrf_field(&sess.csrf),
            problem = problem.map(Problem::block).unwrap_or_default(),
            name = esc(&typed.name),
            pub_allow = esc(&typed.pub_allow),
            sub_allow = esc(&typed.sub_allow),
            roles = account_model::role_options(&a, typed.role.trim()),
        )
    } else {
        String::new()
    };
    let usage = super::sync::usage_section(s, &w, &a).await;
    let manage = if sess.offers(Scope::Write) {
        let base = format!("/console/accounts/{}", seg(&a.name));
        format!(
            "<p class=\"actions\"><a class=\"button\" id=\"edit-account\" href=\"{base}/edit\">Edit account</a>{}</p>",
            if a.system {
                String::new()
            } else {
                format!(
                    " <a class=\"button danger\" id=\"delete-account\" href=\"{base}/delete\">Delete account…</a>"
                )
            }
        )
    } else {
        String::new()
    };
    let upath = format!("/console/accounts/{}", seg(&a.name));
    let or_none = |rows: String, cols: usize| {
        if rows.is_empty() {
            format!("<tr><td colspan=\"{cols}\" class=\"muted\">none</td></tr>")
        } else {
            rows
        }
    };
    let body = format!(
        r#"<p><code class="key">{key}</code>{system}</p>
{description}{manage}
<section aria-labelledby="h-limits"><h2 id="h-limits">Limits</h2>{limits}</section>
{usage}
{model}
<section id="users" data-live aria-labelledby="h-users"><h2 id="h-users">{n}</h2>
{search}{pager}
<div class="scroll"><table><thead><tr>{h_name}{h_state}{h_expires}<th scope="col">Public key</th></tr></thead><tbody>{user_rows}</tbody></table></div></section>
{form}"#,
        key = esc(&a.public_key),
        description = a
            .spec
            .description
            .as_deref()
            .map(|d| format!("<p id=\"account-description\">{}</p>", esc(d)))
            .unwrap_or_default(),
        system = if a.system {
            " <span class=\"tag\">system account</span>"
        } else {
            ""
        },
        n = plural(users.total, "user", "users"),
        search = if users.total > users.per || lq.get("q").is_some() {
            lq.search_form(&upath, "", "users", "Search users (name, key)")
        } else {
            String::new()
        },
        pager = lq.pager(&upath, "", "users", &users, "user", "users"),
        h_name = lq.header(&upath, "", &users, "name", "Name"),
        h_state = lq.header(&upath, "", &users, "state", "State"),
        h_expires = lq.header(&upath, "", &users, "expires", "Expires"),
        user_rows = or_none(user_rows, 4),
    );
    let status = problem
        .map(|p| p.status)
        .or(forms.status())
        .unwrap_or(StatusCode::OK);
    let html = page(
        &format!("Account {}", a.name),
        "/console/accounts",
        sess,
        seq,
        &body,
    );
    Ok((status, html).into_response())
}

// ---------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------

/// Subjects typed into a form field, separated by spaces, commas or lines (an empty entry
/// between commas is refused).
pub(super) fn parse_subjects(field: &str, text: &str) -> Result<Vec<Subject>, Problem> {
    super::form_entries(text, true)
        .map_err(|e| Problem::invalid(format!("{field}: {e}")))?
        .iter()
        .map(|t| Subject::new(t).map_err(|e| Problem::invalid(format!("{field}: {e}"))))
        .collect()
}

#[derive(Deserialize, Default)]
pub(crate) struct NewUser {
    #[serde(default)]
    name: String,
    #[serde(default)]
    pub_allow: String,
    #[serde(default)]
    sub_allow: String,
    /// A role of the account: the user is issued by the role's scoped key.
    #[serde(default)]
    role: String,
    #[serde(default)]
    csrf: Option<String>,
}

/// `POST /console/accounts/{name}/users`.
pub(crate) async fn add_user(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path(account): Path<String>,
    Form(form): Form<NewUser>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    check_csrf(&sess, form.csrf.as_deref())?;
    if !form.role.trim().is_empty() {
        // A role's user: the template gives its permissions (`Warden::add_user_by_role`).
        let problem = if !form.pub_allow.trim().is_empty() || !form.sub_allow.trim().is_empty() {
            Problem::invalid(
                "a role's user gets its permissions from the role's template: leave the publish and subscribe fields empty",
            )
        } else {
            match s
                .ops(&sess)
                .add_user_by_role(&account, form.name.trim(), form.role.trim(), Vec::new())
                .await
            {
                Ok(added) => {
                    return Ok(Redirect::to(&format!(
                        "/console/accounts/{}/users/{}",
                        seg(&added.user.account),
                        seg(&added.user.name)
                    ))
                    .into_response());
                }
                Err(e) => Problem::of(&e),
            }
        };
        return render_account(
            &s,
            &sess,
            &account,
            &ListQuery::default(),
            &form,
            Some(&problem),
            &Forms::default(),
        )
        .await;
    }
    let parsed = parse_subjects("publish allow", &form.pub_allow)
        .and_then(|p| Ok((p, parse_subjects("subscribe allow", &form.sub_allow)?)));
    let (pub_allow, sub_allow) = match parsed {
        Ok(lists) => lists,
        Err(p) => {
            let lq = ListQuery::default();
            return render_account(&s, &sess, &account, &lq, &form, Some(&p), &Forms::default())
                .await;
        }
    };
    let mut spec = UserSpec::default();
    spec.permissions.publish.allow = pub_allow;
    spec.permissions.subscribe.allow = sub_allow;
    match s
        .ops(&sess)
        .add_user(&account, form.name.trim(), spec)
        .await
    {
        Ok(view) => Ok(Redirect::to(&format!(
            "/console/accounts/{}/users/{}",
            seg(&view.account),
            seg(&view.name)
        ))
        .into_response()),
        Err(e) => {
            let p = Problem::of(&e);
            let lq = ListQuery::default();
            render_account(&s, &sess, &account, &lq, &form, Some(&p), &Forms::default()).await
        }
    }
}

/// Query of the user page's permission check form.
#[derive(Deserialize, Default)]
pub(crate) struct CheckQuery {
    direction: Option<String>,
    subject: Option<String>,
}

fn check_answer(u: &UserView, q: &CheckQuery) -> String {
    let Some(subject) = q
        .subject
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    else {
        return String::new();
    };
    let direction = match q.direction.as_deref() {
        Some("subscribe") => Direction::Subscribe,
        _ => Direction::Publish,
    };
    let verdict = match Subject::new(subject) {
        Err(e) => {
            return format!(
                "<p id=\"check-result\" class=\"bad\" role=\"status\">Not a valid subject: {}</p>",
                esc(&e.to_string())
            );
        }
        Ok(subject) => permcheck::check(&u.spec.permissions, direction, &subject),
    };
    let mut reason = verdict.reason;
    if u.revoked_at.is_some() {
        reason.push_str("; note: this user is revoked and cannot connect at all");
    }
    format!(
        "<p id=\"check-result\" class=\"{cls}\" role=\"status\"><strong>{word}</strong>: {who} may {verb}{dir} <code>{subject}</code> — {reason}</p>",
        cls = if verdict.allowed { "ok" } else { "bad" },
        word = if verdict.allowed { "Allowed" } else { "Denied" },
        who = esc(&u.name),
        verb = if verdict.allowed { "" } else { "not " },
        dir = direction.as_str(),
        subject = esc(subject),
        reason = esc(&reason),
    )
}

/// `GET /console/accounts/{account}/users/{user}[?direction=publish|subscribe&subject=…]`.
pub(crate) async fn user(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path((account, user)): Path<(String, String)>,
    Query(q): Query<CheckQuery>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    render_user(&s, &sess, &account, &user, &q, None).await
}

/// The user page, with the problem of one of its forms when it was sent and refused (the
/// page then has the problem's status).
async fn render_user(
    s: &ConsoleState,
    sess: &Session,
    account: &str,
    user: &str,
    q: &CheckQuery,
    problem: Option<&Problem>,
) -> ConsoleResult<Response> {
    let w = s.ops(sess);
    let seq = seq(&w).await?;
    let u = w.user(account, user).await?;
    let p = &u.spec.permissions;
    let resp = p
        .response
        .as_ref()
        .map(|r| format!("max {} within {} ns", r.max, r.ttl_ns))
        .unwrap_or_else(|| "—".into());
    let sub_selected = if q.direction.as_deref() == Some("subscribe") {
        " selected"
    } else {
        ""
    };
    let base = format!(
        "/console/accounts/{}/users/{}",
        seg(&u.account),
        seg(&u.name)
    );
    let mut actions = String::new();
    if sess.offers(Scope::Creds) && u.revoked_at.is_none() {
        let _ = write!(
            actions,
            "<p><a class=\"button\" id=\"download-creds\" href=\"{base}/creds\" download>Download creds</a></p>"
        );
    }
    if sess.offers(Scope::Write) && u.revoked_at.is_none() {
        let _ = write!(
            actions,
            "<p class=\"actions\"><a class=\"button\" id=\"edit-user\" href=\"{base}/edit\">Edit user</a></p><form method=\"post\" action=\"{base}/revoke\">{}<button type=\"submit\" class=\"danger\">Revoke user</button></form>",
            csrf_field(&sess.csrf)
        );
    }
    if sess.offers(Scope::Write) && sess.offers(Scope::Creds) && u.revoked_at.is_none() {
        let _ = write!(
            actions,
            "<form method=\"post\" action=\"{base}/rotate\">{}<button type=\"submit\" id=\"rotate-user\">Rotate key and download the new creds</button></form>",
            csrf_field(&sess.csrf)
        );
    }
    if sess.offers(Scope::Write) {
        let _ = write!(
            actions,
            "<p><a class=\"button danger\" id=\"delete-user\" href=\"{base}/delete\">Delete user…</a></p>"
        );
    }
    let (effective, role_answer) =
        account_model::user_extras(&w, &u, q.direction.as_deref(), q.subject.as_deref()).await?;
    let body = format!(
        r#"{problem}<p>In account {acc_link}. <code class="key">{key}</code></p>
<section id="user-state" data-live aria-labelledby="h-state"><h2 id="h-state">State</h2>
<dl class="facts"><dt>State</dt><dd>{state}</dd><dt>Expires</dt><dd>{expires}</dd><dt>Bearer token</dt><dd>{bearer}</dd>
<dt>Source networks</dt><dd>{src}</dd><dt>Created</dt><dd>{created}</dd><dt>Changed</dt><dd>{updated}</dd></dl>
{actions}
</section>
<section aria-labelledby="h-perms"><h2 id="h-perms">Permissions</h2>
<div class="scroll"><table><tbody>{pub_rows}{sub_rows}<tr><th scope="row">Responses</th><td>{resp}</td></tr></tbody></table></div></section>
{effective}
<section aria-labelledby="h-check" class="card"><h2 id="h-check">Can this user…?</h2>
<form method="get" action="{base}">
<label for="check-direction">Action</label>
<select id="check-direction" name="direction"><option value="publish">publish to</option><option value="subscribe"{sub_selected}>subscribe to</option></select>
<label for="check-subject">Subject</label>
<input id="check-subject" name="subject" value="{subject}" required autocomplete="off">
<button type="submit">Check</button>
</form>
{answer}
</section>"#,
        problem = problem.map(Problem::block).unwrap_or_default(),
        acc_link = account_link(&u.account),
        key = esc(&u.public_key),
        state = match u.revoked_at {
            Some(t) => format!("<span class=\"bad\">revoked {}</span>", esc(&when(Some(t)))),
            None => "active".into(),
        },
        expires = esc(&when(u.spec.expires_at)),
        bearer = if u.spec.bearer_token { "yes" } else { "no" },
        src = if u.spec.src.is_empty() {
            "any".to_string()
        } else {
            esc(&u.spec.src.join(", "))
        },
        created = esc(&when(Some(u.created_at))),
        updated = esc(&when(Some(u.updated_at))),
        pub_rows = permission_rows("Publish", &p.publish),
        sub_rows = permission_rows("Subscribe", &p.subscribe),
        subject = esc(q.subject.as_deref().unwrap_or("")),
        answer = role_answer.unwrap_or_else(|| check_answer(&u, q)),
    );
    let status = problem.map_or(StatusCode::OK, |p| p.status);
    let html = page(
        &format!("User {} / {}", u.account, u.name),
        "/console/accounts",
        sess,
        seq,
        &body,
    );
    Ok((status, html).into_response())
}

/// The user page with the problem of one of its forms (the page has the problem's status).
pub(super) async fn render_user_problem(
    s: &ConsoleState,
    sess: &Session,
    account: &str,
    user: &str,
    problem: &Problem,
) -> ConsoleResult<Response> {
    let q = CheckQuery::default();
    render_user(s, sess, account, user, &q, Some(problem)).await
}

/// The name of a user's creds file download (letters, digits, `-_.` only).
pub(super) fn creds_filename(account: &str, user: &str) -> String {
    format!("{account}-{user}.creds")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `POST /console/accounts/{account}/users/{user}/revoke`.
pub(crate) async fn revoke_user(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path((account, user)): Path<(String, String)>,
    Form(form): Form<super::CsrfForm>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    check_csrf(&sess, form.csrf.as_deref())?;
    match s.ops(&sess).revoke_user(&account, &user).await {
        Ok(view) => Ok(Redirect::to(&format!(
            "/console/accounts/{}/users/{}",
            seg(&view.account),
            seg(&view.name)
        ))
        .into_response()),
        Err(e) => {
            let q = CheckQuery::default();
            render_user(&s, &sess, &account, &user, &q, Some(&Problem::of(&e))).await
        }
    }
}

/// `GET /console/accounts/{account}/users/{user}/creds`: the creds file as a download
/// (`creds` scope, never cached).
pub(crate) async fn creds(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path((account, user)): Path<(String, String)>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    let w = s.ops(&sess);
    let u = w.user(&account, &user).await?;
    let creds = w.creds(&account, &user).await?;
    tracing::info!(token_id = %sess.token_id, account = %u.account, user = %u.name, "console creds download");
    let filename = creds_filename(&u.account, &u.name);
    let mut res = creds.as_str().to_string().into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

// ---------------------------------------------------------------------------------------
// Hierarchy
// ---------------------------------------------------------------------------------------

/// Where the whole list of a summarised group of accounts is.
pub(super) fn group_href(kind: AccountKind) -> String {
    match kind {
        AccountKind::Device => "/console/devices".into(),
        AccountKind::Tenant => "/console/tenants".into(),
        k => format!("/console/accounts?kind={}", k.as_str()),
    }
}

/// The noun of a group of accounts: "device account(s)".
pub(super) fn group_noun(kind: AccountKind, n: usize) -> String {
    match kind {
        AccountKind::System => plural(n, "system account", "system accounts"),
        AccountKind::Plain => plural(n, "account", "accounts"),
        AccountKind::Tenant => plural(n, "tenant account", "tenant accounts"),
        AccountKind::Device => plural(n, "device account", "device accounts"),
    }
}

/// `GET /console/hierarchy`: operator → accounts (grouped by kind; a large group as one
/// summary linking to its paged list) → users, as nested lists and as a bounded picture.
pub(crate) async fn hierarchy(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
) -> ConsoleResult<Html<String>> {
    let sess = session(&s, &headers).await?;
    let w = s.ops(&sess);
    let seq = seq(&w).await?;
    let tree = w.hierarchy(svg::BOUNDS).await?;
    let picture = svg::render(&tree);
    let mut list = String::new();
    let mut summaries = Vec::new();
    for g in &tree.groups {
        if g.summarised() {
            summaries.push(format!(
                "{} ({}) are summarised",
                group_noun(g.kind, g.total),
                plural(g.users_total, "user", "users")
            ));
            let _ = write!(
                list,
                "<li class=\"summary\" id=\"group-{kind}\"><a href=\"{href}\">{noun}</a> with {users} <span class=\"muted\">(more than {max}: see the paged list)</span></li>",
                kind = g.kind.as_str(),
                href = esc(&group_href(g.kind)),
                noun = group_noun(g.kind, g.total),
                users = plural(g.users_total, "user", "users"),
                max = svg::BOUNDS.max_accounts,
            );
            continue;
        }
        for a in &g.accounts {
            let _ = write!(list, "<li>{}", account_link(&a.name));
            if a.system {
                list.push_str(" <span class=\"tag\">system</span>");
            }
            if !a.users.is_empty() {
                list.push_str("<ul>");
                for u in &a.users {
                    let _ = write!(
                        list,
                        "<li>{}{}</li>",
                        user_link(&a.name, &u.name),
                        if u.revoked { " (revoked)" } else { "" }
                    );
                }
                if a.users_total > a.users.len() {
                    let _ = write!(
                        list,
                        "<li class=\"muted\"><a href=\"/console/accounts/{}\">{} more</a></li>",
                        seg(&a.name),
                        plural(a.users_total - a.users.len(), "user", "users")
                    );
                }
                list.push_str("</ul>");
            }
            list.push_str("</li>");
        }
    }
    let mut edges = String::new();
    for e in &tree.edges {
        let _ = write!(
            edges,
            "<li>{} exports <code>{}</code> to {}</li>",
            account_link(&e.from),
            esc(&e.subject),
            account_link(&e.to)
        );
    }
    if tree.edges_hidden > 0 {
        let _ = write!(
            edges,
            "<li class=\"muted\">{} between summarised accounts (on their account pages)</li>",
            plural(tree.edges_hidden, "import", "imports")
        );
    }
    let aggregated = if summaries.is_empty() && picture.omitted == 0 {
        String::new()
    } else {
        let mut parts = summaries;
        if picture.omitted > 0 {
            parts.push(format!(
                "the picture draws {} and leaves out {}",
                plural(picture.drawn, "node", "nodes"),
                count(picture.omitted)
            ));
        }
        format!(
            "<p id=\"hierarchy-aggregated\" class=\"notice\">Too many to draw: {}.</p>",
            esc(&parts.join("; "))
        )
    };
    let body = format!(
        r#"{aggregated}<section id="hierarchy-picture" data-live aria-labelledby="h-picture"><h2 id="h-picture">Picture</h2>
<figure class="picture" data-nodes="{drawn}">{svg}<figcaption>Operator, accounts and their users; a group of more than {max} accounts is one summary box; arrows run from an exporting account to the importing one.</figcaption></figure></section>
<section id="hierarchy-tree" data-live aria-labelledby="h-tree"><h2 id="h-tree">Tree</h2>
<ul class="tree"><li><strong>Operator {op}</strong><ul>{list}</ul></li></ul>
<h3>Imports and exports</h3><ul>{edges}</ul></section>"#,
        svg = picture.svg,
        drawn = picture.drawn,
        max = svg::BOUNDS.max_accounts,
        op = esc(&tree.operator),
        edges = if edges.is_empty() {
            "<li class=\"muted\">none</li>".into()
        } else {
            edges
        },
    );
    Ok(page("Hierarchy", "/console/hierarchy", &sess, seq, &body))
}

/// `GET /console/hierarchy.svg`: the picture alone.
pub(crate) async fn hierarchy_svg(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    let w = s.ops(&sess);
    let tree = w.hierarchy(svg::BOUNDS).await?;
    Ok((
        [(header::CONTENT_TYPE, "image/svg+xml")],
        svg::render(&tree).svg,
    )
        .into_response())
}

// ---------------------------------------------------------------------------------------
// Devices, tenants, ledger
// ---------------------------------------------------------------------------------------

pub(super) fn device_link(id: &str) -> String {
    format!("<a href=\"/console/devices/{}\">{}</a>", seg(id), esc(id))
}

pub(super) fn tenant_link(slug: &str) -> String {
    format!(
        "<a href=\"/console/tenants/{}\">{}</a>",
        seg(slug),
        esc(slug)
    )
}

/// `GET /console/devices[?q=…&sort=id|state|created|activated&dir=…&page=N&state=…]`.
pub(crate) async fn devices(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> ConsoleResult<Html<String>> {
    let sess = session(&s, &headers).await?;
    let w = s.ops(&sess);
    let seq = seq(&w).await?;
    let lq = ListQuery::new(q);
    let state = match lq.get("state") {
        None => None,
        Some("provisioned") => Some(DeviceState::Provisioned),
        Some("active") => Some(DeviceState::Active),
        Some("revoked") => Some(DeviceState::Revoked),
        Some(other) => {
            return Err(ConsoleError::Invalid(format!(
                "state={other:?}: use provisioned, active or revoked"
            )));
        }
    };
    let list = w.devices_page(state, &lq.request("")?).await?;
    let path = "/console/devices";
    let mut rows = String::new();
    for d in &list.items {
        let _ = write!(
            rows,
            "<tr id=\"device-{}\"><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&d.id),
            device_link(&d.id),
            device_state_class(d.state),
            esc(d.state.as_str()),
            account_link(&d.account),
            user_link(&d.account, &d.user),
            esc(&when(Some(d.created_at))),
            esc(&when(d.activated_at)),
        );
    }
    if rows.is_empty() {
        rows = "<tr><td colspan=\"6\" class=\"muted\">no devices match</td></tr>".into();
    }
    let states: String = ["", "provisioned", "active", "revoked"]
        .iter()
        .map(|v| {
            let label = if v.is_empty() { "all states" } else { v };
            if lq.get("state").unwrap_or("") == *v {
                format!("<strong>{label}</strong>")
            } else {
                let v = (!v.is_empty()).then_some(*v);
                format!(
                    "<a href=\"{}\">{label}</a>",
                    esc(&lq.href(path, &[("state", v), ("page", None)]))
                )
            }
        })
        .collect::<Vec<_>>()
        .join(" · ");
    let body = format!(
        r#"{search}<p class="filters">State: {states}</p>
<section id="devices" data-live aria-labelledby="h-devices"><h2 id="h-devices">{n}</h2>
{pager}
<div class="scroll"><table><thead><tr>{h_id}{h_state}<th scope="col">Account</th><th scope="col">User</th>{h_created}{h_activated}</tr></thead><tbody>{rows}</tbody></table></div>
{pager_end}</section>"#,
        search = lq.search_form(path, "", "devices", "Search devices (id, account, user)"),
        n = plural(list.total, "device", "devices"),
        pager = lq.pager(path, "", "devices", &list, "device", "devices"),
        pager_end = lq.pager(path, "", "devices-end", &list, "device", "devices"),
        h_id = lq.header(path, "", &list, "id", "Id"),
        h_state = lq.header(path, "", &list, "state", "State"),
        h_created = lq.header(path, "", &list, "created", "Created"),
        h_activated = lq.header(path, "", &list, "activated", "First connected"),
    );
    Ok(page("Devices", "/console/devices", &sess, seq, &body))
}

pub(super) fn device_state_class(state: DeviceState) -> &'static str {
    match state {
        DeviceState::Active => "ok",
        DeviceState::Revoked => "bad",
        DeviceState::Provisioned => "warn",
    }
}

/// `GET /console/tenants[?q=…&sort=slug|state|users|created&dir=…&page=N]`.
pub(crate) async fn tenants(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> ConsoleResult<Html<String>> {
    let sess = session(&s, &headers).await?;
    let w = s.ops(&sess);
    let seq = seq(&w).await?;
    let lq = ListQuery::new(q);
    let list = w.tenants_page(&lq.request("")?).await?;
    let path = "/console/tenants";
    let mut rows = String::new();
    for t in &list.items {
        let _ = write!(
            rows,
            "<tr id=\"tenant-{}\"><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td><code>{}</code></td><td class=\"num\">{}</td></tr>",
            esc(&t.slug),
            tenant_link(&t.slug),
            if t.state == "active" { "ok" } else { "bad" },
            esc(&t.state),
            account_link(&t.account),
            esc(&t.prefix),
            count(t.users.len()),
        );
    }
    if rows.is_empty() {
        rows = "<tr><td colspan=\"5\" class=\"muted\">no tenants match</td></tr>".into();
    }
    let body = format!(
        r#"{search}<section id="tenants" data-live aria-labelledby="h-tenants"><h2 id="h-tenants">{n}</h2>
{pager}
<div class="scroll"><table><thead><tr>{h_slug}{h_state}<th scope="col">Account</th><th scope="col">Prefix</th>{h_users}</tr></thead><tbody>{rows}</tbody></table></div></section>"#,
        search = lq.search_form(
            path,
            "",
            "tenants",
            "Search tenants (slug, account, prefix)"
        ),
        n = plural(list.total, "tenant", "tenants"),
        pager = lq.pager(path, "", "tenants", &list, "tenant", "tenants"),
        h_slug = lq.header(path, "", &list, "slug", "Slug"),
        h_state = lq.header(path, "", &list, "state", "State"),
        h_users = lq.header(path, "", &list, "users", "Users"),
    );
    Ok(page("Tenants", "/console/tenants", &sess, seq, &body))
}

/// `GET /console/ledger[?q=…&dir=asc|desc&page=N]`: the events, newest first unless
/// asked, and whether the hash chain verifies.
pub(crate) async fn ledger(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> ConsoleResult<Html<String>> {
    let sess = session(&s, &headers).await?;
    let w = s.ops(&sess);
    let seq = seq(&w).await?;
    // Newest first unless the query says otherwise.
    let lq = ListQuery::new(q).or_default("dir", "desc");
    let report = w.verify_ledger().await?;
    let events = w.ledger_page(&lq.request("")?).await?;
    let verdict = match &report.first_break {
        None => format!(
            "<p id=\"ledger-verify\" class=\"ok\">Hash chain intact: {} verified.</p>",
            plural(
                usize::try_from(report.events).unwrap_or(0),
                "event",
                "events"
            )
        ),
        Some(b) => format!(
            "<p id=\"ledger-verify\" class=\"bad\" role=\"alert\">Hash chain broken at event {}: {}</p>",
            b.seq,
            esc(&b.problem)
        ),
    };
    let path = "/console/ledger";
    let mut rows = String::new();
    for e in &events.items {
        let _ = write!(
            rows,
            "<tr id=\"event-{}\"><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} {}</td></tr>",
            e.seq,
            e.seq,
            esc(&when(Some(e.at))),
            esc(&e.actor),
            esc(&e.action),
            esc(&e.object_kind),
            short_key(&e.object_key),
        );
    }
    if rows.is_empty() {
        rows = "<tr><td colspan=\"5\" class=\"muted\">no events match</td></tr>".into();
    }
    let body = format!(
        r#"{search}<section id="ledger" data-live aria-labelledby="h-ledger"><h2 id="h-ledger">{n}</h2>
{verdict}
{pager}
<div class="scroll"><table><thead><tr>{h_seq}<th scope="col">When</th><th scope="col">Actor</th><th scope="col">Action</th><th scope="col">Object</th></tr></thead><tbody>{rows}</tbody></table></div>
{pager_end}</section>"#,
        search = lq.search_form(path, "", "ledger", "Search events (actor, action, object)"),
        n = plural(events.total, "event", "events"),
        pager = lq.pager(path, "", "ledger", &events, "event", "events"),
        pager_end = lq.pager(path, "", "ledger-end", &events, "event", "events"),
        h_seq = lq.header(path, "", &events, "seq", "#"),
    );
    Ok(page("Ledger", "/console/ledger", &sess, seq, &body))
}
