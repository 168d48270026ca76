/*!
NKeys and NATS JWT v2 for Warden: key pairs and typed public keys, validated subjects, the
operator/account/user/activation/generic claim types, signing and verifying decode, validation
that lists every problem, and creds files. Pure: no I/O, no clock except in
[`Claims::encode`].

Output is byte-compatible with Go `nats-io/jwt` v2.3.0 / nsc 2.7 for nats-server 2.9.10.

```
use nats_jwt::{KeyKind, KeyPair, OperatorClaims, decode, Operator};

let op = KeyPair::generate(KeyKind::Operator);
let mut claims = OperatorClaims::new(&op.operator_public_key().unwrap(), "OP");
let token = claims.encode_at(&op, 1_700_000_000).unwrap();
let back = decode::<Operator>(&token).unwrap();
assert_eq!(back, claims);
```

See [`claims`] for the wire shapes and [`jwt`] for the envelope.
*/
#![deny(missing_docs)]

pub mod claims;
pub mod creds;
pub mod jwt;
pub mod keys;
pub mod subject;
pub mod validation;
pub mod xkey;

pub use claims::*;
pub use creds::{Creds, CredsError, format_decorated_jwt, format_user_creds, parse_creds};
pub use jwt::{AnyClaims, ClaimBody, JwtError, compute_jti, decode, decode_any, decode_unverified};
pub use keys::{
    AccountPublicKey, ClusterPublicKey, KeyError, KeyKind, KeyPair, OperatorPublicKey, PublicKey,
    Seed, ServerPublicKey, UserPublicKey, verify_signature,
};
pub use subject::{Subject, SubjectError};
pub use validation::{IssueKind, ValidationIssue, is_blocking, is_blocking_with_time};
pub use xkey::{CurveKeyPair, is_curve_public_key};
