//! Property tests: encode→decode round trips, and decode/parse never panic.

use nats_jwt::*;
use proptest::prelude::*;

fn subject() -> impl Strategy<Value = Subject> {
    prop::collection::vec(
        prop_oneof![4 => "[a-z0-9_$]{1,6}", 1 => Just("*".to_string())],
        1..4,
    )
    .prop_flat_map(|toks| {
        (Just(toks), any::<bool>()).prop_map(|(t, full)| {
            let mut s = t.join(".");
            if full {
                s.push_str(".>");
            }
            Subject::new(&s).unwrap()
        })
    })
}

fn literal() -> impl Strategy<Value = Subject> {
    prop::collection::vec("[a-z0-9]{1,5}", 1..4).prop_map(|t| Subject::new(&t.join(".")).unwrap())
}

fn text() -> impl Strategy<Value = String> {
    "[ -~]{1,12}"
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    prop::option::of(text())
}

fn tags() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[a-z:]{1,8}", 0..3)
}

fn limit() -> impl Strategy<Value = i64> {
    prop_oneof![Just(-1i64), Just(0i64), 1i64..1_000_000]
}

fn key(kind: KeyKind) -> PublicKey {
    KeyPair::generate(kind).public_key()
}

fn account_key() -> impl Strategy<Value = AccountPublicKey> {
    Just(()).prop_map(|_| AccountPublicKey::try_from(key(KeyKind::Account)).unwrap())
}

fn permission() -> impl Strategy<Value = Permission> {
    (
        prop::collection::vec(subject(), 0..3),
        prop::collection::vec(subject(), 0..2),
    )
        .prop_map(|(allow, deny)| Permission { allow, deny })
}

fn permissions() -> impl Strategy<Value = Permissions> {
    (
        permission(),
        permission(),
        prop::option::of((any::<i64>(), any::<i64>())),
    )
        .prop_map(|(publish, subscribe, r)| Permissions {
            publish,
            subscribe,
            response: r.map(|(max, ttl_ns)| ResponsePermission { max, ttl_ns }),
        })
}

fn conn_type() -> impl Strategy<Value = ConnectionType> {
    prop::sample::select(vec![
        ConnectionType::Standard,
        ConnectionType::Websocket,
        ConnectionType::Leafnode,
        ConnectionType::LeafnodeWs,
        ConnectionType::Mqtt,
        ConnectionType::MqttWs,
    ])
}

fn upl(nonzero: bool) -> impl Strategy<Value = UserPermissionLimits> {
    let lim = move || {
        if nonzero {
            prop_oneof![Just(-1i64), 1i64..1000].boxed()
        } else {
            limit().boxed()
        }
    };
    (
        permissions(),
        prop::collection::vec("10\\.[0-9]\\.0\\.0/16", 0..2),
        prop::collection::vec(
            ("[0-2][0-9]:[0-5][0-9]:00", "[0-2][0-9]:[0-5][0-9]:00"),
            0..2,
        ),
        opt_text(),
        (lim(), lim(), lim()),
        any::<bool>(),
        prop::collection::vec(conn_type(), 0..3),
    )
        .prop_map(
            |(permissions, src, times, loc, (subs, data, payload), bearer_token, act)| {
                UserPermissionLimits {
                    permissions,
                    src,
                    times: times
                        .into_iter()
                        .map(|(start, end)| TimeRange { start, end })
                        .collect(),
                    times_location: loc,
                    subs,
                    data,
                    payload,
                    bearer_token,
                    allowed_connection_types: act,
                }
            },
        )
}

fn claims_header<T: Clone + std::fmt::Debug>(
    c: &mut Claims<T>,
    exp: Option<i64>,
    nbf: Option<i64>,
    aud: Option<String>,
) {
    c.exp = exp;
    c.nbf = nbf;
    c.aud = aud;
}

fn times() -> impl Strategy<Value = (Option<i64>, Option<i64>, Option<String>, i64)> {
    (
        prop::option::of(1i64..4_000_000_000),
        prop::option::of(1i64..4_000_000_000),
        opt_text(),
        1i64..4_000_000_000,
    )
}

fn export() -> impl Strategy<Value = Export> {
    (
        (opt_text(), subject(), any::<bool>(), any::<bool>()),
        prop::option::of(prop::sample::select(vec![
            ResponseType::Singleton,
            ResponseType::Stream,
            ResponseType::Chunked,
        ])),
        prop::option::of(1i64..1_000_000_000),
        prop::option::of((0u8..=100, literal())),
        prop::option::of(1u32..5),
        any::<bool>(),
        (opt_text(), opt_text()),
        prop::collection::btree_map(
            prop_oneof![Just("*".to_string()), "[A-Z]{3}"],
            any::<i64>(),
            0..2,
        ),
    )
        .prop_map(
            |(
                (name, subject, service, token_req),
                rt,
                thr,
                lat,
                pos,
                advertise,
                (description, info_url),
                revocations,
            )| {
                Export {
                    name,
                    subject,
                    export_type: if service {
                        ExportType::Service
                    } else {
                        ExportType::Stream
                    },
                    token_req,
                    revocations,
                    response_type: rt,
                    response_threshold_ns: thr,
                    service_latency: lat
                        .map(|(sampling, results)| ServiceLatency { sampling, results }),
                    account_token_position: pos,
                    advertise,
                    allow_trace: advertise,
                    description,
                    info_url,
                }
            },
        )
}

fn import() -> impl Strategy<Value = Import> {
    (
        opt_text(),
        subject(),
        account_key(),
        opt_text(),
        prop::option::of(subject()),
        prop::option::of(subject()),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(name, subject, account, token, to, local_subject, service, share)| Import {
                name,
                subject,
                account,
                token,
                to,
                local_subject,
                import_type: if service {
                    ExportType::Service
                } else {
                    ExportType::Stream
                },
                share,
                allow_trace: !share,
            },
        )
}

fn js() -> impl Strategy<Value = JetStreamLimits> {
    (
        limit(),
        limit(),
        limit(),
        limit(),
        limit(),
        limit(),
        limit(),
        any::<bool>(),
    )
        .prop_map(|(a, b, c, d, e, f, g, h)| JetStreamLimits {
            mem_storage: a,
            disk_storage: b,
            streams: c,
            consumer: d,
            max_ack_pending: e,
            mem_max_stream_bytes: f,
            disk_max_stream_bytes: g,
            max_bytes_required: h,
        })
}

fn account_body() -> impl Strategy<Value = Account> {
    (
        prop::collection::vec(import(), 0..3),
        prop::collection::vec(export(), 0..3),
        (
            (limit(), limit(), limit()),
            (
                limit(),
                limit(),
                any::<bool>(),
                any::<bool>(),
                limit(),
                limit(),
            ),
            js(),
            prop::collection::btree_map("R[0-9]", js(), 0..2),
        ),
        prop::collection::vec(
            prop_oneof![
                account_key().prop_map(SigningKey::Plain),
                (account_key(), text(), upl(true)).prop_map(|(key, role, template)| {
                    SigningKey::Scoped(UserScope {
                        key,
                        role,
                        template,
                    })
                }),
            ],
            0..3,
        ),
        prop::collection::btree_map("[A-Z*]{1,4}", any::<i64>(), 0..3),
        permissions(),
        prop::collection::btree_map(
            subject(),
            prop::collection::vec((literal(), prop::option::of(1u8..=100), opt_text()), 1..3),
            0..2,
        ),
        (opt_text(), opt_text(), tags()),
    )
        .prop_map(
            |(
                imports,
                exports,
                (n, a, j, tiers),
                signing_keys,
                revocations,
                default_permissions,
                maps,
                (description, info_url, tags),
            )| {
                Account {
                    imports,
                    exports,
                    limits: OperatorLimits {
                        nats: NatsLimits {
                            subs: n.0,
                            data: n.1,
                            payload: n.2,
                        },
                        account: AccountLimits {
                            imports: a.0,
                            exports: a.1,
                            wildcards: a.2,
                            disallow_bearer: a.3,
                            conn: a.4,
                            leaf: a.5,
                        },
                        jetstream: j,
                        tiered_limits: tiers,
                    },
                    signing_keys,
                    revocations,
                    default_permissions,
                    mappings: maps
                        .into_iter()
                        .map(|(k, v)| {
                            (
                                k,
                                v.into_iter()
                                    .map(|(subject, weight, cluster)| WeightedMapping {
                                        subject,
                                        weight,
                                        cluster,
                                    })
                                    .collect(),
                            )
                        })
                        .collect(),
                    description,
                    info_url,
                    tags,
                    authorization: Default::default(),
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn operator_roundtrip(name in text(), t in times(), urls in prop::collection::vec("nats://[a-z]{1,6}:[0-9]{4}", 0..3),
                          asu in opt_text(), asv in opt_text(), strict in any::<bool>(), sys in any::<bool>(), nsk in 0usize..3, tg in tags()) {
        let op = KeyPair::generate(KeyKind::Operator);
        let mut c = OperatorClaims::new(&op.operator_public_key().unwrap(), &name);
        claims_header(&mut c, t.0, t.1, t.2);
        c.nats = Operator {
            signing_keys: (0..nsk).map(|_| KeyPair::generate(KeyKind::Operator).operator_public_key().unwrap()).collect(),
            account_server_url: asu,
            operator_service_urls: urls,
            system_account: sys.then(|| KeyPair::generate(KeyKind::Account).account_public_key().unwrap()),
            assert_server_version: asv,
            strict_signing_key_usage: strict,
            tags: tg,
        };
        let token = c.encode_at(&op, t.3).unwrap();
        prop_assert_eq!(decode::<Operator>(&token).unwrap(), c.clone());
        prop_assert_eq!(decode_any(&token).unwrap(), AnyClaims::Operator(c));
    }

    #[test]
    fn account_roundtrip(name in text(), t in times(), body in account_body()) {
        let op = KeyPair::generate(KeyKind::Operator);
        let acc = KeyPair::generate(KeyKind::Account);
        let mut c = AccountClaims::new(&acc.account_public_key().unwrap(), &name);
        claims_header(&mut c, t.0, t.1, t.2);
        c.nats = body;
        let token = c.encode_at(&op, t.3).unwrap();
        prop_assert_eq!(decode::<Account>(&token).unwrap(), c.clone());
        prop_assert!(c.nats.exports.windows(2).all(|w| w[0].subject.as_str() <= w[1].subject.as_str()));
    }

    #[test]
    fn user_roundtrip(name in text(), t in times(), limits in upl(false), ia in any::<bool>(), tg in tags()) {
        let acc = KeyPair::generate(KeyKind::Account);
        let u = KeyPair::generate(KeyKind::User);
        let mut c = UserClaims::new(&u.user_public_key().unwrap(), &name);
        claims_header(&mut c, t.0, t.1, t.2);
        c.nats = User { limits, issuer_account: ia.then(|| acc.account_public_key().unwrap()), tags: tg };
        let token = c.encode_at(&acc, t.3).unwrap();
        prop_assert_eq!(decode::<User>(&token).unwrap(), c);
    }

    #[test]
    fn activation_roundtrip(name in text(), t in times(), subj in subject(), service in any::<bool>(), ia in any::<bool>(), tg in tags()) {
        let exporter = KeyPair::generate(KeyKind::Account);
        let importer = KeyPair::generate(KeyKind::Account);
        let kind = if service { ExportType::Service } else { ExportType::Stream };
        let mut c = ActivationClaims::new(&importer.account_public_key().unwrap(), subj, kind);
        c.name = name;
        claims_header(&mut c, t.0, t.1, t.2);
        c.nats.issuer_account = ia.then(|| exporter.account_public_key().unwrap());
        c.nats.tags = tg;
        let token = c.encode_at(&exporter, t.3).unwrap();
        prop_assert_eq!(decode::<Activation>(&token).unwrap(), c);
    }

    #[test]
    fn decode_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let s = String::from_utf8_lossy(&bytes);
        let _ = decode_any(&s);
        let _ = parse_creds(&s);
    }

    #[test]
    fn decode_never_panics_on_jwt_like(h in "[A-Za-z0-9_=.-]{0,60}", p in "[A-Za-z0-9_=-]{0,200}", s in "[A-Za-z0-9_=-]{0,100}") {
        let _ = decode_any(&format!("{h}.{p}.{s}"));
        let _ = parse_creds(&format!("-----BEGIN X-----\n{h}\n------END X------\n\n---a---\n{p}\n---b---\n"));
    }

    #[test]
    fn decode_never_panics_on_signed_json(json in "\\{[ -~]{0,80}\\}") {
        let k = KeyPair::generate(KeyKind::Account);
        let b = data_encoding::BASE64URL_NOPAD;
        let mut t = format!("{}.{}", b.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#), b.encode(json.as_bytes()));
        let sig = k.sign(t.as_bytes());
        t = format!("{t}.{}", b.encode(&sig));
        let _ = decode_any(&t);
    }

    #[test]
    fn subject_new_never_panics(s in "\\PC{0,20}") {
        if let Ok(sub) = Subject::new(&s) {
            prop_assert!(sub.is_subset_of(&sub));
        }
    }
}
