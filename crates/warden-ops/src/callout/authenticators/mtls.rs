//! The `mtls` authenticator: the client certificate of a TLS connection, as the server
//! reports it in the authorization request, checked against the CA certificates the
//! operator gave (signatures verified here, not taken on the server's word), valid at the
//! callout's clock; its subject common name or first email/DNS alternative name is the
//! login.

use std::str::FromStr;

use nats_jwt::AuthorizationRequest;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{OID_PKCS1_SHA1WITHRSA, OID_SHA1_WITH_RSA};
use x509_parser::pem::Pem;
use x509_parser::time::ASN1Time;

use super::{Authenticated, MtlsAuth, MtlsMap, Outcome};
use crate::OpsError;

/// The longest chain (intermediates) followed from a client certificate to a CA.
const MAX_INTERMEDIATES: usize = 8;

impl MtlsAuth {
    /// An mTLS authenticator trusting the CA certificates of `ca_pem`, checked as
    /// [`super::check`] does.
    pub fn new(name: &str, ca_pem: &str, map: MtlsMap) -> Result<MtlsAuth, OpsError> {
        let auth = MtlsAuth {
            name: name.to_string(),
            ca_pem: ca_pem.to_string(),
            map,
        };
        check(&auth)?;
        Ok(auth)
    }
}

impl FromStr for MtlsMap {
    type Err = OpsError;

    /// `subject` or `san`.
    fn from_str(s: &str) -> Result<MtlsMap, OpsError> {
        match s {
            "subject" => Ok(MtlsMap::Subject),
            "san" => Ok(MtlsMap::San),
            other => Err(OpsError::invalid(format!(
                "unknown certificate mapping {other:?} (expected subject or san)"
            ))),
        }
    }
}

/// The DER of every certificate in `text` (PEM), each checked to parse. Anything but
/// certificates is an error: a private key pasted along with a CA must not be stored.
pub(super) fn pem_certificates(text: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    for block in Pem::iter_from_buffer(text.as_bytes()) {
        let pem = block.map_err(|e| format!("PEM block {} is malformed: {e}", out.len() + 1))?;
        if pem.label.contains("PRIVATE KEY") {
            return Err("it holds a private key: give the certificates only".into());
        }
        if pem.label != "CERTIFICATE" {
            return Err(format!("it holds a {} block, not a certificate", pem.label));
        }
        pem.parse_x509()
            .map_err(|e| format!("certificate {} does not parse: {e}", out.len() + 1))?;
        out.push(pem.contents);
    }
    Ok(out)
}

/// Checks an mTLS authenticator before it is stored.
pub(super) fn check(a: &MtlsAuth) -> Result<(), OpsError> {
    let certs =
        pem_certificates(&a.ca_pem).map_err(|e| OpsError::invalid(format!("the CA PEM: {e}")))?;
    if certs.is_empty() {
        return Err(OpsError::invalid(
            "the CA PEM holds no certificate (expected -----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(())
}

/// Checks the request's client certificate with `a` at `now`.
pub(super) fn authenticate(a: &MtlsAuth, request: &AuthorizationRequest, now: i64) -> Outcome {
    let Some(tls) = &request.client_tls else {
        return Outcome::NotApplicable;
    };
    // A chain the server verified, leaf first; else what the client sent unverified.
    let presented: &[String] = match tls.verified_chains.first() {
        Some(chain) if !chain.is_empty() => chain,
        _ => &tls.certs,
    };
    if presented.is_empty() {
        return Outcome::NotApplicable;
    }
    match verify(a, presented, now) {
        Ok((login, not_after)) => Outcome::Accepted(Authenticated {
            authenticator: a.name.clone(),
            login,
            expires_at: Some(not_after),
        }),
        Err(reason) => Outcome::Refused(reason),
    }
}

fn rfc3339(t: &ASN1Time) -> String {
    t.to_datetime()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.timestamp().to_string())
}

/// Why `cert` cannot be part of a trusted path, if it cannot.
fn unusable(cert: &X509Certificate<'_>, what: &str, at: ASN1Time) -> Option<String> {
    let v = cert.validity();
    if at < v.not_before {
        return Some(format!(
            "{what} is not valid before {}",
            rfc3339(&v.not_before)
        ));
    }
    if at > v.not_after {
        return Some(format!("{what} expired at {}", rfc3339(&v.not_after)));
    }
    let alg = &cert.signature_algorithm.algorithm;
    if *alg == OID_PKCS1_SHA1WITHRSA || *alg == OID_SHA1_WITH_RSA {
        return Some(format!("{what} is signed with SHA-1"));
    }
    None
}

/// Whether `child` names `parent` as its issuer and carries its signature.
fn issued_by(child: &X509Certificate<'_>, parent: &X509Certificate<'_>) -> bool {
    child.issuer().as_raw() == parent.subject().as_raw()
        && child.verify_signature(Some(parent.public_key())).is_ok()
}

/// Verifies the presented chain (leaf first); the login and the leaf's `notAfter`.
fn verify(a: &MtlsAuth, presented: &[String], now: i64) -> Result<(String, i64), String> {
    let at = ASN1Time::from_timestamp(now).map_err(|_| format!("bad time {now}"))?;
    let mut ders = Vec::new();
    for (i, pem) in presented.iter().enumerate() {
        let what = if i == 0 {
            "the client certificate".to_string()
        } else {
            format!("certificate {i} of the client's chain")
        };
        match pem_certificates(pem) {
            Ok(mut d) if !d.is_empty() => ders.push(d.swap_remove(0)),
            Ok(_) => return Err(format!("{what} is not PEM")),
            Err(e) => return Err(format!("{what}: {e}")),
        }
    }
    let chain: Vec<X509Certificate<'_>> = ders
        .iter()
        .filter_map(|d| x509_parser::parse_x509_certificate(d).ok().map(|(_, c)| c))
        .collect();
    let anchors_der = pem_certificates(&a.ca_pem)
        .map_err(|e| format!("the CA of authenticator {}: {e}", a.name))?;
    let anchors: Vec<X509Certificate<'_>> = anchors_der
        .iter()
        .filter_map(|d| x509_parser::parse_x509_certificate(d).ok().map(|(_, c)| c))
        .collect();
    let leaf = chain.first().ok_or("no client certificate")?;
    let subject = leaf.subject().to_string();
    let leaf_name = format!("client certificate {subject:?}");

    if let Some(why) = unusable(leaf, &leaf_name, at) {
        return Err(why);
    }
    // A CA certificate is not a user: were it accepted, the CA itself (or an
    // intermediate) would log in as whoever its name maps to.
    if leaf.is_ca() {
        return Err(format!("{leaf_name} is a CA certificate"));
    }
    if let Ok(Some(eku)) = leaf.extended_key_usage()
        && !eku.value.any
        && !eku.value.client_auth
    {
        return Err(format!("{leaf_name} is not for client authentication"));
    }

    // Walk up the presented chain until a certificate is issued by one of the CAs.
    let mut cur = 0;
    loop {
        if anchors.iter().any(|ca| issued_by(&chain[cur], ca)) {
            break;
        }
        let next = cur + 1;
        let not_trusted = || {
            format!(
                "{leaf_name} does not chain to the CA of authenticator {}",
                a.name
            )
        };
        if next >= chain.len() || next > MAX_INTERMEDIATES {
            return Err(not_trusted());
        }
        let parent = &chain[next];
        if !issued_by(&chain[cur], parent) || !parent.is_ca() {
            return Err(not_trusted());
        }
        let parent_name = format!("intermediate CA {:?}", parent.subject().to_string());
        if let Some(why) = unusable(parent, &parent_name, at) {
            return Err(why);
        }
        cur = next;
    }

    let login = match a.map {
        MtlsMap::Subject => leaf
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .filter(|cn| !cn.trim().is_empty())
            .ok_or_else(|| format!("{leaf_name} has no subject common name"))?
            .to_string(),
        MtlsMap::San => {
            let names: Vec<GeneralName<'_>> = match leaf.subject_alternative_name() {
                Ok(Some(san)) => san.value.general_names.clone(),
                Ok(None) => Vec::new(),
                Err(e) => return Err(format!("{leaf_name} has a bad alternative name: {e}")),
            };
            let email = names.iter().find_map(|n| match n {
                GeneralName::RFC822Name(s) if !s.is_empty() => Some(*s),
                _ => None,
            });
            let dns = names.iter().find_map(|n| match n {
                GeneralName::DNSName(s) if !s.is_empty() => Some(*s),
                _ => None,
            });
            email
                .or(dns)
                .ok_or_else(|| format!("{leaf_name} has no email or DNS alternative name"))?
                .to_string()
        }
    };
    Ok((login, leaf.validity().not_after.timestamp()))
}

#[cfg(test)]
mod tests {
    use nats_jwt::AuthorizationRequest;
    use nats_jwt::ClientTls;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, SanType, date_time_ymd,
    };

    use super::*;

    /// 2025-06-01.
    const NOW: i64 = 1_748_736_000;

    struct Ca {
        pem: String,
        issuer: Issuer<'static, KeyPair>,
    }

    fn ca(cn: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.not_before = date_time_ymd(2024, 1, 1);
        p.not_after = date_time_ymd(2030, 1, 1);
        let cert = p.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(p, key),
        }
    }

    fn intermediate(parent: &Ca, cn: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.not_before = date_time_ymd(2024, 1, 1);
        p.not_after = date_time_ymd(2030, 1, 1);
        let cert = p.signed_by(&key, &parent.issuer).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(p, key),
        }
    }

    struct Client {
        cn: Option<&'static str>,
        sans: Vec<SanType>,
        until: (i32, u8, u8),
        eku: Vec<ExtendedKeyUsagePurpose>,
    }

    impl Default for Client {
        fn default() -> Self {
            Client {
                cn: Some("ada"),
                sans: vec![SanType::Rfc822Name("ada@example.com".try_into().unwrap())],
                until: (2026, 1, 1),
                eku: vec![ExtendedKeyUsagePurpose::ClientAuth],
            }
        }
    }

    fn client(by: &Ca, c: Client) -> String {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        // rcgen names a certificate "rcgen self signed cert" unless told otherwise.
        p.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = c.cn {
            p.distinguished_name.push(DnType::CommonName, cn);
        }
        p.subject_alt_names = c.sans;
        p.not_before = date_time_ymd(2025, 1, 1);
        p.not_after = date_time_ymd(c.until.0, c.until.1, c.until.2);
        p.extended_key_usages = c.eku;
        p.signed_by(&key, &by.issuer).unwrap().pem()
    }

    fn verified(chain: &[&str]) -> AuthorizationRequest {
        AuthorizationRequest {
            client_tls: Some(ClientTls {
                version: "1.3".into(),
                verified_chains: vec![chain.iter().map(|s| s.to_string()).collect()],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn unverified(certs: &[&str]) -> AuthorizationRequest {
        AuthorizationRequest {
            client_tls: Some(ClientTls {
                certs: certs.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn accepted(o: Outcome) -> Authenticated {
        match o {
            Outcome::Accepted(a) => a,
            other => panic!("expected acceptance, got {other:?}"),
        }
    }

    fn refused(o: Outcome) -> String {
        match o {
            Outcome::Refused(r) => r,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_client_certificate_from_the_ca_maps_to_its_name() {
        let root = ca("Warden test client CA");
        let leaf = client(&root, Client::default());
        let by_subject = MtlsAuth::new("certs", &root.pem, MtlsMap::Subject).unwrap();
        let by_san = MtlsAuth::new("certs", &root.pem, "san".parse().unwrap()).unwrap();
        let a = accepted(authenticate(
            &by_subject,
            &verified(&[&leaf, &root.pem]),
            NOW,
        ));
        assert_eq!(a.login, "ada");
        assert_eq!(a.authenticator, "certs");
        // 2026-01-01T00:00:00Z.
        assert_eq!(a.expires_at, Some(1_767_225_600));
        assert_eq!(
            accepted(authenticate(&by_san, &unverified(&[&leaf]), NOW)).login,
            "ada@example.com"
        );
        // No email alternative name: the first DNS one.
        let dns = client(
            &root,
            Client {
                sans: vec![
                    SanType::DnsName("edge-1.example.com".try_into().unwrap()),
                    SanType::DnsName("edge-2.example.com".try_into().unwrap()),
                ],
                ..Default::default()
            },
        );
        assert_eq!(
            accepted(authenticate(&by_san, &unverified(&[&dns]), NOW)).login,
            "edge-1.example.com"
        );
        // The CA PEM may hold several CAs; a chain through an intermediate counts.
        let other = ca("Other CA");
        let both = format!("{}{}", other.pem, root.pem);
        let mid = intermediate(&root, "Warden test intermediate");
        let via_mid = client(&mid, Client::default());
        let a2 = MtlsAuth::new("certs", &both, MtlsMap::Subject).unwrap();
        assert_eq!(
            accepted(authenticate(
                &a2,
                &verified(&[&via_mid, &mid.pem, &root.pem]),
                NOW
            ))
            .login,
            "ada"
        );
        // ... but not without the intermediate.
        assert!(
            refused(authenticate(&a2, &unverified(&[&via_mid]), NOW)).contains("does not chain")
        );
    }

    #[test]
    fn certificates_that_do_not_qualify_are_refused() {
        let root = ca("Warden test client CA");
        let a = MtlsAuth::new("certs", &root.pem, MtlsMap::Subject).unwrap();
        let stranger = ca("Warden test client CA"); // same name, other key
        let foreign = client(&stranger, Client::default());
        assert_eq!(
            refused(authenticate(&a, &verified(&[&foreign, &stranger.pem]), NOW)),
            "client certificate \"CN=ada\" does not chain to the CA of authenticator certs"
        );
        // An intermediate not signed by the CA does not help.
        let fake_mid = intermediate(&stranger, "Mid");
        let via_fake = client(&fake_mid, Client::default());
        assert!(
            refused(authenticate(
                &a,
                &unverified(&[&via_fake, &fake_mid.pem]),
                NOW
            ))
            .contains("does not chain")
        );
        let expired = client(
            &root,
            Client {
                until: (2025, 3, 1),
                ..Default::default()
            },
        );
        assert_eq!(
            refused(authenticate(&a, &verified(&[&expired]), NOW)),
            "client certificate \"CN=ada\" expired at 2025-03-01T00:00:00Z"
        );
        let early = client(&root, Client::default());
        assert!(
            refused(authenticate(&a, &verified(&[&early]), 1_700_000_000))
                .contains("is not valid before 2025-01-01T00:00:00Z")
        );
        let server_only = client(
            &root,
            Client {
                eku: vec![ExtendedKeyUsagePurpose::ServerAuth],
                ..Default::default()
            },
        );
        assert!(
            refused(authenticate(&a, &verified(&[&server_only]), NOW))
                .contains("not for client authentication")
        );
        // The CA's own certificate is not a user.
        assert!(refused(authenticate(&a, &verified(&[&root.pem]), NOW)).contains("is a CA"));
        let nameless = client(
            &root,
            Client {
                cn: None,
                sans: vec![],
                ..Default::default()
            },
        );
        assert!(
            refused(authenticate(&a, &verified(&[&nameless]), NOW))
                .contains("has no subject common name")
        );
        let by_san = MtlsAuth::new("certs", &root.pem, MtlsMap::San).unwrap();
        assert!(
            refused(authenticate(&by_san, &verified(&[&nameless]), NOW))
                .contains("no email or DNS alternative name")
        );
        assert!(refused(authenticate(&a, &verified(&["junk"]), NOW)).contains("not PEM"));
    }

    #[test]
    fn requests_without_a_client_certificate_are_not_for_mtls() {
        let root = ca("CA");
        let a = MtlsAuth::new("certs", &root.pem, MtlsMap::Subject).unwrap();
        assert_eq!(
            authenticate(&a, &AuthorizationRequest::default(), NOW),
            Outcome::NotApplicable
        );
        assert_eq!(
            authenticate(&a, &unverified(&[]), NOW),
            Outcome::NotApplicable
        );
        assert_eq!(
            authenticate(&a, &verified(&[]), NOW),
            Outcome::NotApplicable
        );
    }

    #[test]
    fn check_wants_certificates_only() {
        let root = ca("CA");
        let err = |pem: &str| match MtlsAuth::new("c", pem, MtlsMap::San) {
            Err(OpsError::Invalid(m)) => m,
            other => panic!("expected Invalid, got {other:?}"),
        };
        assert!(err("").contains("no certificate"));
        assert!(err("hello").contains("no certificate"));
        let key = KeyPair::generate().unwrap().serialize_pem();
        assert!(err(&format!("{}{key}", root.pem)).contains("private key"));
        let broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(err(broken).contains("does not parse"));
        assert!("cn".parse::<MtlsMap>().is_err());
    }
}
