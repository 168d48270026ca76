//! The light account reads of the console's summary pages, on SQLite and on PostgreSQL:
//! names, kinds (device, tenant), user counts and dates from one statement; the spec only
//! for accounts whose spec may name imports (or exports); the JWTs alone for who signed
//! them; the accounts list's search (the specs whose text holds the search, any ASCII
//! case, `%` and `_` taken literally) and its page's whole rows read by key.

use serde_json::json;
use warden_store::console_queries::SpecOf;
use warden_store::{AccountRow, DeviceRow, MasterKey, OperatorRow, Store, TenantRow, UserRow};

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let url = format!("sqlite://{}", dir.path().join("warden.db").display());
                    let store = warden_store::Store::open(&url, super::key()).await.unwrap();
                    super::$name(store.clone()).await;
                    store.close().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = warden_testkit::PgDatabase::create().await;
                    let store = warden_store::Store::open(db.url(), super::key()).await.unwrap();
                    super::$name(store.clone()).await;
                    store.close().await;
                    drop(db);
                }
            )*
        }
    };
}

on_both_backends!(
    briefs_carry_kinds_counts_and_only_the_specs_with_links,
    briefs_mentioning_read_the_specs_holding_the_search_and_rows_by_key,
);

fn key() -> MasterKey {
    MasterKey::from_bytes([9; 32])
}

fn account(key: &str, name: &str, spec: serde_json::Value) -> AccountRow {
    AccountRow {
        public_key: key.into(),
        operator: "OOP".into(),
        name: name.into(),
        spec,
        jwt: format!("jwt-of-{name}"),
        created_at: 10,
        updated_at: 20,
    }
}

fn user(key: &str, account: &str, name: &str) -> UserRow {
    UserRow {
        public_key: key.into(),
        account: account.into(),
        name: name.into(),
        spec: json!({}),
        jwt: format!("jwt-of-{name}"),
        signing_key: None,
        revoked_at: None,
        created_at: 30,
        updated_at: 30,
    }
}

async fn briefs_carry_kinds_counts_and_only_the_specs_with_links(store: Store) {
    let mut tx = store.begin().await.unwrap();
    tx.insert_operator(&OperatorRow {
        public_key: "OOP".into(),
        name: "op".into(),
        signing_key: "OSK".into(),
        system_account: "ASYS".into(),
        jwt: "op-jwt".into(),
        created_at: 1,
        updated_at: 1,
    })
    .await
    .unwrap();
    let exports = json!({"exports": [{"subject": "a.>"}]});
    let imports = json!({"imports": [{"subject": "a.>", "account": "AEXP"}]});
    // A description that mentions "imports": escaped inside a JSON string, not a key.
    let quoted = json!({"description": "no \"imports\" here"});
    // A tag named "imports": a key the statement cannot tell apart (decoded, no imports).
    let tagged = json!({"tags": {"imports": "x"}});
    for row in [
        account("ASYS", "SYS", json!({})),
        account("AEXP", "EXPORTER", exports.clone()),
        account("AIMP", "IMPORTER", imports.clone()),
        account("ADEV", "DEVICE", json!({})),
        account("ATEN", "TENANT", json!({})),
        account("AQUO", "QUOTED", quoted),
        account("ATAG", "TAGGED", tagged.clone()),
    ] {
        tx.insert_account(&row).await.unwrap();
    }
    for (k, a, n) in [
        ("U1", "AEXP", "u1"),
        ("U2", "AEXP", "u2"),
        ("U3", "ATEN", "u3"),
    ] {
        tx.insert_user(&user(k, a, n)).await.unwrap();
    }
    tx.insert_device(&DeviceRow {
        id: "dev-1".into(),
        account_key: "ADEV".into(),
        user_key: "UDEV".into(),
        state: "provisioned".into(),
        meta: "{}".into(),
        created_at: 5,
        activated_at: None,
        rotated_at: None,
        revoked_at: None,
        restored_at: None,
        updated_at: 5,
    })
    .await
    .unwrap();
    tx.insert_tenant(&TenantRow {
        slug: "acme".into(),
        account_key: "ATEN".into(),
        state: "active".into(),
        limits: "{}".into(),
        created_at: 5,
        updated_at: 5,
        suspended_at: None,
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let briefs = store
        .account_briefs("OOP", SpecOf::Exporters)
        .await
        .unwrap();
    let names: Vec<&str> = briefs.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "DEVICE", "EXPORTER", "IMPORTER", "QUOTED", "SYS", "TAGGED", "TENANT"
        ]
    );
    let by = |n: &str| briefs.iter().find(|b| b.name == n).unwrap();
    assert!(by("DEVICE").device && !by("DEVICE").tenant);
    assert!(by("TENANT").tenant && !by("TENANT").device);
    assert!(!by("SYS").device && !by("SYS").tenant);
    assert_eq!(by("EXPORTER").users, 2);
    assert_eq!(by("TENANT").users, 1);
    assert_eq!(by("SYS").users, 0);
    assert_eq!(
        (by("EXPORTER").created_at, by("EXPORTER").updated_at),
        (10, 20)
    );
    assert_eq!(by("EXPORTER").public_key, "AEXP");
    let spec = |b: &warden_store::console_queries::AccountBrief| {
        b.spec
            .as_deref()
            .map(|t| serde_json::from_str::<serde_json::Value>(t).unwrap())
    };
    // Exporters: the exporting account's spec only.
    assert_eq!(spec(by("EXPORTER")), Some(exports));
    for other in ["SYS", "DEVICE", "TENANT", "QUOTED", "IMPORTER", "TAGGED"] {
        assert_eq!(by(other).spec, None, "{other}");
    }
    // Importers: the importing account's, and the one with a tag named so.
    let briefs = store
        .account_briefs("OOP", SpecOf::Importers)
        .await
        .unwrap();
    let by = |n: &str| briefs.iter().find(|b| b.name == n).unwrap();
    assert_eq!(spec(by("IMPORTER")), Some(imports));
    assert_eq!(spec(by("TAGGED")), Some(tagged));
    for other in ["SYS", "DEVICE", "TENANT", "QUOTED", "EXPORTER"] {
        assert_eq!(by(other).spec, None, "{other}");
    }
    assert_eq!(by("EXPORTER").users, 2);
    assert!(
        store
            .account_briefs("ONOBODY", SpecOf::Importers)
            .await
            .unwrap()
            .is_empty()
    );

    let jwts = store.account_jwts_only("OOP").await.unwrap();
    assert_eq!(jwts.len(), 7);
    assert_eq!(jwts[0], "jwt-of-DEVICE");
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.account_jwts_only("OOP").await.unwrap(), jwts);
    tx.rollback().await.unwrap();
}

async fn briefs_mentioning_read_the_specs_holding_the_search_and_rows_by_key(store: Store) {
    let mut tx = store.begin().await.unwrap();
    tx.insert_operator(&OperatorRow {
        public_key: "OOP".into(),
        name: "op".into(),
        signing_key: "OSK".into(),
        system_account: "ASYS".into(),
        jwt: "op-jwt".into(),
        created_at: 1,
        updated_at: 1,
    })
    .await
    .unwrap();
    let rows = [
        account("ASYS", "SYS", json!({})),
        account(
            "ABIL",
            "BILLING",
            json!({"description": "Invoices for ACME"}),
        ),
        account("APCT", "PERCENT", json!({"description": "50% off_season"})),
        account("AOTH", "OTHER", json!({"description": "nothing"})),
    ];
    for row in &rows {
        tx.insert_account(row).await.unwrap();
    }
    tx.insert_user(&user("U1", "ABIL", "u1")).await.unwrap();
    tx.commit().await.unwrap();

    let with_spec = |briefs: &[warden_store::console_queries::AccountBrief]| -> Vec<String> {
        briefs
            .iter()
            .filter(|b| b.spec.is_some())
            .map(|b| b.name.clone())
            .collect()
    };
    // No needle: no spec at all; the light columns as account_briefs has them.
    let none = store.account_briefs_mentioning("OOP", None).await.unwrap();
    assert_eq!(none.len(), 4);
    assert!(with_spec(&none).is_empty());
    let bil = none.iter().find(|b| b.name == "BILLING").unwrap();
    assert_eq!((bil.users, bil.device, bil.tenant), (1, false, false));
    // Any ASCII case; the spec as stored.
    let acme = store
        .account_briefs_mentioning("OOP", Some("acme"))
        .await
        .unwrap();
    assert_eq!(with_spec(&acme), ["BILLING"]);
    let text = acme.iter().find(|b| b.name == "BILLING").unwrap();
    let spec: serde_json::Value = serde_json::from_str(text.spec.as_deref().unwrap()).unwrap();
    assert_eq!(spec, rows[1].spec);
    // `%` and `_` are the characters themselves, not patterns.
    for (needle, want) in [
        ("0%", vec!["PERCENT"]),
        ("f_s", vec!["PERCENT"]),
        ("%x", vec![]),
    ] {
        let got = store
            .account_briefs_mentioning("OOP", Some(needle))
            .await
            .unwrap();
        assert_eq!(with_spec(&got), want, "{needle}");
    }
    // The empty needle reads every spec.
    let all = store
        .account_briefs_mentioning("OOP", Some(""))
        .await
        .unwrap();
    assert_eq!(with_spec(&all).len(), 4);
    assert!(
        store
            .account_briefs_mentioning("ONOBODY", Some(""))
            .await
            .unwrap()
            .is_empty()
    );

    // Whole rows by key, unknown keys left out.
    let mut got = store
        .accounts_by_keys(&["AOTH".into(), "ANONE".into(), "ABIL".into()])
        .await
        .unwrap();
    got.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(got, vec![rows[1].clone(), rows[3].clone()]);
    assert!(store.accounts_by_keys(&[]).await.unwrap().is_empty());
}
