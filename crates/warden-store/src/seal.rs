//! Sealing secrets at rest: the [`MasterKey`] and the `v1:` XChaCha20-Poly1305 envelope.
//!
//! A sealed value is `v1:<base64url-nopad(nonce || ciphertext)>`: a fresh random 24-byte nonce
//! per seal, the ciphertext with its 16-byte Poly1305 tag, and as associated data a string
//! naming what is sealed (for seeds, the key's public key), so a sealed seed moved to another
//! row no longer opens.

use std::fmt;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use data_encoding::{BASE64, BASE64_NOPAD, BASE64URL, BASE64URL_NOPAD, HEXLOWER_PERMISSIVE};
use rand::RngCore;
use zeroize::{Zeroize, Zeroizing};

use crate::StoreError;

/// The environment variable that holds the master key (64 hex characters or base64 of 32
/// bytes). It takes precedence over the key file.
pub const MASTER_KEY_ENV: &str = "WARDEN_MASTER_KEY";

/// Name of the key file inside the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";

const ENVELOPE_PREFIX: &str = "v1:";
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// The 32-byte key that seals every seed in the store.
///
/// Zeroized on drop; `Debug` never shows it.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

impl MasterKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> MasterKey {
        MasterKey(Zeroizing::new(bytes))
    }

    /// A fresh random key from the operating system's generator.
    pub fn generate() -> MasterKey {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut());
        MasterKey(bytes)
    }

    /// The key Warden runs with: `WARDEN_MASTER_KEY` if set, else `<data_dir>/master.key`.
    ///
    /// When neither exists and `create` is true, a new key is generated and written to
    /// `<data_dir>/master.key` with mode 0600 (the file is created with that mode, so it is
    /// never readable by others, not even briefly). When neither exists and `create` is
    /// false, the error tells the user to run `warden init` or set `WARDEN_MASTER_KEY`.
    pub fn from_env_or_file(data_dir: &Path, create: bool) -> Result<MasterKey, StoreError> {
        match std::env::var(MASTER_KEY_ENV) {
            Ok(value) => {
                let value = Zeroizing::new(value);
                return MasterKey::parse(&value)
                    .map_err(|e| StoreError::MasterKey(format!("{MASTER_KEY_ENV}: {e}")));
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(StoreError::MasterKey(format!(
                    "{MASTER_KEY_ENV} is not valid UTF-8; expected 64 hex characters or base64 \
                     of 32 bytes"
                )));
            }
            Err(std::env::VarError::NotPresent) => {}
        }
        MasterKey::from_file(&data_dir.join(MASTER_KEY_FILE), create)
    }

    /// The key in the file at `path` (64 hex characters on one line). When the file does not
    /// exist: with `create`, generate a key and write it there (mode 0600, parent directory
    /// created with mode 0700 if missing); without, an error pointing at `warden init`.
    pub fn from_file(path: &Path, create: bool) -> Result<MasterKey, StoreError> {
        match fs::read_to_string(path) {
            Ok(text) => {
                let text = Zeroizing::new(text);
                MasterKey::parse_hex(text.trim())
                    .map_err(|e| StoreError::MasterKey(format!("key file {}: {e}", path.display())))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if create {
                    MasterKey::create_file(path)
                } else {
                    Err(StoreError::MasterKey(format!(
                        "no master key: {} does not exist and {MASTER_KEY_ENV} is not set; run \
                         `warden init` to create one, or set {MASTER_KEY_ENV}",
                        path.display()
                    )))
                }
            }
            Err(e) => Err(StoreError::MasterKey(format!(
                "cannot read key file {}: {e}",
                path.display()
            ))),
        }
    }

    fn create_file(path: &Path) -> Result<MasterKey, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| {
                    StoreError::MasterKey(format!("cannot create directory {}: {e}", dir.display()))
                })?;
        }
        let key = MasterKey::generate();
        let mut line = Zeroizing::new(HEXLOWER_PERMISSIVE.encode(&*key.0));
        line.push('\n');
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
        let mut file = match file {
            Ok(f) => f,
            // Someone else created it in the meantime: use theirs.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return MasterKey::from_file(path, false);
            }
            Err(e) => {
                return Err(StoreError::MasterKey(format!(
                    "cannot create key file {}: {e}",
                    path.display()
                )));
            }
        };
        let written = file
            .write_all(line.as_bytes())
            .and_then(|()| file.sync_all())
            // The umask can only remove bits; make sure the result is exactly 0600.
            .and_then(|()| file.set_permissions(fs::Permissions::from_mode(0o600)));
        if let Err(e) = written {
            let _ = fs::remove_file(path);
            return Err(StoreError::MasterKey(format!(
                "cannot write key file {}: {e}",
                path.display()
            )));
        }
        Ok(key)
    }

    /// Parses the value of `WARDEN_MASTER_KEY`: 64 hex characters, or base64 (standard or
    /// URL-safe, padded or not) of exactly 32 bytes. Surrounding whitespace is ignored. The
    /// error never repeats the value.
    pub fn parse(text: &str) -> Result<MasterKey, String> {
        let text = text.trim();
        if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return MasterKey::parse_hex(text);
        }
        for encoding in [&BASE64, &BASE64_NOPAD, &BASE64URL, &BASE64URL_NOPAD] {
            if let Ok(mut bytes) = encoding.decode(text.as_bytes()) {
                let key = <[u8; 32]>::try_from(bytes.as_slice())
                    .ok()
                    .map(MasterKey::from_bytes);
                bytes.zeroize();
                if let Some(key) = key {
                    return Ok(key);
                }
                return Err(format!(
                    "expected 64 hex characters or base64 of 32 bytes, got base64 of a \
                     different length ({} characters)",
                    text.len()
                ));
            }
        }
        Err(format!(
            "expected 64 hex characters or base64 of 32 bytes (got {} characters that are \
             neither)",
            text.len()
        ))
    }

    fn parse_hex(text: &str) -> Result<MasterKey, String> {
        if text.len() != 64 {
            return Err(format!("expected 64 hex characters, got {}", text.len()));
        }
        let mut bytes = HEXLOWER_PERMISSIVE
            .decode(text.as_bytes())
            .map_err(|_| "expected 64 hex characters (0-9, a-f)".to_owned())?;
        let key = <[u8; 32]>::try_from(bytes.as_slice()).map(MasterKey::from_bytes);
        bytes.zeroize();
        key.map_err(|_| "expected 64 hex characters".to_owned())
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(Key::from_slice(&*self.0))
    }

    /// Seals `plaintext` bound to `aad` (what it is, e.g. a public key) into a `v1:` envelope.
    pub fn seal(&self, aad: &str, plaintext: &[u8]) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| SealError::Seal {
                subject: aad.to_owned(),
            })?;
        let mut raw = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&ciphertext);
        Ok(format!("{ENVELOPE_PREFIX}{}", BASE64URL_NOPAD.encode(&raw)))
    }

    /// Opens an envelope made by [`MasterKey::seal`] with the same `aad`.
    pub fn unseal(&self, aad: &str, envelope: &str) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let malformed = |reason: &'static str| SealError::Malformed {
            subject: aad.to_owned(),
            reason,
        };
        let body = envelope
            .strip_prefix(ENVELOPE_PREFIX)
            .ok_or_else(|| malformed("unknown envelope version (expected \"v1:\")"))?;
        let raw = BASE64URL_NOPAD
            .decode(body.as_bytes())
            .map_err(|_| malformed("not base64url"))?;
        if raw.len() < NONCE_LEN + TAG_LEN {
            return Err(malformed("too short"));
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        self.cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: aad.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SealError::Open {
                subject: aad.to_owned(),
            })
    }

    /// [`MasterKey::unseal`] for text (seeds).
    pub fn unseal_str(&self, aad: &str, envelope: &str) -> Result<Zeroizing<String>, SealError> {
        let mut bytes = self.unseal(aad, envelope)?;
        match std::str::from_utf8(&bytes) {
            Ok(s) => Ok(Zeroizing::new(s.to_owned())),
            Err(_) => {
                bytes.zeroize();
                Err(SealError::Malformed {
                    subject: aad.to_owned(),
                    reason: "plaintext is not UTF-8",
                })
            }
        }
    }
}

/// A value could not be sealed or opened. Names what (`subject`, e.g. a public key), never
/// the value.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The stored envelope is not a `v1:` envelope.
    #[error("sealed value for {subject} is malformed: {reason}")]
    Malformed {
        /// What the sealed value is (its associated data).
        subject: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Authentication failed: the stored value was altered, belongs to another key, or the
    /// master key is not the one it was sealed with.
    #[error(
        "sealed value for {subject} cannot be opened: it was altered or moved, or the master \
         key is not the one it was sealed with"
    )]
    Open {
        /// What the sealed value is (its associated data).
        subject: String,
    },
    /// Encryption failed (only possible for absurdly large plaintexts).
    #[error("cannot seal value for {subject}")]
    Seal {
        /// What the sealed value is (its associated data).
        subject: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_fresh_nonce() {
        let key = MasterKey::from_bytes([1; 32]);
        let a = key.seal("UABC", b"SUAsecret").unwrap();
        let b = key.seal("UABC", b"SUAsecret").unwrap();
        assert!(a.starts_with("v1:"));
        assert_ne!(a, b, "every seal uses a fresh nonce");
        assert_eq!(key.unseal_str("UABC", &a).unwrap().as_str(), "SUAsecret");
        assert_eq!(key.unseal("UABC", &b).unwrap().as_slice(), b"SUAsecret");
    }

    #[test]
    fn wrong_aad_wrong_key_and_tampering_fail() {
        let key = MasterKey::from_bytes([1; 32]);
        let sealed = key.seal("UABC", b"SUAsecret").unwrap();
        assert!(matches!(
            key.unseal("UXYZ", &sealed),
            Err(SealError::Open { .. })
        ));
        let other = MasterKey::from_bytes([2; 32]);
        assert!(matches!(
            other.unseal("UABC", &sealed),
            Err(SealError::Open { .. })
        ));
        let mut raw = BASE64URL_NOPAD.decode(&sealed.as_bytes()[3..]).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let tampered = format!("v1:{}", BASE64URL_NOPAD.encode(&raw));
        assert!(matches!(
            key.unseal("UABC", &tampered),
            Err(SealError::Open { .. })
        ));
        for bad in ["", "v2:abc", "v1:!!!", "v1:AAAA"] {
            assert!(
                matches!(key.unseal("UABC", bad), Err(SealError::Malformed { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn errors_and_debug_never_show_secrets() {
        let key = MasterKey::from_bytes([0xab; 32]);
        assert_eq!(format!("{key:?}"), "MasterKey(***)");
        let err = key.unseal("UABC", "v1:AAAA").unwrap_err().to_string();
        assert!(err.contains("UABC"));
        assert!(!err.contains("abab"));
    }
}
