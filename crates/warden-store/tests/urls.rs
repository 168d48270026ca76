//! Database URLs: redaction, backend selection, and what an unreachable database reports.

use std::time::{Duration, Instant};

use warden_store::{Backend, MasterKey, Store, StoreError, redact_url};

#[test]
fn redact_url_hides_passwords_only() {
    let cases = [
        (
            "postgres://u:secret@127.0.0.1:5432/db",
            "postgres://u:***@127.0.0.1:5432/db",
        ),
        (
            "postgresql://u:secret@h/db?sslmode=require",
            "postgresql://u:***@h/db?sslmode=require",
        ),
        ("postgres://u:p%40ss@h", "postgres://u:***@h"),
        ("postgres://u:pa:ss@h/db", "postgres://u:***@h/db"),
        ("postgres://u:@h/db", "postgres://u:***@h/db"),
        ("postgres://user@h/db", "postgres://user@h/db"),
        ("postgres://h/db", "postgres://h/db"),
        (
            "postgres://h/db?user=u&password=secret",
            "postgres://h/db?user=u&password=***",
        ),
        (
            "postgres://h/db?password=secret#frag",
            "postgres://h/db?password=***#frag",
        ),
        (
            "postgres://h/db?sslpassword=secret",
            "postgres://h/db?sslpassword=***",
        ),
        ("postgres://h/x@y", "postgres://h/x@y"),
        (
            "sqlite:///var/lib/warden/warden.db",
            "sqlite:///var/lib/warden/warden.db",
        ),
        ("sqlite://warden.db?mode=rwc", "sqlite://warden.db?mode=rwc"),
        ("sqlite::memory:", "sqlite::memory:"),
        ("", ""),
    ];
    for (url, want) in cases {
        assert_eq!(redact_url(url), want, "redacting {url:?}");
    }
}

#[test]
fn backend_is_chosen_by_scheme() {
    assert_eq!(Backend::from_url("sqlite:///x.db"), Some(Backend::Sqlite));
    assert_eq!(Backend::from_url("sqlite::memory:"), Some(Backend::Sqlite));
    assert_eq!(
        Backend::from_url("postgres://h/db"),
        Some(Backend::Postgres)
    );
    assert_eq!(
        Backend::from_url("postgresql://h/db"),
        Some(Backend::Postgres)
    );
    assert_eq!(Backend::from_url("mysql://h/db"), None);
    assert_eq!(Backend::from_url("warden.db"), None);
}

#[tokio::test]
async fn unreachable_database_is_one_line_without_the_password() {
    let started = Instant::now();
    let err = Store::open(
        "postgres://u:secret@127.0.0.1:1/x",
        MasterKey::from_bytes([1; 32]),
    )
    .await
    .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(20));
    let StoreError::Connect { url, .. } = &err else {
        panic!("expected Connect, got {err}");
    };
    assert_eq!(url, "postgres://u:***@127.0.0.1:1/x");
    let text = err.to_string();
    assert!(!text.contains("secret"), "{text}");
    assert!(!format!("{err:?}").contains("secret"), "{err:?}");
    assert!(text.contains("postgres://u:***@127.0.0.1:1/x"), "{text}");
    assert!(!text.contains('\n'), "{text}");
}

#[tokio::test]
async fn unsupported_scheme_is_a_connect_error() {
    let err = Store::open("mysql://u:secret@h/db", MasterKey::from_bytes([1; 32]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err}");
    assert!(!err.to_string().contains("secret"), "{err}");
}
