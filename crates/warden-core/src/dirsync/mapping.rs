//! The declarative field mapping between a provider's attributes (Active
//! Directory / LDAP attribute names, Microsoft Graph property names) and Warden's directory
//! fields, with the Active Directory and Azure AD field tables as the default per provider,
//! and the rules that turn a provider record into Warden's directory id and role
//! name.
//!
//! A mapping file (JSON or YAML, parsed by the caller into [`MappingFile`])
//! overrides the default field by field; [`Mapping::with_overrides`] validates it
//! and names every problem at once.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::names::{NameCase, UserName};

/// Which upstream a record comes from; picks the default mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Active Directory (LDIF export or live LDAP).
    Ad,
    /// Azure AD / Entra ID (Microsoft Graph JSON).
    Aad,
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Provider::Ad => "ad",
            Provider::Aad => "aad",
        })
    }
}

/// How a directory field takes its value from provider attribute values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldShape {
    /// The first value.
    Single,
    /// All values.
    Multi,
    /// `true` / `false` (any case).
    Bool,
    /// A reference to another object (DN or object id), resolved to a Warden id.
    Reference,
    /// References to other objects, resolved to Warden ids.
    References,
}

/// The directory user fields, with their shapes. `id` is not
/// here: it is computed by the id rule.
pub const USER_FIELDS: &[(&str, FieldShape)] = &[
    ("user_id", FieldShape::Single),
    ("created_date", FieldShape::Single),
    ("deleted_date", FieldShape::Single),
    ("account_enabled", FieldShape::Bool),
    ("business_phones", FieldShape::Multi),
    ("company_name", FieldShape::Single),
    ("country", FieldShape::Single),
    ("city", FieldShape::Single),
    ("office_location", FieldShape::Single),
    ("postal_code", FieldShape::Single),
    ("state", FieldShape::Single),
    ("department", FieldShape::Single),
    ("member_of", FieldShape::Multi),
    ("name", FieldShape::Single),
    ("employee_id", FieldShape::Single),
    ("given_name", FieldShape::Single),
    ("job_title", FieldShape::Single),
    ("email", FieldShape::Single),
    ("user_nickname", FieldShape::Single),
    ("manager", FieldShape::Reference),
    ("mobile_phone", FieldShape::Single),
    ("distinguished_name", FieldShape::Single),
    ("preferred_language", FieldShape::Single),
    ("street_address", FieldShape::Single),
    ("surname", FieldShape::Single),
    ("usage_location", FieldShape::Single),
    ("user_principal_name", FieldShape::Single),
    ("user_type", FieldShape::Single),
];

/// The role fields, with their shapes. `name` is
/// not here: it is computed by the role name rule.
pub const ROLE_FIELDS: &[(&str, FieldShape)] = &[
    ("role_id", FieldShape::Single),
    ("created_date", FieldShape::Single),
    ("deleted_date", FieldShape::Single),
    ("classification", FieldShape::Single),
    ("description", FieldShape::Single),
    ("display_name", FieldShape::Single),
    ("group_types", FieldShape::Multi),
    ("group_nickname", FieldShape::Single),
    ("mail_enabled", FieldShape::Bool),
    ("members", FieldShape::References),
    ("owners", FieldShape::References),
    ("security_enabled", FieldShape::Bool),
    ("visibility", FieldShape::Single),
    ("distinguished_name", FieldShape::Single),
];

/// The shape of a user field, if `field` is one.
pub fn user_field_shape(field: &str) -> Option<FieldShape> {
    USER_FIELDS
        .iter()
        .find(|(f, _)| *f == field)
        .map(|(_, s)| *s)
}

/// The shape of a role field, if `field` is one.
pub fn role_field_shape(field: &str) -> Option<FieldShape> {
    ROLE_FIELDS
        .iter()
        .find(|(f, _)| *f == field)
        .map(|(_, s)| *s)
}

const AD_USERS: &[(&str, &str)] = &[
    ("user_id", "objectGUID"),
    ("created_date", "whenCreated"),
    ("business_phones", "telephoneNumber"),
    ("company_name", "company"),
    ("country", "countryCode"),
    ("department", "department"),
    ("member_of", "memberOf"),
    ("name", "displayName"),
    ("employee_id", "employeeID"),
    ("given_name", "givenName"),
    ("job_title", "title"),
    ("email", "mail"),
    ("user_nickname", "cn"),
    ("manager", "manager"),
    ("mobile_phone", "mobilePhone"),
    ("distinguished_name", "distinguishedName"),
    ("preferred_language", "preferredLanguage"),
    ("street_address", "streetAddress"),
    ("user_principal_name", "userPrincipalName"),
];

const AD_ROLES: &[(&str, &str)] = &[
    ("role_id", "objectGUID"),
    ("created_date", "whenChanged"),
    ("description", "description"),
    ("display_name", "name"),
    ("group_types", "groupType"),
    ("members", "member"),
    ("owners", "managedBy"),
    ("distinguished_name", "distinguishedName"),
];

const AAD_USERS: &[(&str, &str)] = &[
    ("user_id", "id"),
    ("created_date", "createdDateTime"),
    ("deleted_date", "deletedDateTime"),
    ("account_enabled", "accountEnabled"),
    ("business_phones", "businessPhones"),
    ("company_name", "companyName"),
    ("country", "country"),
    ("city", "city"),
    ("office_location", "officeLocation"),
    ("postal_code", "postalCode"),
    ("state", "state"),
    ("department", "department"),
    ("name", "displayName"),
    ("employee_id", "employeeId"),
    ("given_name", "givenName"),
    ("job_title", "jobTitle"),
    ("email", "mail"),
    ("user_nickname", "mailNickname"),
    ("manager", "manager"),
    ("mobile_phone", "mobilePhone"),
    ("distinguished_name", "onPremisesDistinguishedName"),
    ("preferred_language", "preferredLanguage"),
    ("street_address", "streetAddress"),
    ("surname", "surname"),
    ("usage_location", "usageLocation"),
    ("user_principal_name", "userPrincipalName"),
    ("user_type", "userType"),
];

const AAD_ROLES: &[(&str, &str)] = &[
    ("role_id", "id"),
    ("created_date", "createdDateTime"),
    ("deleted_date", "deletedDateTime"),
    ("classification", "classification"),
    ("description", "description"),
    ("display_name", "displayName"),
    ("group_types", "groupTypes"),
    ("group_nickname", "mailNickname"),
    ("mail_enabled", "mailEnabled"),
    ("members", "members"),
    ("owners", "owners"),
    ("security_enabled", "securityEnabled"),
    ("visibility", "visibility"),
];

/// A provider ↔ directory mapping, validated. Attribute names are compared without
/// regard to case (LDAP attribute names are case-insensitive; Graph's are
/// matched the same way so a mapping file need not care).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mapping {
    /// The provider this mapping reads.
    pub provider: Provider,
    /// directory user field → provider attribute.
    pub users: BTreeMap<String, String>,
    /// directory role field → provider attribute.
    pub roles: BTreeMap<String, String>,
    /// Attributes tried in order for a user's Warden directory id.
    pub user_id_from: Vec<String>,
    /// Attributes tried in order for a role's Warden name.
    pub role_name_from: Vec<String>,
    /// LDAP `objectClass` values that make an entry a user (LDAP/LDIF only).
    pub user_classes: Vec<String>,
    /// LDAP `objectClass` values that make an entry a group (LDAP/LDIF only).
    pub group_classes: Vec<String>,
}

/// A mapping file: every key optional; what is given overrides the provider's
/// default. A field mapped to `null` or `""` is not synced.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MappingFile {
    /// `ad` or `aad`; when given it must match the provider being read.
    pub provider: Option<Provider>,
    /// directory user field → provider attribute (`null` to stop syncing the field).
    pub users: BTreeMap<String, Option<String>>,
    /// directory role field → provider attribute (`null` to stop syncing the field).
    pub roles: BTreeMap<String, Option<String>>,
    /// Attributes tried in order for the user's Warden directory id.
    pub user_id_from: Option<Vec<String>>,
    /// Attributes tried in order for the role's Warden name.
    pub role_name_from: Option<Vec<String>>,
    /// `objectClass` values of users.
    pub user_classes: Option<Vec<String>>,
    /// `objectClass` values of groups.
    pub group_classes: Option<Vec<String>>,
}

/// Why a mapping file was refused (every problem, one per line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid directory mapping:\n  {}", .0.join("\n  "))]
pub struct MappingError(pub Vec<String>);

fn to_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(f, a)| (f.to_string(), a.to_string()))
        .collect()
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

impl Mapping {
    /// The default mapping for `provider`.
    pub fn default_for(provider: Provider) -> Mapping {
        let (users, roles, role_name_from) = match provider {
            Provider::Ad => (AD_USERS, AD_ROLES, strings(&["cn", "name"])),
            Provider::Aad => (
                AAD_USERS,
                AAD_ROLES,
                strings(&["mailNickname", "displayName"]),
            ),
        };
        Mapping {
            provider,
            users: to_map(users),
            roles: to_map(roles),
            user_id_from: strings(&["sAMAccountName", "mailNickname", "cn"]),
            role_name_from,
            user_classes: strings(&["user", "person", "inetOrgPerson", "organizationalPerson"]),
            group_classes: strings(&["group", "groupOfNames", "groupOfUniqueNames"]),
        }
    }

    /// The default for `provider` with `file` applied on top, validated.
    pub fn with_overrides(provider: Provider, file: &MappingFile) -> Result<Mapping, MappingError> {
        let mut problems = Vec::new();
        let mut m = Mapping::default_for(provider);
        if let Some(p) = file.provider
            && p != provider
        {
            problems.push(format!(
                "the mapping file is for provider {p:?}, but the input is {provider} ({})",
                match provider {
                    Provider::Ad => "LDIF / LDAP",
                    Provider::Aad => "Microsoft Graph JSON",
                }
            ));
        }
        apply_fields(
            &mut m.users,
            &file.users,
            "users",
            user_field_shape,
            USER_FIELDS,
            &mut problems,
        );
        apply_fields(
            &mut m.roles,
            &file.roles,
            "roles",
            role_field_shape,
            ROLE_FIELDS,
            &mut problems,
        );
        for (key, value, target) in [
            ("user_id_from", &file.user_id_from, &mut m.user_id_from),
            (
                "role_name_from",
                &file.role_name_from,
                &mut m.role_name_from,
            ),
            ("user_classes", &file.user_classes, &mut m.user_classes),
            ("group_classes", &file.group_classes, &mut m.group_classes),
        ] {
            if let Some(list) = value {
                if list.is_empty() {
                    problems.push(format!("{key}: must name at least one attribute"));
                }
                for a in list {
                    if let Err(e) = check_attribute(a) {
                        problems.push(format!("{key}: {e}"));
                    }
                }
                *target = list.clone();
            }
        }
        if problems.is_empty() {
            Ok(m)
        } else {
            Err(MappingError(problems))
        }
    }

    /// The attribute a directory user field is read from, if mapped.
    pub fn user_attr(&self, field: &str) -> Option<&str> {
        self.users.get(field).map(String::as_str)
    }

    /// The attribute a directory role field is read from, if mapped.
    pub fn role_attr(&self, field: &str) -> Option<&str> {
        self.roles.get(field).map(String::as_str)
    }
}

fn apply_fields(
    target: &mut BTreeMap<String, String>,
    overrides: &BTreeMap<String, Option<String>>,
    section: &str,
    shape: fn(&str) -> Option<FieldShape>,
    known: &[(&str, FieldShape)],
    problems: &mut Vec<String>,
) {
    for (field, attr) in overrides {
        if shape(field).is_none() {
            let names: Vec<&str> = known.iter().map(|(f, _)| *f).collect();
            problems.push(format!(
                "{section}.{field}: unknown NEXT field (known: {})",
                names.join(", ")
            ));
            continue;
        }
        match attr.as_deref().map(str::trim) {
            None | Some("") => {
                target.remove(field);
            }
            Some(a) => match check_attribute(a) {
                Ok(()) => {
                    target.insert(field.clone(), a.to_string());
                }
                Err(e) => problems.push(format!("{section}.{field}: {e}")),
            },
        }
    }
}

/// An attribute / property name: letters, digits, `-`, `_`, `.`, `@`
/// (`@odata.type`), starting with a letter or `@`.
fn check_attribute(a: &str) -> Result<(), String> {
    let ok = a
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '@')
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(format!("{a:?} is not an attribute name"))
    }
}

/// Turns a provider name (`J.Smith`, `Sales Team`) into Warden's form: lowercased,
/// `.`, `-` and spaces as `_`, and a valid snake_case NATS user name. Anything
/// else (non-ASCII letters, a leading digit, …) is refused with the reason, and
/// the caller skips the record.
pub fn directory_name(raw: &str) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    for c in raw.trim().chars() {
        match c {
            'a'..='z' | '0'..='9' => out.push(c),
            'A'..='Z' => out.push(c.to_ascii_lowercase()),
            '.' | '-' | ' ' | '_' => {
                if !out.is_empty() && !out.ends_with('_') {
                    out.push('_');
                }
            }
            other => {
                return Err(format!(
                    "{raw:?} contains {other:?}, which a NATS user name cannot hold"
                ));
            }
        }
    }
    let out = out.trim_end_matches('_').to_string();
    if out.is_empty() {
        return Err(format!("{raw:?} gives an empty name"));
    }
    UserName::parse(&out, NameCase::Snake)
        .map(|_| out)
        .map_err(|e| format!("{raw:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_seed_tables() {
        let ad = Mapping::default_for(Provider::Ad);
        assert_eq!(ad.user_attr("user_id"), Some("objectGUID"));
        assert_eq!(ad.user_attr("user_nickname"), Some("cn"));
        assert_eq!(
            ad.user_attr("surname"),
            None,
            "the default mapping maps no AD attribute to surname"
        );
        assert_eq!(ad.role_attr("owners"), Some("managedBy"));
        let aad = Mapping::default_for(Provider::Aad);
        assert_eq!(
            aad.user_attr("distinguished_name"),
            Some("onPremisesDistinguishedName")
        );
        assert_eq!(aad.user_attr("member_of"), None);
        assert_eq!(aad.role_attr("group_nickname"), Some("mailNickname"));
        for (f, _) in AD_USERS.iter().chain(AAD_USERS) {
            assert!(user_field_shape(f).is_some(), "{f}");
        }
        for (f, _) in AD_ROLES.iter().chain(AAD_ROLES) {
            assert!(role_field_shape(f).is_some(), "{f}");
        }
    }

    #[test]
    fn overrides_add_change_and_remove_fields() {
        let file: MappingFile = serde_json::from_str(
            r#"{"users": {"surname": "sn", "mobile_phone": "mobile", "department": null},
                "roles": {"description": "info"},
                "user_id_from": ["uid", "cn"]}"#,
        )
        .unwrap();
        let m = Mapping::with_overrides(Provider::Ad, &file).unwrap();
        assert_eq!(m.user_attr("surname"), Some("sn"));
        assert_eq!(m.user_attr("mobile_phone"), Some("mobile"));
        assert_eq!(m.user_attr("department"), None);
        assert_eq!(m.role_attr("description"), Some("info"));
        assert_eq!(m.user_id_from, vec!["uid", "cn"]);
        assert_eq!(
            m.user_attr("job_title"),
            Some("title"),
            "untouched fields keep the default"
        );
    }

    #[test]
    fn bad_mapping_files_name_every_problem() {
        let file: MappingFile = serde_json::from_str(
            r#"{"provider": "aad", "users": {"shoe_size": "shoe", "email": "e mail"},
                "roles": {"colour": "x"}, "user_id_from": []}"#,
        )
        .unwrap();
        let err = Mapping::with_overrides(Provider::Ad, &file).unwrap_err();
        let text = err.to_string();
        assert_eq!(err.0.len(), 5, "{text}");
        assert!(
            text.contains("users.shoe_size: unknown NEXT field"),
            "{text}"
        );
        assert!(text.contains("roles.colour: unknown NEXT field"), "{text}");
        assert!(
            text.contains("\"e mail\" is not an attribute name"),
            "{text}"
        );
        assert!(text.contains("provider"), "{text}");
        assert!(
            text.contains("user_id_from: must name at least one"),
            "{text}"
        );
        // Unknown top-level keys are refused by the file's shape itself.
        assert!(serde_json::from_str::<MappingFile>(r#"{"user": {}}"#).is_err());
    }

    #[test]
    fn directory_names_are_snake_case_nats_names() {
        assert_eq!(directory_name("JSmith").unwrap(), "jsmith");
        assert_eq!(directory_name("J.Smith").unwrap(), "j_smith");
        assert_eq!(directory_name("Sales Team - EU").unwrap(), "sales_team_eu");
        assert!(directory_name("Jörg").unwrap_err().contains("'ö'"));
        assert!(directory_name("1stline").is_err());
        assert!(directory_name("...").is_err());
        assert!(directory_name(&"a".repeat(80)).is_err());
    }
}
