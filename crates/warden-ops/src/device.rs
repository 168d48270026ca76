//! `warden device`: a fleet of devices, one account each, behind a shared hub
//! account (by default `EMDEVS`, each device's `EMDEV-<id>`), and the [`Warden`] methods every
//! surface (CLI, HTTP API, NATS service) calls: [`Warden::add_device`],
//! [`Warden::add_devices_bulk`], [`Warden::list_devices`], [`Warden::device`],
//! [`Warden::rotate_device`], [`Warden::revoke_device`], [`Warden::restore_device`].
//!
//! Each operation is one store transaction: device row, account/user rows, sealed
//! seeds, one ledger event, and outbox rows (`account.update`, `account.delete`,
//! [`TOPIC_DEVICE_STREAM`]). The relay pushes the accounts and, as the hub's JetStream
//! admin user, creates each device's stream `EMDEV_<id>` in the hub
//! ([`create_streams`]). The hub (its exports, a `backend` and a JetStream admin
//! user) is created with the first device.
//!
//! Devices cannot exhaust the hub: every device stream is created with the fleet's
//! `max_consumers`, `max_bytes` and `max_msgs` (defaults 4, 1M, 10,000), and the hub
//! account JWT carries bounded JetStream limits (defaults `mem_storage` 256M,
//! `disk_storage` 20G, `streams` 20,000, `consumer` 4 per stream, `max_ack_pending`
//! 1,000), both enforced by nats-server; see `warden_core::device`. On a JetStream
//! cluster device streams may be replicated (`stream_replicas`, R3): they are created
//! with that many replicas, existing ones scaled by an update, and the hub's limits are
//! its tier `R<n>`. A device reaches
//! only its own stream's info and consumer APIs, never `STREAM.UPDATE`, so it cannot
//! raise them. Adding a device past [`FleetSettings::capacity`] is refused. Once the
//! fleet has devices its names are fixed but its bounds may change: the hub is
//! re-signed and every device stream is updated by the relay, except `max_consumers`,
//! which nats-server (2.9–2.11) cannot change on an existing stream: the hub's
//! `consumer` limit, which nats-server applies to every stream, bounds those.
//!
//! Reads need `read`, changes `write`, a device's creds `creds`. Adding or rotating a
//! device by an actor without `creds` still happens, but its answer holds no creds
//! (`None`): they can be fetched later by someone who may.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use nats_jwt::{AccountPublicKey, KeyKind, KeyPair, UserPublicKey};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use warden_core::compile::refuse_blocking;
use warden_core::device::{
    DeviceId, DeviceMeta, DeviceState, FleetSettings, restore_activations, revoke_activations,
};
use warden_core::{AccountName, AccountSpec, UserName, UserSpec, compile_account, compile_user};
use warden_store::{
    AccountRow, DeviceRow, NewSeed, OperatorRow, OutboxRow, StoreError, Tx, UserRow, Zeroizing,
};

use crate::{
    OpsError, Record, Result, Scope, TOPIC_ACCOUNT_DELETE, TOPIC_ACCOUNT_UPDATE, Warden, from_json,
    now, parse_key, put_seed, to_json,
};

/// Outbox topic: a device's stream must exist in the hub (payload: [`StreamRequest`] JSON).
pub const TOPIC_DEVICE_STREAM: &str = "device.stream";

const META_FLEET: &str = "device_fleet";

/// A JetStream stream the relay creates in the hub for a device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRequest {
    /// Stream name (`EMDEV_<id>`).
    pub stream: String,
    /// Its subjects (`EMDEV.<id>.>`).
    pub subjects: Vec<String>,
}

/// A device as every surface shows it.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceView {
    /// Device id.
    pub id: String,
    /// `provisioned`, `active` or `revoked`.
    pub state: DeviceState,
    /// Its account's name (`EMDEV-<id>`).
    pub account: String,
    /// Its account's public key.
    pub account_key: String,
    /// Its current user's name.
    pub user: String,
    /// Its current user's public key.
    pub user_key: String,
    /// Messages to the device (`EMDEV.<id>.>`).
    pub to_device: String,
    /// Requests from the device (`EMDEVS.<id>.>`).
    pub from_device: String,
    /// Its stream in the hub.
    pub stream: String,
    /// The device-side JetStream API prefix.
    pub js_api_prefix: String,
    /// Metadata.
    pub meta: DeviceMeta,
    /// Created (unix seconds).
    pub created_at: i64,
    /// First connection observed.
    pub activated_at: Option<i64>,
    /// Last user key rotation.
    pub rotated_at: Option<i64>,
    /// Last revocation.
    pub revoked_at: Option<i64>,
    /// Last restore.
    pub restored_at: Option<i64>,
    /// Last change.
    pub updated_at: i64,
}

/// One device to add.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NewDevice {
    /// Device id.
    pub id: String,
    /// Metadata.
    #[serde(default)]
    pub meta: DeviceMeta,
}

/// What a bulk add did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BulkReport {
    /// Ids (device ids, tenant slugs) added now, in input order.
    pub added: Vec<String>,
    /// Ids that existed already (left as they are).
    pub skipped: Vec<String>,
}

/// Creds of the devices a bulk add created: (id, creds text).
pub type BulkCreds = Vec<(String, Zeroizing<String>)>;

/// Creds just issued, handed out only to an actor holding `creds` (`None` otherwise).
pub type IssuedCreds = Option<Zeroizing<String>>;

/// The creds an operation issued, for a caller that cannot go on without them (e.g. to
/// write them to a file): withheld creds are the missing `creds` scope.
pub fn issued<T>(creds: Option<T>, what: &str) -> Result<T> {
    creds.ok_or_else(|| OpsError::MissingScope {
        scope: Scope::Creds,
        what: what.to_string(),
    })
}

/// Signing material held for the length of one operation.
struct Signers {
    operator: KeyPair,
    hub: KeyPair,
    hub_key: AccountPublicKey,
}

impl Warden {
    /// The fleet's names and subjects (stored at the first device; defaults before).
    pub async fn fleet_settings(&self) -> Result<FleetSettings> {
        self.need(Scope::Read, "reading the fleet settings")?;
        match self.store.meta(META_FLEET).await? {
            Some(v) => serde_json::from_str(&v).map_err(|e| {
                OpsError::Conflict(format!("stored fleet settings are unreadable: {e}"))
            }),
            None => Ok(FleetSettings::default()),
        }
    }

    /// Sets the fleet's names, subjects and JetStream bounds. Once the fleet has
    /// devices only the bounds may change: the hub is re-signed with its new limits (flat,
    /// or the tier `R<n>` for replicated streams) and every device stream is queued for
    /// the relay to update (`max_bytes`, `max_msgs`, `num_replicas`; a new
    /// `device_max_consumers` applies to streams created afterwards).
    pub async fn set_fleet_settings(&self, settings: &FleetSettings) -> Result<FleetSettings> {
        self.need(Scope::Write, "changing the fleet settings")?;
        settings.check().map_err(invalid)?;
        let current = self.trusted().fleet_settings().await?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let ids = tx.device_ids().await?;
        if !ids.is_empty() {
            if !settings.same_names(&current) {
                return Err(OpsError::Conflict(
                    "the fleet has devices; its names and subjects can no longer change (its JetStream bounds can)"
                        .into(),
                ));
            }
            check_capacity(settings, ids.len(), 0)?;
            let mut hub = hub_row(&mut tx, &op, settings).await?;
            let mut hub_spec: AccountSpec = from_json(&hub.spec)?;
            settings.set_hub_jetstream(&mut hub_spec.limits);
            self.resign_account(&mut tx, &op, &mut hub, hub_spec)
                .await?;
            if settings.stream_limits() != current.stream_limits() {
                for id in &ids {
                    let id = DeviceId::parse(id)
                        .map_err(|e| OpsError::Conflict(format!("stored device id: {e}")))?;
                    tx.enqueue(TOPIC_DEVICE_STREAM, &stream_request(settings, &id))
                        .await?;
                }
            }
        }
        tx.set_meta(META_FLEET, &json!(settings).to_string())
            .await?;
        tx.record(self.event(
            "device.fleet",
            "fleet",
            &settings.hub_account,
            json!(settings),
        ))
        .await?;
        tx.commit().await?;
        Ok(settings.clone())
    }

    /// Adds one device: its account (importing its slice of the hub) and user; the
    /// hub is created with the first device. Returns the view and, for an actor holding
    /// `creds`, the creds (`None` for one without: the device is added all the same).
    pub async fn add_device(
        &self,
        id: &str,
        meta: DeviceMeta,
    ) -> Result<(DeviceView, IssuedCreds)> {
        self.need(Scope::Write, "adding a device")?;
        let id = DeviceId::parse(id).map_err(invalid)?;
        let fleet = self.trusted().fleet_settings().await?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        if tx.device(id.as_str()).await?.is_some() {
            return Err(OpsError::Conflict(format!("device {id} already exists")));
        }
        check_capacity(&fleet, tx.device_ids().await?.len(), 1)?;
        let signers = self.ensure_hub(&mut tx, &op, &fleet).await?;
        let new = self.prepare_device(&op, &fleet, &signers, &id, meta, now())?;
        write_devices(&mut tx, std::slice::from_ref(&new), &fleet).await?;
        enqueue_devices(&mut tx, std::slice::from_ref(&new)).await?;
        tx.record(self.event("device.add", "device", id.as_str(), device_summary(&new)))
            .await?;
        tx.commit().await?;
        let Provisioned { device, creds, .. } = new;
        Ok((
            device_view(device, &fleet)?,
            self.sees_creds().then_some(creds),
        ))
    }

    /// [`Self::add_device`] for a caller whose answer must carry the creds: refused before
    /// anything is written unless the actor holds `write` and `creds`.
    pub async fn add_device_with_creds(
        &self,
        id: &str,
        meta: DeviceMeta,
    ) -> Result<(DeviceView, Zeroizing<String>)> {
        self.need(Scope::Write, "adding a device")?;
        self.need(Scope::Creds, "a new device's creds")?;
        let (view, creds) = self.add_device(id, meta).await?;
        Ok((view, issued(creds, "a new device's creds")?))
    }

    /// Adds many devices in one transaction; ids that exist are skipped (so a re-run
    /// adds only what is missing, and one that finds them all changes nothing). Every
    /// id is validated first: one bad id changes nothing.
    ///
    /// Keys, activations and JWTs are made on every core (rayon), in chunks whose
    /// results keep the input order, so the report, the creds and the rows come out
    /// in the order given. Each chunk's rows are written with multi-row statements
    /// while the next chunk is made, the outbox rows at the end (every account, then
    /// every stream), and the ledger gets one `device.add_batch` event per
    /// [`BATCH_EVENT_DEVICES`] devices (fewer when their metadata is large) listing each
    /// device's id, account and user keys and metadata. `progress` is called as devices are made and
    /// skipped. The creds of the devices added now only for an actor holding `creds`
    /// (`None` for one without).
    pub async fn add_devices_bulk(
        &self,
        devices: &[NewDevice],
        progress: impl Fn(u64),
    ) -> Result<(BulkReport, Option<BulkCreds>)> {
        self.need(Scope::Write, "adding devices")?;
        let ids = check_new_devices(devices)?;
        let fleet = self.trusted().fleet_settings().await?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let existing: BTreeSet<String> = tx.device_ids().await?.into_iter().collect();
        let mut report = BulkReport::default();
        let mut todo = Vec::new();
        for (d, id) in devices.iter().zip(ids) {
            if existing.contains(id.as_str()) {
                report.skipped.push(id.to_string());
            } else {
                todo.push((id, d.meta.clone()));
            }
        }
        progress(report.skipped.len() as u64);
        if todo.is_empty() {
            // Nothing to add: nothing is written, not even the hub.
            tx.rollback().await?;
            return Ok((report, self.sees_creds().then_some(Vec::new())));
        }
        check_capacity(&fleet, existing.len(), todo.len())?;
        let signers = Arc::new(self.ensure_hub(&mut tx, &op, &fleet).await?);
        let at = now();
        let began = std::time::Instant::now();
        let mut made: Vec<Provisioned> = Vec::with_capacity(todo.len());
        // made[..stored] are written. While rayon makes one chunk, what was made before
        // it is written, so the cores sign while SQLite works.
        let mut stored = 0;
        let mut waited = Duration::ZERO;
        let mut todo = todo.into_iter();
        let mut next_chunk =
            || -> Vec<(DeviceId, DeviceMeta)> { todo.by_ref().take(PREPARE_CHUNK).collect() };
        let mut chunk = next_chunk();
        while !chunk.is_empty() {
            let preparing = self.prepare_devices(&op, &fleet, &signers, chunk, at);
            let (part, written) = tokio::join!(preparing, async {
                let t = std::time::Instant::now();
                let r = write_devices(&mut tx, &made[stored..], &fleet).await;
                (r, t.elapsed())
            });
            written.0?;
            waited += written.1;
            stored = made.len();
            let part = part?;
            progress(part.len() as u64);
            made.extend(part);
            chunk = next_chunk();
        }
        let t = std::time::Instant::now();
        write_devices(&mut tx, &made[stored..], &fleet).await?;
        enqueue_devices(&mut tx, &made).await?;
        waited += t.elapsed();
        for event in batch_events(&made) {
            tx.record(self.event("device.add_batch", "fleet", &fleet.hub_account, event))
                .await?;
        }
        let committing = std::time::Instant::now();
        tx.commit().await?;
        tracing::debug!(
            devices = made.len(),
            total_ms = began.elapsed().as_millis() as u64,
            writing_ms = waited.as_millis() as u64,
            commit_ms = committing.elapsed().as_millis() as u64,
            "devices added in bulk"
        );
        let mut creds = Vec::with_capacity(made.len());
        for p in made {
            report.added.push(p.device.id);
            creds.push((report.added[report.added.len() - 1].clone(), p.creds));
        }
        Ok((report, self.sees_creds().then_some(creds)))
    }

    /// Every device (or those in `state`), ordered by id.
    pub async fn list_devices(&self, state: Option<DeviceState>) -> Result<Vec<DeviceView>> {
        self.need(Scope::Read, "listing devices")?;
        let fleet = self.trusted().fleet_settings().await?;
        self.store
            .devices(state.map(DeviceState::as_str))
            .await?
            .into_iter()
            .map(|r| device_view(r, &fleet))
            .collect()
    }

    /// One device.
    pub async fn device(&self, id: &str) -> Result<DeviceView> {
        self.need(Scope::Read, "reading a device")?;
        let id = DeviceId::parse(id).map_err(invalid)?;
        let fleet = self.trusted().fleet_settings().await?;
        let row = self
            .store
            .device(id.as_str())
            .await?
            .ok_or_else(|| OpsError::NotFound(format!("device {id}")))?;
        device_view(row, &fleet)
    }

    /// The creds of a device's current user.
    pub async fn device_creds(&self, id: &str) -> Result<Zeroizing<String>> {
        self.need(Scope::Creds, "a device's creds")?;
        let view = self.trusted().device(id).await?;
        self.creds_of(&view.account, &view.user).await
    }

    /// Gives a device a new user key; the old one is revoked in the device account
    /// (its connections are closed once the account update is pushed). Returns the
    /// new creds to an actor holding `creds` (`None` to one without).
    pub async fn rotate_device(&self, id: &str) -> Result<(DeviceView, IssuedCreds)> {
        self.need(Scope::Write, "rotating a device's key")?;
        let id = DeviceId::parse(id).map_err(invalid)?;
        let fleet = self.trusted().fleet_settings().await?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let mut dev = device_row(&mut tx, &id).await?;
        if dev.state == DeviceState::Revoked.as_str() {
            return Err(OpsError::Conflict(format!(
                "device {id} is revoked; restore it first"
            )));
        }
        let mut acc = account_of(&mut tx, &dev).await?;
        let account_kp = KeyPair::from_seed(&tx.seed(&acc.public_key).await?)?;
        let old = dev.user_key.clone();
        tx.delete_user(&old).await?;
        tx.delete_seed(&old).await?;
        let (user, creds) = issue_user(&mut tx, &fleet, &acc, &account_kp, &id).await?;
        let at = self.revoke_in_account(&mut tx, &op, &mut acc, &old).await?;
        dev.user_key = user.public_key.clone();
        dev.rotated_at = Some(at);
        dev.updated_at = at;
        tx.update_device(&dev).await?;
        tx.record(self.event(
            "device.rotate",
            "device",
            &dev.id,
            json!({"old_user": old, "new_user": user.public_key}),
        ))
        .await?;
        tx.commit().await?;
        Ok((
            device_view(dev, &fleet)?,
            self.sees_creds().then_some(creds),
        ))
    }

    /// [`Self::rotate_device`] for a caller whose answer must carry the new creds: refused
    /// before anything is written unless the actor holds `write` and `creds`.
    pub async fn rotate_device_with_creds(
        &self,
        id: &str,
    ) -> Result<(DeviceView, Zeroizing<String>)> {
        self.need(Scope::Write, "rotating a device's key")?;
        self.need(Scope::Creds, "a device's new creds")?;
        let (view, creds) = self.rotate_device(id).await?;
        Ok((view, issued(creds, "a device's new creds")?))
    }

    /// Cuts a device off: every user of its account revoked (`*`), its activations
    /// revoked in the hub's exports, its account deleted from the resolver (which
    /// closes its connections). Its stream and keys are kept for [`Self::restore_device`].
    pub async fn revoke_device(&self, id: &str) -> Result<DeviceView> {
        self.need(Scope::Write, "revoking a device")?;
        let id = DeviceId::parse(id).map_err(invalid)?;
        let fleet = self.trusted().fleet_settings().await?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let mut dev = device_row(&mut tx, &id).await?;
        if dev.state == DeviceState::Revoked.as_str() {
            return Err(OpsError::Conflict(format!(
                "device {id} is already revoked"
            )));
        }
        let at = now();
        let mut acc = account_of(&mut tx, &dev).await?;
        let mut spec: AccountSpec = from_json(&acc.spec)?;
        spec.revocations.insert("*".into(), at);
        self.resign_account(&mut tx, &op, &mut acc, spec).await?;
        let mut hub = hub_row(&mut tx, &op, &fleet).await?;
        let mut hub_spec: AccountSpec = from_json(&hub.spec)?;
        let device_key: AccountPublicKey = parse_key(&dev.account_key)?;
        revoke_activations(&mut hub_spec, &device_key, at);
        self.resign_account(&mut tx, &op, &mut hub, hub_spec)
            .await?;
        tx.enqueue(TOPIC_ACCOUNT_DELETE, &dev.account_key).await?;
        dev.state = DeviceState::Revoked.as_str().into();
        dev.revoked_at = Some(at);
        dev.updated_at = at;
        tx.update_device(&dev).await?;
        tx.record(self.event(
            "device.revoke",
            "device",
            &dev.id,
            json!({"account": dev.account_key, "revoked_at": at}),
        ))
        .await?;
        tx.commit().await?;
        device_view(dev, &fleet)
    }

    /// Re-admits a revoked device: lifts the `*` revocation and the hub's activation
    /// revocations and pushes its account again. Its existing creds work again
    /// (unless rotated away before).
    pub async fn restore_device(&self, id: &str) -> Result<DeviceView> {
        self.need(Scope::Write, "restoring a device")?;
        let id = DeviceId::parse(id).map_err(invalid)?;
        let fleet = self.trusted().fleet_settings().await?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let mut dev = device_row(&mut tx, &id).await?;
        if dev.state != DeviceState::Revoked.as_str() {
            return Err(OpsError::Conflict(format!("device {id} is not revoked")));
        }
        let mut acc = account_of(&mut tx, &dev).await?;
        let mut spec: AccountSpec = from_json(&acc.spec)?;
        spec.revocations.remove("*");
        self.resign_account(&mut tx, &op, &mut acc, spec).await?;
        let mut hub = hub_row(&mut tx, &op, &fleet).await?;
        let mut hub_spec: AccountSpec = from_json(&hub.spec)?;
        restore_activations(&mut hub_spec, &parse_key(&dev.account_key)?);
        self.resign_account(&mut tx, &op, &mut hub, hub_spec)
            .await?;
        let at = now();
        dev.state = if dev.activated_at.is_some() {
            DeviceState::Active
        } else {
            DeviceState::Provisioned
        }
        .as_str()
        .into();
        dev.restored_at = Some(at);
        dev.updated_at = at;
        tx.update_device(&dev).await?;
        tx.record(self.event(
            "device.restore",
            "device",
            &dev.id,
            json!({"account": dev.account_key}),
        ))
        .await?;
        tx.commit().await?;
        device_view(dev, &fleet)
    }

    /// The hub account (with its exports and users), created when missing; returns
    /// the keys that sign device accounts and activations.
    async fn ensure_hub(
        &self,
        tx: &mut Tx<'_>,
        op: &OperatorRow,
        fleet: &FleetSettings,
    ) -> Result<Signers> {
        fleet.check().map_err(invalid)?;
        let name = fleet.hub_name().map_err(invalid)?;
        let hub = match tx.account_by_name(&op.public_key, name.as_str()).await? {
            Some(row) => row,
            None => {
                let spec = fleet.hub_spec().map_err(invalid)?;
                let row = self
                    .create_account(tx, op, KeyPair::generate(KeyKind::Account), &name, spec)
                    .await?;
                for (user, spec) in [
                    (&fleet.backend_user, fleet.backend_user_spec()),
                    (&fleet.admin_user, fleet.admin_user_spec()),
                ] {
                    let user = UserName::parse_any_case(user)?;
                    self.create_user(tx, &row, &user, spec.map_err(invalid)?)
                        .await?;
                }
                tx.set_meta(META_FLEET, &json!(fleet).to_string()).await?;
                row
            }
        };
        Ok(Signers {
            operator: KeyPair::from_seed(&tx.seed(&op.signing_key).await?)?,
            hub: KeyPair::from_seed(&tx.seed(&hub.public_key).await?)?,
            hub_key: parse_key(&hub.public_key)?,
        })
    }

    /// Makes one device without touching the store: its account key and its
    /// activations for the hub's exports (signed by the hub), its account JWT (signed
    /// by the operator), its user key and JWT (signed by the device account) and creds.
    /// Pure CPU work, so bulk adds run it on every core.
    fn prepare_device(
        &self,
        op: &OperatorRow,
        fleet: &FleetSettings,
        signers: &Signers,
        id: &DeviceId,
        meta: DeviceMeta,
        at: i64,
    ) -> Result<Provisioned> {
        let name = fleet.account_name(id).map_err(invalid)?;
        let account_kp = KeyPair::generate(KeyKind::Account);
        let account_key = account_kp.account_public_key()?;
        let mut imports = Vec::new();
        for (mut import, mut activation) in fleet
            .device_imports(id, &account_key, &signers.hub_key)
            .map_err(invalid)?
        {
            import.token = Some(activation.encode(&signers.hub)?);
            imports.push(import);
        }
        let spec = fleet.device_account_spec(id, imports);
        let mut claims = compile_account(&account_key, &name, &spec);
        let jwt = self.encode_account(&name, &mut claims, &signers.operator)?;
        let account = AccountRow {
            public_key: account_key.to_string(),
            operator: op.public_key.clone(),
            name: name.to_string(),
            spec: to_json(&spec)?,
            jwt,
            created_at: at,
            updated_at: at,
        };

        let user_kp = KeyPair::generate(KeyKind::User);
        let user_key: UserPublicKey = user_kp.user_public_key()?;
        let user_name = UserName::parse_any_case(&fleet.device_user)?;
        let user_spec: UserSpec = fleet.device_user_spec(id).map_err(invalid)?;
        let mut user_claims = compile_user(&user_key, &user_name, &user_spec, None);
        refuse_blocking(user_claims.validate(now()))?;
        let user_jwt = user_claims.encode(&account_kp)?;
        let user_seed = user_kp.seed();
        let creds = nats_jwt::format_user_creds(&user_jwt, &user_seed)
            .map_err(|e| OpsError::Jwt(e.to_string()))?;
        let mut user = crate::new_user_row(
            &account.public_key,
            &user_key.to_string(),
            &user_name.to_string(),
            &user_spec,
            user_jwt,
        )?;
        user.created_at = at;
        user.updated_at = at;

        let device = DeviceRow {
            id: id.to_string(),
            account_key: account.public_key.clone(),
            user_key: user.public_key.clone(),
            state: DeviceState::Provisioned.as_str().into(),
            meta: serde_json::to_string(&meta)
                .map_err(|e| OpsError::Invalid(format!("device metadata: {e}")))?,
            created_at: at,
            activated_at: None,
            rotated_at: None,
            revoked_at: None,
            restored_at: None,
            updated_at: at,
        };
        Ok(Provisioned {
            stream: stream_request(fleet, id),
            account_seed: account_kp.seed(),
            user_seed,
            device,
            account,
            user,
            creds: Zeroizing::new(creds),
            meta,
        })
    }

    /// Makes `chunk`'s devices on every core ([`make_on_cores`]), so the caller can write
    /// the chunk before this one meanwhile; the results keep the chunk's order.
    fn prepare_devices(
        &self,
        op: &OperatorRow,
        fleet: &FleetSettings,
        signers: &Arc<Signers>,
        chunk: Vec<(DeviceId, DeviceMeta)>,
        at: i64,
    ) -> impl Future<Output = Result<Vec<Provisioned>>> + use<> {
        let (this, op, fleet, signers) = (self.clone(), op.clone(), fleet.clone(), signers.clone());
        make_on_cores(chunk, "making devices", move |(id, meta)| {
            this.prepare_device(&op, &fleet, &signers, &id, meta, at)
        })
    }
}

/// Devices whose keys and JWTs one parallel step makes before progress is reported.
pub(crate) const PREPARE_CHUNK: usize = 256;

/// Devices one `device.add_batch` ledger event lists at most. Each event is also
/// published on the change stream, so it stays far below NATS's default 1 MB payload.
pub const BATCH_EVENT_DEVICES: usize = 1_000;

/// Bytes of device summaries after which a `device.add_batch` event is closed early
/// (devices with large metadata).
const BATCH_EVENT_BYTES: usize = 256 * 1024;

/// One device made by [`Warden::prepare_device`], ready to be written.
struct Provisioned {
    device: DeviceRow,
    account: AccountRow,
    user: UserRow,
    account_seed: nats_jwt::Seed,
    user_seed: nats_jwt::Seed,
    creds: Zeroizing<String>,
    stream: String,
    meta: DeviceMeta,
}

/// What the ledger keeps of one added device: enough to check the store against it
/// (its account and user keys), never a secret.
fn device_summary(p: &Provisioned) -> serde_json::Value {
    json!({
        "id": p.device.id,
        "account": p.account.name,
        "account_key": p.account.public_key,
        "user_key": p.user.public_key,
        "meta": p.meta,
    })
}

/// The summaries of the `device.add_batch` events for `made`, in order: at most
/// [`BATCH_EVENT_DEVICES`] devices or about [`BATCH_EVENT_BYTES`] bytes each.
fn batch_events(made: &[Provisioned]) -> Vec<serde_json::Value> {
    fn close(devices: &mut Vec<serde_json::Value>, events: &mut Vec<serde_json::Value>) {
        if !devices.is_empty() {
            let list = std::mem::take(devices);
            events.push(json!({"count": list.len(), "devices": list}));
        }
    }
    let mut events = Vec::new();
    let mut devices = Vec::new();
    let mut bytes = 0;
    for p in made {
        let summary = device_summary(p);
        bytes += summary.to_string().len();
        devices.push(summary);
        if devices.len() >= BATCH_EVENT_DEVICES || bytes >= BATCH_EVENT_BYTES {
            close(&mut devices, &mut events);
            bytes = 0;
        }
    }
    close(&mut devices, &mut events);
    events
}

/// Writes made devices: sealed seeds, accounts, users, device rows (multi-row
/// statements). A taken name, key or id refuses the whole batch.
async fn write_devices(tx: &mut Tx<'_>, made: &[Provisioned], fleet: &FleetSettings) -> Result<()> {
    if made.is_empty() {
        return Ok(());
    }
    let mut seeds = Vec::with_capacity(made.len() * 2);
    for p in made {
        seeds.push(NewSeed {
            public_key: &p.account.public_key,
            kind: "account",
            seed: p.account_seed.expose(),
        });
        seeds.push(NewSeed {
            public_key: &p.user.public_key,
            kind: "user",
            seed: p.user_seed.expose(),
        });
    }
    tx.put_seeds(&seeds).await.map_err(conflict)?;
    let accounts: Vec<AccountRow> = made.iter().map(|p| p.account.clone()).collect();
    tx.insert_accounts(&accounts).await.map_err(conflict)?;
    drop(accounts);
    let users: Vec<UserRow> = made.iter().map(|p| p.user.clone()).collect();
    tx.insert_users(&users).await.map_err(conflict)?;
    drop(users);
    let rows: Vec<DeviceRow> = made.iter().map(|p| p.device.clone()).collect();
    tx.insert_devices(&rows).await.map_err(|e| match e {
        StoreError::Conflict { what } => OpsError::Conflict(format!(
            "{what} already exists (in the fleet {})",
            fleet.hub_account
        )),
        other => other.into(),
    })?;
    Ok(())
}

/// The outbox rows asking the relay to push each made device's account, then to create
/// each stream: every account before any stream, so the relay's first batches are pushes.
async fn enqueue_devices(tx: &mut Tx<'_>, made: &[Provisioned]) -> Result<()> {
    let mut outbox: Vec<(&str, &str)> = made
        .iter()
        .map(|p| (TOPIC_ACCOUNT_UPDATE, p.account.public_key.as_str()))
        .collect();
    outbox.extend(
        made.iter()
            .map(|p| (TOPIC_DEVICE_STREAM, p.stream.as_str())),
    );
    tx.enqueue_many(&outbox).await?;
    Ok(())
}

/// A store conflict as the operation's conflict (its message names the row).
pub(crate) fn conflict(e: StoreError) -> OpsError {
    match e {
        StoreError::Conflict { .. } => OpsError::Conflict(e.to_string()),
        other => other.into(),
    }
}

/// Runs CPU-bound `work` (which fans out on rayon's pool). On a multi-threaded tokio
/// runtime the calling worker is handed back first (`block_in_place`), so the server's
/// other tasks keep running meanwhile; elsewhere (a current-thread runtime, a test) it
/// simply runs.
pub(crate) fn on_all_cores<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// Runs `make` on every item on rayon's pool (one thread per core), off the async
/// runtime's threads, so the caller's other work goes on meanwhile; the results come back
/// in the items' order, so what is written (and the ledger) does not depend on which core
/// finished first. The first error wins; `what` names the work if a worker fails.
pub(crate) async fn make_on_cores<I, T, F>(items: I, what: &'static str, make: F) -> Result<Vec<T>>
where
    I: IntoParallelIterator + Send + 'static,
    F: Fn(I::Item) -> Result<T> + Send + Sync + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(move || items.into_par_iter().map(make).collect::<Result<Vec<T>>>())
        .await
        .map_err(|e| OpsError::Jwt(format!("{what}: {e}")))?
}

fn invalid(e: impl std::fmt::Display) -> OpsError {
    OpsError::Invalid(e.to_string())
}

/// The outbox payload asking the relay for a device's stream.
fn stream_request(fleet: &FleetSettings, id: &DeviceId) -> String {
    json!(StreamRequest {
        stream: fleet.stream_name(id),
        subjects: vec![fleet.to_device_subject(id)],
    })
    .to_string()
}

/// Refuses a fleet of `existing + adding` devices the hub cannot hold (nats-server
/// would refuse their streams: too many, or more bytes reserved than the hub has).
fn check_capacity(fleet: &FleetSettings, existing: usize, adding: usize) -> Result<()> {
    let capacity = fleet.capacity();
    let total = i64::try_from(existing.saturating_add(adding)).unwrap_or(i64::MAX);
    if total > capacity {
        return Err(OpsError::Conflict(format!(
            "the fleet would have {total} devices but its hub holds {capacity} (hub_max_streams {}, hub_disk_storage {} bytes / (device_max_bytes {} bytes × stream_replicas {})): raise those fleet settings first",
            fleet.hub_max_streams,
            fleet.hub_disk_storage,
            fleet.device_max_bytes,
            fleet.stream_replicas
        )));
    }
    Ok(())
}

/// Validates ids (and that none repeats) before anything is written.
fn check_new_devices(devices: &[NewDevice]) -> Result<Vec<DeviceId>> {
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    let mut ids = Vec::new();
    for (i, d) in devices.iter().enumerate() {
        match DeviceId::parse(&d.id) {
            Ok(id) => {
                if !seen.insert(id.clone()) {
                    problems.push(format!("entry {}: device id {id:?} appears twice", i + 1));
                }
                ids.push(id);
            }
            Err(e) => problems.push(format!("entry {}: {e}", i + 1)),
        }
    }
    if devices.is_empty() {
        problems.push("no devices given".into());
    }
    if problems.is_empty() {
        Ok(ids)
    } else {
        let shown: Vec<String> = problems.iter().take(10).cloned().collect();
        let more = problems.len().saturating_sub(shown.len());
        let mut msg = shown.join("; ");
        if more > 0 {
            msg += &format!("; and {more} more");
        }
        Err(OpsError::Invalid(msg))
    }
}

/// Issues the device user (signed by the device account) and returns its creds.
async fn issue_user(
    tx: &mut Tx<'_>,
    fleet: &FleetSettings,
    acc: &AccountRow,
    account_kp: &KeyPair,
    id: &DeviceId,
) -> Result<(UserRow, Zeroizing<String>)> {
    let user_kp = KeyPair::generate(KeyKind::User);
    let user_key: UserPublicKey = user_kp.user_public_key()?;
    let user_name = UserName::parse_any_case(&fleet.device_user)?;
    let spec: UserSpec = fleet.device_user_spec(id).map_err(invalid)?;
    let mut claims = compile_user(&user_key, &user_name, &spec, None);
    refuse_blocking(claims.validate(now()))?;
    let jwt = claims.encode(account_kp)?;
    put_seed(tx, &user_kp, "user").await?;
    let seed = user_kp.seed();
    let creds =
        nats_jwt::format_user_creds(&jwt, &seed).map_err(|e| OpsError::Jwt(e.to_string()))?;
    let row = crate::new_user_row(
        &acc.public_key,
        &user_key.to_string(),
        &user_name.to_string(),
        &spec,
        jwt,
    )?;
    tx.insert_user(&row).await?;
    Ok((row, Zeroizing::new(creds)))
}

async fn device_row(tx: &mut Tx<'_>, id: &DeviceId) -> Result<DeviceRow> {
    tx.device(id.as_str())
        .await?
        .ok_or_else(|| OpsError::NotFound(format!("device {id}")))
}

async fn account_of(tx: &mut Tx<'_>, dev: &DeviceRow) -> Result<AccountRow> {
    tx.account(&dev.account_key)
        .await?
        .ok_or_else(|| OpsError::Conflict(format!("the account of device {} is missing", dev.id)))
}

async fn hub_row(tx: &mut Tx<'_>, op: &OperatorRow, fleet: &FleetSettings) -> Result<AccountRow> {
    let name = AccountName::parse_any_case(&fleet.hub_account)?;
    tx.account_by_name(&op.public_key, name.as_str())
        .await?
        .ok_or_else(|| OpsError::Conflict(format!("the hub account {name} is missing")))
}

fn device_view(row: DeviceRow, fleet: &FleetSettings) -> Result<DeviceView> {
    let id = DeviceId::parse(&row.id)
        .map_err(|e| OpsError::Conflict(format!("stored device id: {e}")))?;
    let state = DeviceState::parse(&row.state)
        .ok_or_else(|| OpsError::Conflict(format!("stored device state {:?}", row.state)))?;
    let meta: DeviceMeta = serde_json::from_str(&row.meta)
        .map_err(|e| OpsError::Conflict(format!("stored device metadata: {e}")))?;
    Ok(DeviceView {
        account: fleet.account_name(&id).map_err(invalid)?.to_string(),
        user: fleet.device_user.clone(),
        to_device: fleet.to_device_subject(&id),
        from_device: fleet.from_device_subject(&id),
        stream: fleet.stream_name(&id),
        js_api_prefix: fleet.js_api_prefix.clone(),
        id: row.id,
        state,
        account_key: row.account_key,
        user_key: row.user_key,
        meta,
        created_at: row.created_at,
        activated_at: row.activated_at,
        rotated_at: row.rotated_at,
        revoked_at: row.revoked_at,
        restored_at: row.restored_at,
        updated_at: row.updated_at,
    })
}

/// Creates the device streams of `rows` in the hub, as the hub's JetStream admin
/// user (called by the relay after it pushed the batch's accounts, so the hub has
/// JetStream), bounded by the fleet's current [`FleetSettings::stream_limits`] and with
/// its `stream_replicas`. An existing stream counts as created once its `max_bytes`,
/// `max_msgs` and replicas are the fleet's.
pub async fn create_streams(
    warden: &Warden,
    nats_url: &str,
    timeout: Duration,
    rows: &[&OutboxRow],
) -> (Vec<(i64, String)>, Vec<(OutboxRow, String)>) {
    let mut delivered = Vec::new();
    let mut failed = Vec::new();
    if rows.is_empty() {
        return (delivered, failed);
    }
    let (client, limits) = match stream_admin(warden, nats_url, timeout).await {
        Ok(c) => c,
        Err(e) => {
            let msg = format!("{e:#}");
            failed.extend(rows.iter().map(|r| ((*r).clone(), msg.clone())));
            return (delivered, failed);
        }
    };
    let js = async_nats::jetstream::new(client.clone());
    type Outcome = (OutboxRow, std::result::Result<(), String>);
    // Owned, boxed futures: each creates one stream.
    let jobs: Vec<futures::future::BoxFuture<'static, Outcome>> = rows
        .iter()
        .map(|r| {
            let js = js.clone();
            let row: OutboxRow = (*r).clone();
            Box::pin(async move {
                let outcome = match serde_json::from_str::<StreamRequest>(&row.payload) {
                    Ok(req) => {
                        let cfg = async_nats::jetstream::stream::Config {
                            name: req.stream.clone(),
                            subjects: req.subjects.clone(),
                            max_consumers: i32::try_from(limits.max_consumers).unwrap_or(i32::MAX),
                            max_bytes: limits.max_bytes,
                            max_messages: limits.max_msgs,
                            num_replicas: usize::from(limits.replicas.max(1)),
                            ..Default::default()
                        };
                        match tokio::time::timeout(timeout, ensure_stream(&js, cfg)).await {
                            Ok(Ok(_)) => Ok(()),
                            Ok(Err(e)) => Err(format!("stream {}: {e}", req.stream)),
                            Err(_) => Err(format!("stream {}: timed out", req.stream)),
                        }
                    }
                    Err(e) => Err(format!("bad stream request: {e}")),
                };
                (row, outcome)
            }) as futures::future::BoxFuture<'static, Outcome>
        })
        .collect();
    let results: Vec<Outcome> = futures::stream::iter(jobs)
        .buffer_unordered(32)
        .collect()
        .await;
    for (row, outcome) in results {
        match outcome {
            Ok(()) => delivered.push((row.id, "stream ready".to_string())),
            Err(e) => failed.push((row, e)),
        }
    }
    drop(client);
    (delivered, failed)
}

/// Creates a device stream, or brings an existing one's `max_bytes`, `max_msgs` and
/// replicas to `cfg`'s. Its `max_consumers` is left as it is: nats-server 2.9–2.11 refuse
/// to change it, and the hub's `consumer` limit bounds every stream anyway. nats-server
/// (2.9.10 and 2.15) scales a stream's replicas up or down by an update; one asking for
/// more replicas than the JetStream cluster has servers is refused by the server ("no
/// suitable peers for placement"; "replicas > 1 not supported in non-clustered mode"
/// without a cluster), and that answer is the outbox row's failure.
async fn ensure_stream(
    js: &async_nats::jetstream::Context,
    cfg: async_nats::jetstream::stream::Config,
) -> std::result::Result<(), String> {
    let stream = js.get_or_create_stream(cfg.clone()).await.map_err(|e| {
        let text = e.to_string();
        if cfg.num_replicas > 1 {
            format!(
                "{text} (the fleet's stream_replicas is {})",
                cfg.num_replicas
            )
        } else {
            text
        }
    })?;
    let have = &stream.cached_info().config;
    // nats-server reports an R1 stream created without a replica count as 1.
    let replicas = |n: usize| n.max(1);
    if have.max_bytes == cfg.max_bytes
        && have.max_messages == cfg.max_messages
        && replicas(have.num_replicas) == replicas(cfg.num_replicas)
    {
        return Ok(());
    }
    let mut update = have.clone();
    update.max_bytes = cfg.max_bytes;
    update.max_messages = cfg.max_messages;
    update.num_replicas = replicas(cfg.num_replicas);
    js.update_stream(&update).await.map(drop).map_err(|e| {
        if replicas(have.num_replicas) == replicas(cfg.num_replicas) {
            format!("updating its limits: {e}")
        } else {
            format!(
                "updating its limits and replicas ({} to {}): {e}",
                replicas(have.num_replicas),
                replicas(cfg.num_replicas)
            )
        }
    })
}

/// A connection as the hub's JetStream admin, and the bounds of device streams.
async fn stream_admin(
    warden: &Warden,
    nats_url: &str,
    timeout: Duration,
) -> Result<(async_nats::Client, warden_core::device::StreamLimits)> {
    let fleet = warden.fleet_settings().await?;
    let creds = warden.creds(&fleet.hub_account, &fleet.admin_user).await?;
    let client = async_nats::ConnectOptions::with_credentials(&creds)
        .map_err(|e| OpsError::Jwt(format!("the hub's JetStream admin creds: {e}")))?
        .name("warden-device-streams")
        .connection_timeout(timeout)
        .request_timeout(Some(timeout))
        .retain_servers_order()
        .connect(warden_nats::servers(nats_url))
        .await
        .map_err(|e| {
            OpsError::unavailable(format!(
                "cannot connect to {nats_url} as the hub's JetStream admin: {e}"
            ))
        })?;
    Ok((client, fleet.stream_limits()))
}
