//! Directory sync against fixtures written for these tests: an AD LDIF export
//! (ldifde-style, CRLF, base64 GUIDs, folded lines) and Graph users / groups pages.

use serde_json::Value as Json;

use super::*;
use crate::directory::{NextRole, NextUser};

const AD_LDIF: &str = include_str!("../../tests/fixtures/dirsync/ad_export.ldif");
const USERS_1: &str = include_str!("../../tests/fixtures/dirsync/graph_users_1.json");
const USERS_2: &str = include_str!("../../tests/fixtures/dirsync/graph_users_2.json");
const GROUPS: &str = include_str!("../../tests/fixtures/dirsync/graph_groups.json");
const USERS_DELTA: &str = include_str!("../../tests/fixtures/dirsync/graph_users_delta.json");
const GROUPS_DELTA: &str = include_str!("../../tests/fixtures/dirsync/graph_groups_delta.json");

fn json(s: &str) -> Json {
    serde_json::from_str(s).unwrap()
}

fn ad() -> Mapped {
    from_ldif("ldif:corp", &Mapping::default_for(Provider::Ad), AD_LDIF).unwrap()
}

fn aad() -> Mapped {
    from_graph(
        "graph:contoso",
        &Mapping::default_for(Provider::Aad),
        &[json(USERS_1), json(USERS_2)],
        &[json(GROUPS)],
    )
    .unwrap()
}

fn user<'a>(s: &'a DirectorySnapshot, id: &str) -> &'a NextUser {
    s.users
        .iter()
        .find(|u| u.id == id)
        .unwrap_or_else(|| panic!("no user {id} in {s:#?}"))
}

fn role<'a>(s: &'a DirectorySnapshot, name: &str) -> &'a NextRole {
    s.roles
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no role {name} in {s:#?}"))
}

fn has_skip(m: &[crate::directory::SyncSkip], key: &str, reason: &str) -> bool {
    m.iter()
        .any(|s| s.key.contains(key) && s.reason.contains(reason))
}

#[test]
fn ad_ldif_export_maps_to_next_fields() {
    let m = ad();
    let s = &m.snapshot;
    let ids: Vec<&str> = s.users.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(ids, ["b_smith", "eve", "jdoe"]);
    let jane = user(s, "jdoe");
    assert_eq!(
        jane.user_id.as_deref(),
        Some("f2d2a3ec-cf55-42d1-98dd-9c0c3266760c")
    );
    assert_eq!(jane.name.as_deref(), Some("Jane Doe"));
    assert_eq!(jane.user_nickname.as_deref(), Some("Jane Doe"));
    assert_eq!(jane.job_title.as_deref(), Some("Platform Engineer"));
    assert_eq!(jane.country.as_deref(), Some("276"));
    assert_eq!(jane.created_date.as_deref(), Some("20240102030405.0Z"));
    assert_eq!(jane.business_phones, ["+49 30 1234", "+49 30 5678"]);
    assert_eq!(
        jane.manager.as_deref(),
        Some("b_smith"),
        "manager DN resolved to Bob's id"
    );
    // Groups of this source by role name, others as AD gave them.
    assert_eq!(
        jane.member_of,
        [
            "CN=VPN Users,OU=Groups,DC=other,DC=example",
            "nats_operators"
        ]
    );
    assert_eq!(
        jane.distinguished_name.as_deref(),
        Some("CN=Jane Doe,OU=Staff,DC=corp,DC=example")
    );
    let bob = user(s, "b_smith");
    assert_eq!(
        bob.job_title.as_deref(),
        Some("Head of Platform and of Everything Else That Needs a Long Title To Fold")
    );
    assert_eq!(
        bob.user_id.as_deref(),
        Some("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")
    );
    assert_eq!(
        bob.distinguished_name.as_deref(),
        Some("CN=Bob Smith,OU=Staff,DC=corp,DC=example"),
        "no distinguishedName attribute: the entry's DN"
    );
    assert_eq!(bob.member_of, ["nats_operators"]);

    let ops = role(s, "nats_operators");
    assert_eq!(
        ops.role_id.as_deref(),
        Some("33333333-4444-4555-8666-777777777777")
    );
    assert_eq!(ops.display_name.as_deref(), Some("NATS Operators"));
    assert_eq!(
        ops.members,
        ["b_smith", "jdoe"],
        "member DNs compared without case/spaces"
    );
    assert_eq!(ops.owners, ["b_smith"]);
    assert_eq!(ops.group_types, ["-2147483646"]);
    assert_eq!(ops.created_date.as_deref(), Some("20240501000000.0Z"));
    let sales = role(s, "sales_eu");
    assert_eq!(sales.members, ["eve"]);

    // Nothing silently dropped.
    assert!(
        has_skip(&m.skipped, "Jörg", "cannot hold"),
        "{:#?}",
        m.skipped
    );
    assert!(
        has_skip(&m.skipped, "BUILD01", "computer accounts"),
        "{:#?}",
        m.skipped
    );
    assert!(
        has_skip(&m.skipped, "eve", "manager: CN=Nobody"),
        "{:#?}",
        m.skipped
    );
    assert!(
        has_skip(&m.skipped, "sales_eu", "nested groups"),
        "{:#?}",
        m.skipped
    );
    assert!(
        has_skip(&m.skipped, "sales_eu", "CN=Someone Else"),
        "{:#?}",
        m.skipped
    );
    assert_eq!(m.skipped.len(), 5, "{:#?}", m.skipped);
}

#[test]
fn graph_export_pages_map_to_next_fields() {
    let m = aad();
    let s = &m.snapshot;
    let ids: Vec<&str> = s.users.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(ids, ["adelev", "leeg", "meganb"], "both pages read");
    let adele = user(s, "adelev");
    assert_eq!(
        adele.user_id.as_deref(),
        Some("6e7b768e-07e2-4810-8459-485f84f8f204")
    );
    assert_eq!(adele.account_enabled, Some(true));
    assert_eq!(adele.business_phones, ["+1 425 555 0109"]);
    assert_eq!(adele.office_location.as_deref(), Some("18/2111"));
    assert_eq!(adele.surname.as_deref(), Some("Vance"));
    assert_eq!(adele.user_type.as_deref(), Some("Member"));
    assert_eq!(adele.mobile_phone, None);
    assert_eq!(adele.manager.as_deref(), Some("meganb"));
    assert_eq!(adele.member_of, ["nats_operators"]);
    let ops = role(s, "nats_operators");
    assert_eq!(ops.members, ["adelev", "meganb"]);
    assert_eq!(ops.owners, ["meganb"]);
    assert_eq!(ops.mail_enabled, Some(true));
    assert_eq!(ops.security_enabled, Some(false));
    assert_eq!(ops.group_types, ["Unified"]);
    assert_eq!(ops.visibility.as_deref(), Some("Private"));
    assert_eq!(ops.group_nickname.as_deref(), Some("nats-operators"));
    assert_eq!(role(s, "salesteam").members, ["leeg"]);
    assert!(has_skip(&m.skipped, "c03e6eaa", "'#'"), "{:#?}", m.skipped);
    assert!(has_skip(&m.skipped, "leeg", "manager"), "{:#?}", m.skipped);
    assert!(
        has_skip(&m.skipped, "nats_operators", "nested groups"),
        "{:#?}",
        m.skipped
    );
    assert_eq!(m.skipped.len(), 3, "{:#?}", m.skipped);
}

#[test]
fn malformed_graph_input_is_refused_whole() {
    let map = Mapping::default_for(Provider::Aad);
    let e = from_graph("g", &map, &[json(r#"{"values": []}"#)], &[]).unwrap_err();
    assert!(e.to_string().contains("\"value\" array"), "{e}");
    let e = from_graph("g", &map, &[json(USERS_DELTA)], &[]).unwrap_err();
    assert!(e.to_string().contains("delta"), "{e}");
    let e = from_ldif(
        "l",
        &Mapping::default_for(Provider::Ad),
        "dn: cn=a\nchangetype: delete\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("change record"), "{e}");
}

#[test]
fn a_mapping_file_changes_what_is_synced() {
    let file: MappingFile = serde_json::from_str(
        r#"{"users": {"job_title": null, "department": "company"}, "user_id_from": ["cn"]}"#,
    )
    .unwrap();
    let map = Mapping::with_overrides(Provider::Ad, &file).unwrap();
    let m = from_ldif("ldif:corp", &map, AD_LDIF).unwrap();
    let jane = user(&m.snapshot, "jane_doe");
    assert_eq!(jane.job_title, None);
    assert_eq!(jane.department.as_deref(), Some("Example Corp"));
}

#[test]
fn first_sync_creates_everything_and_a_second_is_empty() {
    for m in [ad(), aad()] {
        let empty = DirectorySnapshot {
            source: m.snapshot.source.clone(),
            ..DirectorySnapshot::default()
        };
        let p = plan_mapped(&empty, &m);
        assert_eq!(p.create_users.len(), m.snapshot.users.len());
        assert_eq!(p.create_roles.len(), m.snapshot.roles.len());
        assert_eq!(p.skipped, m.skipped, "mapping skips reach the plan");
        let after = plan::apply(&empty, &p);
        assert_eq!(after, m.snapshot);
        let again = plan(&after, &m.snapshot);
        assert!(again.is_empty(), "{again:#?}");
        assert_eq!(
            again.unchanged,
            m.snapshot.users.len() + m.snapshot.roles.len()
        );
    }
}

#[test]
fn plan_updates_renames_and_deletes() {
    let current = ad().snapshot;
    let mut incoming = current.clone();
    // Jane renamed upstream (same objectGUID): an update, not delete + create.
    let jane = incoming.users.iter_mut().find(|u| u.id == "jdoe").unwrap();
    jane.id = "jane_doe".into();
    jane.job_title = Some("Staff Engineer".into());
    // Eve gone; a new user; a role's members changed (order must not matter).
    incoming.users.retain(|u| u.id != "eve");
    incoming.users.push(NextUser {
        id: "newbie".into(),
        user_id: Some("99999999-0000-4000-8000-000000000000".into()),
        ..NextUser::default()
    });
    let ops = incoming
        .roles
        .iter_mut()
        .find(|r| r.name == "nats_operators")
        .unwrap();
    ops.members = vec!["jane_doe".into(), "b_smith".into(), "newbie".into()];
    let p = plan(&current, &incoming);
    assert_eq!(p.update_users.len(), 1);
    assert_eq!(p.update_users[0].id, "jane_doe");
    assert_eq!(p.delete_users, ["eve"]);
    assert_eq!(p.create_users.len(), 1);
    assert_eq!(p.update_roles.len(), 1);
    assert_eq!(p.update_roles[0].members, ["b_smith", "jane_doe", "newbie"]);
    assert!(p.create_roles.is_empty() && p.delete_roles.is_empty());
    assert_eq!(p.unchanged, 2, "b_smith and sales_eu");
    let after = plan::apply(&current, &p);
    assert!(plan(&after, &incoming).is_empty());
}

#[test]
fn plan_refuses_to_merge_two_objects_under_one_name() {
    let current = ad().snapshot;
    let mut incoming = current.clone();
    incoming.users[0].user_id = Some("deadbeef-0000-4000-8000-000000000000".into());
    let dup = incoming.users[1].clone();
    incoming.users.push(dup);
    let p = plan(&current, &incoming);
    assert!(
        has_skip(&p.skipped, "b_smith", "resolve the clash"),
        "{:#?}",
        p.skipped
    );
    assert!(
        has_skip(&p.skipped, "eve", "appears twice"),
        "{:#?}",
        p.skipped
    );
    assert!(
        p.delete_users.is_empty(),
        "the clashing record is not deleted either"
    );
    assert!(p.is_empty(), "{p:#?}");
}

#[test]
fn ldif_delta_modify_delete_and_members() {
    let map = Mapping::default_for(Provider::Ad);
    let current = ad().snapshot;
    let delta = "version: 1\n\n\
        dn: CN=Jane Doe,OU=Staff,DC=corp,DC=example\nchangetype: modify\nreplace: title\ntitle: Staff Engineer\n-\ndelete: telephoneNumber\ntelephoneNumber: +49 30 1234\n-\n\n\
        dn: CN=Eve External,OU=Staff,DC=corp,DC=example\nchangetype: delete\n\n\
        dn: CN=NATS Operators,OU=Groups,DC=corp,DC=example\nchangetype: modify\ndelete: member\nmember: CN=Bob Smith,OU=Staff,DC=corp,DC=example\n-\n\n\
        dn: CN=New Hire,OU=Staff,DC=corp,DC=example\nchangetype: add\nobjectClass: user\ncn: New Hire\nsAMAccountName: nhire\nobjectGUID: 77777777-0000-4000-8000-000000000001\nmanager: CN=Jane Doe,OU=Staff,DC=corp,DC=example\n\n\
        dn: CN=Sales EU,OU=Groups,DC=corp,DC=example\nchangetype: modify\nadd: member\nmember: CN=New Hire,OU=Staff,DC=corp,DC=example\n-\n\n\
        dn: CN=Ghost,OU=Staff,DC=corp,DC=example\nchangetype: delete\n";
    let m = ldif_delta(&current, &map, delta).unwrap();
    let p = plan_mapped(&current, &m);
    assert_eq!(p.delete_users, ["eve"]);
    assert_eq!(p.create_users.len(), 1);
    let hire = &p.create_users[0];
    assert_eq!(hire.id, "nhire");
    assert_eq!(hire.manager.as_deref(), Some("jdoe"));
    assert_eq!(hire.member_of, ["sales_eu"]);
    let updated: Vec<&str> = p.update_users.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(
        updated,
        ["b_smith", "jdoe"],
        "bob's member_of and jane's title changed"
    );
    let jane = &p.update_users[1];
    assert_eq!(jane.job_title.as_deref(), Some("Staff Engineer"));
    assert_eq!(jane.business_phones, ["+49 30 5678"]);
    assert_eq!(
        jane.manager.as_deref(),
        Some("b_smith"),
        "untouched fields survive the round trip"
    );
    assert!(p.update_users[0].member_of.is_empty());
    let roles: Vec<(&str, &[String])> = p
        .update_roles
        .iter()
        .map(|r| (r.name.as_str(), r.members.as_slice()))
        .collect();
    assert_eq!(
        roles,
        [
            ("nats_operators", &["jdoe".to_string()][..]),
            ("sales_eu", &["nhire".to_string()][..])
        ],
        "eve left sales_eu, nhire joined"
    );
    assert!(
        has_skip(&p.skipped, "CN=Ghost", "does not hold"),
        "{:#?}",
        p.skipped
    );
    // The same delta on the result changes nothing more (idempotent).
    let after = plan::apply(&current, &p);
    let again = ldif_delta(&after, &map, delta).unwrap();
    assert!(plan(&after, &again.snapshot).is_empty());
}

#[test]
fn ldif_delta_renames_and_moves_keep_links() {
    let map = Mapping::default_for(Provider::Ad);
    let current = ad().snapshot;
    // Bob is renamed and moved; a later change refers to him by his new DN. He manages
    // Jane and is a member of NATS Operators (by his old DN, written in lower case there).
    let delta = "version: 1\n\n\
        dn: CN=Bob Smith,OU=Staff,DC=corp,DC=example\nchangetype: modrdn\nnewrdn: CN=Robert Smith\ndeleteoldrdn: 1\nnewsuperior: OU=People,DC=corp,DC=example\n\n\
        dn: CN=Sales EU,OU=Groups,DC=corp,DC=example\nchangetype: modify\nadd: member\nmember: CN=Robert Smith,OU=People,DC=corp,DC=example\n-\n\n\
        dn: CN=Sales EU,OU=Groups,DC=corp,DC=example\nchangetype: modrdn\nnewrdn: CN=Sales Europe\ndeleteoldrdn: 1\n\n\
        dn: CN=Nobody Here,OU=Staff,DC=corp,DC=example\nchangetype: modrdn\nnewrdn: CN=X\ndeleteoldrdn: 0\n";
    let m = ldif_delta(&current, &map, delta).unwrap();
    let bob = user(&m.snapshot, "b_smith");
    assert_eq!(
        bob.distinguished_name.as_deref(),
        Some("CN=Robert Smith,OU=People,DC=corp,DC=example")
    );
    assert_eq!(
        user(&m.snapshot, "jdoe").manager.as_deref(),
        Some("b_smith"),
        "jane's manager link follows the rename"
    );
    assert!(
        role(&m.snapshot, "nats_operators")
            .members
            .contains(&"b_smith".to_string()),
        "{:#?}",
        m.snapshot.roles
    );
    let sales = role(&m.snapshot, "sales_europe");
    assert!(sales.members.contains(&"b_smith".to_string()), "{sales:#?}");
    assert_eq!(
        sales.distinguished_name.as_deref(),
        Some("CN=Sales Europe,OU=Groups,DC=corp,DC=example")
    );
    assert!(
        has_skip(
            &m.skipped,
            "CN=Nobody Here",
            "modrdn of an entry Warden does not hold"
        ),
        "{:#?}",
        m.skipped
    );
    let p = plan_mapped(&current, &m);
    assert!(
        p.delete_users.is_empty() && p.create_users.is_empty(),
        "{p:#?}"
    );
    // Keyed by object id: the group rename is an update of the same role, not a new one.
    assert!(p.create_roles.is_empty(), "{p:#?}");
    // Applied, the same delta changes nothing more.
    let after = plan::apply(&current, &p);
    let again = ldif_delta(&after, &map, delta).unwrap();
    assert!(plan(&after, &again.snapshot).is_empty());
}

#[test]
fn an_empty_delta_changes_nothing() {
    for (m, map) in [
        (ad(), Mapping::default_for(Provider::Ad)),
        (aad(), Mapping::default_for(Provider::Aad)),
    ] {
        let s = m.snapshot;
        let back = match map.provider {
            Provider::Ad => ldif_delta(&s, &map, "").unwrap(),
            Provider::Aad => graph_delta(&s, &map, &[], &[]).unwrap(),
        };
        assert_eq!(back.snapshot, s, "to_records/to_snapshot round trip");
    }
}

#[test]
fn graph_delta_updates_removes_and_changes_members() {
    let map = Mapping::default_for(Provider::Aad);
    let current = aad().snapshot;
    let m = graph_delta(&current, &map, &[json(USERS_DELTA)], &[json(GROUPS_DELTA)]).unwrap();
    let p = plan_mapped(&current, &m);
    assert_eq!(p.delete_users, ["leeg"]);
    assert_eq!(p.create_users.len(), 1);
    assert_eq!(p.create_users[0].id, "nestorw");
    assert_eq!(p.create_users[0].member_of, ["nats_operators"]);
    let adele = p.update_users.iter().find(|u| u.id == "adelev").unwrap();
    assert_eq!(adele.job_title.as_deref(), Some("Store Director"));
    assert_eq!(
        adele.city.as_deref(),
        Some("Redmond"),
        "fields not in the delta stay"
    );
    assert!(adele.member_of.is_empty());
    let ops = p
        .update_roles
        .iter()
        .find(|r| r.name == "nats_operators")
        .unwrap();
    assert_eq!(ops.members, ["meganb", "nestorw"]);
    let sales = p
        .update_roles
        .iter()
        .find(|r| r.name == "salesteam")
        .unwrap();
    assert!(sales.members.is_empty(), "a removed user leaves its groups");
    assert!(p.skipped.is_empty(), "{:#?}", p.skipped);
}

#[test]
fn export_ldif_modify_records() {
    let map = Mapping::default_for(Provider::Ad);
    let mut s = ad().snapshot;
    // Groups are written by DN; one without a DN falls back to AD's `<GUID=…>`.
    assert_eq!(
        role(&s, "nats_operators").distinguished_name.as_deref(),
        Some("CN=NATS Operators,OU=Groups,DC=corp,DC=example")
    );
    s.roles
        .iter_mut()
        .find(|r| r.name == "sales_eu")
        .expect("sales_eu")
        .distinguished_name = None;
    let changes = vec![
        DirectoryChange::UserField {
            user: "jdoe".into(),
            field: "job_title".into(),
            old: vec!["Platform Engineer".into()],
            new: vec!["Staff Engineer".into()],
        },
        DirectoryChange::UserField {
            user: "eve".into(),
            field: "manager".into(),
            old: vec![],
            new: vec!["jdoe".into()],
        },
        DirectoryChange::AddMember {
            role: "sales_eu".into(),
            user: "jdoe".into(),
        },
        DirectoryChange::RemoveMember {
            role: "nats_operators".into(),
            user: "b_smith".into(),
        },
        DirectoryChange::UserField {
            user: "jdoe".into(),
            field: "city".into(),
            old: vec![],
            new: vec!["Berlin".into()],
        },
        DirectoryChange::AddMember {
            role: "nope".into(),
            user: "jdoe".into(),
        },
    ];
    let out = export::to_ldif(&changes, &s, &map);
    let text = &out.output;
    assert!(text.contains(
        "dn: CN=Jane Doe,OU=Staff,DC=corp,DC=example\nchangetype: modify\nreplace: title\ntitle: Staff Engineer\n-\n"
    ), "{text}");
    assert!(text.contains(
        "dn: CN=Eve External,OU=Staff,DC=corp,DC=example\nchangetype: modify\nreplace: manager\nmanager: CN=Jane Doe,OU=Staff,DC=corp,DC=example\n-\n"
    ), "{text}");
    // `<` may not start a plain LDIF value, so the `<GUID=…>` DN is base64.
    assert!(
        text.contains("dn:: PEdVSUQ9NDQ0NDQ0NDQtNTU1NS00NjY2LTg3NzctODg4ODg4ODg4ODg4Pg==\n"),
        "{text}"
    );
    assert!(
        text.contains("dn: CN=NATS Operators,OU=Groups,DC=corp,DC=example\nchangetype: modify\ndelete: member\nmember: CN=Bob Smith,OU=Staff,DC=corp,DC=example\n-\n"),
        "{text}"
    );
    assert!(
        has_skip(&out.skipped, "jdoe", "city has no ad attribute"),
        "{:#?}",
        out.skipped
    );
    assert!(
        has_skip(&out.skipped, "nope", "not of this source"),
        "{:#?}",
        out.skipped
    );
    // Our own output is valid LDIF, and applied as a delta it gives the changes back.
    let recs = ldif::parse(text).unwrap();
    assert_eq!(recs.len(), 4);
    assert_eq!(
        recs[2],
        ldif::LdifRecord::Modify {
            dn: "<GUID=44444444-5555-4666-8777-888888888888>".into(),
            mods: vec![ldif::Modification {
                op: ldif::ModOp::Add,
                attr: "member".into(),
                values: vec![b"CN=Jane Doe,OU=Staff,DC=corp,DC=example".to_vec()],
            }],
        }
    );
    let after = ldif_delta(&s, &map, text).unwrap();
    assert_eq!(
        user(&after.snapshot, "jdoe").job_title.as_deref(),
        Some("Staff Engineer")
    );
    assert_eq!(
        user(&after.snapshot, "eve").manager.as_deref(),
        Some("jdoe")
    );
    assert_eq!(role(&after.snapshot, "sales_eu").members, ["eve", "jdoe"]);
    assert_eq!(role(&after.snapshot, "nats_operators").members, ["jdoe"]);
}

#[test]
fn export_graph_batch() {
    let map = Mapping::default_for(Provider::Aad);
    let s = aad().snapshot;
    let mut changes = vec![
        DirectoryChange::UserField {
            user: "adelev".into(),
            field: "job_title".into(),
            old: vec![],
            new: vec!["Store Director".into()],
        },
        DirectoryChange::UserField {
            user: "adelev".into(),
            field: "business_phones".into(),
            old: vec![],
            new: vec!["+1 1".into(), "+1 2".into()],
        },
        DirectoryChange::UserField {
            user: "adelev".into(),
            field: "account_enabled".into(),
            old: vec![],
            new: vec!["false".into()],
        },
        DirectoryChange::UserField {
            user: "leeg".into(),
            field: "manager".into(),
            old: vec![],
            new: vec!["meganb".into()],
        },
        DirectoryChange::AddMember {
            role: "salesteam".into(),
            user: "adelev".into(),
        },
        DirectoryChange::RemoveMember {
            role: "nats_operators".into(),
            user: "meganb".into(),
        },
    ];
    let out = export::to_graph_batches(&changes, &s, &map);
    assert!(out.skipped.is_empty(), "{:#?}", out.skipped);
    assert_eq!(out.output.len(), 1);
    let reqs = out.output[0]["requests"].as_array().unwrap();
    assert_eq!(reqs.len(), 4, "adele's three fields in one PATCH");
    assert_eq!(reqs[0]["method"], "PATCH");
    assert_eq!(
        reqs[0]["url"],
        "/users/6e7b768e-07e2-4810-8459-485f84f8f204"
    );
    assert_eq!(
        reqs[0]["body"],
        serde_json::json!({"jobTitle": "Store Director", "businessPhones": ["+1 1", "+1 2"], "accountEnabled": false})
    );
    assert_eq!(reqs[1]["method"], "PUT");
    assert_eq!(
        reqs[1]["url"],
        "/users/5bde3e51-d13b-4db1-9948-fe4b109d11a7/manager/$ref"
    );
    assert_eq!(
        reqs[1]["body"]["@odata.id"],
        "https://graph.microsoft.com/v1.0/directoryObjects/87d349ed-44d7-43e1-9a83-5f2406dee5bd"
    );
    assert_eq!(reqs[2]["method"], "POST");
    assert_eq!(
        reqs[2]["url"],
        "/groups/2f7d9c1e-0000-4000-8000-000000000001/members/$ref"
    );
    assert_eq!(reqs[3]["method"], "DELETE");
    assert_eq!(
        reqs[3]["url"],
        "/groups/02bd9fd6-8f93-4758-87c3-1fb73740a315/members/87d349ed-44d7-43e1-9a83-5f2406dee5bd/$ref"
    );
    let ids: Vec<&str> = reqs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["1", "2", "3", "4"]);
    // More than 20 requests are split into batches Graph accepts.
    for _ in 0..25 {
        changes.push(DirectoryChange::AddMember {
            role: "salesteam".into(),
            user: "meganb".into(),
        });
    }
    let out = export::to_graph_batches(&changes, &s, &map);
    let sizes: Vec<usize> = out
        .output
        .iter()
        .map(|b| b["requests"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [20, 9]);
}
