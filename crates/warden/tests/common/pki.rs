//! Certificates the tests make with rcgen: a CA, and certificates it signs for the
//! loopback address (servers) or a name (clients), written as PEM files where a server
//! or a command needs files.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    SanType,
};

/// A self-signed CA named `cn`: its certificate's PEM, and the issuer to sign with.
pub fn ca(cn: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().expect("CA key");
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = p.self_signed(&key).expect("CA cert");
    (cert.pem(), Issuer::new(p, key))
}

/// A certificate signed by a test CA.
pub struct Leaf {
    /// Certificate (PEM).
    pub cert: String,
    /// Its private key (PEM).
    pub key: String,
    /// Certificate (DER), to compare with what a server presented.
    pub der: Vec<u8>,
}

/// A certificate named `cn` for `usages`, signed by `issuer`; with `loopback`, valid for
/// `localhost` and 127.0.0.1 (a server's).
pub fn leaf(
    issuer: &Issuer<'static, KeyPair>,
    cn: &str,
    loopback: bool,
    usages: &[ExtendedKeyUsagePurpose],
) -> Leaf {
    let key = KeyPair::generate().expect("key");
    let names = if loopback {
        vec!["localhost".to_string()]
    } else {
        Vec::new()
    };
    let mut p = CertificateParams::new(names).expect("params");
    if loopback {
        p.subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    }
    p.distinguished_name.push(DnType::CommonName, cn);
    p.extended_key_usages = usages.to_vec();
    let cert = p.signed_by(&key, issuer).expect("sign");
    Leaf {
        cert: cert.pem(),
        key: key.serialize_pem(),
        der: cert.der().to_vec(),
    }
}

/// A server's certificate for the loopback address.
pub fn server(issuer: &Issuer<'static, KeyPair>, cn: &str) -> Leaf {
    leaf(issuer, cn, true, &[ExtendedKeyUsagePurpose::ServerAuth])
}

/// A client's certificate named `cn`.
pub fn client(issuer: &Issuer<'static, KeyPair>, cn: &str) -> Leaf {
    leaf(issuer, cn, false, &[ExtendedKeyUsagePurpose::ClientAuth])
}

/// Writes `pem` to `dir/name`; the path.
pub fn write(dir: &Path, name: &str, pem: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, pem).expect("pem");
    p
}
