//! Permission templates of scoped signing keys (roles): what a user issued by a role's
//! key may publish and subscribe to, worked out the way nats-server works it out when
//! the user connects.
//!
//! A subject in a template may name functions between double braces:
//! `{{name()}}` (the user JWT's name), `{{subject()}}` (the user's public key),
//! `{{account-name()}}` (the account JWT's name), `{{account-subject()}}` (the account's
//! public key), `{{tag(KEY)}}` and `{{account-tag(KEY)}}` (every value of the user's or
//! the account's `KEY:VALUE` tags; several values make several subjects). Function
//! names and tag keys are matched without regard to case; tag values are used as the
//! JWT carries them.
//!
//! The server applies these rules (checked on 2.9.10 and 2.15.1, see
//! docs/signing-keys.md):
//! - a list without any template is kept as it is;
//! - a subject whose expansion is not a valid subject (a missing tag, an unknown
//!   function, a value with a space) is dropped from an allow list, but makes the
//!   connect fail when it is in a deny list;
//! - an allow list that was not empty and lost every subject becomes "deny `>`" (the
//!   user may do nothing in that direction, rather than everything);
//! - where a function may sit depends on the server line: 2.9 recognises it only as a
//!   whole token (`a.{{name()}}.b`) and takes `a.x{{name()}}` literally, while 2.15 also
//!   expands it inside a token ([`ServerLine`]).

use nats_jwt::{Permission, Subject, UserPermissionLimits};
use serde::Serialize;

/// The nats-server line whose template rules apply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub enum ServerLine {
    /// 2.9: a function is expanded only when it is a whole token.
    #[serde(rename = "2.9")]
    V2_9,
    /// 2.15: a function is also expanded inside a token (`a.x{{name()}}`).
    #[default]
    #[serde(rename = "2.15")]
    V2_15,
}

impl ServerLine {
    /// `2.9` or `2.15`.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerLine::V2_9 => "2.9",
            ServerLine::V2_15 => "2.15",
        }
    }

    /// The line of a version written `2.9`, `2.9.10`, `2.15.1` …: 2.15 and later use
    /// the 2.15 rules, earlier ones the 2.9 rules.
    pub fn parse(text: &str) -> Result<ServerLine, TemplateError> {
        let bad = || TemplateError::BadServerLine(text.to_string());
        let mut parts = text.trim().trim_start_matches('v').split('.');
        let major: u32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let minor: u32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        if major != 2 {
            return Err(bad());
        }
        Ok(if minor >= 15 {
            ServerLine::V2_15
        } else {
            ServerLine::V2_9
        })
    }
}

/// A template problem.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{{…}}` names no function the server knows.
    #[error(
        "subject {subject:?}: unknown template function {function:?} (known: name(), subject(), account-name(), account-subject(), tag(KEY), account-tag(KEY))"
    )]
    UnknownFunction {
        /// The subject.
        subject: String,
        /// What was between the braces.
        function: String,
    },
    /// `{{` without `}}` or the reverse.
    #[error("subject {0:?}: unbalanced template braces")]
    Unbalanced(String),
    /// `tag()` / `account-tag()` without a key.
    #[error("subject {0:?}: tag() and account-tag() need a tag key, e.g. {{{{tag(dept)}}}}")]
    EmptyTagKey(String),
    /// A deny subject expands to no valid subject: the server refuses the connect.
    #[error(
        "deny subject {subject:?} expands to an invalid subject for this user ({why}): nats-server refuses its connect"
    )]
    DenyInvalid {
        /// The template subject.
        subject: String,
        /// Why.
        why: String,
    },
    /// Not a server version.
    #[error("{0:?} is not a nats-server version (e.g. 2.9 or 2.15.1)")]
    BadServerLine(String),
}

/// A template function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Function {
    /// `{{name()}}`.
    Name,
    /// `{{subject()}}`.
    Subject,
    /// `{{account-name()}}`.
    AccountName,
    /// `{{account-subject()}}`.
    AccountSubject,
    /// `{{tag(KEY)}}` (key lower-cased).
    Tag(String),
    /// `{{account-tag(KEY)}}` (key lower-cased).
    AccountTag(String),
}

/// How a template subject uses functions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// It names at least one function.
    pub templated: bool,
    /// Some function shares its token with other text (`a.x{{name()}}`): expanded only
    /// by nats-server 2.15, taken literally by 2.9.
    pub inside_token: bool,
}

fn parse_function(subject: &str, inner: &str) -> Result<Function, TemplateError> {
    let op = inner.to_lowercase();
    let unknown = || TemplateError::UnknownFunction {
        subject: subject.to_string(),
        function: inner.to_string(),
    };
    let tag = |prefix: &str| -> Result<Option<String>, TemplateError> {
        match op.strip_prefix(prefix).and_then(|r| r.strip_suffix(')')) {
            Some("") => Err(TemplateError::EmptyTagKey(subject.to_string())),
            Some(k) => Ok(Some(k.to_string())),
            None => Ok(None),
        }
    };
    Ok(match op.as_str() {
        "name()" => Function::Name,
        "subject()" => Function::Subject,
        "account-name()" => Function::AccountName,
        "account-subject()" => Function::AccountSubject,
        _ => {
            if let Some(k) = tag("account-tag(")? {
                Function::AccountTag(k)
            } else if let Some(k) = tag("tag(")? {
                Function::Tag(k)
            } else {
                return Err(unknown());
            }
        }
    })
}

/// A piece of a token: literal text or a function.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Func(Function),
}

/// Splits a token into text and `{{…}}` functions.
fn pieces(subject: &str, token: &str) -> Result<Vec<Piece>, TemplateError> {
    let mut out = Vec::new();
    let mut rest = token;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| TemplateError::Unbalanced(subject.to_string()))?;
        if start > 0 {
            out.push(Piece::Text(rest[..start].to_string()));
        }
        out.push(Piece::Func(parse_function(subject, &after[..end])?));
        rest = &after[end + 2..];
    }
    if rest.contains("}}") {
        return Err(TemplateError::Unbalanced(subject.to_string()));
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest.to_string()));
    }
    Ok(out)
}

/// Checks a template subject (functions known, braces balanced) and says how it uses
/// functions.
pub fn check_subject(subject: &str) -> Result<Usage, TemplateError> {
    let mut usage = Usage::default();
    let text = subject.split(' ').next().unwrap_or(subject);
    for token in text.split('.') {
        let ps = pieces(subject, token)?;
        let funcs = ps.iter().filter(|p| matches!(p, Piece::Func(_))).count();
        if funcs > 0 {
            usage.templated = true;
            if ps.len() > 1 {
                usage.inside_token = true;
            }
        }
    }
    Ok(usage)
}

/// Checks every subject of a template; the usage of the whole template.
pub fn check_template(template: &UserPermissionLimits) -> Result<Usage, TemplateError> {
    let p = &template.permissions;
    let mut usage = Usage::default();
    for s in p
        .publish
        .allow
        .iter()
        .chain(&p.publish.deny)
        .chain(&p.subscribe.allow)
        .chain(&p.subscribe.deny)
    {
        let u = check_subject(s.as_str())?;
        usage.templated |= u.templated;
        usage.inside_token |= u.inside_token;
    }
    Ok(usage)
}

/// Who a template is expanded for.
#[derive(Clone, Debug)]
pub struct Context<'a> {
    /// The user JWT's `name`.
    pub user_name: &'a str,
    /// The user's public key.
    pub user_key: &'a str,
    /// The account JWT's `name`.
    pub account_name: &'a str,
    /// The account's public key (the user JWT's `issuer_account`).
    pub account_key: &'a str,
    /// The user JWT's tags (`key:value`).
    pub user_tags: &'a [String],
    /// The account JWT's tags.
    pub account_tags: &'a [String],
}

fn tag_values(tags: &[String], key: &str) -> Vec<String> {
    let prefix = format!("{key}:");
    tags.iter()
        .filter_map(|t| t.strip_prefix(&prefix).map(str::to_string))
        .collect()
}

/// The values a function stands for (several for a tag with several values, none for
/// a missing tag).
fn values(f: &Function, ctx: &Context<'_>) -> Vec<String> {
    match f {
        Function::Name => vec![ctx.user_name.to_string()],
        Function::Subject => vec![ctx.user_key.to_string()],
        Function::AccountName => vec![ctx.account_name.to_string()],
        Function::AccountSubject => vec![ctx.account_key.to_string()],
        Function::Tag(k) => tag_values(ctx.user_tags, k),
        Function::AccountTag(k) => tag_values(ctx.account_tags, k),
    }
}

/// Whether nats-server takes `s` as a valid subject (non-empty tokens, no white space,
/// `>` only last).
fn server_valid(s: &str) -> bool {
    if s.is_empty()
        || s.chars()
            .any(|c| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c'))
    {
        return false;
    }
    let tokens: Vec<&str> = s.split('.').collect();
    tokens
        .iter()
        .enumerate()
        .all(|(i, t)| !t.is_empty() && (*t != ">" || i + 1 == tokens.len()))
}

/// The subjects one template subject expands to for `ctx` on `line`; `Err` says why it
/// expands to nothing valid.
fn expand_subject(
    subject: &Subject,
    ctx: &Context<'_>,
    line: ServerLine,
) -> Result<Vec<Subject>, String> {
    let full = subject.as_str();
    // A queue group (`"subject queue"`) is text the server splits on '.' with the rest.
    let mut alternatives: Vec<String> = vec![String::new()];
    for (i, token) in full.split('.').enumerate() {
        let ps = pieces(full, token).map_err(|e| e.to_string())?;
        let whole = ps.len() == 1 && matches!(ps[0], Piece::Func(_));
        let expand =
            whole || (line == ServerLine::V2_15 && ps.iter().any(|p| matches!(p, Piece::Func(_))));
        let mut options: Vec<String> = vec![String::new()];
        if expand {
            for p in &ps {
                let vals = match p {
                    Piece::Text(t) => vec![t.clone()],
                    Piece::Func(f) => {
                        let v = values(f, ctx);
                        if v.is_empty() {
                            return Err(match f {
                                Function::Tag(k) => format!("the user has no tag {k}:…"),
                                Function::AccountTag(k) => format!("the account has no tag {k}:…"),
                                _ => "an empty value".to_string(),
                            });
                        }
                        v
                    }
                };
                options = options
                    .iter()
                    .flat_map(|o| vals.iter().map(move |v| format!("{o}{v}")))
                    .collect();
            }
        } else {
            options = vec![token.to_string()];
        }
        alternatives = alternatives
            .iter()
            .flat_map(|a| {
                options.iter().map(move |o| {
                    if i == 0 {
                        o.clone()
                    } else {
                        format!("{a}.{o}")
                    }
                })
            })
            .collect();
    }
    let mut out = Vec::new();
    for a in alternatives {
        let subject_part = a.split(' ').next().unwrap_or(&a);
        let queue_ok = a.split(' ').count() <= 2;
        if !(server_valid(subject_part) && queue_ok) {
            return Err(format!("{a:?} is not a valid subject"));
        }
        let s = Subject::new(&a).map_err(|e| e.to_string())?;
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

fn has_function(subject: &Subject, line: ServerLine) -> bool {
    subject.as_str().split('.').any(|t| match line {
        ServerLine::V2_9 => t.starts_with("{{") && t.ends_with("}}"),
        ServerLine::V2_15 => t.contains("{{") && t.contains("}}"),
    })
}

/// One subject of a template that the expansion dropped, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Dropped {
    /// `pub allow` or `sub allow`.
    pub list: &'static str,
    /// The template subject.
    pub subject: String,
    /// Why it expands to nothing valid.
    pub why: String,
}

/// A template expanded for one user.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Expanded {
    /// The permissions and limits the server enforces for that user.
    pub limits: UserPermissionLimits,
    /// Allow subjects dropped (the user is not granted them).
    pub dropped: Vec<Dropped>,
}

fn expand_list(
    list: &[Subject],
    name: &'static str,
    deny: bool,
    ctx: &Context<'_>,
    line: ServerLine,
    dropped: &mut Vec<Dropped>,
) -> Result<Vec<Subject>, TemplateError> {
    if !list.iter().any(|s| has_function(s, line)) {
        return Ok(list.to_vec());
    }
    let mut out: Vec<Subject> = Vec::new();
    for s in list {
        match expand_subject(s, ctx, line) {
            Ok(v) => out.extend(v),
            Err(why) if deny => {
                return Err(TemplateError::DenyInvalid {
                    subject: s.to_string(),
                    why,
                });
            }
            Err(why) => dropped.push(Dropped {
                list: name,
                subject: s.to_string(),
                why,
            }),
        }
    }
    Ok(out)
}

fn expand_permission(
    p: &Permission,
    dir: &'static str,
    ctx: &Context<'_>,
    line: ServerLine,
    dropped: &mut Vec<Dropped>,
) -> Result<Permission, TemplateError> {
    let allow = expand_list(&p.allow, dir, false, ctx, line, dropped)?;
    let mut deny = expand_list(&p.deny, dir, true, ctx, line, dropped)?;
    if !p.allow.is_empty() && allow.is_empty() {
        // What was "only these" must not become "everything".
        let all = Subject::new(">").map_err(|e| TemplateError::Unbalanced(e.to_string()))?;
        if !deny.contains(&all) {
            deny.push(all);
        }
    }
    Ok(Permission { allow, deny })
}

/// The permissions and limits nats-server enforces for the user of `ctx` issued by a
/// key with `template`; `Err` when the server refuses the user's connect.
pub fn expand(
    template: &UserPermissionLimits,
    ctx: &Context<'_>,
    line: ServerLine,
) -> Result<Expanded, TemplateError> {
    let mut dropped = Vec::new();
    let mut limits = template.clone();
    let p = &template.permissions;
    limits.permissions.publish =
        expand_permission(&p.publish, "pub allow", ctx, line, &mut dropped)?;
    limits.permissions.subscribe =
        expand_permission(&p.subscribe, "sub allow", ctx, line, &mut dropped)?;
    Ok(Expanded { limits, dropped })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subj(s: &str) -> Subject {
        Subject::new(s).unwrap()
    }

    fn ctx<'a>(tags: &'a [String], acc_tags: &'a [String]) -> Context<'a> {
        Context {
            user_name: "alice",
            user_key: "UKEY",
            account_name: "APP",
            account_key: "AKEY",
            user_tags: tags,
            account_tags: acc_tags,
        }
    }

    fn template(pub_allow: &[&str], pub_deny: &[&str]) -> UserPermissionLimits {
        let mut t = UserPermissionLimits::unlimited();
        t.permissions.publish.allow = pub_allow.iter().map(|s| subj(s)).collect();
        t.permissions.publish.deny = pub_deny.iter().map(|s| subj(s)).collect();
        t
    }

    fn allow(e: &Expanded) -> Vec<&str> {
        e.limits
            .permissions
            .publish
            .allow
            .iter()
            .map(|s| s.as_str())
            .collect()
    }

    #[test]
    fn functions_expand_as_whole_tokens() {
        let tags = vec!["dept:eng".to_string(), "dept:ops".to_string()];
        let acc_tags = vec!["region:eu".to_string()];
        let t = template(
            &[
                "u.{{name()}}.>",
                "k.{{subject()}}",
                "a.{{account-name()}}.{{account-subject()}}",
                "d.{{tag(dept)}}",
                "r.{{account-tag(REGION)}}",
                "plain",
            ],
            &[],
        );
        let e = expand(&t, &ctx(&tags, &acc_tags), ServerLine::V2_9).unwrap();
        assert_eq!(
            allow(&e),
            [
                "u.alice.>",
                "k.UKEY",
                "a.APP.AKEY",
                "d.eng",
                "d.ops",
                "r.eu",
                "plain"
            ]
        );
        assert!(e.dropped.is_empty());
    }

    #[test]
    fn function_names_ignore_case() {
        let t = template(&["u.{{Name()}}"], &[]);
        let e = expand(&t, &ctx(&[], &[]), ServerLine::V2_9).unwrap();
        assert_eq!(allow(&e), ["u.alice"]);
    }

    #[test]
    fn several_tags_make_a_product() {
        let tags = vec!["a:1".to_string(), "a:2".to_string(), "b:x".to_string()];
        let t = template(&["{{tag(a)}}.{{tag(b)}}"], &[]);
        let e = expand(&t, &ctx(&tags, &[]), ServerLine::V2_9).unwrap();
        assert_eq!(allow(&e), ["1.x", "2.x"]);
    }

    #[test]
    fn missing_tag_drops_an_allow_and_refuses_a_deny() {
        let t = template(&["d.{{tag(dept)}}"], &[]);
        let e = expand(&t, &ctx(&[], &[]), ServerLine::V2_9).unwrap();
        assert!(allow(&e).is_empty());
        assert_eq!(e.dropped.len(), 1);
        assert_eq!(
            e.limits.permissions.publish.deny,
            vec![subj(">")],
            "an allow list emptied by the expansion becomes deny >"
        );
        let t = template(&[], &["d.{{tag(dept)}}"]);
        assert!(matches!(
            expand(&t, &ctx(&[], &[]), ServerLine::V2_9),
            Err(TemplateError::DenyInvalid { .. })
        ));
    }

    #[test]
    fn inside_a_token_depends_on_the_line() {
        let tags = vec!["x:1".to_string()];
        let t = template(&["foo.{{name()}}x", "a.b{{tag(x)}}"], &[]);
        let old = expand(&t, &ctx(&tags, &[]), ServerLine::V2_9).unwrap();
        assert_eq!(allow(&old), ["foo.{{name()}}x", "a.b{{tag(x)}}"]);
        let new = expand(&t, &ctx(&tags, &[]), ServerLine::V2_15).unwrap();
        assert_eq!(allow(&new), ["foo.alicex", "a.b1"]);
    }

    #[test]
    fn checks_name_unknown_functions_and_inside_tokens() {
        assert!(matches!(
            check_subject("a.{{nope()}}"),
            Err(TemplateError::UnknownFunction { .. })
        ));
        assert!(matches!(
            check_subject("a.{{tag()}}"),
            Err(TemplateError::EmptyTagKey(_))
        ));
        assert!(matches!(
            check_subject("a.{{name()"),
            Err(TemplateError::Unbalanced(_))
        ));
        assert_eq!(
            check_subject("a.x{{name()}}").unwrap(),
            Usage {
                templated: true,
                inside_token: true
            }
        );
        assert_eq!(
            check_subject("a.{{name()}}").unwrap(),
            Usage {
                templated: true,
                inside_token: false
            }
        );
        assert_eq!(check_subject("a.b").unwrap(), Usage::default());
    }

    #[test]
    fn server_lines_parse() {
        assert_eq!(ServerLine::parse("2.9.10").unwrap(), ServerLine::V2_9);
        assert_eq!(ServerLine::parse("2.15.1").unwrap(), ServerLine::V2_15);
        assert_eq!(ServerLine::parse("v2.16").unwrap(), ServerLine::V2_15);
        assert!(ServerLine::parse("x").is_err());
    }
}
