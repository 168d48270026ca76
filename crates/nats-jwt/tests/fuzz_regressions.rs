//! Inputs that made the nats-jwt fuzz targets (fuzz/, run by scripts/fuzz) fail, kept here
//! so `cargo test` holds what was learnt from them.

use nats_jwt::*;

const OP_SEED: &str = "SOAAAAICAMCAKBQHBAEQUCYMBUHA6EARCIJRIFIWC4MBSGQ3DQOR4H2AJA";
const B64: data_encoding::Encoding = data_encoding::BASE64URL_NOPAD;

/// A token over `payload`, signed by `kp`, as another tool could have written it.
fn sign(kp: &KeyPair, payload: &serde_json::Value) -> String {
    let mut token = B64.encode(jwt::HEADER_JSON.as_bytes());
    token.push('.');
    token.push_str(&B64.encode(payload.to_string().as_bytes()));
    let sig = kp.sign(token.as_bytes());
    token.push('.');
    token.push_str(&B64.encode(&sig));
    token
}

/// The `jwt_claims` target's input: an export with `"account_token_position": 0`. It reads
/// as `Some(0)` and is written as absent (Go's omitempty), so the typed claims differ after
/// a round trip; what matters holds: nothing blocking in validation, and the token Warden writes reads
/// back and encodes to itself.
#[test]
fn zero_account_token_position_round_trips_on_the_wire() {
    let op = KeyPair::from_seed(OP_SEED).expect("seed");
    let acc = KeyPair::generate(KeyKind::Account);
    let payload = serde_json::json!({
        "jti": "X", "iat": 1_700_000_000, "iss": op.public_key().as_str(), "name": "APP",
        "sub": acc.public_key().as_str(),
        "nats": {
            "exports": [{"name": "api", "subject": "api.*.req", "type": "service",
                         "token_req": true, "account_token_position": 0}],
            "limits": {"exports": -1, "wildcards": true},
            "type": "account", "version": 2
        }
    });
    let read = decode::<Account>(&sign(&op, &payload)).expect("decodes");
    assert_eq!(read.nats.exports[0].account_token_position, Some(0));
    let issues = read.validate(1_700_000_000);
    assert!(!is_blocking(&issues), "{issues:?}");

    let mut first = read.clone();
    let written = first.encode_at(&op, 1_700_000_000).expect("encodes");
    let mut back = decode::<Account>(&written).expect("reads back what it wrote");
    assert_eq!(back.nats.exports[0].account_token_position, None);
    assert_eq!(
        back.encode_at(&op, 1_700_000_000).expect("encodes"),
        written
    );
}
