//! NATS subjects as used in permissions, exports, imports and mappings.
//!
//! A [`Subject`] is validated on construction: dot-separated non-empty tokens, `*` and `>` only
//! as whole tokens, `>` only last, no whitespace or control characters, except the
//! subscribe-permission queue form `"subject queue"` (one space, queue without wildcards).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not a valid subject. Messages name the subject and the problem.
#[derive(thiserror::Error, Debug, PartialEq, Eq, Clone)]
pub enum SubjectError {
    /// The subject is empty.
    #[error("subject is empty")]
    Empty,
    /// A token between dots is empty (leading, trailing or double dot).
    #[error("subject {0:?} has an empty token")]
    EmptyToken(String),
    /// `*` or `>` appears inside a token rather than as the whole token.
    #[error("subject {0:?} uses a wildcard inside a token; `*` and `>` must be whole tokens")]
    PartialWildcard(String),
    /// `>` is followed by more tokens.
    #[error("subject {0:?} has `>` before the last token")]
    FullWildcardNotLast(String),
    /// Whitespace or a control character other than the single queue separator.
    #[error("subject {0:?} contains whitespace or a control character")]
    BadCharacter(String),
    /// The queue part of `"subject queue"` is invalid.
    #[error("subject {0:?} has an invalid queue name (it must be non-empty, without wildcards)")]
    BadQueue(String),
}

/// A validated NATS subject, optionally with a queue group (`"subject queue"`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subject(String);

fn bad_char(c: char) -> bool {
    c.is_whitespace() || c.is_control()
}

fn check_subject_part(full: &str, subject: &str) -> Result<(), SubjectError> {
    if subject.is_empty() {
        return Err(SubjectError::EmptyToken(full.to_string()));
    }
    let tokens: Vec<&str> = subject.split('.').collect();
    let last = tokens.len() - 1;
    for (i, t) in tokens.iter().enumerate() {
        if t.is_empty() {
            return Err(SubjectError::EmptyToken(full.to_string()));
        }
        if t.chars().any(bad_char) {
            return Err(SubjectError::BadCharacter(full.to_string()));
        }
        if *t == ">" {
            if i != last {
                return Err(SubjectError::FullWildcardNotLast(full.to_string()));
            }
        } else if *t != "*" && (t.contains('*') || t.contains('>')) {
            return Err(SubjectError::PartialWildcard(full.to_string()));
        }
    }
    Ok(())
}

impl Subject {
    /// Validates and wraps a subject string.
    pub fn new(s: &str) -> Result<Subject, SubjectError> {
        if s.is_empty() {
            return Err(SubjectError::Empty);
        }
        match s.split_once(' ') {
            None => check_subject_part(s, s)?,
            Some((subject, queue)) => {
                check_subject_part(s, subject)?;
                if queue.is_empty() || queue.contains(' ') {
                    return Err(SubjectError::BadCharacter(s.to_string()));
                }
                if queue.chars().any(bad_char) {
                    return Err(SubjectError::BadCharacter(s.to_string()));
                }
                if queue.contains('*') || queue.contains('>') {
                    return Err(SubjectError::BadQueue(s.to_string()));
                }
            }
        }
        Ok(Subject(s.to_string()))
    }

    /// The subject text (including a queue part, if any).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The subject without its queue part.
    pub fn subject(&self) -> &str {
        self.0.split_once(' ').map_or(&self.0, |(s, _)| s)
    }

    /// The queue group of the `"subject queue"` form.
    pub fn queue(&self) -> Option<&str> {
        self.0.split_once(' ').map(|(_, q)| q)
    }

    /// Whether any token is `*` or `>`.
    pub fn has_wildcards(&self) -> bool {
        self.tokens().any(|t| t == "*" || t == ">")
    }

    /// The dot-separated tokens of the subject part.
    pub fn tokens(&self) -> impl Iterator<Item = &str> {
        self.subject().split('.')
    }

    /// True when every literal subject matched by `self` is also matched by `other`.
    /// Queue parts are ignored.
    pub fn is_subset_of(&self, other: &Subject) -> bool {
        let mine: Vec<&str> = self.tokens().collect();
        let theirs: Vec<&str> = other.tokens().collect();
        for (i, o) in theirs.iter().enumerate() {
            let Some(m) = mine.get(i) else {
                return false;
            };
            match (*m, *o) {
                (_, ">") => return true,
                (">", _) => return false,
                (_, "*") => {}
                ("*", _) => return false,
                (a, b) if a == b => {}
                _ => return false,
            }
        }
        mine.len() == theirs.len()
    }

    /// Whether this (possibly wildcard) subject matches the literal subject `literal`.
    /// Returns false when `literal` is not a valid subject. If `literal` itself has
    /// wildcards, the answer is whether all subjects it stands for are matched.
    pub fn matches(&self, literal: &str) -> bool {
        Subject::new(literal).is_ok_and(|l| l.queue().is_none() && l.is_subset_of(self))
    }

    /// Whether two subjects can match a common literal subject.
    pub fn overlaps(&self, other: &Subject) -> bool {
        let a: Vec<&str> = self.tokens().collect();
        let b: Vec<&str> = other.tokens().collect();
        for i in 0..a.len().max(b.len()) {
            match (a.get(i), b.get(i)) {
                (Some(&">"), Some(_)) | (Some(_), Some(&">")) => return true,
                (Some(&"*"), Some(_)) | (Some(_), Some(&"*")) => {}
                (Some(x), Some(y)) if x == y => {}
                _ => return false,
            }
        }
        true
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Subject {
    type Err = SubjectError;
    fn from_str(s: &str) -> Result<Self, SubjectError> {
        Subject::new(s)
    }
}

impl Serialize for Subject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Subject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Subject::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Subject {
        Subject::new(x).unwrap()
    }

    #[test]
    fn valid_and_invalid_table() {
        for ok in [
            "foo",
            "foo.bar",
            "foo.*",
            "foo.>",
            ">",
            "*",
            "*.*.>",
            "$SYS.REQ.ACCOUNT.*.*",
            "_INBOX.>",
            "foo.bar q1",
            "foo.* workers",
            "a-b_c.d",
        ] {
            assert!(Subject::new(ok).is_ok(), "{ok} should be valid");
        }
        let bad: &[(&str, SubjectError)] = &[
            ("", SubjectError::Empty),
            ("foo.", SubjectError::EmptyToken("foo.".into())),
            (".foo", SubjectError::EmptyToken(".foo".into())),
            ("foo..bar", SubjectError::EmptyToken("foo..bar".into())),
            ("foo*", SubjectError::PartialWildcard("foo*".into())),
            ("foo.b>", SubjectError::PartialWildcard("foo.b>".into())),
            (
                "foo.>.bar",
                SubjectError::FullWildcardNotLast("foo.>.bar".into()),
            ),
            ("foo\tbar", SubjectError::BadCharacter("foo\tbar".into())),
            ("foo\nbar", SubjectError::BadCharacter("foo\nbar".into())),
            (
                "foo bar baz",
                SubjectError::BadCharacter("foo bar baz".into()),
            ),
            ("foo  q", SubjectError::BadCharacter("foo  q".into())),
            ("foo ", SubjectError::BadCharacter("foo ".into())),
            (" foo", SubjectError::EmptyToken(" foo".into())),
            ("foo q*", SubjectError::BadQueue("foo q*".into())),
            ("foo q.>", SubjectError::BadQueue("foo q.>".into())),
        ];
        for (input, err) in bad {
            assert_eq!(Subject::new(input).as_ref(), Err(err), "{input:?}");
        }
        let msg = Subject::new("foo..bar").unwrap_err().to_string();
        assert!(
            msg.contains("foo..bar") && msg.contains("empty token"),
            "{msg}"
        );
    }

    #[test]
    fn queue_and_wildcards() {
        assert_eq!(s("foo.bar q1").queue(), Some("q1"));
        assert_eq!(s("foo.bar").queue(), None);
        assert!(s("foo.*").has_wildcards());
        assert!(s("foo.>").has_wildcards());
        assert!(!s("foo.bar q1").has_wildcards());
    }

    #[test]
    fn subset_table() {
        let table = [
            ("foo", "foo", true),
            ("foo", "bar", false),
            ("foo.bar", "foo.*", true),
            ("foo.bar", "foo.>", true),
            ("foo.bar.baz", "foo.>", true),
            ("foo", "foo.>", false),
            ("foo.*", "foo.>", true),
            ("foo.>", "foo.>", true),
            ("foo.>", "foo.*", false),
            ("foo.*", "foo.bar", false),
            ("foo.*", "foo.*", true),
            ("foo.*.baz", "foo.>", true),
            ("foo.*.baz", "*.*.*", true),
            ("foo.bar", "*", false),
            ("foo", ">", true),
            (">", ">", true),
            (">", "foo.>", false),
            ("foo.bar.baz", "foo.*", false),
        ];
        for (a, b, want) in table {
            assert_eq!(s(a).is_subset_of(&s(b)), want, "{a} ⊆ {b}");
        }
    }

    #[test]
    fn matches_table() {
        let table = [
            ("foo.*", "foo.bar", true),
            ("foo.*", "foo.bar.baz", false),
            ("foo.>", "foo.bar.baz", true),
            ("foo.>", "foo", false),
            (">", "anything.at.all", true),
            ("foo.bar", "foo.bar", true),
            ("foo.bar", "foo.baz", false),
            ("foo.*", "not valid..", false),
            ("*.bar", "foo.bar", true),
        ];
        for (pattern, lit, want) in table {
            assert_eq!(s(pattern).matches(lit), want, "{pattern} ~ {lit}");
        }
    }

    #[test]
    fn overlap_table() {
        assert!(s("foo.*").overlaps(&s("*.bar")));
        assert!(s("foo.>").overlaps(&s("foo.bar")));
        assert!(!s("foo.bar").overlaps(&s("foo.baz")));
        assert!(!s("foo").overlaps(&s("foo.bar")));
    }

    #[test]
    fn serde_validates() {
        assert!(serde_json::from_str::<Subject>("\"foo.>\"").is_ok());
        assert!(serde_json::from_str::<Subject>("\"foo..\"").is_err());
        assert_eq!(serde_json::to_string(&s("a.b")).unwrap(), "\"a.b\"");
    }
}
