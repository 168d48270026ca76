//! The console's device and tenant pages: one device (its state, account, user, subjects,
//! stream and history) with **rotate**, **revoke** and **restore**; one tenant (state,
//! account, prefix, limits, users, its onboarding packages) with **suspend**, **resume**
//! and a form that makes an onboarding package. Each action runs the same operation as
//! `warden device …`, `warden tenant …` and `warden onboarding create`, as the session's
//! actor; a refused one is shown on the page it was sent from, with the navigation, the
//! values typed and the status of its kind, nothing changed.

use std::fmt::Write as _;

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use warden_core::device::DeviceState;
use warden_ops::onboarding::NewPackage;
use warden_ops::tokens::Scope;

use super::pages::{account_link, csrf_field, device_state_class, seq, user_link};
use super::render::{esc, limit, page, plural, seg, short_key, size, when};
use super::{ConsoleResult, ConsoleState, CsrfForm, Flash, Problem, Session, check_csrf, session};

/// The notice of the last action (from the session), or the problem of a form.
fn notice(flash: Option<Flash>, problem: Option<&Problem>) -> String {
    match (flash, problem) {
        (_, Some(p)) => p.block(),
        (Some(Flash { ok: true, text }), None) => format!(
            "<p class=\"notice\" role=\"status\" id=\"action-notice\">{}</p>",
            esc(&text)
        ),
        (Some(Flash { ok: false, text }), None) => format!(
            "<div class=\"form-error\" role=\"alert\" id=\"action-notice\"><p class=\"error\">{}</p></div>",
            esc(&text)
        ),
        (None, None) => String::new(),
    }
}

fn post_button(action: &str, csrf: &str, id: &str, label: &str, danger: bool) -> String {
    format!(
        "<form class=\"inline\" method=\"post\" action=\"{}\">{}<button type=\"submit\" id=\"{id}\"{}>{label}</button></form>",
        esc(action),
        csrf_field(csrf),
        if danger { " class=\"danger\"" } else { "" }
    )
}

// ---------------------------------------------------------------------------------------
// Devices
// ---------------------------------------------------------------------------------------

/// `GET /console/devices/{id}`.
pub(crate) async fn device(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    let flash = s.take_flash(&headers);
    render_device(&s, &sess, &id, flash, None).await
}

async fn render_device(
    s: &ConsoleState,
    sess: &Session,
    id: &str,
    flash: Option<Flash>,
    problem: Option<&Problem>,
) -> ConsoleResult<Response> {
    let w = s.ops(sess);
    let seq = seq(&w).await?;
    let d = w.device(id).await?;
    let base = format!("/console/devices/{}", seg(&d.id));
    let mut actions = String::new();
    if sess.offers(Scope::Write) {
        match d.state {
            DeviceState::Revoked => actions.push_str(&post_button(
                &format!("{base}/restore"),
                &sess.csrf,
                "restore-device",
                "Restore device",
                false,
            )),
            _ => {
                actions.push_str(&post_button(
                    &format!("{base}/rotate"),
                    &sess.csrf,
                    "rotate-device",
                    "Rotate key",
                    false,
                ));
                actions.push(' ');
                actions.push_str(&post_button(
                    &format!("{base}/revoke"),
                    &sess.csrf,
                    "revoke-device",
                    "Revoke device",
                    true,
                ));
            }
        }
    }
    let actions = if actions.is_empty() {
        String::new()
    } else {
        format!(
            "<div class=\"actions\" id=\"device-actions\">{actions}</div><p class=\"hint\">Rotate gives the device a new user key (the old one is revoked; fetch the new creds with <code>warden device creds</code>). Revoke cuts it off (its account is deleted from the resolver); restore brings it back.</p>"
        )
    };
    let body = format!(
        r#"{notice}<section id="device" data-live aria-labelledby="h-device"><h2 id="h-device">State</h2>
<dl class="facts">
<dt>State</dt><dd id="device-state" data-state="{state}" class="{cls}">{state}</dd>
<dt>Account</dt><dd>{account} {account_key}</dd>
<dt>User</dt><dd>{user} {user_key}</dd>
<dt>To the device</dt><dd><code>{to}</code></dd>
<dt>From the device</dt><dd><code>{from}</code></dd>
<dt>Stream</dt><dd><code>{stream}</code> (JetStream API <code>{js}</code>)</dd>
<dt>Created</dt><dd>{created}</dd>
<dt>First connected</dt><dd>{activated}</dd>
<dt>Key rotated</dt><dd>{rotated}</dd>
<dt>Revoked</dt><dd>{revoked}</dd>
<dt>Restored</dt><dd>{restored}</dd>
</dl>
{actions}
</section>
<p><a href="/console/devices">All devices</a></p>"#,
        notice = notice(flash, problem),
        state = esc(d.state.as_str()),
        cls = device_state_class(d.state),
        account = account_link(&d.account),
        account_key = short_key(&d.account_key),
        user = user_link(&d.account, &d.user),
        user_key = short_key(&d.user_key),
        to = esc(&d.to_device),
        from = esc(&d.from_device),
        stream = esc(&d.stream),
        js = esc(&d.js_api_prefix),
        created = esc(&when(Some(d.created_at))),
        activated = esc(&when(d.activated_at)),
        rotated = esc(&when(d.rotated_at)),
        revoked = esc(&when(d.revoked_at)),
        restored = esc(&when(d.restored_at)),
    );
    let status = problem.map_or(StatusCode::OK, |p| p.status);
    let html = page(
        &format!("Device {}", d.id),
        "/console/devices",
        sess,
        seq,
        &body,
    );
    Ok((status, html).into_response())
}

/// What a device action did, for the notice on the device page.
enum DeviceAction {
    Rotate,
    Revoke,
    Restore,
}

async fn device_action(
    s: ConsoleState,
    headers: HeaderMap,
    id: String,
    form: CsrfForm,
    action: DeviceAction,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    check_csrf(&sess, form.csrf.as_deref())?;
    let w = s.ops(&sess);
    let done = match action {
        DeviceAction::Rotate => w
            .rotate_device(&id)
            .await
            .map(|(d, _)| format!("Device {} has a new user key ({}).", d.id, d.user)),
        DeviceAction::Revoke => w
            .revoke_device(&id)
            .await
            .map(|d| format!("Device {} is revoked.", d.id)),
        DeviceAction::Restore => w
            .restore_device(&id)
            .await
            .map(|d| format!("Device {} is restored.", d.id)),
    };
    match done {
        Ok(text) => {
            tracing::info!(token_id = %sess.token_id, device = %id, "console device action");
            s.set_flash(&headers, Flash { ok: true, text });
            Ok(Redirect::to(&format!("/console/devices/{}", seg(&id))).into_response())
        }
        Err(e) => render_device(&s, &sess, &id, None, Some(&Problem::of(&e))).await,
    }
}

/// `POST /console/devices/{id}/rotate`.
pub(crate) async fn rotate_device(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> ConsoleResult<Response> {
    device_action(s, headers, id, form, DeviceAction::Rotate).await
}

/// `POST /console/devices/{id}/revoke`.
pub(crate) async fn revoke_device(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> ConsoleResult<Response> {
    device_action(s, headers, id, form, DeviceAction::Revoke).await
}

/// `POST /console/devices/{id}/restore`.
pub(crate) async fn restore_device(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> ConsoleResult<Response> {
    device_action(s, headers, id, form, DeviceAction::Restore).await
}

// ---------------------------------------------------------------------------------------
// Tenants
// ---------------------------------------------------------------------------------------

/// The new-package form of the tenant page.
#[derive(Deserialize, Default)]
pub(crate) struct PackageForm {
    #[serde(default)]
    component: String,
    #[serde(default)]
    site: String,
    #[serde(default)]
    nats_url: String,
    /// Hours the one-time download token lives.
    #[serde(default)]
    hours: String,
    #[serde(default)]
    csrf: Option<String>,
}

/// `GET /console/tenants/{slug}`.
pub(crate) async fn tenant(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path(slug): Path<String>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    let flash = s.take_flash(&headers);
    render_tenant(&s, &sess, &slug, flash, None, None).await
}

/// The tenant page, with the notice of an action, or the problem of a form sent from it
/// and the values typed into the package form.
async fn render_tenant(
    s: &ConsoleState,
    sess: &Session,
    slug: &str,
    flash: Option<Flash>,
    problem: Option<&Problem>,
    typed: Option<&PackageForm>,
) -> ConsoleResult<Response> {
    let w = s.ops(sess);
    let seq = seq(&w).await?;
    let t = w.tenant(slug).await?;
    let packages = w.list_packages(Some(&t.slug)).await?;
    let base = format!("/console/tenants/{}", seg(&t.slug));
    let actions = if sess.offers(Scope::Write) {
        let b = if t.state == "suspended" {
            post_button(
                &format!("{base}/resume"),
                &sess.csrf,
                "resume-tenant",
                "Resume tenant",
                false,
            )
        } else {
            post_button(
                &format!("{base}/suspend"),
                &sess.csrf,
                "suspend-tenant",
                "Suspend tenant",
                true,
            )
        };
        format!(
            "<div class=\"actions\" id=\"tenant-actions\">{b}</div><p class=\"hint\">Suspending refuses the tenant's connections and leaf nodes and revokes every user issued so far; resuming gives its limits back. Keys and users are kept.</p>"
        )
    } else {
        String::new()
    };
    let l = &t.limits;
    let limits = format!(
        "<dl class=\"facts\"><dt>Connections</dt><dd>{}</dd><dt>Leaf connections</dt><dd>{}</dd><dt>Subscriptions</dt><dd>{}</dd><dt>Payload</dt><dd>{}</dd><dt>Data</dt><dd>{}</dd><dt>JetStream memory</dt><dd>{}</dd><dt>JetStream disk</dt><dd>{}</dd><dt>JetStream streams</dt><dd>{}</dd></dl>",
        limit(l.conns),
        limit(l.leaf_conns),
        limit(l.subscriptions),
        size(l.payload),
        size(l.data),
        size(l.js_mem),
        size(l.js_disk),
        limit(l.js_streams),
    );
    let users = if t.users.is_empty() {
        "<p class=\"muted\">No users yet.</p>".to_string()
    } else {
        let items: Vec<String> = t
            .users
            .iter()
            .map(|u| format!("<li>{}</li>", user_link(&t.account, u)))
            .collect();
        format!("<ul id=\"tenant-users\">{}</ul>", items.join(""))
    };
    let mut pkg_rows = String::new();
    for p in packages.iter().rev().take(20) {
        let _ = write!(
            pkg_rows,
            "<tr id=\"pkg-{id}\"><td><code>{id}</code></td><td>{comp} @ {site}</td><td data-state=\"{state}\">{state}</td><td>{issued}</td></tr>",
            id = esc(&p.id),
            comp = esc(&p.component),
            site = esc(&p.site),
            state = esc(&p.state),
            issued = esc(&when(Some(p.issued_at))),
        );
    }
    if pkg_rows.is_empty() {
        pkg_rows = "<tr><td colspan=\"4\" class=\"muted\">none</td></tr>".into();
    }
    let default_url = s.server.as_ref().map(|l| l.url().to_string());
    let typed_url = typed.map(|f| f.nats_url.as_str()).unwrap_or("");
    let create = if sess.offers(Scope::Write) && sess.offers(Scope::Creds) || typed.is_some() {
        format!(
            r#"<form method="post" action="{base}/packages" class="card" id="new-package">{csrf}
<h3>New onboarding package</h3>
<div class="grid2">
<div><label for="pkg-component">Collector component</label><input id="pkg-component" name="component" value="{component}" required autocomplete="off" placeholder="flowgger"></div>
<div><label for="pkg-site">Site</label><input id="pkg-site" name="site" value="{site}" required autocomplete="off" placeholder="paris"></div>
<div><label for="pkg-url">NATS URL for the collector</label><input id="pkg-url" name="nats_url" value="{url}" required autocomplete="off"></div>
<div><label for="pkg-hours">Download token valid for (hours)</label><input id="pkg-hours" name="hours" value="{hours}" inputmode="numeric" autocomplete="off"></div>
</div>
<button type="submit" id="create-package">Create package</button>
<p class="hint">The one-time download token is shown once, on the next page (as <code>warden onboarding create</code> prints it).</p>
</form>"#,
            csrf = csrf_field(&sess.csrf),
            component = esc(typed.map_or("", |f| f.component.as_str())),
            site = esc(typed.map_or("", |f| f.site.as_str())),
            url = esc(if typed.is_some() {
                typed_url
            } else {
                default_url.as_deref().unwrap_or("")
            }),
            hours = esc(typed.map_or("24", |f| f.hours.as_str())),
        )
    } else {
        String::new()
    };
    let body = format!(
        r#"{notice}<section id="tenant" data-live aria-labelledby="h-tenant"><h2 id="h-tenant">State</h2>
<dl class="facts">
<dt>State</dt><dd id="tenant-state" data-state="{state}" class="{cls}">{state}</dd>
<dt>Account</dt><dd>{account} {account_key}</dd>
<dt>Platform account</dt><dd>{platform}</dd>
<dt>Subject prefix</dt><dd><code>{prefix}</code></dd>
<dt>Created</dt><dd>{created}</dd>
<dt>Suspended</dt><dd>{suspended}</dd>
</dl>
{actions}
</section>
<section aria-labelledby="h-tenant-limits"><h2 id="h-tenant-limits">Limits</h2>{limits}</section>
<section id="tenant-users-section" data-live aria-labelledby="h-tenant-users"><h2 id="h-tenant-users">{n_users}</h2>{users}</section>
<section id="tenant-packages" data-live aria-labelledby="h-tenant-packages"><h2 id="h-tenant-packages">{n_packages}</h2>
<div class="scroll"><table><thead><tr><th scope="col">Package</th><th scope="col">Collector</th><th scope="col">State</th><th scope="col">Issued</th></tr></thead><tbody>{pkg_rows}</tbody></table></div>
<p><a href="/console/onboarding?tenant={slug_q}" id="tenant-packages-link">All packages of {slug} (with revoke)</a></p></section>
{create}
<p><a href="/console/tenants">All tenants</a></p>"#,
        notice = notice(flash, problem),
        state = esc(&t.state),
        cls = if t.state == "active" { "ok" } else { "bad" },
        account = account_link(&t.account),
        account_key = short_key(&t.account_key),
        platform = account_link(&t.platform_account),
        prefix = esc(&t.prefix),
        created = esc(&when(Some(t.created_at))),
        suspended = esc(&when(t.suspended_at)),
        n_users = plural(t.users.len(), "user", "users"),
        n_packages = plural(packages.len(), "onboarding package", "onboarding packages"),
        slug_q = seg(&t.slug),
        slug = esc(&t.slug),
    );
    let status = problem.map_or(StatusCode::OK, |p| p.status);
    let html = page(
        &format!("Tenant {}", t.slug),
        "/console/tenants",
        sess,
        seq,
        &body,
    );
    Ok((status, html).into_response())
}

async fn tenant_action(
    s: ConsoleState,
    headers: HeaderMap,
    slug: String,
    form: CsrfForm,
    suspend: bool,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    check_csrf(&sess, form.csrf.as_deref())?;
    let w = s.ops(&sess);
    let done = if suspend {
        w.suspend_tenant(&slug).await
    } else {
        w.resume_tenant(&slug).await
    };
    match done {
        Ok(t) => {
            tracing::info!(token_id = %sess.token_id, tenant = %t.slug, suspend, "console tenant action");
            let text = format!(
                "Tenant {} is {}.",
                t.slug,
                if suspend { "suspended" } else { "resumed" }
            );
            s.set_flash(&headers, Flash { ok: true, text });
            Ok(Redirect::to(&format!("/console/tenants/{}", seg(&t.slug))).into_response())
        }
        Err(e) => render_tenant(&s, &sess, &slug, None, Some(&Problem::of(&e)), None).await,
    }
}

/// `POST /console/tenants/{slug}/suspend`.
pub(crate) async fn suspend_tenant(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path(slug): Path<String>,
    Form(form): Form<CsrfForm>,
) -> ConsoleResult<Response> {
    tenant_action(s, headers, slug, form, true).await
}

/// `POST /console/tenants/{slug}/resume`.
pub(crate) async fn resume_tenant(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path(slug): Path<String>,
    Form(form): Form<CsrfForm>,
) -> ConsoleResult<Response> {
    tenant_action(s, headers, slug, form, false).await
}

/// `POST /console/tenants/{slug}/packages`: `warden onboarding create` for this tenant;
/// the answer shows the one-time download token once (it is not kept anywhere).
pub(crate) async fn create_package(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path(slug): Path<String>,
    Form(form): Form<PackageForm>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    check_csrf(&sess, form.csrf.as_deref())?;
    let hours: i64 = match form.hours.trim() {
        "" => 24,
        h => match h.parse::<i64>() {
            Ok(n) if (1..=24 * 365).contains(&n) => n,
            _ => {
                let p = Problem::invalid(format!(
                    "download token life {h:?}: give a whole number of hours from 1 to 8760"
                ));
                return render_tenant(&s, &sess, &slug, None, Some(&p), Some(&form)).await;
            }
        },
    };
    let w = s.ops(&sess);
    let issued = w
        .create_package(&NewPackage {
            tenant: slug.clone(),
            component: form.component.trim().to_string(),
            site: form.site.trim().to_string(),
            token_expires_at: warden_ops::now().saturating_add(hours * 3600),
            nats_url: form.nats_url.trim().to_string(),
            install_dir: None,
        })
        .await;
    let issued = match issued {
        Ok(i) => i,
        Err(e) => {
            let p = Problem::of(&e);
            return render_tenant(&s, &sess, &slug, None, Some(&p), Some(&form)).await;
        }
    };
    tracing::info!(token_id = %sess.token_id, tenant = %slug, package = %issued.package.id, "console onboarding package");
    let seq = seq(&w).await?;
    let p = &issued.package;
    let body = format!(
        r#"<p class="notice" role="status" id="package-created">Package <code>{id}</code> made for {comp} @ {site} of tenant {tenant}.</p>
<section class="card" aria-labelledby="h-token"><h2 id="h-token">One-time download token</h2>
<p><code id="package-token" class="secret">{token}</code></p>
<p class="hint">Shown once: give it to whoever installs the collector. It downloads the package once, before {expires}, with <code>POST /v1/onboarding/download</code> and the body <code>{{"token": "…"}}</code>.</p></section>
<p><a href="/console/tenants/{slug_seg}">Back to tenant {tenant}</a> · <a href="/console/onboarding?tenant={slug_seg}">Its packages</a></p>"#,
        id = esc(&p.id),
        comp = esc(&p.component),
        site = esc(&p.site),
        tenant = esc(&p.tenant),
        token = esc(issued.token.as_str()),
        expires = esc(&when(Some(p.token_expires_at))),
        slug_seg = seg(&p.tenant),
    );
    Ok(page(
        &format!("Package for {}", p.tenant),
        "/console/tenants",
        &sess,
        seq,
        &body,
    )
    .into_response())
}
