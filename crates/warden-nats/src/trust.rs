//! The trust check Warden runs before every account push.
//!
//! nats-server stores a pushed account JWT without checking that the trusted operator issued it
//! (facts §10.4 for 2.9.10; this crate's tests show 2.15.1 doing the same): the push answers
//! "jwt updated", the account shows up in LIST, and only its users' connects fail later. So Warden checks first, the way the server
//! does when it loads the account:
//!
//! 1. the token decodes with a valid signature and is an account JWT;
//! 2. it is not self-signed (`iss` ≠ `sub`): only the operator vouches for accounts;
//! 3. the issuer is the operator identity or one of its `signing_keys` (Go `DidSign`); when the
//!    operator sets `strict_signing_key_usage`, the identity key is refused — the server answers
//!    "operator requires issuer to be a signing key";
//! 4. validation without time checks has no blocking issue (what the server's UPDATE handler
//!    refuses). Expiry is deliberately not checked: pushing an expired JWT is how an account is
//!    switched off, and the server stores it too.
//!
//! It does not know which account the caller means to push: a caller that does should compare
//! the returned claims' `sub` with the key it expects.

use nats_jwt::{AccountClaims, AnyClaims, JwtError, OperatorClaims, decode_any};

/// Why an account JWT must not be pushed.
#[derive(thiserror::Error, Debug)]
pub enum TrustError {
    /// The token does not decode, or its signature does not verify.
    #[error("account JWT does not decode: {0}")]
    Decode(#[from] JwtError),
    /// The token is another kind of JWT.
    #[error("expected an account JWT, got a {found} JWT")]
    NotAnAccount {
        /// The kind found (`"user"`, `"operator"`, …).
        found: &'static str,
    },
    /// The account signed itself.
    #[error(
        "account {account} is self-signed; accounts must be signed by the operator or one of its signing keys"
    )]
    SelfSigned {
        /// The account public key.
        account: String,
    },
    /// The issuer is neither the operator nor one of its signing keys.
    #[error(
        "account {account} is issued by {issuer}, which is neither operator {operator} nor one of its signing keys"
    )]
    UntrustedIssuer {
        /// The account public key.
        account: String,
        /// The `iss` of the JWT.
        issuer: String,
        /// The operator's identity key.
        operator: String,
    },
    /// The operator is strict and the account is signed by its identity key.
    #[error(
        "account {account} is signed by the identity key of operator {operator}, which uses strict signing key usage; sign it with an operator signing key"
    )]
    IdentityKeyUnderStrict {
        /// The account public key.
        account: String,
        /// The operator's identity key.
        operator: String,
    },
    /// Validation found blocking issues (the server would refuse the JWT).
    #[error("account JWT has blocking validation issues: {}", .0.join("; "))]
    Blocking(Vec<String>),
}

/// Checks that `account_jwt` may be pushed to a server trusting `operator` (see the module docs)
/// and returns its claims.
pub fn verify_trust(
    operator: &OperatorClaims,
    account_jwt: &str,
) -> Result<AccountClaims, TrustError> {
    let account = match decode_any(account_jwt.trim())? {
        AnyClaims::Account(a) => a,
        other => {
            return Err(TrustError::NotAnAccount {
                found: other.kind_name(),
            });
        }
    };
    trusted_claims(operator, account, Embedded::Verify)
}

/// [`verify_trust`] for an account JWT Warden signed itself and read back from its own
/// store: every check but the signatures — the JWT's own, and those of the activations its
/// imports embed (checked when Warden signed them into the account). Verifying a signature
/// costs about as much as the server's whole handling of the push, and the server verifies
/// them anyway: a JWT whose signature does not hold is refused with an error reply and
/// never stored, as is one embedding an activation whose signature does not hold (this
/// crate's tests show both on 2.9.10 and 2.15.1). Whether the operator trusts the issuer *now*
/// (a signing key may have been rotated out since the JWT was signed) is still checked here.
pub fn check_own_trust(
    operator: &OperatorClaims,
    account_jwt: &str,
) -> Result<AccountClaims, TrustError> {
    let account = nats_jwt::decode_unverified::<nats_jwt::Account>(account_jwt.trim()).map_err(
        |e| match e {
            JwtError::WrongType { found, .. } => TrustError::NotAnAccount {
                found: kind_name(&found),
            },
            other => TrustError::Decode(other),
        },
    )?;
    trusted_claims(operator, account, Embedded::LeaveToTheServer)
}

/// Whether the activations an account JWT embeds have their signatures checked here, or
/// only their contents (the server verifies each before it takes effect).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Embedded {
    Verify,
    LeaveToTheServer,
}

/// The name [`AnyClaims::kind_name`] gives a `nats.type`.
fn kind_name(found: &str) -> &'static str {
    match found {
        "operator" => "operator",
        "user" => "user",
        "activation" => "activation",
        _ => "generic",
    }
}

/// Checks 2–4 of the module docs on decoded claims.
fn trusted_claims(
    operator: &OperatorClaims,
    account: AccountClaims,
    embedded: Embedded,
) -> Result<AccountClaims, TrustError> {
    if account.iss == account.sub {
        return Err(TrustError::SelfSigned {
            account: account.sub,
        });
    }
    if !operator.did_sign(&account.iss, &account.sub) {
        if account.iss == operator.sub {
            return Err(TrustError::IdentityKeyUnderStrict {
                account: account.sub,
                operator: operator.sub.clone(),
            });
        }
        return Err(TrustError::UntrustedIssuer {
            account: account.sub,
            issuer: account.iss,
            operator: operator.sub.clone(),
        });
    }
    // Time checks excluded; `now` only feeds them.
    let issues = match embedded {
        Embedded::Verify => account.validate(0),
        Embedded::LeaveToTheServer => account.validate_own(0),
    };
    let blocking: Vec<String> = issues
        .into_iter()
        .filter(|i| i.blocking)
        .map(|i| i.kind.to_string())
        .collect();
    if !blocking.is_empty() {
        return Err(TrustError::Blocking(blocking));
    }
    Ok(account)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nats_jwt::{KeyKind, KeyPair, UserClaims};

    struct Op {
        identity: KeyPair,
        signing: KeyPair,
        claims: OperatorClaims,
    }

    fn operator(strict: bool) -> Op {
        let identity = KeyPair::generate(KeyKind::Operator);
        let signing = KeyPair::generate(KeyKind::Operator);
        let mut claims =
            OperatorClaims::new(&identity.operator_public_key().expect("operator key"), "OP");
        claims
            .nats
            .signing_keys
            .push(signing.operator_public_key().expect("operator key"));
        claims.nats.strict_signing_key_usage = strict;
        claims.encode(&identity).expect("encodes");
        Op {
            identity,
            signing,
            claims,
        }
    }

    fn account_signed_by(signer: &KeyPair) -> (KeyPair, String) {
        let kp = KeyPair::generate(KeyKind::Account);
        let mut c = AccountClaims::new(&kp.account_public_key().expect("account key"), "A");
        let token = c.encode(signer).expect("encodes");
        (kp, token)
    }

    #[test]
    fn accepts_signing_key_and_identity() {
        let op = operator(false);
        let (kp, token) = account_signed_by(&op.signing);
        let claims = verify_trust(&op.claims, &token).expect("trusted");
        assert_eq!(claims.sub, kp.public_key().as_str());
        let (_, token) = account_signed_by(&op.identity);
        verify_trust(&op.claims, &token).expect("identity trusted when not strict");
    }

    #[test]
    fn strict_refuses_identity() {
        let op = operator(true);
        let (_, token) = account_signed_by(&op.identity);
        assert!(matches!(
            verify_trust(&op.claims, &token),
            Err(TrustError::IdentityKeyUnderStrict { .. })
        ));
        let (_, token) = account_signed_by(&op.signing);
        verify_trust(&op.claims, &token).expect("signing key trusted");
    }

    #[test]
    fn refuses_foreign_and_self_signed() {
        let op = operator(false);
        let foreign = operator(false);
        let (_, token) = account_signed_by(&foreign.signing);
        assert!(matches!(
            verify_trust(&op.claims, &token),
            Err(TrustError::UntrustedIssuer { .. })
        ));
        let kp = KeyPair::generate(KeyKind::Account);
        let mut c = AccountClaims::new(&kp.account_public_key().expect("account key"), "SELF");
        let token = c.encode(&kp).expect("encodes");
        assert!(matches!(
            verify_trust(&op.claims, &token),
            Err(TrustError::SelfSigned { .. })
        ));
    }

    #[test]
    fn refuses_garbage_tampering_and_other_kinds() {
        let op = operator(false);
        assert!(matches!(
            verify_trust(&op.claims, "not a jwt"),
            Err(TrustError::Decode(_))
        ));
        let (_, token) = account_signed_by(&op.signing);
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        parts[2] = parts[2].chars().rev().collect();
        assert!(matches!(
            verify_trust(&op.claims, &parts.join(".")),
            Err(TrustError::Decode(_))
        ));
        let acc = KeyPair::generate(KeyKind::Account);
        let user = KeyPair::generate(KeyKind::User);
        let mut u = UserClaims::new(&user.user_public_key().expect("user key"), "U");
        let token = u.encode(&acc).expect("encodes");
        assert!(matches!(
            verify_trust(&op.claims, &token),
            Err(TrustError::NotAnAccount { found: "user" })
        ));
    }

    #[test]
    fn refuses_blocking_issues() {
        let op = operator(false);
        let kp = KeyPair::generate(KeyKind::Account);
        let mut c = AccountClaims::new(&kp.account_public_key().expect("account key"), "A");
        c.nats
            .limits
            .tiered_limits
            .insert(" ".into(), nats_jwt::JetStreamLimits::unlimited());
        let token = c.encode(&op.signing).expect("encodes");
        match verify_trust(&op.claims, &token) {
            Err(TrustError::Blocking(issues)) => assert!(!issues.is_empty()),
            other => panic!("unexpected {other:?}"),
        }
    }
}
