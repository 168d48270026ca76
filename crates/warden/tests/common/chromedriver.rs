//! `chromedriver` for the console's browser tests: started on a free loopback port,
//! waited for (bounded), killed on drop. Each test file adds the browser it needs.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use warden_testkit::free_port;

/// How long chromedriver may take to answer `/status`.
const START_WAIT: Duration = Duration::from_secs(20);

/// A running chromedriver.
pub struct Driver {
    child: Child,
    /// Its WebDriver URL (`http://127.0.0.1:PORT`).
    pub url: String,
}

impl Driver {
    /// Starts `$WARDEN_CHROMEDRIVER` (default `/usr/bin/chromedriver`); a missing binary
    /// fails the test with what to install.
    pub async fn start() -> Driver {
        let bin =
            std::env::var("WARDEN_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        assert!(
            Path::new(&bin).exists(),
            "{bin} is missing: install chromium and chromium-driver (scripts/test does)"
        );
        let port = free_port();
        let child = Command::new(&bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + START_WAIT;
        loop {
            if let Ok(res) = reqwest::get(format!("{url}/status")).await
                && res.status().is_success()
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Driver { child, url }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
