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

use nats_jwt::{Permission, Permissions, ResponsePermission, Subject};
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
    /// Account description (the only account field the organisation manages; limits,
    /// exports and imports stay with `warden account edit`).
    pub description: String,
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
        if !person.roles.contains(&Role::Service) {
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
        .filter_map(|(u, a)| {
            Some(DesiredAccount {
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
/// accounts created and updated, users created and updated, users revoked, accounts
/// deleted. Refuses (with every problem) to take over an existing account that no unit
/// is bound to, or to delete an account that still holds users the organisation does
/// not manage.
pub fn plan(desired: &DesiredOrg, current: &CurrentOrg) -> Result<Vec<PlanStep>, OrgError> {
    let mut p = Problems::default();
    let mut creates_acc = Vec::new();
    let mut updates_acc = Vec::new();
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
                if renamed || c.spec != u.spec {
                    let (kind, detail) = if renamed {
                        (Kind::User, format!("renamed from {}", c.name))
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
        }
    }

    fn unit(id: &str, name: &str) -> UnitSpec {
        UnitSpec {
            id: id.into(),
            name: name.into(),
            unit_type: UnitType::Service,
            parent: None,
            account: None,
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
                }),
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
                    });
                }
                Change::UpdateUser {
                    public_key,
                    name,
                    spec,
                    ..
                } => {
                    let u = c
                        .users
                        .iter_mut()
                        .find(|u| &u.public_key == public_key)
                        .unwrap();
                    u.name = name.to_string();
                    u.spec = spec.clone();
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
}
