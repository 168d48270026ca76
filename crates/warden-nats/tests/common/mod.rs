//! Shared set-up for the resolver tests: an operator (with a signing key and a system account),
//! the system account signed by the operator signing key, a system user's creds, and a real
//! nats-server in operator mode with a `full` resolver rendered by [`ServerConfig`].

#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nats_jwt::{AccountClaims, KeyKind, KeyPair, OperatorClaims, UserClaims, format_user_creds};
use tempfile::TempDir;
use warden_nats::ResolverClient;
use warden_nats::config::ServerConfig;
use warden_testkit::{NatsServer, NatsServerBinary, ServerLine, free_port};

/// Request timeout used by the tests' resolver clients.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// Runs `$body` (an async fn taking a `ServerLine`) once per supported server, as two tests
/// named `<name>::v2_9` and `<name>::v2_15`.
#[allow(unused_macros)]
macro_rules! both_servers {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn v2_9() {
                super::$name(warden_testkit::ServerLine::V2_9).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn v2_15() {
                super::$name(warden_testkit::ServerLine::V2_15).await;
            }
        }
    };
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// An operator, its system account and a running server that trusts them.
pub struct Env {
    pub operator: KeyPair,
    pub operator_signing: KeyPair,
    pub operator_claims: OperatorClaims,
    pub sys: KeyPair,
    pub sys_jwt: String,
    pub sys_creds: String,
    pub server: NatsServer,
    _dir: TempDir,
}

impl Env {
    pub fn start(line: ServerLine) -> Env {
        let bin = NatsServerBinary::get(line);
        println!("nats-server {} ({})", bin.version, bin.path.display());

        let operator = KeyPair::generate(KeyKind::Operator);
        let operator_signing = KeyPair::generate(KeyKind::Operator);
        let sys = KeyPair::generate(KeyKind::Account);
        let sys_pk = sys.account_public_key().expect("account key");

        let mut operator_claims =
            OperatorClaims::new(&operator.operator_public_key().expect("operator key"), "OP");
        operator_claims.nats.signing_keys.push(
            operator_signing
                .operator_public_key()
                .expect("operator key"),
        );
        operator_claims.nats.system_account = Some(sys_pk.clone());
        let operator_jwt = operator_claims.encode(&operator).expect("operator JWT");

        let mut sys_claims = AccountClaims::new(&sys_pk, "SYS");
        let sys_jwt = sys_claims.encode(&operator_signing).expect("SYS JWT");
        let sys_creds = user_creds(&sys, "sys", now()).1;

        let dir = tempfile::Builder::new()
            .prefix("warden-nats-resolver-")
            .tempdir()
            .expect("temp dir");
        let mut config = ServerConfig::new(
            format!("127.0.0.1:{}", free_port()),
            operator_jwt,
            sys_pk.as_str(),
            dir.path().join("resolver"),
        );
        config
            .preload
            .push(("SYS".into(), sys_pk.to_string(), sys_jwt.clone()));
        let server = NatsServer::start(&bin, &dir.path().join("server"), &config.render())
            .expect("nats-server starts");
        Env {
            operator,
            operator_signing,
            operator_claims,
            sys,
            sys_jwt,
            sys_creds,
            server,
            _dir: dir,
        }
    }

    pub fn version(&self) -> &str {
        self.server.version()
    }

    pub async fn client(&self) -> ResolverClient {
        ResolverClient::connect(&self.server.url(), &self.sys_creds, TIMEOUT)
            .await
            .expect("system user connects")
    }

    /// A new account signed by the operator signing key, with nsc default (unlimited) limits.
    pub fn account(&self, name: &str) -> (KeyPair, AccountClaims, String) {
        account_signed_by(&self.operator_signing, name, now())
    }

    pub fn sys_key(&self) -> String {
        self.sys.public_key().into_string()
    }
}

/// A new account signed by `signer` at `iat`.
pub fn account_signed_by(
    signer: &KeyPair,
    name: &str,
    iat: i64,
) -> (KeyPair, AccountClaims, String) {
    let kp = KeyPair::generate(KeyKind::Account);
    let mut claims = AccountClaims::new(&kp.account_public_key().expect("account key"), name);
    let jwt = claims.encode_at(signer, iat).expect("account JWT");
    (kp, claims, jwt)
}

/// A user of `account` (signed by its identity key) issued at `iat`: (user key pair, creds).
pub fn user_creds(account: &KeyPair, name: &str, iat: i64) -> (KeyPair, String) {
    let user = KeyPair::generate(KeyKind::User);
    let mut claims = UserClaims::new(&user.user_public_key().expect("user key"), name);
    let jwt = claims.encode_at(account, iat).expect("user JWT");
    let creds = format_user_creds(&jwt, &user.seed()).expect("creds");
    (user, creds)
}

/// Connects a plain client with `creds` (no retries).
pub async fn connect_user(
    url: &str,
    creds: &str,
) -> Result<async_nats::Client, async_nats::ConnectError> {
    async_nats::ConnectOptions::with_credentials(creds)
        .expect("creds parse")
        .connection_timeout(Duration::from_secs(3))
        .connect(url)
        .await
}
