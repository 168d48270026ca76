//! The directory's shared shapes: users and roles under their directory field names
//! (the mapping between Active Directory, Warden's directory and Azure AD), a
//! snapshot of one upstream directory, and the plan that turns a snapshot into
//! creates, updates and deletes.
//!
//! Two sides meet here. Directory sync (LDIF, LDAP, Microsoft Graph JSON) maps
//! provider records into [`NextUser`]/[`NextRole`] and computes a [`SyncPlan`]
//! against what Warden holds; the governance store applies a plan in one
//! transaction and reports a [`SyncReport`]. Neither side needs the other's
//! internals, only these types.

use serde::{Deserialize, Serialize};

/// A directory user, in Warden's directory field names. `id` is Warden's own key for the user
/// (the `--as` name, the NATS user name in accounts where the user has grants);
/// `user_id` is the provider's object id (AD `objectGUID`, Azure AD `id`), kept
/// so that renames upstream are updates, not delete + create.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NextUser {
    /// Warden's directory id (snake_case NATS user name).
    pub id: String,
    /// The provider's object id.
    pub user_id: Option<String>,
    /// AD `whenCreated` / AAD `createdDateTime`, as the provider wrote it.
    pub created_date: Option<String>,
    /// AAD `deletedDateTime`.
    pub deleted_date: Option<String>,
    /// AAD `accountEnabled`.
    pub account_enabled: Option<bool>,
    /// AD `telephoneNumber` / AAD `businessPhones`.
    pub business_phones: Vec<String>,
    /// AD `company` / AAD `companyName`.
    pub company_name: Option<String>,
    /// AD `countryCode` / AAD `country`.
    pub country: Option<String>,
    /// AAD `city`.
    pub city: Option<String>,
    /// AAD `officeLocation`.
    pub office_location: Option<String>,
    /// AAD `postalCode`.
    pub postal_code: Option<String>,
    /// AAD `state`.
    pub state: Option<String>,
    /// `department`.
    pub department: Option<String>,
    /// AD `memberOf` (group names or DNs as the provider gave them).
    pub member_of: Vec<String>,
    /// AD `displayName` / AAD `displayName`.
    pub name: Option<String>,
    /// AD `employeeID` / AAD `employeeId`.
    pub employee_id: Option<String>,
    /// `givenName`.
    pub given_name: Option<String>,
    /// AD `title` / AAD `jobTitle`.
    pub job_title: Option<String>,
    /// AD `mail` / AAD `mail`.
    pub email: Option<String>,
    /// AD `cn` / AAD `mailNickname`.
    pub user_nickname: Option<String>,
    /// The manager's Warden directory id (resolved from the provider's reference).
    pub manager: Option<String>,
    /// `mobilePhone`.
    pub mobile_phone: Option<String>,
    /// AD `distinguishedName` / AAD `onPremisesDistinguishedName`.
    pub distinguished_name: Option<String>,
    /// `preferredLanguage`.
    pub preferred_language: Option<String>,
    /// `streetAddress`.
    pub street_address: Option<String>,
    /// AAD `surname`.
    pub surname: Option<String>,
    /// AAD `usageLocation`.
    pub usage_location: Option<String>,
    /// `userPrincipalName`.
    pub user_principal_name: Option<String>,
    /// AAD `userType`.
    pub user_type: Option<String>,
}

/// A directory role (an AD / Azure AD group), in Warden's directory field names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NextRole {
    /// Warden's role name.
    pub name: String,
    /// The provider's object id (AD `objectGUID`, AAD `id`).
    pub role_id: Option<String>,
    /// AD `whenChanged` / AAD `createdDateTime`.
    pub created_date: Option<String>,
    /// AAD `deletedDateTime`.
    pub deleted_date: Option<String>,
    /// AAD `classification`.
    pub classification: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// AD `name` / AAD `displayName`, as the provider spelt it.
    pub display_name: Option<String>,
    /// AD `groupType` / AAD `groupTypes`.
    pub group_types: Vec<String>,
    /// AAD `mailNickname`.
    pub group_nickname: Option<String>,
    /// AAD `mailEnabled`.
    pub mail_enabled: Option<bool>,
    /// Members, as Warden directory user ids.
    pub members: Vec<String>,
    /// Owners (AD `managedBy`, AAD `owners`), as Warden directory user ids.
    pub owners: Vec<String>,
    /// AAD `securityEnabled`.
    pub security_enabled: Option<bool>,
    /// AAD `visibility`.
    pub visibility: Option<String>,
    /// AD `distinguishedName` (the entry's DN when the attribute is absent), so that
    /// changes written back address the group by DN on any LDAP server; AD also
    /// accepts `<GUID=…>`, which is used when this is unknown.
    pub distinguished_name: Option<String>,
}

/// Everything one upstream directory holds, mapped to directory fields. `source` names
/// the upstream (`ldap:dc=example,dc=org`, `graph:contoso`, `ldif:corp`) so that
/// deletions are detected only among records that came from the same source.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectorySnapshot {
    /// The upstream's name.
    pub source: String,
    /// Its users.
    pub users: Vec<NextUser>,
    /// Its groups, as roles.
    pub roles: Vec<NextRole>,
}

/// A record the plan leaves alone, with why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncSkip {
    /// `user` or `role`.
    pub kind: String,
    /// The record's id or name as far as it could be read.
    pub key: String,
    /// Why it was skipped (invalid name, missing id, duplicate, …).
    pub reason: String,
}

/// The changes that bring Warden's copy of one source in line with a snapshot.
/// Applying the same snapshot twice gives an empty plan the second time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncPlan {
    /// The upstream's name.
    pub source: String,
    /// Users new to Warden.
    pub create_users: Vec<NextUser>,
    /// Users whose fields changed (the whole new record).
    pub update_users: Vec<NextUser>,
    /// Ids of users of this source that the snapshot no longer has.
    pub delete_users: Vec<String>,
    /// Roles new to Warden.
    pub create_roles: Vec<NextRole>,
    /// Roles whose fields or members changed (the whole new record).
    pub update_roles: Vec<NextRole>,
    /// Names of roles of this source that the snapshot no longer has.
    pub delete_roles: Vec<String>,
    /// Records left alone.
    pub skipped: Vec<SyncSkip>,
    /// Records that matched exactly.
    pub unchanged: usize,
}

impl SyncPlan {
    /// True when applying the plan would change nothing.
    pub fn is_empty(&self) -> bool {
        self.create_users.is_empty()
            && self.update_users.is_empty()
            && self.delete_users.is_empty()
            && self.create_roles.is_empty()
            && self.update_roles.is_empty()
            && self.delete_roles.is_empty()
    }
}

/// What applying a plan did, for `--json` and the report table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    /// The upstream's name.
    pub source: String,
    /// Users created.
    pub users_created: usize,
    /// Users updated.
    pub users_updated: usize,
    /// Users deleted.
    pub users_deleted: usize,
    /// Roles created.
    pub roles_created: usize,
    /// Roles updated.
    pub roles_updated: usize,
    /// Roles deleted.
    pub roles_deleted: usize,
    /// Records skipped, with why.
    pub skipped: Vec<SyncSkip>,
    /// Records already in line.
    pub unchanged: usize,
    /// True when nothing was written (`--dry-run`).
    pub dry_run: bool,
}
