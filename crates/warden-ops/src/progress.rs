//! How a long operation (an organisation apply, an nsc export or import, a bulk device
//! add) reports how far it is: a small trait the CLI implements with a progress bar on a
//! terminal, and [`Quiet`] for every other caller.

/// Receives the progress of one long operation.
pub trait Progress: Send + Sync {
    /// The operation has `len` steps (called once, before the first [`Progress::advance`]).
    fn start(&self, len: u64, what: &str);
    /// `n` more steps are done.
    fn advance(&self, n: u64);
    /// The operation ended (done or failed).
    fn finish(&self);
}

/// Progress that goes nowhere.
#[derive(Clone, Copy, Debug, Default)]
pub struct Quiet;

impl Progress for Quiet {
    fn start(&self, _len: u64, _what: &str) {}
    fn advance(&self, _n: u64) {}
    fn finish(&self) {}
}
