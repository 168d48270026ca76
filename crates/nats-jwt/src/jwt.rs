//! Encoding (signing) and verifying decoding of NATS v2 JWTs.
//!
//! Wire format: `base64url(header) "." base64url(payload) "." base64url(signature)`, all
//! without padding; the Ed25519 signature covers the first two segments as ASCII.

use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};
use sha2::{Digest, Sha512_256};

use crate::claims::{
    Account, AccountClaims, Activation, ActivationClaims, Claims, Generic, GenericClaims, Operator,
    OperatorClaims, User, UserClaims,
};
use crate::keys::{KeyError, KeyKind, KeyPair, PublicKey, verify_signature};
use crate::validation::{IssueKind, ValidationIssue};

/// The header every token written by this crate carries.
pub const HEADER_JSON: &str = r#"{"typ":"JWT","alg":"ed25519-nkey"}"#;

const B64: data_encoding::Encoding = data_encoding::BASE64URL_NOPAD;

/// Errors from encoding or decoding a JWT.
#[derive(thiserror::Error, Debug)]
pub enum JwtError {
    /// Not three base64url segments, or a segment that is not JSON of the right shape.
    #[error("malformed JWT: {0}")]
    Malformed(String),
    /// The header is not a NATS JWT header.
    #[error("bad JWT header: {0}")]
    BadHeader(String),
    /// Claim version other than 2.
    #[error("unsupported JWT version {version}: {hint}")]
    UnsupportedVersion {
        /// The version found (0 and 1 are v1 tokens).
        version: i64,
        /// What to do about it.
        hint: &'static str,
    },
    /// `nats.type` is not the expected one.
    #[error("expected a {expected} JWT but found {found:?}")]
    WrongType {
        /// The type wanted.
        expected: &'static str,
        /// The type found (empty when absent).
        found: String,
    },
    /// The signature does not verify with the issuer key.
    #[error("JWT signature verification failed")]
    BadSignature,
    /// The issuer (or signer) kind is not allowed for this claim type.
    #[error("a {claim} JWT cannot be issued by a {found} key")]
    WrongIssuerKind {
        /// Claim type.
        claim: &'static str,
        /// The kind of the issuer/signer.
        found: KeyKind,
    },
    /// `sub` is missing.
    #[error("JWT has no subject")]
    MissingSubject,
    /// JSON (de)serialization failed.
    #[error("JWT JSON error: {0}")]
    Json(#[from] serde_json::Error),
    /// A key problem (e.g. the issuer is not a valid public key).
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// A `nats` body type: knows its `type` name, allowed issuers and its own validation.
pub trait ClaimBody: Serialize + DeserializeOwned {
    /// The `nats.type` value, `None` for generic claims.
    const TYPE: Option<&'static str>;

    /// Key kinds allowed to issue this claim type.
    fn allowed_issuers() -> &'static [KeyKind];

    /// The key kind `sub` must have, if any.
    fn subject_kind() -> Option<KeyKind> {
        None
    }

    /// Whether a missing `name` is worth a warning (nsc needs names on stored JWTs).
    fn name_expected() -> bool {
        true
    }

    /// Normalizes the body before encoding (e.g. sort imports/exports).
    fn prepare(&mut self) {}

    /// Whether tokens of this type are embedded in other JWTs (activations in an account's
    /// imports), whose validation decodes them again: the thread that signs one remembers
    /// it ([`signed_here`]) so that checking it moments later skips the signature.
    const EMBEDDED: bool = false;

    /// Type-specific validation, appending every issue found.
    fn validate_body(_claims: &Claims<Self>, _issues: &mut Vec<ValidationIssue>)
    where
        Self: Sized,
    {
    }
}

fn type_name<T: ClaimBody>() -> &'static str {
    T::TYPE.unwrap_or("generic")
}

/// Serializes a body followed by `type` (if any) and `"version":2`.
pub(crate) fn serialize_nats<T: ClaimBody, S: Serializer>(
    body: &T,
    s: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Wire<'a, B: Serialize> {
        #[serde(flatten)]
        body: &'a B,
        #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
        kind: Option<&'static str>,
        version: u8,
    }
    Wire {
        body,
        kind: T::TYPE,
        version: 2,
    }
    .serialize(s)
}

/// JSON formatter that escapes like Go's encoder (`<`, `>`, `&`, U+2028, U+2029).
struct GoFormatter;

impl serde_json::ser::Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let esc = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            writer.write_all(esc.as_bytes())?;
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// Compact JSON the way Go writes it.
pub fn to_go_json<V: Serialize + ?Sized>(v: &V) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    v.serialize(&mut ser)?;
    Ok(out)
}

/// The `jti` of the standard fields: base32-nopad(SHA-512/256(JSON without jti and nats)).
pub fn compute_jti<T>(claims: &Claims<T>) -> Result<String, serde_json::Error> {
    #[derive(Serialize)]
    struct Std<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        aud: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        exp: Option<i64>,
        #[serde(skip_serializing_if = "is_zero")]
        iat: i64,
        #[serde(skip_serializing_if = "str::is_empty")]
        iss: &'a str,
        #[serde(skip_serializing_if = "str::is_empty")]
        name: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        nbf: Option<i64>,
        #[serde(skip_serializing_if = "str::is_empty")]
        sub: &'a str,
    }
    fn is_zero(v: &i64) -> bool {
        *v == 0
    }
    let std = Std {
        aud: claims.aud.as_deref().filter(|a| !a.is_empty()),
        exp: claims.exp.filter(|e| *e != 0),
        iat: claims.iat,
        iss: &claims.iss,
        name: &claims.name,
        nbf: claims.nbf.filter(|n| *n != 0),
        sub: &claims.sub,
    };
    let bytes = to_go_json(&std)?;
    Ok(data_encoding::BASE32_NOPAD.encode(&Sha512_256::digest(&bytes)))
}

impl<T: ClaimBody> Claims<T> {
    /// Sets `iss` (signer public key) and `iat` = now, recomputes `jti`, signs.
    /// Refuses a signer of a kind not allowed for this claim type.
    pub fn encode(&mut self, signer: &KeyPair) -> Result<String, JwtError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        self.encode_at(signer, now)
    }

    /// Like [`Claims::encode`] with an explicit `iat`.
    pub fn encode_at(&mut self, signer: &KeyPair, iat: i64) -> Result<String, JwtError> {
        if !T::allowed_issuers().contains(&signer.kind()) {
            return Err(JwtError::WrongIssuerKind {
                claim: type_name::<T>(),
                found: signer.kind(),
            });
        }
        if self.sub.is_empty() {
            return Err(JwtError::MissingSubject);
        }
        self.nats.prepare();
        self.iss = signer.public_key().into_string();
        self.iat = iat;
        self.jti = String::new();
        self.jti = compute_jti(self)?;
        let payload = to_go_json(self)?;
        let mut token = B64.encode(HEADER_JSON.as_bytes());
        token.push('.');
        token.push_str(&B64.encode(&payload));
        let sig = signer.sign(token.as_bytes());
        token.push('.');
        token.push_str(&B64.encode(&sig));
        if T::EMBEDDED {
            remember_signed(&token);
        }
        Ok(token)
    }

    /// [`Claims::validate`] for claims read back from the caller's own store, whose
    /// embedded tokens (an account's import activations) were verified when the claims
    /// were signed and are verified again by nats-server before they take effect: every
    /// check but those tokens' signatures, each of which costs twice a signing. Like
    /// [`decode_unverified`], never for claims from an untrusted source.
    pub fn validate_own(&self, now: i64) -> Vec<ValidationIssue> {
        /// Puts the flag back as it was, also when validation panics.
        struct Restore(bool);
        impl Drop for Restore {
            fn drop(&mut self) {
                EMBEDDED_LEFT_TO_THE_VERIFIER.with(|f| f.set(self.0));
            }
        }
        let _restore = Restore(EMBEDDED_LEFT_TO_THE_VERIFIER.with(|f| f.replace(true)));
        self.validate(now)
    }

    /// Every problem found, never stopping at the first.
    pub fn validate(&self, now: i64) -> Vec<ValidationIssue> {
        let mut issues = Vec::new();
        if let Some(exp) = self.exp.filter(|e| *e > 0)
            && now > exp
        {
            issues.push(ValidationIssue::time(IssueKind::Expired { exp }));
        }
        if let Some(nbf) = self.nbf.filter(|n| *n > 0)
            && nbf > now
        {
            issues.push(ValidationIssue::time(IssueKind::NotYetValid { nbf }));
        }
        if self.sub.is_empty() {
            issues.push(ValidationIssue::error(IssueKind::MissingSubject));
        } else if let Some(kind) = T::subject_kind()
            && PublicKey::new(&self.sub).map(|k| k.kind()).ok() != Some(kind)
        {
            issues.push(ValidationIssue::error(IssueKind::InvalidSubjectKey {
                subject: self.sub.clone(),
                expected: kind,
            }));
        }
        if T::name_expected() && self.name.trim().is_empty() {
            issues.push(ValidationIssue::warning(IssueKind::MissingName));
        }
        T::validate_body(self, &mut issues);
        issues
    }
}

/// The three decoded segments and the verified payload, before typing.
struct Verified {
    payload: serde_json::Value,
}

/// Whether [`parse`] checks the signature.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Signature {
    Verify,
    LeaveToTheVerifier,
}

fn verify(token: &str) -> Result<Verified, JwtError> {
    parse(token, Signature::Verify)
}

fn parse(token: &str, signature: Signature) -> Result<Verified, JwtError> {
    let parts: Vec<&str> = token.trim().split('.').collect();
    let [h, p, s] = parts[..] else {
        return Err(JwtError::Malformed(format!(
            "expected 3 dot-separated segments, found {}",
            parts.len()
        )));
    };
    let seg = |name: &str, v: &str| {
        B64.decode(v.as_bytes())
            .map_err(|e| JwtError::Malformed(format!("{name} is not unpadded base64url: {e}")))
    };
    let header = seg("header", h)?;
    let payload = seg("payload", p)?;
    let sig = seg("signature", s)?;

    let header: serde_json::Value = serde_json::from_slice(&header)
        .map_err(|e| JwtError::BadHeader(format!("not JSON: {e}")))?;
    let typ = header.get("typ").and_then(|v| v.as_str()).unwrap_or("");
    if !typ.eq_ignore_ascii_case("JWT") {
        return Err(JwtError::BadHeader(format!("typ {typ:?} is not JWT")));
    }
    let alg = header
        .get("alg")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if alg != "ed25519-nkey" && alg != "ed25519" {
        return Err(JwtError::BadHeader(format!(
            "alg {alg:?} is not ed25519-nkey"
        )));
    }

    let payload: serde_json::Value = serde_json::from_slice(&payload)
        .map_err(|e| JwtError::Malformed(format!("payload is not JSON: {e}")))?;
    if !payload.is_object() {
        return Err(JwtError::Malformed("payload is not a JSON object".into()));
    }
    if payload.get("type").is_some() {
        return Err(JwtError::UnsupportedVersion {
            version: 1,
            hint: "v1 JWTs are not supported; re-issue it as v2",
        });
    }
    let version = payload
        .get("nats")
        .and_then(|n| n.get("version"))
        .and_then(|v| v.as_i64())
        .unwrap_or(0);
    match version {
        2 => {}
        v if v < 2 => {
            return Err(JwtError::UnsupportedVersion {
                version: v,
                hint: "v1 JWTs are not supported; re-issue it as v2",
            });
        }
        v => {
            return Err(JwtError::UnsupportedVersion {
                version: v,
                hint: "JWT was generated by a newer version",
            });
        }
    }
    let iss = payload.get("iss").and_then(|v| v.as_str()).unwrap_or("");
    if iss.is_empty() {
        return Err(JwtError::Malformed("JWT has no issuer".into()));
    }
    let issuer = PublicKey::new(iss)?;
    if signature == Signature::Verify {
        let signed = &token.trim().as_bytes()[..h.len() + 1 + p.len()];
        verify_signature(&issuer, signed, &sig).map_err(|_| JwtError::BadSignature)?;
    }
    Ok(Verified { payload })
}

fn nats_type(payload: &serde_json::Value) -> &str {
    payload
        .get("nats")
        .and_then(|n| n.get("type"))
        .and_then(|t| t.as_str())
        .unwrap_or("")
}

fn finish<T: ClaimBody>(v: Verified) -> Result<Claims<T>, JwtError> {
    let found = nats_type(&v.payload);
    if let Some(expected) = T::TYPE
        && found != expected
    {
        return Err(JwtError::WrongType {
            expected,
            found: found.to_string(),
        });
    }
    let claims: Claims<T> = serde_json::from_value(v.payload)?;
    let issuer_kind = PublicKey::new(&claims.iss)?.kind();
    if !T::allowed_issuers().contains(&issuer_kind) {
        return Err(JwtError::WrongIssuerKind {
            claim: type_name::<T>(),
            found: issuer_kind,
        });
    }
    if claims.sub.is_empty() {
        return Err(JwtError::MissingSubject);
    }
    Ok(claims)
}

/// Verifying decode of a token of claim type `T`. Does not check `exp`/`nbf`
/// (use [`Claims::validate`]). Never panics.
pub fn decode<T: ClaimBody>(token: &str) -> Result<Claims<T>, JwtError> {
    finish(verify(token)?)
}

/// How many tokens of an [`ClaimBody::EMBEDDED`] type each thread remembers signing: a
/// device account's activations are signed just before the account that embeds them.
const SIGNED_HERE: usize = 64;

thread_local! {
    static RECENTLY_SIGNED: std::cell::RefCell<std::collections::VecDeque<String>> =
        const { std::cell::RefCell::new(std::collections::VecDeque::new()) };
}

thread_local! {
    /// Set while [`Claims::validate_own`] runs on this thread.
    static EMBEDDED_LEFT_TO_THE_VERIFIER: std::cell::Cell<bool> =
        const { std::cell::Cell::new(false) };
}

fn remember_signed(token: &str) {
    RECENTLY_SIGNED.with(|r| {
        let mut r = r.borrow_mut();
        if r.len() == SIGNED_HERE {
            r.pop_front();
        }
        r.push_back(token.to_string());
    });
}

/// Whether this thread signed `token` itself, recently: its signature holds by
/// construction, and verifying it again (twice the cost of making it) would only repeat
/// the signing. Only tokens of an [`ClaimBody::EMBEDDED`] type are remembered.
pub(crate) fn signed_here(token: &str) -> bool {
    RECENTLY_SIGNED.with(|r| r.borrow().iter().any(|t| t == token))
}

/// [`decode`] of a token embedded in the claims being validated, except for one this
/// thread just signed itself ([`signed_here`]) or one inside claims validated with
/// [`Claims::validate_own`], whose signature is not verified; every other check is the same.
pub(crate) fn decode_embedded<T: ClaimBody>(token: &str) -> Result<Claims<T>, JwtError> {
    if EMBEDDED_LEFT_TO_THE_VERIFIER.with(|f| f.get()) || signed_here(token) {
        decode_unverified(token)
    } else {
        decode(token)
    }
}

/// Everything [`decode`] checks except the signature: segments, header, version, claim
/// type, issuer kind. Only for a token whose signature another party verifies before it
/// takes effect (nats-server verifies every account JWT pushed to its resolver) and whose
/// issuer the caller checks itself; a token from an untrusted source goes through
/// [`decode`].
pub fn decode_unverified<T: ClaimBody>(token: &str) -> Result<Claims<T>, JwtError> {
    finish(parse(token, Signature::LeaveToTheVerifier)?)
}

/// Claims of any type, as picked by `nats.type`.
// One value per decoded token, never stored in bulk: boxing the account variant would
// cost every caller a pattern change for no measurable gain.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum AnyClaims {
    /// Operator claims.
    Operator(OperatorClaims),
    /// Account claims.
    Account(AccountClaims),
    /// User claims.
    User(UserClaims),
    /// Activation claims.
    Activation(ActivationClaims),
    /// Anything else.
    Generic(GenericClaims),
}

/// Verifying decode of a token of any type (picked by `nats.type`).
pub fn decode_any(token: &str) -> Result<AnyClaims, JwtError> {
    any_claims(verify(token)?)
}

/// [`decode_any`] without the signature check, for the crate's own formatting of tokens
/// whose signature the server checks when they are used (see [`decode_unverified`]).
pub(crate) fn decode_any_unverified(token: &str) -> Result<AnyClaims, JwtError> {
    any_claims(parse(token, Signature::LeaveToTheVerifier)?)
}

fn any_claims(v: Verified) -> Result<AnyClaims, JwtError> {
    Ok(match nats_type(&v.payload) {
        "operator" => AnyClaims::Operator(finish::<Operator>(v)?),
        "account" => AnyClaims::Account(finish::<Account>(v)?),
        "user" => AnyClaims::User(finish::<User>(v)?),
        "activation" => AnyClaims::Activation(finish::<Activation>(v)?),
        _ => AnyClaims::Generic(finish::<Generic>(v)?),
    })
}

macro_rules! each {
    ($self:expr, $c:ident => $e:expr) => {
        match $self {
            AnyClaims::Operator($c) => $e,
            AnyClaims::Account($c) => $e,
            AnyClaims::User($c) => $e,
            AnyClaims::Activation($c) => $e,
            AnyClaims::Generic($c) => $e,
        }
    };
}

impl AnyClaims {
    /// `"operator"`, `"account"`, `"user"`, `"activation"` or `"generic"`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            AnyClaims::Operator(_) => "operator",
            AnyClaims::Account(_) => "account",
            AnyClaims::User(_) => "user",
            AnyClaims::Activation(_) => "activation",
            AnyClaims::Generic(_) => "generic",
        }
    }

    /// The claims as they appear on the wire (with `type` and `version`).
    pub fn to_json(&self) -> serde_json::Value {
        each!(self, c => serde_json::to_value(c).unwrap_or(serde_json::Value::Null))
    }

    /// Validates the claims (see [`Claims::validate`]).
    pub fn validate(&self, now: i64) -> Vec<ValidationIssue> {
        each!(self, c => c.validate(now))
    }

    /// The issuer public key.
    pub fn issuer(&self) -> &str {
        each!(self, c => &c.iss)
    }

    /// The subject.
    pub fn subject(&self) -> &str {
        each!(self, c => &c.sub)
    }

    /// The name.
    pub fn name(&self) -> &str {
        each!(self, c => &c.name)
    }

    /// Issued-at, unix seconds.
    pub fn issued_at(&self) -> i64 {
        each!(self, c => c.iat)
    }

    /// Expiry, unix seconds; `None` when the JWT does not expire.
    pub fn expires_at(&self) -> Option<i64> {
        each!(self, c => c.exp.filter(|e| *e > 0))
    }
}
