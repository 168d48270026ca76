//! `warden device`: a fleet of devices, one account each, behind a shared hub account.
//! (Being built.)

use clap::{Args, Subcommand};

use crate::ops::Warden;

/// `warden device …`
#[derive(Subcommand, Debug)]
pub enum DeviceCmd {
    /// List devices.
    List,
}

/// Arguments of `warden bench devices`.
#[derive(Args, Debug)]
pub struct BenchDevicesArgs {
    /// Devices to provision.
    #[arg(long, default_value_t = 10_000)]
    pub count: u32,
}

/// Runs `warden device …`.
pub async fn run(_json: bool, _cmd: DeviceCmd, _w: &Warden) -> anyhow::Result<()> {
    anyhow::bail!("warden device: not built yet")
}

/// Runs `warden bench devices`.
pub async fn bench(_json: bool, _args: BenchDevicesArgs) -> anyhow::Result<()> {
    anyhow::bail!("warden bench devices: not built yet")
}
