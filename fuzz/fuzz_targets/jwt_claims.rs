//! Fuzzes the claims behind a valid signature: the input is a JWT payload (JSON), signed
//! with a fixed test key so verification passes and the typed claim parsing of operator,
//! account, user and activation JWTs and their `validate()` are reached. Whatever decodes
//! must encode again, and that token must decode and encode to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nats_jwt::jwt::ClaimBody;
use nats_jwt::{
    Account, AccountClaims, Activation, Claims, KeyPair, Operator, User, decode, decode_any,
};
use warden_fuzz::{signed_nats_jwt, signers};

const NOW: i64 = 1_700_000_000;

/// Decode, validate and check the encode/decode round trip with the signer `kp`.
fn typed<T: ClaimBody + Clone>(token: &str, kp: &KeyPair) -> Option<Claims<T>> {
    let c = decode::<T>(token).ok()?;
    let _ = c.validate(NOW);
    let mut again = c.clone();
    // A signer of another kind is refused by encode: nothing to compare then. The typed
    // claims need not survive unchanged (a zero or empty optional field, `Some(0)`, is
    // written as absent, as Go's omitempty does), but what Warden writes must read back
    // and encode to the same token again.
    if let Ok(t2) = again.encode_at(kp, NOW) {
        let mut back = match decode::<T>(&t2) {
            Ok(b) => b,
            Err(e) => panic!("Warden wrote a JWT it cannot read back: {e}\n{t2}"),
        };
        let t3 = back.encode_at(kp, NOW).expect("encoded once already");
        assert_eq!(t2, t3, "encoding is not stable");
    }
    Some(c)
}

fuzz_target!(|data: &[u8]| {
    let token = signed_nats_jwt(data);
    let [op, acc, _user] = signers();
    if let Ok(any) = decode_any(&token) {
        let _ = any.validate(NOW);
        let _ = any.to_json();
    }
    let _ = typed::<Operator>(&token, op);
    let account = typed::<Account>(&token, op);
    let user = typed::<User>(&token, acc);
    let _ = typed::<Activation>(&token, acc);
    // An account checks the users it is given (revocations, signing keys, scopes).
    if let Some(u) = user {
        let fixed = AccountClaims::new(&acc.account_public_key().expect("account key"), "A");
        let _ = fixed.check_user(&u);
        if let Some(a) = account {
            let _ = a.check_user(&u);
        }
    }
});
