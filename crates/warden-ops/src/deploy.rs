//! `warden deploy render`: a whole NATS deployment — clusters, their routes, the gateways
//! between them, JetStream placement — rendered as one operator-mode nats-server
//! configuration per node, each trusting this operator and preloading every account.
//!
//! The topology and its rendering are `warden_nats::deploy` (pure apart from checking that
//! the TLS files it names exist); this module gathers the trust material from the store
//! (operator JWT, system account, the account JWTs to preload), checks the spec before it
//! reads anything, and writes the files only once every node rendered.

use std::path::{Path, PathBuf};

use serde::Serialize;
use warden_nats::deploy::{DeploySpec, RenderedNode, Trust};

use crate::{OpsError, Result, Warden};

/// What `warden deploy render` wrote.
#[derive(Debug, Serialize)]
pub struct DeployReport {
    /// The spec file.
    pub spec: PathBuf,
    /// The directory the files are in.
    pub dir: PathBuf,
    /// One entry per node, in spec order.
    pub nodes: Vec<DeployedNode>,
}

/// One node's configuration file.
#[derive(Debug, Serialize)]
pub struct DeployedNode {
    /// `<dir>/<node>.conf`.
    pub file: PathBuf,
    /// The node as rendered (name, cluster, URLs, JetStream).
    #[serde(flatten)]
    pub node: RenderedNode,
}

impl Warden {
    /// Reads the deployment spec at `spec_file`, checks it (every problem, as one invalid
    /// input error; nothing is read from the store or written then), and writes
    /// `<out_dir>/<node>.conf` for each node, trusting this operator with every account
    /// preloaded. Needs `read` (the files hold only public JWTs).
    pub async fn deploy_render(&self, spec_file: &Path, out_dir: &Path) -> Result<DeployReport> {
        let text = std::fs::read_to_string(spec_file).map_err(|e| {
            OpsError::invalid(format!(
                "cannot read the deploy spec {}: {e}",
                spec_file.display()
            ))
        })?;
        let spec = DeploySpec::parse(&text)
            .map_err(|e| OpsError::invalid(format!("{}: {e}", spec_file.display())))?;
        // Relative paths in the spec are relative to its own directory, whatever the
        // working directory of `warden` or of nats-server.
        let base = std::path::absolute(spec_file)
            .map_err(|e| OpsError::io(spec_file, e))?
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        let problems = spec.problems(&base);
        if !problems.is_empty() {
            return Err(OpsError::invalid(format!(
                "{}: {}",
                spec_file.display(),
                warden_nats::deploy::DeployError::Invalid(problems)
            )));
        }
        if out_dir.exists() && !out_dir.is_dir() {
            return Err(OpsError::invalid(format!(
                "{} exists and is not a directory",
                out_dir.display()
            )));
        }
        let op = self.operator().await?;
        let trust = Trust {
            operator_jwt: op.jwt,
            system_account: op.system_account,
            preload: self.preload_account_jwts().await?,
        };
        let rendered = spec
            .render(&base, &trust)
            .map_err(|e| OpsError::invalid(format!("{}: {e}", spec_file.display())))?;
        std::fs::create_dir_all(out_dir).map_err(|e| OpsError::io(out_dir, e))?;
        let mut nodes = Vec::with_capacity(rendered.len());
        for node in rendered {
            let file = out_dir.join(&node.file_name);
            // A new file renamed over the old one: a server restarted meanwhile reads the
            // old configuration or the new one, never half of it.
            crate::secret_file::write(&file, node.text.as_bytes(), true)
                .map_err(|e| OpsError::io(&file, e))?;
            nodes.push(DeployedNode { file, node });
        }
        Ok(DeployReport {
            spec: spec_file.to_path_buf(),
            dir: out_dir.to_path_buf(),
            nodes,
        })
    }
}
