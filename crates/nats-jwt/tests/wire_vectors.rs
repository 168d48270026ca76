//! Fixed vectors computed independently (Python hashlib / cryptography) and exact JSON shapes.

use nats_jwt::*;

const OP_SEED: &str = "SOAAAAICAMCAKBQHBAEQUCYMBUHA6EARCIJRIFIWC4MBSGQ3DQOR4H2AJA";
const OP_PUB: &str = "OAB2CB576PHBBPQ5ODORRZ2LYCMWPZGWGCN2KDK7DXOIMZASKUY3QZVT";
const OP_TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.eyJqdGkiOiJMR0dTTVNaVlRGRkY1TFNYNjVYMldGUU41SFk3WkhCNFlDMkVWR09VWFVNWFZJSTM2NFVBIiwiaWF0IjoxNzk1MzI0OTQyLCJpc3MiOiJPQUIyQ0I1NzZQSEJCUFE1T0RPUlJaMkxZQ01XUFpHV0dDTjJLREs3RFhPSU1aQVNLVVkzUVpWVCIsIm5hbWUiOiJPUCIsInN1YiI6Ik9BQjJDQjU3NlBIQkJQUTVPRE9SUloyTFlDTVdQWkdXR0NOMktESzdEWE9JTVpBU0tVWTNRWlZUIiwibmF0cyI6eyJ0eXBlIjoib3BlcmF0b3IiLCJ2ZXJzaW9uIjoyfX0.45uBYQzlSsjAHslhlVSxynMnxrnjQd3kllmXAFPo2fNW95ajd6IzT8uzq9htn6HzZxWzu_aKYiEj9V60U6BBBw";

fn payload_json(token: &str) -> String {
    let seg = token.split('.').nth(1).unwrap();
    String::from_utf8(
        data_encoding::BASE64URL_NOPAD
            .decode(seg.as_bytes())
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn seed_derives_known_public_key() {
    let kp = KeyPair::from_seed(OP_SEED).unwrap();
    assert_eq!(kp.public_key().as_str(), OP_PUB);
    assert_eq!(kp.kind(), KeyKind::Operator);
}

#[test]
fn jti_matches_independent_sha512_256() {
    let op = OperatorPublicKey::new(OP_PUB).unwrap();
    let mut c = OperatorClaims::new(&op, "OP");
    c.iat = 1795324942;
    assert_eq!(
        compute_jti(&c).unwrap(),
        "LGGSMSZVTFFF5LSX65X2WFQN5HY7ZHB4YC2EVGOUXUMXVII364UA"
    );
    // Go escapes <, > and & in strings; the hash must follow.
    c.name = "a<b>&c".into();
    assert_eq!(
        compute_jti(&c).unwrap(),
        "P4V6PEG6736I7IACCFY7O32TK6J26VRBQG2CYHFVK2FKOQPJAJ7Q"
    );
}

#[test]
fn operator_token_is_byte_identical_to_independent_signer() {
    let kp = KeyPair::from_seed(OP_SEED).unwrap();
    let mut c = OperatorClaims::new(&kp.operator_public_key().unwrap(), "OP");
    let token = c.encode_at(&kp, 1795324942).unwrap();
    assert_eq!(token, OP_TOKEN);
    let back = decode::<Operator>(OP_TOKEN).unwrap();
    assert_eq!(back, c);
}

#[test]
fn header_segment_is_fixed() {
    let kp = KeyPair::generate(KeyKind::Operator);
    let mut c = OperatorClaims::new(&kp.operator_public_key().unwrap(), "OP");
    let token = c.encode(&kp).unwrap();
    assert_eq!(
        token.split('.').next().unwrap(),
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ"
    );
    assert!(!token.contains('='));
    assert!(c.iat > 1_600_000_000);
    assert_eq!(c.jti.len(), 52);
}

#[test]
fn default_account_json() {
    let op = KeyPair::generate(KeyKind::Operator);
    let acc = KeyPair::generate(KeyKind::Account);
    let mut c = AccountClaims::new(&acc.account_public_key().unwrap(), "A");
    let token = c.encode_at(&op, 1700000000).unwrap();
    let json = payload_json(&token);
    let expected_nats = r#""nats":{"limits":{"subs":-1,"data":-1,"payload":-1,"imports":-1,"exports":-1,"wildcards":true,"conn":-1,"leaf":-1},"default_permissions":{"pub":{},"sub":{}},"type":"account","version":2}}"#;
    assert!(json.ends_with(expected_nats), "{json}");
    let prefix = format!(
        r#"{{"jti":"{}","iat":1700000000,"iss":"{}","name":"A","sub":"{}","#,
        c.jti,
        op.public_key(),
        acc.public_key()
    );
    assert!(json.starts_with(&prefix), "{json}");
}

#[test]
fn default_user_json() {
    let acc = KeyPair::generate(KeyKind::Account);
    let user = KeyPair::generate(KeyKind::User);
    let mut c = UserClaims::new(&user.user_public_key().unwrap(), "u");
    let token = c.encode_at(&acc, 1700000000).unwrap();
    let json = payload_json(&token);
    assert!(
        json.ends_with(r#""nats":{"pub":{},"sub":{},"subs":-1,"data":-1,"payload":-1,"type":"user","version":2}}"#),
        "{json}"
    );
}

#[test]
fn full_user_json_in_go_order() {
    let acc = KeyPair::generate(KeyKind::Account);
    let sk = KeyPair::generate(KeyKind::Account);
    let user = KeyPair::generate(KeyKind::User);
    let mut c = UserClaims::new(&user.user_public_key().unwrap(), "u1");
    let l = &mut c.nats.limits;
    l.permissions.publish.allow = vec![Subject::new("a.>").unwrap()];
    l.permissions.subscribe.deny = vec![Subject::new("b.>").unwrap()];
    l.permissions.response = Some(ResponsePermission {
        max: 1,
        ttl_ns: 1_000_000_000,
    });
    l.src = vec!["127.0.0.1/32".into(), "10.0.0.0/8".into()];
    l.times = vec![TimeRange {
        start: "00:00:00".into(),
        end: "23:59:59".into(),
    }];
    l.times_location = Some("UTC".into());
    l.allowed_connection_types = vec![ConnectionType::Standard, ConnectionType::Websocket];
    c.nats.issuer_account = Some(acc.account_public_key().unwrap());
    c.nats.tags = vec!["foo:bar".into()];
    let token = c.encode_at(&sk, 1700000000).unwrap();
    let json = payload_json(&token);
    let expected = format!(
        r#""nats":{{"pub":{{"allow":["a.\u003e"]}},"sub":{{"deny":["b.\u003e"]}},"resp":{{"max":1,"ttl":1000000000}},"src":["127.0.0.1/32","10.0.0.0/8"],"times":[{{"start":"00:00:00","end":"23:59:59"}}],"times_location":"UTC","subs":-1,"data":-1,"payload":-1,"allowed_connection_types":["STANDARD","WEBSOCKET"],"issuer_account":"{}","tags":["foo:bar"],"type":"user","version":2}}}}"#,
        acc.public_key()
    );
    assert!(json.ends_with(&expected), "{json}\n{expected}");
}

#[test]
fn scoped_signing_key_and_export_json() {
    let op = KeyPair::generate(KeyKind::Operator);
    let acc = KeyPair::generate(KeyKind::Account);
    let sk = KeyPair::generate(KeyKind::Account);
    let mut c = AccountClaims::new(&acc.account_public_key().unwrap(), "A");
    let mut template = UserPermissionLimits::unlimited();
    template.permissions.publish.allow = vec![Subject::new("foo.>").unwrap()];
    c.nats.signing_keys = vec![SigningKey::Scoped(UserScope {
        key: sk.account_public_key().unwrap(),
        role: "dev".into(),
        template,
    })];
    let mut e = Export::new(Subject::new("svc.*").unwrap(), ExportType::Service);
    e.response_type = Some(ResponseType::Stream);
    e.service_latency = Some(ServiceLatency {
        sampling: 0,
        results: Subject::new("lat").unwrap(),
    });
    e.account_token_position = Some(2);
    c.nats.exports = vec![
        e,
        Export::new(Subject::new("a.b").unwrap(), ExportType::Stream),
    ];
    let token = c.encode_at(&op, 1700000000).unwrap();
    let json = payload_json(&token);
    assert!(json.contains(&format!(
        r#""signing_keys":[{{"kind":"user_scope","key":"{}","role":"dev","template":{{"pub":{{"allow":["foo.\u003e"]}},"sub":{{}},"subs":-1,"data":-1,"payload":-1}}}}]"#,
        sk.public_key()
    )), "{json}");
    assert!(json.contains(r#""exports":[{"subject":"a.b","type":"stream"},{"subject":"svc.*","type":"service","response_type":"Stream","service_latency":{"sampling":"headers","results":"lat"},"account_token_position":2}]"#), "{json}");
    let back = decode::<Account>(&token).unwrap();
    assert_eq!(back, c);
}

#[test]
fn scope_template_missing_limits_default_to_unlimited() {
    let sk = KeyPair::generate(KeyKind::Account);
    let json = format!(
        r#"{{"kind":"user_scope","key":"{}","role":"r","template":{{}}}}"#,
        sk.public_key()
    );
    let k: SigningKey = serde_json::from_str(&json).unwrap();
    let SigningKey::Scoped(s) = k else {
        panic!("expected scope")
    };
    assert_eq!(s.template, UserPermissionLimits::unlimited());
}

#[test]
fn generic_delete_request() {
    let op = KeyPair::generate(KeyKind::Operator);
    let acc = KeyPair::generate(KeyKind::Account);
    let mut c = GenericClaims::new(op.public_key().as_str());
    c.nats.body.insert(
        "accounts".into(),
        serde_json::json!([acc.public_key().as_str()]),
    );
    let token = c.encode_at(&op, 1700000000).unwrap();
    let json = payload_json(&token);
    assert!(
        json.ends_with(&format!(
            r#""nats":{{"accounts":["{}"],"version":2}}}}"#,
            acc.public_key()
        )),
        "{json}"
    );
    match decode_any(&token).unwrap() {
        AnyClaims::Generic(g) => assert_eq!(g, c),
        other => panic!("{}", other.kind_name()),
    }
}

#[test]
fn activation_json() {
    let exp = KeyKind::Account;
    let exporter = KeyPair::generate(exp);
    let importer = KeyPair::generate(KeyKind::Account);
    let mut c = ActivationClaims::new(
        &importer.account_public_key().unwrap(),
        Subject::new("svc.>").unwrap(),
        ExportType::Service,
    );
    let token = c.encode_at(&exporter, 1700000000).unwrap();
    assert!(payload_json(&token).ends_with(
        r#""nats":{"subject":"svc.\u003e","kind":"service","type":"activation","version":2}}"#
    ));
    let any = decode_any(&token).unwrap();
    assert_eq!(any.kind_name(), "activation");
    assert_eq!(any.subject(), importer.public_key().as_str());
    assert_eq!(any.issuer(), exporter.public_key().as_str());
    assert_eq!(any.to_json()["nats"]["type"], "activation");
}
