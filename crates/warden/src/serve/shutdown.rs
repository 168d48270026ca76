//! How Warden's long-running commands (`warden serve`, `warden chat`) stop. The first
//! SIGTERM or SIGINT sets one stop signal ([`Shutdown`], a watch channel every task of
//! the process selects on); the tasks then have until a hard deadline ([`GRACE`] after
//! the signal) to finish, and whatever is still running then is named in the log and
//! abandoned ([`Tasks::finish_by`]): a nats-server that is gone, a database that does not
//! answer or a client that never reads cannot keep the process alive. Nothing is lost by
//! abandoning: changes are committed before anything is told of them, and the outbox
//! rows NATS has not acknowledged stay pending for the next start.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// From the stop signal to the exit, at most (plus the exit itself): the bound the
/// process keeps whatever state NATS, the database or the clients are in.
pub const GRACE: Duration = Duration::from_millis(1250);

/// The process's one stop signal (cheap to clone).
#[derive(Clone, Debug)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Shutdown {
    /// A stop signal nothing sets but [`Shutdown::trigger`].
    pub fn new() -> Shutdown {
        Shutdown {
            tx: Arc::new(watch::channel(false).0),
        }
    }

    /// A stop signal set by the first SIGTERM or SIGINT. The handlers are installed
    /// now, so a signal during startup stops the process cleanly too (instead of the
    /// default action, which kills it).
    pub fn on_signals() -> std::io::Result<Shutdown> {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let shutdown = Shutdown::new();
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!(signal = name, "shutting down");
            trigger.trigger();
        });
        Ok(shutdown)
    }

    /// Sets the stop signal.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether the stop signal is set.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// A receiver of the stop signal (`true` once set), for the tasks that take one.
    pub fn receiver(&self) -> watch::Receiver<bool> {
        self.tx.subscribe()
    }

    /// Resolves once the stop signal is set.
    pub fn triggered(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.receiver();
        async move {
            // Closed: every `Shutdown` is gone, so nothing can set the signal any more.
            if rx.wait_for(|stop| *stop).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::new()
    }
}

/// The named tasks of a long-running command, to be finished by a deadline.
#[derive(Default)]
pub struct Tasks {
    running: Vec<(&'static str, JoinHandle<anyhow::Result<()>>)>,
}

impl Tasks {
    /// Runs `task` (which must end once the stop signal is set) as `name`.
    pub fn spawn(
        &mut self,
        name: &'static str,
        task: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) {
        self.running.push((name, tokio::spawn(task)));
    }

    /// Waits for every task until `deadline`. A task's failure is logged; a task still
    /// running at the deadline is logged by name and aborted. Returns the names of the
    /// tasks that failed or did not finish.
    pub async fn finish_by(self, deadline: Instant) -> Vec<&'static str> {
        let mut trouble = Vec::new();
        for (name, mut handle) in self.running {
            match tokio::time::timeout_at(deadline, &mut handle).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => {
                    tracing::error!(task = name, error = format!("{e:#}"), "task failed");
                    trouble.push(name);
                }
                Ok(Err(e)) => {
                    tracing::error!(task = name, error = %e, "task panicked");
                    trouble.push(name);
                }
                Err(_) => {
                    tracing::warn!(
                        task = name,
                        "did not stop within {GRACE:?} of the stop signal: abandoned"
                    );
                    handle.abort();
                    trouble.push(name);
                }
            }
        }
        trouble
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_that_ignores_the_stop_is_abandoned_at_the_deadline() {
        let shutdown = Shutdown::new();
        let mut tasks = Tasks::default();
        let stop = shutdown.triggered();
        tasks.spawn("polite", async move {
            stop.await;
            Ok(())
        });
        tasks.spawn("stuck", std::future::pending());
        tasks.spawn("failing", async { Err(anyhow::anyhow!("no")) });
        assert!(!shutdown.is_triggered());
        shutdown.trigger();
        assert!(shutdown.is_triggered());
        let started = Instant::now();
        let trouble = tasks.finish_by(started + Duration::from_millis(200)).await;
        assert_eq!(trouble, ["stuck", "failing"]);
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_secs(2),
            "{took:?}"
        );
    }
}
