//! Throwaway PostgreSQL databases.

use sqlx::Connection as _;
use warden_testkit::{PgDatabase, install_sqlx_drivers};

async fn exists(name: &str) -> bool {
    let admin = std::env::var("WARDEN_TEST_PG_URL")
        .unwrap_or_else(|_| warden_testkit::DEFAULT_PG_URL.to_owned());
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    n == 1
}

#[tokio::test]
async fn database_is_created_and_dropped() {
    let db = PgDatabase::create().await;
    let name = db.name().to_owned();
    assert!(name.starts_with(&format!("warden_test_{}_", std::process::id())));
    assert!(db.url().ends_with(&format!("/{name}")), "{}", db.url());

    let mut conn = sqlx::PgConnection::connect(db.url()).await.unwrap();
    let current: String = sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(current, name);
    assert!(exists(&name).await);

    // Dropped even with a connection still open (WITH (FORCE)).
    drop(db);
    assert!(!exists(&name).await, "{name} still exists after drop");
    drop(conn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_driver_works_in_a_multi_thread_runtime() {
    install_sqlx_drivers();
    install_sqlx_drivers();
    let db = PgDatabase::create().await;
    let mut conn = sqlx::AnyConnection::connect(db.url()).await.unwrap();
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(one, 1);
    conn.close().await.unwrap();
    let name = db.name().to_owned();
    drop(db);
    assert!(!exists(&name).await);
}

#[test]
fn drop_outside_a_runtime() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = rt.block_on(PgDatabase::create());
    let name = db.name().to_owned();
    drop(rt);
    drop(db);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert!(!rt.block_on(exists(&name)));
}

#[tokio::test]
async fn databases_are_distinct() {
    let a = PgDatabase::create().await;
    let b = PgDatabase::create().await;
    assert_ne!(a.name(), b.name());
}
