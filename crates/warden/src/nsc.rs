//! `warden export` and `warden import nsc`: the nsc store and keystore layout, both ways.
//! (Being built.)

use clap::{Args, Subcommand};

use crate::ops::Warden;

/// `warden export …`
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Output directory.
    #[arg(long, value_name = "DIR")]
    pub out: std::path::PathBuf,
}

/// `warden import …`
#[derive(Subcommand, Debug)]
pub enum ImportCmd {
    /// Import an nsc operator.
    Nsc {
        /// The nsc data store.
        #[arg(long, value_name = "DIR")]
        store: std::path::PathBuf,
        /// The nsc keystore.
        #[arg(long, value_name = "DIR")]
        keys: std::path::PathBuf,
    },
}

/// Arguments of `warden bench export`.
#[derive(Args, Debug)]
pub struct BenchExportArgs {
    /// Units (accounts).
    #[arg(long, default_value_t = 100)]
    pub units: u32,
    /// Users in all.
    #[arg(long, default_value_t = 10_000)]
    pub users: u32,
}

/// Runs `warden export`.
pub async fn run_export(_json: bool, _args: ExportArgs, _w: &Warden) -> anyhow::Result<()> {
    anyhow::bail!("warden export: not built yet")
}

/// Runs `warden import …` on a database that may be empty.
pub async fn run_import(_json: bool, _cmd: ImportCmd, _w: Warden) -> anyhow::Result<()> {
    anyhow::bail!("warden import: not built yet")
}

/// Runs `warden bench export`.
pub async fn bench_export(_json: bool, _args: BenchExportArgs) -> anyhow::Result<()> {
    anyhow::bail!("warden bench export: not built yet")
}
