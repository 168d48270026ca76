//! The web console of `warden serve`, under `/console`: server-rendered HTML pages over
//! [`warden_ops`] (the same operations as the CLI and the HTTP API), readable with
//! JavaScript off, with its stylesheet and script embedded in the binary.
//!
//! - Sign-in takes an admin API token ([`Warden::authenticate_token`]); the console keeps a
//!   random session id in an `HttpOnly; SameSite=Strict` cookie and the token's id and
//!   scopes on the server, never the token itself. A session re-checks its token (revoked?
//!   expired?) on every request.
//! - Every read and change is an operation of [`warden_ops`] run as the session's
//!   [`warden_ops::Actor`] (the token's scopes): the operation decides whether the session
//!   may do it, as it does for the CLI and the HTTP API. The console only leaves out the
//!   buttons and forms a session's scopes could not use.
//! - An operation's error is shown through one mapping ([`status_of`]): a form's error
//!   appears on the page the form is on, with the navigation and the typed values kept.
//! - Every form POST carries a CSRF token that must equal the session's (the sign-in form
//!   uses a double-submit cookie, as there is no session yet).
//! - `GET /console/events` is a server-sent event stream of new ledger entries, which the
//!   embedded script uses to refresh the live parts of the open page.
//! - With the URL of the nats-server `serve` keeps in step, the sync page and the account
//!   pages ask that server for drift and usage through [`warden_ops::drift`] (bounded
//!   waits), the same operations as `warden sync` and `warden push`.

mod account_model;
mod callout;
mod directory;
mod edit;
mod feed;
mod fleet;
mod list;
mod operator;
mod pages;
mod proposals;
mod render;
mod svg;
mod sync;
mod views;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Form, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use data_encoding::BASE32_NOPAD;
use rand::RngCore as _;
use serde::Deserialize;
use tokio::sync::watch;

use warden_ops::drift::{DriftCache, ResolverLink};
use warden_ops::tokens::Scope;
use warden_ops::{ErrorKind, OpsError, Warden};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "warden_console";
/// Name of the sign-in form's double-submit CSRF cookie.
pub const LOGIN_COOKIE: &str = "warden_console_login";
/// How long a session lasts without being used.
const SESSION_IDLE: Duration = Duration::from_secs(8 * 3600);
/// Most sessions kept at once; the oldest are dropped first when full.
const MAX_SESSIONS: usize = 10_000;

/// A signed-in browser.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    /// The token it signed in with (`tok_…`), re-checked on every request.
    pub token_id: String,
    /// That token's name (for the ledger actor and the header).
    pub token_name: String,
    /// That token's scopes at sign-in.
    pub scopes: Vec<Scope>,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
    last_seen: Instant,
    /// A notice for the next page this session loads (the result of an action that
    /// redirected), kept server-side so no page reflects text from its URL.
    flash: Option<Flash>,
    /// The directory user this session acts as on the proposals page (governance acts
    /// as a directory user, not as the token), once picked.
    pub acting: Option<String>,
}

/// The result of an action, shown once on the next page.
#[derive(Clone, Debug)]
pub(crate) struct Flash {
    /// Whether the action succeeded.
    pub ok: bool,
    /// What to say.
    pub text: String,
}

impl Session {
    /// Whether to offer the buttons and forms of what needs `scope` (presentation only:
    /// the operation behind a form decides whether the session may do it).
    pub(crate) fn offers(&self, scope: Scope) -> bool {
        self.actor().has(scope)
    }

    /// Who the session's requests run as: the token it signed in with, with its scopes.
    pub(crate) fn actor(&self) -> warden_ops::Actor {
        warden_ops::Actor::console(&self.token_id, &self.token_name, &self.scopes)
    }
}

/// What the console's handlers share.
#[derive(Clone)]
pub(crate) struct ConsoleState {
    /// The engine; requests run on it bound to their session's actor ([`ConsoleState::ops`]).
    warden: Warden,
    sessions: Arc<Mutex<HashMap<String, Session>>>,
    /// Becomes `true` when the server shuts down, ending the event streams.
    pub closing: watch::Receiver<bool>,
    /// The nats-server to compare with and ask for usage, when known.
    pub server: Option<Arc<ResolverLink>>,
    /// The last comparison of that server's resolver with Warden, refreshed in the
    /// background (the sync page reads it instead of comparing on every load).
    pub drift: Option<Arc<DriftCache>>,
}

/// How often the background comparison of the nats-server's resolver with Warden runs
/// when nothing else asks for one (the relay's deliveries and "Check now" do): one
/// comparison asks the server about every account.
const DRIFT_EVERY: Duration = Duration::from_secs(60);

/// Bound on connecting to the nats-server and on each request to it.
pub(crate) const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// 32 random bytes, base32 (for session ids and CSRF tokens).
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    BASE32_NOPAD.encode(&bytes).to_lowercase()
}

/// Equality that takes the same time wherever the strings differ (for CSRF tokens).
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(name: &str, value: &str, max_age: u64) -> HeaderValue {
    // Path=/console keeps the cookie away from the JSON API; HttpOnly keeps it from
    // scripts; SameSite=Strict keeps other sites' forms from riding on it.
    // Secure while served over HTTPS: the browser then never sends it in the clear.
    let secure = if crate::http::tls::enabled() {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{name}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The entries of a list field of a form: one or more per line, separated by commas
/// (and, when `spaces_separate`, by spaces; otherwise spaces inside an entry are kept,
/// collapsed, as in `subject queue`). Blank lines are layout; an empty entry — nothing
/// between two commas, or a comma at the end — is refused, as the other surfaces refuse
/// a blank value, rather than dropped.
pub(crate) fn form_entries(text: &str, spaces_separate: bool) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        for part in line.split(',') {
            let words: Vec<&str> = part.split_whitespace().collect();
            if words.is_empty() {
                return Err(format!(
                    "an empty entry in {line:?} (nothing between two commas, or a comma at the end)"
                ));
            }
            if spaces_separate {
                out.extend(words.iter().map(|w| w.to_string()));
            } else {
                out.push(words.join(" "));
            }
        }
    }
    Ok(out)
}

/// The status of the console page that shows an error of kind `kind`: the one mapping of
/// [`ErrorKind`] for the console, used by every page and every form (a form's error is
/// shown on the form's page with this status).
pub fn status_of(kind: ErrorKind) -> StatusCode {
    // A console page answers with the status the HTTP API gives the same error.
    crate::http::status_of(kind)
}

/// What a page says about a failed request: the status it is shown with and the message.
#[derive(Clone, Debug)]
pub(crate) struct Problem {
    pub status: StatusCode,
    pub message: String,
}

impl Problem {
    /// Bad input the console itself found in a form (before any operation ran).
    pub(crate) fn invalid(message: impl Into<String>) -> Problem {
        Problem {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// An operation's error as the console shows it (Warden's own failures are logged,
    /// and only named on the page).
    pub(crate) fn of(e: &OpsError) -> Problem {
        let status = status_of(e.kind());
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "console request failed");
            "Warden failed to do this; the error is in its log.".to_string()
        } else {
            e.to_string()
        };
        Problem { status, message }
    }

    /// The block that shows it on top of a form (`id="form-error"`).
    pub(crate) fn block(&self) -> String {
        format!(
            "<div class=\"form-error\" id=\"form-error\" role=\"alert\" data-status=\"{}\"><p class=\"error\">Nothing was changed: {}</p></div>",
            self.status.as_u16(),
            render::esc(&self.message)
        )
    }
}

/// Why a console request is not answered with its page.
#[derive(Debug)]
pub(crate) enum ConsoleError {
    /// No (valid) session: go to the sign-in page.
    SignIn,
    /// A form page offered only to sessions whose token has the scope.
    Forbidden(Scope),
    /// A form without the session's CSRF token.
    Csrf,
    /// The operation failed.
    Ops(OpsError),
    /// Bad input in a form or query.
    Invalid(String),
}

impl From<OpsError> for ConsoleError {
    fn from(e: OpsError) -> Self {
        ConsoleError::Ops(e)
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            ConsoleError::SignIn => return Redirect::to("/console/login").into_response(),
            ConsoleError::Forbidden(scope) => (
                StatusCode::FORBIDDEN,
                "Not allowed",
                format!("The token you signed in with does not have the {scope} scope."),
            ),
            ConsoleError::Csrf => (
                StatusCode::FORBIDDEN,
                "Form refused",
                "The form did not carry this session's CSRF token. Reload the page and try again."
                    .to_string(),
            ),
            ConsoleError::Invalid(m) => (StatusCode::BAD_REQUEST, "Invalid input", m),
            ConsoleError::Ops(e) => {
                let p = Problem::of(&e);
                (p.status, "Request failed", p.message)
            }
        };
        (status, render::error_page(title, &message)).into_response()
    }
}

pub(crate) type ConsoleResult<T> = Result<T, ConsoleError>;

impl ConsoleState {
    /// The operations, run as the session's actor.
    pub(crate) fn ops(&self, sess: &Session) -> Warden {
        self.warden.with_actor(sess.actor())
    }

    /// Leaves `flash` for the next page of the request's session.
    pub(crate) fn set_flash(&self, headers: &HeaderMap, flash: Flash) {
        if let Some(sid) = cookie(headers, SESSION_COOKIE) {
            let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(sess) = map.get_mut(sid) {
                sess.flash = Some(flash);
            }
        }
    }

    /// Sets (or clears) the directory user the request's session acts as.
    pub(crate) fn set_acting(&self, headers: &HeaderMap, acting: Option<String>) {
        if let Some(sid) = cookie(headers, SESSION_COOKIE) {
            let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(sess) = map.get_mut(sid) {
                sess.acting = acting;
            }
        }
    }

    /// Takes the notice left for the request's session, if any.
    pub(crate) fn take_flash(&self, headers: &HeaderMap) -> Option<Flash> {
        let sid = cookie(headers, SESSION_COOKIE)?;
        let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        map.get_mut(sid).and_then(|sess| sess.flash.take())
    }
}

/// The signed-in session of a request (with its token re-checked), or [`ConsoleError::SignIn`].
pub(crate) async fn session(s: &ConsoleState, headers: &HeaderMap) -> ConsoleResult<Session> {
    let sid = cookie(headers, SESSION_COOKIE).ok_or(ConsoleError::SignIn)?;
    let found = {
        let mut map = s.sessions.lock().unwrap_or_else(|p| p.into_inner());
        match map.get_mut(sid) {
            Some(sess) if sess.last_seen.elapsed() < SESSION_IDLE => {
                sess.last_seen = Instant::now();
                Some(sess.clone())
            }
            Some(_) => {
                map.remove(sid);
                None
            }
            None => None,
        }
    };
    let sess = found.ok_or(ConsoleError::SignIn)?;
    // A token revoked or expired since sign-in ends the session at once.
    if !s.warden.token_is_live(&sess.token_id).await? {
        s.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(sid);
        return Err(ConsoleError::SignIn);
    }
    Ok(sess)
}

/// The session, for a page that is only a form for what needs `scope` (an edit or delete
/// form): a session that could not submit it is not offered it. Presentation only: the
/// operation behind the form decides.
pub(crate) async fn form_session(
    s: &ConsoleState,
    headers: &HeaderMap,
    scope: Scope,
) -> ConsoleResult<Session> {
    let sess = session(s, headers).await?;
    if sess.offers(scope) {
        Ok(sess)
    } else {
        Err(ConsoleError::Forbidden(scope))
    }
}

/// Checks the `csrf` field of a form against the session's token.
pub(crate) fn check_csrf(sess: &Session, sent: Option<&str>) -> ConsoleResult<()> {
    match sent {
        Some(t) if same_secret(t, &sess.csrf) => Ok(()),
        _ => Err(ConsoleError::Csrf),
    }
}

/// The console's routes, to be nested under `/console`. `closing` turning `true` ends
/// the event streams (so a graceful shutdown does not wait for open browsers); `nats` is
/// the server whose resolver the sync page compares with Warden (none: it says so).
pub fn router(warden: Warden, closing: watch::Receiver<bool>, nats: Option<String>) -> Router {
    let server = nats.map(|url| Arc::new(ResolverLink::new(url, ASK_TIMEOUT)));
    // The comparison shown on the sync page is kept fresh in the background from now on,
    // until the server stops: every DRIFT_EVERY, after the relay delivered changes, and
    // when a page asks.
    let drift = server.as_ref().map(|link| {
        let cache = Arc::new(DriftCache::new(link.clone()));
        tokio::spawn(cache.clone().run(
            warden.clone(),
            DRIFT_EVERY,
            || crate::http::metrics::observed().relay.snapshot().delivered,
            closing.clone(),
        ));
        cache
    });
    let state = ConsoleState {
        warden,
        sessions: Arc::new(Mutex::new(HashMap::new())),
        closing,
        server,
        drift,
    };
    use pages as p;
    Router::new()
        .route("/", get(p::overview))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/accounts", get(p::accounts).post(p::add_account))
        .route("/accounts/{name}", get(p::account))
        .route("/accounts/{name}/users", post(p::add_user))
        .route("/accounts/{account}/users/{user}", get(p::user))
        .route(
            "/accounts/{account}/users/{user}/revoke",
            post(p::revoke_user),
        )
        .route("/accounts/{account}/users/{user}/creds", get(p::creds))
        .route("/hierarchy", get(p::hierarchy))
        .route("/hierarchy.svg", get(p::hierarchy_svg))
        .route("/devices", get(p::devices))
        .route("/devices/{id}", get(fleet::device))
        .route("/devices/{id}/rotate", post(fleet::rotate_device))
        .route("/devices/{id}/revoke", post(fleet::revoke_device))
        .route("/devices/{id}/restore", post(fleet::restore_device))
        .route("/tenants", get(p::tenants))
        .route("/tenants/{slug}", get(fleet::tenant))
        .route("/tenants/{slug}/suspend", post(fleet::suspend_tenant))
        .route("/tenants/{slug}/resume", post(fleet::resume_tenant))
        .route("/tenants/{slug}/packages", post(fleet::create_package))
        .route("/ledger", get(p::ledger))
        .route(
            "/accounts/{name}/edit",
            get(edit::account_form).post(edit::edit_account),
        )
        .route(
            "/accounts/{name}/delete",
            get(edit::account_delete_form).post(edit::delete_account),
        )
        .route(
            "/accounts/{account}/users/{user}/edit",
            get(edit::user_form).post(edit::edit_user),
        )
        .route(
            "/accounts/{account}/users/{user}/delete",
            get(edit::user_delete_form).post(edit::delete_user),
        )
        .route("/accounts/{name}/exports", post(account_model::add_export))
        .route(
            "/accounts/{name}/exports/remove",
            post(account_model::remove_export),
        )
        .route(
            "/accounts/{name}/exports/revoke",
            post(account_model::revoke_activation),
        )
        .route("/accounts/{name}/imports", post(account_model::add_import))
        .route(
            "/accounts/{name}/imports/remove",
            post(account_model::remove_import),
        )
        .route(
            "/accounts/{name}/signing-keys",
            post(account_model::add_signing_key),
        )
        .route(
            "/accounts/{name}/signing-keys/rotate",
            post(account_model::rotate_signing_key),
        )
        .route(
            "/accounts/{name}/signing-keys/remove",
            post(account_model::remove_signing_key),
        )
        .route(
            "/accounts/{name}/mappings",
            post(account_model::add_mapping),
        )
        .route(
            "/accounts/{name}/mappings/remove",
            post(account_model::remove_mapping),
        )
        .route(
            "/accounts/{name}/settings",
            get(account_model::settings_form).post(account_model::edit_settings),
        )
        .route(
            "/accounts/{account}/users/{user}/rotate",
            post(account_model::rotate_user),
        )
        .route("/operator", get(operator::operator_page))
        .route("/callout", get(callout::callout_page))
        .route("/operator/rotate", post(operator::rotate))
        .route("/operator/keys", post(operator::add_key))
        .route("/operator/keys/remove", post(operator::remove_key))
        .route("/sync", get(sync::sync_page))
        .route("/sync/fix", post(sync::fix))
        .route("/sync/check", post(sync::check_now))
        .route("/sync/push", post(sync::push_selected))
        .route("/sync/push/{name}", post(sync::push))
        .route("/onboarding", get(views::packages))
        .route("/onboarding/{id}/revoke", post(views::revoke_package))
        .route("/rooms", get(views::rooms))
        .route("/rooms/{id}", get(views::room))
        .route("/events", get(feed::events))
        .route("/directory", get(directory::directory))
        .route("/directory/users/{id}", get(directory::dir_user))
        .route("/directory/roles/{name}", get(directory::role))
        .route("/directory/tasks/{name}", get(directory::task))
        .route("/proposals", get(proposals::inbox))
        .route("/proposals/act-as", post(proposals::act_as))
        .route("/proposals/decide", post(proposals::decide))
        .route("/proposals/new", post(proposals::propose))
        .route("/assets/console.css", get(css))
        .route("/assets/console.js", get(js))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

/// Headers every console answer carries: no framing, no sniffing, no inline scripts or
/// styles (the page works from its two embedded assets only), no referrer leaks.
async fn security_headers(req: Request, next: axum::middleware::Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    res
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        render::error_page("Not found", "There is no such console page."),
    )
        .into_response()
}

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// `GET /console/login`: the sign-in form, with a fresh double-submit CSRF cookie.
async fn login_page() -> Response {
    let csrf = random_token();
    let mut res = render::login_page(&csrf, None).into_response();
    res.headers_mut()
        .append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, &csrf, 3600));
    res
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: Option<String>,
}

/// `POST /console/login`: checks the token against the store; on success starts a session.
async fn login(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let cookie_csrf = cookie(&headers, LOGIN_COOKIE);
    let csrf_ok =
        matches!((cookie_csrf, form.csrf.as_deref()), (Some(c), Some(f)) if same_secret(c, f));
    if !csrf_ok {
        return ConsoleError::Csrf.into_response();
    }
    let info = match s.warden.authenticate_token(form.token.trim()).await {
        Ok(info) => info,
        Err(e) if e.kind() != ErrorKind::Refused => return ConsoleError::Ops(e).into_response(),
        Err(_) => {
            // Same answer for unknown, revoked and expired tokens; a new form CSRF value.
            let csrf = random_token();
            let mut res = (
                StatusCode::UNAUTHORIZED,
                render::login_page(
                    &csrf,
                    Some("That token was refused (unknown, revoked or expired)."),
                ),
            )
                .into_response();
            res.headers_mut()
                .append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, &csrf, 3600));
            return res;
        }
    };
    if let Err(e) = s.warden.console_sign_in(&info) {
        tracing::info!(token_id = %info.id, error = %e, "console sign-in refused");
        return ConsoleError::Ops(e).into_response();
    }
    tracing::info!(token_id = %info.id, "console sign-in");
    let sid = random_token();
    {
        let mut map = s.sessions.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, v| v.last_seen.elapsed() < SESSION_IDLE);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, v)| v.last_seen)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            sid.clone(),
            Session {
                token_id: info.id,
                token_name: info.name,
                scopes: info.scopes,
                csrf: random_token(),
                last_seen: Instant::now(),
                flash: None,
                acting: None,
            },
        );
    }
    let mut res = Redirect::to("/console").into_response();
    let h = res.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &sid, SESSION_IDLE.as_secs()),
    );
    h.append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, "", 0));
    res
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: Option<String>,
}

/// `POST /console/logout`: ends the session (server side) and clears the cookie.
async fn logout(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    check_csrf(&sess, form.csrf.as_deref())?;
    if let Some(sid) = cookie(&headers, SESSION_COOKIE) {
        s.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(sid);
    }
    let mut res = Redirect::to("/console/login").into_response();
    res.headers_mut()
        .append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::form_entries;

    #[test]
    fn list_fields_split_and_refuse_empty_entries() {
        assert_eq!(
            form_entries("a.>, b.*\n\n  c.> q  \n", false).unwrap(),
            ["a.>", "b.*", "c.> q"]
        );
        assert_eq!(
            form_entries("10.0.0.0/8 192.168.0.1, ::1", true).unwrap(),
            ["10.0.0.0/8", "192.168.0.1", "::1"]
        );
        // A field left blank is no entries; an empty entry between commas is an error.
        assert!(form_entries("  \n ", true).unwrap().is_empty());
        for bad in ["a, ,b", "a,", ",a", " , "] {
            let e = form_entries(bad, true).unwrap_err();
            assert!(e.contains("empty entry"), "{bad:?}: {e}");
        }
    }
}
