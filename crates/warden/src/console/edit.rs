//! The console's edit and delete forms for accounts and users.
//!
//! An edit form shows the whole current state (limits, permissions, …); on submit the
//! console turns the difference between what was shown and what was sent into the same
//! edit the CLI makes (`warden account edit`, `warden user edit`:
//! [`AccountLimitsEdit`], [`UserEdit`]) and runs it through [`warden_ops`], so the change
//! is one transaction with its ledger event and outbox row. A refused form is answered
//! with the form again (with the status of [`super::status_of`]: 400 for bad input, 403
//! when the session may not, …), the message on top and the typed values kept; nothing
//! changes. The forms are offered to sessions with `write` only; the operation decides.
//! Deleting asks for the name to be typed on a confirmation page first.

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use nats_jwt::{ConnectionType, ResponsePermission, Subject};
use serde::Deserialize;
use warden_core::parse::{format_unix, parse_cidr, parse_duration_ns, parse_expiry, parse_size};
use warden_core::spec::{
    AccountLimitsEdit, AccountLimitsSpec, PermissionsEdit, UserEdit, UserSpec,
};

use super::pages::{account_link, csrf_field, seq, user_link};
use super::render::{esc, page, seg};
use super::{ConsoleResult, ConsoleState, Problem, Session, check_csrf, form_session, session};
use warden_ops::tokens::Scope;
use warden_ops::{AccountView, UserView, now};

/// A problem with the submitted form, shown on the form.
#[derive(Debug)]
struct FormError(String);

impl From<FormError> for Problem {
    fn from(FormError(m): FormError) -> Problem {
        Problem::invalid(m)
    }
}

/// A limit as shown in a field: `unlimited` for -1.
fn limit_text(n: i64) -> String {
    if n < 0 {
        "unlimited".into()
    } else {
        n.to_string()
    }
}

/// A limit typed into a field: a number (units K, M, G accepted) or `unlimited`/`-1`.
fn parse_limit(label: &str, text: &str) -> Result<i64, FormError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(FormError(format!(
            "{label}: give a number, or \"unlimited\""
        )));
    }
    parse_size(t).map_err(|e| FormError(format!("{label}: {e}")))
}

// ---------------------------------------------------------------------------------------
// Accounts
// ---------------------------------------------------------------------------------------

/// The account edit form's fields (all text, as typed).
#[derive(Deserialize, Default)]
pub(crate) struct AccountForm {
    #[serde(default)]
    description: String,
    #[serde(default)]
    conn: String,
    #[serde(default)]
    leaf: String,
    #[serde(default)]
    subs: String,
    #[serde(default)]
    payload: String,
    #[serde(default)]
    data: String,
    #[serde(default)]
    imports: String,
    #[serde(default)]
    exports: String,
    #[serde(default)]
    wildcards: Option<String>,
    #[serde(default)]
    disallow_bearer: Option<String>,
    #[serde(default)]
    js_mem: String,
    #[serde(default)]
    js_disk: String,
    #[serde(default)]
    js_streams: String,
    #[serde(default)]
    js_consumer: String,
    #[serde(default)]
    js_max_ack_pending: String,
    #[serde(default)]
    csrf: Option<String>,
}

impl AccountForm {
    fn from_view(a: &AccountView) -> AccountForm {
        let l = &a.spec.limits;
        let js = &l.jetstream;
        AccountForm {
            description: a.spec.description.clone().unwrap_or_default(),
            conn: limit_text(l.conn),
            leaf: limit_text(l.leaf),
            subs: limit_text(l.subs),
            payload: limit_text(l.payload),
            data: limit_text(l.data),
            imports: limit_text(l.imports),
            exports: limit_text(l.exports),
            wildcards: l.wildcards.then(|| "on".into()),
            disallow_bearer: l.disallow_bearer.then(|| "on".into()),
            js_mem: limit_text(js.mem_storage),
            js_disk: limit_text(js.disk_storage),
            js_streams: limit_text(js.streams),
            js_consumer: limit_text(js.consumer),
            js_max_ack_pending: limit_text(js.max_ack_pending),
            csrf: None,
        }
    }

    /// The edit that turns `current` into what the form says (`None`s where unchanged).
    fn edit(
        &self,
        current: &AccountLimitsSpec,
        description: Option<&str>,
    ) -> Result<(AccountLimitsEdit, Option<String>), FormError> {
        fn changed<T: PartialEq>(old: T, new: T) -> Option<T> {
            (old != new).then_some(new)
        }
        let js = &current.jetstream;
        let edit = AccountLimitsEdit {
            conns: changed(current.conn, parse_limit("Connections", &self.conn)?),
            leaf_conns: changed(current.leaf, parse_limit("Leaf connections", &self.leaf)?),
            subscriptions: changed(current.subs, parse_limit("Subscriptions", &self.subs)?),
            payload: changed(current.payload, parse_limit("Payload", &self.payload)?),
            data: changed(current.data, parse_limit("Data", &self.data)?),
            imports: changed(current.imports, parse_limit("Imports", &self.imports)?),
            exports: changed(current.exports, parse_limit("Exports", &self.exports)?),
            wildcard_exports: changed(current.wildcards, self.wildcards.is_some()),
            disallow_bearer: changed(current.disallow_bearer, self.disallow_bearer.is_some()),
            js_mem_storage: changed(
                js.mem_storage,
                parse_limit("JetStream memory", &self.js_mem)?,
            ),
            js_disk_storage: changed(
                js.disk_storage,
                parse_limit("JetStream disk", &self.js_disk)?,
            ),
            js_streams: changed(
                js.streams,
                parse_limit("JetStream streams", &self.js_streams)?,
            ),
            js_consumer: changed(
                js.consumer,
                parse_limit("JetStream consumers", &self.js_consumer)?,
            ),
            js_max_ack_pending: changed(
                js.max_ack_pending,
                parse_limit("JetStream max ack pending", &self.js_max_ack_pending)?,
            ),
        };
        let new_desc = self.description.trim();
        let desc = (description.unwrap_or("") != new_desc).then(|| new_desc.to_string());
        if edit.is_empty() && desc.is_none() {
            return Err(FormError("no field was changed".into()));
        }
        Ok((edit, desc))
    }
}

fn text_field(id: &str, name: &str, label: &str, value: &str, hint: &str) -> String {
    format!(
        "<div><label for=\"{id}\">{label}</label><input id=\"{id}\" name=\"{name}\" value=\"{}\" autocomplete=\"off\"{}>{}</div>",
        esc(value),
        if hint.is_empty() {
            String::new()
        } else {
            format!(" aria-describedby=\"{id}-hint\"")
        },
        if hint.is_empty() {
            String::new()
        } else {
            format!("<p class=\"hint\" id=\"{id}-hint\">{}</p>", esc(hint))
        }
    )
}

fn check_field(id: &str, name: &str, label: &str, on: bool) -> String {
    format!(
        "<label class=\"check\" for=\"{id}\"><input type=\"checkbox\" id=\"{id}\" name=\"{name}\"{}> {label}</label>",
        if on { " checked" } else { "" }
    )
}

fn account_form_page(
    sess: &Session,
    seq: i64,
    a: &AccountView,
    f: &AccountForm,
    problem: Option<&Problem>,
) -> Response {
    let action = format!("/console/accounts/{}/edit", seg(&a.name));
    let lim = |id: &str, label: &str, v: &str| text_field(id, id, label, v, "");
    let body = format!(
        r#"<p>Account {link}. Limits take a number (units K, M, G for sizes) or <code>unlimited</code>; the account JWT is re-signed and pushed to NATS.</p>
{error}
<form method="post" action="{action}" class="card" id="account-edit">
{csrf}
<label for="edit-description">Description</label>
<input id="edit-description" name="description" value="{desc}" autocomplete="off">
<fieldset><legend>Connections and data</legend><div class="grid2">
{conn}{leaf}{subs}{payload}{data}{imports}{exports}
</div>
{wildcards}{bearer}
</fieldset>
<fieldset><legend>JetStream (0 memory and 0 disk: disabled)</legend><div class="grid2">
{js_mem}{js_disk}{js_streams}{js_consumer}{js_ack}
</div></fieldset>
<button type="submit">Save account</button>
</form>
<p><a href="/console/accounts/{seg}">Cancel</a></p>"#,
        link = account_link(&a.name),
        error = problem.map(Problem::block).unwrap_or_default(),
        csrf = csrf_field(&sess.csrf),
        desc = esc(&f.description),
        conn = lim("conn", "Connections", &f.conn),
        leaf = lim("leaf", "Leaf connections", &f.leaf),
        subs = lim("subs", "Subscriptions", &f.subs),
        payload = lim("payload", "Max payload", &f.payload),
        data = lim("data", "Data", &f.data),
        imports = lim("imports", "Imports", &f.imports),
        exports = lim("exports", "Exports", &f.exports),
        wildcards = check_field(
            "wildcards",
            "wildcards",
            "Wildcard exports allowed",
            f.wildcards.is_some()
        ),
        bearer = check_field(
            "disallow_bearer",
            "disallow_bearer",
            "Refuse bearer-token users",
            f.disallow_bearer.is_some()
        ),
        js_mem = lim("js_mem", "Memory storage", &f.js_mem),
        js_disk = lim("js_disk", "Disk storage", &f.js_disk),
        js_streams = lim("js_streams", "Streams", &f.js_streams),
        js_consumer = lim("js_consumer", "Consumers", &f.js_consumer),
        js_ack = lim(
            "js_max_ack_pending",
            "Max ack pending",
            &f.js_max_ack_pending
        ),
        seg = seg(&a.name),
    );
    let status = problem.map_or(StatusCode::OK, |p| p.status);
    (
        status,
        page(
            &format!("Edit account {}", a.name),
            "/console/accounts",
            sess,
            seq,
            &body,
        ),
    )
        .into_response()
}

/// `GET /console/accounts/{name}/edit`.
pub(crate) async fn account_form(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ConsoleResult<Response> {
    let sess = form_session(&s, &headers, Scope::Write).await?;
    let w = s.ops(&sess);
    let seq = seq(&w).await?;
    let a = w.account(&name).await?;
    Ok(account_form_page(
        &sess,
        seq,
        &a,
        &AccountForm::from_view(&a),
        None,
    ))
}

/// `POST /console/accounts/{name}/edit`.
pub(crate) async fn edit_account(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<AccountForm>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    let w = s.ops(&sess);
    check_csrf(&sess, form.csrf.as_deref())?;
    let a = w.account(&name).await?;
    let result = match form.edit(&a.spec.limits, a.spec.description.as_deref()) {
        Err(e) => Err(Problem::from(e)),
        Ok((edit, desc)) => match w.edit_account(&a.name, &edit, desc).await {
            Ok(v) => Ok(v),
            Err(e) => Err(Problem::of(&e)),
        },
    };
    match result {
        Ok(v) => Ok(Redirect::to(&format!("/console/accounts/{}", seg(&v.name))).into_response()),
        Err(p) => {
            let seq = seq(&w).await?;
            Ok(account_form_page(&sess, seq, &a, &form, Some(&p)))
        }
    }
}

/// The name typed on a delete confirmation page.
#[derive(Deserialize)]
pub(crate) struct ConfirmForm {
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    csrf: Option<String>,
}

/// A delete confirmation page's content.
struct Confirm {
    title: String,
    /// What deleting takes with it (HTML).
    what: String,
    action: String,
    /// The name to type.
    name: String,
    cancel: String,
}

fn confirm_page(sess: &Session, seq: i64, c: &Confirm, problem: Option<&Problem>) -> Response {
    let Confirm {
        title,
        what,
        action,
        name,
        cancel,
    } = c;
    let body = format!(
        r#"{error}<section class="card" aria-labelledby="h-confirm">
<h2 id="h-confirm">Are you sure?</h2>
<p>{what}</p>
<form method="post" action="{action}" id="delete-form">
{csrf}
<label for="confirm">Type <code>{name}</code> to confirm</label>
<input id="confirm" name="confirm" required autocomplete="off">
<button type="submit" class="danger">Delete</button>
</form>
<p><a href="{cancel}">Cancel</a></p>
</section>"#,
        error = problem.map(Problem::block).unwrap_or_default(),
        csrf = csrf_field(&sess.csrf),
        name = esc(name),
    );
    let status = problem.map_or(StatusCode::OK, |p| p.status);
    (status, page(title, "/console/accounts", sess, seq, &body)).into_response()
}

fn account_confirm(a: &AccountView) -> Confirm {
    let base = format!("/console/accounts/{}", seg(&a.name));
    Confirm {
        title: format!("Delete account {}", a.name),
        what: format!(
            "Deleting account {} also deletes its {} user(s) and their keys, and removes the account from the NATS resolver. Its clients are disconnected. This cannot be undone.",
            account_link(&a.name),
            a.users
        ),
        action: format!("{base}/delete"),
        name: a.name.clone(),
        cancel: base,
    }
}

/// `GET /console/accounts/{name}/delete`: the confirmation page.
pub(crate) async fn account_delete_form(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ConsoleResult<Response> {
    let sess = form_session(&s, &headers, Scope::Write).await?;
    let w = s.ops(&sess);
    let seq = seq(&w).await?;
    let a = w.account(&name).await?;
    Ok(confirm_page(&sess, seq, &account_confirm(&a), None))
}

/// `POST /console/accounts/{name}/delete`.
pub(crate) async fn delete_account(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<ConfirmForm>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    let w = s.ops(&sess);
    check_csrf(&sess, form.csrf.as_deref())?;
    let a = w.account(&name).await?;
    let problem = if form.confirm.trim() != a.name {
        Some(Problem::invalid(format!(
            "type the account name {} exactly to delete it",
            a.name
        )))
    } else {
        match w.delete_account(&a.name).await {
            Ok(_) => None,
            Err(e) => Some(Problem::of(&e)),
        }
    };
    match problem {
        None => Ok(Redirect::to("/console/accounts").into_response()),
        Some(p) => {
            let seq = seq(&w).await?;
            Ok(confirm_page(&sess, seq, &account_confirm(&a), Some(&p)))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------

/// The user edit form's fields (all text, as typed).
#[derive(Deserialize, Default)]
pub(crate) struct UserForm {
    #[serde(default)]
    pub_allow: String,
    #[serde(default)]
    pub_deny: String,
    #[serde(default)]
    sub_allow: String,
    #[serde(default)]
    sub_deny: String,
    #[serde(default)]
    resp_max: String,
    #[serde(default)]
    resp_ttl: String,
    #[serde(default)]
    bearer: Option<String>,
    #[serde(default)]
    conn_types: String,
    #[serde(default)]
    src: String,
    #[serde(default)]
    expiry: String,
    #[serde(default)]
    subs: String,
    #[serde(default)]
    data: String,
    #[serde(default)]
    payload: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    csrf: Option<String>,
}

fn lines(list: &[Subject]) -> String {
    list.iter()
        .map(|s| s.as_str().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Subjects typed one per line (or separated by commas); a line `subject queue` is a
/// queue-group entry, so spaces inside a line do not separate.
fn subject_lines(field: &str, text: &str) -> Result<Vec<Subject>, FormError> {
    super::form_entries(text, false)
        .map_err(|e| FormError(format!("{field}: {e}")))?
        .iter()
        .map(|t| Subject::new(t).map_err(|e| FormError(format!("{field}: {e}"))))
        .collect()
}

/// Words of a free-text list field (spaces, commas and newlines separate; an empty
/// entry between commas is refused).
fn words(field: &str, text: &str) -> Result<Vec<String>, FormError> {
    super::form_entries(text, true).map_err(|e| FormError(format!("{field}: {e}")))
}

impl UserForm {
    fn from_view(u: &UserView) -> UserForm {
        let p = &u.spec.permissions;
        UserForm {
            pub_allow: lines(&p.publish.allow),
            pub_deny: lines(&p.publish.deny),
            sub_allow: lines(&p.subscribe.allow),
            sub_deny: lines(&p.subscribe.deny),
            resp_max: p
                .response
                .as_ref()
                .map(|r| r.max.to_string())
                .unwrap_or_default(),
            resp_ttl: p
                .response
                .as_ref()
                .map(|r| match r.ttl_ns {
                    0 => "0".to_string(),
                    ns if ns % 1_000_000 == 0 => format!("{}ms", ns / 1_000_000),
                    ns => format!("{ns}ns"),
                })
                .unwrap_or_default(),
            bearer: u.spec.bearer_token.then(|| "on".into()),
            conn_types: u
                .spec
                .allowed_connection_types
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            src: u.spec.src.join(" "),
            expiry: u.spec.expires_at.map(format_unix).unwrap_or_default(),
            subs: limit_text(u.spec.subs),
            data: limit_text(u.spec.data),
            payload: limit_text(u.spec.payload),
            tags: u.spec.tags.join(" "),
            csrf: None,
        }
    }

    /// The edit that turns `current` into what the form says.
    fn edit(&self, current: &UserSpec) -> Result<UserEdit, FormError> {
        let p = &current.permissions;
        let new = [
            subject_lines("Publish allow", &self.pub_allow)?,
            subject_lines("Publish deny", &self.pub_deny)?,
            subject_lines("Subscribe allow", &self.sub_allow)?,
            subject_lines("Subscribe deny", &self.sub_deny)?,
        ];
        if let Some(s) = new[0].iter().chain(&new[1]).find(|s| s.queue().is_some()) {
            return Err(FormError(format!(
                "publish permission {:?} has a queue group; queue groups apply to subscriptions only",
                s.as_str()
            )));
        }
        let old = [
            &p.publish.allow,
            &p.publish.deny,
            &p.subscribe.allow,
            &p.subscribe.deny,
        ];
        let mut perms = PermissionsEdit::default();
        // A subject whose lists changed is removed from all and added where it now is;
        // subjects that kept their lists stay where they are.
        let membership = |lists: [&Vec<Subject>; 4], s: &Subject| lists.map(|l| l.contains(s));
        let new_refs = [&new[0], &new[1], &new[2], &new[3]];
        for s in old.iter().flat_map(|l| l.iter()) {
            if membership(old, s) != membership(new_refs, s) && !perms.remove.contains(s) {
                perms.remove.push(s.clone());
            }
        }
        let adds = |i: usize| -> Vec<Subject> {
            new[i]
                .iter()
                .filter(|s| !old[i].contains(s) || perms.remove.contains(s))
                .cloned()
                .collect()
        };
        perms.allow_pub = adds(0);
        perms.deny_pub = adds(1);
        perms.allow_sub = adds(2);
        perms.deny_sub = adds(3);

        let resp = match (self.resp_max.trim(), self.resp_ttl.trim()) {
            ("", "") => None,
            (max, ttl) => {
                let max: i64 = max.parse().map_err(|_| {
                    FormError(format!(
                        "Response messages: {max:?} is not a number (1 or more)"
                    ))
                })?;
                if max < 1 {
                    return Err(FormError(format!(
                        "Response messages must be at least 1, got {max}"
                    )));
                }
                let ttl_ns = if ttl.is_empty() {
                    0
                } else {
                    parse_duration_ns(ttl)
                        .map_err(|e| FormError(format!("Response time limit: {e}")))?
                };
                Some(ResponsePermission { max, ttl_ns })
            }
        };
        if resp != p.response {
            match &resp {
                None => perms.remove_response = true,
                Some(r) => {
                    perms.allow_pub_response = Some(r.max);
                    perms.response_ttl_ns = Some(r.ttl_ns);
                }
            }
        }

        let conn_types: Vec<ConnectionType> = words("Connection types", &self.conn_types)?
            .iter()
            .map(|w| {
                w.parse::<ConnectionType>().map_err(|_| {
                    FormError(format!(
                        "unknown connection type {w:?}: use STANDARD, WEBSOCKET, LEAFNODE, LEAFNODE_WS, MQTT or MQTT_WS"
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
        let src: Vec<String> = words("Source networks", &self.src)?
            .iter()
            .map(|w| parse_cidr(w).map_err(|e| FormError(e.to_string())))
            .collect::<Result<_, _>>()?;
        let t = now();
        let expiry =
            parse_expiry(&self.expiry, t).map_err(|e| FormError(format!("Expiry: {e}")))?;
        let expiry = if expiry == current.expires_at {
            None
        } else {
            if let Some(at) = expiry
                && at <= t
            {
                return Err(FormError(format!(
                    "Expiry {} is in the past",
                    format_unix(at)
                )));
            }
            Some(expiry)
        };
        let changed = |old: i64, new: i64| (old != new).then_some(new);
        let tags: Vec<String> = words("Tags", &self.tags)?
            .iter()
            .map(|t| t.to_ascii_lowercase())
            .collect();
        let edit = UserEdit {
            permissions: perms,
            bearer: (current.bearer_token != self.bearer.is_some())
                .then_some(self.bearer.is_some()),
            add_conn_types: conn_types
                .iter()
                .filter(|c| !current.allowed_connection_types.contains(c))
                .copied()
                .collect(),
            remove_conn_types: current
                .allowed_connection_types
                .iter()
                .filter(|c| !conn_types.contains(c))
                .copied()
                .collect(),
            add_source_networks: src
                .iter()
                .filter(|c| !current.src.contains(c))
                .cloned()
                .collect(),
            remove_source_networks: current
                .src
                .iter()
                .filter(|c| !src.contains(c))
                .cloned()
                .collect(),
            expiry,
            subs: changed(current.subs, parse_limit("Subscriptions", &self.subs)?),
            data: changed(current.data, parse_limit("Data", &self.data)?),
            payload: changed(current.payload, parse_limit("Payload", &self.payload)?),
            add_tags: tags
                .iter()
                .filter(|t| !current.tags.contains(t))
                .cloned()
                .collect(),
            remove_tags: current
                .tags
                .iter()
                .filter(|t| !tags.contains(t))
                .cloned()
                .collect(),
        };
        if edit.is_empty() {
            return Err(FormError("no field was changed".into()));
        }
        Ok(edit)
    }
}

fn area(id: &str, label: &str, value: &str) -> String {
    format!(
        "<div><label for=\"{id}\">{label}</label><textarea id=\"{id}\" name=\"{id}\" rows=\"3\" autocomplete=\"off\">{}</textarea></div>",
        esc(value)
    )
}

fn user_form_page(
    sess: &Session,
    seq: i64,
    u: &UserView,
    f: &UserForm,
    problem: Option<&Problem>,
) -> Response {
    let base = format!(
        "/console/accounts/{}/users/{}",
        seg(&u.account),
        seg(&u.name)
    );
    let body = format!(
        r#"<p>User {link} in account {acc}. Subjects: one per line (or separated by commas; <code>subject queue</code> is a queue-group entry); an empty allow list allows everything not denied. Saving issues a new user JWT (download the creds again).</p>
{error}
<form method="post" action="{base}/edit" class="card" id="user-edit">
{csrf}
<fieldset><legend>Permissions</legend><div class="grid2">
{pa}{pd}{sa}{sd}
</div>
<div class="grid2">
{rmax}{rttl}
</div></fieldset>
<fieldset><legend>Connection</legend>
{bearer}
<div class="grid2">
{ct}{src}{exp}
</div></fieldset>
<fieldset><legend>Limits</legend><div class="grid2">
{subs}{data}{payload}
</div></fieldset>
<fieldset><legend>Tags</legend>
{tags}
</fieldset>
<button type="submit">Save user</button>
</form>
<p><a href="{base}">Cancel</a></p>"#,
        link = user_link(&u.account, &u.name),
        acc = account_link(&u.account),
        error = problem.map(Problem::block).unwrap_or_default(),
        csrf = csrf_field(&sess.csrf),
        pa = area("pub_allow", "Publish allow", &f.pub_allow),
        pd = area("pub_deny", "Publish deny", &f.pub_deny),
        sa = area("sub_allow", "Subscribe allow", &f.sub_allow),
        sd = area("sub_deny", "Subscribe deny", &f.sub_deny),
        rmax = text_field(
            "resp_max",
            "resp_max",
            "Responses: messages per request",
            &f.resp_max,
            "empty: no response permission"
        ),
        rttl = text_field(
            "resp_ttl",
            "resp_ttl",
            "Responses: time limit",
            &f.resp_ttl,
            "e.g. 5s, 500ms; empty or 0: none"
        ),
        bearer = check_field(
            "bearer",
            "bearer",
            "Bearer token (no nonce signature)",
            f.bearer.is_some()
        ),
        ct = text_field(
            "conn_types",
            "conn_types",
            "Connection types",
            &f.conn_types,
            "empty: all; STANDARD WEBSOCKET LEAFNODE LEAFNODE_WS MQTT MQTT_WS"
        ),
        src = text_field(
            "src",
            "src",
            "Source networks",
            &f.src,
            "CIDRs; empty: anywhere"
        ),
        exp = text_field(
            "expiry",
            "expiry",
            "Expires",
            &f.expiry,
            "empty or 0: never; 2027-01-31, 2027-01-31T12:00:00Z, 30d, 12h"
        ),
        subs = text_field("subs", "subs", "Subscriptions", &f.subs, ""),
        data = text_field("data", "data", "Data", &f.data, ""),
        payload = text_field("payload", "payload", "Max payload", &f.payload, ""),
        tags = text_field(
            "tags",
            "tags",
            "Tags",
            &f.tags,
            "separated by spaces; remove one to drop it"
        ),
    );
    let status = problem.map_or(StatusCode::OK, |p| p.status);
    (
        status,
        page(
            &format!("Edit user {} / {}", u.account, u.name),
            "/console/accounts",
            sess,
            seq,
            &body,
        ),
    )
        .into_response()
}

/// `GET /console/accounts/{account}/users/{user}/edit`.
pub(crate) async fn user_form(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path((account, user)): Path<(String, String)>,
) -> ConsoleResult<Response> {
    let sess = form_session(&s, &headers, Scope::Write).await?;
    let w = s.ops(&sess);
    let seq = seq(&w).await?;
    let u = w.user(&account, &user).await?;
    Ok(user_form_page(
        &sess,
        seq,
        &u,
        &UserForm::from_view(&u),
        None,
    ))
}

/// `POST /console/accounts/{account}/users/{user}/edit`.
pub(crate) async fn edit_user(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path((account, user)): Path<(String, String)>,
    Form(form): Form<UserForm>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    let w = s.ops(&sess);
    check_csrf(&sess, form.csrf.as_deref())?;
    let u = w.user(&account, &user).await?;
    let result = match form.edit(&u.spec) {
        Err(e) => Err(Problem::from(e)),
        Ok(edit) => match w.edit_user(&u.account, &u.name, &edit).await {
            Ok(v) => Ok(v),
            Err(e) => Err(Problem::of(&e)),
        },
    };
    match result {
        Ok(v) => Ok(Redirect::to(&format!(
            "/console/accounts/{}/users/{}",
            seg(&v.account),
            seg(&v.name)
        ))
        .into_response()),
        Err(p) => {
            let seq = seq(&w).await?;
            Ok(user_form_page(&sess, seq, &u, &form, Some(&p)))
        }
    }
}

fn user_confirm(u: &UserView) -> Confirm {
    let base = format!(
        "/console/accounts/{}/users/{}",
        seg(&u.account),
        seg(&u.name)
    );
    Confirm {
        title: format!("Delete user {} / {}", u.account, u.name),
        what: format!(
            "Deleting user {} of account {} revokes its key in the account (so copies of its creds stop working) and deletes its key. This cannot be undone.",
            user_link(&u.account, &u.name),
            account_link(&u.account)
        ),
        action: format!("{base}/delete"),
        name: u.name.clone(),
        cancel: base,
    }
}

/// `GET /console/accounts/{account}/users/{user}/delete`: the confirmation page.
pub(crate) async fn user_delete_form(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path((account, user)): Path<(String, String)>,
) -> ConsoleResult<Response> {
    let sess = form_session(&s, &headers, Scope::Write).await?;
    let w = s.ops(&sess);
    let seq = seq(&w).await?;
    let u = w.user(&account, &user).await?;
    Ok(confirm_page(&sess, seq, &user_confirm(&u), None))
}

/// `POST /console/accounts/{account}/users/{user}/delete`.
pub(crate) async fn delete_user(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path((account, user)): Path<(String, String)>,
    Form(form): Form<ConfirmForm>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    let w = s.ops(&sess);
    check_csrf(&sess, form.csrf.as_deref())?;
    let u = w.user(&account, &user).await?;
    let problem = if form.confirm.trim() != u.name {
        Some(Problem::invalid(format!(
            "type the user name {} exactly to delete it",
            u.name
        )))
    } else {
        match w.delete_user(&u.account, &u.name).await {
            Ok(_) => None,
            Err(e) => Some(Problem::of(&e)),
        }
    };
    match problem {
        None => Ok(Redirect::to(&format!("/console/accounts/{}", seg(&u.account))).into_response()),
        Some(p) => {
            let seq = seq(&w).await?;
            Ok(confirm_page(&sess, seq, &user_confirm(&u), Some(&p)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subj(s: &str) -> Subject {
        Subject::new(s).unwrap()
    }

    #[test]
    fn user_form_round_trips_to_no_change() {
        let mut spec = UserSpec::default();
        spec.permissions.publish.allow = vec![subj("a.>"), subj("b")];
        spec.permissions.subscribe.deny = vec![subj("secret.>")];
        spec.src = vec!["10.0.0.0/8".into()];
        spec.expires_at = Some(now() + 86_400);
        let u = UserView {
            name: "u".into(),
            account: "A".into(),
            public_key: String::new(),
            jwt: None,
            jwt_withheld: false,
            spec: spec.clone(),
            revoked_at: None,
            created_at: 0,
            updated_at: 0,
        };
        let f = UserForm::from_view(&u);
        assert!(matches!(f.edit(&spec), Err(FormError(m)) if m.contains("no field")));
    }

    #[test]
    fn user_form_diff_applies_to_the_typed_lists() {
        let mut spec = UserSpec::default();
        spec.permissions.publish.allow = vec![subj("a.>"), subj("shared")];
        spec.permissions.subscribe.allow = vec![subj("shared"), subj("x")];
        let f = UserForm {
            pub_allow: "a.>\nnew.*".into(),
            sub_allow: "shared, x".into(),
            sub_deny: "x.secret".into(),
            subs: "unlimited".into(),
            data: "-1".into(),
            payload: "1K".into(),
            ..UserForm::default()
        };
        let edit = f.edit(&spec).unwrap();
        let mut after = spec.clone();
        edit.apply(&mut after);
        let p = &after.permissions;
        assert_eq!(p.publish.allow, vec![subj("a.>"), subj("new.*")]);
        assert!(p.publish.deny.is_empty());
        let mut sa = p.subscribe.allow.clone();
        sa.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        assert_eq!(sa, vec![subj("shared"), subj("x")]);
        assert_eq!(p.subscribe.deny, vec![subj("x.secret")]);
        assert_eq!(after.payload, 1024);
    }

    #[test]
    fn bad_user_input_is_a_form_error() {
        let spec = UserSpec::default();
        for f in [
            UserForm {
                pub_allow: "a..b".into(),
                ..UserForm::default()
            },
            UserForm {
                pub_allow: "a q".into(),
                subs: "-1".into(),
                data: "-1".into(),
                payload: "-1".into(),
                ..UserForm::default()
            },
            UserForm {
                subs: "lots".into(),
                data: "-1".into(),
                payload: "-1".into(),
                ..UserForm::default()
            },
            UserForm {
                expiry: "2001-01-01".into(),
                subs: "-1".into(),
                data: "-1".into(),
                payload: "-1".into(),
                ..UserForm::default()
            },
            UserForm {
                resp_max: "0".into(),
                subs: "-1".into(),
                data: "-1".into(),
                payload: "-1".into(),
                ..UserForm::default()
            },
        ] {
            assert!(f.edit(&spec).is_err());
        }
    }

    #[test]
    fn account_form_sets_only_changed_limits() {
        let current = AccountLimitsSpec::default();
        let mut f = AccountForm {
            conn: "5".into(),
            leaf: "unlimited".into(),
            subs: "unlimited".into(),
            payload: "1M".into(),
            data: "-1".into(),
            imports: "unlimited".into(),
            exports: "unlimited".into(),
            wildcards: Some("on".into()),
            js_mem: "0".into(),
            js_disk: "0".into(),
            js_streams: "0".into(),
            js_consumer: "0".into(),
            js_max_ack_pending: "0".into(),
            ..AccountForm::default()
        };
        let (edit, desc) = f.edit(&current, None).unwrap();
        assert_eq!(edit.conns, Some(5));
        assert_eq!(edit.payload, Some(1 << 20));
        assert_eq!(edit.leaf_conns, None);
        assert_eq!(desc, None);
        f.conn = "-5".into();
        assert!(f.edit(&current, None).is_err());
        f.conn = String::new();
        assert!(f.edit(&current, None).is_err());
    }
}
