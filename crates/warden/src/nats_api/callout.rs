//! The NATS service's operations on the auth callout: its status and set-up, the
//! sentinel's creds, and the authenticators (list, add, remove). Each decodes its request
//! as strictly as the HTTP API does (a new authenticator's body is read by the HTTP API's
//! own parser), runs ONE operation and replies with its answer, the same JSON as the
//! matching HTTP route. Set-up and authenticator changes need `admin`, which the service's
//! callers lack unless `warden serve --service-scopes` gives it.

use serde::Deserialize;
use serde_json::Value;
use warden_ops::Warden;

use super::{Creds, NoArgs, Op, ServiceError, body, json, parse, reply};
use crate::http::callout::{AuthenticatorBodyError, SetupBody, parse_authenticator};

#[derive(Deserialize)]
struct AuthenticatorRef {
    name: String,
}

#[derive(Deserialize)]
struct LoginRef {
    login: String,
}

/// Runs one of this module's operations; `None` for an operation it does not hold.
pub(super) async fn dispatch(
    warden: &Warden,
    op: Op,
    payload: &[u8],
) -> Option<Result<Vec<u8>, ServiceError>> {
    Some(match op {
        Op::CalloutStatus => match parse::<NoArgs>(op, payload) {
            Ok(_) => reply(warden.callout_status().await),
            Err(e) => Err(e),
        },
        // The service hands the system user to no server a request names: the version
        // is checked only when the request states it (`server_version`).
        Op::CalloutSetup => match parse::<SetupBody>(op, payload) {
            Ok(r) => reply(warden.callout_setup(r.into_setup()).await),
            Err(e) => Err(e),
        },
        Op::CalloutSentinel => sentinel(warden, op, payload).await,
        Op::CalloutAuthList => match parse::<NoArgs>(op, payload) {
            Ok(_) => reply(warden.callout_auth_list().await),
            Err(e) => Err(e),
        },
        Op::CalloutAuthAdd => auth_add(warden, op, payload).await,
        Op::CalloutAuthRemove => match parse::<AuthenticatorRef>(op, payload) {
            Ok(r) => reply(warden.callout_auth_remove(&r.name).await),
            Err(e) => Err(e),
        },
        Op::CalloutExplain => match parse::<LoginRef>(op, payload) {
            Ok(r) => reply(warden.callout_explain(&r.login).await),
            Err(e) => Err(e),
        },
        _ => return None,
    })
}

/// `callout.sentinel`: `{creds}` (needs `creds`).
async fn sentinel(warden: &Warden, op: Op, payload: &[u8]) -> Result<Vec<u8>, ServiceError> {
    parse::<NoArgs>(op, payload)?;
    let creds = warden.callout_sentinel_creds().await?;
    json(&Creds { creds: &creds })
}

/// `callout.auth.add`: the body of `POST /v1/callout/authenticators`.
async fn auth_add(warden: &Warden, op: Op, payload: &[u8]) -> Result<Vec<u8>, ServiceError> {
    let Value::Object(map) = body(op, payload)? else {
        return Err(ServiceError::bad_request(format!(
            "malformed JSON request to {}: the body must be a JSON object",
            op.subject()
        )));
    };
    let new = parse_authenticator(map).map_err(|e| match e {
        AuthenticatorBodyError::Misfit(m) => {
            ServiceError::bad_request(format!("malformed JSON request to {}: {m}", op.subject()))
        }
        AuthenticatorBodyError::Ops(e) => ServiceError::from(e),
    })?;
    reply(
        warden
            .callout_auth_add(new.spec, new.secret, new.position)
            .await,
    )
}
