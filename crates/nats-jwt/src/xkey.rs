//! Curve (X25519) keys, as auth callout uses them: a callout account names its public
//! curve key (`X…`) in its `authorization.xkey`, and the server then seals every
//! authorization request to it and accepts sealed responses (nkeys' `xkv1` box).

use zeroize::Zeroizing;

use crate::keys::KeyError;

/// A curve key pair (private part held), for opening requests and sealing responses.
#[derive(Clone)]
pub struct CurveKeyPair(nkeys::XKey);

impl std::fmt::Debug for CurveKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CurveKeyPair({})", self.public_key())
    }
}

impl CurveKeyPair {
    /// A new random curve key pair.
    pub fn generate() -> CurveKeyPair {
        CurveKeyPair(nkeys::XKey::new())
    }

    /// The key pair of a curve seed (`SX…`). The seed is never repeated in an error.
    pub fn from_seed(seed: &str) -> Result<CurveKeyPair, KeyError> {
        nkeys::XKey::from_seed(seed.trim())
            .map(CurveKeyPair)
            .map_err(|_| KeyError::InvalidSeed("not a curve (xkey) seed".into()))
    }

    /// The seed (`SX…`), to be sealed at rest.
    pub fn seed(&self) -> Result<Zeroizing<String>, KeyError> {
        self.0
            .seed()
            .map(Zeroizing::new)
            .map_err(|e| KeyError::InvalidSeed(e.to_string()))
    }

    /// The public key (`X…`).
    pub fn public_key(&self) -> String {
        self.0.public_key()
    }

    /// Opens `sealed`, sealed to this key by the holder of `sender` (a public curve key).
    pub fn open(&self, sealed: &[u8], sender: &str) -> Result<Vec<u8>, KeyError> {
        let from = curve_public(sender)?;
        self.0
            .open(sealed, &from)
            .map_err(|e| KeyError::Sealed(e.to_string()))
    }

    /// Seals `message` from this key to `recipient` (a public curve key).
    pub fn seal(&self, message: &[u8], recipient: &str) -> Result<Vec<u8>, KeyError> {
        let to = curve_public(recipient)?;
        self.0
            .seal(message, &to)
            .map_err(|e| KeyError::Sealed(e.to_string()))
    }
}

fn curve_public(key: &str) -> Result<nkeys::XKey, KeyError> {
    nkeys::XKey::from_public_key(key).map_err(|e| KeyError::Invalid {
        key: key.to_string(),
        reason: format!("not a curve (xkey) public key: {e}"),
    })
}

/// Whether `key` is a valid public curve key (`X…` with a good checksum).
pub fn is_curve_public_key(key: &str) -> bool {
    curve_public(key).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_message_opens_only_for_its_recipient() {
        let server = CurveKeyPair::generate();
        let service = CurveKeyPair::generate();
        let other = CurveKeyPair::generate();
        let sealed = server.seal(b"eyJhbGciOi", &service.public_key()).unwrap();
        assert!(sealed.starts_with(b"xkv1"));
        assert_eq!(
            service.open(&sealed, &server.public_key()).unwrap(),
            b"eyJhbGciOi"
        );
        assert!(other.open(&sealed, &server.public_key()).is_err());
        assert!(service.open(&sealed, &other.public_key()).is_err());
        assert!(service.open(b"xkv1short", &server.public_key()).is_err());
    }

    #[test]
    fn seed_round_trips_and_kinds_are_checked() {
        let k = CurveKeyPair::generate();
        assert!(k.public_key().starts_with('X'));
        assert!(is_curve_public_key(&k.public_key()));
        let again = CurveKeyPair::from_seed(&k.seed().unwrap()).unwrap();
        assert_eq!(again.public_key(), k.public_key());
        let user = crate::KeyPair::generate(crate::KeyKind::User);
        assert!(!is_curve_public_key(user.public_key().as_str()));
        let err = CurveKeyPair::from_seed(user.seed().expose()).unwrap_err();
        assert!(!err.to_string().contains(user.seed().expose()));
        assert!(k.seal(b"x", user.public_key().as_str()).is_err());
    }
}
