//! Validated names of operators, accounts and users, and the naming policy.
//!
//! Names end up as JWT `name` claims, nsc store directory and file names, and creds
//! paths, so every name is checked once here: a function that takes an
//! [`AccountName`] never re-checks it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest accepted name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// A letter-case convention a name must follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NameCase {
    /// `BACKEND`, `EMDEV_42`: the default for operators and accounts.
    ScreamingSnake,
    /// `backend`, `nats_manager`: the default for users.
    Snake,
    /// `nats-manager`.
    Kebab,
    /// `EMDEV-42`.
    ScreamingKebab,
    /// Any mix of ASCII letters, digits, `_` and `-`, starting with a letter or digit.
    Any,
}

impl NameCase {
    /// The spelling used on the command line and in errors.
    pub fn as_str(self) -> &'static str {
        match self {
            NameCase::ScreamingSnake => "SCREAMING_SNAKE_CASE",
            NameCase::Snake => "snake_case",
            NameCase::Kebab => "kebab-case",
            NameCase::ScreamingKebab => "SCREAMING-KEBAB-CASE",
            NameCase::Any => "any",
        }
    }

    fn accepts(self, name: &str) -> bool {
        let (sep, upper) = match self {
            NameCase::ScreamingSnake => ('_', Some(true)),
            NameCase::Snake => ('_', Some(false)),
            NameCase::Kebab => ('-', Some(false)),
            NameCase::ScreamingKebab => ('-', Some(true)),
            NameCase::Any => return true,
        };
        let first_ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
        let words_ok = name.split(sep).all(|w| {
            !w.is_empty()
                && w.chars().all(|c| {
                    c.is_ascii_digit()
                        || match upper {
                            Some(true) => c.is_ascii_uppercase(),
                            Some(false) => c.is_ascii_lowercase(),
                            None => c.is_ascii_alphabetic(),
                        }
                })
        });
        first_ok && words_ok
    }

    /// Best-effort conversion of `name` to this case, for "did you mean" hints.
    pub fn suggest(self, name: &str) -> String {
        let words: Vec<String> = name
            .split(|c: char| c == '_' || c == '-' || c.is_whitespace() || c == '.')
            .filter(|w| !w.is_empty())
            .map(|w| w.chars().filter(|c| c.is_ascii_alphanumeric()).collect())
            .collect();
        match self {
            NameCase::ScreamingSnake => words.join("_").to_ascii_uppercase(),
            NameCase::Snake => words.join("_").to_ascii_lowercase(),
            NameCase::Kebab => words.join("-").to_ascii_lowercase(),
            NameCase::ScreamingKebab => words.join("-").to_ascii_uppercase(),
            NameCase::Any => words.join("_"),
        }
    }
}

impl fmt::Display for NameCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NameCase {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "screaming-snake" | "screaming-snake-case" | "upper" => Ok(NameCase::ScreamingSnake),
            "snake" | "snake-case" | "lower" => Ok(NameCase::Snake),
            "kebab" | "kebab-case" => Ok(NameCase::Kebab),
            "screaming-kebab" | "screaming-kebab-case" => Ok(NameCase::ScreamingKebab),
            "any" => Ok(NameCase::Any),
            _ => Err(NameError::UnknownCase(s.to_string())),
        }
    }
}

/// What kind of entity a name belongs to (for error messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameKind {
    /// An operator.
    Operator,
    /// An account.
    Account,
    /// A user.
    User,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Operator => "operator",
            NameKind::Account => "account",
            NameKind::User => "user",
        })
    }
}

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty after trimming.
    #[error("{kind} name is empty")]
    Empty {
        /// Entity kind.
        kind: NameKind,
    },
    /// Longer than [`MAX_NAME_LEN`].
    #[error("{kind} name {name:?} is longer than {MAX_NAME_LEN} characters")]
    TooLong {
        /// Entity kind.
        kind: NameKind,
        /// The name.
        name: String,
    },
    /// Contains a character outside `A-Z a-z 0-9 _ -`, or starts with `-`/`_`.
    #[error(
        "{kind} name {name:?} may only contain ASCII letters, digits, '_' and '-', and must start with a letter or digit"
    )]
    BadCharacters {
        /// Entity kind.
        kind: NameKind,
        /// The name.
        name: String,
    },
    /// Does not follow the configured case.
    #[error("{kind} name {name:?} must be {case} (for example {suggestion:?})")]
    WrongCase {
        /// Entity kind.
        kind: NameKind,
        /// The name.
        name: String,
        /// The required case.
        case: NameCase,
        /// The name converted to the required case.
        suggestion: String,
    },
    /// Unknown case convention name.
    #[error("unknown name case {0:?}: use screaming-snake, snake, kebab, screaming-kebab or any")]
    UnknownCase(String),
}

fn check_base(kind: NameKind, raw: &str) -> Result<String, NameError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(NameError::Empty { kind });
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong {
            kind,
            name: name.to_string(),
        });
    }
    let starts_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    if !starts_ok
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(NameError::BadCharacters {
            kind,
            name: name.to_string(),
        });
    }
    Ok(name.to_string())
}

fn check_case(kind: NameKind, name: String, case: NameCase) -> Result<String, NameError> {
    if case.accepts(&name) {
        Ok(name)
    } else {
        Err(NameError::WrongCase {
            kind,
            suggestion: case.suggest(&name),
            name,
            case,
        })
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $ty(String);

        impl $ty {
            /// Checks the characters and length only (names read back from a store or
            /// an nsc import, made under another policy).
            pub fn parse_any_case(raw: &str) -> Result<Self, NameError> {
                check_base($kind, raw).map($ty)
            }
            /// Checks characters, length and the given case.
            pub fn parse(raw: &str, case: NameCase) -> Result<Self, NameError> {
                check_case($kind, check_base($kind, raw)?, case).map($ty)
            }
            /// The name.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $ty::parse_any_case(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_type!(
    /// The name of an operator.
    OperatorName,
    NameKind::Operator
);
name_type!(
    /// The name of an account.
    AccountName,
    NameKind::Account
);
name_type!(
    /// The name of a user.
    UserName,
    NameKind::User
);

/// Name of the system account, as nsc names it.
pub const SYSTEM_ACCOUNT: &str = "SYS";
/// Name of the system account's user, as nsc names it.
pub const SYSTEM_USER: &str = "sys";

/// The case each kind of name must follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamingPolicy {
    /// Operator names.
    pub operator: NameCase,
    /// Account names.
    pub account: NameCase,
    /// User names.
    pub user: NameCase,
}

impl Default for NamingPolicy {
    fn default() -> Self {
        NamingPolicy {
            operator: NameCase::ScreamingSnake,
            account: NameCase::ScreamingSnake,
            user: NameCase::Snake,
        }
    }
}

impl NamingPolicy {
    /// Validates an operator name under this policy.
    pub fn operator(&self, raw: &str) -> Result<OperatorName, NameError> {
        OperatorName::parse(raw, self.operator)
    }
    /// Validates an account name under this policy. `SYS` is always accepted.
    pub fn account(&self, raw: &str) -> Result<AccountName, NameError> {
        if raw.trim() == SYSTEM_ACCOUNT {
            return AccountName::parse_any_case(raw);
        }
        AccountName::parse(raw, self.account)
    }
    /// Validates a user name under this policy. `sys` is always accepted.
    pub fn user(&self, raw: &str) -> Result<UserName, NameError> {
        if raw.trim() == SYSTEM_USER {
            return UserName::parse_any_case(raw);
        }
        UserName::parse(raw, self.user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_accepts_conventional_names() {
        let p = NamingPolicy::default();
        assert_eq!(p.account("BACKEND").unwrap().as_str(), "BACKEND");
        assert_eq!(p.account("EMDEV_42").unwrap().as_str(), "EMDEV_42");
        assert_eq!(p.user("nats_manager").unwrap().as_str(), "nats_manager");
        assert_eq!(p.operator(" TIMETERM ").unwrap().as_str(), "TIMETERM");
        assert!(p.account("SYS").is_ok());
        assert!(p.user("sys").is_ok());
    }

    #[test]
    fn wrong_case_suggests_a_fix() {
        let p = NamingPolicy::default();
        let err = p.account("backend-api").unwrap_err();
        assert_eq!(
            err.to_string(),
            "account name \"backend-api\" must be SCREAMING_SNAKE_CASE (for example \"BACKEND_API\")"
        );
        let err = p.user("Backend").unwrap_err();
        assert!(matches!(err, NameError::WrongCase { .. }));
        assert!(p.user("nats-manager").is_err());
        assert!(p.account("A__B").is_err());
        assert!(p.account("_A").is_err());
        assert!(p.account("1A").is_err());
    }

    #[test]
    fn base_rules_apply_to_every_case() {
        for bad in [
            "", "   ", "a/b", "a b", "../x", "a.b", "ä", "-x", "x*", "x>",
        ] {
            assert!(AccountName::parse(bad, NameCase::Any).is_err(), "{bad:?}");
        }
        let long = "A".repeat(MAX_NAME_LEN + 1);
        assert!(matches!(
            AccountName::parse(&long, NameCase::Any),
            Err(NameError::TooLong { .. })
        ));
        assert!(AccountName::parse("EMDEV-1", NameCase::Any).is_ok());
        assert!(UserName::parse("nats-manager", NameCase::Kebab).is_ok());
        assert!(AccountName::parse("EMDEV-1", NameCase::ScreamingKebab).is_ok());
    }

    #[test]
    fn case_names_parse() {
        assert_eq!("snake".parse::<NameCase>().unwrap(), NameCase::Snake);
        assert_eq!(
            "SCREAMING_SNAKE".parse::<NameCase>().unwrap(),
            NameCase::ScreamingSnake
        );
        assert!("camel".parse::<NameCase>().is_err());
    }

    #[test]
    fn deserialize_validates() {
        assert!(serde_json::from_str::<AccountName>("\"a/b\"").is_err());
        assert!(serde_json::from_str::<AccountName>("\"ok\"").is_ok());
    }
}
