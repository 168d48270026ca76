//! NKeys: key kinds, validated public key newtypes, secret seeds, key pairs and signature checks.
//!
//! Key strings are decoded by the `nkeys` crate and encoded here (it does not export its
//! encoder), so a key pair costs one derivation of its public key;
//! signing and verifying use Ed25519 directly. Only the five kinds the target server knows
//! (O, A, U, N, C) are accepted; curve (`X`) and other prefixes are refused.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, Zeroizing};

/// The role of an NKey, given by the first character of its public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum KeyKind {
    /// Operator key, prefix `O`.
    Operator,
    /// Account key, prefix `A`.
    Account,
    /// User key, prefix `U`.
    User,
    /// Server key, prefix `N`.
    Server,
    /// Cluster key, prefix `C`.
    Cluster,
}

impl KeyKind {
    /// The first character of a public key of this kind.
    pub fn prefix(self) -> char {
        match self {
            KeyKind::Operator => 'O',
            KeyKind::Account => 'A',
            KeyKind::User => 'U',
            KeyKind::Server => 'N',
            KeyKind::Cluster => 'C',
        }
    }

    /// The kind whose public keys start with `c`, if any.
    pub fn from_prefix(c: char) -> Option<KeyKind> {
        match c {
            'O' => Some(KeyKind::Operator),
            'A' => Some(KeyKind::Account),
            'U' => Some(KeyKind::User),
            'N' => Some(KeyKind::Server),
            'C' => Some(KeyKind::Cluster),
            _ => None,
        }
    }

    /// Lower-case English name ("operator", "account", ...).
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::Operator => "operator",
            KeyKind::Account => "account",
            KeyKind::User => "user",
            KeyKind::Server => "server",
            KeyKind::Cluster => "cluster",
        }
    }

    #[cfg(test)]
    fn nkeys_type(self) -> nkeys::KeyPairType {
        match self {
            KeyKind::Operator => nkeys::KeyPairType::Operator,
            KeyKind::Account => nkeys::KeyPairType::Account,
            KeyKind::User => nkeys::KeyPairType::User,
            KeyKind::Server => nkeys::KeyPairType::Server,
            KeyKind::Cluster => nkeys::KeyPairType::Cluster,
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Errors about keys, seeds and signatures.
#[derive(thiserror::Error, Debug)]
pub enum KeyError {
    /// A key of one kind was given where another was required.
    #[error("expected a {expected} key but got a {found} key")]
    WrongKind {
        /// The kind that was required.
        expected: KeyKind,
        /// The kind that was given.
        found: KeyKind,
    },
    /// The string is not a valid public key (bad length, alphabet, checksum or prefix).
    #[error("invalid public key {key:?}: {reason}")]
    Invalid {
        /// The offending string (public keys are not secret).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The string is not a valid seed. The seed itself is never included.
    #[error("invalid seed: {0}")]
    InvalidSeed(String),
    /// The signature does not verify (or has the wrong length).
    #[error("signature verification failed")]
    BadSignature,
    /// A curve-sealed message could not be sealed or opened (wrong key, or tampered).
    #[error("sealed message: {0}")]
    Sealed(String),
}

fn kind_of_prefix_byte(prefix: u8) -> Option<KeyKind> {
    match prefix {
        112 => Some(KeyKind::Operator),
        0 => Some(KeyKind::Account),
        160 => Some(KeyKind::User),
        104 => Some(KeyKind::Server),
        16 => Some(KeyKind::Cluster),
        _ => None,
    }
}

/// The byte a public key of `kind` starts with, before base32 (the inverse of
/// [`kind_of_prefix_byte`]).
fn kind_prefix_byte(kind: KeyKind) -> u8 {
    match kind {
        KeyKind::Operator => 112,
        KeyKind::Account => 0,
        KeyKind::User => 160,
        KeyKind::Server => 104,
        KeyKind::Cluster => 16,
    }
}

/// The seed string of `raw`: the seed marker (`S`, 18 << 3) and the kind's prefix byte
/// packed into two bytes, as NKeys writes them.
fn encode_seed(kind: KeyKind, raw: &[u8; 32]) -> String {
    const SEED: u8 = 18 << 3;
    let prefix = kind_prefix_byte(kind);
    encode_key(&[SEED | prefix >> 5, (prefix & 31) << 3], raw)
}

/// NKeys' text form: base32 (no padding) of the prefix, the key and a CRC-16/XMODEM of
/// both, little-endian. `nkeys` has the encoder but does not export it.
fn encode_key(prefix: &[u8], key: &[u8; 32]) -> String {
    let mut raw = Zeroizing::new(Vec::with_capacity(prefix.len() + 34));
    raw.extend_from_slice(prefix);
    raw.extend_from_slice(key);
    let crc = crc16_xmodem(&raw);
    raw.extend_from_slice(&crc.to_le_bytes());
    data_encoding::BASE32_NOPAD.encode(&raw)
}

/// CRC-16/XMODEM (polynomial 0x1021, initial value 0), bit by bit: 35 bytes per key, so
/// a table buys nothing worth its size.
fn crc16_xmodem(data: &[u8]) -> u16 {
    let mut crc = 0u16;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

fn parse_public(s: &str) -> Result<(KeyKind, [u8; 32]), KeyError> {
    let invalid = |reason: String| KeyError::Invalid {
        key: s.to_string(),
        reason,
    };
    let (prefix, raw) = nkeys::from_public_key(s).map_err(|e| invalid(e.to_string()))?;
    let kind = kind_of_prefix_byte(prefix)
        .ok_or_else(|| invalid("not an operator, account, user, server or cluster key".into()))?;
    Ok((kind, raw))
}

/// A validated public NKey of any of the five supported kinds.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(String);

impl PublicKey {
    /// Parses and validates a public key string.
    pub fn new(s: &str) -> Result<PublicKey, KeyError> {
        parse_public(s)?;
        Ok(PublicKey(s.to_string()))
    }

    /// The kind of this key.
    pub fn kind(&self) -> KeyKind {
        // Validated on construction, so the first character is a known prefix.
        self.0
            .chars()
            .next()
            .and_then(KeyKind::from_prefix)
            .unwrap_or(KeyKind::Account)
    }

    /// The encoded key.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The encoded key, by value.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        PublicKey::new(s)
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PublicKey::new(&s).map_err(serde::de::Error::custom)
    }
}

macro_rules! typed_key {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Parses and validates a public key string of this kind.
            pub fn new(s: &str) -> Result<Self, KeyError> {
                let (kind, _) = parse_public(s)?;
                if kind != $kind {
                    return Err(KeyError::WrongKind { expected: $kind, found: kind });
                }
                Ok($name(s.to_string()))
            }

            /// The encoded key.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The encoded key, by value.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = KeyError;
            fn from_str(s: &str) -> Result<Self, KeyError> {
                $name::new(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::new(&s).map_err(serde::de::Error::custom)
            }
        }

        impl From<$name> for PublicKey {
            fn from(k: $name) -> PublicKey {
                PublicKey(k.0)
            }
        }

        impl TryFrom<PublicKey> for $name {
            type Error = KeyError;
            fn try_from(k: PublicKey) -> Result<Self, KeyError> {
                let found = k.kind();
                if found != $kind {
                    return Err(KeyError::WrongKind { expected: $kind, found });
                }
                Ok($name(k.0))
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
    };
}

typed_key!(
    /// A validated operator public key (`O…`).
    OperatorPublicKey,
    KeyKind::Operator
);
typed_key!(
    /// A validated account public key (`A…`).
    AccountPublicKey,
    KeyKind::Account
);
typed_key!(
    /// A validated user public key (`U…`).
    UserPublicKey,
    KeyKind::User
);
typed_key!(
    /// A validated server public key (`N…`).
    ServerPublicKey,
    KeyKind::Server
);
typed_key!(
    /// A validated cluster public key (`C…`).
    ClusterPublicKey,
    KeyKind::Cluster
);

/// A secret seed string (`S…`), validated, zeroized on drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Seed(Zeroizing<String>);

impl Seed {
    /// Validates a seed string (checksum, seed prefix and a supported key kind).
    pub fn parse(s: &str) -> Result<Seed, KeyError> {
        decode_seed(s)?;
        Ok(Seed(Zeroizing::new(s.to_string())))
    }

    /// The secret seed text. Handle with care: do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The kind of key pair this seed belongs to.
    pub fn kind(&self) -> KeyKind {
        // Validated on construction: the second character names the kind.
        self.0
            .chars()
            .nth(1)
            .and_then(KeyKind::from_prefix)
            .unwrap_or(KeyKind::User)
    }
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seed(<redacted>)")
    }
}

impl fmt::Display for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seed(<redacted>)")
    }
}

/// Decodes a seed into its kind and raw 32 bytes (caller must zeroize the bytes).
fn decode_seed(s: &str) -> Result<(KeyKind, [u8; 32]), KeyError> {
    // nkeys' messages never echo the seed back except its first character, which is not secret.
    let (prefix, raw) = nkeys::decode_seed(s).map_err(|e| KeyError::InvalidSeed(e.to_string()))?;
    match kind_of_prefix_byte(prefix) {
        Some(kind) => Ok((kind, raw)),
        None => {
            let mut raw = raw;
            raw.zeroize();
            Err(KeyError::InvalidSeed(
                "not an operator, account, user, server or cluster seed".into(),
            ))
        }
    }
}

/// An Ed25519 key pair with its NKey kind. `Debug` shows only the kind and public key.
#[derive(Clone)]
pub struct KeyPair {
    kind: KeyKind,
    public: PublicKey,
    seed: Seed,
    signing: SigningKey,
}

impl KeyPair {
    /// Generates a fresh key pair from a cryptographically secure random generator (the
    /// thread's generator, seeded by the OS, as `nkeys` uses).
    pub fn generate(kind: KeyKind) -> KeyPair {
        let raw = Zeroizing::new(rand::random::<[u8; 32]>());
        let seed = Zeroizing::new(encode_seed(kind, &raw));
        KeyPair::from_raw(kind, &raw, seed)
    }

    /// Rebuilds a key pair from its seed string.
    pub fn from_seed(seed: &str) -> Result<KeyPair, KeyError> {
        let (kind, raw) = decode_seed(seed)?;
        let raw = Zeroizing::new(raw);
        Ok(KeyPair::from_raw(
            kind,
            &raw,
            Zeroizing::new(seed.to_string()),
        ))
    }

    /// The key pair of the private scalar `raw`, whose seed string is `seed`. The public
    /// key is derived once, by the signing key (one scalar multiplication: the cost of a
    /// key pair), and encoded here rather than derived again by `nkeys`.
    fn from_raw(kind: KeyKind, raw: &[u8; 32], seed: Zeroizing<String>) -> KeyPair {
        let signing = SigningKey::from_bytes(raw);
        let public = PublicKey(encode_key(
            &[kind_prefix_byte(kind)],
            signing.verifying_key().as_bytes(),
        ));
        KeyPair {
            kind,
            public,
            seed: Seed(seed),
            signing,
        }
    }

    /// The kind of this key pair.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        self.public.clone()
    }

    /// The secret seed.
    pub fn seed(&self) -> Seed {
        self.seed.clone()
    }

    /// Signs `msg`, returning the 64-byte Ed25519 signature.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.signing.sign(msg).to_bytes().to_vec()
    }

    /// The public key as an operator key, or `WrongKind`.
    pub fn operator_public_key(&self) -> Result<OperatorPublicKey, KeyError> {
        OperatorPublicKey::try_from(self.public_key())
    }

    /// The public key as an account key, or `WrongKind`.
    pub fn account_public_key(&self) -> Result<AccountPublicKey, KeyError> {
        AccountPublicKey::try_from(self.public_key())
    }

    /// The public key as a user key, or `WrongKind`.
    pub fn user_public_key(&self) -> Result<UserPublicKey, KeyError> {
        UserPublicKey::try_from(self.public_key())
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("kind", &self.kind)
            .field("public_key", &self.public.as_str())
            .finish()
    }
}

/// Verifies a 64-byte Ed25519 signature of `msg` by `public_key`.
pub fn verify_signature(public_key: &PublicKey, msg: &[u8], sig: &[u8]) -> Result<(), KeyError> {
    let (_, raw) = parse_public(public_key.as_str())?;
    let vk = VerifyingKey::from_bytes(&raw).map_err(|_| KeyError::Invalid {
        key: public_key.to_string(),
        reason: "not a valid Ed25519 point".into(),
    })?;
    let sig: [u8; 64] = sig.try_into().map_err(|_| KeyError::BadSignature)?;
    vk.verify(msg, &Signature::from_bytes(&sig))
        .map_err(|_| KeyError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_KINDS: [KeyKind; 5] = [
        KeyKind::Operator,
        KeyKind::Account,
        KeyKind::User,
        KeyKind::Server,
        KeyKind::Cluster,
    ];

    #[test]
    fn generate_and_roundtrip_each_kind() {
        for kind in ALL_KINDS {
            let kp = KeyPair::generate(kind);
            assert_eq!(kp.kind(), kind);
            let pk = kp.public_key();
            assert_eq!(pk.kind(), kind);
            assert!(pk.as_str().starts_with(kind.prefix()));
            assert_eq!(pk.as_str().len(), 56);
            let seed = kp.seed();
            assert_eq!(seed.expose().len(), 58);
            assert!(seed.expose().starts_with(&format!("S{}", kind.prefix())));
            let again = KeyPair::from_seed(seed.expose()).unwrap();
            assert_eq!(again.public_key(), pk);
            let sig = kp.sign(b"hello");
            assert_eq!(sig.len(), 64);
            verify_signature(&pk, b"hello", &sig).unwrap();
            assert!(verify_signature(&pk, b"hellO", &sig).is_err());
        }
    }

    #[test]
    fn own_encoding_matches_nkeys() {
        for kind in ALL_KINDS {
            for _ in 0..50 {
                let kp = KeyPair::generate(kind);
                // nkeys decodes the seed we wrote (CRC checked) and derives the same key.
                let theirs = nkeys::KeyPair::from_seed(kp.seed().expose()).unwrap();
                assert_eq!(theirs.public_key(), kp.public_key().as_str());
                assert_eq!(theirs.seed().unwrap(), kp.seed().expose());
                // And the other way: a key pair nkeys made reads back the same.
                let made = nkeys::KeyPair::new(kind.nkeys_type());
                let ours = KeyPair::from_seed(&made.seed().unwrap()).unwrap();
                assert_eq!(ours.public_key().as_str(), made.public_key());
            }
        }
        // The CRC's check value for "123456789".
        assert_eq!(crc16_xmodem(b"123456789"), 0x31C3);
    }

    #[test]
    fn typed_accessors_refuse_wrong_kind() {
        let kp = KeyPair::generate(KeyKind::User);
        assert!(kp.user_public_key().is_ok());
        match kp.account_public_key() {
            Err(KeyError::WrongKind { expected, found }) => {
                assert_eq!(expected, KeyKind::Account);
                assert_eq!(found, KeyKind::User);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(OperatorPublicKey::new(kp.public_key().as_str()).is_err());
    }

    #[test]
    fn seed_is_redacted() {
        let kp = KeyPair::generate(KeyKind::Account);
        let seed = kp.seed();
        assert_eq!(format!("{seed:?}"), "Seed(<redacted>)");
        assert_eq!(format!("{seed}"), "Seed(<redacted>)");
        let dbg = format!("{kp:?}");
        assert!(!dbg.contains(seed.expose()));
        assert!(dbg.contains(kp.public_key().as_str()));
    }

    #[test]
    fn invalid_inputs() {
        assert!(PublicKey::new("").is_err());
        assert!(PublicKey::new("hello").is_err());
        let kp = KeyPair::generate(KeyKind::Operator);
        let mut s = kp.public_key().into_string();
        s.replace_range(10..11, if &s[10..11] == "A" { "B" } else { "A" });
        assert!(
            PublicKey::new(&s).is_err(),
            "checksum must catch a changed char"
        );
        assert!(Seed::parse("SUxx").is_err());
        assert!(Seed::parse(kp.public_key().as_str()).is_err());
        // seeds are not public keys
        assert!(PublicKey::new(kp.seed().expose()).is_err());
        // a curve key (X prefix) is not supported
        let x = nkeys::KeyPair::new(nkeys::KeyPairType::Curve).public_key();
        assert!(PublicKey::new(&x).is_err());
    }

    #[test]
    fn serde_as_plain_string() {
        let kp = KeyPair::generate(KeyKind::Account);
        let ak = kp.account_public_key().unwrap();
        let json = serde_json::to_string(&ak).unwrap();
        assert_eq!(json, format!("\"{}\"", ak.as_str()));
        let back: AccountPublicKey = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ak);
        assert!(serde_json::from_str::<UserPublicKey>(&json).is_err());
    }
}
