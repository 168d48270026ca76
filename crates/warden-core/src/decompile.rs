//! The inverse of [`crate::compile`]: from the claims of an operator, account or
//! user JWT back to the spec Warden stores. Used when Warden adopts JWTs it did not
//! issue (an nsc store): the JWT is kept verbatim, the spec is what Warden will
//! compile from the next time it re-issues that JWT.
//!
//! Claims can say more than a spec can. Whatever would be lost at the next
//! re-issue is listed in [`Decompiled::not_carried`], so the caller can report it;
//! nothing is dropped silently. Pure: no I/O, no clock.

use nats_jwt::{AccountClaims, OperatorClaims, UserClaims};

use crate::compile::OperatorSpec;
use crate::spec::{AccountLimitsSpec, AccountSpec, JetStreamLimitsSpec, UserSpec};

/// A spec recovered from claims, with what it cannot express.
#[derive(Clone, Debug, PartialEq)]
pub struct Decompiled<T> {
    /// The spec.
    pub spec: T,
    /// Claim fields the spec cannot express (lost when Warden re-issues the JWT),
    /// one human-readable line each, e.g. `mappings (2 subjects)`.
    pub not_carried: Vec<String>,
}

/// Why claims cannot become a spec at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecompileError {
    /// Warden needs a system account; the operator JWT names none.
    #[error(
        "operator {0:?} names no system account (system_account); Warden needs one: add it with nsc first (`nsc edit operator --system-account SYS`)"
    )]
    NoSystemAccount(String),
}

fn std_fields<T>(claims: &nats_jwt::Claims<T>, lost: &mut Vec<String>) {
    if let Some(aud) = claims.aud.as_deref().filter(|a| !a.is_empty()) {
        lost.push(format!("aud ({aud})"));
    }
    if let Some(nbf) = claims.nbf.filter(|n| *n != 0) {
        lost.push(format!("nbf ({nbf})"));
    }
}

/// The operator spec of operator claims. Fails only when no system account is named.
pub fn decompile_operator(
    claims: &OperatorClaims,
) -> Result<Decompiled<OperatorSpec>, DecompileError> {
    let o = &claims.nats;
    let system_account = o
        .system_account
        .clone()
        .ok_or_else(|| DecompileError::NoSystemAccount(claims.name.clone()))?;
    let mut lost = Vec::new();
    std_fields(claims, &mut lost);
    if let Some(exp) = claims.exp.filter(|e| *e != 0) {
        lost.push(format!("exp ({exp})"));
    }
    if let Some(v) = o.assert_server_version.as_deref().filter(|v| !v.is_empty()) {
        lost.push(format!("assert_server_version ({v})"));
    }
    if o.strict_signing_key_usage {
        lost.push("strict_signing_key_usage".into());
    }
    if !o.tags.is_empty() {
        lost.push(format!("tags ({})", o.tags.join(",")));
    }
    Ok(Decompiled {
        spec: OperatorSpec {
            signing_keys: o.signing_keys.clone(),
            system_account,
            service_urls: o.operator_service_urls.clone(),
            account_server_url: o.account_server_url.clone().filter(|u| !u.is_empty()),
        },
        not_carried: lost,
    })
}

/// The account spec of account claims.
pub fn decompile_account(claims: &AccountClaims) -> Decompiled<AccountSpec> {
    let a = &claims.nats;
    let l = &a.limits;
    let js = &l.jetstream;
    let mut lost = Vec::new();
    std_fields(claims, &mut lost);
    let spec = AccountSpec {
        limits: AccountLimitsSpec {
            conn: l.account.conn,
            leaf: l.account.leaf,
            subs: l.nats.subs,
            payload: l.nats.payload,
            data: l.nats.data,
            imports: l.account.imports,
            exports: l.account.exports,
            wildcards: l.account.wildcards,
            disallow_bearer: l.account.disallow_bearer,
            jetstream: js_limits(js),
            jetstream_tiers: l
                .tiered_limits
                .iter()
                .map(|(tier, t)| (tier.clone(), js_limits(t)))
                .collect(),
        },
        exports: a.exports.clone(),
        imports: a.imports.clone(),
        default_permissions: a.default_permissions.clone(),
        revocations: a.revocations.clone(),
        signing_keys: a.signing_keys.clone(),
        mappings: a.mappings.clone(),
        description: a.description.clone().filter(|d| !d.is_empty()),
        info_url: a.info_url.clone().filter(|u| !u.is_empty()),
        tags: a.tags.clone(),
        expires_at: claims.exp.filter(|e| *e != 0),
        authorization: a.authorization.clone(),
    };
    Decompiled {
        spec,
        not_carried: lost,
    }
}

fn js_limits(js: &nats_jwt::JetStreamLimits) -> JetStreamLimitsSpec {
    JetStreamLimitsSpec {
        mem_storage: js.mem_storage,
        disk_storage: js.disk_storage,
        streams: js.streams,
        consumer: js.consumer,
        max_ack_pending: js.max_ack_pending,
        mem_max_stream_bytes: js.mem_max_stream_bytes,
        disk_max_stream_bytes: js.disk_max_stream_bytes,
        max_bytes_required: js.max_bytes_required,
    }
}

/// The user spec of user claims. `issuer_account` is not part of the spec (it
/// follows from the key that signs); the caller records which key that was.
pub fn decompile_user(claims: &UserClaims) -> Decompiled<UserSpec> {
    let u = &claims.nats;
    let l = &u.limits;
    let mut lost = Vec::new();
    std_fields(claims, &mut lost);
    let spec = UserSpec {
        permissions: l.permissions.clone(),
        subs: l.subs,
        data: l.data,
        payload: l.payload,
        src: l.src.clone(),
        times: l.times.clone(),
        times_location: l.times_location.clone().filter(|t| !t.is_empty()),
        bearer_token: l.bearer_token,
        allowed_connection_types: l.allowed_connection_types.clone(),
        expires_at: claims.exp.filter(|e| *e != 0),
        tags: u.tags.clone(),
    };
    Decompiled {
        spec,
        not_carried: lost,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use nats_jwt::{
        Account, ConnectionType, Export, ExportType, Import, KeyKind, KeyPair, Operator,
        ResponsePermission, SigningKey, Subject, TimeRange, User, UserScope, WeightedMapping,
        decode,
    };

    use super::*;
    use crate::compile::{compile_account, compile_operator, compile_user, system_account_spec};
    use crate::names::{AccountName, OperatorName, UserName};

    fn subj(s: &str) -> Subject {
        Subject::new(s).unwrap()
    }

    fn rich_account_spec(other: &KeyPair) -> AccountSpec {
        let mut spec = system_account_spec();
        spec.limits.conn = 10;
        spec.limits.payload = 1 << 20;
        spec.limits.disallow_bearer = true;
        spec.limits.jetstream = JetStreamLimitsSpec::unlimited();
        spec.exports.push(Export {
            name: Some("orders".into()),
            subject: subj("orders.>"),
            export_type: ExportType::Stream,
            token_req: true,
            revocations: Default::default(),
            response_type: None,
            response_threshold_ns: None,
            service_latency: None,
            account_token_position: None,
            advertise: false,
            allow_trace: false,
            description: None,
            info_url: None,
        });
        spec.imports.push(Import {
            name: Some("billing".into()),
            subject: subj("billing.>"),
            account: other.account_public_key().unwrap(),
            token: None,
            to: None,
            local_subject: Some(subj("remote.billing.>")),
            import_type: ExportType::Stream,
            share: false,
            allow_trace: false,
        });
        spec.revocations.insert("*".into(), 1_700_000_000);
        let sk = KeyPair::generate(KeyKind::Account)
            .account_public_key()
            .unwrap();
        let scoped = KeyPair::generate(KeyKind::Account)
            .account_public_key()
            .unwrap();
        spec.signing_keys.push(SigningKey::Plain(sk));
        spec.signing_keys.push(SigningKey::Scoped(UserScope {
            key: scoped,
            role: "dev".into(),
            template: nats_jwt::UserPermissionLimits::unlimited(),
        }));
        spec.default_permissions.publish.allow = vec![subj("public.>")];
        spec.description = Some("an account".into());
        spec.tags = vec!["team:core".into()];
        spec.expires_at = Some(4_000_000_000);
        spec
    }

    #[test]
    fn account_spec_survives_compile_sign_decode_decompile() {
        let op = KeyPair::generate(KeyKind::Operator);
        let kp = KeyPair::generate(KeyKind::Account);
        let other = KeyPair::generate(KeyKind::Account);
        let spec = rich_account_spec(&other);
        let name = AccountName::parse_any_case("CORE").unwrap();
        let mut claims = compile_account(&kp.account_public_key().unwrap(), &name, &spec);
        let token = claims.encode(&op).unwrap();
        let back = decompile_account(&decode::<Account>(&token).unwrap());
        assert!(back.not_carried.is_empty(), "{:?}", back.not_carried);
        let mut want = spec.clone();
        // The encoder sorts exports and imports by subject, as Go does.
        want.exports
            .sort_by(|a, b| a.subject.as_str().cmp(b.subject.as_str()));
        want.imports
            .sort_by(|a, b| a.subject.as_str().cmp(b.subject.as_str()));
        let mut got = back.spec;
        got.signing_keys.sort_by(|a, b| a.key().cmp(b.key()));
        want.signing_keys.sort_by(|a, b| a.key().cmp(b.key()));
        assert_eq!(got, want);
    }

    #[test]
    fn user_spec_survives_compile_sign_decode_decompile() {
        let acc = KeyPair::generate(KeyKind::Account);
        let user = KeyPair::generate(KeyKind::User).user_public_key().unwrap();
        let mut spec = UserSpec::default();
        spec.permissions.publish.allow = vec![subj("thecowboyai.org.person.>")];
        spec.permissions.subscribe.allow = vec![
            subj("thecowboyai.org.person.>"),
            subj("thecowboyai.org.location.>"),
        ];
        spec.permissions.subscribe.deny = vec![subj("secret.>")];
        spec.permissions.response = Some(ResponsePermission {
            max: 1,
            ttl_ns: 2_000_000_000,
        });
        spec.payload = 1 << 20;
        spec.src = vec!["127.0.0.1/32".into()];
        spec.times = vec![TimeRange {
            start: "08:00:00".into(),
            end: "17:00:00".into(),
        }];
        spec.times_location = Some("UTC".into());
        spec.allowed_connection_types = vec![ConnectionType::Standard];
        spec.expires_at = Some(4_000_000_000);
        spec.tags = vec!["service".into()];
        let name = UserName::parse_any_case("person-service").unwrap();
        let mut claims = compile_user(&user, &name, &spec, None);
        let token = claims.encode(&acc).unwrap();
        let back = decompile_user(&decode::<User>(&token).unwrap());
        assert_eq!(back.spec, spec);
        assert!(back.not_carried.is_empty());
        // A default user comes back as the default spec.
        let mut plain = compile_user(&user, &name, &UserSpec::default(), None);
        let token = plain.encode(&acc).unwrap();
        assert_eq!(
            decompile_user(&decode::<User>(&token).unwrap()).spec,
            UserSpec::default()
        );
    }

    #[test]
    fn operator_spec_survives_and_needs_a_system_account() {
        let op = KeyPair::generate(KeyKind::Operator);
        let sk = KeyPair::generate(KeyKind::Operator);
        let sys = KeyPair::generate(KeyKind::Account);
        let spec = OperatorSpec {
            signing_keys: vec![sk.operator_public_key().unwrap()],
            system_account: sys.account_public_key().unwrap(),
            service_urls: vec!["nats://localhost:4222".into()],
            account_server_url: Some("nats://localhost:4222".into()),
        };
        let name = OperatorName::parse_any_case("thecowboyai").unwrap();
        let mut claims = compile_operator(&op.operator_public_key().unwrap(), &name, &spec);
        let token = claims.encode(&op).unwrap();
        let decoded = decode::<Operator>(&token).unwrap();
        let back = decompile_operator(&decoded).unwrap();
        assert_eq!(back.spec, spec);
        assert!(back.not_carried.is_empty());
        let mut none = decoded.clone();
        none.nats.system_account = None;
        assert!(matches!(
            decompile_operator(&none),
            Err(DecompileError::NoSystemAccount(_))
        ));
    }

    #[test]
    fn mappings_info_url_and_tiers_are_carried_and_nbf_is_listed() {
        let kp = KeyPair::generate(KeyKind::Account);
        let name = AccountName::parse_any_case("A").unwrap();
        let mut claims = compile_account(
            &kp.account_public_key().unwrap(),
            &name,
            &AccountSpec::default(),
        );
        let mut m = BTreeMap::new();
        m.insert(
            subj("a"),
            vec![WeightedMapping {
                subject: subj("b"),
                weight: None,
                cluster: None,
            }],
        );
        claims.nats.mappings = m;
        claims.nats.info_url = Some("https://example.org/info".into());
        claims.nats.limits.jetstream = nats_jwt::JetStreamLimits::default();
        claims
            .nats
            .limits
            .tiered_limits
            .insert("R1".into(), nats_jwt::JetStreamLimits::unlimited());
        claims.nbf = Some(5);
        let back = decompile_account(&claims);
        assert_eq!(back.not_carried.len(), 1, "{:?}", back.not_carried);
        assert!(back.not_carried.iter().any(|l| l.starts_with("nbf")));
        // What the spec carries compiles back to the same claims.
        let again = compile_account(&kp.account_public_key().unwrap(), &name, &back.spec);
        assert_eq!(again.nats.mappings, claims.nats.mappings);
        assert_eq!(again.nats.info_url, claims.nats.info_url);
        assert_eq!(again.nats.limits, claims.nats.limits);
    }
}
