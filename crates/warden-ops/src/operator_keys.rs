//! Operator signing keys: the keys that issue account JWTs, listed, added, removed, and
//! rotated without downtime.
//!
//! nats-server learns the operator's signing keys only when it starts (a config reload that
//! changes the operator JWT is refused: "config reload not supported for TrustedOperators"),
//! while it accepts a pushed account JWT whoever signed it and only refuses that account's
//! users later. A rotation must therefore never hand a server an account signed by a key the
//! server has not loaded yet, nor drop a key from a server while it still holds accounts
//! signed by it. It is a resumable state machine, kept in the store (meta
//! [`META_ROTATION`]); each `rotate` call does the next step when its precondition holds,
//! and changes nothing otherwise (so running it twice is safe):
//!
//! 1. no rotation → **start**: a new key is added to the operator JWT (the old one still
//!    issues). Phase [`RotationPhase::Trust`]: every server must be restarted with a
//!    re-rendered configuration.
//! 2. `Trust` → **re-sign**, once every server that answers (at least the number expected)
//!    lists the new key among its operator's signing keys (`$SYS.REQ.SERVER.PING.VARZ`): in
//!    ONE transaction the new key becomes the issuer, every account is re-signed with it and
//!    queued for the resolver; then they are pushed. Phase [`RotationPhase::Confirm`].
//! 3. `Confirm` → **retire**, once the server holds every account signed by the new key
//!    (`$SYS.REQ.ACCOUNT.<id>.CLAIMS.LOOKUP`): the old key leaves the operator JWT and its
//!    seed is deleted. Phase [`RotationPhase::Untrust`]: servers are restarted again.
//! 4. `Untrust` → **complete**, once no server still trusts the old key.
//!
//! Accounts created or changed at any step are signed by the issuing key of that moment,
//! which every server trusts at that moment.

use std::time::Duration;

use nats_jwt::{Account, KeyKind, KeyPair, Operator, OperatorPublicKey};
use serde::{Deserialize, Serialize};
use serde_json::json;
use warden_core::AccountName;
use warden_nats::ResolverClient;
use warden_nats::varz::{ServerTrust, servers_trust};
use warden_store::{OperatorRow, Tx};

use crate::relay::DrainReport;
use crate::{OpsError, Record, Result, Scope, TOPIC_ACCOUNT_UPDATE, Warden, now, put_seed};

/// Store meta key of the rotation in progress (JSON [`Rotation`]; absent or empty: none).
pub const META_ROTATION: &str = "operator_key_rotation";

/// Where a rotation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RotationPhase {
    /// The new key is in the operator JWT; the old one still issues. Waiting for every
    /// server to be restarted with a re-rendered configuration (so it trusts the new key).
    Trust,
    /// Every account is re-signed by the new key, which issues now. Waiting for the server
    /// to hold every account so signed.
    Confirm,
    /// The old key has left the operator JWT and its seed is deleted. Waiting for every
    /// server to be restarted again (so it stops trusting the old key).
    Untrust,
}

impl RotationPhase {
    /// How people read it.
    pub fn label(self) -> &'static str {
        match self {
            RotationPhase::Trust => "waiting for servers to trust the new key",
            RotationPhase::Confirm => "waiting for the server to hold every re-signed account",
            RotationPhase::Untrust => "waiting for servers to forget the old key",
        }
    }
}

/// A rotation in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    /// The key being retired.
    pub from: String,
    /// The key taking over.
    pub to: String,
    /// Where it stands.
    pub phase: RotationPhase,
    /// Started (unix seconds).
    pub started_at: i64,
    /// Last step (unix seconds).
    pub updated_at: i64,
}

/// One operator key as `signing-key list` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct SigningKeyView {
    /// Public key (`O…`).
    pub public_key: String,
    /// Whether it issues new and changed accounts now.
    pub issuing: bool,
    /// Whether the operator JWT lists it as a signing key (so servers started with the
    /// current configuration trust it).
    pub in_operator_jwt: bool,
    /// Whether it is the operator's identity key (only shown when it signs accounts).
    pub identity: bool,
    /// Whether Warden holds its seed.
    pub seed_held: bool,
    /// Accounts whose stored JWT it signed.
    pub accounts: usize,
    /// Its part in the rotation in progress: `old` or `new`.
    pub rotation: Option<&'static str>,
}

/// The operator's signing keys.
#[derive(Clone, Debug, Serialize)]
pub struct SigningKeysView {
    /// The operator's public key.
    pub operator: String,
    /// The key that issues accounts now.
    pub issuing_key: String,
    /// Every key: the operator JWT's signing keys, and any other key that signs accounts.
    pub keys: Vec<SigningKeyView>,
    /// The rotation in progress, if any.
    pub rotation: Option<Rotation>,
}

/// What `signing-key add` or `rm` did.
#[derive(Clone, Debug, Serialize)]
pub struct SigningKeyChange {
    /// `added` or `removed`.
    pub action: &'static str,
    /// The key.
    pub public_key: String,
    /// The operator JWT's signing keys now.
    pub signing_keys: Vec<String>,
    /// What to do next, in words.
    pub next: Vec<String>,
}

/// How `rotate` reaches the servers.
#[derive(Clone, Debug)]
pub struct RotateOptions {
    /// A server URL (system user creds from the store). Without it, `rotate` only starts a
    /// rotation or says what it waits for.
    pub nats: Option<String>,
    /// How many servers must answer the trust checks at least (the servers of the cluster);
    /// every server that answers must pass them.
    pub servers: usize,
    /// Bound on connecting, each request, and the wait for servers' answers.
    pub timeout: Duration,
}

impl Default for RotateOptions {
    fn default() -> Self {
        RotateOptions {
            nats: None,
            servers: 1,
            timeout: Duration::from_secs(5),
        }
    }
}

/// What a `rotate` call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RotateStep {
    /// A rotation started: the new key is in the operator JWT.
    Started,
    /// Nothing changed: servers do not trust the new key yet (or were not asked).
    AwaitingTrust,
    /// Every account was re-signed by the new key (and pushed when a server was given), but
    /// the server does not hold them all yet.
    Resigned,
    /// Nothing changed: the server does not hold every re-signed account yet (or was not asked).
    AwaitingAccounts,
    /// The old key left the operator JWT and its seed was deleted.
    OldKeyRemoved,
    /// Nothing changed: a server still trusts the old key (or none was asked).
    AwaitingRestart,
    /// The rotation is complete.
    Completed,
}

/// An account the server does not hold signed by the new key.
#[derive(Clone, Debug, Serialize)]
pub struct UnconfirmedAccount {
    /// Name.
    pub name: String,
    /// Public key.
    pub public_key: String,
    /// The issuer of the JWT the server holds (`None`: it holds none).
    pub issuer_on_server: Option<String>,
}

/// What a `rotate` call did and what comes next.
#[derive(Clone, Debug, Serialize)]
pub struct RotateReport {
    /// The step taken (or the one it waits for).
    pub step: RotateStep,
    /// Whether the store changed.
    pub changed: bool,
    /// The key being retired.
    pub from: String,
    /// The key taking over.
    pub to: String,
    /// The phase now (`None`: no rotation in progress any more).
    pub phase: Option<RotationPhase>,
    /// The servers asked, with what they trust.
    pub servers: Vec<ServerTrust>,
    /// Accounts re-signed by this call.
    pub accounts_resigned: usize,
    /// The outbox delivery this call made, if any.
    pub delivery: Option<DrainReport>,
    /// Accounts the server does not hold signed by the new key (at most 100 listed).
    pub unconfirmed: Vec<UnconfirmedAccount>,
    /// How many accounts that is in all.
    pub unconfirmed_count: usize,
    /// Why nothing changed, when it did not.
    pub waiting_for: Option<String>,
    /// What to do next, in words.
    pub next: Vec<String>,
}

const RESTART: &str = "re-render each server's configuration (`warden nats-config`) and restart the servers one at a time";

impl Warden {
    /// The operator's signing keys, which one issues, how many accounts each signed, and the
    /// rotation in progress; needs `read`.
    pub async fn operator_signing_keys(&self) -> Result<SigningKeysView> {
        self.need(Scope::Read, "reading the operator signing keys")?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let rotation = rotation_in(&mut tx).await?;
        let claims = operator_claims(&op)?;
        let mut signed: std::collections::BTreeMap<String, usize> = Default::default();
        // Only the JWTs are read: thousands of accounts' specs are not needed to count signers.
        for jwt in tx.account_jwts_only(&op.public_key).await? {
            *signed.entry(issuer_of(&jwt)).or_default() += 1;
        }
        let mut order: Vec<String> = vec![op.signing_key.clone()];
        for k in &claims.nats.signing_keys {
            if !order.iter().any(|x| x == k.as_str()) {
                order.push(k.to_string());
            }
        }
        for k in signed.keys() {
            if !order.contains(k) {
                order.push(k.clone());
            }
        }
        let mut keys = Vec::with_capacity(order.len());
        for k in order {
            keys.push(SigningKeyView {
                issuing: k == op.signing_key,
                in_operator_jwt: claims.nats.signing_keys.iter().any(|x| x.as_str() == k),
                identity: k == op.public_key,
                seed_held: tx.has_seed(&k).await?,
                accounts: signed.get(&k).copied().unwrap_or(0),
                rotation: rotation.as_ref().and_then(|r| {
                    if r.from == k {
                        Some("old")
                    } else if r.to == k {
                        Some("new")
                    } else {
                        None
                    }
                }),
                public_key: k,
            });
        }
        tx.rollback().await?;
        Ok(SigningKeysView {
            operator: op.public_key,
            issuing_key: op.signing_key,
            keys,
            rotation,
        })
    }

    /// Adds a new signing key to the operator JWT, not issuing (servers trust it once
    /// restarted with a re-rendered configuration); needs `admin`.
    pub async fn add_operator_signing_key(&self) -> Result<SigningKeyChange> {
        self.need(Scope::Admin, "adding an operator signing key")?;
        let mut tx = self.store.begin().await?;
        let mut op = locked_operator(self, &mut tx).await?;
        let kp = KeyPair::generate(KeyKind::Operator);
        let key = kp.operator_public_key()?;
        put_seed(&mut tx, &kp, "operator").await?;
        let keys = reissue_operator(&mut tx, &mut op, |sk| sk.push(key.clone())).await?;
        tx.record(self.event(
            "operator.signing_key.add",
            "operator",
            &op.public_key,
            json!({"signing_key": key.as_str(), "signing_keys": keys}),
        ))
        .await?;
        tx.commit().await?;
        Ok(SigningKeyChange {
            action: "added",
            public_key: key.to_string(),
            signing_keys: keys,
            next: vec![format!(
                "{RESTART}: servers trust the new key only after a restart"
            )],
        })
    }

    /// Removes a signing key from the operator JWT and deletes its seed; needs `admin`.
    /// Refused (nothing changes) for the issuing key, a key of the rotation in progress, and
    /// a key that still signs accounts.
    pub async fn remove_operator_signing_key(&self, key: &str) -> Result<SigningKeyChange> {
        self.need(Scope::Admin, "removing an operator signing key")?;
        let key: OperatorPublicKey = key.trim().parse().map_err(|e| {
            OpsError::invalid(format!("{key:?} is not an operator public key (O…): {e}"))
        })?;
        let mut tx = self.store.begin().await?;
        let mut op = locked_operator(self, &mut tx).await?;
        let claims = operator_claims(&op)?;
        if key.as_str() == op.public_key {
            return Err(OpsError::Conflict(format!(
                "{key} is the operator's identity key, not a signing key; nothing was changed"
            )));
        }
        if !claims.nats.signing_keys.contains(&key) {
            return Err(OpsError::NotFound(format!(
                "operator signing key {key} (see `warden operator signing-key list`)"
            )));
        }
        if key.as_str() == op.signing_key {
            return Err(OpsError::Conflict(format!(
                "{key} is the issuing key: every new and changed account is signed by it; rotate to another key first (`warden operator signing-key rotate`); nothing was changed"
            )));
        }
        if let Some(r) = rotation_in(&mut tx).await?
            && (r.from == key.as_str() || r.to == key.as_str())
        {
            return Err(OpsError::Conflict(format!(
                "{key} takes part in the rotation in progress ({}); let `warden operator signing-key rotate` retire it; nothing was changed",
                r.phase.label()
            )));
        }
        let signed = tx
            .accounts(&op.public_key)
            .await?
            .into_iter()
            .filter(|a| issuer_of(&a.jwt) == key.as_str())
            .map(|a| a.name)
            .collect::<Vec<_>>();
        if !signed.is_empty() {
            return Err(OpsError::Conflict(format!(
                "{key} still signs {} account(s) ({}{}): servers would refuse their users; rotate them to the issuing key first; nothing was changed",
                signed.len(),
                signed
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
                if signed.len() > 5 { ", …" } else { "" }
            )));
        }
        let keys = reissue_operator(&mut tx, &mut op, |sk| sk.retain(|k| k != &key)).await?;
        if tx.has_seed(key.as_str()).await? {
            tx.delete_seed(key.as_str()).await?;
        }
        tx.record(self.event(
            "operator.signing_key.remove",
            "operator",
            &op.public_key,
            json!({"signing_key": key.as_str(), "signing_keys": keys}),
        ))
        .await?;
        tx.commit().await?;
        Ok(SigningKeyChange {
            action: "removed",
            public_key: key.to_string(),
            signing_keys: keys,
            next: vec![format!(
                "{RESTART}: servers keep trusting the removed key until they restart"
            )],
        })
    }

    /// Takes the next step of the operator signing key rotation (see the module docs), or
    /// says what it waits for; needs `admin`. Each step is one transaction and changes
    /// nothing when its precondition does not hold.
    pub async fn rotate_operator_signing_key(&self, opts: &RotateOptions) -> Result<RotateReport> {
        self.need(Scope::Admin, "rotating the operator signing key")?;
        if opts.servers == 0 {
            return Err(OpsError::invalid("--servers must be at least 1"));
        }
        match self.rotation().await? {
            None => self.rotation_start().await,
            Some(r) => match r.phase {
                RotationPhase::Trust => self.rotation_resign(r, opts).await,
                RotationPhase::Confirm => self.rotation_confirm(r, opts, None, 0).await,
                RotationPhase::Untrust => self.rotation_complete(r, opts).await,
            },
        }
    }

    /// The rotation in progress, if any; needs `read`.
    pub async fn rotation(&self) -> Result<Option<Rotation>> {
        self.need(Scope::Read, "reading the signing key rotation")?;
        let mut tx = self.store.begin().await?;
        let r = rotation_in(&mut tx).await?;
        tx.rollback().await?;
        Ok(r)
    }

    async fn rotation_start(&self) -> Result<RotateReport> {
        let mut tx = self.store.begin().await?;
        let mut op = locked_operator(self, &mut tx).await?;
        if let Some(r) = rotation_in(&mut tx).await? {
            return Err(OpsError::Conflict(format!(
                "a rotation from {} to {} started meanwhile; run `rotate` again",
                r.from, r.to
            )));
        }
        if !tx.has_seed(&op.public_key).await? {
            return Err(OpsError::Conflict(
                "Warden does not hold the operator's identity seed, so it cannot re-sign the operator JWT; nothing was changed".into(),
            ));
        }
        let kp = KeyPair::generate(KeyKind::Operator);
        let key = kp.operator_public_key()?;
        put_seed(&mut tx, &kp, "operator").await?;
        let keys = reissue_operator(&mut tx, &mut op, |sk| sk.push(key.clone())).await?;
        let t = now();
        let r = Rotation {
            from: op.signing_key.clone(),
            to: key.to_string(),
            phase: RotationPhase::Trust,
            started_at: t,
            updated_at: t,
        };
        save_rotation(&mut tx, Some(&r)).await?;
        tx.record(self.event(
            "operator.signing_key.rotate",
            "operator",
            &op.public_key,
            json!({"step": "start", "from": r.from, "to": r.to, "signing_keys": keys}),
        ))
        .await?;
        tx.commit().await?;
        Ok(report(
            RotateStep::Started,
            true,
            &r,
            Some(r.phase),
            vec![
                format!("{RESTART}, so that they trust the new key {}", r.to),
                "then run `warden operator signing-key rotate --nats URL` again: it checks that the servers trust the new key and re-signs every account with it".into(),
            ],
        ))
    }

    /// Asks the servers what they trust, through the system user.
    async fn ask_servers(
        &self,
        opts: &RotateOptions,
        url: &str,
    ) -> Result<(ResolverClient, Vec<ServerTrust>)> {
        let creds = self.trusted().system_user_creds().await?;
        let client = ResolverClient::connect(url, &creds, opts.timeout)
            .await
            .map_err(|e| OpsError::unavailable(format!("{url}: {e}")))?;
        let servers = servers_trust(client.client(), opts.timeout, opts.servers)
            .await
            .map_err(|e| OpsError::unavailable(format!("{url}: {e}")))?;
        Ok((client, servers))
    }

    async fn rotation_resign(&self, r: Rotation, opts: &RotateOptions) -> Result<RotateReport> {
        let Some(url) = opts.nats.as_deref() else {
            let mut rep = report(RotateStep::AwaitingTrust, false, &r, Some(r.phase), vec![
                format!("{RESTART}, so that they trust the new key {}", r.to),
                "then run `warden operator signing-key rotate --nats URL`: Warden re-signs only once it has seen the servers trust the new key".into(),
            ]);
            rep.waiting_for =
                Some("no server given (--nats) to check that the servers trust the new key".into());
            return Ok(rep);
        };
        let (_client, servers) = self.ask_servers(opts, url).await?;
        let op_key = self.trusted().operator().await?.public_key;
        let not_yet: Vec<String> = servers
            .iter()
            .filter(|s| !s.trusts(&op_key, &r.to))
            .map(|s| format!("{} ({})", s.name, s.version))
            .collect();
        if servers.len() < opts.servers || !not_yet.is_empty() {
            let mut rep = report(
                RotateStep::AwaitingTrust,
                false,
                &r,
                Some(r.phase),
                vec![
                    format!("{RESTART}, so that they trust the new key {}", r.to),
                    "then run this command again".into(),
                ],
            );
            rep.waiting_for = Some(if !not_yet.is_empty() {
                format!(
                    "not restarted with the new key yet: {} (a server reads the operator's signing keys only at start)",
                    not_yet.join(", ")
                )
            } else {
                format!(
                    "{} server(s) answered, {} expected (--servers)",
                    servers.len(),
                    opts.servers
                )
            });
            rep.servers = servers;
            return Ok(rep);
        }

        // ONE transaction: the new key issues, every account is re-signed by it and queued.
        let mut tx = self.store.begin().await?;
        let mut op = locked_operator(self, &mut tx).await?;
        if rotation_in(&mut tx).await?.as_ref() != Some(&r) {
            return Err(OpsError::Conflict(
                "the rotation moved on meanwhile; run `rotate` again".into(),
            ));
        }
        let signer = KeyPair::from_seed(&tx.seed(&r.to).await?)?;
        let mut count = 0usize;
        for mut acc in tx.accounts(&op.public_key).await? {
            let mut claims = nats_jwt::decode::<Account>(&acc.jwt)
                .map_err(|e| OpsError::Jwt(format!("stored JWT of account {}: {e}", acc.name)))?;
            let name = AccountName::parse_any_case(&acc.name)?;
            acc.jwt = self.encode_account(&name, &mut claims, &signer)?;
            acc.updated_at = now();
            tx.update_account(&acc).await?;
            tx.enqueue(TOPIC_ACCOUNT_UPDATE, &acc.public_key).await?;
            count += 1;
        }
        op.signing_key = r.to.clone();
        op.updated_at = now();
        tx.update_operator(&op).await?;
        let next = Rotation {
            phase: RotationPhase::Confirm,
            updated_at: now(),
            ..r.clone()
        };
        save_rotation(&mut tx, Some(&next)).await?;
        tx.record(self.event(
            "operator.signing_key.rotate",
            "operator",
            &op.public_key,
            json!({"step": "resign", "from": r.from, "to": r.to, "accounts": count,
                   "servers": servers.iter().map(|s| &s.name).collect::<Vec<_>>()}),
        ))
        .await?;
        tx.commit().await?;
        self.rotation_confirm(next, opts, Some(servers), count)
            .await
    }

    async fn rotation_confirm(
        &self,
        r: Rotation,
        opts: &RotateOptions,
        servers: Option<Vec<ServerTrust>>,
        resigned: usize,
    ) -> Result<RotateReport> {
        let step_if_waiting = if resigned > 0 {
            RotateStep::Resigned
        } else {
            RotateStep::AwaitingAccounts
        };
        let Some(url) = opts.nats.as_deref() else {
            let mut rep = report(step_if_waiting, resigned > 0, &r, Some(r.phase), vec![
                "deliver the re-signed accounts (`warden serve` does, or `warden push`)".into(),
                "then run `warden operator signing-key rotate --nats URL`: it retires the old key once the server holds every account signed by the new one".into(),
            ]);
            rep.accounts_resigned = resigned;
            rep.waiting_for = Some("no server given (--nats) to confirm the accounts on".into());
            return Ok(rep);
        };
        // Deliver what is queued (the re-signed accounts among it), as `warden push` does.
        let delivery = self.trusted().push_outbox(url).await?;
        let (client, asked) = match servers {
            Some(s) => {
                let creds = self.trusted().system_user_creds().await?;
                let c = ResolverClient::connect(url, &creds, opts.timeout)
                    .await
                    .map_err(|e| OpsError::unavailable(format!("{url}: {e}")))?;
                (c, s)
            }
            None => self.ask_servers(opts, url).await?,
        };
        let expected = self.trusted().account_jwts().await?;
        let keys: Vec<String> = expected.iter().map(|(_, k, _)| k.clone()).collect();
        let found = client.lookup_many(&keys, 64).await;
        let mut unconfirmed = Vec::new();
        for ((name, key, _), got) in expected.iter().zip(found) {
            let on_server = got.map_err(|e| OpsError::unavailable(format!("{url}: {e}")))?;
            // Verified: the issuer counts only with a signature that checks.
            let issuer = on_server.as_deref().map(|j| {
                nats_jwt::decode::<Account>(j)
                    .map(|c| c.iss)
                    .unwrap_or_default()
            });
            if issuer.as_deref() != Some(r.to.as_str()) {
                unconfirmed.push(UnconfirmedAccount {
                    name: name.clone(),
                    public_key: key.clone(),
                    issuer_on_server: issuer,
                });
            }
        }
        if !unconfirmed.is_empty() {
            let count = unconfirmed.len();
            let mut rep = report(
                step_if_waiting,
                resigned > 0,
                &r,
                Some(r.phase),
                vec![
                    "deliver the re-signed accounts (`warden push`, or let `warden serve` retry)"
                        .into(),
                    "then run this command again".into(),
                ],
            );
            rep.waiting_for = Some(format!(
                "{count} account(s) not yet held by the server signed by the new key"
            ));
            unconfirmed.truncate(100);
            rep.unconfirmed = unconfirmed;
            rep.unconfirmed_count = count;
            rep.accounts_resigned = resigned;
            rep.delivery = Some(delivery);
            rep.servers = asked;
            return Ok(rep);
        }

        // Every account is held signed by the new key: the old key leaves.
        let mut tx = self.store.begin().await?;
        let mut op = locked_operator(self, &mut tx).await?;
        if rotation_in(&mut tx).await?.as_ref() != Some(&r) {
            return Err(OpsError::Conflict(
                "the rotation moved on meanwhile; run `rotate` again".into(),
            ));
        }
        let still: Vec<String> = tx
            .accounts(&op.public_key)
            .await?
            .into_iter()
            .filter(|a| issuer_of(&a.jwt) == r.from)
            .map(|a| a.name)
            .collect();
        if !still.is_empty() {
            return Err(OpsError::Conflict(format!(
                "account(s) {} are still signed by the old key; nothing was changed",
                still.join(", ")
            )));
        }
        if r.from == op.public_key {
            // The issuing key was the operator's identity key (an nsc import without signing
            // seeds): it stays, since it is the operator itself; no account is signed by it
            // any more, and there is nothing for servers to forget.
            save_rotation(&mut tx, None).await?;
            tx.record(self.event(
                "operator.signing_key.rotate",
                "operator",
                &op.public_key,
                json!({"step": "complete", "from": r.from, "to": r.to, "identity_kept": true}),
            ))
            .await?;
            tx.commit().await?;
            let mut rep = report(
                RotateStep::Completed,
                true,
                &r,
                None,
                vec![format!(
                    "nothing: {} issues every account; the identity key no longer signs any",
                    r.to
                )],
            );
            rep.accounts_resigned = resigned;
            rep.delivery = Some(delivery);
            rep.servers = asked;
            return Ok(rep);
        }
        let from: OperatorPublicKey = crate::parse_key(&r.from)?;
        let keys = reissue_operator(&mut tx, &mut op, |sk| sk.retain(|k| k != &from)).await?;
        if tx.has_seed(&r.from).await? {
            tx.delete_seed(&r.from).await?;
        }
        let next = Rotation {
            phase: RotationPhase::Untrust,
            updated_at: now(),
            ..r.clone()
        };
        save_rotation(&mut tx, Some(&next)).await?;
        tx.record(self.event(
            "operator.signing_key.rotate",
            "operator",
            &op.public_key,
            json!({"step": "retire", "from": r.from, "to": r.to, "signing_keys": keys}),
        ))
        .await?;
        tx.commit().await?;
        let mut rep = report(
            RotateStep::OldKeyRemoved,
            true,
            &next,
            Some(next.phase),
            vec![
                format!(
                    "{RESTART}, so that they stop trusting the old key {}",
                    r.from
                ),
                "then run `warden operator signing-key rotate --nats URL` once more to finish"
                    .into(),
            ],
        );
        rep.accounts_resigned = resigned;
        rep.delivery = Some(delivery);
        rep.servers = asked;
        Ok(rep)
    }

    async fn rotation_complete(&self, r: Rotation, opts: &RotateOptions) -> Result<RotateReport> {
        let again = |why: String, servers: Vec<ServerTrust>| {
            let mut rep = report(
                RotateStep::AwaitingRestart,
                false,
                &r,
                Some(r.phase),
                vec![
                    format!(
                        "{RESTART}, so that they stop trusting the old key {}",
                        r.from
                    ),
                    "then run `warden operator signing-key rotate --nats URL` again".into(),
                ],
            );
            rep.waiting_for = Some(why);
            rep.servers = servers;
            rep
        };
        let Some(url) = opts.nats.as_deref() else {
            return Ok(again(
                "no server given (--nats) to check that the servers forgot the old key".into(),
                Vec::new(),
            ));
        };
        let (_client, servers) = self.ask_servers(opts, url).await?;
        let op_key = self.trusted().operator().await?.public_key;
        let stale: Vec<String> = servers
            .iter()
            .filter(|s| s.trusts(&op_key, &r.from))
            .map(|s| format!("{} ({})", s.name, s.version))
            .collect();
        if !stale.is_empty() {
            return Ok(again(
                format!("still trusting the old key: {}", stale.join(", ")),
                servers,
            ));
        }
        if servers.len() < opts.servers {
            let n = servers.len();
            return Ok(again(
                format!(
                    "{n} server(s) answered, {} expected (--servers)",
                    opts.servers
                ),
                servers,
            ));
        }
        let mut tx = self.store.begin().await?;
        let op = locked_operator(self, &mut tx).await?;
        if rotation_in(&mut tx).await?.as_ref() != Some(&r) {
            return Err(OpsError::Conflict(
                "the rotation moved on meanwhile; run `rotate` again".into(),
            ));
        }
        save_rotation(&mut tx, None).await?;
        tx.record(self.event(
            "operator.signing_key.rotate",
            "operator",
            &op.public_key,
            json!({"step": "complete", "from": r.from, "to": r.to,
                   "servers": servers.iter().map(|s| &s.name).collect::<Vec<_>>()}),
        ))
        .await?;
        tx.commit().await?;
        let mut rep = report(
            RotateStep::Completed,
            true,
            &r,
            None,
            vec![format!(
                "nothing: {} issues every account, and no server trusts {} any more",
                r.to, r.from
            )],
        );
        rep.servers = servers;
        Ok(rep)
    }

    /// Re-signs one account's stored claims with the issuing key, in its own transaction,
    /// and queues its push (what `nsc edit account` does after a key change); needs `write`.
    pub async fn resign_account_now(&self, name: &str) -> Result<crate::AccountView> {
        self.need(Scope::Write, "re-signing an account")?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let mut acc = self.account_row(&mut tx, &op, name).await?;
        let mut claims = nats_jwt::decode::<Account>(&acc.jwt)
            .map_err(|e| OpsError::Jwt(format!("stored JWT of account {}: {e}", acc.name)))?;
        let signer = KeyPair::from_seed(&tx.seed(&op.signing_key).await?)?;
        let aname = AccountName::parse_any_case(&acc.name)?;
        acc.jwt = self.encode_account(&aname, &mut claims, &signer)?;
        acc.updated_at = now();
        tx.update_account(&acc).await?;
        tx.enqueue(TOPIC_ACCOUNT_UPDATE, &acc.public_key).await?;
        tx.record(self.event(
            "account.resign",
            "account",
            &acc.public_key,
            json!({"name": acc.name, "signing_key": op.signing_key}),
        ))
        .await?;
        let users = tx.users(&acc.public_key).await?.len();
        tx.commit().await?;
        crate::account_view(acc, &op, users)
    }
}

fn report(
    step: RotateStep,
    changed: bool,
    r: &Rotation,
    phase: Option<RotationPhase>,
    next: Vec<String>,
) -> RotateReport {
    RotateReport {
        step,
        changed,
        from: r.from.clone(),
        to: r.to.clone(),
        phase,
        servers: Vec::new(),
        accounts_resigned: 0,
        delivery: None,
        unconfirmed: Vec::new(),
        unconfirmed_count: 0,
        waiting_for: None,
        next,
    }
}

/// The operator row, locked for this transaction: a no-op write first, so that concurrent
/// key changes (on PostgreSQL) wait for each other, then read again.
async fn locked_operator(w: &Warden, tx: &mut Tx<'_>) -> Result<OperatorRow> {
    let op = w.operator_row(tx).await?;
    tx.update_operator(&op).await?;
    w.operator_row(tx).await
}

async fn rotation_in(tx: &mut Tx<'_>) -> Result<Option<Rotation>> {
    match tx.meta(META_ROTATION).await? {
        Some(v) if !v.trim().is_empty() => serde_json::from_str(&v)
            .map(Some)
            .map_err(|e| OpsError::Conflict(format!("stored rotation state is unreadable: {e}"))),
        _ => Ok(None),
    }
}

async fn save_rotation(tx: &mut Tx<'_>, r: Option<&Rotation>) -> Result<()> {
    let v = match r {
        Some(r) => serde_json::to_string(r)
            .map_err(|e| OpsError::Jwt(format!("cannot serialise the rotation: {e}")))?,
        None => String::new(),
    };
    tx.set_meta(META_ROTATION, &v).await?;
    Ok(())
}

fn operator_claims(op: &OperatorRow) -> Result<nats_jwt::OperatorClaims> {
    nats_jwt::decode::<Operator>(&op.jwt)
        .map_err(|e| OpsError::Jwt(format!("stored operator JWT: {e}")))
}

/// Re-signs the operator JWT with its identity key after `change` to its signing keys;
/// stores it in `op`. Returns the signing keys now listed.
async fn reissue_operator(
    tx: &mut Tx<'_>,
    op: &mut OperatorRow,
    change: impl FnOnce(&mut Vec<OperatorPublicKey>),
) -> Result<Vec<String>> {
    let mut claims = operator_claims(op)?;
    change(&mut claims.nats.signing_keys);
    if !tx.has_seed(&op.public_key).await? {
        return Err(OpsError::Conflict(
            "Warden does not hold the operator's identity seed, so it cannot re-sign the operator JWT; nothing was changed".into(),
        ));
    }
    let identity = KeyPair::from_seed(&tx.seed(&op.public_key).await?)?;
    warden_core::compile::refuse_blocking(claims.validate(now()))?;
    op.jwt = claims.encode(&identity)?;
    op.updated_at = now();
    tx.update_operator(op).await?;
    Ok(claims
        .nats
        .signing_keys
        .iter()
        .map(|k| k.to_string())
        .collect())
}

/// The one claim [`issuer_of`] reads (the others are skipped, not decoded).
#[derive(serde::Deserialize)]
struct Issuer {
    #[serde(default)]
    iss: String,
}

/// The `iss` of a JWT, read from its payload without verifying it (empty when unreadable):
/// enough to count and compare issuers of JWTs Warden stored or the server holds.
fn issuer_of(jwt: &str) -> String {
    jwt.split('.')
        .nth(1)
        .and_then(|p| {
            data_encoding::BASE64URL_NOPAD
                .decode(p.trim_end_matches('=').as_bytes())
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<Issuer>(&b).ok())
        .map(|v| v.iss)
        .unwrap_or_default()
}
