//! The OpenAPI 3 document served at `GET /openapi.json`, written by hand (the request and
//! response types live in `warden-core` and `warden-store`, which know nothing of
//! OpenAPI) from one route table, [`ROUTES`], that the tests check against the router.

use axum::http::Method;
use serde_json::{Map, Value, json};

use super::MAX_BODY_BYTES;
use super::auth::needs_token;
use super::handlers::{LEDGER_DEFAULT_LIMIT, LEDGER_MAX_LIMIT};
use warden_ops::Scope;

/// The scope a route's operation asks for, as documented in `x-warden-scope` (`None`: the
/// route takes no bearer token). Documentation only: the operation itself decides
/// (see [`warden_ops::Actor`]). Reads need `read`, changes `write`; whatever lets its
/// holder connect to NATS needs `creds`: the creds routes, making an onboarding package
/// (which also needs `write`) and registering a directory user's key (which also needs
/// `admin`, unless the token is bound to that user). The auth callout's set-up and
/// authenticators change with `admin` only; its sentinel's creds need `creds`.
pub fn documented_scope(method: &Method, path: &str) -> Option<Scope> {
    if !needs_token(path) {
        None
    } else if (path.starts_with("/v1/operator/signing-keys") || path.starts_with("/v1/callout"))
        && method != Method::GET
    {
        Some(Scope::Admin)
    } else if path.ends_with("/creds")
        || path == "/v1/callout/sentinel"
        || (method == Method::POST && path == "/v1/accounts/{account}/users/{user}/rotate")
        || (method == Method::POST && (path == "/v1/onboarding" || path.ends_with("/keys")))
    {
        Some(Scope::Creds)
    } else if method == Method::GET || method == Method::HEAD {
        Some(Scope::Read)
    } else {
        Some(Scope::Write)
    }
}

/// What a route's description adds about its scope, beyond `x-warden-scope`.
fn scope_note(method: &Method, path: &str) -> &'static str {
    if method != Method::POST {
        ""
    } else if path == "/v1/onboarding" {
        " It also needs `write`: the package makes a user, and its archive holds a creds file and a private key."
    } else if path == "/v1/accounts/{account}/users/{user}/rotate" {
        " It also needs `write`: the user's key changes, and the answer carries its new creds."
    } else if path.ends_with("/keys") {
        " Registering a key gives whoever holds its seed a NATS user: a token bound to a directory user registers keys for that user only; any other token needs `admin`."
    } else {
        ""
    }
}

/// One route of the API, as documented.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    /// HTTP method (upper case).
    pub method: &'static str,
    /// Path template (`/v1/accounts/{name}`).
    pub path: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
    /// Schema (in `components/schemas`) of the request body, if any.
    pub request: Option<&'static str>,
    /// Status of a success.
    pub status: u16,
    /// Schema of the success response.
    pub response: &'static str,
}

const fn route(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    request: Option<&'static str>,
    status: u16,
    response: &'static str,
) -> Route {
    Route {
        method,
        path,
        summary,
        request,
        status,
        response,
    }
}

/// Every route the router serves.
pub const ROUTES: &[Route] = &[
    route(
        "GET",
        "/healthz",
        "Liveness: the process answers.",
        None,
        200,
        "Health",
    ),
    route(
        "GET",
        "/readyz",
        "Readiness: started and the database answers (503 otherwise).",
        None,
        200,
        "Ready",
    ),
    route(
        "GET",
        "/openapi.json",
        "This document.",
        None,
        200,
        "OpenApiDocument",
    ),
    route(
        "GET",
        "/metrics",
        "Metrics in the Prometheus text format 0.0.4: the auth callout's decisions by result and their latency (zero when this process runs no callout).",
        None,
        200,
        "Metrics",
    ),
    route(
        "GET",
        "/v1/operator",
        "The operator: keys, system account, JWT.",
        None,
        200,
        "OperatorView",
    ),
    route(
        "GET",
        "/v1/status",
        "Database, operator, counts, applied JWT migrations.",
        None,
        200,
        "StatusView",
    ),
    route(
        "GET",
        "/v1/accounts",
        "Every account, ordered by name.",
        None,
        200,
        "AccountList",
    ),
    route(
        "POST",
        "/v1/accounts",
        "Add an account (`warden account add`).",
        Some("CreateAccount"),
        201,
        "AccountView",
    ),
    route(
        "GET",
        "/v1/accounts/{name}",
        "One account.",
        None,
        200,
        "AccountView",
    ),
    route(
        "PATCH",
        "/v1/accounts/{name}",
        "Change an account's limits, JetStream tiers, default permissions, tags, info URL or description; re-signs its JWT (`warden account edit`).",
        Some("EditAccount"),
        200,
        "AccountView",
    ),
    route(
        "DELETE",
        "/v1/accounts/{name}",
        "Delete an account and its users (not the system account).",
        None,
        200,
        "AccountView",
    ),
    route(
        "GET",
        "/v1/accounts/{account}/users",
        "An account's users, ordered by name.",
        None,
        200,
        "UserList",
    ),
    route(
        "POST",
        "/v1/accounts/{account}/users",
        "Add a user (`warden user add`); with `role`, issued by that role's scoped key (`--role`), answered as a RoleUserAdded.",
        Some("CreateUser"),
        201,
        "UserAdded",
    ),
    route(
        "GET",
        "/v1/accounts/{account}/users/{user}",
        "One user.",
        None,
        200,
        "UserView",
    ),
    route(
        "PATCH",
        "/v1/accounts/{account}/users/{user}",
        "Change a user; re-issues its JWT (`warden user edit`).",
        Some("UserEdit"),
        200,
        "UserView",
    ),
    route(
        "DELETE",
        "/v1/accounts/{account}/users/{user}",
        "Delete a user (its key is revoked in the account first).",
        None,
        200,
        "UserView",
    ),
    route(
        "POST",
        "/v1/accounts/{account}/users/{user}/revoke",
        "Revoke a user in its account JWT.",
        None,
        200,
        "UserView",
    ),
    route(
        "GET",
        "/v1/accounts/{account}/users/{user}/creds",
        "A user's creds file (JWT + seed). Never cached.",
        None,
        200,
        "Creds",
    ),
    route(
        "GET",
        "/v1/devices",
        "Devices ordered by id, optionally only those in one state (`warden device list`).",
        None,
        200,
        "DeviceList",
    ),
    route(
        "POST",
        "/v1/devices",
        "Add a device: its account, user and slice of the hub (`warden device add`). The creds are in the answer only if the token also has the `creds` scope.",
        Some("CreateDevice"),
        201,
        "DeviceWithCreds",
    ),
    route(
        "POST",
        "/v1/devices/bulk",
        "Add many devices in one transaction; existing ids are skipped, one bad id adds nothing (`warden device add --from`). Creds only with the `creds` scope.",
        Some("BulkDevices"),
        200,
        "BulkAdded",
    ),
    route(
        "GET",
        "/v1/devices/{id}",
        "One device.",
        None,
        200,
        "DeviceView",
    ),
    route(
        "GET",
        "/v1/devices/{id}/creds",
        "The creds file of the device's current user. Never cached.",
        None,
        200,
        "Creds",
    ),
    route(
        "POST",
        "/v1/devices/{id}/rotate",
        "New user key for the device, the old one revoked (`warden device rotate`). The new creds only with the `creds` scope.",
        None,
        200,
        "DeviceWithCreds",
    ),
    route(
        "POST",
        "/v1/devices/{id}/revoke",
        "Cut the device off: its account deleted from the resolver, its activations revoked (409 if already revoked).",
        None,
        200,
        "DeviceView",
    ),
    route(
        "POST",
        "/v1/devices/{id}/restore",
        "Re-admit a revoked device (409 if it is not revoked).",
        None,
        200,
        "DeviceView",
    ),
    route(
        "GET",
        "/v1/tenants",
        "Every tenant, ordered by slug (`warden tenant list`).",
        None,
        200,
        "TenantList",
    ),
    route(
        "POST",
        "/v1/tenants",
        "Add a tenant: its account, and the platform's imports of its subjects under `<slug>.` (`warden tenant add`). 409 if it exists.",
        Some("CreateTenant"),
        201,
        "TenantView",
    ),
    route(
        "POST",
        "/v1/tenants/bulk",
        "Add many tenants in one transaction; existing slugs are skipped, one bad entry adds nothing (`warden tenant add --from`).",
        Some("BulkTenants"),
        200,
        "BulkTenantsAdded",
    ),
    route(
        "GET",
        "/v1/tenants/lint",
        "Findings of `warden tenant lint` about the stored layout: unlimited tenants, tenant subjects in shared accounts.",
        None,
        200,
        "LintFindings",
    ),
    route(
        "GET",
        "/v1/tenants/{slug}",
        "One tenant.",
        None,
        200,
        "TenantView",
    ),
    route(
        "PATCH",
        "/v1/tenants/{slug}",
        "Change a tenant's limits; its account is re-signed and pushed (`warden tenant edit`).",
        Some("EditTenant"),
        200,
        "TenantView",
    ),
    route(
        "DELETE",
        "/v1/tenants/{slug}",
        "Delete a tenant, its account and users (`warden tenant delete`).",
        None,
        200,
        "TenantView",
    ),
    route(
        "POST",
        "/v1/tenants/{slug}/suspend",
        "Cut a tenant off: no connections, every user revoked (409 if already suspended).",
        None,
        200,
        "TenantView",
    ),
    route(
        "POST",
        "/v1/tenants/{slug}/resume",
        "Re-admit a suspended tenant (409 if it is not suspended).",
        None,
        200,
        "TenantView",
    ),
    route(
        "POST",
        "/v1/tenants/{slug}/users",
        "Add a user (a collector) to a tenant (`warden tenant user add`). The creds are in the answer only if the token also has the `creds` scope.",
        Some("CreateTenantUser"),
        201,
        "TenantUserAdded",
    ),
    route(
        "GET",
        "/v1/tenants/{slug}/users/{user}/creds",
        "The creds file of a tenant's user (`warden tenant creds`). Never cached.",
        None,
        200,
        "Creds",
    ),
    route(
        "GET",
        "/v1/ledger",
        "Ledger events with seq > after, oldest first.",
        None,
        200,
        "LedgerPage",
    ),
    route(
        "GET",
        "/v1/ledger/verify",
        "Walk the hash chain and report the first break.",
        None,
        200,
        "LedgerReport",
    ),
    route(
        "GET",
        "/v1/onboarding",
        "Onboarding packages (?tenant= for one tenant's).",
        None,
        200,
        "PackageList",
    ),
    route(
        "POST",
        "/v1/onboarding",
        "Make an onboarding package; its one-time download token is in the answer, once.",
        Some("CreatePackage"),
        201,
        "CreatedPackage",
    ),
    route(
        "GET",
        "/v1/onboarding/download",
        "Download a package with its one-time token in X-Warden-Download-Token (no bearer token; never in the query).",
        None,
        200,
        "PackageArchive",
    ),
    route(
        "POST",
        "/v1/onboarding/download",
        "Download a package with its one-time token in the body (no bearer token; never in the query).",
        Some("DownloadPackage"),
        200,
        "PackageArchive",
    ),
    route(
        "GET",
        "/v1/onboarding/{id}",
        "One onboarding package.",
        None,
        200,
        "PackageView",
    ),
    route(
        "POST",
        "/v1/onboarding/{id}/revoke",
        "Revoke a package: its collector user (pushed) and certificate.",
        None,
        200,
        "PackageView",
    ),
    route(
        "GET",
        "/v1/dir/users",
        "Directory users (governance), by id.",
        None,
        200,
        "DirUserList",
    ),
    route(
        "POST",
        "/v1/dir/users",
        "Add a directory user (`warden dir user add`; `as` must be a system administrator, or absent for the operator; the first user becomes one).",
        Some("CreateDirUser"),
        201,
        "DirUserView",
    ),
    route(
        "GET",
        "/v1/dir/users/{id}",
        "One directory user with relationships and NATS accounts.",
        None,
        200,
        "DirUserView",
    ),
    route(
        "GET",
        "/v1/dir/users/{id}/explain",
        "Which role and task allow or deny a subject (`?subject=S&account=A`).",
        None,
        200,
        "ExplanationList",
    ),
    route(
        "GET",
        "/v1/dir/roles",
        "Roles with members, owners, admins and tasks.",
        None,
        200,
        "RoleList",
    ),
    route(
        "POST",
        "/v1/dir/roles",
        "Create a role with its first owners (`warden role create`).",
        Some("CreateRole"),
        201,
        "RoleView",
    ),
    route(
        "GET",
        "/v1/dir/roles/{name}",
        "One role.",
        None,
        200,
        "RoleView",
    ),
    route(
        "GET",
        "/v1/dir/tasks",
        "Tasks: NATS grants in one account.",
        None,
        200,
        "TaskList",
    ),
    route(
        "POST",
        "/v1/dir/tasks",
        "Create a task (`warden task create`; a system administrator or the operator).",
        Some("CreateTask"),
        201,
        "TaskView",
    ),
    route(
        "GET",
        "/v1/dir/tasks/{name}",
        "One task.",
        None,
        200,
        "TaskView",
    ),
    route(
        "POST",
        "/v1/dir/expire",
        "Remove expired grants and proposals now; re-issue affected NATS users.",
        None,
        200,
        "ExpireReport",
    ),
    route(
        "GET",
        "/v1/proposals",
        "Proposals (`?as=U&mine=true|to_approve=true&status=open`).",
        None,
        200,
        "ProposalList",
    ),
    route(
        "POST",
        "/v1/proposals",
        "Propose a change (`warden propose`); announced on the change stream.",
        Some("CreateProposal"),
        201,
        "ProposalView",
    ),
    route(
        "POST",
        "/v1/proposals/confirm",
        "Batch approval: each id in its own transaction, a result per id.",
        Some("ConfirmMany"),
        200,
        "BatchResultList",
    ),
    route(
        "GET",
        "/v1/proposals/{id}",
        "One proposal.",
        None,
        200,
        "ProposalView",
    ),
    route(
        "POST",
        "/v1/proposals/{id}/confirm",
        "Confirm (`warden confirm`): 403 `refused` if `as` may not approve it.",
        Some("CloseProposal"),
        200,
        "ProposalView",
    ),
    route(
        "POST",
        "/v1/proposals/{id}/reject",
        "Reject (`warden reject`, `reason` required).",
        Some("CloseProposal"),
        200,
        "ProposalView",
    ),
    route(
        "GET",
        "/v1/dir/users/{id}/keys",
        "A directory user's own NATS keys (ADD_KEY), newest (in use) first.",
        None,
        200,
        "DirUserKeyList",
    ),
    route(
        "POST",
        "/v1/dir/users/{id}/keys",
        "Register a user public key (`warden dir user key add`; `as`: the user themself or a system administrator); the user's NATS users are re-issued for it.",
        Some("AddDirKey"),
        201,
        "DirKeyChange",
    ),
    route(
        "DELETE",
        "/v1/dir/users/{id}/keys/{key}",
        "Remove a key (`warden dir user key remove`; `?as=`); without keys left, back to a Warden-generated key.",
        None,
        200,
        "DirKeyChange",
    ),
    route(
        "GET",
        "/v1/accounts/{account}/mappings",
        "An account's subject mappings, by source (`warden account mapping list`).",
        None,
        200,
        "MappingsView",
    ),
    route(
        "POST",
        "/v1/accounts/{account}/mappings",
        "Add destinations to a source subject; one already listed is updated (`warden account mapping add`). Weights over 100 for a source change nothing.",
        Some("AddMapping"),
        200,
        "MappingsView",
    ),
    route(
        "DELETE",
        "/v1/accounts/{account}/mappings",
        "Remove a source's mapping (`?from=S`), or one destination (`&to=T`) (`warden account mapping rm`).",
        None,
        200,
        "MappingsView",
    ),
    route(
        "GET",
        "/v1/accounts/{account}/exports",
        "An account's exports, each with the Warden accounts importing it (`warden account export list`).",
        None,
        200,
        "ExportList",
    ),
    route(
        "POST",
        "/v1/accounts/{account}/exports",
        "Add an export; re-signs the account (`warden account export add`). An overlapping export is refused.",
        Some("ExportOptions"),
        201,
        "ExportChange",
    ),
    route(
        "PATCH",
        "/v1/accounts/{account}/exports",
        "Change the export `?subject=S`; Warden importers are re-signed in the same transaction (`warden account export edit`).",
        Some("ExportEdit"),
        200,
        "ExportChange",
    ),
    route(
        "DELETE",
        "/v1/accounts/{account}/exports",
        "Remove the export `?subject=S`; Warden importers lose their import (`warden account export rm`).",
        None,
        200,
        "ExportChange",
    ),
    route(
        "GET",
        "/v1/accounts/{account}/imports",
        "An account's imports (`warden account import list`).",
        None,
        200,
        "ImportList",
    ),
    route(
        "POST",
        "/v1/accounts/{account}/imports",
        "Import another Warden account's export, checked against it; a private export's activation is issued (`warden account import add`).",
        Some("ImportOptions"),
        201,
        "ImportView",
    ),
    route(
        "DELETE",
        "/v1/accounts/{account}/imports",
        "Remove the import `?subject=S` (the exporter's subject, or the local one), `&from=ACCOUNT` among several (`warden account import rm`).",
        None,
        200,
        "ImportView",
    ),
    route(
        "POST",
        "/v1/accounts/{account}/activations",
        "Issue an activation of the account's private export for another account, typically one Warden does not manage (`warden activation create`). Nothing stored.",
        Some("ActivationOptions"),
        201,
        "ActivationView",
    ),
    route(
        "POST",
        "/v1/accounts/{account}/activations/revoke",
        "Revoke the activations of an export for an account (or `*`) up to now; the exporter and Warden importers are re-signed (`warden activation revoke`).",
        Some("RevokeActivation"),
        200,
        "RevocationView",
    ),
    route(
        "GET",
        "/v1/accounts/{account}/signing-keys",
        "An account's signing keys, plain and roles with their templates (`warden account signing-key list`).",
        None,
        200,
        "AccountSigningKeyList",
    ),
    route(
        "POST",
        "/v1/accounts/{account}/signing-keys",
        "Add a signing key: `{}` plain, `{role, template?}` a role's scoped key (`warden account signing-key add`).",
        Some("AddSigningKey"),
        201,
        "SigningKeyAdded",
    ),
    route(
        "POST",
        "/v1/accounts/{account}/signing-keys/{key}/rotate",
        "Replace a signing key (by `A…` key or role) and re-issue its users (`warden account signing-key rotate`).",
        None,
        200,
        "SigningKeyRotated",
    ),
    route(
        "DELETE",
        "/v1/accounts/{account}/signing-keys/{key}",
        "Remove a signing key (by `A…` key or role); refused while it signed live users (`warden account signing-key rm`).",
        None,
        200,
        "SigningKeyRemoved",
    ),
    route(
        "POST",
        "/v1/accounts/{account}/users/{user}/rotate",
        "Give a user a new key, the old one revoked; answers the new creds, never cached (`warden user rotate`).",
        None,
        200,
        "UserRotated",
    ),
    route(
        "GET",
        "/v1/accounts/{account}/users/{user}/permissions",
        "What a user may do on a server line (`?server=2.9|2.15`): its own permissions, or its role's template expanded for it (`warden user show`).",
        None,
        200,
        "EffectivePermissions",
    ),
    route(
        "GET",
        "/v1/accounts/{account}/users/{user}/explain",
        "Whether a NATS user may publish or subscribe to a subject, as the server decides it (`warden user explain`).",
        None,
        200,
        "UserExplanation",
    ),
    route(
        "GET",
        "/v1/operator/signing-keys",
        "The operator's signing keys, the issuing one, and the rotation in progress (`warden operator signing-key list`).",
        None,
        200,
        "OperatorSigningKeys",
    ),
    route(
        "POST",
        "/v1/operator/signing-keys",
        "Add a signing key to the operator JWT, not issuing; servers trust it once restarted (`warden operator signing-key add`).",
        None,
        201,
        "OperatorKeyChange",
    ),
    route(
        "POST",
        "/v1/operator/signing-keys/rotate",
        "Take the next step of the zero-downtime operator key rotation, checked against the server `warden serve` talks to (`warden operator signing-key rotate`).",
        Some("RotateOperatorKey"),
        200,
        "RotateReport",
    ),
    route(
        "DELETE",
        "/v1/operator/signing-keys/{key}",
        "Remove an operator signing key (not the issuing one, nor one still signing accounts) (`warden operator signing-key rm`).",
        None,
        200,
        "OperatorKeyChange",
    ),
    route(
        "GET",
        "/v1/callout",
        "The auth callout as set up: its account and keys, allowed accounts, curve key, TTL and authenticators (`warden callout status`); 404 before set-up.",
        None,
        200,
        "CalloutView",
    ),
    route(
        "PUT",
        "/v1/callout",
        "Set up the auth callout, or change it: its account (made when missing), allowed accounts, curve key and TTL; absent fields keep what is set (`warden callout setup`).",
        Some("CalloutSetup"),
        200,
        "CalloutView",
    ),
    route(
        "GET",
        "/v1/callout/sentinel",
        "The creds of the callout's sentinel user, which clients present with their own credentials (`warden callout sentinel`). Never cached.",
        None,
        200,
        "Creds",
    ),
    route(
        "GET",
        "/v1/callout/authenticators",
        "The authenticators in the order they are tried, without secrets (`warden callout auth list`).",
        None,
        200,
        "AuthenticatorList",
    ),
    route(
        "POST",
        "/v1/callout/authenticators",
        "Add an authenticator (ldap, oidc or mtls) with its JWKS or CA as content, at the end or at `position` (`warden callout auth add`). An LDAP password is sealed and never answered.",
        Some("NewAuthenticator"),
        201,
        "AuthenticatorView",
    ),
    route(
        "GET",
        "/v1/callout/explain/{login}",
        "What the callout would decide for a login connecting now (`login@ACCOUNT` names the account), from the directory and the policy; the credential is not checked (`warden callout explain`).",
        None,
        200,
        "CalloutExplained",
    ),
    route(
        "DELETE",
        "/v1/callout/authenticators/{name}",
        "Remove an authenticator and its secret (`warden callout auth rm`).",
        None,
        200,
        "AuthenticatorView",
    ),
];

/// The rooms gateway's routes: served by `warden serve` on its HTTP address when a chat
/// secret is set, and by `warden chat`. Their bearer is the upstream user service's HS256
/// token (`chatToken`), not a `wdn_` token.
pub const CHAT_ROUTES: &[Route] = &[
    route(
        "POST",
        "/rooms",
        "Create a room (needs levelOnEntity at or above the configured level, default 100).",
        Some("RoomCreate"),
        201,
        "Room",
    ),
    route(
        "GET",
        "/rooms",
        "The rooms the caller may read (paged by id) and their pending invitations.",
        None,
        200,
        "RoomList",
    ),
    route(
        "GET",
        "/rooms/{id}",
        "The room and the caller's rights; admins also get its rules.",
        None,
        200,
        "Room",
    ),
    route(
        "DELETE",
        "/rooms/{id}",
        "Delete the room with its rules, invitations and messages (admin); open sockets get LEFT.",
        None,
        200,
        "RoomDeleted",
    ),
    route(
        "PUT",
        "/rooms/{id}/members",
        "Add (201) or replace (200) the rule of a user or entity UUID (admin); past the room's rule cap: 409 rule_cap.",
        Some("RoomRulePut"),
        200,
        "RoomRule",
    ),
    route(
        "DELETE",
        "/rooms/{id}/members/{entity}",
        "Remove the rule of a user or entity UUID (admin); takes effect on open sockets at once.",
        None,
        200,
        "RoomRuleRemoved",
    ),
    route(
        "PUT",
        "/rooms/{id}/invitation",
        "Accept or decline the caller's invitation; declining drops the caller's own rule.",
        Some("InvitationAnswer"),
        200,
        "InvitationState",
    ),
    route(
        "GET",
        "/rooms/{id}/messages",
        "History, newest first, with a cursor (before), a limit and a time range (readers).",
        None,
        200,
        "MessagePage",
    ),
    route(
        "GET",
        "/chat",
        "The chat websocket (upgrade). Protocol: the server greets {\"type\":\"status\",\"content\":\"START?\"}; send {\"type\":\"token\",\"content\":JWT} (READY, TOKEN?, or BADAUTH and close 4001 after too many bad tokens), {\"type\":\"select_room\",\"room_id\":N,\"after\":ID?} (replays messages after ID, then CONNECTED), {\"type\":\"message\",\"content\":TEXT} (stored, then delivered to the room including the sender), {\"type\":\"leave_room\"}, {\"type\":\"ping\"}. Every reply is a JSON object with a type; errors are {\"type\":\"error\",\"code\",\"content\"}. Limits: message text size, frames per second, server pings; rule changes, bans and token expiry apply to open sockets at once.",
        None,
        101,
        "ChatFrame",
    ),
];

fn chat_parameters(r: &Route) -> Vec<Value> {
    let mut out = Vec::new();
    let p = |name: &str, place: &str, description: &str, schema: Value| {
        json!({"name": name, "in": place, "required": place == "path",
               "description": description, "schema": schema})
    };
    if r.path.contains("{id}") {
        out.push(p("id", "path", "Room id.", int()));
    }
    if r.path.contains("{entity}") {
        out.push(p(
            "entity",
            "path",
            "The user or entity UUID of the rule.",
            json!({"type": "string"}),
        ));
    }
    let page = json!({"type": "integer", "minimum": 1, "maximum": 500, "default": 50});
    if r.path == "/rooms" && r.method == "GET" {
        out.push(p(
            "after",
            "query",
            "Rooms with an id above this (pass next_after back).",
            int(),
        ));
        out.push(p(
            "limit",
            "query",
            "At most this many rooms.",
            page.clone(),
        ));
    }
    if r.path == "/rooms/{id}/messages" {
        out.push(p(
            "before",
            "query",
            "Messages with an id below this (pass next_before back).",
            int(),
        ));
        out.push(p("limit", "query", "At most this many messages.", page));
        out.push(p(
            "since_ms",
            "query",
            "Messages stored at or after this time (unix milliseconds, inclusive).",
            int(),
        ));
        out.push(p(
            "until_ms",
            "query",
            "Messages stored before this time (unix milliseconds, exclusive).",
            int(),
        ));
    }
    out
}

fn chat_operation(r: &Route) -> Value {
    let mut responses = Map::new();
    let success = if r.path == "/chat" {
        "Switching protocols: a websocket of JSON text frames."
    } else {
        "Success."
    };
    responses.insert(
        r.status.to_string(),
        json!({"description": success, "content": {"application/json": {"schema": schema_ref(r.response)}}}),
    );
    if r.path == "/rooms/{id}/members" {
        responses.insert("201".into(), json!({"description": "Rule added.", "content": {"application/json": {"schema": schema_ref("RoomRule")}}}));
        responses.insert(
            "409".into(),
            error_response("The room has its cap of rules (`rule_cap`)."),
        );
    }
    if r.path == "/chat" {
        responses.insert(
            "400".into(),
            error_response("Not a websocket upgrade (`invalid`)."),
        );
    } else {
        responses.insert(
            "401".into(),
            error_response(
                "Missing token, bad signature, wrong aud or iss, or expired (`unauthorized`).",
            ),
        );
        responses.insert("403".into(), error_response("The caller's rights in the room do not allow it, or creation level too low (`forbidden`)."));
        responses.insert(
            "400".into(),
            error_response("Invalid input or body (`invalid`)."),
        );
        responses.insert(
            "500".into(),
            error_response("The gateway failed (`internal`; details in the server log)."),
        );
        if r.path.contains('{') {
            responses.insert("404".into(), error_response("No such room (or the caller may not see it), rule or invitation (`not_found`)."));
        }
    }
    let mut op = json!({
        "operationId": format!("chat_{}{}", r.method.to_ascii_lowercase(), r.path.replace(['/', '{', '}', '.'], "_")),
        "summary": r.summary,
        "tags": ["rooms"],
        "parameters": chat_parameters(r),
        "security": if r.path == "/chat" { json!([]) } else { json!([{"chatToken": []}]) },
        "responses": Value::Object(responses),
    });
    if r.path == "/chat" {
        op["description"] =
            json!("The token travels inside the socket (a `token` frame), not in a header.");
    }
    if let Some(req) = r.request {
        op["requestBody"] = json!({
            "required": true,
            "description": "JSON, at most 64 KiB. Unknown fields are refused; integers may be sent as strings of digits, as nano-messaging clients do.",
            "content": {"application/json": {"schema": schema_ref(req)}}
        });
    }
    op
}

/// The schemas of the rooms gateway.
fn chat_schemas() -> Value {
    let s = |d: &str| json!({"type": "string", "description": d});
    let i = |d: &str| json!({"type": "integer", "format": "int64", "description": d});
    let int_or_text = |d: &str| json!({"oneOf": [{"type": "integer"}, {"type": "string", "pattern": "^[0-9]+$"}], "description": d});
    json!({
        "RoomRights": {"type": "object", "properties": {
            "read": {"type": "boolean"}, "write": {"type": "boolean"},
            "admin": {"type": "boolean"}, "banned": {"type": "boolean"}
        }},
        "Room": {"type": "object", "required": ["id", "name", "type"], "properties": {
            "id": i("Room id."), "name": s("Display name."),
            "type": {"type": "string", "enum": ["group", "user2user"]},
            "level_admin": i("Level in the owner entity that administers the room."),
            "owner_user": s("The creator's user UUID."), "owner_entity": s("The creator's entity UUID."),
            "rule_cap": i("Most rules the room may have."),
            "last_message_id": i("Id of the newest message (0 before the first)."),
            "created_at": i("Created (unix seconds)."),
            "rights": schema_ref("RoomRights"),
            "rules": {"type": "array", "items": schema_ref("RoomRulePut"), "description": "Admins only."}
        }},
        "RoomCreate": {"type": "object", "required": ["name"], "properties": {
            "name": s("1 to 200 characters."),
            "level_admin": int_or_text("Default: the creation level."),
            "type": {"type": "string", "enum": ["group", "user2user"], "default": "group"},
            "rule_cap": int_or_text("Most rules (group: 1 to 1000, default 10; user2user: 1).")
        }},
        "RoomList": {"type": "object", "properties": {
            "rooms": {"type": "array", "items": schema_ref("Room")},
            "invitations": {"type": "array", "items": {"type": "object", "properties": {
                "room_id": i("Room id."), "state": s("pending."), "created_at": i("Unix seconds.")
            }}},
            "next_after": opt(i("Pass as `after` for the next page; null on the last."))
        }},
        "RoomDeleted": {"type": "object", "properties": {"deleted": i("Room id.")}},
        "RoomRulePut": {"type": "object", "required": ["entity_UUID", "permissions"], "properties": {
            "entity_UUID": s("A user UUID or an entity UUID."),
            "permissions": {"type": "string", "pattern": "^[rwab]*$", "description": "r read, w write, a admin, b banned (a ban wins)."},
            "level": int_or_text("For an entity rule: the lowest levelOnEntity it applies to.")
        }},
        "RoomRule": {"type": "object", "properties": {
            "room_id": i("Room id."), "entity_UUID": s("User or entity UUID."),
            "permissions": s("Normalised letters."), "level": i("Level."),
            "created": {"type": "boolean", "description": "Added (true) or replaced (false)."}
        }},
        "RoomRuleRemoved": {"type": "object", "properties": {"room_id": i("Room id."), "removed": s("The UUID.")}},
        "InvitationAnswer": {"type": "object", "required": ["accept"], "properties": {"accept": {"type": "boolean"}}},
        "InvitationState": {"type": "object", "properties": {
            "room_id": i("Room id."), "state": {"type": "string", "enum": ["accepted", "declined"]}
        }},
        "ChatMessage": {"type": "object", "properties": {
            "room_id": i("Room id."), "id": i("Increasing within the room: the resume and history cursor."),
            "user_uuid": s("Sender."), "entity_uuid": s("Sender's entity."),
            "content": s("The text."), "time_ms": i("Stored (unix milliseconds).")
        }},
        "MessagePage": {"type": "object", "properties": {
            "messages": {"type": "array", "items": schema_ref("ChatMessage"), "description": "Newest first."},
            "next_before": opt(i("Pass as `before` for the next page; null on the last."))
        }},
        "ChatFrame": {"type": "object", "required": ["type"], "description": "A server frame on /chat.", "properties": {
            "type": {"type": "string", "enum": ["status", "message", "error", "pong"]},
            "content": s("status: START?, READY, TOKEN?, BADAUTH, CONNECTED, LEFT; error: text for people; message: the text."),
            "code": s("error only: invalid_json, unknown_type, not_authenticated, not_in_room, not_authorised, banned, no_such_room, too_large, empty_message, rate_limited, token_expired, lagged, internal."),
            "room_id": i("The room (CONNECTED, LEFT, message)."),
            "reason": s("Why (TOKEN?, BADAUTH, LEFT).")
        }}
    })
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": schema_ref("Error")}}
    })
}

fn parameters(r: &Route) -> Vec<Value> {
    let mut out = Vec::new();
    for segment in r.path.split('/') {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            let what = match name {
                "user" => "User name.",
                "id" if r.path.starts_with("/v1/onboarding") => "Package id (pkg_…).",
                "id" if r.path.starts_with("/v1/dir/users") => "Directory user id.",
                "key" if r.path.starts_with("/v1/dir/users") => "A user public key (U…).",
                "id" if r.path.starts_with("/v1/proposals") => "Proposal id (p1, p2, …).",
                "name" if r.path.starts_with("/v1/dir/roles") => "Role name.",
                "name" if r.path.starts_with("/v1/dir/tasks") => "Task name.",
                "key" if r.path.starts_with("/v1/operator") => "An operator signing key (O…).",
                "name" if r.path.starts_with("/v1/callout") => "Authenticator name.",
                "login" => {
                    "The login an authenticator would name (user id, email, user principal name, certificate name), optionally LOGIN@ACCOUNT."
                }
                "key" => "An account signing key (A…), or the role of a scoped key.",
                "id" => "Device id.",
                "slug" => "Tenant slug.",
                _ => "Account name (any case; stored names follow the naming policy).",
            };
            out.push(json!({
                "name": name, "in": "path", "required": true,
                "description": what, "schema": {"type": "string"}
            }));
        }
    }
    if r.path == super::onboarding::DOWNLOAD_PATH && r.method == "GET" {
        out.push(json!({
            "name": "X-Warden-Download-Token", "in": "header", "required": true,
            "description": "The package's one-time download token (wdl_…).",
            "schema": {"type": "string"}
        }));
    }
    if r.path == "/v1/onboarding" && r.method == "GET" {
        out.push(json!({
            "name": "tenant", "in": "query", "required": false,
            "description": "Only this tenant's packages.", "schema": {"type": "string"}
        }));
    }
    if r.path == "/v1/devices" && r.method == "GET" {
        out.push(json!({
            "name": "state", "in": "query", "required": false,
            "description": "Only devices in this state.",
            "schema": {"type": "string", "enum": ["provisioned", "active", "revoked"]}
        }));
    }
    let query = |name: &str, required: bool, description: &str| {
        json!({
            "name": name, "in": "query", "required": required,
            "description": description, "schema": {"type": "string"}
        })
    };
    match (r.method, r.path) {
        ("PATCH" | "DELETE", "/v1/accounts/{account}/exports") => out.push(query(
            "subject",
            true,
            "The export's subject (percent-encoded: `>` is `%3E`).",
        )),
        ("DELETE", "/v1/accounts/{account}/imports") => {
            out.push(query(
                "subject",
                true,
                "The import's subject: the exporter's, or the importer's local one.",
            ));
            out.push(query(
                "from",
                false,
                "The exporting account (name or key), among imports of the same subject.",
            ));
        }
        ("GET", "/v1/accounts/{account}/users/{user}/permissions") => out.push(query(
            "server",
            false,
            "nats-server version the template is evaluated for (2.9 or 2.15 rules; default 2.15).",
        )),
        ("GET", "/v1/accounts/{account}/users/{user}/explain") => {
            out.push(query("direction", true, "publish or subscribe."));
            out.push(query("subject", true, "The subject asked about."));
            out.push(query(
                "server",
                false,
                "nats-server version (2.9 or 2.15 rules; default 2.15).",
            ));
        }
        ("DELETE", "/v1/accounts/{account}/mappings") => {
            out.push(query("from", true, "The source subject."));
            out.push(query(
                "to",
                false,
                "Only this destination (the source goes with its last one).",
            ));
        }
        _ => {}
    }
    if r.path == "/v1/dir/users/{id}/keys/{key}" {
        out.push(json!({
            "name": "as", "in": "query", "required": false,
            "description": "The acting directory user (the user themself or a system administrator).",
            "schema": {"type": "string"}
        }));
    }
    if r.path == "/v1/ledger" {
        out.push(json!({
            "name": "after", "in": "query", "required": false,
            "description": "Return events with seq greater than this (default 0).",
            "schema": {"type": "integer", "format": "int64", "minimum": 0, "default": 0}
        }));
        out.push(json!({
            "name": "limit", "in": "query", "required": false,
            "description": "At most this many events.",
            "schema": {"type": "integer", "minimum": 1, "maximum": LEDGER_MAX_LIMIT, "default": LEDGER_DEFAULT_LIMIT}
        }));
    }
    out
}

fn operation(r: &Route) -> Value {
    let method = Method::from_bytes(r.method.as_bytes()).unwrap_or(Method::GET);
    let scope = documented_scope(&method, r.path);
    let mut responses = Map::new();
    responses.insert(
        r.status.to_string(),
        json!({
            "description": "Success.",
            "content": {"application/json": {"schema": schema_ref(r.response)}}
        }),
    );
    if r.path == super::onboarding::DOWNLOAD_PATH {
        responses.insert(
            "200".into(),
            json!({
                "description": "The package, a .tar.gz; the token is spent.",
                "content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}}
            }),
        );
        responses.insert("400".into(), error_response(
            "A query string (`token_in_query`: the token must not travel in a URL; nothing is consumed), or no token (`invalid`).",
        ));
        responses.insert(
            "403".into(),
            error_response("Not a valid download token (`invalid_token`)."),
        );
        responses.insert("410".into(), error_response(
            "The token was used (`token_used`), expired (`token_expired`), or the package is revoked (`package_revoked`). Recorded.",
        ));
        responses.insert("429".into(), error_response(
            "Too many refused attempts from this address in the current window (`too_many_attempts`, with `Retry-After` in seconds): nothing was read or consumed.",
        ));
    }
    if r.path == "/metrics" {
        // Plain text, not JSON.
        let mut content = Map::new();
        content.insert(
            super::metrics::CONTENT_TYPE.into(),
            json!({"schema": schema_ref(r.response)}),
        );
        responses.insert(
            "200".into(),
            json!({"description": "Success.", "content": content}),
        );
    }
    if r.path == "/readyz" {
        responses.insert(
            "503".into(),
            json!({
                "description": "Not ready.",
                "content": {"application/json": {"schema": schema_ref("Ready")}}
            }),
        );
    }
    let mut op = json!({
        "operationId": format!("{}{}", r.method.to_ascii_lowercase(), r.path.replace(['/', '{', '}', '.'], "_")),
        "summary": r.summary,
        "parameters": parameters(r),
    });
    if let Some(scope) = scope {
        op["description"] = json!(format!(
            "Needs a bearer token with the `{scope}` scope (or `admin`).{}",
            scope_note(&method, r.path)
        ));
        op["security"] = json!([{"bearerAuth": []}]);
        op["x-warden-scope"] = json!(scope.as_str());
        responses.insert(
            "401".into(),
            error_response(
                "Missing, malformed, unknown, expired or revoked token (`unauthorized`).",
            ),
        );
        responses.insert(
            "403".into(),
            error_response("The token lacks the scope, or is bound to a directory user and this is not a governance route or not as that user (`forbidden`); or the rules refuse the acting user (`refused`). Nothing changed."),
        );
        responses.insert(
            "500".into(),
            error_response("Warden failed (`internal`; details in the server log)."),
        );
        if r.path.contains('{') {
            responses.insert(
                "404".into(),
                error_response("No such account, user or device (`not_found`)."),
            );
        }
        if r.path.starts_with("/v1/callout") {
            responses.insert(
                "404".into(),
                error_response("The auth callout is not set up (`not_found`: run `warden callout setup` or `PUT /v1/callout` first), or no such authenticator or account."),
            );
        }
        if r.request.is_some() || r.method != "GET" {
            responses.insert("400".into(), error_response(
                "Invalid input (`invalid`), or a body that is not JSON or does not fit the schema (`invalid_json`).",
            ));
            responses.insert("409".into(), error_response(
                "Conflicts with existing state (`conflict`), or Warden is not initialised (`not_initialised`).",
            ));
        } else {
            responses.insert(
                "409".into(),
                error_response("Warden is not initialised (`not_initialised`)."),
            );
        }
        if r.path == "/v1/ledger" {
            responses.insert(
                "400".into(),
                error_response("Bad `after` or `limit` (`invalid`)."),
            );
        }
    } else {
        op["security"] = json!([]);
    }
    if let Some(req) = r.request {
        op["requestBody"] = json!({
            "required": true,
            "description": format!("JSON, at most {MAX_BODY_BYTES} bytes (`413 payload_too_large` beyond; `415 unsupported_media_type` without a JSON content type). Unknown fields are refused."),
            "content": {"application/json": {"schema": schema_ref(req)}}
        });
    }
    op["responses"] = Value::Object(responses);
    op
}

fn int() -> Value {
    json!({"type": "integer", "format": "int64"})
}

fn limit(description: &str) -> Value {
    json!({"type": "integer", "format": "int64", "description": description})
}

fn opt(schema: Value) -> Value {
    json!({"oneOf": [schema, {"type": "null"}]})
}

fn strings(description: &str) -> Value {
    json!({"type": "array", "items": {"type": "string"}, "description": description})
}

fn schemas() -> Value {
    let mut all = base_schemas();
    if let (Value::Object(all), Value::Object(devices)) = (&mut all, device_schemas()) {
        all.extend(devices);
    }
    if let (Value::Object(all), Value::Object(tenants)) = (&mut all, tenant_schemas()) {
        all.extend(tenants);
    }
    if let (Value::Object(all), Value::Object(more)) = (&mut all, onboarding_schemas()) {
        all.extend(more);
    }
    if let (Value::Object(all), Value::Object(more)) = (&mut all, governance_schemas()) {
        all.extend(more);
    }
    if let (Value::Object(all), Value::Object(more)) = (&mut all, account_model_schemas()) {
        all.extend(more);
    }
    if let (Value::Object(all), Value::Object(more)) = (&mut all, signing_key_schemas()) {
        all.extend(more);
    }
    if let (Value::Object(all), Value::Object(more)) = (&mut all, callout_schemas()) {
        all.extend(more);
    }
    if let (Value::Object(all), Value::Object(more)) = (&mut all, chat_schemas()) {
        all.extend(more);
    }
    all
}

/// The schemas of the auth callout: its set-up, its view and its authenticators.
fn callout_schemas() -> Value {
    let s = |d: &str| json!({"type": "string", "description": d});
    let position = json!({"type": "integer", "minimum": 1, "description": "Where it goes in the order they are tried, from 1 (default: last)."});
    let name = s("1-64 letters, digits, '-' or '_'; unique among the authenticators.");
    json!({
        "CalloutSetup": {"type": "object", "additionalProperties": false, "description": "Absent fields keep what is set (the first set-up: account AUTH, any account, no curve key, TTL 3600 s).", "properties": {
            "account": s("The callout account (made when missing); not the system or service account. Once set up, the same account."),
            "xkey": {"type": "boolean", "description": "Seal requests and responses with a curve key (true makes one if none; false deletes it)."},
            "allowed_accounts": strings("Accounts users may be placed in, by name; [] or [\"*\"]: any account (not the callout account)."),
            "ttl_secs": {"type": "integer", "format": "int64", "minimum": 60, "maximum": 2592000, "description": "Lifetime of issued user JWTs, seconds."},
            "server_version": s("The nats-server version it is for; below 2.10.0 (no auth callout) it is refused.")
        }},
        "AuthenticatorView": {"type": "object", "properties": {
            "position": {"type": "integer", "description": "From 1, in the order they are tried."},
            "name": s("Name."),
            "kind": {"type": "string", "enum": ["ldap", "oidc", "mtls"]},
            "detail": s("What it checks against, in a line (URL, issuer, certificate mapping)."),
            "has_secret": {"type": "boolean", "description": "Whether a secret (an LDAP bind password) is stored for it; the secret itself is never answered."}
        }},
        "AuthenticatorList": {"type": "array", "items": schema_ref("AuthenticatorView")},
        "CalloutExplained": {"type": "object", "properties": {
            "allowed": {"type": "boolean", "description": "Whether the login would be let in."},
            "code": s("allowed, or the refusal's code (unknown_user, disabled_user, no_grants, ambiguous_account, account_not_allowed)."),
            "reason": {"type": ["string", "null"], "description": "Why not, when refused."},
            "user": {"type": ["string", "null"], "description": "The directory user."},
            "account": {"type": ["string", "null"], "description": "The account the user would be placed in."},
            "permissions": {"description": "The user JWT's permissions (pub, sub: allow and deny)."},
            "expires_at": {"type": ["integer", "null"], "format": "int64", "description": "When the user JWT would expire (unix seconds), unless the token's expiry is earlier."},
            "tasks": strings("The role/task pairs the permissions come from.")
        }},
        "CalloutView": {"type": "object", "properties": {
            "account": s("The callout account's name."),
            "account_key": s("A…, the `sub` of authorization requests."),
            "responder_key": s("U…, Warden's responder (the account's auth user)."),
            "sentinel_key": s("U…, the sentinel user clients present."),
            "allowed_accounts": strings("Accounts users may be placed in; [\"*\"] for any."),
            "xkey": {"type": ["string", "null"], "description": "X…, the curve key requests are sealed to; null when they are not."},
            "ttl_secs": {"type": "integer", "format": "int64", "description": "Lifetime of issued user JWTs, seconds."},
            "authenticators": {"type": "array", "items": schema_ref("AuthenticatorView")}
        }},
        "NewAuthenticator": {"oneOf": [
            {"type": "object", "required": ["kind", "name", "url", "base"], "additionalProperties": false, "description": "A user name and password checked by a bind against an LDAP directory.", "properties": {
                "kind": {"const": "ldap"}, "name": name.clone(),
                "url": s("ldap:// or ldaps:// URL."), "base": s("Base DN searched for the user's entry."),
                "bind_dn": s("DN to bind as for the search (default: anonymous); needs password."),
                "password": {"type": "string", "writeOnly": true, "description": "The bind DN's password: sealed at rest, never answered or logged."},
                "user_filter": s("Search filter; {user} is the login (default `(uid={user})`)."),
                "ca_pem": s("PEM of the CA of the directory's certificate, for ldaps:// (default: the system roots)."),
                "position": position.clone()
            }},
            {"type": "object", "required": ["kind", "name", "issuer", "audience", "jwks"], "additionalProperties": false, "description": "An OIDC ID token (the client's auth token) verified against a JWKS.", "properties": {
                "kind": {"const": "oidc"}, "name": name.clone(),
                "issuer": s("Required `iss`."), "audience": s("Required `aud`."),
                "user_claim": s("The claim naming the directory user (default `sub`)."),
                "jwks": {"oneOf": [{"type": "object"}, {"type": "string"}], "description": "The JWKS ({\"keys\": [...]}, or one JWK) as JSON or as its text; RS256, ES256 and EdDSA keys are used."},
                "position": position.clone()
            }},
            {"type": "object", "required": ["kind", "name", "ca_pem"], "additionalProperties": false, "description": "The client certificate of a TLS connection, checked against a CA.", "properties": {
                "kind": {"const": "mtls"}, "name": name,
                "ca_pem": s("PEM of the CA certificates client certificates must chain to (certificates only)."),
                "map": {"type": "string", "enum": ["subject", "san"], "default": "subject", "description": "What names the user: the subject's common name, or the first email/DNS alternative name."},
                "position": position
            }}
        ]}
    })
}

/// The schemas of `/v1/dir…` and `/v1/proposals…`.
fn governance_schemas() -> Value {
    let s = |d: &str| json!({"type": "string", "description": d});
    let strings = |d: &str| json!({"type": "array", "items": {"type": "string"}, "description": d});
    let unix = |d: &str| json!({"type": ["integer", "null"], "format": "int64", "description": format!("{d} (unix seconds).")});
    let acting = s(
        "The acting directory user. With a token bound to a directory user it may be left out (the token's user acts) and may name no one else (403 forbidden).",
    );
    let list = |item: &str| json!({"type": "array", "items": schema_ref(item)});
    json!({
        "NextUser": {"type": "object", "description": "A directory user in NEXT field names (id, name, email, manager, user_principal_name, …; see docs/governance.md).", "properties": {
            "id": s("Directory id: a NATS user name."), "name": s("Display name."), "email": s("E-mail."), "manager": s("Manager's directory id.")
        }, "required": ["id"]},
        "CreateDirUser": {"type": "object", "additionalProperties": false, "properties": {
            "as": acting, "sysadmin": {"type": "boolean"}, "user": schema_ref("NextUser")
        }, "required": ["user"]},
        "DirUserView": {"type": "object", "properties": {
            "id": s("Directory id."), "user": schema_ref("NextUser"), "source": s("warden, or the directory it was imported from."),
            "sysadmin": {"type": "boolean"}, "relationships": {"type": "array", "items": {"type": "object"}},
            "nats_accounts": strings("Accounts where the user has a NATS user.")
        }},
        "DirUserList": {"type": "array", "items": {"type": "object"}},
        "TaskGrants": {"type": "object", "properties": {
            "allow_pub": strings("Subjects."), "deny_pub": strings("Subjects."), "allow_sub": strings("Subjects."), "deny_sub": strings("Subjects.")
        }},
        "CreateRole": {"type": "object", "additionalProperties": false, "properties": {
            "as": acting, "name": s("Role name."), "owners": strings("Owners' directory ids."), "description": s("Description.")
        }, "required": ["name", "owners"]},
        "RoleView": {"type": "object", "properties": {"id": s("Role name."), "role": {"type": "object"}, "admins": strings("Admins."), "tasks": strings("Tasks."), "source": s("Source.")}},
        "RoleList": list("RoleView"),
        "CreateTask": {"type": "object", "additionalProperties": false, "properties": {
            "as": acting, "name": s("Task name."), "account": s("Account name."), "grants": schema_ref("TaskGrants"),
            "owners": strings("Owners' directory ids."), "description": s("Description.")
        }, "required": ["name", "account", "grants", "owners"]},
        "TaskView": {"type": "object", "properties": {"id": s("Task name."), "account": s("Account."), "grants": schema_ref("TaskGrants"), "owners": strings("Owners."), "admins": strings("Admins.")}},
        "TaskList": list("TaskView"),
        "CreateProposal": {"type": "object", "additionalProperties": false, "properties": {
            "as": acting,
            "kind": {"type": "string", "enum": ["role-member", "role-owner", "role-admin", "role-task", "task-owner", "task-admin", "manager"]},
            "change": {"type": "string", "enum": ["add", "remove", "update"]},
            "object": s("The role, task, or (manager) user."), "related": s("The user or task."),
            "reason": s("Why."), "grant_expires_at": unix("When the granted relationship ends"), "expires_at": unix("When the open proposal expires")
        }, "required": ["as", "kind", "change", "object", "related"]},
        "CloseProposal": {"type": "object", "additionalProperties": false, "properties": {
            "as": acting, "justification": s("Confirm: why."), "reason": s("Reject: why (required).")
        }, "required": ["as"]},
        "ConfirmMany": {"type": "object", "additionalProperties": false, "properties": {
            "as": acting, "ids": strings("Proposal ids."), "justification": s("Why.")
        }, "required": ["as", "ids"]},
        "ProposalView": {"type": "object", "properties": {
            "id": s("p1, p2, …"), "message": s("The governance message, e.g. CONFIRM_ADD_ROLE_MEMBER."),
            "kind": s("Kind."), "change": s("add, remove or update."), "address": {"type": "object"},
            "initiator": s("Directory user."), "reason": s("Why."),
            "status": {"type": "string", "enum": ["open", "confirmed", "rejected", "expired"]},
            "closer": s("Who closed it."), "justification": s("The closer's words."),
            "approvers": strings("Who the rule names (their managers and system administrators also may)."),
            "reissued": {"type": "array", "items": {"type": "object"}}
        }},
        "ProposalList": list("ProposalView"),
        "BatchResultList": {"type": "array", "items": {"type": "object", "properties": {
            "id": s("Proposal id."), "ok": {"type": "boolean"}, "proposal": schema_ref("ProposalView"), "error": s("Why not.")
        }}},
        "ExplanationList": {"type": "array", "items": {"type": "object", "properties": {
            "account": s("Account."), "direction": s("publish or subscribe."), "subject": s("Subject."),
            "allowed": {"type": "boolean"}, "reason": s("Why."),
            "allowed_by": {"type": "array", "items": {"type": "object"}}, "denied_by": {"type": "array", "items": {"type": "object"}}
        }}},
        "AddDirKey": {"type": "object", "additionalProperties": false, "properties": {
            "as": s("The acting directory user (the user themself or a system administrator)."),
            "public_key": s("A NATS user public key (U…). Never a seed: a seed is refused (`invalid`) and not echoed.")
        }, "required": ["public_key"]},
        "DirUserKey": {"type": "object", "properties": {
            "public_key": s("User public key (U…)."), "user_id": s("Directory user."), "created_at": {"type": "integer", "format": "int64"}
        }},
        "DirUserKeyList": list("DirUserKey"),
        "DirKeyChange": {"type": "object", "properties": {
            "user": s("Directory user."), "public_key": s("The key added or removed."),
            "change": {"type": "string", "enum": ["add", "remove"]},
            "keys": list("DirUserKey"), "reissued": {"type": "array", "items": {"type": "object"}}
        }},
        "ExpireReport": {"type": "object", "properties": {
            "relationships": {"type": "array", "items": {"type": "object"}}, "proposals": strings("Expired proposals."),
            "reissued": {"type": "array", "items": {"type": "object"}}
        }}
    })
}

/// The schemas of `/v1/tenants…`.
fn tenant_schemas() -> Value {
    let unix = |d: &str| json!({"type": "integer", "format": "int64", "description": format!("{d} (unix seconds).")});
    let fields = [
        ("conns", "Client connections."),
        ("subscriptions", "Subscriptions."),
        ("payload", "Max message payload, bytes."),
        ("data", "Data, bytes (not enforced by nats-server 2.9.10)."),
        ("leaf_conns", "Leaf node connections."),
        ("imports", "Imports (at least the catalogue's requests)."),
        (
            "exports",
            "Exports (at least the catalogue's publish subjects).",
        ),
        (
            "js_mem",
            "JetStream memory, bytes (0 with js_disk 0 disables JetStream).",
        ),
        ("js_disk", "JetStream disk, bytes."),
        ("js_streams", "JetStream streams."),
        ("js_consumers", "JetStream consumers."),
    ];
    let mut limits = Map::new();
    for (name, what) in fields {
        limits.insert(name.into(), limit(&format!("{what} -1 is unlimited.")));
    }
    limits.insert(
        "js_replicas".into(),
        json!({"type": "integer", "minimum": 1, "maximum": 5, "description": "Replicas of the tenant's JetStream streams (default 1); above 1 the JetStream limits are the account's tier `R<n>`."}),
    );
    let limits = Value::Object(limits);
    json!({
        "TenantLimits": {"type": "object", "properties": limits.clone()},
        "TenantLimitsEdit": {"type": "object", "additionalProperties": false, "description": "Absent fields keep their value (the default's, for a new tenant). A value below -1, or imports/exports below what the catalogue needs, is refused (400, the CLI's message).", "properties": limits},
        "TenantView": {"type": "object", "properties": {
            "slug": {"type": "string"},
            "state": {"type": "string", "enum": ["active", "suspended"]},
            "account": {"type": "string", "description": "Its account (`TENANT-<slug>`)."},
            "account_key": {"type": "string", "description": "A…"},
            "platform_account": {"type": "string", "description": "Where its traffic arrives as `<slug>.<subject>`."},
            "prefix": {"type": "string", "description": "`<slug>.`"},
            "limits": schema_ref("TenantLimits"),
            "users": strings("Names of its users."),
            "created_at": unix("Created"), "updated_at": unix("Last changed"),
            "suspended_at": opt(unix("Last suspension"))
        }},
        "TenantList": {"type": "array", "items": schema_ref("TenantView")},
        "CreateTenant": {"type": "object", "required": ["slug"], "additionalProperties": false, "properties": {
            "slug": {"type": "string", "description": "1 to 32 of `[a-z0-9-]`, starting with a letter; reserved words and catalogue first tokens refused."},
            "limits": schema_ref("TenantLimitsEdit")
        }},
        "BulkTenants": {"type": "object", "required": ["tenants"], "additionalProperties": false, "properties": {
            "tenants": {"type": "array", "items": schema_ref("CreateTenant")}
        }},
        "BulkTenantsAdded": {"type": "object", "properties": {
            "added": strings("Slugs added now, in the order given."),
            "skipped": strings("Slugs that existed already (left as they are).")
        }},
        "EditTenant": {"type": "object", "additionalProperties": false, "description": "At least one limit.", "properties": {
            "limits": schema_ref("TenantLimitsEdit")
        }},
        "CreateTenantUser": {"type": "object", "required": ["name"], "additionalProperties": false, "properties": {
            "name": {"type": "string", "description": "User name (naming policy applies)."}
        }},
        "TenantUserAdded": {"type": "object", "required": ["tenant", "user"], "properties": {
            "tenant": schema_ref("TenantView"),
            "user": {"type": "string"},
            "creds": {"type": "string", "description": "The user's creds file; present only when the token has the `creds` scope."}
        }},
        "LintFinding": {"type": "object", "properties": {
            "severity": {"type": "string", "enum": ["warning", "error"]},
            "code": {"type": "string", "enum": ["unlimited", "tenant-subject-in-shared-account", "unbounded-stream", "platform-stream-not-tenant-wildcard", "tenant-stream-in-shared-account"]},
            "object": {"type": "string", "description": "Tenant slug, account, or ACCOUNT/STREAM."},
            "message": {"type": "string"}
        }},
        "LintFindings": {"type": "array", "items": schema_ref("LintFinding")}
    })
}

/// The schemas of `/v1/devices…` (apart, as one `json!` of every schema is too deep for
/// the macro).
fn device_schemas() -> Value {
    let unix = |d: &str| json!({"type": "integer", "format": "int64", "description": format!("{d} (unix seconds).")});
    json!({
        "DeviceView": {"type": "object", "properties": {
            "id": {"type": "string"},
            "state": {"type": "string", "enum": ["provisioned", "active", "revoked"]},
            "account": {"type": "string", "description": "Its account's name."},
            "account_key": {"type": "string", "description": "A…"},
            "user": {"type": "string"}, "user_key": {"type": "string", "description": "U…"},
            "to_device": {"type": "string", "description": "Subjects of messages to the device."},
            "from_device": {"type": "string", "description": "Subjects of requests from the device."},
            "stream": {"type": "string", "description": "Its JetStream stream in the hub."},
            "js_api_prefix": {"type": "string", "description": "The device-side JetStream API prefix."},
            "meta": {"type": "object", "description": "Metadata given at creation."},
            "created_at": unix("Created"), "activated_at": opt(unix("First connection observed")),
            "rotated_at": opt(unix("Last rotation")), "revoked_at": opt(unix("Last revocation")),
            "restored_at": opt(unix("Last restore")), "updated_at": unix("Last changed")
        }},
        "DeviceList": {"type": "array", "items": schema_ref("DeviceView")},
        "CreateDevice": {"type": "object", "required": ["id"], "additionalProperties": false, "properties": {
            "id": {"type": "string", "description": "Device id: lower-case letters, digits and `-`."},
            "meta": {"type": "object", "description": "Metadata (any JSON values)."}
        }},
        "BulkDevices": {"type": "object", "required": ["devices"], "additionalProperties": false, "properties": {
            "devices": {"type": "array", "items": schema_ref("CreateDevice")}
        }},
        "DeviceWithCreds": {"type": "object", "required": ["device"], "properties": {
            "device": schema_ref("DeviceView"),
            "creds": {"type": "string", "description": "The device's creds file; present only when the token has the `creds` scope."}
        }},
        "BulkAdded": {"type": "object", "properties": {
            "added": strings("Ids added now."),
            "skipped": strings("Ids that existed already (left as they are)."),
            "creds": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Id → creds file of each device added now; present only when the token has the `creds` scope."}
        }}
    })
}

/// The schemas of `/v1/onboarding…`.
fn onboarding_schemas() -> Value {
    let unix = |d: &str| json!({"type": "integer", "format": "int64", "description": format!("{d} (unix seconds).")});
    json!({
        "PackageView": {"type": "object", "properties": {
            "id": {"type": "string", "description": "pkg_…"},
            "tenant": {"type": "string"}, "component": {"type": "string"}, "site": {"type": "string"},
            "state": {"type": "string", "enum": ["issued", "delivered", "activated", "revoked"]},
            "user": {"type": "string", "description": "Collector user in the tenant account."},
            "user_key": {"type": "string", "description": "U…"},
            "subjects": strings("Subjects the collector publishes (tenant-local)."),
            "certificate": {"type": "object", "properties": {
                "common_name": {"type": "string"}, "uri": {"type": "string"},
                "serial": {"type": "string"}, "fingerprint": {"type": "string", "description": "SHA-256 of the DER, hex."},
                "not_after": unix("End of validity"), "revoked": {"type": "boolean"}
            }},
            "token_expires_at": unix("Expiry of the download token"),
            "token_usable": {"type": "boolean"},
            "issued_at": unix("Made"), "delivered_at": opt(unix("Downloaded")),
            "activated_at": opt(unix("First connection observed")), "revoked_at": opt(unix("Revoked")),
            "refused_downloads": int(), "last_refused_at": opt(unix("Last refused download"))
        }},
        "PackageList": {"type": "array", "items": schema_ref("PackageView")},
        "CreatePackage": {"type": "object", "required": ["tenant", "component", "site", "nats_url"], "properties": {
            "tenant": {"type": "string"},
            "component": {"type": "string", "enum": ["flowgger", "trapd", "netflow", "otel", "poller", "agent", "checker"]},
            "site": {"type": "string", "description": "Lowercase letters, digits, dashes."},
            "expires_in": {"type": "integer", "format": "int64", "default": 86400, "description": "Life of the download token, seconds (at most 30 days)."},
            "nats_url": {"type": "string", "description": "NATS URL written into the collector config."},
            "install_dir": {"type": "string", "description": "Absolute directory install.sh installs into."}
        }},
        "CreatedPackage": {"type": "object", "properties": {
            "package": schema_ref("PackageView"),
            "token": {"type": "string", "description": "The one-time download token (wdl_…), shown only here."}
        }},
        "DownloadPackage": {"type": "object", "required": ["token"], "properties": {
            "token": {"type": "string", "description": "The one-time download token."}
        }},
        "PackageArchive": {"type": "string", "format": "binary", "description": "The package, application/gzip (a .tar.gz). Refusals: 400 token_in_query (any query string; nothing consumed), 403 invalid_token, 410 token_used / token_expired / package_revoked, 429 too_many_attempts (Retry-After)."}
    })
}

/// The schemas of account signing keys, users by role and operator signing keys.
fn signing_key_schemas() -> Value {
    let s = |d: &str| json!({"type": "string", "description": d});
    json!({
        "UserPermissionLimits": {"type": "object", "description": "A user's permissions and limits in the JWT's form: pub, sub, resp, src, times, times_location, subs, data, payload, bearer_token, allowed_connection_types."},
        "AccountSigningKey": {"type": "object", "properties": {
            "account": s("Account."), "key": s("A…"), "kind": {"type": "string", "enum": ["plain", "user_scope"]},
            "role": {"type": ["string", "null"]}, "template": schema_ref("UserPermissionLimits"),
            "users": {"type": "integer", "description": "Live users whose JWT it signed."},
            "seed_held": {"type": "boolean"}
        }},
        "AccountSigningKeyList": {"type": "array", "items": schema_ref("AccountSigningKey")},
        "AddSigningKey": {"type": "object", "additionalProperties": false, "properties": {
            "role": s("Role name: a scoped key applying the template to every user it signs."),
            "template": {"allOf": [schema_ref("UserPermissionLimits")], "description": "Only with role; subs, data, payload not given are unlimited (-1). Subjects may use template functions ({{name()}}, {{tag(k)}}, …)."}
        }},
        "SigningKeyAdded": {"type": "object", "properties": {"signing_key": schema_ref("AccountSigningKey"), "warnings": strings("What a person should know.")}},
        "SigningKeyRotated": {"type": "object", "properties": {"old_key": s("A…"), "signing_key": schema_ref("AccountSigningKey"), "reissued": strings("Users re-issued by the new key.")}},
        "SigningKeyRemoved": {"type": "object", "properties": {"account": s("Account."), "key": s("A…"), "role": {"type": ["string", "null"]}}},
        "UserAdded": {"oneOf": [schema_ref("UserView"), schema_ref("RoleUserAdded")]},
        "RoleUserAdded": {"type": "object", "properties": {"user": schema_ref("UserView"), "role": s("Role."), "signing_key": s("The role's key."), "warnings": strings("What a person should know.")}},
        "UserRotated": {"type": "object", "properties": {"user": schema_ref("UserView"), "old_key": s("U…, revoked."), "creds": s("The new creds file (JWT + seed).")}},
        "EffectivePermissions": {"type": "object", "properties": {
            "user": s("User."), "account": s("Account."), "signing_key": {"type": ["string", "null"]}, "role": {"type": ["string", "null"]},
            "server_line": {"type": "string", "enum": ["2.9", "2.15"]},
            "limits": {"oneOf": [schema_ref("UserPermissionLimits"), {"type": "null"}]},
            "account_defaults": {"type": "boolean"},
            "dropped": {"type": "array", "items": {"type": "object"}, "description": "Template subjects the user does not get, and why."},
            "connect_refused": {"type": ["string", "null"]}
        }},
        "UserExplanation": {"type": "object", "properties": {
            "user": s("User."), "account": s("Account."), "direction": {"type": "string", "enum": ["publish", "subscribe"]},
            "subject": s("Subject."), "allowed": {"type": "boolean"}, "reason": s("The rule that decided it."),
            "role": {"type": ["string", "null"]}, "server_line": {"type": "string", "enum": ["2.9", "2.15"]}
        }},
        "OperatorSigningKeys": {"type": "object", "properties": {
            "operator": s("O…"), "issuing_key": s("The key that issues accounts now."),
            "keys": {"type": "array", "items": {"type": "object", "properties": {
                "public_key": s("O…"), "issuing": {"type": "boolean"}, "in_operator_jwt": {"type": "boolean"},
                "identity": {"type": "boolean"}, "seed_held": {"type": "boolean"}, "accounts": {"type": "integer"},
                "rotation": {"type": ["string", "null"], "enum": ["old", "new", null]}
            }}},
            "rotation": {"type": ["object", "null"], "description": "{from, to, phase: trust|confirm|untrust, started_at, updated_at}."}
        }},
        "OperatorKeyChange": {"type": "object", "properties": {
            "action": {"type": "string", "enum": ["added", "removed"]}, "public_key": s("O…"),
            "signing_keys": strings("The operator JWT's signing keys now."), "next": strings("What to do next.")
        }},
        "RotateOperatorKey": {"type": "object", "additionalProperties": false, "properties": {
            "servers": {"type": "integer", "minimum": 1, "description": "How many servers must answer the trust check (default 1)."},
            "timeout_ms": {"type": "integer", "minimum": 1, "maximum": 60000, "description": "Bound on each wait (default 5000)."}
        }},
        "RotateReport": {"type": "object", "description": "step (started, awaiting_trust, resigned, awaiting_accounts, old_key_removed, awaiting_restart, completed), changed, from, to, phase, servers, accounts_resigned, delivery, unconfirmed, unconfirmed_count, waiting_for, next."}
    })
}

/// The schemas of mappings, exports, imports and activations.
fn account_model_schemas() -> Value {
    let s = |d: &str| json!({"type": "string", "description": d});
    let subject =
        |d: &str| json!({"type": "string", "description": format!("{d} (a NATS subject).")});
    let unix = |d: &str| json!({"type": ["integer", "null"], "format": "int64", "description": format!("{d} (unix seconds).")});
    let kind = json!({"type": "string", "enum": ["stream", "service"]});
    json!({
        "MappingTarget": {"type": "object", "required": ["subject"], "additionalProperties": false, "properties": {
            "subject": subject("Destination, no wildcards"),
            "weight": {"type": "integer", "minimum": 1, "maximum": 100, "description": "Percentage; absent: 100."}
        }},
        "AddMapping": {"type": "object", "required": ["from", "to"], "additionalProperties": false, "properties": {
            "from": subject("Source"),
            "to": {"type": "array", "items": schema_ref("MappingTarget"), "minItems": 1},
            "cluster": s("Only in this nats-server cluster.")
        }},
        "MappingsView": {"type": "object", "properties": {
            "account": s("Account name."), "public_key": s("A…"),
            "mappings": {"type": "array", "items": {"type": "object", "properties": {
                "from": s("Source subject."),
                "to": {"type": "array", "items": {"type": "object", "properties": {
                    "subject": s("Destination."), "weight": {"type": "integer"}, "cluster": s("Cluster, if only one.")
                }}},
                "unmapped": {"type": "integer", "description": "Percentage left on the source subject itself."}
            }}}
        }},
        "ExportOptions": {"type": "object", "required": ["subject", "type"], "additionalProperties": false, "properties": {
            "subject": subject("Exported subject"), "type": kind,
            "private": {"type": "boolean", "description": "Importers need an activation (token_req)."},
            "name": s("Label."),
            "response_type": {"type": "string", "enum": ["Singleton", "Stream", "Chunked"]},
            "response_threshold_ns": {"type": "integer", "format": "int64"},
            "latency": {"type": "object", "properties": {"sampling": {"oneOf": [{"type": "integer", "minimum": 1, "maximum": 100}, {"type": "string", "enum": ["headers"]}]}, "results": s("Subject the latency results go to.")}},
            "account_token_position": {"type": "integer", "description": "1-based token, a `*`, that must hold the importer's account key."},
            "description": s("Description."), "info_url": s("URL."),
            "advertise": {"type": "boolean"}, "allow_trace": {"type": "boolean"}
        }},
        "ExportEdit": {"type": "object", "additionalProperties": false, "description": "Each field given replaces the export's; at least one.", "properties": {
            "private": {"type": "boolean"}, "name": s("Empty clears it."),
            "response_type": {"type": "string", "enum": ["Singleton", "Stream", "Chunked"]},
            "response_threshold_ns": {"type": "integer", "description": "0 clears it."},
            "latency": {"type": "object"}, "no_latency": {"type": "boolean"},
            "account_token_position": {"type": "integer", "description": "0 clears it."},
            "description": s("Empty clears it."), "info_url": s("Empty clears it."),
            "advertise": {"type": "boolean"}, "allow_trace": {"type": "boolean"}
        }},
        "Export": {"type": "object", "description": "An export as the account JWT holds it (wire form)."},
        "Import": {"type": "object", "description": "An import as the account JWT holds it (wire form; the activation in `token`)."},
        "ExportView": {"type": "object", "properties": {
            "account": s("Exporting account."), "account_public_key": s("A…"),
            "export": schema_ref("Export"),
            "importers": {"type": "array", "items": {"type": "object", "properties": {
                "account": s("Name."), "public_key": s("A…"), "subject": s("Imported subject."), "activation": {"type": "boolean"}
            }}}
        }},
        "ExportList": {"type": "array", "items": schema_ref("ExportView")},
        "ExportChange": {"type": "object", "properties": {
            "account": s("Exporting account."), "account_public_key": s("A…"), "export": schema_ref("Export"),
            "importers_resigned": strings("Importing accounts re-signed and queued."),
            "imports_removed": strings("`ACCOUNT: subject` of imports removed."),
            "activations_issued": strings("Importers given an activation."),
            "activations_dropped": strings("Importers whose activation was dropped.")
        }},
        "ImportOptions": {"type": "object", "required": ["from", "subject"], "additionalProperties": false, "properties": {
            "from": s("The exporting Warden account (name or A… key)."),
            "subject": subject("The subject as exported"),
            "local_subject": subject("The importer's own subject ($1… for the `*` tokens)"),
            "type": kind, "name": s("Label."),
            "share": {"type": "boolean"}, "allow_trace": {"type": "boolean"}
        }},
        "ImportView": {"type": "object", "properties": {
            "account": s("Importing account."), "account_public_key": s("A…"),
            "from": {"type": ["string", "null"], "description": "The exporter's name when Warden manages it."},
            "import": schema_ref("Import"), "activation_expires_at": unix("The activation's expiry")
        }},
        "ImportList": {"type": "array", "items": schema_ref("ImportView")},
        "ActivationOptions": {"type": "object", "required": ["subject", "target"], "additionalProperties": false, "properties": {
            "subject": subject("The export's subject, or one it covers"),
            "target": s("The importing account: A… key, or a Warden account's name."),
            "expires_at": unix("Expiry")
        }},
        "ActivationView": {"type": "object", "properties": {
            "exporter": s("Exporting account."), "exporter_public_key": s("A…, the issuer."),
            "target": s("Importing account key."), "target_account": {"type": ["string", "null"]},
            "subject": s("Subject granted."), "kind": kind,
            "issued_at": {"type": "integer"}, "expires_at": unix("Expiry"),
            "jwt": s("The activation JWT (names one importer; not a credential).")
        }},
        "RevokeActivation": {"type": "object", "required": ["subject", "target"], "additionalProperties": false, "properties": {
            "subject": subject("The export's subject"),
            "target": s("The importing account: A… key, a Warden account's name, or `*` for all.")
        }},
        "RevocationView": {"type": "object", "properties": {
            "exporter": s("Exporting account."), "subject": s("Export subject."), "target": s("A… or *."),
            "target_account": {"type": ["string", "null"]},
            "revoked_at": {"type": "integer", "description": "Activations issued at or before this no longer work."},
            "importers_resigned": strings("Accounts re-signed and queued.")
        }}
    })
}

fn base_schemas() -> Value {
    let unix = |d: &str| json!({"type": "integer", "format": "int64", "description": format!("{d} (unix seconds).")});
    json!({
        "Error": {
            "type": "object", "required": ["error"],
            "properties": {"error": {
                "type": "object", "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "enum": [
                        "invalid", "invalid_json", "unsupported_media_type", "payload_too_large",
                        "unauthorized", "forbidden", "not_found", "no_route", "method_not_allowed",
                        "conflict", "not_initialised", "internal"
                    ]},
                    "message": {"type": "string"}
                }
            }}
        },
        "Health": {"type": "object", "properties": {"status": {"type": "string", "enum": ["ok"]}}},
        "Ready": {"type": "object", "properties": {
            "status": {"type": "string", "enum": ["ready", "unavailable"]},
            "reason": {"type": "string"}
        }},
        "OpenApiDocument": {"type": "object", "description": "An OpenAPI 3.1 document."},
        "Metrics": {"type": "string", "description": "Prometheus text exposition (version 0.0.4): `# HELP`, `# TYPE` and sample lines; counts and latencies only."},
        "OperatorView": {"type": "object", "properties": {
            "name": {"type": "string"},
            "public_key": {"type": "string", "description": "O…"},
            "jwt": {"type": "string"},
            "signing_key": {"type": "string", "description": "The operator signing key that issues account JWTs."},
            "system_account": {"type": "string", "description": "A…"}
        }},
        "Settings": {"type": "object", "properties": {
            "naming": {"type": "object", "description": "Case conventions of operator, account and user names."},
            "service_prefix": {"type": "string"}
        }},
        "StatusView": {"type": "object", "properties": {
            "database": {"type": "string", "description": "URL, password redacted."},
            "backend": {"type": "string", "enum": ["sqlite", "postgres"]},
            "operator": opt(schema_ref("OperatorView")),
            "settings": schema_ref("Settings"),
            "accounts": int(), "users": int(), "ledger_events": int(), "outbox_pending": int(),
            "migrations": strings("JWT migrations applied, in order.")
        }},
        "JetStreamLimitsSpec": {"type": "object", "description": "All zero (the default) disables JetStream; -1 is unlimited.", "properties": {
            "mem_storage": int(), "disk_storage": int(), "streams": int(), "consumer": int(),
            "max_ack_pending": int(), "mem_max_stream_bytes": int(), "disk_max_stream_bytes": int(),
            "max_bytes_required": {"type": "boolean"}
        }},
        "AccountLimitsSpec": {"type": "object", "description": "Missing numbers mean unlimited (-1).", "properties": {
            "conn": int(), "leaf": int(), "subs": int(), "payload": int(), "data": int(),
            "imports": int(), "exports": int(),
            "wildcards": {"type": "boolean", "default": true},
            "disallow_bearer": {"type": "boolean"},
            "jetstream": schema_ref("JetStreamLimitsSpec")
        }},
        "Permissions": {"type": "object", "description": "NATS permissions, wire names: pub/sub {allow, deny} subject lists and resp {max, ttl}.", "properties": {
            "pub": {"type": "object", "properties": {"allow": strings("Subjects."), "deny": strings("Subjects.")}},
            "sub": {"type": "object", "properties": {"allow": strings("Subjects."), "deny": strings("Subjects.")}},
            "resp": opt(json!({"type": "object", "properties": {"max": int(), "ttl": int()}}))
        }},
        "AccountSpec": {"type": "object", "description": "Everything Warden decides about an account; every field optional.", "properties": {
            "limits": schema_ref("AccountLimitsSpec"),
            "exports": {"type": "array", "items": {"type": "object"}, "description": "NATS exports (wire form)."},
            "imports": {"type": "array", "items": {"type": "object"}, "description": "NATS imports (wire form)."},
            "default_permissions": schema_ref("Permissions"),
            "revocations": {"type": "object", "additionalProperties": int(), "description": "User key (or *) → revoked-at."},
            "signing_keys": {"type": "array", "items": {}, "description": "Account signing keys, plain or scoped."},
            "description": {"type": "string"},
            "tags": strings("Tags."),
            "expires_at": unix("Expiry of the account JWT")
        }},
        "UserSpec": {"type": "object", "description": "Everything Warden decides about a user; every field optional (missing numbers: unlimited).", "properties": {
            "permissions": schema_ref("Permissions"),
            "subs": int(), "data": int(), "payload": int(),
            "src": strings("Allowed source networks (CIDR or IP); empty: anywhere."),
            "times": {"type": "array", "items": {"type": "object", "properties": {"start": {"type": "string"}, "end": {"type": "string"}}}},
            "times_location": {"type": "string"},
            "bearer_token": {"type": "boolean"},
            "allowed_connection_types": strings("STANDARD, WEBSOCKET, LEAFNODE, LEAFNODE_WS, MQTT, MQTT_WS; empty: all."),
            "expires_at": unix("Expiry of the user JWT"),
            "tags": strings("Tags.")
        }},
        "AccountView": {"type": "object", "properties": {
            "name": {"type": "string"}, "public_key": {"type": "string"}, "jwt": {"type": "string"},
            "spec": schema_ref("AccountSpec"), "users": int(), "system": {"type": "boolean"},
            "created_at": unix("Created"), "updated_at": unix("Last changed")
        }},
        "AccountList": {"type": "array", "items": schema_ref("AccountView")},
        "UserView": {"type": "object", "properties": {
            "name": {"type": "string"}, "account": {"type": "string"}, "public_key": {"type": "string"},
            "jwt": {"type": ["string", "null"], "description": "The user JWT; null when withheld (see jwt_withheld)."},
            "jwt_withheld": {"type": "boolean", "description": "true when the JWT is withheld: the user is a bearer user (its JWT alone lets its holder connect) and the token lacks the `creds` scope. Other users' JWTs are always shown."},
            "spec": schema_ref("UserSpec"),
            "revoked_at": opt(unix("Revoked")),
            "created_at": unix("Created"), "updated_at": unix("Last changed")
        }},
        "UserList": {"type": "array", "items": schema_ref("UserView")},
        "CreateAccount": {"type": "object", "required": ["name"], "additionalProperties": false, "properties": {
            "name": {"type": "string", "description": "Account name (naming policy applies)."},
            "spec": schema_ref("AccountSpec")
        }},
        "AccountLimitsEdit": {"type": "object", "additionalProperties": false, "description": "Absent fields stay as they are.", "properties": {
            "conns": limit("Client connections."), "subscriptions": limit("Subscriptions."),
            "payload": limit("Max payload."), "data": limit("Data."), "leaf_conns": limit("Leaf node connections."),
            "imports": limit("Imports."), "exports": limit("Exports."),
            "wildcard_exports": {"type": "boolean"}, "disallow_bearer": {"type": "boolean"},
            "js_mem_storage": limit("JetStream memory bytes."), "js_disk_storage": limit("JetStream disk bytes."),
            "js_streams": limit("JetStream streams."), "js_consumer": limit("JetStream consumers."),
            "js_max_ack_pending": limit("JetStream max ack pending.")
        }},
        "EditAccount": {"type": "object", "additionalProperties": false, "description": "`warden account edit`: at least one change; absent fields stay.", "properties": {
            "limits": schema_ref("AccountLimitsEdit"),
            "js_mem_max_stream_bytes": opt(limit("Max bytes of one memory stream.")),
            "js_disk_max_stream_bytes": opt(limit("Max bytes of one file stream.")),
            "js_max_bytes_required": opt(json!({"type": "boolean"})),
            "js_tier": opt(json!({"type": "string", "description": "R1…R5: the JetStream limit changes apply to this tier."})),
            "remove_js_tiers": strings("Tiers removed (before the changes)."),
            "js_disable": {"type": "boolean", "description": "Every JetStream limit, flat and tiered, cleared first."},
            "default_permissions": schema_ref("PermissionsEdit"),
            "add_tags": strings("Tags added."),
            "remove_tags": strings("Tags removed (before the additions)."),
            "info_url": opt(json!({"type": "string", "description": "Empty clears it."})),
            "description": opt(json!({"type": "string", "description": "Empty clears it."}))
        }},
        "CreateUser": {"type": "object", "required": ["name"], "additionalProperties": false, "properties": {
            "name": {"type": "string", "description": "User name (naming policy applies)."},
            "spec": schema_ref("UserSpec"),
            "role": {"type": "string", "description": "Issue the user with this role's scoped key (`warden user add --role`): spec may then hold only tags, and the answer is a RoleUserAdded."}
        }},
        "PermissionsEdit": {"type": "object", "additionalProperties": false, "properties": {
            "allow_pub": strings("Subjects added to publish allow."),
            "allow_sub": strings("Subjects added to subscribe allow."),
            "deny_pub": strings("Subjects added to publish deny."),
            "deny_sub": strings("Subjects added to subscribe deny."),
            "remove": strings("Subjects removed from every list."),
            "allow_pub_response": opt(limit("Allow publishing responses: max messages.")),
            "response_ttl_ns": opt(limit("Response permission TTL, nanoseconds.")),
            "remove_response": {"type": "boolean"}
        }},
        "UserEdit": {"type": "object", "additionalProperties": false, "description": "Every field optional; at least one change.", "properties": {
            "permissions": schema_ref("PermissionsEdit"),
            "bearer": opt(json!({"type": "boolean"})),
            "add_conn_types": strings("Connection types added."),
            "remove_conn_types": strings("Connection types removed."),
            "add_source_networks": strings("CIDRs added."),
            "remove_source_networks": strings("CIDRs removed."),
            "expiry": opt(unix("New expiry; null clears it")),
            "subs": opt(int()), "data": opt(int()), "payload": opt(int()),
            "add_tags": strings("Tags added."),
            "remove_tags": strings("Tags removed (before the additions).")
        }},
        "Creds": {"type": "object", "properties": {"creds": {"type": "string", "description": "A NATS creds file: the user JWT and its NKey seed."}}},
        "LedgerEvent": {"type": "object", "properties": {
            "seq": int(), "at": unix("Appended"), "actor": {"type": "string"}, "action": {"type": "string"},
            "object_kind": {"type": "string"}, "object_key": {"type": "string"},
            "summary": {"type": "object"}, "prev_hash": {"type": "string"}, "hash": {"type": "string"}
        }},
        "LedgerPage": {"type": "array", "items": schema_ref("LedgerEvent")},
        "LedgerReport": {"type": "object", "properties": {
            "events": int(),
            "first_break": opt(json!({"type": "object", "properties": {"seq": int(), "problem": {"type": "string"}}}))
        }}
    })
}

/// The OpenAPI 3.1 document of the API.
pub fn document() -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let entry = paths
            .entry(r.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[r.method.to_ascii_lowercase()] = operation(r);
    }
    for r in CHAT_ROUTES {
        let entry = paths
            .entry(r.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[r.method.to_ascii_lowercase()] = chat_operation(r);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Warden HTTP API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Identity and access control plane for NATS. Everything under /v1 needs `Authorization: Bearer wdn_…` (create one with `warden token create --name NAME --scope read,write`); each operation names its scope in `x-warden-scope` (read: GETs, write: mutations, creds: anything that lets its holder connect to NATS — creds files, onboarding packages, a bearer user's JWT, a key registered for a directory user; admin: everything). A bearer user's JWT is withheld from a token without creds: `\"jwt\": null, \"jwt_withheld\": true`. Errors are JSON: {\"error\": {\"code\", \"message\"}}."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "wdn_<52 base32 characters>", "description": "An API token (warden token create). A token bound to a directory user (--dir-user) acts as that user only and opens only /v1/dir… and /v1/proposals…; elsewhere it gets 403 forbidden."},
                "chatToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "Rooms gateway (/rooms…, /chat): an HS256 token of the upstream user service with aud, iss, exp, userUUID, entityUUID, levelOnEntity."}},
            "schemas": schemas()
        }
    })
}
