//! The organisation tables (migration 0004): the applied spec and the unit and person
//! bindings, on SQLite and on PostgreSQL.

use serde_json::json;
use warden_store::org::{OrgPersonRow, OrgSpecRow, OrgUnitRow, PERSON_ACTIVE, PERSON_REVOKED};
use warden_store::{MasterKey, Store, StoreError};

async fn bindings_round_trip_and_commit_together(store: Store) {
    assert!(store.org_spec().await.unwrap().is_none());
    let mut tx = store.begin().await.unwrap();
    let spec = OrgSpecRow {
        name: "thecowboyai".into(),
        spec: json!({"organization": {"name": "thecowboyai"}, "units": []}),
        applied_at: 10,
    };
    tx.set_org_spec(&spec).await.unwrap();
    for (unit, key) in [("media", "AM"), ("core", "AC")] {
        tx.put_org_unit(&OrgUnitRow {
            unit_id: unit.into(),
            account_key: key.into(),
            updated_at: 10,
        })
        .await
        .unwrap();
    }
    tx.put_org_person(&OrgPersonRow {
        person_id: "person".into(),
        user_key: "U1".into(),
        status: PERSON_ACTIVE.into(),
        updated_at: 10,
    })
    .await
    .unwrap();
    // Nothing is visible before commit.
    assert!(store.org_units().await.unwrap().is_empty());
    tx.commit().await.unwrap();

    assert_eq!(store.org_spec().await.unwrap(), Some(spec.clone()));
    let units = store.org_units().await.unwrap();
    let ids: Vec<&str> = units.iter().map(|u| u.unit_id.as_str()).collect();
    assert_eq!(ids, ["core", "media"]);

    // Upserts replace; one account cannot be bound to two units.
    let mut tx = store.begin().await.unwrap();
    tx.set_org_spec(&OrgSpecRow {
        applied_at: 20,
        ..spec.clone()
    })
    .await
    .unwrap();
    tx.put_org_person(&OrgPersonRow {
        person_id: "person".into(),
        user_key: "U2".into(),
        status: PERSON_REVOKED.into(),
        updated_at: 20,
    })
    .await
    .unwrap();
    let clash = tx
        .put_org_unit(&OrgUnitRow {
            unit_id: "dev".into(),
            account_key: "AC".into(),
            updated_at: 20,
        })
        .await
        .unwrap_err();
    assert!(matches!(clash, StoreError::Conflict { .. }), "{clash}");
    tx.delete_org_unit("media").await.unwrap();
    assert!(matches!(
        tx.delete_org_unit("media").await.unwrap_err(),
        StoreError::NotFound { .. }
    ));
    tx.commit().await.unwrap();
    assert_eq!(store.org_spec().await.unwrap().unwrap().applied_at, 20);
    let people = store.org_people().await.unwrap();
    assert_eq!(people.len(), 1);
    assert_eq!(
        (people[0].user_key.as_str(), people[0].status.as_str()),
        ("U2", "revoked")
    );
    assert_eq!(store.org_units().await.unwrap().len(), 1);

    // A dropped transaction leaves nothing.
    {
        let mut tx = store.begin().await.unwrap();
        tx.delete_org_person("person").await.unwrap();
    }
    assert_eq!(store.org_people().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_bindings_round_trip_and_commit_together() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("warden.db").display());
    let store = Store::open(&url, MasterKey::from_bytes([7; 32]))
        .await
        .unwrap();
    bindings_round_trip_and_commit_together(store.clone()).await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_bindings_round_trip_and_commit_together() {
    let db = warden_testkit::PgDatabase::create().await;
    let store = Store::open(db.url(), MasterKey::from_bytes([7; 32]))
        .await
        .unwrap();
    bindings_round_trip_and_commit_together(store.clone()).await;
    store.close().await;
    drop(db);
}
