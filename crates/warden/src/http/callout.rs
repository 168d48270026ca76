//! Routes of the auth callout: its configuration (`GET`/`PUT /v1/callout`), the
//! sentinel's creds clients present with their own credentials, and the authenticators
//! the callout tries in order (list, add, remove).
//!
//! Each handler decodes the body, runs ONE operation of [`warden_ops::callout`] as the
//! request's token and renders its answer. A new authenticator arrives as JSON with its
//! files' contents (a JWKS, a CA's PEM), never as paths: the server reads no file for a
//! request. Its LDAP bind password travels in the body's `password` field, is handed to
//! the operation (which seals it) and appears in no answer, log line or ledger entry.
//!
//! The body of a new authenticator is parsed here once, for the HTTP API and the NATS
//! service alike ([`parse_authenticator`]): the kind picks the fields, each decoded
//! strictly; the defaults and the checks are the operations' (the constructors of
//! [`warden_ops::callout::authenticators`]).

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use warden_ops::OpsError;
use warden_ops::callout::authenticators::{
    AuthenticatorSpec, LdapAuth, MtlsAuth, MtlsMap, OidcAuth,
};
use warden_ops::callout::{AuthenticatorView, CalloutSetup, CalloutView};
use warden_ops::tokens::TokenInfo;
use zeroize::Zeroizing;

use super::extract::{ApiPath, JsonBody, RequestBody};
use super::{ApiError, HttpState};

type ApiResult<T> = Result<T, ApiError>;

/// `PUT /v1/callout` (and the NATS service's `callout.setup`): what `warden callout
/// setup` changes; absent fields keep what is set. A request names no nats-server to
/// ask: it would be handed the system user.
#[derive(Deserialize, Default)]
pub(crate) struct SetupBody {
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    xkey: Option<bool>,
    #[serde(default)]
    allowed_accounts: Option<Vec<String>>,
    #[serde(default)]
    ttl_secs: Option<i64>,
    #[serde(default)]
    server_version: Option<String>,
}
impl RequestBody for SetupBody {}

impl SetupBody {
    /// The operation's options.
    pub(crate) fn into_setup(self) -> CalloutSetup {
        CalloutSetup {
            account: self.account,
            xkey: self.xkey,
            allowed_accounts: self.allowed_accounts,
            ttl_secs: self.ttl_secs,
            server_version: self.server_version,
            nats: None,
        }
    }
}

/// The fields of an `ldap` authenticator.
#[derive(Deserialize)]
struct LdapBody {
    name: String,
    url: String,
    base: String,
    #[serde(default)]
    bind_dn: Option<String>,
    #[serde(default)]
    user_filter: Option<String>,
    #[serde(default)]
    ca_pem: Option<String>,
    #[serde(default)]
    position: Option<usize>,
}

/// The fields of an `oidc` authenticator: the JWKS as JSON (or as its text).
#[derive(Deserialize)]
struct OidcBody {
    name: String,
    issuer: String,
    audience: String,
    #[serde(default)]
    user_claim: Option<String>,
    jwks: Value,
    #[serde(default)]
    position: Option<usize>,
}

/// The fields of an `mtls` authenticator.
#[derive(Deserialize)]
struct MtlsBody {
    name: String,
    ca_pem: String,
    #[serde(default)]
    map: Option<String>,
    #[serde(default)]
    position: Option<usize>,
}

/// A new authenticator as a request gives it: the spec, its secret and where it goes.
pub(crate) struct NewAuthenticator {
    pub spec: AuthenticatorSpec,
    pub secret: Option<Zeroizing<String>>,
    pub position: Option<usize>,
}

/// Why a new authenticator's body was not taken.
pub(crate) enum AuthenticatorBodyError {
    /// The body does not fit the kind's fields (missing, mistyped or unknown ones).
    Misfit(String),
    /// The operations refused what it says (unknown kind, bad JWKS, blank name…).
    Ops(OpsError),
}

impl From<OpsError> for AuthenticatorBodyError {
    fn from(e: OpsError) -> Self {
        AuthenticatorBodyError::Ops(e)
    }
}

impl From<AuthenticatorBodyError> for ApiError {
    fn from(e: AuthenticatorBodyError) -> Self {
        match e {
            AuthenticatorBodyError::Misfit(m) => ApiError::InvalidJson(m),
            AuthenticatorBodyError::Ops(e) => ApiError::Ops(e),
        }
    }
}

/// Decodes `value` into `T`, refusing fields `T` does not know (as every body is).
fn strict<T: DeserializeOwned>(value: Value) -> Result<T, AuthenticatorBodyError> {
    let mut unknown = Vec::new();
    let decoded: T = serde_ignored::deserialize(value, |path| unknown.push(path.to_string()))
        .map_err(|e| AuthenticatorBodyError::Misfit(format!("request body does not fit: {e}")))?;
    if !unknown.is_empty() {
        return Err(AuthenticatorBodyError::Misfit(format!(
            "unknown field{} in request body: {}",
            if unknown.len() == 1 { "" } else { "s" },
            unknown.join(", ")
        )));
    }
    Ok(decoded)
}

/// A new authenticator from a request body: `kind` (`ldap`, `oidc`, `mtls`) picks the
/// fields; the spec is built (defaults applied, checked) by the operations' constructors.
/// An LDAP `password` is the bind password of `bind_dn`.
pub(crate) fn parse_authenticator(
    mut body: Map<String, Value>,
) -> Result<NewAuthenticator, AuthenticatorBodyError> {
    let kind = match body.remove("kind") {
        Some(Value::String(k)) => k,
        Some(_) => {
            return Err(AuthenticatorBodyError::Misfit(
                "request body does not fit: kind must be a string (ldap, oidc or mtls)".into(),
            ));
        }
        None => {
            return Err(AuthenticatorBodyError::Misfit(
                "request body does not fit: missing field `kind` (ldap, oidc or mtls)".into(),
            ));
        }
    };
    match kind.as_str() {
        "ldap" => {
            // The password is taken out before anything else reads the body, into memory
            // wiped on drop; no error message below can quote it.
            let password = match body.remove("password") {
                None | Some(Value::Null) => None,
                Some(Value::String(p)) => Some(Zeroizing::new(p)),
                Some(_) => {
                    return Err(AuthenticatorBodyError::Misfit(
                        "request body does not fit: password must be a string".into(),
                    ));
                }
            };
            let b: LdapBody = strict(Value::Object(body))?;
            // Whether the password goes with the bind DN is the operation's to decide.
            let bind_dn = b.bind_dn.filter(|d| !d.trim().is_empty());
            let spec = LdapAuth::new(
                &b.name,
                &b.url,
                &b.base,
                bind_dn.as_deref(),
                b.user_filter.as_deref(),
                b.ca_pem.as_deref(),
            )?;
            Ok(NewAuthenticator {
                spec: AuthenticatorSpec::Ldap(spec),
                secret: password,
                position: b.position,
            })
        }
        "oidc" => {
            let b: OidcBody = strict(Value::Object(body))?;
            let jwks_text = match b.jwks {
                Value::String(text) => text,
                other => other.to_string(),
            };
            let spec = OidcAuth::from_jwks_text(
                &b.name,
                &jwks_text,
                &b.issuer,
                &b.audience,
                b.user_claim.as_deref(),
            )?;
            Ok(NewAuthenticator {
                spec: AuthenticatorSpec::Oidc(spec),
                secret: None,
                position: b.position,
            })
        }
        "mtls" => {
            let b: MtlsBody = strict(Value::Object(body))?;
            let map = match b.map.as_deref() {
                None => MtlsMap::Subject,
                Some(m) => m.parse::<MtlsMap>()?,
            };
            let spec = MtlsAuth::new(&b.name, &b.ca_pem, map)?;
            Ok(NewAuthenticator {
                spec: AuthenticatorSpec::Mtls(spec),
                secret: None,
                position: b.position,
            })
        }
        other => Err(OpsError::invalid(format!(
            "unknown authenticator kind {other:?} (expected ldap, oidc or mtls)"
        ))
        .into()),
    }
}

/// `POST /v1/callout/authenticators`: any object, read by [`parse_authenticator`].
impl RequestBody for Map<String, Value> {}

/// `GET /v1/callout`: `warden callout status`.
pub(crate) async fn status(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
) -> ApiResult<Json<CalloutView>> {
    Ok(Json(s.warden_for(&token).callout_status().await?))
}

/// `PUT /v1/callout`: `warden callout setup` (creates or updates; absent fields keep
/// what is set).
pub(crate) async fn setup(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    JsonBody(body): JsonBody<SetupBody>,
) -> ApiResult<Json<CalloutView>> {
    Ok(Json(
        s.warden_for(&token)
            .callout_setup(body.into_setup())
            .await?,
    ))
}

/// `GET /v1/callout/sentinel`: `{creds}` of the sentinel user, never cached (as every
/// creds route answers).
pub(crate) async fn sentinel(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
) -> ApiResult<Response> {
    let creds = s.warden_for(&token).callout_sentinel_creds().await?;
    let mut res = Json(json!({"creds": creds.as_str()})).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// `GET /v1/callout/explain/{login}`: `warden callout explain LOGIN` (a refusal is an
/// answer here, with `allowed: false` and its code).
pub(crate) async fn explain(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(login): ApiPath<String>,
) -> ApiResult<Json<warden_ops::callout::Explained>> {
    Ok(Json(s.warden_for(&token).callout_explain(&login).await?))
}

/// `GET /v1/callout/authenticators`: in the order they are tried, without secrets.
pub(crate) async fn list_authenticators(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
) -> ApiResult<Json<Vec<AuthenticatorView>>> {
    Ok(Json(s.warden_for(&token).callout_auth_list().await?))
}

/// `POST /v1/callout/authenticators`: `warden callout auth add …`.
pub(crate) async fn add_authenticator(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> ApiResult<(StatusCode, Json<AuthenticatorView>)> {
    let new = parse_authenticator(body)?;
    let view = s
        .warden_for(&token)
        .callout_auth_add(new.spec, new.secret, new.position)
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// `DELETE /v1/callout/authenticators/{name}`: `warden callout auth rm NAME`.
pub(crate) async fn remove_authenticator(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<AuthenticatorView>> {
    Ok(Json(s.warden_for(&token).callout_auth_remove(&name).await?))
}
