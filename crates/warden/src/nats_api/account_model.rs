//! The NATS service's operations on the account model beyond limits: subject mappings,
//! exports, imports and activations, account signing keys and users by role, user key
//! rotation and effective permissions, and the operator's signing keys.
//! Each decodes its request as strictly as the HTTP API does, runs ONE operation and
//! replies with its answer, the same JSON as the matching HTTP route.

use nats_jwt::{Subject, UserPermissionLimits};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use warden_core::UserSpec;
use warden_core::permcheck::Direction;
use warden_core::spec::AccountEdit;
use warden_core::template::ServerLine;
use warden_ops::Warden;
use warden_ops::exports::{ActivationOptions, ExportEdit, ExportOptions, ImportOptions};
use warden_ops::mappings::{MappingAdd, MappingRemove};
use warden_ops::operator_keys::RotateOptions;
use warden_ops::signing_keys::{KeyRef, NewSigningKey, UserRotated};

use super::{NoArgs, Op, ServiceError, body, decode, json, parse, reply};
// A template's fields are the HTTP API's: one list for both surfaces.
use crate::http::account_model::TEMPLATE_FIELDS;

#[derive(Deserialize)]
struct AccountOnly {
    account: String,
}

#[derive(Deserialize)]
struct ExportRef {
    account: String,
    subject: Subject,
}

#[derive(Deserialize)]
struct ImportRef {
    account: String,
    subject: Subject,
    #[serde(default)]
    from: Option<String>,
}

#[derive(Deserialize)]
struct RevokeActivation {
    account: String,
    subject: Subject,
    target: String,
}

/// Splits `{account: …, <field>: {…}}` into the account and the nested options: the
/// options are decoded strictly by their own type (reported as `<field>.…`).
fn with_account<T: serde::de::DeserializeOwned>(
    op: Op,
    payload: &[u8],
    field: &str,
) -> Result<(String, T), ServiceError> {
    let Value::Object(mut map) = body(op, payload)? else {
        return Err(ServiceError::bad_request(format!(
            "malformed JSON request to {}: the body must be a JSON object",
            op.subject()
        )));
    };
    let inner = map.remove(field).ok_or_else(|| {
        ServiceError::bad_request(format!(
            "malformed JSON request to {}: missing field `{field}`",
            op.subject()
        ))
    })?;
    let outer: AccountOnly = decode(op, "", Value::Object(map))?;
    let options: T = decode(op, &format!("{field}."), inner)?;
    Ok((outer.account, options))
}

/// `account.edit`: `{name, …AccountEdit}` (every `warden account edit` change; the
/// fields of `PATCH /v1/accounts/{name}`).
pub(super) async fn account_edit(warden: &Warden, payload: &[u8]) -> Result<Vec<u8>, ServiceError> {
    let op = Op::AccountEdit;
    let Value::Object(mut map) = body(op, payload)? else {
        return Err(ServiceError::bad_request(
            "malformed JSON request to account.edit: the body must be a JSON object",
        ));
    };
    let name = match map.remove("name") {
        Some(Value::String(n)) => n,
        _ => {
            return Err(ServiceError::bad_request(
                "malformed JSON request to account.edit: missing string field `name`",
            ));
        }
    };
    let edit: AccountEdit = decode(op, "", Value::Object(map))?;
    json(&warden.change_account(&name, edit).await?)
}

/// Runs one of this module's operations; `None` for an operation it does not hold.
pub(super) async fn dispatch(
    warden: &Warden,
    op: Op,
    payload: &[u8],
) -> Option<Result<Vec<u8>, ServiceError>> {
    Some(match op {
        Op::MappingList => mapping_list(warden, op, payload).await,
        Op::MappingAdd => match parse::<MappingAdd>(op, payload) {
            Ok(r) => reply(warden.add_mapping(&r).await),
            Err(e) => Err(e),
        },
        Op::MappingRemove => match parse::<MappingRemove>(op, payload) {
            Ok(r) => reply(warden.remove_mapping(&r).await),
            Err(e) => Err(e),
        },
        Op::ExportList => match parse::<AccountOnly>(op, payload) {
            Ok(r) => reply(warden.list_exports(&r.account).await),
            Err(e) => Err(e),
        },
        Op::ExportAdd => match with_account::<ExportOptions>(op, payload, "export") {
            Ok((account, o)) => reply(warden.add_export(&account, &o).await),
            Err(e) => Err(e),
        },
        Op::ExportEdit => export_edit(warden, op, payload).await,
        Op::ExportRemove => match parse::<ExportRef>(op, payload) {
            Ok(r) => reply(warden.remove_export(&r.account, &r.subject).await),
            Err(e) => Err(e),
        },
        Op::ImportList => match parse::<AccountOnly>(op, payload) {
            Ok(r) => reply(warden.list_imports(&r.account).await),
            Err(e) => Err(e),
        },
        Op::ImportAdd => match with_account::<ImportOptions>(op, payload, "import") {
            Ok((account, o)) => reply(warden.add_import(&account, &o).await),
            Err(e) => Err(e),
        },
        Op::ImportRemove => match parse::<ImportRef>(op, payload) {
            Ok(r) => reply(
                warden
                    .remove_import(&r.account, &r.subject, r.from.as_deref())
                    .await,
            ),
            Err(e) => Err(e),
        },
        Op::ActivationCreate => {
            match with_account::<ActivationOptions>(op, payload, "activation") {
                Ok((account, o)) => reply(warden.create_activation(&account, &o).await),
                Err(e) => Err(e),
            }
        }
        Op::ActivationRevoke => match parse::<RevokeActivation>(op, payload) {
            Ok(r) => reply(
                warden
                    .revoke_activation(&r.account, &r.subject, &r.target)
                    .await,
            ),
            Err(e) => Err(e),
        },
        Op::SigningKeyList => match parse::<AccountOnly>(op, payload) {
            Ok(r) => reply(warden.signing_keys(&r.account).await),
            Err(e) => Err(e),
        },
        Op::SigningKeyAdd => signing_key_add(warden, op, payload).await,
        Op::SigningKeyRotate => {
            match parse::<KeyRequest>(op, payload).and_then(KeyRequest::split) {
                Ok((account, which)) => reply(warden.rotate_signing_key(&account, &which).await),
                Err(e) => Err(e),
            }
        }
        Op::SigningKeyRemove => {
            match parse::<KeyRequest>(op, payload).and_then(KeyRequest::split) {
                Ok((account, which)) => reply(warden.remove_signing_key(&account, &which).await),
                Err(e) => Err(e),
            }
        }
        Op::UserRotate => user_rotate(warden, op, payload).await,
        Op::UserPermissions => match parse::<PermissionsRequest>(op, payload) {
            Ok(r) => match server_line(r.server.as_deref()) {
                Ok(line) => reply(warden.user_permissions(&r.account, &r.name, line).await),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        },
        Op::UserExplain => user_explain(warden, op, payload).await,
        Op::OperatorSigningKeyList => match parse::<NoArgs>(op, payload) {
            Ok(_) => reply(warden.operator_signing_keys().await),
            Err(e) => Err(e),
        },
        Op::OperatorSigningKeyAdd => match parse::<NoArgs>(op, payload) {
            Ok(_) => reply(warden.add_operator_signing_key().await),
            Err(e) => Err(e),
        },
        Op::OperatorSigningKeyRotate => operator_rotate(warden, op, payload).await,
        Op::OperatorSigningKeyRemove => match parse::<OperatorKeyRef>(op, payload) {
            Ok(r) => reply(warden.remove_operator_signing_key(&r.key).await),
            Err(e) => Err(e),
        },
        _ => return None,
    })
}

async fn mapping_list(warden: &Warden, op: Op, payload: &[u8]) -> Result<Vec<u8>, ServiceError> {
    let r: AccountOnly = parse(op, payload)?;
    reply(warden.mappings(&r.account).await)
}

/// `account.export.edit`: `{account, subject, edit: ExportEdit}`.
async fn export_edit(warden: &Warden, op: Op, payload: &[u8]) -> Result<Vec<u8>, ServiceError> {
    let Value::Object(mut map) = body(op, payload)? else {
        return Err(ServiceError::bad_request(
            "malformed JSON request to account.export.edit: the body must be a JSON object",
        ));
    };
    let inner = map
        .remove("edit")
        .unwrap_or_else(|| Value::Object(Default::default()));
    let r: ExportRef = decode(op, "", Value::Object(map))?;
    let edit: ExportEdit = decode(op, "edit.", inner)?;
    reply(warden.edit_export(&r.account, &r.subject, &edit).await)
}

#[derive(Deserialize)]
struct KeyRequest {
    account: String,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    role: Option<String>,
}

impl KeyRequest {
    fn split(self) -> Result<(String, KeyRef), ServiceError> {
        match (self.key, self.role) {
            (Some(k), None) => Ok((self.account, KeyRef::Key(k))),
            (None, Some(r)) => Ok((self.account, KeyRef::Role(r))),
            _ => Err(ServiceError::bad_request(
                "name the signing key: give either key (A…) or role",
            )),
        }
    }
}

#[derive(Deserialize)]
struct SigningKeyAdd {
    account: String,
    #[serde(default)]
    role: Option<String>,
}

/// `account.signing_key.add`: `{account, role?, template?}`; subs, data and payload not
/// given in the template are unlimited (-1), as the CLI makes them.
async fn signing_key_add(warden: &Warden, op: Op, payload: &[u8]) -> Result<Vec<u8>, ServiceError> {
    let Value::Object(mut map) = body(op, payload)? else {
        return Err(ServiceError::bad_request(
            "malformed JSON request to account.signing_key.add: the body must be a JSON object",
        ));
    };
    let template = match map.remove("template") {
        None => None,
        Some(Value::Object(given)) => {
            let unknown: Vec<String> = given
                .keys()
                .filter(|k| !TEMPLATE_FIELDS.contains(&k.as_str()))
                .map(|k| format!("template.{k}"))
                .collect();
            if !unknown.is_empty() {
                return Err(ServiceError::bad_request(format!(
                    "malformed JSON request to {}: unknown field{} {}",
                    op.subject(),
                    if unknown.len() == 1 { "" } else { "s" },
                    unknown.join(", ")
                )));
            }
            let mut base = serde_json::to_value(UserPermissionLimits::unlimited())
                .map_err(|e| ServiceError::bad_request(format!("template: {e}")))?;
            if let Value::Object(b) = &mut base {
                b.extend(given);
            }
            Some(decode::<UserPermissionLimits>(op, "template.", base)?)
        }
        Some(_) => {
            return Err(ServiceError::bad_request(
                "malformed JSON request to account.signing_key.add: template must be an object",
            ));
        }
    };
    let r: SigningKeyAdd = decode(op, "", Value::Object(map))?;
    if r.role.is_none() && template.is_some() {
        return Err(ServiceError::bad_request(
            "a template makes a role's key: give role too (a plain signing key has no template)",
        ));
    }
    let new = NewSigningKey {
        role: r.role,
        template: template.unwrap_or_else(UserPermissionLimits::unlimited),
    };
    reply(warden.add_signing_key(&r.account, new).await)
}

/// `user.create` with `role`: a user issued by the role's scoped key (only `tags` in its
/// spec), replied as `RoleUserAdded` (no creds: fetch them with `user.creds`).
pub(super) async fn user_by_role(
    warden: &Warden,
    account: String,
    name: String,
    role: String,
    spec: UserSpec,
) -> Result<Vec<u8>, ServiceError> {
    let tags = spec.tags.clone();
    if spec
        != (UserSpec {
            tags: tags.clone(),
            ..UserSpec::default()
        })
    {
        return Err(ServiceError::bad_request(
            "a role's user gets its permissions and limits from the role's template \
             (nats-server refuses a scoped user that sets its own): give only spec.tags with role",
        ));
    }
    reply(warden.add_user_by_role(&account, &name, &role, tags).await)
}

#[derive(Deserialize)]
struct UserRef {
    account: String,
    name: String,
}

#[derive(Serialize)]
struct Rotated<'a> {
    #[serde(flatten)]
    rotated: &'a UserRotated,
    creds: &'a str,
}

/// `user.rotate`: the new creds in the reply (needs `creds`).
async fn user_rotate(warden: &Warden, op: Op, payload: &[u8]) -> Result<Vec<u8>, ServiceError> {
    let r: UserRef = parse(op, payload)?;
    let (rotated, creds) = warden.rotate_user(&r.account, &r.name).await?;
    json(&Rotated {
        rotated: &rotated,
        creds: creds.as_str(),
    })
}

#[derive(Deserialize)]
struct PermissionsRequest {
    account: String,
    name: String,
    #[serde(default)]
    server: Option<String>,
}

#[derive(Deserialize)]
struct ExplainRequest {
    account: String,
    name: String,
    direction: String,
    subject: Subject,
    #[serde(default)]
    server: Option<String>,
}

fn server_line(server: Option<&str>) -> Result<ServerLine, ServiceError> {
    match server {
        None => Ok(ServerLine::default()),
        Some(v) => ServerLine::parse(v).map_err(|e| ServiceError::bad_request(e.to_string())),
    }
}

async fn user_explain(warden: &Warden, op: Op, payload: &[u8]) -> Result<Vec<u8>, ServiceError> {
    let r: ExplainRequest = parse(op, payload)?;
    let direction = match r.direction.as_str() {
        "publish" | "pub" => Direction::Publish,
        "subscribe" | "sub" => Direction::Subscribe,
        other => {
            return Err(ServiceError::bad_request(format!(
                "direction must be publish or subscribe, not {other:?}"
            )));
        }
    };
    let line = server_line(r.server.as_deref())?;
    reply(
        warden
            .explain_user(&r.account, &r.name, direction, &r.subject, line)
            .await,
    )
}

#[derive(Deserialize)]
struct OperatorKeyRef {
    key: String,
}

/// Longest wait a rotation request may ask for.
const MAX_ROTATE_TIMEOUT_MS: u64 = 60_000;

#[derive(Deserialize)]
struct OperatorRotate {
    #[serde(default)]
    servers: Option<usize>,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

/// `operator.signing_key.rotate`: the service does not hand the system user to a
/// server a request names, so the servers are not asked here (a rotation starts, or the
/// reply says what it waits for; `warden operator signing-key rotate --nats` or
/// `POST /v1/operator/signing-keys/rotate` on `warden serve` take the checked steps).
async fn operator_rotate(warden: &Warden, op: Op, payload: &[u8]) -> Result<Vec<u8>, ServiceError> {
    let r: OperatorRotate = parse(op, payload)?;
    let mut opts = RotateOptions::default();
    if let Some(n) = r.servers {
        opts.servers = n;
    }
    if let Some(ms) = r.timeout_ms {
        if ms == 0 || ms > MAX_ROTATE_TIMEOUT_MS {
            return Err(ServiceError::bad_request(format!(
                "timeout_ms must be between 1 and {MAX_ROTATE_TIMEOUT_MS}"
            )));
        }
        opts.timeout = std::time::Duration::from_millis(ms);
    }
    reply(warden.rotate_operator_signing_key(&opts).await)
}
