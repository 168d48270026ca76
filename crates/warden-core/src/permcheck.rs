//! "Can this user publish/subscribe to SUBJECT?": the answer a NATS server gives for a
//! user's `pub`/`sub` permissions, with the rule that decided it.
//!
//! The semantics follow nats-server's permission checks:
//! - an empty allow list allows everything not denied; a non-empty one allows only the
//!   subjects it covers (`*` one token, `>` one or more trailing tokens);
//! - a matching deny always wins over an allow;
//! - a wildcard subscription that only *partly* overlaps a deny entry is allowed, but the
//!   server drops the messages on the denied subjects (the verdict says so);
//! - queue entries (`"subject queue"`) in the subscribe lists apply only to that queue
//!   group; a plain entry applies to every queue group.
//!
//! Response permissions (`resp`) are not evaluated here: they grant publishing to reply
//! subjects only for the requests the user received.

use nats_jwt::{Permission, Permissions, Subject};

/// Publish or subscribe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Publishing to a subject.
    Publish,
    /// Subscribing to a subject (possibly with wildcards or a queue group).
    Subscribe,
}

impl Direction {
    /// `publish` or `subscribe`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Publish => "publish",
            Direction::Subscribe => "subscribe",
        }
    }
}

/// The answer, for a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the server lets the user do it.
    pub allowed: bool,
    /// Why, naming the rule that decided.
    pub reason: String,
}

impl Verdict {
    fn allow(reason: String) -> Verdict {
        Verdict {
            allowed: true,
            reason,
        }
    }
    fn deny(reason: String) -> Verdict {
        Verdict {
            allowed: false,
            reason,
        }
    }
}

/// Whether `entry` (an allow or deny rule) applies to the `query` subscription/publish:
/// the query's subjects all fall under the entry's, and the entry's queue group (if any)
/// is the query's.
fn covers(entry: &Subject, query: &Subject) -> bool {
    query.is_subset_of(entry) && entry.queue().is_none_or(|q| query.queue() == Some(q))
}

/// Whether `entry` could match some of the query's subjects without covering them all.
fn overlaps_partly(entry: &Subject, query: &Subject) -> bool {
    entry.queue().is_none_or(|q| query.queue() == Some(q))
        && entry.overlaps(query)
        && !query.is_subset_of(entry)
}

/// The verdict of `perms` for `direction` on `subject`.
pub fn check(perms: &Permissions, direction: Direction, subject: &Subject) -> Verdict {
    let (list, verb): (&Permission, &str) = match direction {
        Direction::Publish => (&perms.publish, "publish to"),
        Direction::Subscribe => (&perms.subscribe, "subscribe to"),
    };
    if direction == Direction::Publish {
        if subject.has_wildcards() {
            return Verdict::deny(format!(
                "{subject} has wildcards: messages are published to literal subjects only"
            ));
        }
        if subject.queue().is_some() {
            return Verdict::deny(format!(
                "{subject:?} has a queue group, which only subscriptions have"
            ));
        }
    }
    if let Some(rule) = list.deny.iter().find(|d| covers(d, subject)) {
        return Verdict::deny(format!(
            "denied by the {} deny rule {rule}",
            direction.as_str()
        ));
    }
    let allowed_by = if list.allow.is_empty() {
        format!(
            "no {} allow list: everything not denied is allowed",
            direction.as_str()
        )
    } else if let Some(rule) = list.allow.iter().find(|a| covers(a, subject)) {
        format!("allowed by the {} allow rule {rule}", direction.as_str())
    } else {
        let rules: Vec<&str> = list.allow.iter().map(Subject::as_str).collect();
        return Verdict::deny(format!(
            "no {} allow rule covers {subject} (allow: {})",
            direction.as_str(),
            rules.join(", ")
        ));
    };
    let partial: Vec<&str> = list
        .deny
        .iter()
        .filter(|d| overlaps_partly(d, subject))
        .map(Subject::as_str)
        .collect();
    if partial.is_empty() {
        Verdict::allow(allowed_by)
    } else {
        Verdict::allow(format!(
            "{allowed_by}; but messages on subjects denied by {} are not delivered to a {verb} {subject}",
            partial.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Subject {
        Subject::new(text).unwrap()
    }

    fn perms(
        pub_allow: &[&str],
        pub_deny: &[&str],
        sub_allow: &[&str],
        sub_deny: &[&str],
    ) -> Permissions {
        let list = |v: &[&str]| v.iter().map(|x| s(x)).collect::<Vec<_>>();
        Permissions {
            publish: Permission {
                allow: list(pub_allow),
                deny: list(pub_deny),
            },
            subscribe: Permission {
                allow: list(sub_allow),
                deny: list(sub_deny),
            },
            response: None,
        }
    }

    #[test]
    fn empty_lists_allow_everything() {
        let p = Permissions::default();
        let v = check(&p, Direction::Publish, &s("a.b"));
        assert!(v.allowed, "{v:?}");
        assert!(v.reason.contains("no publish allow list"), "{v:?}");
        assert!(check(&p, Direction::Subscribe, &s(">")).allowed);
    }

    #[test]
    fn allow_list_limits_with_wildcards() {
        let p = perms(&["orders.*", "audit.>"], &[], &[], &[]);
        assert!(check(&p, Direction::Publish, &s("orders.new")).allowed);
        assert!(check(&p, Direction::Publish, &s("audit.x.y.z")).allowed);
        // `*` is exactly one token, `>` at least one.
        assert!(!check(&p, Direction::Publish, &s("orders.new.eu")).allowed);
        assert!(!check(&p, Direction::Publish, &s("orders")).allowed);
        assert!(!check(&p, Direction::Publish, &s("audit")).allowed);
        let v = check(&p, Direction::Publish, &s("billing.x"));
        assert!(!v.allowed);
        assert!(v.reason.contains("orders.*, audit.>"), "{v:?}");
        let v = check(&p, Direction::Publish, &s("orders.new"));
        assert!(v.reason.contains("allow rule orders.*"), "{v:?}");
    }

    #[test]
    fn deny_wins_over_allow() {
        let p = perms(&["orders.>"], &["orders.secret.>"], &[], &[]);
        let v = check(&p, Direction::Publish, &s("orders.secret.x"));
        assert!(!v.allowed);
        assert!(v.reason.contains("deny rule orders.secret.>"), "{v:?}");
        assert!(check(&p, Direction::Publish, &s("orders.public")).allowed);
        // Deny without any allow list.
        let p = perms(&[], &["$SYS.>"], &[], &[]);
        assert!(!check(&p, Direction::Publish, &s("$SYS.REQ.x")).allowed);
        assert!(check(&p, Direction::Publish, &s("x")).allowed);
    }

    #[test]
    fn publish_to_wildcard_or_queue_is_refused() {
        let p = Permissions::default();
        assert!(!check(&p, Direction::Publish, &s("a.*")).allowed);
        assert!(!check(&p, Direction::Publish, &s("a q")).allowed);
    }

    #[test]
    fn wildcard_subscriptions() {
        let p = perms(&[], &[], &["orders.>"], &["orders.secret"]);
        // Covered by the allow rule: allowed.
        assert!(check(&p, Direction::Subscribe, &s("orders.*")).allowed);
        // Wider than the allow rule: refused.
        assert!(!check(&p, Direction::Subscribe, &s(">")).allowed);
        // Partly overlapping a deny: allowed, with the filtered subjects named.
        let v = check(&p, Direction::Subscribe, &s("orders.*"));
        assert!(v.allowed && v.reason.contains("not delivered"), "{v:?}");
        // Exactly the denied subject: refused.
        assert!(!check(&p, Direction::Subscribe, &s("orders.secret")).allowed);
    }

    #[test]
    fn queue_entries_apply_to_their_queue_only() {
        let p = perms(&[], &[], &["jobs.* workers"], &[]);
        assert!(check(&p, Direction::Subscribe, &s("jobs.a workers")).allowed);
        assert!(!check(&p, Direction::Subscribe, &s("jobs.a")).allowed);
        assert!(!check(&p, Direction::Subscribe, &s("jobs.a other")).allowed);
        // A plain deny applies to every queue group.
        let p = perms(&[], &[], &[], &["jobs.>"]);
        assert!(!check(&p, Direction::Subscribe, &s("jobs.a workers")).allowed);
    }
}
