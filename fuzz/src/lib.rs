//! Helpers the Warden fuzz targets share: fixed test key pairs (never used outside
//! fuzzing) and the signing that lets fuzzed JWT payloads get past signature
//! verification, so the claim parsing and `validate()` behind it are reached.

use std::sync::OnceLock;

use nats_jwt::KeyPair;

/// Test-only seeds: operator, account and user. Fixed so that seed files (JWT payloads
/// naming these issuers) stay meaningful from one run to the next.
const SEEDS: [&str; 3] = [
    "SOADMMFKJO76LHIQD2S5QZMXGWSYXRLKRHBRTXFR3GPWC3RHXOIR32L5PA",
    "SAAE7DWEQSTNGHD23ZQCY2OOLEUHYSKKXKV4PQPNLJOY5ZATJGCJ4QEAB4",
    "SUAFMBLKMURMEWUWLXOEXGZEH7TGNSCXJVUCBPKEEOQ7Q5XHCIDSFAFHRY",
];

/// The fixed operator, account and user key pairs.
pub fn signers() -> &'static [KeyPair; 3] {
    static KEYS: OnceLock<[KeyPair; 3]> = OnceLock::new();
    KEYS.get_or_init(|| {
        SEEDS.map(|s| KeyPair::from_seed(s).expect("the fixed fuzzing seeds are valid"))
    })
}

const B64: data_encoding::Encoding = data_encoding::BASE64URL_NOPAD;

/// `header.payload.signature` with a valid Ed25519 signature over `header.payload`.
pub fn token_with(signer: &KeyPair, header: &[u8], payload: &[u8]) -> String {
    let mut token = B64.encode(header);
    token.push('.');
    token.push_str(&B64.encode(payload));
    let sig = signer.sign(token.as_bytes());
    token.push('.');
    token.push_str(&B64.encode(&sig));
    token
}

/// A NATS JWT carrying `payload`, signed so that verification passes: a JSON object's
/// `iss` picks the signer when it names one of the fixed keys, otherwise the operator
/// signs and `iss` is set to it. Anything that is not a JSON object is signed as is (and
/// refused by decode before the signature matters).
pub fn signed_nats_jwt(payload: &[u8]) -> String {
    let keys = signers();
    let header = nats_jwt::jwt::HEADER_JSON.as_bytes();
    match serde_json::from_slice::<serde_json::Value>(payload) {
        Ok(serde_json::Value::Object(mut obj)) => {
            let iss = obj.get("iss").and_then(|v| v.as_str()).unwrap_or("");
            let signer = keys
                .iter()
                .find(|k| k.public_key().as_str() == iss)
                .unwrap_or(&keys[0]);
            obj.insert(
                "iss".into(),
                serde_json::Value::String(signer.public_key().into_string()),
            );
            let bytes = serde_json::to_vec(&obj).unwrap_or_default();
            token_with(signer, header, &bytes)
        }
        _ => token_with(&keys[0], header, payload),
    }
}
