//! ADD_KEY: a directory user brings their own NATS user key.
//!
//! Owns registering and removing a directory user's public keys, and issuing their
//! directory-managed NATS users for such a key. Warden never sees the seed of a
//! registered key: it signs the JWT for the public key and the user combines it with
//! their seed (nsc's `user add --public-key` convention). `warden creds` therefore
//! refuses such a user and `warden jwt` prints the JWT.
//!
//! NATS revokes per public key with a time: a user JWT whose `iat` is at or before the
//! revocation time is refused. A re-issue for the *same* key (a grant taken away) must
//! still kill the old JWT, so the key is revoked at T (no earlier than the old JWT's
//! `iat`) and the new JWT is issued with `iat` = T + 1.
//!
//! Registering a key gives whoever holds its seed a NATS user, so it needs `creds`, and
//! then: an actor bound to a directory user registers keys for that user only; any other
//! actor (an operator's token, the console) needs `admin` to register a key for a
//! directory user, since nothing proves it is that user; the local command line holds
//! `admin`. Removing a key needs `write`; listing `read`. `warden jwt` withholds a bearer
//! user's JWT from an actor without `creds`.

use nats_jwt::{KeyKind, PublicKey, Seed, UserClaims, UserPublicKey};
use serde::Serialize;
use serde_json::json;
use warden_core::compile::{compile_user, refuse_blocking};
use warden_core::governance as gov;
use warden_core::{AccountSpec, UserName, UserSpec};
use warden_store::dir_keys::DirUserKeyRow;
use warden_store::{AccountRow, OperatorRow, StoreError, Tx, UserRow};

use crate::governance::Reissued;
use crate::{OpsError, Record, Result, Scope, Warden, from_json, now};

/// Tag of a directory-managed NATS user issued for the user's own key (no seed here).
pub const OWN_KEY_TAG: &str = "warden:own-key";

/// Checks that `input` is a NATS *user* public key (`U…`, checksum verified). A seed is
/// refused without being echoed; so is anything that is not a public key at all.
pub fn parse_user_key(input: &str) -> Result<UserPublicKey> {
    let s = input.trim();
    if s.starts_with('S') {
        // A seed (or what looks like one): never repeat it, never keep it.
        let what = if Seed::parse(s).is_ok() {
            "that is a seed (private key), not a public key"
        } else {
            "that looks like a seed (private key), not a public key"
        };
        return Err(OpsError::Invalid(format!(
            "{what}: give the user public key (U…, e.g. from `nsc generate nkey --user`), never the seed; \
             if you shared the seed anywhere, treat it as compromised"
        )));
    }
    let pk = PublicKey::new(s).map_err(|_| {
        OpsError::Invalid(
            "not a valid NATS public key (expected a user public key U…, 56 characters, with a valid checksum)"
                .into(),
        )
    })?;
    if pk.kind() != KeyKind::User {
        return Err(OpsError::Invalid(format!(
            "{s} is an {} public key, not a user public key (U…)",
            pk.kind().name()
        )));
    }
    UserPublicKey::try_from(pk).map_err(|e| OpsError::Invalid(e.to_string()))
}

/// A key added or removed, with the NATS users re-issued for it.
#[derive(Clone, Debug, Serialize)]
pub struct DirKeyChange {
    /// The directory user.
    pub user: String,
    /// The key added or removed.
    pub public_key: String,
    /// `add` or `remove`.
    pub change: &'static str,
    /// The user's keys afterwards, newest first (the first is the one in use).
    pub keys: Vec<DirUserKeyRow>,
    /// The NATS users re-issued.
    pub reissued: Vec<Reissued>,
}

/// A NATS user's JWT (for a user who holds their own seed).
#[derive(Clone, Debug, Serialize)]
pub struct UserJwtView {
    /// Account name.
    pub account: String,
    /// User name.
    pub user: String,
    /// The user's public key.
    pub public_key: String,
    /// Whether Warden holds the seed (`false`: the user brought their own key).
    pub seed_held_by_warden: bool,
    /// The user JWT; `None` (JSON `null`) when withheld: see `jwt_withheld`.
    pub jwt: Option<String>,
    /// Whether the JWT is withheld: a bearer user's JWT alone lets its holder connect, so
    /// only a caller with the `creds` scope sees it.
    pub jwt_withheld: bool,
}

impl Warden {
    /// Only the user themself, a system administrator or the local operator (`None`).
    async fn need_self_or_sysadmin(
        &self,
        tx: &mut Tx<'_>,
        actor: Option<&str>,
        user: &str,
        doing: &str,
    ) -> Result<()> {
        let Some(a) = actor else { return Ok(()) };
        if tx.dir_user(a).await?.is_none() {
            return Err(OpsError::NotFound(format!(
                "acting user {a} (a directory user)"
            )));
        }
        if a == user || tx.relationship(&gov::Address::sysadmin(a)).await?.is_some() {
            return Ok(());
        }
        Err(OpsError::Refused(format!(
            "{a} may not {doing} of {user}: only {user} themself or a system administrator may"
        )))
    }

    /// Who may register a key for `user` (after `creds` was checked): an actor bound to a
    /// directory user for that user only; any other actor only with `admin`.
    fn need_key_registrar(&self, user: &str) -> Result<()> {
        match self.actor.dir_user() {
            Some(bound) if bound == user => Ok(()),
            Some(bound) => Err(OpsError::Bound(format!(
                "this token acts as directory user {bound}: it registers keys for {bound} only, not for {user}"
            ))),
            None => self.actor.require_governance(
                Scope::Admin,
                &format!("registering a NATS key for directory user {user}"),
            ),
        }
    }

    async fn need_user_for_keys(&self, tx: &mut Tx<'_>, user: &str) -> Result<()> {
        if tx.dir_user(user).await?.is_none() {
            return Err(OpsError::NotFound(format!("directory user {user}")));
        }
        Ok(())
    }

    /// `warden dir user key add` (ADD_KEY): registers `key` for `user` and re-issues their
    /// NATS users for it; the previous keys are revoked. One transaction.
    pub async fn dir_key_add(
        &self,
        actor: Option<&str>,
        user: &str,
        key: &str,
    ) -> Result<DirKeyChange> {
        self.need_gov(Scope::Creds, "registering a NATS key for a directory user")?;
        let actor = self.actor.acting_as(actor)?;
        let actor = actor.as_deref();
        self.need_key_registrar(user)?;
        let key = parse_user_key(key)?;
        let mut tx = self.store.begin().await?;
        self.need_user_for_keys(&mut tx, user).await?;
        self.need_self_or_sysadmin(&mut tx, actor, user, "add keys")
            .await?;
        if let Some(owner) = tx.dir_user_key_owner(key.as_str()).await? {
            return Err(OpsError::Conflict(format!(
                "key {key} is already registered{}",
                if owner == user {
                    format!(" for {user}")
                } else {
                    " for another directory user".to_string()
                }
            )));
        }
        if tx.user(key.as_str()).await?.is_some() {
            return Err(OpsError::Conflict(format!(
                "key {key} is already the key of a NATS user here"
            )));
        }
        // Never older than a key registered before, so "newest" is well defined.
        let at = tx
            .dir_user_keys(user)
            .await?
            .first()
            .map_or(now(), |k| now().max(k.created_at + 1));
        tx.insert_dir_user_key(&DirUserKeyRow {
            public_key: key.to_string(),
            user_id: user.to_string(),
            created_at: at,
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict { .. } => {
                OpsError::Conflict(format!("key {key} is already registered"))
            }
            other => other.into(),
        })?;
        self.finish_key_change(tx, actor, user, key.as_str(), "add")
            .await
    }

    /// `warden dir user key remove`: forgets `key`; the user's NATS users go to their
    /// next newest key, or back to a Warden-generated key when it was the last.
    pub async fn dir_key_remove(
        &self,
        actor: Option<&str>,
        user: &str,
        key: &str,
    ) -> Result<DirKeyChange> {
        self.need_gov(Scope::Write, "removing a directory user's NATS key")?;
        let actor = self.actor.acting_as(actor)?;
        let actor = actor.as_deref();
        let key = parse_user_key(key)?;
        let mut tx = self.store.begin().await?;
        self.need_user_for_keys(&mut tx, user).await?;
        self.need_self_or_sysadmin(&mut tx, actor, user, "remove keys")
            .await?;
        tx.delete_dir_user_key(user, key.as_str())
            .await
            .map_err(|e| match e {
                StoreError::NotFound { .. } => {
                    OpsError::NotFound(format!("key {key} of directory user {user}"))
                }
                other => other.into(),
            })?;
        self.finish_key_change(tx, actor, user, key.as_str(), "remove")
            .await
    }

    async fn finish_key_change(
        &self,
        mut tx: Tx<'_>,
        actor: Option<&str>,
        user: &str,
        key: &str,
        change: &'static str,
    ) -> Result<DirKeyChange> {
        let op = self.operator_row(&mut tx).await?;
        let reissued = self.reissue_dir_user(&mut tx, &op, user, actor).await?;
        let keys = tx.dir_user_keys(user).await?;
        let mut e = self.event(
            &format!("dir.key.{change}"),
            "dir_user",
            user,
            json!({
                "message": gov::ADD_KEY,
                "change": change,
                "public_key": key,
                "in_use": keys.first().map(|k| k.public_key.clone()),
                "reissued": reissued.iter().map(|r| json!({"account": r.account, "public_key": r.public_key, "revoked": r.revoked})).collect::<Vec<_>>(),
            }),
        );
        if let Some(a) = actor {
            e.actor = format!("dir:{a}");
        }
        tx.record(e).await?;
        tx.commit().await?;
        Ok(DirKeyChange {
            user: user.to_string(),
            public_key: key.to_string(),
            change,
            keys,
            reissued,
        })
    }

    /// `warden dir user key list`: the user's keys, newest (in use) first.
    pub async fn dir_keys(&self, user: &str) -> Result<Vec<DirUserKeyRow>> {
        self.need_gov(Scope::Read, "listing a directory user's keys")?;
        if self.store.dir_user(user).await?.is_none() {
            return Err(OpsError::NotFound(format!("directory user {user}")));
        }
        Ok(self.store.dir_user_keys(user).await?)
    }

    /// `warden jwt ACCOUNT USER`: the user's JWT (to combine with a seed the user holds).
    pub async fn user_jwt(&self, account: &str, name: &str) -> Result<UserJwtView> {
        self.need(Scope::Read, "reading a user's JWT")?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let acc = self.account_row(&mut tx, &op, account).await?;
        let row = self.user_row(&mut tx, &acc, name).await?;
        let held = tx.has_seed(&row.public_key).await?;
        let spec: UserSpec = from_json(&row.spec)?;
        let withheld = spec.bearer_token && !self.sees_creds();
        Ok(UserJwtView {
            account: acc.name,
            user: row.name,
            public_key: row.public_key,
            seed_held_by_warden: held,
            jwt: (!withheld).then_some(row.jwt),
            jwt_withheld: withheld,
        })
    }

    /// Why `warden creds` cannot give this user's creds: the seed is the user's own.
    pub(crate) async fn refuse_own_key_creds(
        &self,
        tx: &mut Tx<'_>,
        account: &str,
        row: &UserRow,
    ) -> Result<()> {
        if tx.has_seed(&row.public_key).await? {
            return Ok(());
        }
        let spec: UserSpec = from_json(&row.spec)?;
        if spec.tags.iter().any(|t| t == OWN_KEY_TAG) {
            return Err(OpsError::Conflict(format!(
                "{} in {account} is issued for the user's own key {}: the user holds the seed and Warden does not; \
                 get the JWT with `warden jwt {account} {}` and combine it with that seed",
                row.name, row.public_key, row.name
            )));
        }
        Ok(())
    }

    /// The newest key `user` registered (the one their NATS users are issued for).
    pub(crate) async fn own_key(
        &self,
        tx: &mut Tx<'_>,
        user: &str,
    ) -> Result<Option<UserPublicKey>> {
        match tx.dir_user_keys(user).await?.first() {
            Some(k) => Ok(Some(parse_user_key(&k.public_key)?)),
            None => Ok(None),
        }
    }

    /// Revokes an issued user's key so that its current JWT is refused: at now, but never
    /// before that JWT's `iat` (a JWT issued for an own key may carry `iat` = T + 1).
    pub(crate) async fn revoke_issued(
        &self,
        tx: &mut Tx<'_>,
        op: &OperatorRow,
        acc: &mut AccountRow,
        row: &UserRow,
    ) -> Result<i64> {
        let iat = nats_jwt::decode::<nats_jwt::User>(&row.jwt)
            .map(|c: UserClaims| c.iat)
            .map_err(|e| OpsError::Jwt(format!("stored JWT of {} unreadable: {e}", row.name)))?;
        let mut spec: AccountSpec = from_json(&acc.spec)?;
        let at = now().max(iat);
        let entry = spec.revocations.entry(row.public_key.clone()).or_insert(at);
        *entry = (*entry).max(at);
        let at = *entry;
        self.resign_account(tx, op, acc, spec).await?;
        Ok(at)
    }

    /// Issues a NATS user for a key the directory user holds the seed of. Its `iat` is
    /// after any revocation of that key in the account, so the new JWT is accepted while
    /// every earlier one stays refused.
    pub(crate) async fn create_user_for_key(
        &self,
        tx: &mut Tx<'_>,
        acc: &AccountRow,
        name: &UserName,
        spec: UserSpec,
        key: &UserPublicKey,
    ) -> Result<UserRow> {
        if let Some(other) = tx.user(key.as_str()).await? {
            // One NATS user per public key here: an own key serves one account.
            return Err(OpsError::Conflict(format!(
                "{name}'s own key {key} is already the key of NATS user {} in another account; \
                 an own key serves one account: remove the key to go back to Warden-generated keys",
                other.name
            )));
        }
        let acc_spec: AccountSpec = from_json(&acc.spec)?;
        let iat = acc_spec
            .revocations
            .get(key.as_str())
            .map_or(now(), |t| now().max(t + 1));
        let mut claims = compile_user(key, name, &spec, None);
        refuse_blocking(claims.validate(now()))?;
        let signer = nats_jwt::KeyPair::from_seed(&tx.seed(&acc.public_key).await?)?;
        let jwt = claims.encode_at(&signer, iat)?;
        let row = crate::new_user_row(
            &acc.public_key,
            &key.to_string(),
            &name.to_string(),
            &spec,
            jwt,
        )?;
        tx.insert_user(&row).await.map_err(|e| {
            crate::conflict(e, || {
                format!("user {name} already exists in account {}", acc.name)
            })
        })?;
        tx.record(self.event(
            "user.create",
            "user",
            &row.public_key,
            json!({"name": row.name, "account": acc.name, "spec": row.spec, "own_key": true, "iat": iat}),
        ))
        .await?;
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(input: &str) -> String {
        match parse_user_key(input) {
            Err(OpsError::Invalid(m)) => m,
            other => panic!("{input}: expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn user_keys_only_seeds_never_echoed() {
        let kp = nats_jwt::KeyPair::generate(KeyKind::User);
        let pk = kp.public_key().to_string();
        assert_eq!(parse_user_key(&format!(" {pk}\n")).unwrap().as_str(), pk);

        let seed = kp.seed();
        let m = message(seed.expose());
        assert!(m.contains("seed") && !m.contains(seed.expose()), "{m}");
        // A mangled seed is still not echoed.
        let mangled = format!("{}X", &seed.expose()[..20]);
        let m = message(&mangled);
        assert!(m.contains("seed") && !m.contains(&mangled), "{m}");

        for kind in [KeyKind::Account, KeyKind::Operator] {
            let other = nats_jwt::KeyPair::generate(kind).public_key().to_string();
            assert!(message(&other).contains("not a user public key"));
        }
        let mut broken = pk.clone().into_bytes();
        broken[10] = if broken[10] == b'A' { b'B' } else { b'A' };
        let broken = String::from_utf8(broken).unwrap();
        assert!(message(&broken).contains("checksum"));
        assert!(message("").contains("not a valid"));
        assert!(message("garbage").contains("not a valid"));
    }
}
