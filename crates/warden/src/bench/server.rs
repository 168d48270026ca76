//! The one nats-server every `warden bench` starts: a loopback port, a config Warden
//! rendered (operator trust, full resolver, every account preloaded, JetStream), stopped
//! when dropped.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use warden_ops::Warden;

/// The nats-server the bench starts (JetStream on, Warden's rendered config).
pub struct BenchServer {
    child: std::process::Child,
    /// Its client URL.
    pub url: String,
    /// Its `--version` line.
    pub version: String,
}

impl BenchServer {
    /// Starts `bin` with a config rendered for `w`'s operator (every account preloaded,
    /// JetStream in `dir`), and waits until it accepts connections.
    pub async fn start(w: &Warden, bin: &Path, dir: &Path) -> anyhow::Result<BenchServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let op = w.operator().await?;
        let mut cfg = warden_nats::config::ServerConfig::new(
            format!("127.0.0.1:{port}"),
            op.jwt,
            op.system_account,
            dir.join("resolver"),
        );
        cfg.preload = w.account_jwts().await?;
        cfg.jetstream_dir = Some(dir.join("js"));
        BenchServer::run(bin, dir, &cfg).await
    }

    /// Starts `bin` with `cfg` (written to `dir/nats.conf`, its log in `dir/nats.log`) and
    /// waits until its client listener (`cfg.listen`, on 127.0.0.1) accepts connections.
    pub async fn run(
        bin: &Path,
        dir: &Path,
        cfg: &warden_nats::config::ServerConfig,
    ) -> anyhow::Result<BenchServer> {
        let version = std::process::Command::new(bin)
            .arg("--version")
            .output()
            .with_context(|| format!("cannot run {}", bin.display()))?;
        let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
        cfg.validate()?;
        let (_, port) =
            warden_nats::config::split_host_port(&cfg.listen).map_err(|e| anyhow!(e))?;
        std::fs::create_dir_all(dir)?;
        let conf = dir.join("nats.conf");
        std::fs::write(&conf, cfg.render())?;
        let log = std::fs::File::create(dir.join("nats.log"))?;
        let child = std::process::Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let mut server = BenchServer {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            version,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(server);
            }
            if Instant::now() > deadline || server.child.try_wait()?.is_some() {
                server.stop();
                return Err(anyhow!(
                    "nats-server did not start (log: {})",
                    dir.join("nats.log").display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// CPU time the server has used so far.
    pub(crate) fn cpu(&self) -> anyhow::Result<crate::bench::CpuTime> {
        crate::bench::cpu_time(self.child.id())
    }

    /// Stops the server (also done when it is dropped).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        self.stop();
    }
}
