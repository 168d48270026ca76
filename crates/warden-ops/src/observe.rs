//! Observation of device lifecycle from server events: `warden serve` listens, as
//! the system account's user, to `$SYS.ACCOUNT.*.CONNECT` and marks a provisioned
//! device `active` (with the time) when the first connection of its account shows
//! up, and an onboarding package `activated` when the first connection of its collector
//! user shows up. Both states are thus observed, never assumed.

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use tokio::sync::watch;

use crate::{OpsError, Record, Result, Warden, now};

/// Subject of the server's client-connect advisories, for every account.
pub const CONNECT_EVENTS: &str = "$SYS.ACCOUNT.*.CONNECT";

/// Runs until `shutdown` becomes true; reconnects (with a pause) when NATS is away.
pub async fn run(
    warden: Warden,
    nats_url: String,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()> {
    loop {
        let stop = *shutdown.borrow();
        if stop {
            return Ok(());
        }
        if let Err(e) = observe(&warden, &nats_url, &mut shutdown).await {
            tracing::warn!("device observer: {e:#}");
            let _ = tokio::time::timeout(Duration::from_secs(2), shutdown.changed()).await;
        }
    }
}

async fn observe(warden: &Warden, url: &str, shutdown: &mut watch::Receiver<bool>) -> Result<()> {
    let creds = warden.system_user_creds().await?;
    let client = async_nats::ConnectOptions::with_credentials(&creds)
        .map_err(|e| OpsError::Jwt(format!("the system user's creds: {e}")))?
        .name("warden-observer")
        .connection_timeout(Duration::from_secs(5))
        .retain_servers_order()
        .connect(warden_nats::servers(url))
        .await
        .map_err(|e| {
            OpsError::unavailable(format!("cannot connect to {url} as the system user: {e}"))
        })?;
    let mut events = client
        .subscribe(CONNECT_EVENTS)
        .await
        .map_err(|e| OpsError::unavailable(format!("cannot subscribe to connect events: {e}")))?;
    client
        .flush()
        .await
        .map_err(|e| OpsError::unavailable(format!("cannot subscribe to connect events: {e}")))?;
    loop {
        tokio::select! {
            changed = shutdown.changed() => {
                let stop = changed.is_err() || *shutdown.borrow();
                if stop {
                    return Ok(());
                }
            }
            msg = events.next() => {
                let Some(msg) = msg else {
                    return Err(OpsError::unavailable("the connect event subscription ended"));
                };
                for user in connect_users(&msg.payload) {
                    if let Err(e) = mark_package_activated(warden, &user).await {
                        tracing::warn!(%user, "cannot record a collector's first connection: {e:#}");
                    }
                }
                let Some(account) = connect_account(&msg.payload) else {
                    continue;
                };
                if let Err(e) = mark_active(warden, &account).await {
                    tracing::warn!(%account, "cannot record a device's first connection: {e:#}");
                }
            }
        }
    }
}

/// The account of a client-connect advisory (`client.acc`).
pub fn connect_account(payload: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    v["client"]["acc"].as_str().map(str::to_string)
}

/// The user public keys a client-connect advisory names (`client.user`, `client.nkey`;
/// which of the two carries the JWT user's key differs between server versions).
pub fn connect_users(payload: &[u8]) -> Vec<String> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(payload) else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for field in ["user", "nkey"] {
        if let Some(k) = v["client"][field].as_str()
            && k.starts_with('U')
            && !out.iter().any(|o| o == k)
        {
            out.push(k.to_string());
        }
    }
    out
}

async fn mark_package_activated(warden: &Warden, user: &str) -> Result<()> {
    let at = now();
    if let Some(id) = warden.store().mark_package_activated(user, at).await? {
        // The state change is one atomic UPDATE; its ledger entry follows it.
        let mut tx = warden.store().begin().await?;
        tx.record(warden.event(
            "onboarding.activate",
            "onboarding_package",
            &id,
            json!({"user_key": user, "activated_at": at}),
        ))
        .await?;
        tx.commit().await?;
        tracing::info!(package = %id, "onboarding package activated");
    }
    Ok(())
}

async fn mark_active(warden: &Warden, account: &str) -> Result<()> {
    let at = now();
    if let Some(id) = warden.store().mark_device_active(account, at).await? {
        // The state change is one atomic UPDATE; its ledger entry follows it.
        let mut tx = warden.store().begin().await?;
        tx.record(warden.event(
            "device.active",
            "device",
            &id,
            json!({"account": account, "activated_at": at}),
        ))
        .await?;
        tx.commit().await?;
        tracing::info!(device = %id, "device active");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::connect_account;

    #[test]
    fn connect_advisories_name_the_account() {
        let p = br#"{"type":"io.nats.server.advisory.v1.client_connect","client":{"acc":"ABC","name":"x"}}"#;
        assert_eq!(connect_account(p).as_deref(), Some("ABC"));
        assert_eq!(connect_account(b"{}"), None);
        assert_eq!(connect_account(b"garbage"), None);
    }

    #[test]
    fn connect_advisories_name_the_user() {
        use super::connect_users;
        let p = br#"{"client":{"acc":"ABC","user":"UAAA","nkey":"UAAA"}}"#;
        assert_eq!(connect_users(p), ["UAAA"]);
        let p = br#"{"client":{"acc":"ABC","user":"bob","nkey":"UBBB"}}"#;
        assert_eq!(connect_users(p), ["UBBB"]);
        assert!(connect_users(b"{}").is_empty());
        assert!(connect_users(b"garbage").is_empty());
    }
}
