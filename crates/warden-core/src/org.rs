//! Organisation model: an organisation described once (its units and its people) and
//! compiled into the accounts and users NATS enforces.
//!
//! * [`OrgSpec`] is the declarative file (YAML or JSON; parsing happens at the edge).
//! * [`compile`] validates it under a [`NamingPolicy`] — reporting EVERY problem at once,
//!   each with a path such as `people[3].units[0]` — and yields the [`DesiredOrg`]: one
//!   account per unit, one user per active or inactive person with the `Service` role.
//! * [`plan`] compares the desired organisation with what the store holds
//!   ([`CurrentOrg`], plain data) and returns the ordered [`PlanStep`]s that make them
//!   equal. Applying a plan and planning again gives an empty plan.
//!
//! Nothing here does I/O; the `warden` crate reads files, opens the store and executes
//! the steps in one transaction.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use nats_jwt::{
    Export, ExportType, Permission, Permissions, ResponsePermission, ResponseType, Subject,
    UserPermissionLimits,
};
use serde::{Deserialize, Serialize};

use crate::names::{AccountName, NamingPolicy, SYSTEM_ACCOUNT, UserName};
use crate::parse::parse_size;
use crate::spec::UserSpec;

/// Default max payload of a service user: 1 MiB.
pub const DEFAULT_MAX_PAYLOAD: i64 = 1 << 20;

// ---------------------------------------------------------------------------------------
// The spec (what people write)
// ---------------------------------------------------------------------------------------

/// An organisation: units, people and the permission template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgSpec {
    /// The organisation itself.
    pub organization: Organization,
    /// Divisions, departments, teams, services…; each becomes an account.
    #[serde(default)]
    pub units: Vec<UnitSpec>,
    /// People; those with the `Service` role become users.
    #[serde(default)]
    pub people: Vec<PersonSpec>,
    /// The permission template applied to every service user.
    #[serde(default, alias = "defaults", alias = "templates")]
    pub template: PermissionTemplate,
}

/// The organisation's identity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Organization {
    /// Display name, e.g. `thecowboyai`.
    pub name: String,
    /// Stable identifier (a UUID in most directories); free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The `{org}` token of subjects; default: the name in lower case, spaces and dots
    /// replaced by `-`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_token: Option<String>,
}

impl Organization {
    /// The `{org}` subject token (given, or derived from the name).
    pub fn token(&self) -> String {
        match &self.subject_token {
            Some(t) => t.trim().to_string(),
            None => self
                .name
                .trim()
                .to_lowercase()
                .chars()
                .map(|c| {
                    if c.is_whitespace() || c == '.' {
                        '-'
                    } else {
                        c
                    }
                })
                .collect(),
        }
    }
}

/// What kind of unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnitType {
    /// A division.
    Division,
    /// A department.
    Department,
    /// A team (the default).
    #[default]
    Team,
    /// A group of services.
    Service,
    /// A project.
    Project,
    /// Anything else.
    Other,
}

impl UnitType {
    /// Lower-case name, as written in spec files.
    pub fn as_str(self) -> &'static str {
        match self {
            UnitType::Division => "division",
            UnitType::Department => "department",
            UnitType::Team => "team",
            UnitType::Service => "service",
            UnitType::Project => "project",
            UnitType::Other => "other",
        }
    }
}

/// An organisational unit: becomes one account.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitSpec {
    /// Stable identifier, unique in the spec (people refer to it).
    pub id: String,
    /// Display name; the account name derives from it.
    pub name: String,
    /// Kind of unit.
    #[serde(default, rename = "type")]
    pub unit_type: UnitType,
    /// Id of the parent unit, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Account name, overriding the one derived from `name` by the naming policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Subjects the unit offers other units (the account's exports).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exports: Vec<UnitExport>,
    /// Exports of other units the unit takes (the account's imports).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub imports: Vec<UnitImport>,
    /// Signing-key roles: each becomes a scoped signing key of the account whose
    /// template gives the permissions of every user issued with that role.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<UnitRole>,
}

/// Stream or service, as spec files write it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShareType {
    /// Request/reply: the importer sends requests, the exporter answers.
    #[default]
    Service,
    /// Messages published in the exporter flow to the importer.
    Stream,
}

impl ShareType {
    fn jwt(self) -> ExportType {
        match self {
            ShareType::Service => ExportType::Service,
            ShareType::Stream => ExportType::Stream,
        }
    }
}

/// How a service answers, as spec files write it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResponseKind {
    /// One response per request (the server's default).
    Singleton,
    /// Any number of responses.
    Stream,
    /// One response in chunks.
    Chunked,
}

impl ResponseKind {
    fn jwt(self) -> ResponseType {
        match self {
            ResponseKind::Singleton => ResponseType::Singleton,
            ResponseKind::Stream => ResponseType::Stream,
            ResponseKind::Chunked => ResponseType::Chunked,
        }
    }
}

/// A subject a unit offers. Private unless `public`: then only the units that import
/// it get it, each through an activation token Warden issues when it applies the spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitExport {
    /// Name, unique in the unit; imports refer to it.
    pub name: String,
    /// Subject (placeholders `{org}`, `{unit}`).
    pub subject: String,
    /// `service` (the default) or `stream`.
    #[serde(default, rename = "type")]
    pub export_type: ShareType,
    /// Anyone may import it without a token.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub public: bool,
    /// Services: `singleton` (default), `stream` or `chunked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_type: Option<ResponseKind>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// An export of another unit that this unit takes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitImport {
    /// The exporting unit: its id, or its name.
    pub unit: String,
    /// The export's name in that unit.
    pub export: String,
    /// Where the subject appears in this unit (placeholders `{org}`, `{unit}`);
    /// default: the exported subject itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_subject: Option<String>,
}

/// A signing-key role of a unit: the permissions of every user issued with it. Subjects
/// take the placeholders `{org}` and `{unit}` (filled in when the spec is applied) and
/// nats-server's templates `{{name()}}`, `{{tag(KEY)}}` … (filled in by the server when
/// the user connects).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitRole {
    /// Role name, unique in the unit; people name it with `role:`.
    pub name: String,
    /// Publish allow list.
    #[serde(default)]
    pub publish: Vec<String>,
    /// Subscribe allow list.
    #[serde(default)]
    pub subscribe: Vec<String>,
    /// Whether users may publish replies to requests they received.
    #[serde(default)]
    pub allow_responses: bool,
    /// Max message payload (default unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_payload: Option<Size>,
}

/// A role a person holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Role {
    /// An executive.
    Executive,
    /// An administrator.
    Administrator,
    /// A manager.
    Manager,
    /// A developer.
    Developer,
    /// An operator (of systems, not the NATS operator).
    Operator,
    /// An auditor.
    Auditor,
    /// A service: becomes a NATS user.
    Service,
    /// A plain member.
    Member,
}

impl Role {
    const ALL: [Role; 8] = [
        Role::Executive,
        Role::Administrator,
        Role::Manager,
        Role::Developer,
        Role::Operator,
        Role::Auditor,
        Role::Service,
        Role::Member,
    ];

    fn name(self) -> &'static str {
        match self {
            Role::Executive => "Executive",
            Role::Administrator => "Administrator",
            Role::Manager => "Manager",
            Role::Developer => "Developer",
            Role::Operator => "Operator",
            Role::Auditor => "Auditor",
            Role::Service => "Service",
            Role::Member => "Member",
        }
    }
}

impl<'de> Deserialize<'de> for Role {
    /// Case-insensitive, so `Service`, `service` and `SERVICE` are the same role.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Role::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                let known: Vec<&str> = Role::ALL.iter().map(|r| r.name()).collect();
                serde::de::Error::custom(format!(
                    "unknown role {s:?}: expected one of {}",
                    known.join(", ")
                ))
            })
    }
}

/// A person of the organisation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonSpec {
    /// Stable identifier, unique in the spec.
    pub id: String,
    /// Name; the user name derives from it by the naming policy.
    pub name: String,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Roles; `Service` makes the person a NATS user.
    #[serde(default)]
    pub roles: Vec<Role>,
    /// Unit ids; a service user lives in the account of the first.
    #[serde(default)]
    pub units: Vec<String>,
    /// An inactive person's user is revoked.
    #[serde(default = "yes")]
    pub active: bool,
    /// The subject domain the person owns (`{domain}` of the template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Further domains it listens to (`{related}` of the template).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related_domains: Vec<String>,
    /// User name, overriding the one derived from `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Changes to the template's permissions for this person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<PermissionsOverride>,
    /// A signing-key role of the person's (first) unit: the person becomes a user
    /// issued by that role's key, with the role's permissions instead of the template's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

fn yes() -> bool {
    true
}

/// Allow and deny lists of subjects (placeholders allowed: `{org}`, `{domain}`, `{unit}`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectLists {
    /// Replaces the template's allow list when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<Vec<String>>,
    /// Added to the deny list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

/// A size: a number of bytes or text such as `1M` or `512KiB`; `-1` is unlimited.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Size {
    /// Bytes.
    Bytes(i64),
    /// Text parsed by [`parse_size`].
    Text(String),
}

impl Size {
    fn bytes(&self) -> Result<i64, String> {
        match self {
            Size::Bytes(n) if *n >= -1 => Ok(*n),
            Size::Bytes(n) => Err(format!("invalid size {n}: use a number >= 0, or -1")),
            Size::Text(t) => parse_size(t).map_err(|e| e.to_string()),
        }
    }
}

/// A person's changes to the template.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionsOverride {
    /// Publish lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<SubjectLists>,
    /// Subscribe lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<SubjectLists>,
    /// Whether the user may publish replies to requests it received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_responses: Option<bool>,
    /// Max message payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_payload: Option<Size>,
}

/// What every service user gets unless its person overrides it. Placeholders:
/// `{org}` (the organisation's subject token), `{domain}` (the person's domain),
/// `{related}` (each related domain, in `subscribe_related`), `{unit}` (the id of the
/// person's unit).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PermissionTemplate {
    /// Publish allow list.
    pub publish: Vec<String>,
    /// Subscribe allow list.
    pub subscribe: Vec<String>,
    /// Added to the subscribe allow list once per related domain.
    pub subscribe_related: Vec<String>,
    /// Whether users may publish replies to requests they received.
    pub allow_responses: bool,
    /// Max message payload.
    pub max_payload: Size,
}

impl Default for PermissionTemplate {
    fn default() -> Self {
        PermissionTemplate {
            publish: vec!["{org}.org.{domain}.>".into()],
            subscribe: vec!["{org}.org.{domain}.>".into()],
            subscribe_related: vec!["{org}.org.{related}.>".into()],
            allow_responses: true,
            max_payload: Size::Bytes(DEFAULT_MAX_PAYLOAD),
        }
    }
}

impl PermissionTemplate {
    fn uses_domain(&self) -> bool {
        self.publish
            .iter()
            .chain(&self.subscribe)
            .any(|s| s.contains("{domain}"))
    }
}

// ---------------------------------------------------------------------------------------
// Validation problems
// ---------------------------------------------------------------------------------------

/// One thing wrong with a spec, where it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Where: `units[2].parent`, `people[3].units[0]`, …
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// A spec that cannot be applied, with every problem found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} in the organisation spec: {}", count(.problems.len()), join(.problems))]
pub struct OrgError {
    /// Every problem, in the order of the spec.
    pub problems: Vec<Problem>,
}

fn count(n: usize) -> String {
    if n == 1 {
        "1 problem".into()
    } else {
        format!("{n} problems")
    }
}

fn join(problems: &[Problem]) -> String {
    let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    list.join("; ")
}

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }
}

// ---------------------------------------------------------------------------------------
// The desired state
// ---------------------------------------------------------------------------------------

/// The account a unit becomes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DesiredAccount {
    /// Unit id.
    pub unit_id: String,
    /// Account name.
    pub name: AccountName,
    /// Account description.
    pub description: String,
    /// The unit's shares: exports, imports and roles.
    pub shares: Shares,
}

/// The parts of an account the organisation manages besides its name and description:
/// its exports, its imports and its scoped signing keys (roles). Limits, mappings and
/// plain signing keys stay with `warden account edit` and the other account commands.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Shares {
    /// Exports, sorted by subject.
    pub exports: Vec<Export>,
    /// Imports, sorted.
    pub imports: Vec<ShareImport>,
    /// Roles, sorted by name.
    pub roles: Vec<ShareRole>,
}

impl Shares {
    /// Whether there is nothing to share.
    pub fn is_empty(&self) -> bool {
        self.exports.is_empty() && self.imports.is_empty() && self.roles.is_empty()
    }

    /// What differs from `other`, for people: `exports, imports`.
    pub fn describe_change(&self, other: &Shares) -> String {
        let mut parts = Vec::new();
        if self.exports != other.exports {
            parts.push("exports");
        }
        if self.imports != other.imports {
            parts.push("imports");
        }
        if self.roles != other.roles {
            parts.push("roles");
        }
        parts.join(", ")
    }
}

/// An import of an account the organisation manages.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ShareImport {
    /// The exporting unit (empty when the import's account is bound to no unit).
    pub unit_id: String,
    /// Name (the export's).
    pub name: String,
    /// The exported subject.
    pub subject: Subject,
    /// Where it appears in the importer.
    pub local_subject: Option<Subject>,
    /// `service` or `stream`.
    pub service: bool,
    /// Whether it needs an activation token (the export is private).
    pub private: bool,
}

/// A signing-key role of an account the organisation manages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShareRole {
    /// Role name.
    pub name: String,
    /// Template of the users it issues.
    pub template: UserPermissionLimits,
}

/// The user a service person becomes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DesiredUser {
    /// Person id.
    pub person_id: String,
    /// Unit id of the account it lives in.
    pub unit_id: String,
    /// That account.
    pub account: AccountName,
    /// User name.
    pub name: UserName,
    /// Permissions and limits.
    pub spec: UserSpec,
    /// An inactive person's user is revoked (or never created).
    pub active: bool,
    /// The signing-key role that issues it (its spec is then empty: the role's template
    /// applies).
    pub role: Option<String>,
}

/// The spec of a user issued by a role (scoped signing key): nothing of its own, as
/// nats-server requires — the role's template gives its permissions and limits.
pub fn role_user_spec() -> UserSpec {
    UserSpec {
        subs: 0,
        data: 0,
        payload: 0,
        ..UserSpec::default()
    }
}

/// What the spec asks for.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DesiredOrg {
    /// The organisation's `{org}` subject token.
    pub subject_token: String,
    /// One account per unit, in spec order.
    pub accounts: Vec<DesiredAccount>,
    /// One user per service person, in spec order.
    pub users: Vec<DesiredUser>,
}

fn is_subject_token(t: &str) -> bool {
    !t.is_empty()
        && t.chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && !matches!(c, '.' | '*' | '>'))
}

fn is_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && e.chars().all(|c| c.is_ascii_graphic())
}

const PLACEHOLDERS: [&str; 4] = ["{org}", "{domain}", "{related}", "{unit}"];

/// Substitutes placeholders and validates the subject; `related` only where allowed.
fn render(template: &str, vars: &[(&str, &str)]) -> Result<Subject, String> {
    let mut out = template.to_string();
    for (k, v) in vars {
        out = out.replace(k, v);
    }
    if let Some(p) = PLACEHOLDERS.iter().find(|p| out.contains(**p)) {
        return Err(format!(
            "{template:?}: placeholder {p} is not available here"
        ));
    }
    if out.contains('{') || out.contains('}') {
        return Err(format!(
            "{template:?}: unknown placeholder (use {{org}}, {{domain}}, {{related}}, {{unit}})"
        ));
    }
    Subject::new(&out).map_err(|e| format!("invalid subject {out:?}: {e}"))
}

fn push_unique(list: &mut Vec<Subject>, s: Subject) {
    if !list.contains(&s) {
        list.push(s);
    }
}

/// Validates `spec` under `policy` and compiles it. Every problem is reported, none
/// stops the others from being found.
pub fn compile(spec: &OrgSpec, policy: &NamingPolicy) -> Result<DesiredOrg, OrgError> {
    let mut p = Problems::default();
    let org = &spec.organization;
    if org.name.trim().is_empty() {
        p.add("organization.name", "is empty");
    }
    let token = org.token();
    if !is_subject_token(&token) {
        p.add(
            if org.subject_token.is_some() {
                "organization.subject_token"
            } else {
                "organization.name"
            },
            format!(
                "{token:?} is not a valid subject token (no spaces, '.', '*' or '>'); set organization.subject_token"
            ),
        );
    }

    // Template: checked once with sample values, so a broken template is one problem,
    // not one per person.
    let t = &spec.template;
    for (field, list, vars) in [
        (
            "template.publish",
            &t.publish,
            &["{org}", "{domain}", "{unit}"][..],
        ),
        (
            "template.subscribe",
            &t.subscribe,
            &["{org}", "{domain}", "{unit}"][..],
        ),
        (
            "template.subscribe_related",
            &t.subscribe_related,
            &["{org}", "{domain}", "{unit}", "{related}"][..],
        ),
    ] {
        for (i, s) in list.iter().enumerate() {
            let sample: Vec<(&str, &str)> = vars.iter().map(|v| (*v, "x")).collect();
            if let Err(e) = render(s, &sample) {
                p.add(format!("{field}[{i}]"), e);
            }
        }
    }
    let template_payload = match t.max_payload.bytes() {
        Ok(n) => n,
        Err(e) => {
            p.add("template.max_payload", e);
            DEFAULT_MAX_PAYLOAD
        }
    };

    // Units.
    let mut unit_index: BTreeMap<&str, usize> = BTreeMap::new();
    let mut unit_names: BTreeMap<String, usize> = BTreeMap::new();
    let mut account_names: BTreeMap<String, usize> = BTreeMap::new();
    let mut accounts: Vec<Option<AccountName>> = Vec::new();
    for (i, u) in spec.units.iter().enumerate() {
        let id = u.id.trim();
        if id.is_empty() {
            p.add(format!("units[{i}].id"), "is empty");
        } else if let Some(first) = unit_index.insert(id, i) {
            unit_index.insert(id, first);
            p.add(
                format!("units[{i}].id"),
                format!("duplicate unit id {id:?} (also units[{first}])"),
            );
        }
        let name = u.name.trim();
        if name.is_empty() {
            p.add(format!("units[{i}].name"), "is empty");
        } else if let Some(first) = unit_names.get(&name.to_lowercase()) {
            p.add(
                format!("units[{i}].name"),
                format!("duplicate unit name {name:?} (also units[{first}])"),
            );
        } else {
            unit_names.insert(name.to_lowercase(), i);
        }
        let (field, raw) = match &u.account {
            Some(a) => (format!("units[{i}].account"), a.clone()),
            None => (format!("units[{i}].name"), policy.account.suggest(name)),
        };
        let account = match policy.account(&raw) {
            Ok(a) if a.as_str() == SYSTEM_ACCOUNT => {
                p.add(
                    field,
                    format!("account name {SYSTEM_ACCOUNT} is the system account's"),
                );
                None
            }
            Ok(a) => {
                if let Some(first) = account_names.get(a.as_str()) {
                    p.add(
                        field,
                        format!("account name {a} is also the account of units[{first}]"),
                    );
                } else {
                    account_names.insert(a.to_string(), i);
                }
                Some(a)
            }
            Err(e) => {
                p.add(field, format!("cannot become an account name: {e}"));
                None
            }
        };
        accounts.push(account);
    }
    for (i, u) in spec.units.iter().enumerate() {
        if let Some(parent) = &u.parent {
            if !unit_index.contains_key(parent.trim()) {
                p.add(
                    format!("units[{i}].parent"),
                    format!("unknown unit {parent:?}"),
                );
            } else if parent.trim() == u.id.trim() {
                p.add(
                    format!("units[{i}].parent"),
                    "a unit cannot be its own parent",
                );
            } else if let Some(cycle) = parent_cycle(spec, &unit_index, i) {
                p.add(
                    format!("units[{i}].parent"),
                    format!("parent cycle: {}", cycle.join(" -> ")),
                );
            }
        }
    }

    let shares = unit_shares(spec, &token, &unit_index, &mut p);

    // People.
    let mut person_ids: BTreeMap<&str, usize> = BTreeMap::new();
    let mut emails: BTreeMap<String, usize> = BTreeMap::new();
    let mut user_names: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut users = Vec::new();
    for (i, person) in spec.people.iter().enumerate() {
        let at = |f: &str| format!("people[{i}].{f}");
        let id = person.id.trim();
        if id.is_empty() {
            p.add(at("id"), "is empty");
        } else if let Some(first) = person_ids.get(id) {
            p.add(
                at("id"),
                format!("duplicate person id {id:?} (also people[{first}])"),
            );
        } else {
            person_ids.insert(id, i);
        }
        if person.name.trim().is_empty() {
            p.add(at("name"), "is empty");
        }
        if let Some(email) = &person.email {
            if !is_email(email.trim()) {
                p.add(at("email"), format!("invalid e-mail address {email:?}"));
            } else if let Some(first) = emails.get(&email.trim().to_lowercase()) {
                p.add(
                    at("email"),
                    format!("duplicate e-mail {email:?} (also people[{first}])"),
                );
            } else {
                emails.insert(email.trim().to_lowercase(), i);
            }
        }
        for (j, unit) in person.units.iter().enumerate() {
            if !unit_index.contains_key(unit.trim()) {
                p.add(
                    format!("people[{i}].units[{j}]"),
                    format!("unknown unit {unit:?}"),
                );
            }
        }
        if let Some(d) = &person.domain
            && !is_subject_token(d.trim())
        {
            p.add(at("domain"), format!("{d:?} is not a valid subject token"));
        }
        for (j, d) in person.related_domains.iter().enumerate() {
            if !is_subject_token(d.trim()) {
                p.add(
                    format!("people[{i}].related_domains[{j}]"),
                    format!("{d:?} is not a valid subject token"),
                );
            }
        }
        if !person.roles.contains(&Role::Service) && person.role.is_none() {
            continue;
        }
        // A service person: becomes a user.
        let Some(first_unit) = person.units.first() else {
            p.add(at("units"), "a Service person needs a unit (its account)");
            continue;
        };
        let unit_id = first_unit.trim();
        let account = unit_index
            .get(unit_id)
            .and_then(|&u| accounts.get(u).cloned().flatten());
        let (field, raw) = match &person.user {
            Some(u) => (at("user"), u.clone()),
            None => (at("name"), policy.user.suggest(person.name.trim())),
        };
        let name = match policy.user(&raw) {
            Ok(n) => Some(n),
            Err(e) => {
                p.add(field.clone(), format!("cannot become a user name: {e}"));
                None
            }
        };
        if let (Some(a), Some(n)) = (&account, &name) {
            let key = (a.to_string(), n.to_string());
            if let Some(first) = user_names.get(&key) {
                p.add(
                    field,
                    format!("user name {n} in account {a} is also people[{first}]'s"),
                );
            } else {
                user_names.insert(key, i);
            }
        }
        let role = person.role.as_deref().map(str::trim);
        if let Some(role) = role {
            // Issued by the role's key: the role's template is its permissions.
            let known = unit_index
                .get(unit_id)
                .and_then(|&u| shares.get(u))
                .is_some_and(|s| s.roles.iter().any(|r| r.name == role));
            if !known {
                p.add(
                    at("role"),
                    format!(
                        "unit {unit_id:?} has no role {role:?} (declare it in the unit's roles)"
                    ),
                );
            }
            if person.permissions.is_some() {
                p.add(
                    at("permissions"),
                    "a person with a role has the role's permissions; remove permissions or role",
                );
            }
            if let (Some(account), Some(name)) = (account, name) {
                users.push(DesiredUser {
                    person_id: id.to_string(),
                    unit_id: unit_id.to_string(),
                    account,
                    name,
                    spec: role_user_spec(),
                    active: person.active,
                    role: Some(role.to_string()),
                });
            }
            continue;
        }
        let domain = person.domain.as_deref().map(str::trim);
        if domain.is_none() && t.uses_domain() {
            p.add(
                at("domain"),
                "a Service person needs a domain (the permission template uses {domain})",
            );
        }
        let spec = match user_spec(
            &token,
            domain.unwrap_or(""),
            unit_id,
            &person.related_domains,
            t,
            template_payload,
            person.permissions.as_ref(),
        ) {
            Ok(s) => Some(s),
            Err(errs) => {
                for (f, e) in errs {
                    p.add(format!("people[{i}].{f}"), e);
                }
                None
            }
        };
        if let (Some(account), Some(name), Some(spec)) = (account, name, spec) {
            users.push(DesiredUser {
                person_id: id.to_string(),
                unit_id: unit_id.to_string(),
                account,
                name,
                spec,
                active: person.active,
                role: None,
            });
        }
    }

    if !p.0.is_empty() {
        return Err(OrgError { problems: p.0 });
    }
    let accounts = spec
        .units
        .iter()
        .zip(accounts)
        .zip(shares)
        .filter_map(|((u, a), shares)| {
            Some(DesiredAccount {
                shares,
                unit_id: u.id.trim().to_string(),
                name: a?,
                description: format!(
                    "{} {} of organisation {}",
                    u.unit_type.as_str(),
                    u.name.trim(),
                    org.name.trim()
                ),
            })
        })
        .collect();
    Ok(DesiredOrg {
        subject_token: token,
        accounts,
        users,
    })
}

/// Substitutes `{org}`/`{unit}` in a role's subject and checks it, leaving nats-server's
/// `{{…}}` templates for the server (checked as if each were one plain token).
fn render_role(template: &str, vars: &[(&str, &str)]) -> Result<Subject, String> {
    let mut out = template.to_string();
    for (k, v) in vars {
        out = out.replace(k, v);
    }
    let mut check = String::new();
    let mut rest = out.as_str();
    while let Some(start) = rest.find("{{") {
        check.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            return Err(format!("{template:?}: a {{{{ without its }}}}"));
        };
        check.push('x');
        rest = &rest[start + end + 2..];
    }
    check.push_str(rest);
    if check.contains('{') || check.contains('}') {
        return Err(format!(
            "{template:?}: unknown placeholder (use {{org}}, {{unit}} or a server template such as {{{{name()}}}})"
        ));
    }
    Subject::new(&check).map_err(|e| format!("invalid subject {out:?}: {e}"))?;
    Subject::new(&out).map_err(|e| format!("invalid subject {out:?}: {e}"))
}

/// The shares of every unit, in spec order (problems reported on their paths).
fn unit_shares(
    spec: &OrgSpec,
    org: &str,
    unit_index: &BTreeMap<&str, usize>,
    p: &mut Problems,
) -> Vec<Shares> {
    // Exports first: imports refer to them.
    let mut out: Vec<Shares> = Vec::new();
    // Exports already reported as broken: an import of one is not reported again.
    let mut broken: BTreeSet<(usize, String)> = BTreeSet::new();
    for (i, u) in spec.units.iter().enumerate() {
        let vars = [("{org}", org), ("{unit}", u.id.trim())];
        let mut shares = Shares::default();
        let mut names = BTreeMap::new();
        let mut subjects: BTreeMap<String, usize> = BTreeMap::new();
        for (j, e) in u.exports.iter().enumerate() {
            let at = format!("units[{i}].exports[{j}]");
            let name = e.name.trim();
            if name.is_empty() {
                p.add(format!("{at}.name"), "is empty");
            } else if let Some(first) = names.get(name) {
                p.add(
                    format!("{at}.name"),
                    format!("duplicate export name {name:?} (also exports[{first}])"),
                );
            }
            let subject = match render(&e.subject, &vars) {
                Ok(s) => s,
                Err(err) => {
                    p.add(format!("{at}.subject"), err);
                    broken.insert((i, name.to_string()));
                    continue;
                }
            };
            if let Some(first) = subjects.insert(subject.to_string(), j) {
                p.add(
                    format!("{at}.subject"),
                    format!("{subject} is also exported by exports[{first}]"),
                );
            }
            if e.response_type.is_some() && e.export_type == ShareType::Stream {
                p.add(
                    format!("{at}.response_type"),
                    "only a service has a response type",
                );
            }
            names.insert(name.to_string(), j);
            let mut x = Export::new(subject, e.export_type.jwt());
            x.name = Some(name.to_string());
            x.token_req = !e.public;
            x.response_type = e.response_type.map(ResponseKind::jwt);
            x.description = e
                .description
                .as_deref()
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(String::from);
            shares.exports.push(x);
        }
        shares
            .exports
            .sort_by(|a, b| a.subject.as_str().cmp(b.subject.as_str()));
        let mut roles = BTreeMap::new();
        for (j, r) in u.roles.iter().enumerate() {
            let at = format!("units[{i}].roles[{j}]");
            let name = r.name.trim();
            let name_ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
            if !name_ok {
                p.add(
                    format!("{at}.name"),
                    format!("{name:?} is not a role name (letters, digits, '-', '_')"),
                );
            } else if roles.contains_key(name) {
                p.add(format!("{at}.name"), format!("duplicate role {name:?}"));
            }
            let mut template = UserPermissionLimits::unlimited();
            for (field, list, target) in [
                (
                    "publish",
                    &r.publish,
                    &mut template.permissions.publish.allow,
                ),
                (
                    "subscribe",
                    &r.subscribe,
                    &mut template.permissions.subscribe.allow,
                ),
            ] {
                for (k, s) in list.iter().enumerate() {
                    match render_role(s, &vars) {
                        Ok(subj) => push_unique(target, subj),
                        Err(e) => p.add(format!("{at}.{field}[{k}]"), e),
                    }
                }
            }
            if r.allow_responses {
                template.permissions.response = Some(ResponsePermission { max: 1, ttl_ns: 0 });
            }
            if let Some(size) = &r.max_payload {
                match size.bytes() {
                    Ok(n) => template.payload = n,
                    Err(e) => p.add(format!("{at}.max_payload"), e),
                }
            }
            roles.insert(
                name.to_string(),
                ShareRole {
                    name: name.to_string(),
                    template,
                },
            );
        }
        shares.roles = roles.into_values().collect();
        out.push(shares);
    }
    let by_name: BTreeMap<String, usize> = spec
        .units
        .iter()
        .enumerate()
        .map(|(i, u)| (u.name.trim().to_lowercase(), i))
        .collect();
    for (i, u) in spec.units.iter().enumerate() {
        let vars = [("{org}", org), ("{unit}", u.id.trim())];
        let mut seen = BTreeMap::new();
        for (j, imp) in u.imports.iter().enumerate() {
            let at = format!("units[{i}].imports[{j}]");
            let key = imp.unit.trim();
            let Some(&from) = unit_index
                .get(key)
                .or_else(|| by_name.get(&key.to_lowercase()))
            else {
                p.add(format!("{at}.unit"), format!("unknown unit {key:?}"));
                continue;
            };
            if from == i {
                p.add(format!("{at}.unit"), "a unit cannot import from itself");
                continue;
            }
            let from_id = spec.units[from].id.trim();
            let name = imp.export.trim();
            let Some(export) = out[from]
                .exports
                .iter()
                .find(|e| e.name.as_deref() == Some(name))
                .cloned()
            else {
                if !broken.contains(&(from, name.to_string())) {
                    p.add(
                        format!("{at}.export"),
                        format!("unit {from_id:?} has no export {name:?}"),
                    );
                }
                continue;
            };
            if let Some(first) = seen.insert((from, name.to_string()), j) {
                p.add(
                    format!("{at}.export"),
                    format!("{name:?} of unit {from_id:?} is also imported by imports[{first}]"),
                );
            }
            let local_subject = match imp.local_subject.as_deref().map(|l| render(l, &vars)) {
                None => None,
                Some(Ok(l)) => Some(l),
                Some(Err(e)) => {
                    p.add(format!("{at}.local_subject"), e);
                    continue;
                }
            };
            out[i].imports.push(ShareImport {
                unit_id: from_id.to_string(),
                name: name.to_string(),
                subject: export.subject.clone(),
                local_subject,
                service: export.export_type == ExportType::Service,
                private: export.token_req,
            });
        }
        out[i].imports.sort();
    }
    out
}

/// The chain of unit ids from unit `start` back to itself, if its parents loop.
fn parent_cycle(
    spec: &OrgSpec,
    index: &BTreeMap<&str, usize>,
    start: usize,
) -> Option<Vec<String>> {
    let mut seen = BTreeSet::new();
    let mut chain = vec![spec.units[start].id.trim().to_string()];
    let mut at = start;
    loop {
        let parent = spec.units[at].parent.as_deref()?.trim();
        let &next = index.get(parent)?;
        chain.push(parent.to_string());
        if next == start {
            return Some(chain);
        }
        if !seen.insert(next) {
            // A loop that does not pass through `start`: reported on its own units.
            return None;
        }
        at = next;
    }
}

type FieldErrors = Vec<(String, String)>;

fn user_spec(
    org: &str,
    domain: &str,
    unit: &str,
    related: &[String],
    t: &PermissionTemplate,
    template_payload: i64,
    over: Option<&PermissionsOverride>,
) -> Result<UserSpec, FieldErrors> {
    let mut errs = Vec::new();
    let vars = [("{org}", org), ("{domain}", domain), ("{unit}", unit)];
    let mut list = |field: &str, items: &[String], extra: Option<&str>| -> Vec<Subject> {
        let mut out = Vec::new();
        for (i, s) in items.iter().enumerate() {
            let mut v = vars.to_vec();
            if let Some(r) = extra {
                v.push(("{related}", r));
            }
            match render(s, &v) {
                Ok(subj) => push_unique(&mut out, subj),
                Err(e) => errs.push((format!("{field}[{i}]"), e)),
            }
        }
        out
    };
    let over = over.cloned().unwrap_or_default();
    let mut publish = Permission::default();
    let mut subscribe = Permission::default();
    match over.publish.as_ref().and_then(|l| l.allow.as_ref()) {
        Some(allow) => publish.allow = list("permissions.publish.allow", allow, None),
        // Template errors were reported once, on the template.
        None => publish.allow = list("template.publish", &t.publish, None),
    }
    if let Some(l) = &over.publish {
        publish.deny = list("permissions.publish.deny", &l.deny, None);
    }
    match over.subscribe.as_ref().and_then(|l| l.allow.as_ref()) {
        Some(allow) => subscribe.allow = list("permissions.subscribe.allow", allow, None),
        None => {
            subscribe.allow = list("template.subscribe", &t.subscribe, None);
            for r in related {
                for s in list(
                    "template.subscribe_related",
                    &t.subscribe_related,
                    Some(r.trim()),
                ) {
                    push_unique(&mut subscribe.allow, s);
                }
            }
        }
    }
    if let Some(l) = &over.subscribe {
        subscribe.deny = list("permissions.subscribe.deny", &l.deny, None);
    }
    let responses = over.allow_responses.unwrap_or(t.allow_responses);
    let payload = match &over.max_payload {
        Some(s) => s.bytes().unwrap_or_else(|e| {
            errs.push(("permissions.max_payload".into(), e));
            template_payload
        }),
        None => template_payload,
    };
    // Template problems are reported once, by `compile`; keep only the person's own.
    errs.retain(|(f, _)| !f.starts_with("template."));
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(UserSpec {
        permissions: Permissions {
            publish,
            subscribe,
            response: responses.then_some(ResponsePermission { max: 1, ttl_ns: 0 }),
        },
        payload,
        ..UserSpec::default()
    })
}

// ---------------------------------------------------------------------------------------
// Current state and the plan
// ---------------------------------------------------------------------------------------

/// An account the organisation manages, as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurrentAccount {
    /// Unit id it is bound to.
    pub unit_id: String,
    /// Account public key.
    pub public_key: String,
    /// Account name.
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// Names of its users that no person of the organisation is bound to.
    pub unmanaged_users: Vec<String>,
    /// Its exports, imports and roles, as the organisation sees them.
    #[serde(default)]
    pub shares: Shares,
}

/// A user the organisation manages, as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurrentUser {
    /// Person id it is bound to.
    pub person_id: String,
    /// User public key.
    pub public_key: String,
    /// Public key of its account.
    pub account_key: String,
    /// Name of its account.
    pub account: String,
    /// User name.
    pub name: String,
    /// Its spec.
    pub spec: UserSpec,
    /// Whether it has been revoked.
    pub revoked: bool,
    /// The role whose signing key issued it.
    #[serde(default)]
    pub role: Option<String>,
}

/// What the store holds: the bound accounts and users, and the names of every other
/// account (which the organisation must not take over silently).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CurrentOrg {
    /// Accounts bound to units.
    pub accounts: Vec<CurrentAccount>,
    /// Users bound to people.
    pub users: Vec<CurrentUser>,
    /// Names of accounts not bound to any unit (SYS, the operator's own, …).
    pub other_accounts: Vec<String>,
}

/// What a step does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Make something new.
    Create,
    /// Change something.
    Update,
    /// Remove something.
    Delete,
    /// Put a user key in its account's revocations.
    Revoke,
}

/// What a step acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An account.
    Account,
    /// A user.
    User,
    /// A user's permissions.
    Permissions,
    /// An account's exports, imports and roles.
    Shares,
}

/// The change a step makes, with everything needed to make it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    /// Create the account of a unit.
    CreateAccount {
        /// Unit id.
        unit_id: String,
        /// Account name.
        name: AccountName,
        /// Description.
        description: String,
    },
    /// Rename an account and/or change its description.
    UpdateAccount {
        /// Unit id.
        unit_id: String,
        /// Account public key.
        public_key: String,
        /// New name.
        name: AccountName,
        /// New description.
        description: String,
    },
    /// Set the exports, imports (activations issued for private ones) and roles of a
    /// unit's account (created earlier in the plan if new).
    SetShares {
        /// Unit id.
        unit_id: String,
        /// Account name.
        account: AccountName,
        /// What the account shares.
        shares: Shares,
    },
    /// Delete the account of a removed unit (with its users).
    DeleteAccount {
        /// Unit id.
        unit_id: String,
        /// Account public key.
        public_key: String,
    },
    /// Create a user for a person (new, reactivated or moved): a new key.
    CreateUser {
        /// Person id.
        person_id: String,
        /// Unit id of its account.
        unit_id: String,
        /// Account name (created earlier in the plan if new).
        account: AccountName,
        /// User name.
        name: UserName,
        /// Spec.
        spec: UserSpec,
        /// The role whose key issues it (None: the account's identity key).
        role: Option<String>,
        /// A revoked user of the same name in that account, replaced by this one.
        replaces: Option<String>,
    },
    /// Re-issue a user's JWT with a new name and/or spec (same key).
    UpdateUser {
        /// Person id.
        person_id: String,
        /// User public key.
        public_key: String,
        /// New name.
        name: UserName,
        /// New spec.
        spec: UserSpec,
        /// The role whose key issues it (None: the account's identity key).
        role: Option<String>,
    },
    /// Revoke a user (inactive, removed or moved person).
    RevokeUser {
        /// Person id.
        person_id: String,
        /// User public key.
        public_key: String,
    },
}

/// One line of a plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlanStep {
    /// What.
    pub action: Action,
    /// On what.
    pub kind: Kind,
    /// `ACCOUNT` or `ACCOUNT/user`.
    pub name: String,
    /// Why, for people.
    pub detail: String,
    /// The change itself.
    pub change: Change,
}

/// Compares desired with current; returns the steps, in the order they must run:
/// accounts created and updated, their shares set (every account exists by then, so
/// imports can name their exporters; roles exist before the users they issue), users
/// created and updated, users revoked, accounts deleted. Refuses (with every problem) to take over an existing account that no unit
/// is bound to, or to delete an account that still holds users the organisation does
/// not manage.
pub fn plan(desired: &DesiredOrg, current: &CurrentOrg) -> Result<Vec<PlanStep>, OrgError> {
    let mut p = Problems::default();
    let mut creates_acc = Vec::new();
    let mut updates_acc = Vec::new();
    let mut shares_steps = Vec::new();
    let mut deletes_acc = Vec::new();
    let mut user_steps = Vec::new();
    let mut revokes = Vec::new();

    let bound: BTreeMap<&str, &CurrentAccount> = current
        .accounts
        .iter()
        .map(|a| (a.unit_id.as_str(), a))
        .collect();
    let desired_units: BTreeSet<&str> = desired
        .accounts
        .iter()
        .map(|a| a.unit_id.as_str())
        .collect();
    // Names that stay taken by accounts the organisation keeps or does not own.
    let mut taken: BTreeSet<&str> = current.other_accounts.iter().map(String::as_str).collect();
    for (i, a) in desired.accounts.iter().enumerate() {
        match bound.get(a.unit_id.as_str()) {
            None => {
                if taken.contains(a.name.as_str()) {
                    p.add(
                        format!("units[{i}]"),
                        format!(
                            "account {} already exists and is not managed by the organisation (choose another with `account:`)",
                            a.name
                        ),
                    );
                }
                creates_acc.push(PlanStep {
                    action: Action::Create,
                    kind: Kind::Account,
                    name: a.name.to_string(),
                    detail: format!("unit {}", a.unit_id),
                    change: Change::CreateAccount {
                        unit_id: a.unit_id.clone(),
                        name: a.name.clone(),
                        description: a.description.clone(),
                    },
                });
            }
            Some(cur) => {
                let renamed = cur.name != a.name.as_str();
                if renamed && taken.contains(a.name.as_str()) {
                    p.add(
                        format!("units[{i}]"),
                        format!(
                            "cannot rename account {} to {}: that name is taken",
                            cur.name, a.name
                        ),
                    );
                }
                if renamed || cur.description.as_deref() != Some(a.description.as_str()) {
                    let detail = if renamed {
                        format!("unit {}: renamed from {}", a.unit_id, cur.name)
                    } else {
                        format!("unit {}: description", a.unit_id)
                    };
                    updates_acc.push(PlanStep {
                        action: Action::Update,
                        kind: Kind::Account,
                        name: a.name.to_string(),
                        detail,
                        change: Change::UpdateAccount {
                            unit_id: a.unit_id.clone(),
                            public_key: cur.public_key.clone(),
                            name: a.name.clone(),
                            description: a.description.clone(),
                        },
                    });
                }
            }
        }
        let current_shares = bound
            .get(a.unit_id.as_str())
            .map(|c| c.shares.clone())
            .unwrap_or_default();
        if current_shares != a.shares {
            shares_steps.push(PlanStep {
                action: Action::Update,
                kind: Kind::Shares,
                name: a.name.to_string(),
                detail: format!(
                    "unit {}: {}",
                    a.unit_id,
                    a.shares.describe_change(&current_shares)
                ),
                change: Change::SetShares {
                    unit_id: a.unit_id.clone(),
                    account: a.name.clone(),
                    shares: a.shares.clone(),
                },
            });
        }
        taken.insert(a.name.as_str());
    }
    let desired_people: BTreeMap<&str, &DesiredUser> = desired
        .users
        .iter()
        .map(|u| (u.person_id.as_str(), u))
        .collect();
    for cur in &current.accounts {
        if desired_units.contains(cur.unit_id.as_str()) {
            continue;
        }
        if !cur.unmanaged_users.is_empty() {
            p.add(
                format!("units (removed unit {:?})", cur.unit_id),
                format!(
                    "account {} still holds users the organisation does not manage ({}); delete or move them first",
                    cur.name,
                    cur.unmanaged_users.join(", ")
                ),
            );
        }
        deletes_acc.push(PlanStep {
            action: Action::Delete,
            kind: Kind::Account,
            name: cur.name.clone(),
            detail: format!("unit {} removed", cur.unit_id),
            change: Change::DeleteAccount {
                unit_id: cur.unit_id.clone(),
                public_key: cur.public_key.clone(),
            },
        });
    }
    let deleted_accounts: BTreeSet<&str> = current
        .accounts
        .iter()
        .filter(|a| !desired_units.contains(a.unit_id.as_str()))
        .map(|a| a.public_key.as_str())
        .collect();

    // Accounts renamed by this plan: users are labelled with the name they will have.
    let final_names: BTreeMap<&str, &str> = desired
        .accounts
        .iter()
        .filter_map(|a| {
            Some((
                bound.get(a.unit_id.as_str())?.public_key.as_str(),
                a.name.as_str(),
            ))
        })
        .collect();
    let label_of = |c: &CurrentUser| {
        let account = final_names
            .get(c.account_key.as_str())
            .copied()
            .unwrap_or(c.account.as_str());
        format!("{account}/{}", c.name)
    };
    let current_users: BTreeMap<&str, &CurrentUser> = current
        .users
        .iter()
        .map(|u| (u.person_id.as_str(), u))
        .collect();
    for u in &desired.users {
        let label = format!("{}/{}", u.account, u.name);
        let create = |detail: String, replaces: Option<String>| PlanStep {
            action: Action::Create,
            kind: Kind::User,
            name: label.clone(),
            detail,
            change: Change::CreateUser {
                person_id: u.person_id.clone(),
                unit_id: u.unit_id.clone(),
                account: u.account.clone(),
                name: u.name.clone(),
                spec: u.spec.clone(),
                role: u.role.clone(),
                replaces,
            },
        };
        let cur = current_users.get(u.person_id.as_str()).copied();
        // The account the person's user must live in, as currently bound.
        let target_key = bound.get(u.unit_id.as_str()).map(|a| a.public_key.as_str());
        match cur {
            None if u.active => user_steps.push(create(format!("person {}", u.person_id), None)),
            None => {}
            Some(c) if Some(c.account_key.as_str()) != target_key => {
                // Moved to another unit: revoke the old user (unless its account goes
                // away anyway), and issue a new one where it belongs.
                if !c.revoked && !deleted_accounts.contains(c.account_key.as_str()) {
                    revokes.push(PlanStep {
                        action: Action::Revoke,
                        kind: Kind::User,
                        name: label_of(c),
                        detail: format!("person {} moved to unit {}", u.person_id, u.unit_id),
                        change: Change::RevokeUser {
                            person_id: u.person_id.clone(),
                            public_key: c.public_key.clone(),
                        },
                    });
                }
                if u.active {
                    user_steps.push(create(
                        format!("person {} moved from {}", u.person_id, c.account),
                        None,
                    ));
                }
            }
            Some(c) if c.revoked && u.active => {
                let replaces = (c.name == u.name.as_str()).then(|| c.public_key.clone());
                user_steps.push(create(
                    format!("person {} reactivated: new key", u.person_id),
                    replaces,
                ));
            }
            // Revoked and still inactive: nothing to do.
            Some(c) if c.revoked => {}
            Some(c) if !u.active => revokes.push(PlanStep {
                action: Action::Revoke,
                kind: Kind::User,
                name: label_of(c),
                detail: format!("person {} inactive", u.person_id),
                change: Change::RevokeUser {
                    person_id: u.person_id.clone(),
                    public_key: c.public_key.clone(),
                },
            }),
            Some(c) => {
                let renamed = c.name != u.name.as_str();
                if renamed || c.spec != u.spec || c.role != u.role {
                    let (kind, detail) = if renamed {
                        (Kind::User, format!("renamed from {}", c.name))
                    } else if c.role != u.role {
                        let show = |r: &Option<String>| {
                            r.as_deref().map_or_else(
                                || "the account key".to_string(),
                                |r| format!("role {r}"),
                            )
                        };
                        (
                            Kind::Permissions,
                            format!("issued by {} (was {})", show(&u.role), show(&c.role)),
                        )
                    } else {
                        (Kind::Permissions, describe_change(&c.spec, &u.spec))
                    };
                    user_steps.push(PlanStep {
                        action: Action::Update,
                        kind,
                        name: label.clone(),
                        detail,
                        change: Change::UpdateUser {
                            person_id: u.person_id.clone(),
                            public_key: c.public_key.clone(),
                            name: u.name.clone(),
                            spec: u.spec.clone(),
                            role: u.role.clone(),
                        },
                    });
                }
            }
        }
    }
    for c in &current.users {
        if desired_people.contains_key(c.person_id.as_str()) || c.revoked {
            continue;
        }
        if deleted_accounts.contains(c.account_key.as_str()) {
            continue; // goes with its account
        }
        revokes.push(PlanStep {
            action: Action::Revoke,
            kind: Kind::User,
            name: label_of(c),
            detail: format!("person {} removed (or no longer a Service)", c.person_id),
            change: Change::RevokeUser {
                person_id: c.person_id.clone(),
                public_key: c.public_key.clone(),
            },
        });
    }
    if !p.0.is_empty() {
        return Err(OrgError { problems: p.0 });
    }
    let mut steps = creates_acc;
    steps.extend(updates_acc);
    steps.extend(shares_steps);
    steps.extend(user_steps);
    steps.extend(revokes);
    steps.extend(deletes_acc);
    Ok(steps)
}

fn describe_change(before: &UserSpec, after: &UserSpec) -> String {
    let mut parts = Vec::new();
    let b = &before.permissions;
    let a = &after.permissions;
    if b.publish != a.publish {
        parts.push("publish");
    }
    if b.subscribe != a.subscribe {
        parts.push("subscribe");
    }
    if b.response != a.response {
        parts.push("responses");
    }
    if before.payload != after.payload {
        parts.push("max payload");
    }
    if parts.is_empty() {
        "limits".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(id: &str, unit: &str, domain: &str, related: &[&str]) -> PersonSpec {
        PersonSpec {
            id: id.into(),
            name: format!("{id}-service"),
            email: Some(format!("{id}@example.com")),
            roles: vec![Role::Service],
            units: vec![unit.into()],
            active: true,
            domain: Some(domain.into()),
            related_domains: related.iter().map(|s| s.to_string()).collect(),
            user: None,
            permissions: None,
            role: None,
        }
    }

    fn unit(id: &str, name: &str) -> UnitSpec {
        UnitSpec {
            id: id.into(),
            name: name.into(),
            unit_type: UnitType::Service,
            parent: None,
            account: None,
            exports: vec![],
            imports: vec![],
            roles: vec![],
        }
    }

    fn sample() -> OrgSpec {
        OrgSpec {
            organization: Organization {
                name: "thecowboyai".into(),
                id: None,
                subject_token: None,
            },
            units: vec![unit("core", "Core"), unit("media", "Media")],
            people: vec![
                person("person", "core", "person", &["location"]),
                person("audio", "media", "audio", &[]),
            ],
            template: PermissionTemplate::default(),
        }
    }

    fn subjects(p: &Permission) -> Vec<&str> {
        p.allow.iter().map(|s| s.as_str()).collect()
    }

    #[test]
    fn compile_maps_units_to_accounts_and_services_to_users() {
        let d = compile(&sample(), &NamingPolicy::default()).unwrap();
        let names: Vec<&str> = d.accounts.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["CORE", "MEDIA"]);
        let u = &d.users[0];
        assert_eq!(u.name.as_str(), "person_service");
        assert_eq!(u.account.as_str(), "CORE");
        let perms = &u.spec.permissions;
        assert_eq!(subjects(&perms.publish), ["thecowboyai.org.person.>"]);
        assert_eq!(
            subjects(&perms.subscribe),
            ["thecowboyai.org.person.>", "thecowboyai.org.location.>"]
        );
        assert!(perms.response.is_some());
        assert_eq!(u.spec.payload, 1_048_576);
    }

    #[test]
    fn overrides_and_kebab_policy() {
        let mut spec = sample();
        spec.units[1].account = Some("STUDIO".into());
        spec.people[1].permissions = Some(PermissionsOverride {
            publish: Some(SubjectLists {
                allow: Some(vec!["{org}.media.>".into()]),
                deny: vec!["{org}.media.secret".into()],
            }),
            subscribe: None,
            allow_responses: Some(false),
            max_payload: Some(Size::Text("64K".into())),
        });
        let policy = NamingPolicy {
            user: crate::NameCase::Kebab,
            ..NamingPolicy::default()
        };
        let d = compile(&spec, &policy).unwrap();
        let u = &d.users[1];
        assert_eq!(u.name.as_str(), "audio-service");
        assert_eq!(u.account.as_str(), "STUDIO");
        assert_eq!(
            subjects(&u.spec.permissions.publish),
            ["thecowboyai.media.>"]
        );
        assert_eq!(
            u.spec.permissions.publish.deny[0].as_str(),
            "thecowboyai.media.secret"
        );
        assert!(u.spec.permissions.response.is_none());
        assert_eq!(u.spec.payload, 65_536);
    }

    #[test]
    fn validation_reports_every_problem_with_its_path() {
        let mut spec = sample();
        spec.units.push(unit("core", "Core")); // duplicate id and name
        spec.units.push(UnitSpec {
            parent: Some("b".into()),
            ..unit("a", "A")
        });
        spec.units.push(UnitSpec {
            parent: Some("a".into()),
            ..unit("b", "B")
        });
        spec.units.push(UnitSpec {
            parent: Some("nowhere".into()),
            ..unit("c", "C")
        });
        spec.people[0].units = vec!["ghost".into()];
        spec.people[1].email = Some("not-an-email".into());
        spec.people[1].domain = Some("a.b".into());
        let mut p2 = person("person", "media", "x", &[]); // duplicate id
        p2.units.clear();
        spec.people.push(p2);
        let mut p3 = person("p3", "media", "y", &["bad token"]);
        p3.permissions = Some(PermissionsOverride {
            publish: Some(SubjectLists {
                allow: Some(vec!["a..b".into()]),
                deny: vec![],
            }),
            ..Default::default()
        });
        spec.people.push(p3);
        let err = compile(&spec, &NamingPolicy::default()).unwrap_err();
        let paths: Vec<&str> = err.problems.iter().map(|p| p.path.as_str()).collect();
        for want in [
            "units[2].id",
            "units[2].name",
            "units[3].parent",
            "units[4].parent",
            "units[5].parent",
            "people[0].units[0]",
            "people[1].email",
            "people[1].domain",
            "people[2].id",
            "people[2].units",
            "people[3].related_domains[0]",
            "people[3].permissions.publish.allow[0]",
        ] {
            assert!(paths.contains(&want), "missing {want} in {paths:?}");
        }
        let text = err.to_string();
        assert!(text.contains("parent cycle: a -> b -> a"), "{text}");
        assert!(text.contains("unknown unit \"ghost\""), "{text}");
    }

    #[test]
    fn names_clash_after_mapping() {
        let mut spec = sample();
        spec.units[1].name = "core".into(); // CORE twice after mapping, names differ in case only
        spec.units[1].id = "core2".into();
        spec.people[1].units = vec!["core".into()];
        spec.people[1].name = "person service".into(); // person_service twice in CORE
        let err = compile(&spec, &NamingPolicy::default()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("units[1].name"), "{text}");
        assert!(
            text.contains("people[1].name: user name person_service in account CORE"),
            "{text}"
        );
        let mut spec = sample();
        spec.units[0].account = Some("SYS".into());
        spec.template.publish = vec!["{org}.{nope}".into()];
        let err = compile(&spec, &NamingPolicy::default()).unwrap_err();
        let paths: Vec<&str> = err.problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["template.publish[0]", "units[0].account"]);
    }

    #[test]
    fn service_without_domain_is_refused_when_the_template_needs_it() {
        let mut spec = sample();
        spec.people[0].domain = None;
        let err = compile(&spec, &NamingPolicy::default()).unwrap_err();
        assert_eq!(err.problems[0].path, "people[0].domain");
    }

    #[test]
    fn roles_parse_case_insensitively() {
        let r: Vec<Role> = serde_json::from_str(r#"["service","Executive"]"#).unwrap();
        assert_eq!(r, [Role::Service, Role::Executive]);
        assert!(serde_json::from_str::<Vec<Role>>(r#"["wizard"]"#).is_err());
        let spec: OrgSpec = serde_json::from_str(
            r#"{"organization":{"name":"X"},"units":[{"id":"u","name":"U","type":"division"}],
               "defaults":{"max_payload":"2M"}}"#,
        )
        .unwrap();
        assert_eq!(spec.template.max_payload.bytes(), Ok(2 << 20));
        assert!(spec.people.is_empty());
    }

    /// The store after applying `steps` (what the `warden` crate does, in plain data).
    fn apply(current: &CurrentOrg, desired: &DesiredOrg, steps: &[PlanStep]) -> CurrentOrg {
        let mut c = current.clone();
        let mut n = 0;
        for s in steps {
            n += 1;
            match &s.change {
                Change::CreateAccount {
                    unit_id,
                    name,
                    description,
                } => c.accounts.push(CurrentAccount {
                    unit_id: unit_id.clone(),
                    public_key: format!("A{n}"),
                    name: name.to_string(),
                    description: Some(description.clone()),
                    unmanaged_users: vec![],
                    shares: Shares::default(),
                }),
                Change::SetShares {
                    unit_id, shares, ..
                } => {
                    let a = c
                        .accounts
                        .iter_mut()
                        .find(|a| &a.unit_id == unit_id)
                        .unwrap();
                    a.shares = shares.clone();
                }
                Change::UpdateAccount {
                    public_key,
                    name,
                    description,
                    ..
                } => {
                    let a = c
                        .accounts
                        .iter_mut()
                        .find(|a| &a.public_key == public_key)
                        .unwrap();
                    a.name = name.to_string();
                    a.description = Some(description.clone());
                    for u in c.users.iter_mut().filter(|u| &u.account_key == public_key) {
                        u.account = name.to_string();
                    }
                }
                Change::DeleteAccount { public_key, .. } => {
                    c.accounts.retain(|a| &a.public_key != public_key);
                    c.users.retain(|u| &u.account_key != public_key);
                }
                Change::CreateUser {
                    person_id,
                    unit_id,
                    account,
                    name,
                    spec,
                    role,
                    ..
                } => {
                    let key = c
                        .accounts
                        .iter()
                        .find(|a| &a.unit_id == unit_id)
                        .unwrap()
                        .public_key
                        .clone();
                    c.users.retain(|u| &u.person_id != person_id);
                    c.users.push(CurrentUser {
                        person_id: person_id.clone(),
                        public_key: format!("U{n}"),
                        account_key: key,
                        account: account.to_string(),
                        name: name.to_string(),
                        spec: spec.clone(),
                        revoked: false,
                        role: role.clone(),
                    });
                }
                Change::UpdateUser {
                    public_key,
                    name,
                    spec,
                    role,
                    ..
                } => {
                    let u = c
                        .users
                        .iter_mut()
                        .find(|u| &u.public_key == public_key)
                        .unwrap();
                    u.name = name.to_string();
                    u.spec = spec.clone();
                    u.role = role.clone();
                }
                Change::RevokeUser { public_key, .. } => {
                    // A moved person's old user is no longer bound (the new one is).
                    if let Some(u) = c.users.iter_mut().find(|u| &u.public_key == public_key) {
                        u.revoked = true;
                    }
                }
            }
        }
        let _ = desired;
        c
    }

    fn actions(steps: &[PlanStep]) -> Vec<(Action, Kind, String)> {
        steps
            .iter()
            .map(|s| (s.action, s.kind, s.name.clone()))
            .collect()
    }

    #[test]
    fn plan_creates_then_is_empty_once_applied() {
        let policy = NamingPolicy::default();
        let d = compile(&sample(), &policy).unwrap();
        let empty = CurrentOrg {
            other_accounts: vec!["SYS".into()],
            ..Default::default()
        };
        let steps = plan(&d, &empty).unwrap();
        assert_eq!(
            actions(&steps),
            [
                (Action::Create, Kind::Account, "CORE".into()),
                (Action::Create, Kind::Account, "MEDIA".into()),
                (Action::Create, Kind::User, "CORE/person_service".into()),
                (Action::Create, Kind::User, "MEDIA/audio_service".into()),
            ]
        );
        let applied = apply(&empty, &d, &steps);
        assert!(plan(&d, &applied).unwrap().is_empty());

        // Deactivate, change permissions, rename a unit; then reactivate.
        let mut spec = sample();
        spec.people[0].active = false;
        spec.people[1].related_domains = vec!["video".into()];
        spec.units[1].name = "Studio".into();
        let d2 = compile(&spec, &policy).unwrap();
        let steps = plan(&d2, &applied).unwrap();
        assert_eq!(
            actions(&steps),
            [
                (Action::Update, Kind::Account, "STUDIO".into()),
                (
                    Action::Update,
                    Kind::Permissions,
                    "STUDIO/audio_service".into()
                ),
                (Action::Revoke, Kind::User, "CORE/person_service".into()),
            ]
        );
        let applied2 = apply(&applied, &d2, &steps);
        assert!(plan(&d2, &applied2).unwrap().is_empty());
        let back = plan(&compile(&sample(), &policy).unwrap(), &applied2).unwrap();
        let create = back
            .iter()
            .find(|s| s.action == Action::Create)
            .expect("reactivation creates a user");
        match &create.change {
            Change::CreateUser { replaces, .. } => assert!(replaces.is_some()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn removals_revoke_and_delete_and_takeovers_are_refused() {
        let policy = NamingPolicy::default();
        let d = compile(&sample(), &policy).unwrap();
        let applied = apply(
            &CurrentOrg::default(),
            &d,
            &plan(&d, &CurrentOrg::default()).unwrap(),
        );
        // The media unit and its person go; person_service moves out of the spec.
        let mut spec = sample();
        spec.units.pop();
        spec.people.clear();
        let d2 = compile(&spec, &policy).unwrap();
        let steps = plan(&d2, &applied).unwrap();
        assert_eq!(
            actions(&steps),
            [
                (Action::Revoke, Kind::User, "CORE/person_service".into()),
                (Action::Delete, Kind::Account, "MEDIA".into()),
            ]
        );
        let applied2 = apply(&applied, &d2, &steps);
        assert!(plan(&d2, &applied2).unwrap().is_empty());

        // An account holding hand-made users is not deleted.
        let mut busy = applied.clone();
        busy.accounts[1].unmanaged_users = vec!["bob".into()];
        let err = plan(&d2, &busy).unwrap_err();
        assert!(err.to_string().contains("bob"), "{err}");
        // An existing account of the same name is not taken over.
        let taken = CurrentOrg {
            other_accounts: vec!["CORE".into()],
            ..Default::default()
        };
        let err = plan(&d, &taken).unwrap_err();
        assert!(
            err.to_string().contains("account CORE already exists"),
            "{err}"
        );
    }

    #[test]
    fn moving_a_person_revokes_the_old_user_and_creates_a_new_one() {
        let policy = NamingPolicy::default();
        let d = compile(&sample(), &policy).unwrap();
        let applied = apply(
            &CurrentOrg::default(),
            &d,
            &plan(&d, &CurrentOrg::default()).unwrap(),
        );
        let mut spec = sample();
        spec.people[0].units = vec!["media".into()];
        let d2 = compile(&spec, &policy).unwrap();
        let steps = plan(&d2, &applied).unwrap();
        assert_eq!(
            actions(&steps),
            [
                (Action::Create, Kind::User, "MEDIA/person_service".into()),
                (Action::Revoke, Kind::User, "CORE/person_service".into()),
            ]
        );
        let applied2 = apply(&applied, &d2, &steps);
        assert!(plan(&d2, &applied2).unwrap().is_empty());
    }

    /// The sample with exports, imports and roles: media exports a private service and
    /// a public stream; core imports both; media has a `viewer` role one person holds.
    fn sharing_sample() -> OrgSpec {
        let mut spec = sample();
        spec.units[1].exports = vec![
            UnitExport {
                name: "transcode".into(),
                subject: "{org}.{unit}.transcode.>".into(),
                export_type: ShareType::Service,
                public: false,
                response_type: Some(ResponseKind::Singleton),
                description: Some("transcoding".into()),
            },
            UnitExport {
                name: "events".into(),
                subject: "{org}.{unit}.events.>".into(),
                export_type: ShareType::Stream,
                public: true,
                response_type: None,
                description: None,
            },
        ];
        spec.units[0].imports = vec![
            UnitImport {
                unit: "Media".into(),
                export: "transcode".into(),
                local_subject: Some("{unit}.transcode.>".into()),
            },
            UnitImport {
                unit: "media".into(),
                export: "events".into(),
                local_subject: None,
            },
        ];
        spec.units[1].roles = vec![UnitRole {
            name: "viewer".into(),
            publish: vec!["{org}.{unit}.view.{{name()}}.>".into()],
            subscribe: vec![
                "{org}.{unit}.team.{{tag(team)}}.>".into(),
                "_INBOX.>".into(),
            ],
            allow_responses: true,
            max_payload: Some(Size::Text("64K".into())),
        }];
        let mut viewer = person("viewer", "media", "viewer", &[]);
        viewer.roles = vec![Role::Member];
        viewer.role = Some("viewer".into());
        viewer.domain = None;
        spec.people.push(viewer);
        spec
    }

    #[test]
    fn units_declare_exports_imports_and_roles_and_a_reapply_plans_nothing() {
        let policy = NamingPolicy::default();
        let d = compile(&sharing_sample(), &policy).unwrap();
        let core = &d.accounts[0].shares;
        assert_eq!(core.imports.len(), 2);
        let transcode = core.imports.iter().find(|i| i.service).unwrap();
        assert!(transcode.private);
        assert_eq!(transcode.unit_id, "media");
        assert_eq!(transcode.subject.as_str(), "thecowboyai.media.transcode.>");
        assert_eq!(
            transcode.local_subject.as_ref().unwrap().as_str(),
            "core.transcode.>"
        );
        let media = &d.accounts[1].shares;
        assert_eq!(media.exports.len(), 2);
        let private = media
            .exports
            .iter()
            .find(|e| e.name.as_deref() == Some("transcode"))
            .unwrap();
        assert!(private.token_req);
        assert_eq!(private.response_type, Some(ResponseType::Singleton));
        assert!(
            !media
                .exports
                .iter()
                .any(|e| e.name.as_deref() == Some("events") && e.token_req)
        );
        let role = &media.roles[0];
        assert_eq!(
            role.template.permissions.publish.allow[0].as_str(),
            "thecowboyai.media.view.{{name()}}.>"
        );
        assert_eq!(role.template.payload, 64 * 1024);
        assert!(role.template.permissions.response.is_some());
        let viewer = d.users.iter().find(|u| u.person_id == "viewer").unwrap();
        assert_eq!(viewer.role.as_deref(), Some("viewer"));
        assert!(
            viewer.spec.to_claims().is_empty(),
            "a role's user carries nothing"
        );

        let steps = plan(&d, &CurrentOrg::default()).unwrap();
        assert_eq!(
            actions(&steps),
            [
                (Action::Create, Kind::Account, "CORE".into()),
                (Action::Create, Kind::Account, "MEDIA".into()),
                (Action::Update, Kind::Shares, "CORE".into()),
                (Action::Update, Kind::Shares, "MEDIA".into()),
                (Action::Create, Kind::User, "CORE/person_service".into()),
                (Action::Create, Kind::User, "MEDIA/audio_service".into()),
                (Action::Create, Kind::User, "MEDIA/viewer_service".into()),
            ]
        );
        assert_eq!(steps[2].detail, "unit core: imports");
        assert_eq!(steps[3].detail, "unit media: exports, roles");
        let applied = apply(&CurrentOrg::default(), &d, &steps);
        assert!(plan(&d, &applied).unwrap().is_empty(), "idempotent");

        // Taking the role away re-issues the user with the account key and the template.
        let mut spec = sharing_sample();
        spec.people[2].role = None;
        spec.people[2].roles = vec![Role::Service];
        spec.people[2].domain = Some("viewer".into());
        spec.units[1].roles.clear();
        let d2 = compile(&spec, &policy).unwrap();
        let steps = plan(&d2, &applied).unwrap();
        assert_eq!(
            actions(&steps),
            [
                (Action::Update, Kind::Shares, "MEDIA".into()),
                (
                    Action::Update,
                    Kind::Permissions,
                    "MEDIA/viewer_service".into()
                ),
            ]
        );
        assert!(
            steps[1].detail.contains("the account key"),
            "{}",
            steps[1].detail
        );
        assert!(plan(&d2, &apply(&applied, &d2, &steps)).unwrap().is_empty());
    }

    #[test]
    fn bad_shares_are_reported_with_their_paths() {
        let mut spec = sharing_sample();
        spec.units[0].imports.push(UnitImport {
            unit: "nowhere".into(),
            export: "x".into(),
            local_subject: None,
        });
        spec.units[0].imports.push(UnitImport {
            unit: "media".into(),
            export: "missing".into(),
            local_subject: None,
        });
        spec.units[1].imports.push(UnitImport {
            unit: "media".into(),
            export: "events".into(),
            local_subject: None,
        });
        spec.units[1].exports[1].subject = "a..b".into();
        spec.units[1].roles.push(UnitRole {
            name: "viewer".into(),
            publish: vec!["x.{{name()".into(), "{nope}".into()],
            subscribe: vec![],
            allow_responses: false,
            max_payload: None,
        });
        spec.people[2].role = Some("ghost".into());
        let err = compile(&spec, &NamingPolicy::default()).unwrap_err();
        let paths: Vec<&str> = err.problems.iter().map(|p| p.path.as_str()).collect();
        for want in [
            "units[0].imports[2].unit",
            "units[0].imports[3].export",
            "units[1].imports[0].unit",
            "units[1].exports[1].subject",
            "units[1].roles[1].name",
            "units[1].roles[1].publish[0]",
            "units[1].roles[1].publish[1]",
            "people[2].role",
        ] {
            assert!(paths.contains(&want), "{want} missing from {paths:?}");
        }
        // An import of the export whose subject is broken is not reported twice.
        assert!(!paths.contains(&"units[0].imports[1].export"), "{paths:?}");
    }
}
