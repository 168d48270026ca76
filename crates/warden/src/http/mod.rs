//! The HTTP API of `warden serve`: JSON over HTTP/1.1 on top of [`warden_ops`], so a
//! request does exactly what the matching CLI command does (same validation, same one
//! transaction with its ledger event and outbox row).
//!
//! - `GET /healthz`, `GET /readyz`, `GET /openapi.json` and `GET /metrics` (Prometheus
//!   text, counts only: see [`metrics`]) need no token. `/readyz` is 503 only while
//!   starting or stopping or when the database does not answer; NATS unreachable is
//!   `200 {"status":"degraded"}`, since the API and the console keep working then (changes
//!   wait in the outbox) and a load balancer must not take every `serve` out at once.
//! - `/v1/onboarding/download` needs no bearer token: the package's one-time download
//!   token is its credential (see [`onboarding`]).
//! - Everything else under `/v1/` needs `Authorization: Bearer wdn_…` (see
//!   [`warden_ops::tokens`]); a missing or refused token is `401 unauthorized` (with
//!   `WWW-Authenticate: Bearer`). The middleware only says who the token is: each
//!   handler runs its operation as [`warden_ops::Actor::token`], and the operation decides
//!   what the token's scopes allow (`read` for reads, `write` for changes, `creds` for
//!   anything that lets its holder connect to NATS; `admin` grants all), answering
//!   `403 forbidden` otherwise. The changes that issue creds (`POST /v1/devices`,
//!   `/v1/devices/bulk`, `/v1/devices/{id}/rotate`, `POST /v1/tenants/{slug}/users`) need
//!   `write` and carry the creds only for a token that also has `creds`; a bearer user's
//!   JWT is withheld (`"jwt": null, "jwt_withheld": true`) from a token without `creds`.
//!   `POST /v1/accounts/{account}/users/{user}/rotate` answers the new creds, so it needs
//!   `creds` (and `write`); the operator's signing keys change only with `admin`.
//! - The account model's routes (`account_model.rs`) choose an export, an import or a
//!   mapping source by its subject in the query string (`?subject=orders.%3E`).
//! - The auth callout's routes (`callout.rs`) change its set-up and authenticators with
//!   `admin` only; the sentinel's creds need `creds`. A new authenticator carries its
//!   JWKS or CA as content, never a server path; its LDAP password is never answered.
//! - Every error is JSON: `{"error":{"code":"<stable_code>","message":"…"}}` (see
//!   [`ApiError`] for the codes). Bodies are limited to [`MAX_BODY_BYTES`]; unknown fields
//!   in a body are refused, not ignored.
//!
//! The routes are listed once, in [`openapi::ROUTES`], which both the OpenAPI document
//! and the tests read; the scope each one documents ([`openapi::documented_scope`]) is
//! what its operation asks for.

pub(crate) mod account_model;
mod auth;
pub(crate) mod callout;
mod dir_keys;
mod error;
mod extract;
mod governance;
mod handlers;
pub mod metrics;
mod onboarding;
pub mod openapi;
pub mod tls;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use tower_http::trace::TraceLayer;

use warden_ops;

pub use auth::needs_token;
pub use error::{ApiError, status_of};

/// Largest request body accepted (1 MiB); larger ones get `413 payload_too_large`.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every request handler shares.
#[derive(Clone)]
pub struct HttpState {
    /// The operations layer (and through it the store).
    pub warden: warden_ops::Warden,
    /// Whether the server is ready for traffic (`/readyz` also checks the store).
    pub ready: Arc<AtomicBool>,
}

/// How a request's token is named in the ledger: `http:<token name>:<token id>`.
pub(crate) fn actor(token: &warden_ops::tokens::TokenInfo) -> warden_ops::Actor {
    warden_ops::Actor::token(token)
}

impl HttpState {
    /// The operations layer acting for `token` (its ledger entries name the token).
    pub(crate) fn warden_for(&self, token: &warden_ops::tokens::TokenInfo) -> warden_ops::Warden {
        self.warden.with_actor(actor(token))
    }
}

/// The whole API as an axum router (state applied).
pub fn router(state: HttpState) -> Router {
    // Nobody will close this console's event streams: fine for a router a test drives.
    let (_, closing) = tokio::sync::watch::channel(false);
    app(state, closing, None)
}

/// The API plus the web console ([`crate::console`], under `/console`); `closing`
/// turning `true` ends the console's event streams; `nats` is the server the console's
/// drift and usage views ask (none: they say so).
fn app(
    state: HttpState,
    closing: tokio::sync::watch::Receiver<bool>,
    nats: Option<String>,
) -> Router {
    use account_model as am;
    use handlers as h;
    let v1 = Router::new()
        .route("/v1/operator", get(h::operator))
        .route("/v1/status", get(h::status))
        .route("/v1/accounts", get(h::list_accounts).post(h::add_account))
        .route(
            "/v1/accounts/{name}",
            get(h::account)
                .patch(h::edit_account)
                .delete(h::delete_account),
        )
        .route(
            "/v1/accounts/{account}/users",
            get(h::list_users).post(h::add_user),
        )
        .route(
            "/v1/accounts/{account}/users/{user}",
            get(h::user).patch(h::edit_user).delete(h::delete_user),
        )
        .route(
            "/v1/accounts/{account}/users/{user}/revoke",
            post(h::revoke_user),
        )
        .route("/v1/accounts/{account}/users/{user}/creds", get(h::creds))
        .route(
            "/v1/accounts/{account}/mappings",
            get(am::list_mappings)
                .post(am::add_mapping)
                .delete(am::remove_mapping),
        )
        .route(
            "/v1/accounts/{account}/exports",
            get(am::list_exports)
                .post(am::add_export)
                .patch(am::edit_export)
                .delete(am::remove_export),
        )
        .route(
            "/v1/accounts/{account}/imports",
            get(am::list_imports)
                .post(am::add_import)
                .delete(am::remove_import),
        )
        .route(
            "/v1/accounts/{account}/activations",
            post(am::create_activation),
        )
        .route(
            "/v1/accounts/{account}/activations/revoke",
            post(am::revoke_activation),
        )
        .route(
            "/v1/accounts/{account}/signing-keys",
            get(am::list_signing_keys).post(am::add_signing_key),
        )
        .route(
            "/v1/accounts/{account}/signing-keys/{key}",
            axum::routing::delete(am::remove_signing_key),
        )
        .route(
            "/v1/accounts/{account}/signing-keys/{key}/rotate",
            post(am::rotate_signing_key),
        )
        .route(
            "/v1/accounts/{account}/users/{user}/rotate",
            post(am::rotate_user),
        )
        .route(
            "/v1/accounts/{account}/users/{user}/permissions",
            get(am::user_permissions),
        )
        .route(
            "/v1/accounts/{account}/users/{user}/explain",
            get(am::explain_user),
        )
        .route(
            "/v1/operator/signing-keys",
            get(am::operator_signing_keys).post(am::add_operator_signing_key),
        )
        .route(
            "/v1/operator/signing-keys/rotate",
            post(am::rotate_operator_signing_key)
                .layer(axum::Extension(am::ServeNats(nats.clone()))),
        )
        .route(
            "/v1/operator/signing-keys/{key}",
            axum::routing::delete(am::remove_operator_signing_key),
        )
        .route("/v1/callout", get(callout::status).put(callout::setup))
        .route("/v1/callout/sentinel", get(callout::sentinel))
        .route("/v1/callout/explain/{login}", get(callout::explain))
        .route(
            "/v1/callout/authenticators",
            get(callout::list_authenticators).post(callout::add_authenticator),
        )
        .route(
            "/v1/callout/authenticators/{name}",
            axum::routing::delete(callout::remove_authenticator),
        )
        .route("/v1/devices", get(h::list_devices).post(h::add_device))
        .route("/v1/devices/bulk", post(h::add_devices_bulk))
        .route("/v1/devices/{id}", get(h::device))
        .route("/v1/devices/{id}/creds", get(h::device_creds))
        .route("/v1/devices/{id}/rotate", post(h::rotate_device))
        .route("/v1/devices/{id}/revoke", post(h::revoke_device))
        .route("/v1/devices/{id}/restore", post(h::restore_device))
        .route("/v1/tenants", get(h::list_tenants).post(h::add_tenant))
        .route("/v1/tenants/bulk", post(h::add_tenants_bulk))
        .route("/v1/tenants/lint", get(h::lint_tenants))
        .route(
            "/v1/tenants/{slug}",
            get(h::tenant)
                .patch(h::edit_tenant)
                .delete(h::delete_tenant),
        )
        .route("/v1/tenants/{slug}/suspend", post(h::suspend_tenant))
        .route("/v1/tenants/{slug}/resume", post(h::resume_tenant))
        .route("/v1/tenants/{slug}/users", post(h::add_tenant_user))
        .route(
            "/v1/tenants/{slug}/users/{user}/creds",
            get(h::tenant_creds),
        )
        .route(
            "/v1/onboarding",
            get(onboarding::list).post(onboarding::create),
        )
        .route(
            onboarding::DOWNLOAD_PATH,
            get(onboarding::download_get).post(onboarding::download_post),
        )
        .route("/v1/onboarding/{id}", get(onboarding::show))
        .route("/v1/onboarding/{id}/revoke", post(onboarding::revoke))
        .route(
            "/v1/dir/users",
            get(governance::list_users).post(governance::add_user),
        )
        .route("/v1/dir/users/{id}", get(governance::user))
        .route("/v1/dir/users/{id}/explain", get(governance::explain))
        .route(
            "/v1/dir/roles",
            get(governance::list_roles).post(governance::add_role),
        )
        .route("/v1/dir/roles/{name}", get(governance::role))
        .route(
            "/v1/dir/tasks",
            get(governance::list_tasks).post(governance::add_task),
        )
        .route("/v1/dir/tasks/{name}", get(governance::task))
        .route("/v1/dir/expire", post(governance::expire))
        .route(
            "/v1/proposals",
            get(governance::list_proposals).post(governance::propose),
        )
        .route("/v1/proposals/confirm", post(governance::confirm_many))
        .route("/v1/proposals/{id}", get(governance::proposal))
        .route("/v1/proposals/{id}/confirm", post(governance::confirm))
        .route("/v1/proposals/{id}/reject", post(governance::reject))
        .route(
            "/v1/dir/users/{id}/keys",
            get(dir_keys::list).post(dir_keys::add),
        )
        .route(
            "/v1/dir/users/{id}/keys/{key}",
            axum::routing::delete(dir_keys::remove),
        )
        .route("/v1/ledger", get(h::ledger))
        .route("/v1/ledger/verify", get(h::verify_ledger))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .route("/healthz", get(h::healthz))
        .route("/readyz", get(h::readyz))
        .route("/openapi.json", get(h::openapi))
        .route("/metrics", get(metrics::serve_metrics))
        .merge(v1)
        .nest_service(
            "/console",
            crate::console::router(state.warden.clone(), closing, nats),
        )
        .fallback(h::no_route)
        .method_not_allowed_fallback(h::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves the API and the console on `listener`, merged with `extra` (the rooms gateway,
/// when it runs in `serve`), until `shutdown` completes; then stops accepting and lets the
/// requests in flight finish before returning.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: HttpState,
    extra: Option<Router>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_nats(listener, state, None, extra, shutdown).await
}

/// [`serve`], with the console's drift, push and usage views asking the nats-server at
/// `nats` (as the system account's user).
pub async fn serve_with_nats(
    listener: tokio::net::TcpListener,
    state: HttpState,
    nats: Option<String>,
    extra: Option<Router>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_on(Listening::Plain(listener), state, nats, extra, shutdown).await
}

/// Where the API listens: plain HTTP, or HTTPS ([`tls::TlsListener`]).
pub enum Listening {
    /// HTTP.
    Plain(tokio::net::TcpListener),
    /// HTTPS.
    Tls(tls::TlsListener),
}

impl Listening {
    /// The address bound.
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        use axum::serve::Listener as _;
        match self {
            Listening::Plain(l) => l.local_addr(),
            Listening::Tls(l) => l.local_addr(),
        }
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        match self {
            Listening::Plain(_) => "http",
            Listening::Tls(_) => "https",
        }
    }
}

/// [`serve_with_nats`] on plain HTTP or HTTPS; with HTTPS every response carries
/// `Strict-Transport-Security`.
pub async fn serve_on(
    listener: Listening,
    state: HttpState,
    nats: Option<String>,
    extra: Option<Router>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, scheme = listener.scheme(), "HTTP API listening");
    }
    // The console's event streams never end by themselves: end them when shutdown
    // begins, so the graceful shutdown does not wait for open browsers.
    let (close_tx, closing) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        shutdown.await;
        let _ = close_tx.send(true);
    };
    let mut router = app(state, closing, nats);
    if let Some(extra) = extra {
        router = router.merge(extra);
    }
    // Every request is counted by its route template, the rooms gateway's too.
    let router = router.layer(middleware::from_fn(metrics::track));
    use axum::serve::ListenerExt as _;
    match listener {
        Listening::Plain(l) => serve_router(l.tap_io(no_delay), router, shutdown).await,
        Listening::Tls(l) => {
            let router = router.layer(middleware::map_response(hsts));
            serve_router(l, router, shutdown).await
        }
    }
}

/// Turns Nagle's algorithm off on an accepted connection, so small writes go out at once
/// (as nats-server's do): with Nagle a websocket frame to a client that has nothing to
/// send back waits for that client's delayed ACK of the frame before it (up to 40 ms on
/// Linux). A connection that refuses the option is served as it is.
pub(crate) fn no_delay(tcp: &mut tokio::net::TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!("TCP_NODELAY: {e}");
    }
}

/// `Strict-Transport-Security` on a response served over HTTPS.
pub(crate) async fn hsts(mut response: axum::response::Response) -> axum::response::Response {
    response.headers_mut().insert(
        axum::http::header::STRICT_TRANSPORT_SECURITY,
        axum::http::HeaderValue::from_static(tls::HSTS),
    );
    response
}

/// Serves `router` on `listener` until `shutdown`, then lets the requests in flight
/// finish. The peer's address reaches the handlers: an unauthenticated download is
/// recorded as the address it came from.
pub async fn serve_router<L>(
    listener: L,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = std::net::SocketAddr>,
{
    use axum::serve::ListenerExt as _;
    axum::serve(
        listener.tap_io(|_| {}),
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
