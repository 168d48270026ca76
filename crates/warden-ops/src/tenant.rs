//! `warden tenant`: one NATS account per tenant, prefixed into a shared platform account
//! by the server (see `warden_core::tenant`), and the [`Warden`] methods every surface
//! calls: [`Warden::add_tenant`], [`Warden::list_tenants`], [`Warden::tenant`],
//! [`Warden::edit_tenant`], [`Warden::suspend_tenant`], [`Warden::resume_tenant`],
//! [`Warden::delete_tenant`], [`Warden::add_tenant_user`], [`Warden::tenant_creds`], and
//! [`Warden::add_tenants_bulk`] for many tenants in one transaction.
//!
//! Each operation is one store transaction: tenant row, account/user rows, sealed seeds,
//! ledger events and `account.update`/`account.delete` outbox rows. Reads need `read`,
//! changes `write`, a tenant user's creds `creds` (adding a user without `creds` adds it
//! and answers without its creds). The platform account
//! (`PLATFORM`, user `platform`) is created with the first tenant and does not name any
//! tenant, so adding, suspending or deleting a tenant signs only that tenant's account.
//!
//! Settings (names, subject catalogue, default limits) are stored in the store's `meta`
//! table (`tenant_settings`; the defaults until set or until the first tenant) and changed
//! by [`Warden::set_tenant_settings`]: a catalogue change recompiles the platform account,
//! every tenant account and the permissions of their users in one transaction. The
//! exports and imports of the platform and tenant accounts belong to this module (their
//! limits, description, revocations and signing keys are kept).
//!
//! Upgrade: stores written before the platform stopped importing each tenant (no
//! `tenant_layout` in `meta`) are recompiled by the next tenant change, in its own
//! transaction: the platform's per-tenant stream imports go, every tenant account gets
//! its service imports.

use nats_jwt::{AccountPublicKey, KeyKind, KeyPair};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use warden_core::UserName;
use warden_core::UserSpec;
use warden_core::spec::AccountSpec;
use warden_core::tenant::{TenantLimits, TenantLimitsEdit, TenantSettings, TenantSlug};
use warden_store::{AccountRow, NewSeed, OperatorRow, TenantRow, Tx, UserRow, Zeroizing};

use crate::device::{BulkReport, IssuedCreds, PREPARE_CHUNK, on_all_cores};
use crate::{
    OpsError, Record, Result, Scope, TOPIC_ACCOUNT_DELETE, Warden, from_json, now, parse_key,
    sign_user, to_json,
};

/// `meta` key of the stored [`TenantSettings`] (JSON).
const META_SETTINGS: &str = "tenant_settings";
/// `meta` key naming how tenant traffic is wired; absent in stores written before the
/// platform stopped importing each tenant.
const META_LAYOUT: &str = "tenant_layout";
/// The wiring this code compiles: tenant accounts import their slice of the platform's
/// service exports.
const LAYOUT: &str = "tenant-service-imports";

/// A tenant as every surface shows it.
#[derive(Clone, Debug, Serialize)]
pub struct TenantView {
    /// Slug.
    pub slug: String,
    /// `active` or `suspended`.
    pub state: String,
    /// Its account's name (`TENANT-<slug>`).
    pub account: String,
    /// Its account's public key.
    pub account_key: String,
    /// The platform account, where its traffic arrives as `<slug>.<subject>`.
    pub platform_account: String,
    /// The prefix its subjects get in the platform account.
    pub prefix: String,
    /// Its limits.
    pub limits: TenantLimits,
    /// Names of its users.
    pub users: Vec<String>,
    /// Created, unix seconds.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
    /// Last suspension.
    pub suspended_at: Option<i64>,
}

/// A tenant for [`Warden::add_tenants_bulk`]: its slug and the limits given for it
/// (the default limits for the ones not given).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct NewTenant {
    /// Slug.
    pub slug: String,
    /// Limits given for this tenant.
    #[serde(default)]
    pub limits: TenantLimitsEdit,
}

/// Tenants one `tenant.add_batch` ledger event lists.
pub const BATCH_EVENT_TENANTS: usize = 1_000;

/// What [`Warden::add_tenants_bulk`] writes for one tenant.
struct NewTenantRows {
    seed: nats_jwt::Seed,
    account: AccountRow,
    tenant: TenantRow,
    limits: TenantLimits,
}

const ACTIVE: &str = "active";
const SUSPENDED: &str = "suspended";

fn invalid(e: impl std::fmt::Display) -> OpsError {
    OpsError::Invalid(e.to_string())
}

fn limits_of(row: &TenantRow) -> Result<TenantLimits> {
    serde_json::from_str(&row.limits)
        .map_err(|e| OpsError::Conflict(format!("stored tenant limits are unreadable: {e}")))
}

fn limits_text(l: &TenantLimits) -> Result<String> {
    serde_json::to_string(l).map_err(|e| OpsError::Invalid(format!("tenant limits: {e}")))
}

impl Warden {
    /// The tenant settings in force: stored ones, or the defaults before any is stored.
    pub async fn tenant_settings(&self) -> Result<TenantSettings> {
        self.need(Scope::Read, "reading the tenant settings")?;
        settings_from(self.store.meta(META_SETTINGS).await?)
    }

    /// The settings in force inside `tx`; a store written with the old wiring (the
    /// platform importing each tenant) is recompiled to the current one first, in `tx`.
    async fn prepare(&self, tx: &mut Tx<'_>, op: &OperatorRow) -> Result<TenantSettings> {
        let settings = settings_from(tx.meta(META_SETTINGS).await?)?;
        if tx.meta(META_LAYOUT).await?.as_deref() == Some(LAYOUT) {
            return Ok(settings);
        }
        let name = settings.platform_name().map_err(invalid)?;
        if tx
            .account_by_name(&op.public_key, name.as_str())
            .await?
            .is_some()
        {
            let done = self.recompile(tx, op, &settings, &settings).await?;
            tx.record(self.event(
                "tenant.upgrade",
                "tenant-settings",
                LAYOUT,
                json!({"accounts": done.accounts, "users": done.users}),
            ))
            .await?;
            tx.set_meta(META_SETTINGS, &json!(settings).to_string())
                .await?;
        }
        tx.set_meta(META_LAYOUT, LAYOUT).await?;
        Ok(settings)
    }

    /// Replaces the tenant settings. Bad settings are a usage error; names cannot change
    /// once the platform account exists; a catalogue every tenant cannot take (a slug that
    /// became a catalogue token, too few imports) is refused. Otherwise the platform
    /// account, every tenant account and the permissions of their users are recompiled in
    /// one transaction, their pushes queued. `dry_run` reports and changes nothing.
    pub async fn set_tenant_settings(
        &self,
        new: &TenantSettings,
        dry_run: bool,
    ) -> Result<SettingsReport> {
        self.need(Scope::Write, "changing the tenant settings")?;
        new.check().map_err(invalid)?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let old = self.prepare(&mut tx, &op).await?;
        let platform_exists = tx
            .account_by_name(
                &op.public_key,
                old.platform_name().map_err(invalid)?.as_str(),
            )
            .await?
            .is_some();
        let renamed = old.platform_account != new.platform_account
            || old.platform_user != new.platform_user
            || old.account_prefix != new.account_prefix;
        if renamed && platform_exists {
            return Err(OpsError::Conflict(format!(
                "the platform account {} exists (created with the first tenant): platform_account, platform_user and account_prefix can no longer change",
                old.platform_account
            )));
        }
        for t in tx.tenants(None).await? {
            if new.parse_slug(&t.slug).is_err() {
                return Err(OpsError::Invalid(format!(
                    "tenant {} exists: its slug cannot be the first token of a catalogue subject",
                    t.slug
                )));
            }
            limits_of(&t)?
                .check(&new.catalogue)
                .map_err(|e| OpsError::Invalid(format!("tenant {}: {e}", t.slug)))?;
        }
        let catalogue_changed = old.catalogue != new.catalogue;
        let done = if catalogue_changed && platform_exists {
            self.recompile(&mut tx, &op, &old, new).await?
        } else {
            Recompiled::default()
        };
        let report = SettingsReport {
            settings: new.clone(),
            changed: old != *new,
            catalogue_changed,
            accounts: done.accounts,
            users: done.users,
            dry_run,
        };
        if dry_run {
            tx.rollback().await?;
            return Ok(report);
        }
        if !report.changed {
            // Nothing to store, but an upgrade done by `prepare` is kept.
            tx.commit().await?;
            return Ok(report);
        }
        tx.set_meta(META_SETTINGS, &json!(new).to_string()).await?;
        tx.record(self.event(
            "tenant.settings",
            "tenant-settings",
            &new.platform_account,
            json!({"before": old, "after": new, "accounts": report.accounts, "users": report.users}),
        ))
        .await?;
        tx.commit().await?;
        Ok(report)
    }

    /// Re-signs the platform account (exports from `new`'s catalogue, no imports) and its
    /// user, every tenant account (imports from `new`) and its users (publish permissions
    /// moved from `old`'s catalogue to `new`'s), queueing the account pushes.
    async fn recompile(
        &self,
        tx: &mut Tx<'_>,
        op: &OperatorRow,
        old: &TenantSettings,
        new: &TenantSettings,
    ) -> Result<Recompiled> {
        let mut done = Recompiled::default();
        let mut platform = self.ensure_platform(tx, op, new).await?;
        let fresh = new.platform_spec().map_err(invalid)?;
        let mut spec: AccountSpec = from_json(&platform.spec)?;
        spec.exports = fresh.exports;
        spec.imports = fresh.imports;
        self.resign_account(tx, op, &mut platform, spec).await?;
        done.accounts.push(platform.name.clone());
        let platform_key: AccountPublicKey = parse_key(&platform.public_key)?;
        let (old_sub, new_sub) = (
            old.platform_user_spec()
                .map_err(invalid)?
                .permissions
                .subscribe
                .allow,
            new.platform_user_spec()
                .map_err(invalid)?
                .permissions
                .subscribe
                .allow,
        );
        for u in tx.users(&platform.public_key).await? {
            if u.name == new.platform_user {
                done.users += self
                    .respec_user(tx, &platform, u, |s| {
                        s.permissions.subscribe.allow =
                            moved(&s.permissions.subscribe.allow, &old_sub, &new_sub);
                    })
                    .await?;
            }
        }
        let (old_pub, new_pub) = (
            old.tenant_user_spec()
                .map_err(invalid)?
                .permissions
                .publish
                .allow,
            new.tenant_user_spec()
                .map_err(invalid)?
                .permissions
                .publish
                .allow,
        );
        for t in tx.tenants(None).await? {
            let slug = TenantSlug::parse(&t.slug).map_err(invalid)?;
            let mut acc = account_of(tx, &t).await?;
            let fresh = new
                .tenant_spec(&slug, &limits_of(&t)?, &platform_key)
                .map_err(invalid)?;
            for u in tx.users(&acc.public_key).await? {
                done.users += self
                    .respec_user(tx, &acc, u, |s| {
                        s.permissions.publish.allow =
                            moved(&s.permissions.publish.allow, &old_pub, &new_pub);
                    })
                    .await?;
            }
            let mut spec: AccountSpec = from_json(&acc.spec)?;
            spec.exports = fresh.exports;
            spec.imports = fresh.imports;
            if t.state == SUSPENDED {
                // Users just re-signed were issued after the suspension's `*`
                // revocation; moved to now (after their signing), it still covers them.
                spec.revocations.insert("*".into(), now());
            }
            self.resign_account(tx, op, &mut acc, spec).await?;
            done.accounts.push(acc.name.clone());
        }
        Ok(done)
    }

    /// Re-signs a (not revoked) user with `edit` applied to its spec, if that changes it;
    /// 1 if re-signed. Its holder needs new creds to use the new permissions.
    async fn respec_user(
        &self,
        tx: &mut Tx<'_>,
        acc: &AccountRow,
        mut row: UserRow,
        edit: impl FnOnce(&mut UserSpec),
    ) -> Result<usize> {
        if row.revoked_at.is_some() {
            return Ok(0);
        }
        let before: UserSpec = from_json(&row.spec)?;
        let mut spec = before.clone();
        edit(&mut spec);
        if spec == before {
            return Ok(0);
        }
        let pk = parse_key(&row.public_key)?;
        let name = UserName::parse_any_case(&row.name)?;
        row.jwt = sign_user(tx, acc, &pk, &name, &spec).await?;
        row.spec = to_json(&spec)?;
        row.updated_at = now();
        tx.update_user(&row).await?;
        tx.record(self.event(
            "user.edit",
            "user",
            &row.public_key,
            json!({"name": row.name, "account": acc.name, "before": before, "after": spec}),
        ))
        .await?;
        Ok(1)
    }

    /// Adds a tenant: its account (limits = defaults with `limits` applied), importing its
    /// slice of the platform's catalogue exports; the platform account (and its
    /// `platform` user) is created with the first tenant. Only the new account is queued
    /// for the push.
    pub async fn add_tenant(&self, slug: &str, limits: &TenantLimitsEdit) -> Result<TenantView> {
        self.need(Scope::Write, "adding a tenant")?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let settings = self.prepare(&mut tx, &op).await?;
        settings.check().map_err(invalid)?;
        let slug = settings.parse_slug(slug).map_err(invalid)?;
        let limits = settings.default_limits.apply(limits);
        limits.check(&settings.catalogue).map_err(invalid)?;
        if tx.tenant(slug.as_str()).await?.is_some() {
            return Err(OpsError::Conflict(format!("tenant {slug} already exists")));
        }
        let platform = self.ensure_platform(&mut tx, &op, &settings).await?;
        let platform_key: AccountPublicKey = parse_key(&platform.public_key)?;
        let spec = settings
            .tenant_spec(&slug, &limits, &platform_key)
            .map_err(invalid)?;
        let name = settings.account_name(&slug).map_err(invalid)?;
        let acc = self
            .create_account(
                &mut tx,
                &op,
                KeyPair::generate(KeyKind::Account),
                &name,
                spec,
            )
            .await?;
        let row = TenantRow {
            slug: slug.to_string(),
            account_key: acc.public_key.clone(),
            state: ACTIVE.into(),
            limits: limits_text(&limits)?,
            created_at: acc.created_at,
            updated_at: acc.created_at,
            suspended_at: None,
        };
        tx.insert_tenant(&row)
            .await
            .map_err(|e| crate::conflict(e, || format!("tenant {slug} already exists")))?;
        tx.record(self.event(
            "tenant.add",
            "tenant",
            slug.as_str(),
            json!({"account": acc.name, "account_key": acc.public_key, "limits": limits}),
        ))
        .await?;
        let view = self.tenant_view(&mut tx, &settings, row).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Adds many tenants in one transaction; slugs that exist are skipped (so a re-run
    /// adds only what is missing, and one that finds them all changes nothing). Every
    /// slug and every tenant's limits are checked first: one bad entry changes nothing.
    ///
    /// Account keys and JWTs are made on every core (rayon), in chunks whose results keep
    /// the input order; the rows are then written with multi-row statements, each new
    /// account queued for the push, and the ledger gets one `tenant.add_batch` event per
    /// [`BATCH_EVENT_TENANTS`] tenants listing each one's slug, account, account key and
    /// limits. The platform account is created with the first tenant, as by
    /// [`Self::add_tenant`]. `progress` is called as tenants are made and skipped.
    pub async fn add_tenants_bulk(
        &self,
        tenants: &[NewTenant],
        progress: impl Fn(u64),
    ) -> Result<BulkReport> {
        self.need(Scope::Write, "adding tenants")?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let settings = self.prepare(&mut tx, &op).await?;
        settings.check().map_err(invalid)?;
        let mut checked = Vec::with_capacity(tenants.len());
        let mut seen = std::collections::BTreeSet::new();
        for (i, t) in tenants.iter().enumerate() {
            let at = |e: &dyn std::fmt::Display| {
                OpsError::Invalid(format!("tenant {} ({:?}): {e}", i + 1, t.slug))
            };
            let slug = settings.parse_slug(&t.slug).map_err(|e| at(&e))?;
            if !seen.insert(slug.to_string()) {
                return Err(OpsError::Invalid(format!(
                    "tenant {} ({slug}) is listed twice",
                    i + 1
                )));
            }
            let limits = settings.default_limits.apply(&t.limits);
            limits.check(&settings.catalogue).map_err(|e| at(&e))?;
            checked.push((slug, limits));
        }
        let existing: std::collections::BTreeSet<String> = tx
            .tenants(None)
            .await?
            .into_iter()
            .map(|t| t.slug)
            .collect();
        let mut report = BulkReport::default();
        let mut todo = Vec::new();
        for (slug, limits) in checked {
            if existing.contains(slug.as_str()) {
                report.skipped.push(slug.to_string());
            } else {
                todo.push((slug, limits));
            }
        }
        progress(report.skipped.len() as u64);
        if todo.is_empty() {
            // Nothing to add: nothing is written, not even the platform account.
            tx.rollback().await?;
            return Ok(report);
        }
        let platform = self.ensure_platform(&mut tx, &op, &settings).await?;
        let platform_key: AccountPublicKey = parse_key(&platform.public_key)?;
        let signer = KeyPair::from_seed(&tx.seed(&op.signing_key).await?)?;
        let at = now();
        let mut made: Vec<NewTenantRows> = Vec::with_capacity(todo.len());
        for chunk in todo.chunks(PREPARE_CHUNK) {
            let part = on_all_cores(|| {
                chunk
                    .par_iter()
                    .map(|(slug, limits)| {
                        self.prepare_tenant(
                            &op,
                            &settings,
                            &platform_key,
                            &signer,
                            slug,
                            limits,
                            at,
                        )
                    })
                    .collect::<Result<Vec<NewTenantRows>>>()
            })?;
            made.extend(part);
            progress(chunk.len() as u64);
        }
        let seeds: Vec<NewSeed<'_>> = made
            .iter()
            .map(|m| NewSeed {
                public_key: &m.account.public_key,
                kind: "account",
                seed: m.seed.expose(),
            })
            .collect();
        tx.put_seeds(&seeds)
            .await
            .map_err(crate::device::conflict)?;
        drop(seeds);
        let accounts: Vec<AccountRow> = made.iter().map(|m| m.account.clone()).collect();
        tx.insert_accounts(&accounts)
            .await
            .map_err(crate::device::conflict)?;
        drop(accounts);
        let rows: Vec<TenantRow> = made.iter().map(|m| m.tenant.clone()).collect();
        tx.insert_tenants(&rows)
            .await
            .map_err(crate::device::conflict)?;
        drop(rows);
        let outbox: Vec<(&str, &str)> = made
            .iter()
            .map(|m| (crate::TOPIC_ACCOUNT_UPDATE, m.account.public_key.as_str()))
            .collect();
        tx.enqueue_many(&outbox).await?;
        for batch in made.chunks(BATCH_EVENT_TENANTS) {
            let items: Vec<serde_json::Value> = batch
                .iter()
                .map(|m| {
                    json!({
                        "slug": m.tenant.slug,
                        "account": m.account.name,
                        "account_key": m.account.public_key,
                        "limits": m.limits,
                    })
                })
                .collect();
            tx.record(self.event(
                "tenant.add_batch",
                "tenant",
                &platform.name,
                json!({"platform": platform.name, "tenants": items}),
            ))
            .await?;
        }
        tx.commit().await?;
        report.added.extend(made.into_iter().map(|m| m.tenant.slug));
        Ok(report)
    }

    /// The rows of one new tenant: its account (key, spec, signed JWT) and tenant row.
    #[allow(clippy::too_many_arguments)]
    fn prepare_tenant(
        &self,
        op: &OperatorRow,
        settings: &TenantSettings,
        platform_key: &AccountPublicKey,
        signer: &KeyPair,
        slug: &TenantSlug,
        limits: &TenantLimits,
        at: i64,
    ) -> Result<NewTenantRows> {
        let mut spec = settings
            .tenant_spec(slug, limits, platform_key)
            .map_err(invalid)?;
        spec.normalize()?;
        let name = settings.account_name(slug).map_err(invalid)?;
        let kp = KeyPair::generate(KeyKind::Account);
        let key = kp.account_public_key()?;
        let mut claims = warden_core::compile_account(&key, &name, &spec);
        let jwt = self.encode_account(&name, &mut claims, signer)?;
        let account = AccountRow {
            public_key: key.to_string(),
            operator: op.public_key.clone(),
            name: name.to_string(),
            spec: to_json(&spec)?,
            jwt,
            created_at: at,
            updated_at: at,
        };
        let tenant = TenantRow {
            slug: slug.to_string(),
            account_key: account.public_key.clone(),
            state: ACTIVE.into(),
            limits: limits_text(limits)?,
            created_at: at,
            updated_at: at,
            suspended_at: None,
        };
        Ok(NewTenantRows {
            seed: kp.seed(),
            account,
            tenant,
            limits: limits.clone(),
        })
    }

    /// Every tenant, ordered by slug.
    pub async fn list_tenants(&self) -> Result<Vec<TenantView>> {
        self.need(Scope::Read, "listing tenants")?;
        let settings = self.trusted().tenant_settings().await?;
        let mut tx = self.store.begin().await?;
        let mut out = Vec::new();
        for row in tx.tenants(None).await? {
            out.push(self.tenant_view(&mut tx, &settings, row).await?);
        }
        Ok(out)
    }

    /// One tenant.
    pub async fn tenant(&self, slug: &str) -> Result<TenantView> {
        self.need(Scope::Read, "reading a tenant")?;
        let settings = self.trusted().tenant_settings().await?;
        let slug = settings.parse_slug(slug).map_err(invalid)?;
        let mut tx = self.store.begin().await?;
        let row = tenant_row(&mut tx, &slug).await?;
        self.tenant_view(&mut tx, &settings, row).await
    }

    /// Changes a tenant's limits; its account is re-signed and queued for the push (a
    /// suspended tenant keeps no connections until resumed with the new limits).
    pub async fn edit_tenant(&self, slug: &str, edit: &TenantLimitsEdit) -> Result<TenantView> {
        self.need(Scope::Write, "editing a tenant")?;
        if edit.is_empty() {
            return Err(OpsError::Invalid("nothing to change: give a limit".into()));
        }
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let settings = self.prepare(&mut tx, &op).await?;
        let slug = settings.parse_slug(slug).map_err(invalid)?;
        let mut row = tenant_row(&mut tx, &slug).await?;
        let before = limits_of(&row)?;
        let limits = before.apply(edit);
        limits.check(&settings.catalogue).map_err(invalid)?;
        let mut acc = account_of(&mut tx, &row).await?;
        let mut spec: AccountSpec = from_json(&acc.spec)?;
        spec.limits = limits.to_account_limits();
        if row.state == SUSPENDED {
            spec.limits.conn = 0;
            spec.limits.leaf = 0;
        }
        self.resign_account(&mut tx, &op, &mut acc, spec).await?;
        row.limits = limits_text(&limits)?;
        row.updated_at = now();
        tx.update_tenant(&row).await?;
        tx.record(self.event(
            "tenant.edit",
            "tenant",
            slug.as_str(),
            json!({"before": before, "after": limits}),
        ))
        .await?;
        let view = self.tenant_view(&mut tx, &settings, row).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Suspends a tenant: no connections or leaf nodes, every user issued so far revoked
    /// (which closes its connections once pushed). Keys and users are kept.
    pub async fn suspend_tenant(&self, slug: &str) -> Result<TenantView> {
        self.need(Scope::Write, "suspending a tenant")?;
        self.set_tenant_state(slug, true).await
    }

    /// Resumes a suspended tenant: its limits back, the `*` revocation lifted.
    pub async fn resume_tenant(&self, slug: &str) -> Result<TenantView> {
        self.need(Scope::Write, "resuming a tenant")?;
        self.set_tenant_state(slug, false).await
    }

    async fn set_tenant_state(&self, slug: &str, suspend: bool) -> Result<TenantView> {
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let settings = self.prepare(&mut tx, &op).await?;
        let slug = settings.parse_slug(slug).map_err(invalid)?;
        let mut row = tenant_row(&mut tx, &slug).await?;
        let (want, already) = if suspend {
            (SUSPENDED, "already suspended")
        } else {
            (ACTIVE, "not suspended")
        };
        if row.state == want {
            return Err(OpsError::Conflict(format!("tenant {slug} is {already}")));
        }
        let limits = limits_of(&row)?;
        let mut acc = account_of(&mut tx, &row).await?;
        let spec: AccountSpec = from_json(&acc.spec)?;
        let at = now();
        let spec = if suspend {
            TenantSettings::suspended(&spec, at)
        } else {
            TenantSettings::resumed(&spec, &limits)
        };
        self.resign_account(&mut tx, &op, &mut acc, spec).await?;
        row.state = want.into();
        row.updated_at = at;
        if suspend {
            row.suspended_at = Some(at);
        }
        tx.update_tenant(&row).await?;
        tx.record(self.event(
            if suspend {
                "tenant.suspend"
            } else {
                "tenant.resume"
            },
            "tenant",
            slug.as_str(),
            json!({"account": acc.name, "at": at}),
        ))
        .await?;
        let view = self.tenant_view(&mut tx, &settings, row).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Deletes a tenant: its account and users (deleted from the resolver on the next
    /// push). The platform account is not touched.
    pub async fn delete_tenant(&self, slug: &str) -> Result<TenantView> {
        self.need(Scope::Write, "deleting a tenant")?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let settings = self.prepare(&mut tx, &op).await?;
        let slug = settings.parse_slug(slug).map_err(invalid)?;
        let row = tenant_row(&mut tx, &slug).await?;
        let view = self.tenant_view(&mut tx, &settings, row.clone()).await?;
        let users = tx.users(&row.account_key).await?;
        for u in &users {
            tx.delete_seed(&u.public_key).await?;
        }
        tx.delete_tenant(slug.as_str()).await?;
        tx.delete_account(&row.account_key).await?;
        tx.delete_seed(&row.account_key).await?;
        tx.enqueue(TOPIC_ACCOUNT_DELETE, &row.account_key).await?;
        tx.record(self.event(
            "tenant.delete",
            "tenant",
            slug.as_str(),
            json!({"account_key": row.account_key, "users": view.users}),
        ))
        .await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Adds a user (a collector) to a tenant: publishes only catalogue subjects,
    /// subscribes only to its inbox. Returns its creds to an actor holding `creds`
    /// (`None` to one without: the user is added all the same).
    pub async fn add_tenant_user(
        &self,
        slug: &str,
        name: &str,
    ) -> Result<(TenantView, IssuedCreds)> {
        self.need(Scope::Write, "adding a tenant user")?;
        let name = UserName::parse_any_case(name)?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let settings = self.prepare(&mut tx, &op).await?;
        let slug = settings.parse_slug(slug).map_err(invalid)?;
        let row = tenant_row(&mut tx, &slug).await?;
        let acc = account_of(&mut tx, &row).await?;
        let spec = settings.tenant_user_spec().map_err(invalid)?;
        self.create_user(&mut tx, &acc, &name, spec).await?;
        let view = self.tenant_view(&mut tx, &settings, row).await?;
        tx.commit().await?;
        if !self.sees_creds() {
            return Ok((view, None));
        }
        let creds = self.creds_of(&acc.name, name.as_str()).await?;
        Ok((view, Some(creds)))
    }

    /// [`Self::add_tenant_user`] for a caller whose answer must carry the creds: refused
    /// before anything is written unless the actor holds `write` and `creds`.
    pub async fn add_tenant_user_with_creds(
        &self,
        slug: &str,
        name: &str,
    ) -> Result<(TenantView, Zeroizing<String>)> {
        self.need(Scope::Write, "adding a tenant user")?;
        self.need(Scope::Creds, "a new tenant user's creds")?;
        let (view, creds) = self.add_tenant_user(slug, name).await?;
        Ok((
            view,
            crate::device::issued(creds, "a new tenant user's creds")?,
        ))
    }

    /// The creds of a tenant's user.
    pub async fn tenant_creds(&self, slug: &str, name: &str) -> Result<Zeroizing<String>> {
        self.need(Scope::Creds, "a tenant user's creds")?;
        let view = self.trusted().tenant(slug).await?;
        self.creds_of(&view.account, name).await
    }

    /// The creds of the platform account's user.
    pub async fn platform_creds(&self) -> Result<Zeroizing<String>> {
        self.need(Scope::Creds, "the platform user's creds")?;
        let s = self.trusted().tenant_settings().await?;
        self.creds_of(&s.platform_account, &s.platform_user).await
    }

    async fn ensure_platform(
        &self,
        tx: &mut Tx<'_>,
        op: &OperatorRow,
        settings: &TenantSettings,
    ) -> Result<AccountRow> {
        let name = settings.platform_name().map_err(invalid)?;
        if let Some(row) = tx.account_by_name(&op.public_key, name.as_str()).await? {
            return Ok(row);
        }
        let spec = settings.platform_spec().map_err(invalid)?;
        let row = self
            .create_account(tx, op, KeyPair::generate(KeyKind::Account), &name, spec)
            .await?;
        let user = UserName::parse_any_case(&settings.platform_user)?;
        self.create_user(
            tx,
            &row,
            &user,
            settings.platform_user_spec().map_err(invalid)?,
        )
        .await?;
        // From now on the settings are the store's, whatever later defaults say.
        tx.set_meta(META_SETTINGS, &json!(settings).to_string())
            .await?;
        Ok(row)
    }

    async fn tenant_view(
        &self,
        tx: &mut Tx<'_>,
        settings: &TenantSettings,
        row: TenantRow,
    ) -> Result<TenantView> {
        let acc = account_of(tx, &row).await?;
        let users = tx
            .users(&row.account_key)
            .await?
            .into_iter()
            .map(|u| u.name)
            .collect();
        Ok(TenantView {
            prefix: format!("{}.", row.slug),
            limits: limits_of(&row)?,
            slug: row.slug,
            state: row.state,
            account: acc.name,
            account_key: row.account_key,
            platform_account: settings.platform_account.clone(),
            users,
            created_at: row.created_at,
            updated_at: row.updated_at,
            suspended_at: row.suspended_at,
        })
    }
}

fn settings_from(stored: Option<String>) -> Result<TenantSettings> {
    match stored {
        Some(v) => serde_json::from_str(&v)
            .map_err(|e| OpsError::Conflict(format!("stored tenant settings are unreadable: {e}"))),
        None => Ok(TenantSettings::default()),
    }
}

/// A user's allowed subjects after a catalogue change. A user that held the whole old
/// catalogue gets the whole new one; one that held a part of it (a narrowed collector)
/// keeps that part, minus what left the catalogue. Other entries are kept.
fn moved(
    have: &[nats_jwt::Subject],
    old: &[nats_jwt::Subject],
    new: &[nats_jwt::Subject],
) -> Vec<nats_jwt::Subject> {
    let others = have.iter().filter(|s| !old.contains(s) && !new.contains(s));
    if old.iter().all(|s| have.contains(s)) {
        new.iter().chain(others).cloned().collect()
    } else {
        have.iter()
            .filter(|s| !old.contains(s) || new.contains(s))
            .cloned()
            .collect()
    }
}

/// What a recompilation re-signed.
#[derive(Debug, Default)]
struct Recompiled {
    accounts: Vec<String>,
    users: usize,
}

/// What `warden tenant settings set` did (or would do, with `dry_run`).
#[derive(Clone, Debug, Serialize)]
pub struct SettingsReport {
    /// The settings now in force (or that would be).
    pub settings: TenantSettings,
    /// Whether they differ from the stored ones.
    pub changed: bool,
    /// Whether the subject catalogue changed (so accounts and users were recompiled).
    pub catalogue_changed: bool,
    /// Accounts re-signed and queued for the push (platform first).
    pub accounts: Vec<String>,
    /// Users re-signed (their holders need new creds for new subjects).
    pub users: usize,
    /// Nothing was stored.
    pub dry_run: bool,
}

async fn tenant_row(tx: &mut Tx<'_>, slug: &TenantSlug) -> Result<TenantRow> {
    tx.tenant(slug.as_str())
        .await?
        .ok_or_else(|| OpsError::NotFound(format!("tenant {slug}")))
}

async fn account_of(tx: &mut Tx<'_>, row: &TenantRow) -> Result<AccountRow> {
    tx.account(&row.account_key)
        .await?
        .ok_or_else(|| OpsError::NotFound(format!("account of tenant {}", row.slug)))
}

/// The settings `file` describes: its top-level keys over `current` (a key it gives
/// replaces that whole value); unknown keys refused.
pub fn settings_from_file(
    current: &TenantSettings,
    file: &std::path::Path,
    text: &str,
) -> std::result::Result<TenantSettings, String> {
    let json = match file.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("json") => true,
        Some(e) if e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml") => false,
        _ => text.trim_start().starts_with('{'),
    };
    let given: serde_json::Value = if json {
        serde_json::from_str(text).map_err(|e| format!("{} (JSON): {e}", file.display()))?
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| format!("{} (YAML): {e}", file.display()))?
    };
    let serde_json::Value::Object(given) = given else {
        return Err(format!(
            "{}: a mapping of settings is needed",
            file.display()
        ));
    };
    let mut merged = serde_json::to_value(current).map_err(|e| e.to_string())?;
    if let serde_json::Value::Object(m) = &mut merged {
        for (k, v) in given {
            m.insert(k, v);
        }
    }
    serde_json::from_value(merged).map_err(|e| format!("{}: {e}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::{moved, settings_from_file};
    use nats_jwt::Subject;
    use warden_core::tenant::TenantSettings;

    fn subjects(list: &[&str]) -> Vec<Subject> {
        list.iter().map(|s| Subject::new(s).unwrap()).collect()
    }

    #[test]
    fn permissions_follow_the_catalogue() {
        let old = subjects(&["events.>", "cmd.>"]);
        let new = subjects(&["events.>", "logs.>", "cmd.>"]);
        // A holder of the whole catalogue gets the whole new one, its extras kept.
        let full = subjects(&["events.>", "cmd.>", "extra.x"]);
        assert_eq!(
            moved(&full, &old, &new),
            subjects(&["events.>", "logs.>", "cmd.>", "extra.x"])
        );
        // A narrowed collector keeps its part: it gains nothing...
        let narrow = subjects(&["events.>"]);
        assert_eq!(moved(&narrow, &old, &new), narrow);
        // ... and loses what left the catalogue.
        let shrunk = subjects(&["logs.>", "cmd.>"]);
        assert_eq!(moved(&narrow, &old, &shrunk), subjects(&[]));
        assert_eq!(
            moved(&subjects(&["cmd.>", "extra.x"]), &old, &shrunk),
            subjects(&["cmd.>", "extra.x"])
        );
    }

    #[test]
    fn settings_files_merge_over_the_current_settings() {
        let current = TenantSettings {
            account_prefix: "CUST-".into(),
            ..TenantSettings::default()
        };
        let path = std::path::Path::new("s.yaml");
        let s = settings_from_file(&current, path, "catalogue:\n  publish: [logs.>]\n").unwrap();
        assert_eq!(s.account_prefix, "CUST-");
        assert_eq!(s.catalogue.publish, ["logs.>"]);
        // Inside `catalogue`, a key left out takes the default.
        assert_eq!(s.catalogue.requests, ["cmd.>"]);
        let json = settings_from_file(
            &current,
            std::path::Path::new("s.json"),
            r#"{"platform_user": "svc"}"#,
        )
        .unwrap();
        assert_eq!(
            (json.platform_user.as_str(), json.account_prefix.as_str()),
            ("svc", "CUST-")
        );
        for bad in [
            "catalog: {}\n",
            "- a\n",
            "default_limits: {conn: 1}\n",
            ": :",
        ] {
            assert!(settings_from_file(&current, path, bad).is_err(), "{bad:?}");
        }
    }
}
