//! The account resolver protocol against real servers: every test runs once against
//! nats-server 2.9.10 (`…::v2_9`) and once against 2.15.x (`…::v2_15`).

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{Env, TIMEOUT, account_signed_by, connect_user, now, user_creds};
use nats_jwt::{KeyKind, KeyPair};
use warden_nats::{ResolverClient, ResolverError, TrustError, delete_request, drift, verify_trust};
use warden_testkit::ServerLine;

async fn push_new_account_takes_effect_without_restart(line: ServerLine) {
    let env = Env::start(line);
    let client = env.client().await;
    let (kp, _, jwt) = env.account("APP");
    let key = kp.public_key().into_string();

    // Before the push its users are refused.
    let (_, creds) = user_creds(&kp, "alice", now());
    assert!(connect_user(&env.server.url(), &creds).await.is_err());

    let reply = client.push(&env.operator_claims, &jwt).await.expect("push");
    println!("{}: {reply:?}", env.version());
    assert_eq!(reply.code, 200);
    assert_eq!(reply.message, "jwt updated");
    assert_eq!(reply.account.as_deref(), Some(key.as_str()));
    assert_eq!(reply.server.version, env.version());

    let list = client.list().await.expect("list");
    assert!(list.contains(&key), "{key} not in {list:?}");
    assert!(list.contains(&env.sys_key()));
    assert_eq!(client.lookup(&key).await.expect("lookup"), Some(jwt));

    let user = connect_user(&env.server.url(), &creds)
        .await
        .expect("user of the pushed account connects");
    user.flush().await.expect("flush");
}
both_servers!(push_new_account_takes_effect_without_restart);

async fn push_with_revoked_user_disconnects_it(line: ServerLine) {
    let env = Env::start(line);
    let client = env.client().await;
    let (kp, mut claims, jwt) = env.account("APP");
    client.push(&env.operator_claims, &jwt).await.expect("push");

    let (user, creds) = user_creds(&kp, "bob", now() - 10);
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let connected = async_nats::ConnectOptions::with_credentials(&creds)
        .expect("creds")
        .event_callback(move |e| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(e.to_string());
            }
        })
        .connect(env.server.url())
        .await
        .expect("user connects");
    connected.flush().await.expect("flush");

    claims.nats.revoke(user.public_key().as_str(), now());
    let revoked = claims.encode(&env.operator_signing).expect("encode");
    let reply = client
        .push(&env.operator_claims, &revoked)
        .await
        .expect("push revocation");
    assert_eq!(reply.code, 200);

    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Some(e)) => {
                let done = e == "disconnected";
                seen.push(e);
                if done {
                    break;
                }
            }
            _ => panic!("{}: user not disconnected; events {seen:?}", env.version()),
        }
    }
    println!("{}: events of the revoked user: {seen:?}", env.version());

    let err = connect_user(&env.server.url(), &creds)
        .await
        .expect_err("revoked user must be refused");
    println!("{}: new connect refused: {err}", env.version());
    // A user issued after the revocation still gets in.
    let (_, fresh) = user_creds(&kp, "bob2", now() + 1);
    connect_user(&env.server.url(), &fresh)
        .await
        .expect("a user issued later connects");
}
both_servers!(push_with_revoked_user_disconnects_it);

async fn untrusted_accounts_are_never_pushed(line: ServerLine) {
    let env = Env::start(line);
    let client = env.client().await;

    let foreign_operator = KeyPair::generate(KeyKind::Operator);
    let (foreign, _, foreign_jwt) = account_signed_by(&foreign_operator, "FOREIGN", now());
    let self_kp = KeyPair::generate(KeyKind::Account);
    let mut self_claims =
        nats_jwt::AccountClaims::new(&self_kp.account_public_key().expect("account key"), "SELF");
    let self_jwt = self_claims.encode(&self_kp).expect("encode");
    let (good, _, good_jwt) = env.account("GOOD");

    assert!(matches!(
        verify_trust(&env.operator_claims, &foreign_jwt),
        Err(TrustError::UntrustedIssuer { .. })
    ));
    assert!(matches!(
        verify_trust(&env.operator_claims, &self_jwt),
        Err(TrustError::SelfSigned { .. })
    ));
    let accepted = verify_trust(&env.operator_claims, &good_jwt).expect("trusted");
    assert_eq!(accepted.iss, env.operator_signing.public_key().as_str());

    let results = client
        .push_many(
            &env.operator_claims,
            &[foreign_jwt.clone(), self_jwt.clone(), good_jwt],
            8,
        )
        .await;
    assert!(matches!(
        results[0],
        Err(ResolverError::Untrusted(TrustError::UntrustedIssuer { .. }))
    ));
    assert!(matches!(
        results[1],
        Err(ResolverError::Untrusted(TrustError::SelfSigned { .. }))
    ));
    assert_eq!(results[2].as_ref().expect("good pushed").code, 200);

    let list = client.list().await.expect("list");
    assert!(list.contains(&good.public_key().into_string()));
    assert!(!list.contains(&foreign.public_key().into_string()));
    assert!(!list.contains(&self_kp.public_key().into_string()));
    println!("{}: LIST after pushes: {list:?}", env.version());

    // Why the check matters: sent raw, both servers answer "jwt updated" and list the
    // foreign and the self-signed account; only their users are refused later.
    for (what, jwt, kp) in [
        ("foreign", &foreign_jwt, &foreign),
        ("self-signed", &self_jwt, &self_kp),
    ] {
        let raw = client.update(jwt).await;
        println!("{}: raw update of a {what} account: {raw:?}", env.version());
        assert_eq!(raw.expect("stored").code, 200);
        let key = kp.public_key().into_string();
        assert!(client.list().await.expect("list").contains(&key));
        let (_, creds) = user_creds(kp, "mallory", now());
        let refused = connect_user(&env.server.url(), &creds).await;
        assert!(
            refused.is_err(),
            "{what}: user of an untrusted account got in"
        );
    }
}
both_servers!(untrusted_accounts_are_never_pushed);

/// The relay's trust check (`check_own_trust`) leaves the signature to the server: the same
/// refusals as `verify_trust` for issuers, and a JWT whose signature does not hold is refused
/// by the server itself and never stored.
async fn own_pushes_leave_the_signature_to_the_server(line: ServerLine) {
    const B64: data_encoding::Encoding = data_encoding::BASE64URL_NOPAD;
    let env = Env::start(line);
    let client = env.client().await;

    let foreign_operator = KeyPair::generate(KeyKind::Operator);
    let (_, _, foreign_jwt) = account_signed_by(&foreign_operator, "FOREIGN", now());
    let (good, _, good_jwt) = env.account("GOOD");
    let (forged_kp, _, to_forge) = env.account("FORGED");
    let parts: Vec<&str> = to_forge.split('.').collect();
    let mut sig = B64.decode(parts[2].as_bytes()).expect("signature");
    sig[7] ^= 1;
    let forged = format!("{}.{}.{}", parts[0], parts[1], B64.encode(&sig));
    let user_jwt = {
        let (user, _) = user_creds(&good, "u", now());
        let mut c = nats_jwt::UserClaims::new(&user.user_public_key().expect("user key"), "u");
        c.encode(&good).expect("user JWT")
    };

    assert!(matches!(
        warden_nats::check_own_trust(&env.operator_claims, &foreign_jwt),
        Err(TrustError::UntrustedIssuer { .. })
    ));
    assert!(matches!(
        warden_nats::check_own_trust(&env.operator_claims, &user_jwt),
        Err(TrustError::NotAnAccount { found: "user" })
    ));
    assert!(matches!(
        verify_trust(&env.operator_claims, &forged),
        Err(TrustError::Decode(nats_jwt::JwtError::BadSignature))
    ));

    let results = client
        .push_own_many(
            &env.operator_claims,
            &[foreign_jwt, forged, good_jwt, user_jwt],
            8,
        )
        .await;
    assert!(matches!(
        results[0],
        Err(ResolverError::Untrusted(TrustError::UntrustedIssuer { .. }))
    ));
    match &results[1] {
        Err(ResolverError::Refused {
            code, description, ..
        }) => {
            println!(
                "{}: forged signature refused: {code} {description}",
                env.version()
            );
            assert_ne!(*code, 200);
        }
        other => panic!("a forged signature was not refused by the server: {other:?}"),
    }
    assert_eq!(results[2].as_ref().expect("good pushed").code, 200);
    assert!(matches!(
        results[3],
        Err(ResolverError::Untrusted(TrustError::NotAnAccount { .. }))
    ));
    let list = client.list().await.expect("list");
    assert!(list.contains(&good.public_key().into_string()));
    assert!(!list.contains(&forged_kp.public_key().into_string()));
}
both_servers!(own_pushes_leave_the_signature_to_the_server);

/// `check_own_trust` does not verify the activations an account's imports embed either: the
/// server does. Two importers of a private stream, one with its activation intact and one
/// whose activation's signature was altered: the relay's check passes both, the server
/// takes the first and refuses the second, which it never stores.
async fn an_account_whose_activation_does_not_verify_is_refused_by_the_server(line: ServerLine) {
    use nats_jwt::{ActivationClaims, ExportType, Subject};
    const B64: data_encoding::Encoding = data_encoding::BASE64URL_NOPAD;
    let env = Env::start(line);
    let client = env.client().await;
    let subject = Subject::new("feed.>").expect("subject");

    let exporter = KeyPair::generate(KeyKind::Account);
    let exporter_key = exporter.account_public_key().expect("account key");
    let mut exp = nats_jwt::AccountClaims::new(&exporter_key, "EXPORTER");
    let mut export = nats_jwt::Export::new(subject.clone(), ExportType::Stream);
    export.token_req = true;
    exp.nats.exports.push(export);
    let exp_jwt = exp.encode(&env.operator_signing).expect("exporter JWT");

    let importer = |name: &str, forge: bool| {
        let kp = KeyPair::generate(KeyKind::Account);
        let key = kp.account_public_key().expect("account key");
        let mut act = ActivationClaims::new(&key, subject.clone(), ExportType::Stream);
        let mut token = act.encode(&exporter).expect("activation");
        if forge {
            let (body, sig) = token.rsplit_once('.').expect("three parts");
            let mut sig = B64.decode(sig.as_bytes()).expect("signature");
            sig[7] ^= 1;
            token = format!("{body}.{}", B64.encode(&sig));
        }
        let mut claims = nats_jwt::AccountClaims::new(&key, name);
        let mut import =
            nats_jwt::Import::new(subject.clone(), exporter_key.clone(), ExportType::Stream);
        import.token = Some(token);
        claims.nats.imports.push(import);
        let jwt = claims.encode(&env.operator_signing).expect("importer JWT");
        (kp, jwt)
    };
    let (good, good_jwt) = importer("GOODIMP", false);
    let (bad, bad_jwt) = importer("BADIMP", true);

    // The relay's check passes both; the server accepts both accounts.
    for jwt in [&good_jwt, &bad_jwt] {
        warden_nats::check_own_trust(&env.operator_claims, jwt).expect("own trust");
    }
    assert!(verify_trust(&env.operator_claims, &bad_jwt).is_err());
    let results = client
        .push_own_many(&env.operator_claims, &[exp_jwt, good_jwt, bad_jwt], 8)
        .await;
    assert_eq!(results[0].as_ref().expect("exporter pushed").code, 200);
    assert_eq!(
        results[1].as_ref().expect("intact importer pushed").code,
        200
    );
    match &results[2] {
        Err(ResolverError::Refused {
            code, description, ..
        }) => {
            println!(
                "{}: forged activation refused: {code} {description}",
                env.version()
            );
            assert_ne!(*code, 200);
            assert!(description.contains("activation"), "{description}");
        }
        other => panic!("a forged activation was not refused by the server: {other:?}"),
    }
    let list = client.list().await.expect("list");
    assert!(list.contains(&good.public_key().into_string()));
    assert!(!list.contains(&bad.public_key().into_string()));
}
both_servers!(an_account_whose_activation_does_not_verify_is_refused_by_the_server);

async fn delete_removes_account_and_refuses_sys(line: ServerLine) {
    let env = Env::start(line);
    let client = env.client().await;
    let (kp, _, jwt) = env.account("DOOMED");
    let key = kp.account_public_key().expect("account key");
    client.push(&env.operator_claims, &jwt).await.expect("push");
    let (_, creds) = user_creds(&kp, "carol", now());
    let connected = connect_user(&env.server.url(), &creds)
        .await
        .expect("user connects before the delete");
    connected.flush().await.expect("flush");

    let request =
        delete_request(&env.operator_signing, std::slice::from_ref(&key)).expect("request");
    let reply = client.delete(&request).await.expect("delete");
    println!("{}: {reply:?}", env.version());
    assert_eq!(reply.code, 200);
    assert!(reply.message.contains("deleted 1"), "{}", reply.message);

    let list = client.list().await.expect("list");
    assert!(!list.contains(&key.to_string()), "{list:?}");
    assert!(
        connect_user(&env.server.url(), &creds).await.is_err(),
        "user of a deleted account must be refused"
    );

    let sys = env.sys.account_public_key().expect("account key");
    let request = delete_request(&env.operator_signing, &[sys]).expect("request");
    match client.delete(&request).await {
        Err(ResolverError::Refused {
            code, description, ..
        }) => {
            println!(
                "{}: deleting SYS refused: {code} {description}",
                env.version()
            );
            assert!(description.contains("system account"), "{description}");
        }
        other => panic!("deleting SYS: {other:?}"),
    }
    assert!(client.list().await.expect("list").contains(&env.sys_key()));
}
both_servers!(delete_removes_account_and_refuses_sys);

async fn lookup_of_unknown_account_is_none(line: ServerLine) {
    let env = Env::start(line);
    let client = env.client().await;
    assert_eq!(
        client.lookup(&env.sys_key()).await.expect("lookup SYS"),
        Some(env.sys_jwt.clone())
    );
    let unknown = KeyPair::generate(KeyKind::Account)
        .public_key()
        .into_string();
    let raw = client
        .client()
        .request(
            format!("$SYS.REQ.ACCOUNT.{unknown}.CLAIMS.LOOKUP"),
            Vec::new().into(),
        )
        .await;
    // What the servers do, pinned: 2.9.10 stays silent, 2.15 answers an empty message.
    match (line, &raw) {
        (ServerLine::V2_9, Err(e)) => {
            assert_eq!(e.kind(), async_nats::RequestErrorKind::TimedOut, "{e}")
        }
        (ServerLine::V2_15, Ok(m)) => assert!(m.payload.is_empty(), "{m:?}"),
        (_, other) => panic!("{}: unknown lookup: {other:?}", env.version()),
    }
    let started = Instant::now();
    assert_eq!(client.lookup(&unknown).await.expect("lookup"), None);
    let took = started.elapsed();
    println!("{}: unknown lookup took {took:?}", env.version());
    assert!(
        took < common::TIMEOUT + Duration::from_millis(500),
        "{took:?}"
    );
    assert!(matches!(
        client.lookup("not-a-key").await,
        Err(ResolverError::InvalidAccountKey { .. })
    ));
}
both_servers!(lookup_of_unknown_account_is_none);

async fn drift_reports_missing_stale_unknown_and_clears(line: ServerLine) {
    let env = Env::start(line);
    let client = env.client().await;
    let t = now();

    // Stale: the server holds an older JWT of the same account.
    let (stale_kp, mut stale_claims, old_jwt) = env.account("STALE");
    let stale_old = {
        let mut c = stale_claims.clone();
        c.encode_at(&env.operator_signing, t - 100).expect("encode")
    };
    let _ = old_jwt;
    stale_claims.nats.description = Some("edited".into());
    let stale_new = stale_claims
        .encode_at(&env.operator_signing, t)
        .expect("encode");
    client
        .push(&env.operator_claims, &stale_old)
        .await
        .expect("push");

    // Missing: only in Warden.
    let (missing_kp, _, missing_jwt) = env.account("MISSING");
    // Unknown: pushed behind Warden's back.
    let (unknown_kp, _, unknown_jwt) = env.account("UNKNOWN");
    client
        .push(&env.operator_claims, &unknown_jwt)
        .await
        .expect("push");
    // In step.
    let (same_kp, _, same_jwt) = env.account("SAME");
    client
        .push(&env.operator_claims, &same_jwt)
        .await
        .expect("push");

    let key = |kp: &KeyPair| kp.public_key().into_string();
    let mut expected = BTreeMap::new();
    expected.insert(env.sys_key(), env.sys_jwt.clone());
    expected.insert(key(&stale_kp), stale_new.clone());
    expected.insert(key(&missing_kp), missing_jwt.clone());
    expected.insert(key(&same_kp), same_jwt.clone());

    let d = drift(&client, &expected).await.expect("drift");
    println!("{}: {d:?}", env.version());
    assert_eq!(d.missing, vec![key(&missing_kp)]);
    assert_eq!(d.stale, vec![key(&stale_kp)]);
    assert_eq!(d.unknown, vec![key(&unknown_kp)]);
    assert!(d.newer_on_server.is_empty());
    assert!(!d.is_empty());

    // Fix: push what is missing or stale, delete what is unknown.
    for k in d.missing.iter().chain(&d.stale) {
        client
            .push(&env.operator_claims, &expected[k])
            .await
            .expect("push fix");
    }
    let unknown: Vec<_> = d
        .unknown
        .iter()
        .map(|k| nats_jwt::AccountPublicKey::new(k).expect("account key"))
        .collect();
    let request = delete_request(&env.operator, &unknown).expect("delete request");
    client.delete(&request).await.expect("delete");

    let d = drift(&client, &expected).await.expect("drift");
    assert!(d.is_empty(), "{d:?}");

    // A server JWT newer than Warden's is stale and flagged.
    let newer = stale_claims
        .encode_at(&env.operator_signing, t + 100)
        .expect("encode");
    client
        .push(&env.operator_claims, &newer)
        .await
        .expect("push");
    let d = drift(&client, &expected).await.expect("drift");
    assert_eq!(d.stale, vec![key(&stale_kp)]);
    assert_eq!(d.newer_on_server, vec![key(&stale_kp)]);
}
both_servers!(drift_reports_missing_stale_unknown_and_clears);

async fn update_many_pushes_1000_accounts(line: ServerLine) {
    let env = Env::start(line);
    // Four connections, so the round-robin over lanes is covered too.
    let client = warden_nats::ResolverClient::connect_lanes(
        &env.server.url(),
        &env.sys_creds,
        common::TIMEOUT,
        4,
    )
    .await
    .expect("system user connects");
    assert_eq!(client.lanes(), 4);
    let accounts: Vec<(String, String)> = (0..1000)
        .map(|i| {
            let (kp, _, jwt) = env.account(&format!("A{i}"));
            (kp.public_key().into_string(), jwt)
        })
        .collect();
    let jwts: Vec<String> = accounts.iter().map(|(_, j)| j.clone()).collect();
    let started = Instant::now();
    let results = client.update_many(&jwts, 256).await;
    let took = started.elapsed();
    println!("{}: 1000 updates in {took:?}", env.version());
    assert_eq!(results.len(), 1000);
    for ((key, _), r) in accounts.iter().zip(&results) {
        let reply = r.as_ref().expect("update ok");
        assert_eq!(reply.code, 200);
        assert_eq!(
            reply.account.as_deref(),
            Some(key.as_str()),
            "results in input order"
        );
    }
    let list = client.list().await.expect("list");
    for (key, _) in &accounts {
        assert!(list.binary_search(key).is_ok(), "{key} not listed");
    }
    assert_eq!(list.len(), 1001);
}
both_servers!(update_many_pushes_1000_accounts);

async fn garbage_is_refused_with_the_servers_message(line: ServerLine) {
    let env = Env::start(line);
    let client = env.client().await;
    match client.update("this is not a jwt").await {
        Err(ResolverError::Refused {
            code, description, ..
        }) => {
            println!("{}: garbage refused: {code} {description}", env.version());
            assert_eq!(code, 500);
            assert!(description.contains("expected 3 chunks"), "{description}");
        }
        other => panic!("garbage: {other:?}"),
    }
}
both_servers!(garbage_is_refused_with_the_servers_message);

/// A device-style restore, round after round: an importer whose activation was revoked, whose
/// users were all revoked (`*`) and which was deleted from the resolver comes back together with
/// its exporter in one batch — importer first in the input, pushed over several connections.
/// Its user must get in at once. nats-server re-applies an incomplete importer's previous JWT when
/// its exporter changes; pushed at the same moment as the importer's own update, that put the
/// old `*` revocation back and kept it ([`warden_nats::push_waves`] orders the batch).
async fn restored_importer_and_exporter_in_one_batch(line: ServerLine) {
    use nats_jwt::{ActivationClaims, Export, ExportType, Import, Subject};
    const ROUNDS: i64 = 20;
    let env = Env::start(line);
    let client = ResolverClient::connect_lanes(&env.server.url(), &env.sys_creds, TIMEOUT, 4)
        .await
        .expect("system user connects");
    let signer = &env.operator_signing;
    let (hub, mut hub_claims, _) = env.account("HUB");
    let svc: Subject = "svc.>".parse().expect("subject");
    let mut export = Export::new(svc.clone(), ExportType::Service);
    export.token_req = true;
    hub_claims.nats.exports.push(export);
    // Strictly increasing issue times, in the past, so every JWT differs from the last.
    let base = now() - 10 * ROUNDS - 100;
    let mut refused_for = Vec::new();
    for round in 0..ROUNDS {
        let t = base + 10 * round;
        let (dev, mut dev_claims, _) = env.account(&format!("DEV{round}"));
        let dev_key = dev.account_public_key().expect("account key");
        let token = ActivationClaims::new(&dev_key, svc.clone(), ExportType::Service)
            .encode_at(&hub, t)
            .expect("activation");
        let mut import = Import::new(
            svc.clone(),
            hub.account_public_key().expect("account key"),
            ExportType::Service,
        );
        import.token = Some(token);
        dev_claims.nats.imports.push(import);
        let push = |jwts: Vec<String>| {
            let client = &client;
            let operator = &env.operator_claims;
            async move {
                for r in client.push_many(operator, &jwts, 8).await {
                    assert_eq!(r.expect("pushed").code, 200);
                }
            }
        };
        push(vec![
            dev_claims.encode_at(signer, t).expect("encode"),
            hub_claims.encode_at(signer, t).expect("encode"),
        ])
        .await;
        let (_, creds) = user_creds(&dev, "device", t + 1);
        let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
        // Like a device, it stays and keeps trying to reconnect once it is out.
        let _device = async_nats::ConnectOptions::with_credentials(&creds)
            .expect("creds")
            .event_callback(move |e| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(e.to_string());
                }
            })
            .connect(env.server.url())
            .await
            .expect("device user connects");

        // Revoke: every user of the device, its activation; then delete the device.
        dev_claims.nats.revoke("*", t + 2);
        hub_claims.nats.exports[0]
            .revocations
            .insert(dev_key.to_string(), t + 2);
        push(vec![
            dev_claims.encode_at(signer, t + 2).expect("encode"),
            hub_claims.encode_at(signer, t + 2).expect("encode"),
        ])
        .await;
        let delete =
            delete_request(signer, std::slice::from_ref(&dev_key)).expect("delete request");
        client.delete(&delete).await.expect("deleted");
        let out = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(e) = events.recv().await {
                if e == "disconnected" {
                    return;
                }
            }
        });
        out.await.expect("the revoked device is disconnected");

        // Restore both in one batch.
        dev_claims.nats.revocations.clear();
        hub_claims.nats.exports[0].revocations.clear();
        push(vec![
            dev_claims.encode_at(signer, t + 3).expect("encode"),
            hub_claims.encode_at(signer, t + 3).expect("encode"),
        ])
        .await;
        // The server has applied both when it answered.
        if let Err(e) = connect_user(&env.server.url(), &creds).await {
            refused_for.push(format!("round {round}: {e}"));
        }
    }
    assert!(
        refused_for.is_empty(),
        "{}: restored device refused in {} of {ROUNDS} rounds: {refused_for:?}",
        env.version(),
        refused_for.len()
    );
}
both_servers!(restored_importer_and_exporter_in_one_batch);
