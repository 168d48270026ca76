//! One meaning per error kind, on every surface: the table of docs/architecture.md,
//! checked against each surface's own mapping (the CLI's exit code, the HTTP API's
//! status and JSON code, the NATS service's code, the console page's status). Each
//! mapping is one exhaustive `match` (the tidy test forbids catch-all arms), so a new
//! kind cannot be added without deciding what it means everywhere — and this table.

use axum::http::StatusCode;
use warden_ops::{ErrorKind, OpsError};

/// (kind, CLI exit code, HTTP status = NATS service code = console page status, JSON code)
const TABLE: [(ErrorKind, u8, u16, &str); 6] = [
    (ErrorKind::Invalid, 2, 400, "invalid"),
    (ErrorKind::NotFound, 1, 404, "not_found"),
    (ErrorKind::Conflict, 1, 409, "conflict"),
    (ErrorKind::Refused, 1, 403, "refused"),
    (ErrorKind::Unavailable, 1, 503, "unavailable"),
    (ErrorKind::Internal, 1, 500, "internal"),
];

#[test]
fn every_kind_is_in_the_table() {
    let listed: Vec<ErrorKind> = TABLE.iter().map(|row| row.0).collect();
    assert_eq!(listed, ErrorKind::ALL.to_vec());
}

#[test]
fn each_surface_gives_each_kind_the_same_meaning() {
    for (kind, exit, status, code) in TABLE {
        assert_eq!(
            warden::cli::exit_code(kind),
            exit,
            "CLI exit code of {kind:?}"
        );
        assert_eq!(
            warden::http::status_of(kind),
            StatusCode::from_u16(status).expect("a status"),
            "HTTP status of {kind:?}"
        );
        assert_eq!(
            warden::nats_api::status_of(kind),
            status,
            "NATS service code of {kind:?}"
        );
        assert_eq!(
            warden::console::status_of(kind),
            StatusCode::from_u16(status).expect("a status"),
            "console page status of {kind:?}"
        );
        assert_eq!(kind.code(), code, "JSON code of {kind:?}");
    }
}

#[test]
fn errors_carry_their_kind_and_code() {
    // What the operations return, by kind; the codes every surface puts in its JSON.
    let cases = [
        (
            OpsError::Invalid("bad".into()),
            ErrorKind::Invalid,
            "invalid",
        ),
        (
            OpsError::NotFound("user x".into()),
            ErrorKind::NotFound,
            "not_found",
        ),
        (
            OpsError::Conflict("exists".into()),
            ErrorKind::Conflict,
            "conflict",
        ),
        (
            OpsError::NotInitialised,
            ErrorKind::Conflict,
            "not_initialised",
        ),
        (
            OpsError::Refused("no".into()),
            ErrorKind::Refused,
            "refused",
        ),
        (
            OpsError::Unavailable("nats down".into()),
            ErrorKind::Unavailable,
            "unavailable",
        ),
        (OpsError::Jwt("key".into()), ErrorKind::Internal, "internal"),
    ];
    for (err, kind, code) in cases {
        assert_eq!(err.kind(), kind, "{err}");
        assert_eq!(err.code(), code, "{err}");
        assert_eq!(err.is_usage(), kind == ErrorKind::Invalid, "{err}");
    }
}

#[test]
fn a_missing_scope_is_a_refusal_with_its_own_code() {
    // The refusal of an operation for a scope the actor lacks, through the real check.
    let token = warden_ops::tokens::TokenInfo {
        id: "tok_x".into(),
        name: "reader".into(),
        scopes: vec![warden_ops::Scope::Read],
        created_at: 0,
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
        dir_user: None,
    };
    let actor = warden_ops::Actor::token(&token);
    let err = actor
        .require(warden_ops::Scope::Creds, "a creds file")
        .expect_err("a read-only token lacks creds");
    assert_eq!(err.kind(), ErrorKind::Refused);
    assert_eq!(err.code(), "forbidden", "{err}");
    assert_eq!(warden::http::status_of(err.kind()), StatusCode::FORBIDDEN);
    assert_eq!(warden::cli::exit_code(err.kind()), 1);
}
