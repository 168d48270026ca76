//! `warden deploy render SPEC -o DIR`: the flags, and the table (or `--json` list) of the
//! nats-server configurations written, one per node of the deployment the spec describes
//! (docs/deploy.md has the spec format).

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use warden_ops::Warden;

use super::{emit, table};

/// `warden deploy …`.
#[derive(Subcommand, Debug)]
pub enum DeployCmd {
    /// Render one nats-server configuration per node of a deployment spec (YAML):
    /// routes within each cluster, gateways between clusters, JetStream placement, TLS.
    Render {
        /// The deployment spec (YAML; relative paths in it are relative to its directory).
        spec: PathBuf,
        /// Directory to write `<node>.conf` into (created if missing).
        #[arg(short, long, value_name = "DIR")]
        output: PathBuf,
    },
}

/// Runs `warden deploy …`.
pub async fn run(json: bool, cmd: DeployCmd, w: &Warden) -> Result<()> {
    match cmd {
        DeployCmd::Render { spec, output } => {
            let report = w.deploy_render(&spec, &output).await?;
            emit(json, &report, || {
                let mut t = table(vec![
                    "node",
                    "cluster",
                    "client",
                    "route",
                    "gateway",
                    "JetStream",
                    "file",
                ]);
                for n in &report.nodes {
                    t.add_row(vec![
                        n.node.node.clone(),
                        n.node.cluster.clone(),
                        n.node.client_url.clone(),
                        n.node.route_url.clone().unwrap_or_else(|| "-".into()),
                        n.node.gateway_url.clone().unwrap_or_else(|| "-".into()),
                        if n.node.jetstream { "yes" } else { "no" }.into(),
                        n.file.display().to_string(),
                    ]);
                }
                format!(
                    "{t}\n{} configurations written to {}\n",
                    report.nodes.len(),
                    report.dir.display()
                )
            })
        }
    }
}
