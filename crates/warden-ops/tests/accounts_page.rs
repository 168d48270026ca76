//! The accounts list the console pages through (`Warden::accounts_page`), read from the
//! light account rows with whole rows only for the page shown: kinds, user counts, sorts,
//! paging, and the search in name, public key and description — the description found
//! in any case, with `%`/`_`/quotes taken literally and non-ASCII text matched too, and
//! a spec that merely holds the text elsewhere not matching. On SQLite and PostgreSQL.

use warden_core::AccountSpec;
use warden_ops::device::NewDevice;
use warden_ops::page::{AccountKind, PageRequest};
use warden_ops::{Actor, InitOptions, Warden};
use warden_store::{MasterKey, Store};

fn described(text: &str) -> AccountSpec {
    AccountSpec {
        description: Some(text.into()),
        ..Default::default()
    }
}

fn req(q: &str, sort: &str, desc: bool, page: usize, per: usize) -> PageRequest {
    PageRequest::new(q, sort, desc, page, Some(per))
}

async fn names(w: &Warden, kind: Option<AccountKind>, r: &PageRequest) -> Vec<String> {
    w.accounts_page(kind, r)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| e.account.name)
        .collect()
}

async fn flow(url: &str) {
    let store = Store::open(url, MasterKey::from_bytes([6; 32]))
        .await
        .expect("store");
    let mut w = Warden::open(store.clone(), Actor::operator("test"))
        .await
        .expect("open");
    w.init(InitOptions::named("ACME")).await.expect("init");
    w.add_account("BILLING", described("Invoices for ACME Corp"))
        .await
        .unwrap();
    w.add_account("PERCENT", described("50% off_season \"sale\""))
        .await
        .unwrap();
    w.add_account("CAFE", described("Café Ünïcode"))
        .await
        .unwrap();
    // Holds "invoices" in its spec, but not in its description: not a match.
    let tagged = AccountSpec {
        tags: vec!["invoices".into()],
        ..Default::default()
    };
    w.add_account("TAGGED", tagged).await.unwrap();
    w.add_user("BILLING", "alice", Default::default())
        .await
        .unwrap();
    w.add_user("BILLING", "bob", Default::default())
        .await
        .unwrap();
    w.add_devices_bulk(
        &[NewDevice {
            id: "dev-1".into(),
            meta: Default::default(),
        }],
        |_| {},
    )
    .await
    .unwrap();
    w.add_tenant("acme", &Default::default()).await.unwrap();

    let all = w
        .accounts_page(None, &PageRequest::default())
        .await
        .unwrap();
    // SYS; ACME (made by init), EMDEVS and PLATFORM (the fleet's and the tenants' hubs)
    // and the four made here, plain; a device's account; a tenant's account.
    assert_eq!((all.total, all.matched), (10, 10));
    let billing = all
        .items
        .iter()
        .find(|e| e.account.name == "BILLING")
        .unwrap();
    assert_eq!(billing.account.users, 2);
    assert_eq!(billing.kind, AccountKind::Plain);
    assert!(!billing.account.jwt.is_empty(), "the page's rows are whole");
    assert_eq!(
        billing.account.spec.description.as_deref(),
        Some("Invoices for ACME Corp")
    );
    let kinds: Vec<AccountKind> = all.items.iter().map(|e| e.kind).collect();
    for k in AccountKind::ALL {
        assert_eq!(kinds.iter().filter(|x| **x == k).count(), {
            match k {
                AccountKind::Plain => 7,
                _ => 1,
            }
        });
    }
    let device = w
        .accounts_page(Some(AccountKind::Device), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!((device.total, device.items.len()), (1, 1));

    // Search: name, description in any ASCII case, literal pattern characters, quotes,
    // non-ASCII; text elsewhere in a spec is not a match.
    for (q, want) in [
        ("billing", vec!["BILLING"]),
        ("acme corp", vec!["BILLING"]),
        ("INVOICES", vec!["BILLING"]),
        ("0%", vec!["PERCENT"]),
        ("f_s", vec!["PERCENT"]),
        ("\"sale\"", vec!["PERCENT"]),
        ("café", vec!["CAFE"]),
        ("ÜNÏ", vec!["CAFE"]),
        ("%x", vec![]),
    ] {
        assert_eq!(
            names(&w, None, &req(q, "", false, 1, 50)).await,
            want,
            "{q}"
        );
    }
    let key = billing.account.public_key.to_lowercase();
    assert_eq!(
        names(&w, None, &req(&key, "", false, 1, 50)).await,
        ["BILLING"]
    );
    let searched = w
        .accounts_page(None, &req("invoices", "", false, 1, 50))
        .await
        .unwrap();
    assert_eq!((searched.total, searched.matched), (10, 1));

    // Sorts and pages.
    let by_users = w
        .accounts_page(Some(AccountKind::Plain), &req("", "users", true, 1, 50))
        .await
        .unwrap();
    let counts: Vec<usize> = by_users.items.iter().map(|e| e.account.users).collect();
    assert!(counts.windows(2).all(|p| p[0] >= p[1]), "{counts:?}");
    let desc = names(&w, Some(AccountKind::Plain), &req("", "name", true, 1, 50)).await;
    assert_eq!(
        desc,
        [
            "TAGGED", "PLATFORM", "PERCENT", "EMDEVS", "CAFE", "BILLING", "ACME"
        ]
    );
    let page2 = w
        .accounts_page(Some(AccountKind::Plain), &req("", "name", false, 2, 3))
        .await
        .unwrap();
    assert_eq!(
        (
            page2.page,
            page2.first(),
            page2.items[0].account.name.as_str()
        ),
        (2, 4, "EMDEVS")
    );
    assert!(
        w.accounts_page(None, &req("", "nope", false, 1, 50))
            .await
            .is_err()
    );
    store.close().await;
}

#[tokio::test]
async fn accounts_page_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    flow(&format!("sqlite://{}", dir.path().join("w.db").display())).await;
}

#[tokio::test]
async fn accounts_page_on_postgres() {
    let db = warden_testkit::PgDatabase::create().await;
    flow(db.url()).await;
}
