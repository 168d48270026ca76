//! Creds file bytes and the tolerant parser.

use nats_jwt::*;

fn user_creds() -> (String, KeyPair, String) {
    let acc = KeyPair::generate(KeyKind::Account);
    let user = KeyPair::generate(KeyKind::User);
    let mut c = UserClaims::new(&user.user_public_key().unwrap(), "u");
    let jwt = c.encode_at(&acc, 1700000000).unwrap();
    let creds = format_user_creds(&jwt, &user.seed()).unwrap();
    (jwt, user, creds)
}

#[test]
fn exact_line_lengths_and_bytes() {
    let (jwt, user, creds) = user_creds();
    assert!(creds.ends_with("*\n") && !creds.ends_with("\n\n"));
    let body = creds.strip_suffix('\n').unwrap();
    let lens: Vec<usize> = body.split('\n').map(str::len).collect();
    assert_eq!(
        lens,
        vec![29, jwt.len(), 29, 0, 61, 63, 53, 0, 30, 58, 30, 0, 61]
    );
    let expected = format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
************************* IMPORTANT *************************\n\
NKEY Seed printed below can be used to sign and prove identity.\n\
NKEYs are sensitive and should be treated as secrets.\n\n\
-----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n\n\
*************************************************************\n",
        user.seed().expose()
    );
    assert_eq!(creds, expected);
}

#[test]
fn refuses_non_user_jwt_and_seed() {
    let (jwt, _, _) = user_creds();
    let acc = KeyPair::generate(KeyKind::Account);
    assert!(matches!(
        format_user_creds(&jwt, &acc.seed()),
        Err(CredsError::NotUserSeed(KeyKind::Account))
    ));
    let op = KeyPair::generate(KeyKind::Operator);
    let mut a = AccountClaims::new(&acc.account_public_key().unwrap(), "A");
    let ajwt = a.encode(&op).unwrap();
    let user = KeyPair::generate(KeyKind::User);
    assert!(matches!(
        format_user_creds(&ajwt, &user.seed()),
        Err(CredsError::NotUserJwt("account"))
    ));
    let deco = format_decorated_jwt(&ajwt).unwrap();
    assert_eq!(
        deco,
        format!("-----BEGIN NATS ACCOUNT JWT-----\n{ajwt}\n------END NATS ACCOUNT JWT------\n\n")
    );
}

#[test]
fn parse_roundtrip_crlf_and_fallbacks() {
    let (jwt, user, creds) = user_creds();
    let parsed = parse_creds(&creds).unwrap();
    assert_eq!(parsed.jwt, jwt);
    assert_eq!(parsed.seed.as_ref().unwrap().expose(), user.seed().expose());

    let crlf = creds.replace('\n', "\r\n");
    let parsed = parse_creds(&crlf).unwrap();
    assert_eq!(parsed.jwt, jwt);
    assert!(parsed.seed.is_some());

    let raw = parse_creds(&format!("  {jwt}\n")).unwrap();
    assert_eq!(raw.jwt, jwt);
    assert!(raw.seed.is_none());

    // Only the JWT block, seed on a loose line.
    let loose = format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n   {}  \n",
        user.seed().expose()
    );
    let parsed = parse_creds(&loose).unwrap();
    assert_eq!(parsed.jwt, jwt);
    assert_eq!(parsed.seed.unwrap().expose(), user.seed().expose());

    assert!(matches!(parse_creds("   \n"), Err(CredsError::NoJwt)));
    // A bad seed in the seed block is an error and does not echo the seed.
    let bad = creds.replace(user.seed().expose(), "SUBADSEED");
    let err = parse_creds(&bad).unwrap_err();
    assert!(!err.to_string().contains("SUBADSEED"));
}

#[test]
fn debug_of_creds_hides_seed() {
    let (_, user, creds) = user_creds();
    let parsed = parse_creds(&creds).unwrap();
    assert!(!format!("{parsed:?}").contains(user.seed().expose()));
}
