//! Who may do what in a room: one evaluation function, [`evaluate`], used by every HTTP
//! route and websocket command, so the rules are decided in exactly one place.
//!
//! A room has rules keyed by a UUID that names either a user or an entity (a group a user
//! belongs to, the token's `entityUUID`). A caller's rights come from the rule for their
//! user UUID and the rule for their entity UUID:
//!
//! - `r` read: join the room, receive its messages, read its history;
//! - `w` write: send messages (joining still needs read);
//! - `a` admin: manage rules and invitations, delete the room; implies `r` and `w`;
//! - `b` banned: no rights at all, whatever else says otherwise (ban wins, ownership too).
//!
//! An entity rule grants its letters only to members whose `levelOnEntity` is at least the
//! rule's `level` (its ban applies to every member). Admin also comes from owning the room
//! (its owner user) and from belonging to the room's owner entity with a level at or above
//! the room's `level_admin`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The letters of a rule, parsed from a string of `r`, `w`, `a`, `b` (any order, repeats
/// allowed; anything else is refused).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Permissions {
    /// `r`
    pub read: bool,
    /// `w`
    pub write: bool,
    /// `a`
    pub admin: bool,
    /// `b`
    pub banned: bool,
}

/// A permissions string with a letter other than `r`, `w`, `a`, `b`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "permissions {given:?}: {letter:?} is not one of r (read), w (write), a (admin), b (banned)"
)]
pub struct PermissionsError {
    /// The string as given.
    pub given: String,
    /// The first letter refused.
    pub letter: char,
}

impl FromStr for Permissions {
    type Err = PermissionsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut p = Permissions::default();
        for c in s.chars() {
            match c {
                'r' => p.read = true,
                'w' => p.write = true,
                'a' => p.admin = true,
                'b' => p.banned = true,
                other => {
                    return Err(PermissionsError {
                        given: s.to_string(),
                        letter: other,
                    });
                }
            }
        }
        Ok(p)
    }
}

impl fmt::Display for Permissions {
    /// The canonical form: the letters present, in the order `r`, `w`, `a`, `b`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (on, c) in [
            (self.read, 'r'),
            (self.write, 'w'),
            (self.admin, 'a'),
            (self.banned, 'b'),
        ] {
            if on {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

impl Permissions {
    fn union(self, other: Permissions) -> Permissions {
        Permissions {
            read: self.read || other.read,
            write: self.write || other.write,
            admin: self.admin || other.admin,
            banned: self.banned || other.banned,
        }
    }
}

/// One rule of a room, as far as the evaluation needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleFacts {
    /// The user or entity UUID the rule is for.
    pub entity_uuid: String,
    /// Its letters.
    pub permissions: Permissions,
    /// For an entity rule: the lowest `levelOnEntity` it grants to.
    pub level: i64,
}

impl RuleFacts {
    /// A rule from its stored or requested form.
    pub fn parse(
        entity_uuid: &str,
        permissions: &str,
        level: i64,
    ) -> Result<RuleFacts, PermissionsError> {
        Ok(RuleFacts {
            entity_uuid: entity_uuid.to_string(),
            permissions: permissions.parse()?,
            level,
        })
    }
}

/// What the evaluation needs to know of a room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomFacts {
    /// The user who owns the room (its creator).
    pub owner_user: String,
    /// The entity the room belongs to (its creator's entity).
    pub owner_entity: String,
    /// The `levelOnEntity` a member of the owner entity needs to administer the room.
    pub level_admin: i64,
}

/// Who is asking: the claims of a validated token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// `userUUID`
    pub user_uuid: String,
    /// `entityUUID`
    pub entity_uuid: String,
    /// `levelOnEntity`
    pub level_on_entity: i64,
}

/// The outcome: what the caller may do in the room.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Rights {
    /// Join, receive, read history.
    pub read: bool,
    /// Send messages.
    pub write: bool,
    /// Manage rules and invitations, delete the room.
    pub admin: bool,
    /// Banned: every other right is off.
    pub banned: bool,
}

impl Rights {
    /// Whether the caller has any access at all.
    pub fn any(&self) -> bool {
        self.read || self.write || self.admin
    }
}

/// The caller's rights in `room`, given the room's rules (all of them or only those for the
/// caller's two UUIDs; others are ignored).
pub fn evaluate<'a>(
    room: &RoomFacts,
    caller: &Caller,
    rules: impl IntoIterator<Item = &'a RuleFacts>,
) -> Rights {
    let mut granted = Permissions::default();
    let mut banned = false;
    for rule in rules {
        let for_user = rule.entity_uuid == caller.user_uuid;
        let for_entity = rule.entity_uuid == caller.entity_uuid;
        if !(for_user || for_entity) {
            continue;
        }
        banned |= rule.permissions.banned;
        if for_user || caller.level_on_entity >= rule.level {
            granted = granted.union(rule.permissions);
        }
    }
    if banned {
        return Rights {
            banned: true,
            ..Rights::default()
        };
    }
    let admin = granted.admin
        || caller.user_uuid == room.owner_user
        || (caller.entity_uuid == room.owner_entity && caller.level_on_entity >= room.level_admin);
    Rights {
        read: granted.read || admin,
        write: granted.write || admin,
        admin,
        banned: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOM_LEVEL_ADMIN: i64 = 500;

    fn room() -> RoomFacts {
        RoomFacts {
            owner_user: "u-owner".into(),
            owner_entity: "e-owner".into(),
            level_admin: ROOM_LEVEL_ADMIN,
        }
    }

    /// Every subset of the four letters, as strings.
    fn all_letter_sets() -> Vec<String> {
        (0..16u8)
            .map(|bits| {
                let mut s = String::new();
                for (i, c) in ['r', 'w', 'a', 'b'].into_iter().enumerate() {
                    if bits & (1 << i) != 0 {
                        s.push(c);
                    }
                }
                s
            })
            .collect()
    }

    #[test]
    fn permissions_parse_and_print() {
        assert_eq!(
            "war".parse::<Permissions>().unwrap().to_string(),
            "rwa",
            "canonical order"
        );
        assert_eq!("rr".parse::<Permissions>().unwrap().to_string(), "r");
        assert_eq!("".parse::<Permissions>().unwrap(), Permissions::default());
        let err = "rx".parse::<Permissions>().unwrap_err();
        assert_eq!(err.letter, 'x');
        assert!(err.to_string().contains("not one of r"), "{err}");
        assert!(
            "RW".parse::<Permissions>().is_err(),
            "letters are lower case"
        );
    }

    /// The rules of the module doc, written out independently of `evaluate` as a truth
    /// table over every combination: no user rule or each of the 16 letter sets; no entity
    /// rule or each of the 16 sets with the caller's level below or at the rule's level;
    /// caller the owner user or not; caller in the owner entity below, at or not in it.
    #[test]
    fn every_combination_follows_the_rules() {
        let sets = all_letter_sets();
        let mut user_rules: Vec<Option<String>> = vec![None];
        user_rules.extend(sets.iter().cloned().map(Some));
        let mut entity_rules: Vec<Option<(String, bool)>> = vec![None];
        for s in &sets {
            entity_rules.push(Some((s.clone(), true)));
            entity_rules.push(Some((s.clone(), false)));
        }
        #[derive(Clone, Copy, Debug)]
        enum Membership {
            Other,
            OwnerEntityBelow,
            OwnerEntityAt,
        }
        let mut cases = 0;
        for user_rule in &user_rules {
            for entity_rule in &entity_rules {
                for owner in [false, true] {
                    for membership in [
                        Membership::Other,
                        Membership::OwnerEntityBelow,
                        Membership::OwnerEntityAt,
                    ] {
                        let (entity, level) = match membership {
                            Membership::Other => ("e-other", ROOM_LEVEL_ADMIN + 10),
                            Membership::OwnerEntityBelow => ("e-owner", ROOM_LEVEL_ADMIN - 1),
                            Membership::OwnerEntityAt => ("e-owner", ROOM_LEVEL_ADMIN),
                        };
                        let caller = Caller {
                            user_uuid: if owner { "u-owner" } else { "u-caller" }.into(),
                            entity_uuid: entity.into(),
                            level_on_entity: level,
                        };
                        let mut rules = vec![
                            // Rules for someone else never count.
                            RuleFacts::parse("u-stranger", "rwa", 0).unwrap(),
                            RuleFacts::parse("e-stranger", "rwa", 0).unwrap(),
                        ];
                        if let Some(p) = user_rule {
                            // A user rule's level is not a condition: make it unreachable.
                            rules.push(RuleFacts::parse(&caller.user_uuid, p, i64::MAX).unwrap());
                        }
                        if let Some((p, level_met)) = entity_rule {
                            let rule_level = if *level_met { level } else { level + 1 };
                            rules.push(RuleFacts::parse(entity, p, rule_level).unwrap());
                        }
                        let got = evaluate(&room(), &caller, &rules);

                        // The expectation, from the rules as prose.
                        let has =
                            |s: &Option<String>, c: char| s.as_ref().is_some_and(|s| s.contains(c));
                        let ent = |c: char, need_level: bool| {
                            entity_rule
                                .as_ref()
                                .is_some_and(|(s, met)| s.contains(c) && (!need_level || *met))
                        };
                        let banned = has(user_rule, 'b') || ent('b', false);
                        let admin_by_rule = has(user_rule, 'a') || ent('a', true);
                        let admin_by_room =
                            owner || matches!(membership, Membership::OwnerEntityAt);
                        let admin = !banned && (admin_by_rule || admin_by_room);
                        let read = !banned && (admin || has(user_rule, 'r') || ent('r', true));
                        let write = !banned && (admin || has(user_rule, 'w') || ent('w', true));
                        let want = Rights {
                            read,
                            write,
                            admin,
                            banned,
                        };
                        assert_eq!(
                            got, want,
                            "user rule {user_rule:?}, entity rule {entity_rule:?}, owner {owner}, {membership:?}"
                        );
                        cases += 1;
                    }
                }
            }
        }
        assert_eq!(cases, 17 * 33 * 2 * 3);
    }

    /// The cases people ask about, by name.
    #[test]
    fn named_cases() {
        let r = room();
        let bob = Caller {
            user_uuid: "u-bob".into(),
            entity_uuid: "e-acme".into(),
            level_on_entity: 10,
        };
        let rule = |who: &str, p: &str, level: i64| RuleFacts::parse(who, p, level).unwrap();
        let table: Vec<(&str, Vec<RuleFacts>, Rights)> = vec![
            ("no rule: nothing", vec![], Rights::default()),
            (
                "read-only user",
                vec![rule("u-bob", "r", 0)],
                Rights {
                    read: true,
                    ..Rights::default()
                },
            ),
            (
                "write without read",
                vec![rule("u-bob", "w", 0)],
                Rights {
                    write: true,
                    ..Rights::default()
                },
            ),
            (
                "admin implies read and write",
                vec![rule("u-bob", "a", 0)],
                Rights {
                    read: true,
                    write: true,
                    admin: true,
                    banned: false,
                },
            ),
            (
                "entity grants read, user banned: ban wins",
                vec![rule("e-acme", "rw", 0), rule("u-bob", "b", 0)],
                Rights {
                    banned: true,
                    ..Rights::default()
                },
            ),
            (
                "user admin, entity banned (even at a level above the caller's): ban wins",
                vec![rule("u-bob", "rwa", 0), rule("e-acme", "b", 1_000)],
                Rights {
                    banned: true,
                    ..Rights::default()
                },
            ),
            (
                "entity rule above the caller's level grants nothing",
                vec![rule("e-acme", "rw", 11)],
                Rights::default(),
            ),
            (
                "entity rule at the caller's level grants",
                vec![rule("e-acme", "rw", 10)],
                Rights {
                    read: true,
                    write: true,
                    ..Rights::default()
                },
            ),
            (
                "user r plus entity w combine",
                vec![rule("u-bob", "r", 0), rule("e-acme", "w", 0)],
                Rights {
                    read: true,
                    write: true,
                    ..Rights::default()
                },
            ),
        ];
        for (name, rules, want) in table {
            assert_eq!(evaluate(&r, &bob, &rules), want, "{name}");
        }
        let owner = Caller {
            user_uuid: "u-owner".into(),
            entity_uuid: "e-elsewhere".into(),
            level_on_entity: 0,
        };
        assert!(evaluate(&r, &owner, []).admin, "the owner user administers");
        let banned_owner = [rule("u-owner", "b", 0)];
        assert!(
            evaluate(&r, &owner, &banned_owner).banned,
            "ban wins over ownership"
        );
    }
}
