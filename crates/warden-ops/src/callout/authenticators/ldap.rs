//! The `ldap` authenticator: a NATS user name and password checked against an LDAP
//! directory the way most LDAP-backed logins do it — find the user's entry with a
//! search (as a service DN, or anonymously), then bind as that entry with the password
//! the client gave, on a connection of its own. Every step is bounded in time: a slow
//! directory refuses the client, it never holds the callout up.

use std::sync::Arc;
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapResult, Scope, SearchEntry, SearchOptions};
use nats_jwt::AuthorizationRequest;

use super::{Authenticated, LdapAuth, Outcome};
use crate::OpsError;

/// The search filter when none is given.
pub const DEFAULT_USER_FILTER: &str = "(uid={user})";

/// The bound on connecting to the directory and on each operation.
const LDAP_TIMEOUT: Duration = Duration::from_secs(5);
/// The bound on a whole check (two connections, up to two binds and a search).
const LDAP_TOTAL_TIMEOUT: Duration = Duration::from_secs(10);

/// RFC 4511 result codes this module tells apart.
const RC_SUCCESS: u32 = 0;
const RC_SIZE_LIMIT_EXCEEDED: u32 = 4;
const RC_INVALID_CREDENTIALS: u32 = 49;

impl LdapAuth {
    /// An LDAP authenticator, checked as [`super::check`] does; `user_filter` defaults to
    /// `(uid={user})`.
    pub fn new(
        name: &str,
        url: &str,
        base: &str,
        bind_dn: Option<&str>,
        user_filter: Option<&str>,
        ca_pem: Option<&str>,
    ) -> Result<LdapAuth, OpsError> {
        let auth = LdapAuth {
            name: name.to_string(),
            url: url.to_string(),
            base: base.to_string(),
            bind_dn: bind_dn.filter(|d| !d.is_empty()).map(str::to_string),
            user_filter: user_filter
                .filter(|f| !f.is_empty())
                .unwrap_or(DEFAULT_USER_FILTER)
                .to_string(),
            ca_pem: ca_pem.filter(|p| !p.trim().is_empty()).map(str::to_string),
        };
        check(&auth)?;
        Ok(auth)
    }
}

fn is_ldaps(url: &str) -> bool {
    url.get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("ldaps://"))
}

/// Checks an LDAP authenticator before it is stored.
pub(super) fn check(a: &LdapAuth) -> Result<(), OpsError> {
    let lower = a.url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("ldap://")
        .or_else(|| lower.strip_prefix("ldaps://"))
        .ok_or_else(|| {
            OpsError::invalid(format!(
                "LDAP URL {:?} must start with ldap:// or ldaps://",
                a.url
            ))
        })?;
    if rest.split('/').next().unwrap_or("").is_empty() {
        return Err(OpsError::invalid(format!(
            "LDAP URL {:?} names no host",
            a.url
        )));
    }
    if a.base.trim().is_empty() {
        return Err(OpsError::invalid("the LDAP search base is empty"));
    }
    if !a.user_filter.contains("{user}") {
        return Err(OpsError::invalid(format!(
            "the LDAP user filter {:?} has no {{user}} placeholder",
            a.user_filter
        )));
    }
    if ldap3::parse_filter(a.user_filter.replace("{user}", "x")).is_err() {
        return Err(OpsError::invalid(format!(
            "the LDAP user filter {:?} is not an LDAP filter (e.g. (uid={{user}}))",
            a.user_filter
        )));
    }
    if a.bind_dn.as_deref().is_some_and(|d| d.trim().is_empty()) {
        return Err(OpsError::invalid("the LDAP bind DN is empty"));
    }
    if let Some(pem) = &a.ca_pem {
        if !is_ldaps(&a.url) {
            return Err(OpsError::invalid(
                "a CA is only used with ldaps:// URLs (this one is plain ldap://)",
            ));
        }
        tls_config(Some(pem)).map_err(OpsError::invalid)?;
    }
    Ok(())
}

/// The TLS client configuration for `ldaps://`: the CA certificates of `ca_pem`, or the
/// system's roots; the directory's name is always verified.
fn tls_config(ca_pem: Option<&str>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            let certs =
                super::mtls::pem_certificates(pem).map_err(|e| format!("the LDAP CA: {e}"))?;
            if certs.is_empty() {
                return Err("the LDAP CA holds no PEM certificate".into());
            }
            for der in certs {
                roots
                    .add(der.into())
                    .map_err(|e| format!("the LDAP CA: {e}"))?;
            }
        }
        None => {
            for c in rustls_native_certs::load_native_certs().certs {
                // Unusable system certificates are skipped, as browsers do.
                let _ = roots.add(c);
            }
            if roots.is_empty() {
                return Err(
                    "no trusted CA certificates on this system: give the directory's CA".into(),
                );
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS protocol versions: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// One connection to the directory; its driver task ends with it.
struct Session {
    ldap: Ldap,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Session {
    async fn open(a: &LdapAuth) -> Result<Session, String> {
        let mut settings = LdapConnSettings::new().set_conn_timeout(LDAP_TIMEOUT);
        if is_ldaps(&a.url) {
            settings = settings.set_config(tls_config(a.ca_pem.as_deref())?);
        }
        let connect = LdapConnAsync::with_settings(settings, &a.url);
        let (conn, ldap) = match tokio::time::timeout(LDAP_TIMEOUT, connect).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(format!("directory {} is unreachable: {e}", a.url)),
            Err(_) => {
                return Err(format!(
                    "directory {} did not answer within {} s",
                    a.url,
                    LDAP_TIMEOUT.as_secs()
                ));
            }
        };
        let driver = tokio::spawn(async move {
            let _ = conn.drive().await;
        });
        Ok(Session { ldap, driver })
    }

    /// A simple bind; the server's result (a failure to talk is an `Err`).
    async fn bind(&mut self, url: &str, dn: &str, password: &str) -> Result<LdapResult, String> {
        self.ldap.with_timeout(LDAP_TIMEOUT);
        self.ldap
            .simple_bind(dn, password)
            .await
            .map_err(|e| format!("directory {url} failed during a bind: {e}"))
    }

    async fn close(mut self) {
        self.ldap.with_timeout(LDAP_TIMEOUT);
        let _ = self.ldap.unbind().await;
    }
}

/// Checks the request's user name and password against `a`'s directory; `secret` is the
/// password of `a.bind_dn`.
pub(super) async fn authenticate(
    a: &LdapAuth,
    secret: Option<&str>,
    request: &AuthorizationRequest,
) -> Outcome {
    let login = request.connect_opts.username.as_str();
    if login.is_empty() {
        return Outcome::NotApplicable;
    }
    // A bind with a DN and no password is an "unauthenticated bind" that many
    // directories answer with success: it must never count as a login.
    if request.connect_opts.password.is_empty() {
        return Outcome::Refused(format!("empty password for {login}"));
    }
    // Each step has its own bound; the whole check has one too (the server gives up on
    // the callout after its auth timeout anyway).
    let checked = tokio::time::timeout(
        LDAP_TOTAL_TIMEOUT,
        check_password(a, secret, login, &request.connect_opts.password),
    )
    .await
    .unwrap_or_else(|_| {
        Err(format!(
            "directory {} did not answer within {} s",
            a.url,
            LDAP_TOTAL_TIMEOUT.as_secs()
        ))
    });
    match checked {
        Ok(()) => Outcome::Accepted(Authenticated {
            authenticator: a.name.clone(),
            login: login.to_string(),
            expires_at: None,
        }),
        Err(reason) => Outcome::Refused(reason),
    }
}

/// Finds `login`'s entry and binds as it with `password`.
async fn check_password(
    a: &LdapAuth,
    secret: Option<&str>,
    login: &str,
    password: &str,
) -> Result<(), String> {
    let dn = find_entry(a, secret, login).await?;
    // A fresh connection: the search connection's identity must not carry over, and a
    // failed bind must not leave it half-authenticated.
    let mut session = Session::open(a).await?;
    let result = session.bind(&a.url, &dn, password).await;
    session.close().await;
    let r = result?;
    match r.rc {
        RC_SUCCESS => Ok(()),
        RC_INVALID_CREDENTIALS => Err(format!("wrong password for {login}")),
        rc => Err(format!(
            "directory {} refused the bind for {login} (result {rc}{})",
            a.url,
            diagnostic(&r)
        )),
    }
}

fn diagnostic(r: &LdapResult) -> String {
    if r.text.is_empty() {
        String::new()
    } else {
        format!(": {}", r.text.chars().take(200).collect::<String>())
    }
}

/// The DN of the one entry `a.user_filter` matches for `login`.
async fn find_entry(a: &LdapAuth, secret: Option<&str>, login: &str) -> Result<String, String> {
    let mut session = Session::open(a).await?;
    let found = search(&mut session, a, secret, login).await;
    session.close().await;
    found
}

async fn search(
    session: &mut Session,
    a: &LdapAuth,
    secret: Option<&str>,
    login: &str,
) -> Result<String, String> {
    if let Some(bind_dn) = &a.bind_dn {
        // Without its password the bind would be unauthenticated (anonymous in effect):
        // refuse rather than search with less than was configured.
        let Some(pw) = secret.filter(|p| !p.is_empty()) else {
            return Err(format!(
                "authenticator {} has no password stored for its bind DN {bind_dn}",
                a.name
            ));
        };
        let r = session.bind(&a.url, bind_dn, pw).await?;
        if r.rc != RC_SUCCESS {
            return Err(format!(
                "the search bind as {bind_dn} to {} failed (result {}{})",
                a.url,
                r.rc,
                diagnostic(&r)
            ));
        }
    }
    let filter = a.user_filter.replace("{user}", &ldap3::ldap_escape(login));
    // Two are enough to know the login is ambiguous.
    session
        .ldap
        .with_search_options(SearchOptions::new().sizelimit(2))
        .with_timeout(LDAP_TIMEOUT);
    let result = session
        .ldap
        .search(&a.base, Scope::Subtree, &filter, vec!["1.1"])
        .await
        .map_err(|e| format!("search of {} on {} failed: {e}", a.base, a.url))?;
    let (entries, r) = (result.0, result.1);
    match r.rc {
        RC_SUCCESS if entries.is_empty() => return Err(format!("unknown user {login}")),
        RC_SUCCESS if entries.len() == 1 => {}
        RC_SUCCESS | RC_SIZE_LIMIT_EXCEEDED => {
            return Err(format!(
                "ambiguous user {login}: more than one entry under {} matches",
                a.base
            ));
        }
        rc => {
            return Err(format!(
                "search of {} on {} failed (result {rc}{})",
                a.base,
                a.url,
                diagnostic(&r)
            ));
        }
    }
    let Some(raw) = entries.into_iter().next() else {
        return Err(format!("unknown user {login}"));
    };
    // SearchEntry::construct panics on a malformed entry; a broken server must not crash us.
    let entry =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| SearchEntry::construct(raw)))
            .map_err(|_| format!("directory {} sent an entry that cannot be decoded", a.url))?;
    // An empty DN would make the password bind anonymous.
    if entry.dn.trim().is_empty() {
        return Err(format!(
            "directory {} returned an entry without a DN for {login}",
            a.url
        ));
    }
    Ok(entry.dn)
}

#[cfg(test)]
mod tests {
    use nats_jwt::AuthorizationRequest;
    use warden_testkit::Slapd;

    use super::*;

    const SUFFIX: &str = "dc=callout,dc=example";

    fn seed(slapd: &Slapd) {
        slapd
            .ldapmodify(
                &format!(
                    "dn: ou=People,{SUFFIX}\nobjectClass: organizationalUnit\nou: People\n\n\
                     dn: ou=Contractors,{SUFFIX}\nobjectClass: organizationalUnit\nou: Contractors\n\n\
                     dn: uid=ada,ou=People,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: ada\ncn: Ada Lovelace\nsn: Lovelace\nmail: ada@example.com\nuserPassword: analytical-engine\n\n\
                     dn: uid=sam,ou=People,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: sam\ncn: Sam One\nsn: One\nuserPassword: sam-pw-1\n\n\
                     dn: uid=sam,ou=Contractors,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: sam\ncn: Sam Two\nsn: Two\nuserPassword: sam-pw-2\n\n"
                ),
                true,
            )
            .expect("seed entries");
    }

    fn request(user: &str, pass: &str) -> AuthorizationRequest {
        let mut r = AuthorizationRequest::default();
        r.connect_opts.username = user.into();
        r.connect_opts.password = pass.into();
        r
    }

    fn refused(o: Outcome) -> String {
        match o {
            Outcome::Refused(r) => r,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn passwords_are_checked_by_a_bind_as_the_users_entry() {
        let slapd = Slapd::start(SUFFIX, "").expect("slapd starts");
        seed(&slapd);
        let bound = LdapAuth::new(
            "corp-ldap",
            &slapd.url(),
            SUFFIX,
            Some(&slapd.bind_dn()),
            None,
            None,
        )
        .unwrap();
        assert_eq!(bound.user_filter, "(uid={user})");
        let anonymous = LdapAuth::new(
            "anon-ldap",
            &slapd.url(),
            SUFFIX,
            None,
            Some("(mail={user})"),
            None,
        )
        .unwrap();
        let secret = Some(slapd.password());

        assert_eq!(
            authenticate(&bound, secret, &request("ada", "analytical-engine")).await,
            Outcome::Accepted(Authenticated {
                authenticator: "corp-ldap".into(),
                login: "ada".into(),
                expires_at: None,
            })
        );
        match authenticate(
            &anonymous,
            None,
            &request("ada@example.com", "analytical-engine"),
        )
        .await
        {
            Outcome::Accepted(x) => assert_eq!(x.login, "ada@example.com"),
            other => panic!("{other:?}"),
        }

        let wrong =
            refused(authenticate(&bound, secret, &request("ada", "difference-engine")).await);
        assert_eq!(wrong, "wrong password for ada");
        assert_eq!(
            refused(authenticate(&bound, secret, &request("ada", "")).await),
            "empty password for ada"
        );
        assert_eq!(
            refused(authenticate(&bound, secret, &request("grace", "x")).await),
            "unknown user grace"
        );
        // The login is escaped: a wildcard matches nothing rather than everyone.
        assert_eq!(
            refused(authenticate(&bound, secret, &request("*", "analytical-engine")).await),
            "unknown user *"
        );
        assert_eq!(
            refused(authenticate(&bound, secret, &request("ad*)(uid=*", "x")).await),
            "unknown user ad*)(uid=*"
        );
        assert!(
            refused(authenticate(&bound, secret, &request("sam", "sam-pw-1")).await)
                .starts_with("ambiguous user sam")
        );
        // The service bind's password is needed, and must be right.
        assert!(
            refused(authenticate(&bound, None, &request("ada", "analytical-engine")).await)
                .contains("no password stored")
        );
        assert!(
            refused(authenticate(&bound, Some("nope"), &request("ada", "analytical-engine")).await)
                .contains("the search bind as cn=admin")
        );
        // No user name: someone else's credential.
        assert_eq!(
            authenticate(&bound, secret, &request("", "pw")).await,
            Outcome::NotApplicable
        );
    }

    /// A CA and a certificate for 127.0.0.1 signed by it; (CA PEM, cert PEM, key PEM).
    fn tls_material() -> (String, String, String) {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name
            .push(DnType::CommonName, "Warden callout test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let mut server = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        server
            .subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
        let cert = server.signed_by(&key, &issuer).unwrap();
        (ca_cert.pem(), cert.pem(), key.serialize_pem())
    }

    #[tokio::test]
    async fn ldaps_trusts_the_given_ca_only_and_unreachable_directories_are_named() {
        let (ca, cert, key) = tls_material();
        let slapd = Slapd::start_with_tls(SUFFIX, "", &cert, &key).expect("slapd starts");
        seed(&slapd);
        let url = slapd.ldaps_url().expect("ldaps URL");
        let secret = Some(slapd.password());
        let good =
            LdapAuth::new("l", &url, SUFFIX, Some(&slapd.bind_dn()), None, Some(&ca)).unwrap();
        assert!(matches!(
            authenticate(&good, secret, &request("ada", "analytical-engine")).await,
            Outcome::Accepted(_)
        ));
        let other_ca = tls_material().0;
        let bad = LdapAuth::new(
            "l",
            &url,
            SUFFIX,
            Some(&slapd.bind_dn()),
            None,
            Some(&other_ca),
        )
        .unwrap();
        let why = refused(authenticate(&bad, secret, &request("ada", "analytical-engine")).await);
        assert!(
            why.starts_with(&format!("directory {url} is unreachable")),
            "{why}"
        );

        let port = warden_testkit::free_port();
        let down = format!("ldap://127.0.0.1:{port}/");
        let nobody = LdapAuth::new("l", &down, SUFFIX, None, None, None).unwrap();
        let why = refused(authenticate(&nobody, None, &request("ada", "analytical-engine")).await);
        assert!(
            why.starts_with(&format!("directory {down} is unreachable")),
            "{why}"
        );
        assert!(!why.contains("analytical-engine"));
    }

    /// A directory that accepts the connection and never answers refuses the client
    /// within the operation bound.
    #[tokio::test]
    async fn a_silent_directory_is_refused_in_bounded_time() {
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("ldap://{}/", silent.local_addr().unwrap());
        let a = LdapAuth::new("l", &url, SUFFIX, None, None, None).unwrap();
        let started = std::time::Instant::now();
        let why = refused(authenticate(&a, None, &request("ada", "pw")).await);
        assert!(why.contains(&url), "{why}");
        assert!(started.elapsed() < LDAP_TOTAL_TIMEOUT + Duration::from_secs(2));
    }

    #[test]
    fn check_refuses_bad_settings() {
        let err = |r: Result<LdapAuth, OpsError>| match r {
            Err(OpsError::Invalid(m)) => m,
            other => panic!("expected Invalid, got {other:?}"),
        };
        let url = "ldap://dc1.example:389";
        assert!(err(LdapAuth::new("l", "http://x", "dc=x", None, None, None)).contains("ldap://"));
        assert!(err(LdapAuth::new("l", "ldap://", "dc=x", None, None, None)).contains("no host"));
        assert!(err(LdapAuth::new("l", url, " ", None, None, None)).contains("base"));
        assert!(
            err(LdapAuth::new(
                "l",
                url,
                "dc=x",
                None,
                Some("(uid=ada)"),
                None
            ))
            .contains("{user}")
        );
        assert!(
            err(LdapAuth::new(
                "l",
                url,
                "dc=x",
                None,
                Some("(uid={user}"),
                None
            ))
            .contains("not an LDAP filter")
        );
        assert!(
            err(LdapAuth::new("l", url, "dc=x", None, None, Some("junk"))).contains("ldaps://")
        );
        assert!(
            err(LdapAuth::new(
                "l",
                "ldaps://dc1",
                "dc=x",
                None,
                None,
                Some("junk")
            ))
            .contains("CA")
        );
        let ok = LdapAuth::new(
            "l",
            "LDAPS://dc1.example",
            "dc=x",
            Some(""),
            Some(""),
            Some(" "),
        )
        .unwrap();
        assert_eq!(
            (ok.bind_dn, ok.user_filter, ok.ca_pem),
            (None, DEFAULT_USER_FILTER.to_string(), None)
        );
    }
}
