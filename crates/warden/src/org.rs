//! `warden org`: an organisation described once (units, people) applied as accounts
//! and users. (Being built.)

use clap::Subcommand;

use crate::ops::Warden;

/// `warden org …`
#[derive(Subcommand, Debug)]
pub enum OrgCmd {
    /// Show the organisation last applied.
    Show,
}

/// Runs `warden org …`.
pub async fn run(_json: bool, _cmd: OrgCmd, _w: &Warden) -> anyhow::Result<()> {
    anyhow::bail!("warden org: not built yet")
}
