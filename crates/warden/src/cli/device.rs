//! `warden device …`: the flags of the device fleet commands, the device CSV/JSON file
//! reader, and the printed devices and creds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use serde::Deserialize;
use serde_json::json;
use warden_core::device::{DeviceState, FleetSettings, parse_meta_pair};

use crate::cli::secret_out::SecretOut;
use crate::cli::{print_json, values};
use warden_ops::Warden;
use warden_ops::device::*;

// ---------------------------------------------------------------------------
// CLI

/// `warden device …`
#[derive(Subcommand, Debug)]
pub enum DeviceCmd {
    /// Add a device (creds printed once, or written 0600 with -o), or many with --from.
    Add(AddArgs),
    /// List devices.
    List {
        /// Only devices in this state (provisioned, active, revoked).
        #[arg(long)]
        state: Option<String>,
    },
    /// Show a device.
    Show {
        /// Device id.
        id: String,
    },
    /// Give a device a new user key; the old one is revoked.
    Rotate {
        /// Device id.
        id: String,
        /// Write the new creds here (0600) instead of stdout.
        #[arg(short, long, value_name = "CREDS_FILE")]
        output: Option<PathBuf>,
    },
    /// Cut a device off (account deleted from the resolver, activations revoked).
    Revoke {
        /// Device id.
        id: String,
    },
    /// Re-admit a revoked device.
    Restore {
        /// Device id.
        id: String,
    },
    /// Show the fleet's names, subjects and JetStream bounds, or set them (names before
    /// the first device; bounds at any time).
    Fleet(Box<FleetArgs>),
}

/// Flags of `warden device fleet`; none given: show the settings.
#[derive(Args, Debug, Default)]
pub struct FleetArgs {
    /// Hub account (default EMDEVS).
    #[arg(long)]
    pub hub: Option<String>,
    /// Prefix of device account names (default EMDEV-).
    #[arg(long)]
    pub account_prefix: Option<String>,
    /// Device user (default emdev).
    #[arg(long)]
    pub device_user: Option<String>,
    /// Hub backend user (default backend).
    #[arg(long)]
    pub backend_user: Option<String>,
    /// Hub JetStream admin user (default superuser).
    #[arg(long)]
    pub admin_user: Option<String>,
    /// First token of subjects to devices (default EMDEV).
    #[arg(long)]
    pub to_device: Option<String>,
    /// First token of requests from devices (default EMDEVS).
    #[arg(long)]
    pub from_device: Option<String>,
    /// Device-side JetStream API prefix (default EMDEVJS.API).
    #[arg(long)]
    pub js_api_prefix: Option<String>,
    /// Prefix of device stream names (default EMDEV_).
    #[arg(long)]
    pub stream_prefix: Option<String>,
    /// Consumers one device stream may have, its max_consumers (default 4; fixed once
    /// the fleet has devices).
    #[arg(long, value_name = "N", value_parser = values::size)]
    pub device_max_consumers: Option<i64>,
    /// Bytes one device stream keeps, its max_bytes, e.g. 64M (default 1M).
    #[arg(long, value_name = "SIZE", value_parser = values::size)]
    pub device_max_bytes: Option<i64>,
    /// Messages one device stream keeps, its max_msgs (default 10000).
    #[arg(long, value_name = "N", value_parser = values::size)]
    pub device_max_msgs: Option<i64>,
    /// The hub account's JetStream memory storage, mem_storage (default 256M; 0: none).
    #[arg(long, value_name = "SIZE", value_parser = values::size)]
    pub hub_mem_storage: Option<i64>,
    /// The hub account's JetStream disk storage, disk_storage (default 20G).
    #[arg(long, value_name = "SIZE", value_parser = values::size)]
    pub hub_disk_storage: Option<i64>,
    /// Streams in the hub account, streams (default 20000).
    #[arg(long, value_name = "N", value_parser = values::size)]
    pub hub_max_streams: Option<i64>,
    /// Consumers per stream in the hub account, consumer (default 4).
    #[arg(long, value_name = "N", value_parser = values::size)]
    pub hub_max_consumers: Option<i64>,
    /// Unacknowledged messages per consumer in the hub account, max_ack_pending
    /// (default 1000).
    #[arg(long, value_name = "N", value_parser = values::size)]
    pub hub_max_ack_pending: Option<i64>,
    /// Replicas of every device stream, 1 to 5 (default 1; 3 on a JetStream cluster of
    /// at least 3 servers). Above 1 the hub's JetStream limits become the tier R<N>;
    /// existing device streams are scaled by the next push.
    #[arg(long, value_name = "N")]
    pub stream_replicas: Option<u8>,
}

impl FleetArgs {
    fn apply(self, s: &mut FleetSettings) -> bool {
        let mut changed = false;
        for (slot, v) in [
            (&mut s.hub_account, self.hub),
            (&mut s.device_account_prefix, self.account_prefix),
            (&mut s.device_user, self.device_user),
            (&mut s.backend_user, self.backend_user),
            (&mut s.admin_user, self.admin_user),
            (&mut s.to_device, self.to_device),
            (&mut s.from_device, self.from_device),
            (&mut s.js_api_prefix, self.js_api_prefix),
            (&mut s.stream_prefix, self.stream_prefix),
        ] {
            if let Some(v) = v {
                *slot = v;
                changed = true;
            }
        }
        for (slot, v) in [
            (&mut s.device_max_consumers, self.device_max_consumers),
            (&mut s.device_max_bytes, self.device_max_bytes),
            (&mut s.device_max_msgs, self.device_max_msgs),
            (&mut s.hub_mem_storage, self.hub_mem_storage),
            (&mut s.hub_disk_storage, self.hub_disk_storage),
            (&mut s.hub_max_streams, self.hub_max_streams),
            (&mut s.hub_max_consumers, self.hub_max_consumers),
            (&mut s.hub_max_ack_pending, self.hub_max_ack_pending),
        ] {
            if let Some(v) = v {
                *slot = v;
                changed = true;
            }
        }
        if let Some(n) = self.stream_replicas {
            s.stream_replicas = n;
            changed = true;
        }
        changed
    }
}

/// Flags of `warden device add`.
#[derive(Args, Debug)]
pub struct AddArgs {
    /// Device id (lowercase letters, digits, dashes).
    #[arg(required_unless_present = "from", conflicts_with = "from")]
    pub id: Option<String>,
    /// Metadata KEY=VALUE (repeatable).
    #[arg(long = "meta", value_name = "KEY=VALUE", value_parser = parse_meta_pair)]
    pub meta: Vec<(String, String)>,
    /// Write the creds here (0600) instead of stdout.
    #[arg(short, long, value_name = "CREDS_FILE", conflicts_with = "from")]
    pub output: Option<PathBuf>,
    /// Add many: a CSV file with an `id` column (other columns become metadata) or a
    /// JSON array of ids or of {"id", "meta"} objects.
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
    /// With --from: write each new device's creds to DIR/<id>.creds (0600).
    #[arg(long, value_name = "DIR", requires = "from")]
    pub creds_dir: Option<PathBuf>,
}

fn usage(msg: impl Into<String>) -> anyhow::Error {
    crate::cli::UsageError(msg.into()).into()
}

/// Whether `path` is a complete creds file (a JWT and a seed block): a file cut short
/// when the machine went down after its rename counts as missing, so a re-run rewrites
/// it.
fn holds_creds(path: &Path) -> bool {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => std::fs::read_to_string(path)
            .is_ok_and(|t| t.contains("END NATS USER JWT") && t.contains("END USER NKEY SEED")),
        _ => false,
    }
}

/// Writes each device's creds to `DIR/<id>.creds` (0600, a new file renamed into place,
/// never through a symlink), on every core. The files are not synced one by one: the
/// devices are committed before, and a re-run rewrites any file that did not reach the
/// disk whole ([`holds_creds`]); the directory is synced once at the end. The first
/// failure in input order is reported.
fn write_creds_files<C>(dir: &Path, creds: &[(String, C)]) -> anyhow::Result<()>
where
    C: std::ops::Deref<Target = String> + Sync,
{
    use rayon::prelude::*;
    let results: Vec<anyhow::Result<()>> = creds
        .par_iter()
        .map(|(id, c)| {
            let path = dir.join(format!("{id}.creds"));
            warden_ops::secret_file::write(&path, c.as_bytes(), false)
                .with_context(|| format!("cannot write {}", path.display()))
        })
        .collect();
    results.into_iter().collect::<anyhow::Result<()>>()?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))
}

/// Runs `warden device …`.
pub async fn run(json: bool, cmd: DeviceCmd, w: &Warden) -> anyhow::Result<()> {
    match cmd {
        DeviceCmd::Add(args) => match args.from {
            Some(file) => add_bulk(json, w, &file, args.creds_dir.as_deref()).await,
            None => {
                let id = args
                    .id
                    .ok_or_else(|| usage("give a device id or --from FILE"))?;
                let meta = args
                    .meta
                    .into_iter()
                    .map(|(k, v)| (k, serde_json::Value::String(v)))
                    .collect();
                // The output is made ready first: one that cannot be written fails
                // before the device exists.
                let output = SecretOut::prepare(args.output.as_deref())?;
                let (view, creds) = w.add_device_with_creds(&id, meta).await?;
                emit_with_creds(json, &view, &creds, output, "added")
            }
        },
        DeviceCmd::List { state } => {
            let state = state
                .map(|s| {
                    DeviceState::parse(&s).ok_or_else(|| {
                        usage(format!(
                            "unknown state {s:?}: use provisioned, active or revoked"
                        ))
                    })
                })
                .transpose()?;
            let list = w.list_devices(state).await?;
            if json {
                return print_json(&list);
            }
            let mut table = crate::cli::table(["ID", "STATE", "ACCOUNT", "ACCOUNT KEY", "META"]);
            for d in &list {
                table.add_row([
                    d.id.clone(),
                    d.state.as_str().to_string(),
                    d.account.clone(),
                    d.account_key.clone(),
                    serde_json::to_string(&d.meta).unwrap_or_default(),
                ]);
            }
            outln!("{table}")?;
            Ok(())
        }
        DeviceCmd::Show { id } => {
            let d = w.device(&id).await?;
            if json {
                return print_json(&d);
            }
            out!("{}", human(&d))?;
            Ok(())
        }
        DeviceCmd::Rotate { id, output } => {
            let output = SecretOut::prepare(output.as_deref())?;
            let (view, creds) = w.rotate_device_with_creds(&id).await?;
            emit_with_creds(json, &view, &creds, output, "rotated")
        }
        DeviceCmd::Revoke { id } => {
            let d = w.revoke_device(&id).await?;
            if json {
                return print_json(&d);
            }
            outln!(
                "device {} revoked (its account is deleted from NATS on the next push/relay)",
                d.id
            )?;
            Ok(())
        }
        DeviceCmd::Fleet(args) => {
            let mut settings = w.fleet_settings().await?;
            if args.apply(&mut settings) {
                settings = w.set_fleet_settings(&settings).await?;
            }
            if json {
                return print_json(&settings);
            }
            out!("{}", serde_yaml_ng::to_string(&settings)?)?;
            Ok(())
        }
        DeviceCmd::Restore { id } => {
            let d = w.restore_device(&id).await?;
            if json {
                return print_json(&d);
            }
            outln!("device {} restored ({})", d.id, d.state.as_str())?;
            Ok(())
        }
    }
}

fn human(d: &DeviceView) -> String {
    let t = |v: Option<i64>| super::time_or(v, "-");
    format!(
        "id           {}\nstate        {}\naccount      {} {}\nuser         {} {}\nto device    {}\nfrom device  {}\nstream       {} (JetStream API prefix {})\nmeta         {}\ncreated      {}\nactivated    {}\nrotated      {}\nrevoked      {}\nrestored     {}\n",
        d.id,
        d.state.as_str(),
        d.account,
        d.account_key,
        d.user,
        d.user_key,
        d.to_device,
        d.from_device,
        d.stream,
        d.js_api_prefix,
        serde_json::to_string(&d.meta).unwrap_or_default(),
        t(Some(d.created_at)),
        t(d.activated_at),
        t(d.rotated_at),
        t(d.revoked_at),
        t(d.restored_at),
    )
}

fn emit_with_creds(
    json: bool,
    view: &DeviceView,
    creds: &str,
    output: Option<SecretOut>,
    what: &str,
) -> anyhow::Result<()> {
    let done = format!(
        "device {} was {what}: fetch its creds with `warden creds {} {} -o FILE`",
        view.id, view.account, view.user
    );
    match output {
        Some(SecretOut::File(file)) => {
            let path = file.path().to_path_buf();
            SecretOut::File(file).write(creds.as_bytes(), &done)?;
            if json {
                print_json(&json!({"device": view, "creds_file": path}))
            } else {
                eprintln!(
                    "device {} {what}; creds written to {} (mode 0600)",
                    view.id,
                    path.display()
                );
                Ok(())
            }
        }
        Some(SecretOut::Stdout) => SecretOut::Stdout.write(creds.as_bytes(), &done),
        None if json => print_json(&json!({"device": view, "creds": creds})),
        None => {
            eprintln!("device {} {what}; its creds (shown once):", view.id);
            out!("{creds}")?;
            Ok(())
        }
    }
}

/// Reads a bulk file: CSV with an `id` column, or JSON (array of ids or objects).
pub fn read_device_file(path: &Path) -> anyhow::Result<Vec<NewDevice>> {
    use crate::cli::bulk_file;
    let (text, is_json) = bulk_file::read(path)?;
    if is_json {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Entry {
            Id(String),
            Full(NewDevice),
        }
        let list: Vec<Entry> =
            bulk_file::json_list(path, &text, "ids or {\"id\", \"meta\"} objects")?;
        return Ok(list
            .into_iter()
            .map(|e| match e {
                Entry::Id(id) => NewDevice {
                    id,
                    meta: BTreeMap::new(),
                },
                Entry::Full(d) => d,
            })
            .collect());
    }
    let csv = bulk_file::csv(path, &text, "id")?;
    let mut out = Vec::new();
    for (_, rec) in &csv.records {
        let mut meta = BTreeMap::new();
        for (j, value) in rec.iter().enumerate() {
            if let Some(h) = csv
                .headers
                .get(j)
                .filter(|_| j != csv.key && !value.is_empty())
            {
                meta.insert(h.to_string(), serde_json::Value::String(value.to_string()));
            }
        }
        out.push(NewDevice {
            id: rec.get(csv.key).unwrap_or_default().to_string(),
            meta,
        });
    }
    Ok(out)
}

/// Removes the new files a run killed while writing creds left behind
/// (`.<id>.creds.<random>.tmp`, see `warden_ops::secret_file`), for the ids of this
/// run only: the re-run writes those creds again.
fn sweep_unfinished_creds(dir: &Path, devices: &[NewDevice]) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let ids: std::collections::BTreeSet<&str> = devices.iter().map(|d| d.id.as_str()).collect();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let unfinished = name
            .strip_prefix('.')
            .and_then(|rest| rest.strip_suffix(".tmp"))
            .and_then(|rest| rest.split_once(".creds."))
            .is_some_and(|(id, _)| ids.contains(id));
        if unfinished && entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

async fn add_bulk(
    json: bool,
    w: &Warden,
    file: &Path,
    creds_dir: Option<&Path>,
) -> anyhow::Result<()> {
    let devices = read_device_file(file)?;
    if let Some(dir) = creds_dir.filter(|d| d.exists() && !d.is_dir()) {
        return Err(usage(format!("{} is not a directory", dir.display())));
    }
    // The creds directory exists (0700) and takes a file before any device is added.
    if let Some(dir) = creds_dir {
        crate::paths::ensure_data_dir(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        warden_ops::secret_file::Prepared::at(&dir.join(".warden-write-check"))
            .with_context(|| format!("cannot write in {}", dir.display()))?;
        sweep_unfinished_creds(dir, &devices);
    }
    let bar = crate::cli::progress::Bar::for_output(json, devices.len() as u64, "adding devices");
    let (report, creds) = w.add_devices_bulk(&devices, |n| bar.inc(n)).await?;
    bar.finish_and_clear();
    let mut creds = warden_ops::device::issued(creds, "the new devices' creds")?;
    if let Some(dir) = creds_dir {
        let again = format!(
            "the devices were added: run the same command again to write the missing creds files into {}",
            dir.display()
        );
        // A device added by an earlier run that stopped before writing its file (killed,
        // the disk full, the machine down before the file reached the disk) gets its file
        // now: a re-run completes the directory.
        for id in &report.skipped {
            if !holds_creds(&dir.join(format!("{id}.creds"))) {
                creds.push((id.clone(), w.device_creds(id).await?));
            }
        }
        write_creds_files(dir, &creds).with_context(|| again.clone())?;
    }
    if json {
        return print_json(&json!({
            "added": report.added,
            "skipped": report.skipped,
            "creds_dir": creds_dir,
        }));
    }
    outln!(
        "{} devices added, {} already present (skipped){}",
        report.added.len(),
        report.skipped.len(),
        match creds_dir {
            Some(d) => format!("; creds in {}", d.display()),
            None => "; creds: `warden creds <account> <user>` per device".into(),
        }
    )?;
    if !report.skipped.is_empty() && report.skipped.len() <= 20 {
        outln!("skipped: {}", report.skipped.join(", "))?;
    }
    Ok(())
}
