//! Declared JetStream streams: the spec people write (YAML or JSON, parsed by the
//! caller), its validation (every problem listed at once), and the plan that
//! compares each declared stream with what the server reports — create, update,
//! unchanged, or "needs recreate" for fields JetStream cannot change in place.
//!
//! No I/O: the `warden` binary reads the file, asks the server for the current
//! configuration, and carries the plan out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::names::AccountName;
use crate::parse::{parse_duration_ns, parse_size};

/// A streams spec file: `streams: [...]`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StreamsSpec {
    /// The declared streams.
    #[serde(default)]
    pub streams: Vec<RawStream>,
}

/// A size or count as people write it: a number or text such as `1G`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum SizeValue {
    /// A plain number (`-1` = unlimited).
    Number(i64),
    /// Text parsed by [`parse_size`].
    Text(String),
}

/// One stream as written in the spec (unvalidated).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawStream {
    /// Stream name.
    pub name: String,
    /// The account whose JetStream holds the stream.
    pub account: String,
    /// Subjects captured (wildcards allowed).
    #[serde(default)]
    pub subjects: Vec<String>,
    /// `limits` (default), `interest` or `workqueue`.
    pub retention: Option<String>,
    /// `file` (default) or `memory`.
    pub storage: Option<String>,
    /// Maximum age of a message (`7d`, `24h`); absent = unlimited.
    pub max_age: Option<String>,
    /// Maximum bytes held; absent = unlimited.
    pub max_bytes: Option<SizeValue>,
    /// Maximum messages held; absent = unlimited.
    pub max_msgs: Option<i64>,
    /// Maximum size of one message; absent = unlimited.
    pub max_msg_size: Option<SizeValue>,
    /// Replicas (1 on a single server).
    pub replicas: Option<i64>,
    /// `old` (default) or `new`.
    pub discard: Option<String>,
    /// Window of duplicate detection (`2m`); absent = the server's default.
    pub duplicate_window: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Publishers get no acknowledgement. nats-server 2.10+ requires it for a
    /// subject whose leading wildcard also matches its API (`*.events.>` matches
    /// `$JS.…`); 2.9 does not.
    #[serde(default)]
    pub no_ack: bool,
}

/// Namespaces of the server's own APIs a stream may capture only with `no_ack`.
pub const SERVER_API_NAMESPACES: [&str; 4] = ["$JS.>", "$JSC.>", "$NRG.>", "$SYS.>"];

/// Retention policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Retention {
    /// Kept until a limit is reached.
    Limits,
    /// Kept while a consumer is interested.
    Interest,
    /// Removed once acknowledged.
    Workqueue,
}

/// Storage backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    /// On disk.
    File,
    /// In memory.
    Memory,
}

/// What happens when a limit is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Discard {
    /// Old messages are dropped.
    Old,
    /// New messages are refused.
    New,
}

/// A stream's configuration, in the terms Warden compares (declared or reported).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StreamConfig {
    /// Subjects, sorted.
    pub subjects: Vec<String>,
    /// Retention.
    pub retention: Retention,
    /// Storage.
    pub storage: Storage,
    /// Max age in nanoseconds (0 = unlimited).
    pub max_age_ns: i64,
    /// Max bytes (-1 = unlimited).
    pub max_bytes: i64,
    /// Max messages (-1 = unlimited).
    pub max_msgs: i64,
    /// Max message size (-1 = unlimited).
    pub max_msg_size: i64,
    /// Replicas.
    pub replicas: i64,
    /// Discard policy.
    pub discard: Discard,
    /// Duplicate window in nanoseconds; `None` in a declaration = the server's default.
    pub duplicate_window_ns: Option<i64>,
    /// Description.
    pub description: Option<String>,
    /// No acknowledgements to publishers.
    pub no_ack: bool,
}

/// A validated stream declaration.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StreamDecl {
    /// Stream name.
    pub name: String,
    /// Account name (canonical).
    pub account: String,
    /// Declared configuration.
    pub config: StreamConfig,
}

/// One problem of a spec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SpecProblem {
    /// Where: `streams[i]` or `streams[i].field`.
    pub at: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for SpecProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

/// Whether `name` is a JetStream stream name Warden accepts: letters, digits, `-`
/// and `_` (names become subjects tokens and file names on the server).
pub fn valid_stream_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Whether two (wildcard) subjects can match one same literal subject.
pub fn subjects_overlap(a: &str, b: &str) -> bool {
    let ta: Vec<&str> = a.split('.').collect();
    let tb: Vec<&str> = b.split('.').collect();
    for i in 0..ta.len().max(tb.len()) {
        match (ta.get(i), tb.get(i)) {
            (Some(&">"), Some(_)) | (Some(_), Some(&">")) => return true,
            (Some(&"*"), Some(_)) | (Some(_), Some(&"*")) => {}
            (Some(x), Some(y)) if x == y => {}
            _ => return false,
        }
    }
    true
}

fn parse_choice<T: Copy>(
    problems: &mut Vec<SpecProblem>,
    at: &str,
    value: Option<&str>,
    default: T,
    choices: &[(&str, T)],
) -> T {
    let Some(v) = value else { return default };
    match choices
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(v.trim()))
    {
        Some((_, t)) => *t,
        None => {
            let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
            problems.push(SpecProblem {
                at: at.to_string(),
                message: format!("{v:?} is not one of {}", names.join(", ")),
            });
            default
        }
    }
}

fn parse_size_value(
    problems: &mut Vec<SpecProblem>,
    at: &str,
    v: Option<&SizeValue>,
    max: i64,
) -> i64 {
    let n = match v {
        None => return -1,
        Some(SizeValue::Number(n)) => Ok(*n),
        Some(SizeValue::Text(t)) => parse_size(t).map_err(|e| e.to_string()),
    };
    match n {
        Ok(n) if n == -1 || (n > 0 && n <= max) => n,
        Ok(n) => {
            problems.push(SpecProblem {
                at: at.to_string(),
                message: format!("{n} must be -1 (unlimited) or between 1 and {max}"),
            });
            -1
        }
        Err(e) => {
            problems.push(SpecProblem {
                at: at.to_string(),
                message: e,
            });
            -1
        }
    }
}

fn parse_dur(problems: &mut Vec<SpecProblem>, at: &str, v: Option<&str>) -> Option<i64> {
    let v = v?;
    match parse_duration_ns(v) {
        Ok(n) if n >= 0 => Some(n),
        Ok(_) | Err(_) => {
            problems.push(SpecProblem {
                at: at.to_string(),
                message: format!("{v:?} is not a duration (e.g. 30s, 24h, 7d)"),
            });
            None
        }
    }
}

/// Validates a spec; on failure returns every problem found.
pub fn validate(spec: &StreamsSpec) -> Result<Vec<StreamDecl>, Vec<SpecProblem>> {
    let mut problems = Vec::new();
    let mut decls: Vec<StreamDecl> = Vec::new();
    if spec.streams.is_empty() {
        problems.push(SpecProblem {
            at: "streams".into(),
            message: "no stream declared".into(),
        });
    }
    for (i, s) in spec.streams.iter().enumerate() {
        let at = |f: &str| format!("streams[{i}].{f}");
        let mut p = |f: &str, m: String| {
            problems.push(SpecProblem {
                at: at(f),
                message: m,
            })
        };
        if !valid_stream_name(&s.name) {
            p(
                "name",
                format!(
                    "{:?} is not a stream name (letters, digits, - and _, at most 255)",
                    s.name
                ),
            );
        }
        let account = match AccountName::parse_any_case(&s.account) {
            Ok(a) => a.to_string(),
            Err(e) => {
                p("account", e.to_string());
                s.account.clone()
            }
        };
        if s.subjects.is_empty() {
            p("subjects", "at least one subject is needed".into());
        }
        let mut subjects = Vec::new();
        for (j, subj) in s.subjects.iter().enumerate() {
            match nats_jwt::subject::Subject::new(subj) {
                Ok(x) if x.queue().is_none() => {
                    if subj.starts_with("$JS.") || subj.starts_with("$SYS.") || subj == ">" {
                        p(
                            &format!("subjects[{j}]"),
                            format!("{subj:?} would capture the server's own subjects"),
                        );
                    } else if !s.no_ack
                        && let Some(ns) = SERVER_API_NAMESPACES
                            .iter()
                            .find(|ns| subjects_overlap(subj, ns))
                    {
                        p(
                            &format!("subjects[{j}]"),
                            format!(
                                "{subj:?} also matches the server's {ns} subjects: nats-server 2.10+ refuses it unless the stream sets no_ack: true (publishers then get no acknowledgement), or list literal prefixes instead"
                            ),
                        );
                    } else if subjects.contains(subj) {
                        p(&format!("subjects[{j}]"), format!("{subj:?} is repeated"));
                    } else {
                        subjects.push(subj.clone());
                    }
                }
                Ok(_) => p(
                    &format!("subjects[{j}]"),
                    format!("{subj:?}: a stream subject has no queue group"),
                ),
                Err(e) => p(&format!("subjects[{j}]"), e.to_string()),
            }
        }
        subjects.sort();
        let mut problems_here = Vec::new();
        let retention = parse_choice(
            &mut problems_here,
            &at("retention"),
            s.retention.as_deref(),
            Retention::Limits,
            &[
                ("limits", Retention::Limits),
                ("interest", Retention::Interest),
                ("workqueue", Retention::Workqueue),
            ],
        );
        let storage = parse_choice(
            &mut problems_here,
            &at("storage"),
            s.storage.as_deref(),
            Storage::File,
            &[("file", Storage::File), ("memory", Storage::Memory)],
        );
        let discard = parse_choice(
            &mut problems_here,
            &at("discard"),
            s.discard.as_deref(),
            Discard::Old,
            &[("old", Discard::Old), ("new", Discard::New)],
        );
        let max_age_ns = parse_dur(&mut problems_here, &at("max_age"), s.max_age.as_deref());
        let duplicate_window_ns = parse_dur(
            &mut problems_here,
            &at("duplicate_window"),
            s.duplicate_window.as_deref(),
        );
        let max_bytes = parse_size_value(
            &mut problems_here,
            &at("max_bytes"),
            s.max_bytes.as_ref(),
            i64::MAX,
        );
        let max_msg_size = parse_size_value(
            &mut problems_here,
            &at("max_msg_size"),
            s.max_msg_size.as_ref(),
            i64::from(i32::MAX),
        );
        let max_msgs = match s.max_msgs {
            None => -1,
            Some(n) if n == -1 || n > 0 => n,
            Some(n) => {
                problems_here.push(SpecProblem {
                    at: at("max_msgs"),
                    message: format!("{n} must be -1 (unlimited) or positive"),
                });
                -1
            }
        };
        let replicas = match s.replicas {
            None => 1,
            Some(n) if (1..=5).contains(&n) => n,
            Some(n) => {
                problems_here.push(SpecProblem {
                    at: at("replicas"),
                    message: format!("{n} must be between 1 and 5"),
                });
                1
            }
        };
        problems.extend(problems_here);
        if let Some(prev) = decls
            .iter()
            .find(|d| d.account == account && d.name == s.name)
        {
            problems.push(SpecProblem {
                at: at("name"),
                message: format!(
                    "stream {} is declared twice in account {}",
                    prev.name, account
                ),
            });
        }
        for d in decls.iter().filter(|d| d.account == account) {
            for a in &subjects {
                for b in &d.config.subjects {
                    if subjects_overlap(a, b) {
                        problems.push(SpecProblem {
                            at: at("subjects"),
                            message: format!(
                                "{a:?} overlaps {b:?} of stream {} in account {account}",
                                d.name
                            ),
                        });
                    }
                }
            }
        }
        decls.push(StreamDecl {
            name: s.name.clone(),
            account,
            config: StreamConfig {
                subjects,
                retention,
                storage,
                max_age_ns: max_age_ns.unwrap_or(0),
                max_bytes,
                max_msgs,
                max_msg_size,
                replicas,
                discard,
                duplicate_window_ns,
                description: s.description.clone(),
                no_ack: s.no_ack,
            },
        });
    }
    if problems.is_empty() {
        Ok(decls)
    } else {
        Err(problems)
    }
}

/// What applying a declaration does to one stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamAction {
    /// The stream does not exist: create it.
    Create,
    /// It exists with other (changeable) settings: update it in place.
    Update,
    /// It exists as declared.
    Unchanged,
    /// A field JetStream cannot change in place differs: delete and create again
    /// (its messages are lost), only when asked.
    Recreate,
}

/// One field that differs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    /// Field name as in the spec.
    pub field: &'static str,
    /// Current value on the server.
    pub from: String,
    /// Declared value.
    pub to: String,
    /// Whether JetStream can change it in place.
    pub in_place: bool,
}

/// The plan for one stream.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StreamPlan {
    /// Stream name.
    pub stream: String,
    /// Account.
    pub account: String,
    /// What to do.
    pub action: StreamAction,
    /// What differs (empty for create and unchanged).
    pub changes: Vec<FieldChange>,
}

fn show<T: std::fmt::Debug>(v: T) -> String {
    format!("{v:?}").to_lowercase()
}

/// Compares a declaration with the server's current configuration (`None` = absent).
pub fn plan(decl: &StreamDecl, current: Option<&StreamConfig>) -> StreamPlan {
    let mut changes = Vec::new();
    if let Some(cur) = current {
        let want = &decl.config;
        let mut diff = |field: &'static str, from: String, to: String, in_place: bool| {
            if from != to {
                changes.push(FieldChange {
                    field,
                    from,
                    to,
                    in_place,
                });
            }
        };
        let mut cur_subjects = cur.subjects.clone();
        cur_subjects.sort();
        diff(
            "subjects",
            cur_subjects.join(","),
            want.subjects.join(","),
            true,
        );
        diff(
            "retention",
            show(cur.retention),
            show(want.retention),
            false,
        );
        diff("storage", show(cur.storage), show(want.storage), false);
        diff(
            "max_age",
            cur.max_age_ns.to_string(),
            want.max_age_ns.to_string(),
            true,
        );
        diff(
            "max_bytes",
            cur.max_bytes.to_string(),
            want.max_bytes.to_string(),
            true,
        );
        diff(
            "max_msgs",
            cur.max_msgs.to_string(),
            want.max_msgs.to_string(),
            true,
        );
        diff(
            "max_msg_size",
            cur.max_msg_size.to_string(),
            want.max_msg_size.to_string(),
            true,
        );
        diff(
            "replicas",
            cur.replicas.to_string(),
            want.replicas.to_string(),
            true,
        );
        diff("discard", show(cur.discard), show(want.discard), true);
        if let Some(w) = want.duplicate_window_ns {
            diff(
                "duplicate_window",
                cur.duplicate_window_ns.unwrap_or(0).to_string(),
                w.to_string(),
                true,
            );
        }
        diff(
            "no_ack",
            cur.no_ack.to_string(),
            want.no_ack.to_string(),
            true,
        );
        diff(
            "description",
            cur.description.clone().unwrap_or_default(),
            want.description.clone().unwrap_or_default(),
            true,
        );
    }
    let action = match current {
        None => StreamAction::Create,
        Some(_) if changes.is_empty() => StreamAction::Unchanged,
        Some(_) if changes.iter().any(|c| !c.in_place) => StreamAction::Recreate,
        Some(_) => StreamAction::Update,
    };
    StreamPlan {
        stream: decl.name.clone(),
        account: decl.account.clone(),
        action,
        changes,
    }
}

/// Declarations grouped by account (each account is one connection).
pub fn by_account(decls: &[StreamDecl]) -> BTreeMap<String, Vec<&StreamDecl>> {
    let mut m: BTreeMap<String, Vec<&StreamDecl>> = BTreeMap::new();
    for d in decls {
        m.entry(d.account.clone()).or_default().push(d);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(name: &str, subjects: &[&str]) -> RawStream {
        RawStream {
            name: name.into(),
            account: "PLATFORM".into(),
            subjects: subjects.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn seed() -> StreamsSpec {
        let mut events = raw("EVENTS", &["*.events.>"]);
        events.no_ack = true;
        events.storage = Some("file".into());
        events.retention = Some("limits".into());
        events.max_age = Some("7d".into());
        StreamsSpec {
            streams: vec![
                events,
                RawStream {
                    no_ack: true,
                    ..raw("SNMP_TRAPS", &["*.snmp.traps"])
                },
                RawStream {
                    no_ack: true,
                    ..raw("NETFLOW", &["*.netflow.>"])
                },
            ],
        }
    }

    #[test]
    fn seed_spec_is_valid_with_defaults() {
        let d = validate(&seed()).unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(d[0].config.max_age_ns, 7 * 86_400 * 1_000_000_000);
        assert_eq!(d[1].config.retention, Retention::Limits);
        assert_eq!(d[1].config.storage, Storage::File);
        assert_eq!(d[1].config.max_bytes, -1);
        assert_eq!(d[1].config.replicas, 1);
        assert_eq!(d[2].account, "PLATFORM");
    }

    #[test]
    fn every_problem_is_listed() {
        let mut bad = raw("BAD.NAME", &["a..b", "x.>.y"]);
        bad.retention = Some("forever".into());
        bad.storage = Some("tape".into());
        bad.max_age = Some("7 weeks".into());
        bad.max_bytes = Some(SizeValue::Text("lots".into()));
        bad.replicas = Some(9);
        bad.account = "not valid!".into();
        let spec = StreamsSpec {
            streams: vec![bad, raw("E1", &["x.events.>"]), raw("E2", &["x.events.y"])],
        };
        let problems = validate(&spec).unwrap_err();
        let at: Vec<&str> = problems.iter().map(|p| p.at.as_str()).collect();
        for want in [
            "streams[0].name",
            "streams[0].account",
            "streams[0].subjects[0]",
            "streams[0].subjects[1]",
            "streams[0].retention",
            "streams[0].storage",
            "streams[0].max_age",
            "streams[0].max_bytes",
            "streams[0].replicas",
            "streams[2].subjects",
        ] {
            assert!(at.contains(&want), "{want} missing from {problems:?}");
        }
    }

    #[test]
    fn overlap_only_within_one_account() {
        let mut other = raw("E2", &["a.events.x"]);
        other.account = "OTHER".into();
        let spec = StreamsSpec {
            streams: vec![raw("E1", &["a.events.>"]), other],
        };
        assert!(validate(&spec).is_ok());
    }

    #[test]
    fn overlap_rules() {
        assert!(subjects_overlap("*.events.>", "a.events.x"));
        assert!(subjects_overlap("a.>", "*.b"));
        assert!(subjects_overlap("a.*", "*.b"));
        assert!(!subjects_overlap("*.events.>", "*.snmp.traps"));
        assert!(!subjects_overlap("a.b", "a.b.c"));
        assert!(!subjects_overlap("a.*", "a"));
        assert!(subjects_overlap("a.b", "a.b"));
    }

    #[test]
    fn plan_create_unchanged_update_recreate() {
        let d = validate(&seed()).unwrap().remove(0);
        assert_eq!(plan(&d, None).action, StreamAction::Create);
        let mut cur = d.config.clone();
        cur.duplicate_window_ns = Some(120_000_000_000);
        assert_eq!(plan(&d, Some(&cur)).action, StreamAction::Unchanged);
        cur.max_age_ns = 1;
        let p = plan(&d, Some(&cur));
        assert_eq!(p.action, StreamAction::Update);
        assert_eq!(p.changes.len(), 1);
        assert_eq!(p.changes[0].field, "max_age");
        cur.storage = Storage::Memory;
        let p = plan(&d, Some(&cur));
        assert_eq!(p.action, StreamAction::Recreate);
        assert!(
            p.changes
                .iter()
                .any(|c| c.field == "storage" && !c.in_place)
        );
    }

    #[test]
    fn leading_wildcard_needs_no_ack() {
        let spec = StreamsSpec {
            streams: vec![raw("E", &["*.events.>"])],
        };
        let p = validate(&spec).unwrap_err();
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].message.contains("no_ack"), "{p:?}");
        let mut ok = raw("E", &["*.events.>"]);
        ok.no_ack = true;
        assert!(validate(&StreamsSpec { streams: vec![ok] }).is_ok());
        // One token cannot reach $JS.API.…; a literal first token is fine.
        assert!(
            validate(&StreamsSpec {
                streams: vec![raw("E", &["*"])]
            })
            .is_ok()
        );
        assert!(
            validate(&StreamsSpec {
                streams: vec![raw("E", &["a.*.>"])]
            })
            .is_ok()
        );
    }

    #[test]
    fn duplicate_stream_names_refused() {
        let spec = StreamsSpec {
            streams: vec![raw("E", &["a.>"]), raw("E", &["b.>"])],
        };
        let p = validate(&spec).unwrap_err();
        assert!(p[0].message.contains("declared twice"), "{p:?}");
    }
}
