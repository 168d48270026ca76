//! Each implemented validation issue is produced by some claim.

use nats_jwt::*;

fn s(x: &str) -> Subject {
    Subject::new(x).unwrap()
}

fn has(issues: &[ValidationIssue], f: impl Fn(&IssueKind) -> bool) -> bool {
    issues.iter().any(|i| f(&i.kind))
}

fn account() -> (KeyPair, AccountClaims) {
    let acc = KeyPair::generate(KeyKind::Account);
    let c = AccountClaims::new(&acc.account_public_key().unwrap(), "A");
    (acc, c)
}

#[test]
fn time_checks_are_marked() {
    let (_, mut c) = account();
    c.exp = Some(100);
    c.nbf = Some(1000);
    let issues = c.validate(500);
    let exp = issues
        .iter()
        .find(|i| matches!(i.kind, IssueKind::Expired { exp: 100 }))
        .unwrap();
    assert!(exp.time_check && !exp.blocking);
    let nbf = issues
        .iter()
        .find(|i| matches!(i.kind, IssueKind::NotYetValid { nbf: 1000 }))
        .unwrap();
    assert!(nbf.time_check);
    assert!(!is_blocking(&issues));
    assert!(is_blocking_with_time(&issues));
    assert!(
        c.validate(50)
            .iter()
            .all(|i| !matches!(i.kind, IssueKind::Expired { .. }))
    );
    assert!(exp.to_string().contains("expired"));
}

#[test]
fn fresh_claims_are_clean() {
    let (_, c) = account();
    assert_eq!(c.validate(0), vec![]);
    let u = KeyPair::generate(KeyKind::User);
    assert_eq!(
        UserClaims::new(&u.user_public_key().unwrap(), "u").validate(0),
        vec![]
    );
    let o = KeyPair::generate(KeyKind::Operator);
    assert_eq!(
        OperatorClaims::new(&o.operator_public_key().unwrap(), "o").validate(0),
        vec![]
    );
}

#[test]
fn subject_and_name() {
    let (_, mut c) = account();
    c.name.clear();
    assert!(has(&c.validate(0), |k| matches!(k, IssueKind::MissingName)));
    c.sub = KeyPair::generate(KeyKind::User).public_key().into_string();
    assert!(has(&c.validate(0), |k| matches!(
        k,
        IssueKind::InvalidSubjectKey {
            expected: KeyKind::Account,
            ..
        }
    )));
    c.sub.clear();
    let issues = c.validate(0);
    assert!(has(&issues, |k| matches!(k, IssueKind::MissingSubject)));
    assert!(is_blocking(&issues));
}

#[test]
fn account_limits_and_exports() {
    let (_, mut c) = account();
    c.nats.limits.account.exports = 1;
    c.nats.limits.account.imports = 0;
    c.nats.limits.account.wildcards = false;
    c.nats.exports = vec![
        Export::new(s("a.*"), ExportType::Stream),
        Export::new(s("a.b"), ExportType::Stream),
    ];
    let other = KeyPair::generate(KeyKind::Account)
        .account_public_key()
        .unwrap();
    c.nats.imports = vec![Import::new(s("x"), other, ExportType::Stream)];
    let issues = c.validate(0);
    assert!(has(&issues, |k| matches!(
        k,
        IssueKind::TooManyExports { count: 2, max: 1 }
    )));
    assert!(has(&issues, |k| matches!(
        k,
        IssueKind::TooManyImports { count: 1, max: 0 }
    )));
    assert!(has(
        &issues,
        |k| matches!(k, IssueKind::WildcardExportNotAllowed { subject } if subject == "a.*")
    ));
    assert!(has(&issues, |k| matches!(
        k,
        IssueKind::OverlappingExports { .. }
    )));
}

#[test]
fn export_rules() {
    let (_, mut c) = account();
    let mut st = Export::new(s("st.>"), ExportType::Stream);
    st.response_type = Some(ResponseType::Chunked);
    st.response_threshold_ns = Some(5);
    st.service_latency = Some(ServiceLatency {
        sampling: 50,
        results: s("r"),
    });
    let mut sv = Export::new(s("sv.*.x"), ExportType::Service);
    sv.response_threshold_ns = Some(-1);
    sv.service_latency = Some(ServiceLatency {
        sampling: 101,
        results: s("r.*"),
    });
    sv.account_token_position = Some(3);
    sv.info_url = Some("not a url".into());
    sv.description = Some("d".repeat(9000));
    let q = Export::new(s("q.x grp"), ExportType::Service);
    c.nats.exports = vec![st, sv, q];
    let i = c.validate(0);
    assert!(has(&i, |k| matches!(
        k,
        IssueKind::ResponseTypeOnStream { .. }
    )));
    assert!(has(&i, |k| matches!(
        k,
        IssueKind::ResponseThresholdOnStream { .. }
    )));
    assert!(has(&i, |k| matches!(k, IssueKind::LatencyOnStream { .. })));
    assert!(has(&i, |k| matches!(
        k,
        IssueKind::NegativeResponseThreshold { .. }
    )));
    assert!(has(&i, |k| matches!(
        k,
        IssueKind::InvalidLatencySampling { sampling: 101, .. }
    )));
    assert!(has(&i, |k| matches!(
        k,
        IssueKind::LatencyResultsWildcard { .. }
    )));
    assert!(has(&i, |k| matches!(
        k,
        IssueKind::InvalidAccountTokenPosition { position: 3, .. }
    )));
    assert!(has(&i, |k| matches!(
        k,
        IssueKind::InvalidUrl {
            field: "info_url",
            ..
        }
    )));
    assert!(has(&i, |k| matches!(
        k,
        IssueKind::InfoTooLong {
            field: "description"
        }
    )));
    assert!(has(&i, |k| matches!(k, IssueKind::QueueInExport { .. })));
}

#[test]
fn jetstream_tiers_mappings_revocations_self_signed() {
    let (acc, mut c) = account();
    c.nats.limits.jetstream = JetStreamLimits::unlimited();
    c.nats
        .limits
        .tiered_limits
        .insert("".into(), JetStreamLimits::unlimited());
    c.nats.mappings.insert(
        s("m.a"),
        vec![
            WeightedMapping {
                subject: s("m.b"),
                weight: Some(60),
                cluster: None,
            },
            WeightedMapping {
                subject: s("m.*"),
                weight: Some(50),
                cluster: None,
            },
        ],
    );
    c.nats.revocations.insert("nonsense".into(), 5);
    c.nats.limits.account.conn = 5;
    c.iss = acc.public_key().into_string();
    let i = c.validate(0);
    assert!(has(&i, |k| matches!(k, IssueKind::TieredAndFlatJetStream)));
    assert!(has(&i, |k| matches!(k, IssueKind::BlankTier)));
    assert!(has(&i, |k| matches!(
        k,
        IssueKind::MappingWeightsTooHigh { total: 110, .. }
    )));
    assert!(has(&i, |k| matches!(
        k,
        IssueKind::MappingDestinationWildcard { .. }
    )));
    assert!(has(&i, |k| matches!(
        k,
        IssueKind::InvalidRevocationKey { .. }
    )));
    let w = i
        .iter()
        .find(|x| matches!(x.kind, IssueKind::SelfSignedWithLimits))
        .unwrap();
    assert!(!w.blocking);
}

#[test]
fn import_rules_and_activation_tokens() {
    let exporter = KeyPair::generate(KeyKind::Account);
    let (importer, mut c) = account();
    let exp_pub = exporter.account_public_key().unwrap();
    let imp_pub = importer.account_public_key().unwrap();

    let mut act = ActivationClaims::new(&imp_pub, s("svc.>"), ExportType::Service);
    let good = act.encode_at(&exporter, 1).unwrap();
    let mut wrong_kind = ActivationClaims::new(&imp_pub, s("other.>"), ExportType::Stream);
    let wrong = wrong_kind.encode_at(&exporter, 1).unwrap();

    let mut ok = Import::new(s("svc.a"), exp_pub.clone(), ExportType::Service);
    ok.token = Some(good.clone());
    let mut mismatched = Import::new(s("svc.b"), exp_pub.clone(), ExportType::Service);
    mismatched.token = Some(wrong);
    let mut garbage = Import::new(s("svc.c"), exp_pub.clone(), ExportType::Service);
    garbage.token = Some("not.a.jwt".into());
    let mut dep = Import::new(s("st.x"), exp_pub.clone(), ExportType::Stream);
    dep.to = Some(s("local.x"));
    dep.local_subject = Some(s("local.y"));
    let mut bad_local = Import::new(s("st.*"), exp_pub.clone(), ExportType::Stream);
    bad_local.local_subject = Some(s("l.y"));
    let overlap = Import::new(s("svc.>"), exp_pub.clone(), ExportType::Service);
    c.nats.imports = vec![ok, mismatched, garbage, dep, bad_local, overlap];
    let i = c.validate(0);
    assert!(has(
        &i,
        |k| matches!(k, IssueKind::ImportTokenMismatch { subject, .. } if subject == "svc.b")
    ));
    assert!(!has(
        &i,
        |k| matches!(k, IssueKind::ImportTokenMismatch { subject, .. } if subject == "svc.a")
    ));
    assert!(has(&i, |k| matches!(
        k,
        IssueKind::InvalidImportToken { .. }
    )));
    assert!(
        i.iter()
            .any(|x| matches!(x.kind, IssueKind::DeprecatedImportTo { .. }) && !x.blocking)
    );
    assert!(has(&i, |k| matches!(
        k,
        IssueKind::ImportToAndLocalSubject { .. }
    )));
    assert!(has(&i, |k| matches!(
        k,
        IssueKind::InvalidLocalSubject { .. }
    )));
    assert!(has(&i, |k| matches!(
        k,
        IssueKind::OverlappingServiceImports { .. }
    )));

    // Token for another importer.
    let third = KeyPair::generate(KeyKind::Account)
        .account_public_key()
        .unwrap();
    let mut other = ActivationClaims::new(&third, s("svc.>"), ExportType::Service);
    let t = other.encode_at(&exporter, 1).unwrap();
    let mut imp = Import::new(s("svc.a"), exp_pub, ExportType::Service);
    imp.token = Some(t);
    c.nats.imports = vec![imp];
    assert!(has(&c.validate(0), |k| matches!(
        k,
        IssueKind::ImportTokenMismatch { .. }
    )));
}

#[test]
fn user_permission_rules() {
    let u = KeyPair::generate(KeyKind::User);
    let mut c = UserClaims::new(&u.user_public_key().unwrap(), "u");
    c.nats.limits.permissions.publish.allow = vec![s("a.b q")];
    c.nats.limits.src = vec!["10.0.0.0/40".into()];
    c.nats.limits.times = vec![TimeRange {
        start: "25:00:00".into(),
        end: "x".into(),
    }];
    let i = c.validate(0);
    assert!(has(&i, |k| matches!(
        k,
        IssueKind::QueueInPublishPermission { .. }
    )));
    assert!(has(&i, |k| matches!(k, IssueKind::InvalidCidr { .. })));
    assert!(has(&i, |k| matches!(k, IssueKind::InvalidTimeRange { .. })));
}

#[test]
fn operator_rules() {
    let o = KeyPair::generate(KeyKind::Operator);
    let mut c = OperatorClaims::new(&o.operator_public_key().unwrap(), "o");
    c.nats.account_server_url = Some("no scheme".into());
    c.nats.operator_service_urls = vec![
        "nats://localhost:4222".into(),
        "http://x:1".into(),
        "nats://u:p@x:1".into(),
        "tls://x:1/path".into(),
    ];
    c.nats.assert_server_version = Some("2.9".into());
    let i = c.validate(0);
    let urls = i
        .iter()
        .filter(|x| matches!(x.kind, IssueKind::InvalidUrl { .. }))
        .count();
    assert_eq!(urls, 4, "{i:?}");
    assert!(has(&i, |k| matches!(
        k,
        IssueKind::InvalidServerVersion { .. }
    )));
    c.nats.assert_server_version = Some("2.9.10".into());
    assert!(!has(&c.validate(0), |k| matches!(
        k,
        IssueKind::InvalidServerVersion { .. }
    )));
}

#[test]
fn user_against_account_scopes() {
    let (acc, mut a) = account();
    let sk = KeyPair::generate(KeyKind::Account);
    a.nats.signing_keys = vec![SigningKey::Scoped(UserScope {
        key: sk.account_public_key().unwrap(),
        role: "r".into(),
        template: UserPermissionLimits::unlimited(),
    })];
    let u = KeyPair::generate(KeyKind::User);
    let mut user = UserClaims::new(&u.user_public_key().unwrap(), "u");
    user.nats.issuer_account = Some(acc.account_public_key().unwrap());
    user.encode_at(&sk, 1).unwrap();
    assert!(has(&a.check_user(&user), |k| matches!(
        k,
        IssueKind::ScopedUserHasPermissions
    )));
    let mut scoped = UserClaims::new_scoped(
        &u.user_public_key().unwrap(),
        "u",
        &acc.account_public_key().unwrap(),
    );
    scoped.encode_at(&sk, 1).unwrap();
    assert_eq!(a.check_user(&scoped), vec![]);
    let stranger = KeyPair::generate(KeyKind::Account);
    scoped.encode_at(&stranger, 1).unwrap();
    assert!(has(&a.check_user(&scoped), |k| matches!(
        k,
        IssueKind::UnknownIssuer { .. }
    )));
}

#[test]
fn revocations() {
    let (_, mut a) = account();
    let u = KeyPair::generate(KeyKind::User).user_public_key().unwrap();
    a.nats.revoke(u.as_str(), 100);
    a.nats.revoke(u.as_str(), 50);
    assert_eq!(a.nats.revocations[u.as_str()], 100);
    assert!(a.nats.is_revoked(&u, 100));
    assert!(!a.nats.is_revoked(&u, 101));
    let v = KeyPair::generate(KeyKind::User).user_public_key().unwrap();
    assert!(!a.nats.is_revoked(&v, 10));
    a.nats.revoke("*", 200);
    assert!(a.nats.is_revoked(&v, 150));
}
