//! The console's directory views (governance, read-only): directory users with
//! their manager, sysadmin flag and source; roles with owner/admin/member counts and
//! tasks; tasks with account and grants; and a detail page for each — a user's roles,
//! held tasks, NATS users per account and an "explain SUBJECT" form over
//! [`warden_ops::Warden::explain`]. Changes go through proposals (see `proposals.rs`).

use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use nats_jwt::Subject;
use serde::Deserialize;
use warden_core::governance::{ObjectType, TaskGrants};

use super::list::ListQuery;
use super::pages::{account_link, seq, subjects, user_link};
use super::render::{count, esc, page, plural, seg, when};
use super::{ConsoleResult, ConsoleState, Problem, session};

pub(super) fn dir_user_link(id: &str) -> String {
    format!(
        "<a href=\"/console/directory/users/{}\">{}</a>",
        seg(id),
        esc(id)
    )
}

pub(super) fn role_link(name: &str) -> String {
    format!(
        "<a href=\"/console/directory/roles/{}\">{}</a>",
        seg(name),
        esc(name)
    )
}

pub(super) fn task_link(name: &str) -> String {
    format!(
        "<a href=\"/console/directory/tasks/{}\">{}</a>",
        seg(name),
        esc(name)
    )
}

fn links(list: &[String], link: fn(&str) -> String) -> String {
    if list.is_empty() {
        "<span class=\"muted\">—</span>".into()
    } else {
        list.iter().map(|x| link(x)).collect::<Vec<_>>().join(", ")
    }
}

/// The grants of a task as a small table body.
fn grant_rows(g: &TaskGrants) -> String {
    format!(
        "<tr><th scope=\"row\">Publish allow</th><td>{}</td></tr><tr><th scope=\"row\">Publish deny</th><td>{}</td></tr><tr><th scope=\"row\">Subscribe allow</th><td>{}</td></tr><tr><th scope=\"row\">Subscribe deny</th><td>{}</td></tr>",
        subjects(&g.allow_pub),
        subjects(&g.deny_pub),
        subjects(&g.allow_sub),
        subjects(&g.deny_sub)
    )
}

fn grants_inline(g: &TaskGrants) -> String {
    format!(
        "pub {} / sub {}{}",
        subjects(&g.allow_pub),
        subjects(&g.allow_sub),
        if g.deny_pub.is_empty() && g.deny_sub.is_empty() {
            String::new()
        } else {
            format!(
                "; deny pub {} / sub {}",
                subjects(&g.deny_pub),
                subjects(&g.deny_sub)
            )
        }
    )
}

/// `GET /console/directory[?u_q=…&u_sort=…&u_page=N&r_…&t_…]`: directory users, roles
/// and tasks, each list searched, sorted and paged on its own (prefixes `u_`, `r_`, `t_`).
pub(crate) async fn directory(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> ConsoleResult<Html<String>> {
    let sess = session(&s, &headers).await?;
    let w = s.ops(&sess);
    let seq = seq(&w).await?;
    let lq = ListQuery::new(q);
    let path = "/console/directory";
    let users = w.dir_users_page(&lq.request("u_")?).await?;
    let sysadmins = w.sysadmins().await?;
    let roles = w.roles_page(&lq.request("r_")?).await?;
    let tasks = w.tasks_page(&lq.request("t_")?).await?;
    let mut urows = String::new();
    for u in &users.items {
        let id = &u.user.id;
        let _ = write!(
            urows,
            "<tr id=\"dir-user-{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(id),
            dir_user_link(id),
            esc(u.user.name.as_deref().unwrap_or("")),
            u.user
                .manager
                .as_deref()
                .map(dir_user_link)
                .unwrap_or_else(|| "<span class=\"muted\">—</span>".into()),
            if sysadmins.contains(id) {
                "<strong class=\"warn\">sysadmin</strong>"
            } else {
                ""
            },
            esc(&u.source),
        );
    }
    let mut rrows = String::new();
    for r in &roles.items {
        let _ = write!(
            rrows,
            "<tr id=\"dir-role-{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.id),
            role_link(&r.id),
            count(r.row.role.owners.len()),
            count(r.row.admins.len()),
            count(r.row.role.members.len()),
            links(&r.row.tasks, task_link),
            esc(&r.row.source),
        );
    }
    let mut trows = String::new();
    for t in &tasks.items {
        let _ = write!(
            trows,
            "<tr id=\"dir-task-{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&t.id),
            task_link(&t.id),
            account_link(&t.row.account),
            grants_inline(&t.row.grants),
            esc(&t.row.source),
        );
    }
    let none = |rows: String, cols: usize| {
        if rows.is_empty() {
            format!("<tr><td colspan=\"{cols}\" class=\"muted\">none</td></tr>")
        } else {
            rows
        }
    };
    let body = format!(
        r#"<p>Directory users hold roles; roles hold tasks; a task grants NATS publish/subscribe subjects in one account. Changes are <a href="/console/proposals">proposals</a> that the right people approve.</p>
<section id="dir-users" data-live aria-labelledby="h-dir-users"><h2 id="h-dir-users">{nu}</h2>
{u_search}{u_pager}
<div class="scroll"><table><thead><tr>{u_id}{u_name}{u_manager}<th scope="col">System administrator</th>{u_source}</tr></thead><tbody>{urows}</tbody></table></div></section>
<section id="dir-roles" data-live aria-labelledby="h-dir-roles"><h2 id="h-dir-roles">{nr}</h2>
{r_search}{r_pager}
<div class="scroll"><table><thead><tr>{r_name}<th scope="col">Owners</th><th scope="col">Admins</th>{r_members}{r_tasks}{r_source}</tr></thead><tbody>{rrows}</tbody></table></div></section>
<section id="dir-tasks" data-live aria-labelledby="h-dir-tasks"><h2 id="h-dir-tasks">{nt}</h2>
{t_search}{t_pager}
<div class="scroll"><table><thead><tr>{t_name}{t_account}<th scope="col">Grants</th>{t_source}</tr></thead><tbody>{trows}</tbody></table></div></section>"#,
        nu = plural(users.total, "directory user", "directory users"),
        nr = plural(roles.total, "role", "roles"),
        nt = plural(tasks.total, "task", "tasks"),
        u_search = lq.search_form(
            path,
            "u_",
            "dir-users",
            "Search directory users (id, name, email, manager)"
        ),
        u_pager = lq.pager(
            path,
            "u_",
            "dir-users",
            &users,
            "directory user",
            "directory users"
        ),
        u_id = lq.header(path, "u_", &users, "id", "Id"),
        u_name = lq.header(path, "u_", &users, "name", "Name"),
        u_manager = lq.header(path, "u_", &users, "manager", "Manager"),
        u_source = lq.header(path, "u_", &users, "source", "Source"),
        urows = none(urows, 5),
        r_search = lq.search_form(
            path,
            "r_",
            "dir-roles",
            "Search roles (name, description, tasks)"
        ),
        r_pager = lq.pager(path, "r_", "dir-roles", &roles, "role", "roles"),
        r_name = lq.header(path, "r_", &roles, "name", "Role"),
        r_members = lq.header(path, "r_", &roles, "members", "Members"),
        r_tasks = lq.header(path, "r_", &roles, "tasks", "Tasks"),
        r_source = lq.header(path, "r_", &roles, "source", "Source"),
        rrows = none(rrows, 6),
        t_search = lq.search_form(
            path,
            "t_",
            "dir-tasks",
            "Search tasks (name, account, description)"
        ),
        t_pager = lq.pager(path, "t_", "dir-tasks", &tasks, "task", "tasks"),
        t_name = lq.header(path, "t_", &tasks, "name", "Task"),
        t_account = lq.header(path, "t_", &tasks, "account", "Account"),
        t_source = lq.header(path, "t_", &tasks, "source", "Source"),
        trows = none(trows, 4),
    );
    Ok(page("Directory", "/console/directory", &sess, seq, &body))
}

/// Query of the directory user page: a subject to explain.
#[derive(Deserialize)]
pub(crate) struct ExplainQuery {
    subject: Option<String>,
    account: Option<String>,
}

/// `GET /console/directory/users/{id}[?subject=S&account=A]`.
pub(crate) async fn dir_user(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<ExplainQuery>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    let w = s.ops(&sess);
    let seq = seq(&w).await?;
    let u = w.dir_user(&id).await?;
    let held = w.held_tasks(&id).await?;
    let mut rel_rows = String::new();
    for r in &u.relationships {
        let a = &r.address;
        let object = match a.object_type {
            ObjectType::Role => role_link(&a.object_id),
            ObjectType::Task => task_link(&a.object_id),
            ObjectType::User => dir_user_link(&a.object_id),
            _ => esc(&a.object_id),
        };
        let related = match a.related_type {
            ObjectType::User => dir_user_link(&a.related_id),
            _ => esc(&a.related_id),
        };
        let _ = write!(
            rel_rows,
            "<tr><td>{} {object}</td><td>{}</td><td>{related}</td><td>{}</td><td>{}</td></tr>",
            esc(a.object_type.as_str()),
            esc(a.relationship.as_str()),
            esc(&when(r.expires_at)),
            esc(&r.source),
        );
    }
    let mut held_rows = String::new();
    for h in &held {
        let _ = write!(
            held_rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            role_link(&h.role),
            task_link(&h.task),
            account_link(&h.account),
            grants_inline(&h.grants),
        );
    }
    let nats = if u.nats_accounts.is_empty() {
        "<p class=\"muted\">No NATS users yet (one is issued per account on the first grant).</p>"
            .to_string()
    } else {
        let items: Vec<String> = u
            .nats_accounts
            .iter()
            .map(|a| {
                format!(
                    "<li>account {}: NATS user {}</li>",
                    account_link(a),
                    user_link(a, &u.id)
                )
            })
            .collect();
        format!("<ul id=\"dir-nats-users\">{}</ul>", items.join(""))
    };
    let mut problem_status = None;
    let mut explain_problem = String::new();
    let subject_text = q.subject.as_deref().map(str::trim).unwrap_or("");
    let account_text = q.account.as_deref().map(str::trim).unwrap_or("");
    let explained = if subject_text.is_empty() {
        String::new()
    } else {
        // A bad subject or account is answered on this page, under the form with what
        // was typed, not on a bare error page.
        let list = match Subject::new(subject_text) {
            Err(e) => Err(Problem::invalid(format!(
                "subject {subject_text:?} is not valid: {e}"
            ))),
            Ok(subject) => {
                let account = (!account_text.is_empty()).then_some(account_text);
                w.explain(&id, &subject, account)
                    .await
                    .map_err(|e| Problem::of(&e))
            }
        };
        let list = match list {
            Ok(list) => list,
            Err(p) => {
                problem_status = Some(p.status);
                explain_problem = p.block();
                Vec::new()
            }
        };
        let mut rows = String::new();
        for e in &list {
            let by = |v: &[warden_core::governance::Source]| {
                if v.is_empty() {
                    "<span class=\"muted\">—</span>".to_string()
                } else {
                    v.iter()
                        .map(|x| {
                            format!(
                                "{} → {} (<code>{}</code>)",
                                role_link(&x.role),
                                task_link(&x.task),
                                esc(&x.rule)
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; ")
                }
            };
            let _ = write!(
                rows,
                "<tr data-direction=\"{dir}\" data-allowed=\"{allowed}\"><td>{acc}</td><td>{dir}</td><td class=\"{cls}\">{verdict}</td><td>{reason}</td><td>{ab}</td><td>{db}</td></tr>",
                dir = esc(&e.direction),
                allowed = e.allowed,
                acc = account_link(&e.account),
                cls = if e.allowed { "ok" } else { "bad" },
                verdict = if e.allowed { "allowed" } else { "denied" },
                reason = esc(&e.reason),
                ab = by(&e.allowed_by),
                db = by(&e.denied_by),
            );
        }
        if problem_status.is_some() {
            String::new()
        } else if rows.is_empty() {
            "<p id=\"explain-result\" class=\"muted\">No grants in any account: everything is denied.</p>".to_string()
        } else {
            format!(
                "<div class=\"scroll\"><table id=\"explain-result\"><caption>Subject <code>{}</code></caption><thead><tr><th scope=\"col\">Account</th><th scope=\"col\">Direction</th><th scope=\"col\">Verdict</th><th scope=\"col\">Why</th><th scope=\"col\">Allowed by</th><th scope=\"col\">Denied by</th></tr></thead><tbody>{rows}</tbody></table></div>",
                esc(subject_text)
            )
        }
    };
    let body = format!(
        r#"<dl class="facts"><dt>Name</dt><dd>{name}</dd><dt>Email</dt><dd>{email}</dd><dt>Manager</dt><dd>{manager}</dd><dt>System administrator</dt><dd id="dir-sysadmin">{sysadmin}</dd><dt>Source</dt><dd>{source}</dd><dt>Created</dt><dd>{created}</dd></dl>
<section id="dir-rels" data-live aria-labelledby="h-dir-rels"><h2 id="h-dir-rels">Roles and relationships</h2>
<div class="scroll"><table><thead><tr><th scope="col">Object</th><th scope="col">Relationship</th><th scope="col">Related</th><th scope="col">Expires</th><th scope="col">Source</th></tr></thead><tbody>{rel_rows}</tbody></table></div></section>
<section id="dir-held" data-live aria-labelledby="h-dir-held"><h2 id="h-dir-held">Held tasks</h2>
<div class="scroll"><table><thead><tr><th scope="col">Through role</th><th scope="col">Task</th><th scope="col">Account</th><th scope="col">Grants</th></tr></thead><tbody>{held_rows}</tbody></table></div></section>
<section id="dir-nats" data-live aria-labelledby="h-dir-nats"><h2 id="h-dir-nats">NATS users</h2>{nats}</section>
<section id="dir-explain" aria-labelledby="h-dir-explain"><h2 id="h-dir-explain">Explain a subject</h2>
{explain_problem}<form method="get" action="/console/directory/users/{idseg}" class="card">
<label for="explain-subject">Subject</label><input id="explain-subject" name="subject" value="{subject}" required placeholder="orders.created">
<label for="explain-account">Account (optional)</label><input id="explain-account" name="account" value="{account}">
<button type="submit">Explain</button>
</form>
{explained}
</section>"#,
        name = esc(u.user.name.as_deref().unwrap_or("—")),
        email = esc(u.user.email.as_deref().unwrap_or("—")),
        manager = u
            .user
            .manager
            .as_deref()
            .map(dir_user_link)
            .unwrap_or_else(|| "—".into()),
        sysadmin = if u.sysadmin { "yes" } else { "no" },
        source = esc(&u.source),
        created = esc(&when(Some(u.created_at))),
        idseg = seg(&u.id),
        subject = esc(subject_text),
        account = esc(account_text),
    );
    let html = page(
        &format!("Directory user {}", u.id),
        "/console/directory",
        &sess,
        seq,
        &body,
    );
    Ok((problem_status.unwrap_or(StatusCode::OK), html).into_response())
}

/// `GET /console/directory/roles/{name}`.
pub(crate) async fn role(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ConsoleResult<Html<String>> {
    let sess = session(&s, &headers).await?;
    let w = s.ops(&sess);
    let seq = seq(&w).await?;
    let r = w.role(&name).await?;
    let body = format!(
        r#"<section id="dir-role" data-live aria-labelledby="h-dir-role"><h2 id="h-dir-role">Members and tasks</h2>
<dl class="facts"><dt>Description</dt><dd>{desc}</dd><dt>Admins</dt><dd id="role-admins">{admins}</dd><dt>Owners</dt><dd id="role-owners">{owners}</dd><dt>Members</dt><dd id="role-members">{members}</dd><dt>Tasks</dt><dd id="role-tasks">{tasks}</dd><dt>Source</dt><dd>{source}</dd></dl>
<p class="hint">Admin implies owner, owner implies member: owners and admins hold the role's tasks too.</p></section>"#,
        desc = esc(r.row.role.description.as_deref().unwrap_or("—")),
        admins = links(&r.row.admins, dir_user_link),
        owners = links(&r.row.role.owners, dir_user_link),
        members = links(&r.row.role.members, dir_user_link),
        tasks = links(&r.row.tasks, task_link),
        source = esc(&r.row.source),
    );
    Ok(page(
        &format!("Role {}", r.id),
        "/console/directory",
        &sess,
        seq,
        &body,
    ))
}

/// `GET /console/directory/tasks/{name}`.
pub(crate) async fn task(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ConsoleResult<Html<String>> {
    let sess = session(&s, &headers).await?;
    let w = s.ops(&sess);
    let seq = seq(&w).await?;
    let t = w.task(&name).await?;
    let body = format!(
        r#"<section id="dir-task" data-live aria-labelledby="h-dir-task"><h2 id="h-dir-task">Grants</h2>
<dl class="facts"><dt>Account</dt><dd>{account}</dd><dt>Description</dt><dd>{desc}</dd><dt>Admins</dt><dd>{admins}</dd><dt>Owners</dt><dd>{owners}</dd><dt>Source</dt><dd>{source}</dd></dl>
<div class="scroll"><table id="task-grants"><tbody>{grants}</tbody></table></div></section>"#,
        account = account_link(&t.row.account),
        desc = esc(t.row.description.as_deref().unwrap_or("—")),
        admins = links(&t.admins, dir_user_link),
        owners = links(&t.owners, dir_user_link),
        source = esc(&t.row.source),
        grants = grant_rows(&t.row.grants),
    );
    Ok(page(
        &format!("Task {}", t.id),
        "/console/directory",
        &sess,
        seq,
        &body,
    ))
}
