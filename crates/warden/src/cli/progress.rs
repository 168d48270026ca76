//! The one progress bar of the command line: drawn on stderr when it is a terminal and
//! the output is not `--json`, hidden otherwise. It implements `warden-ops`' progress
//! trait, so long operations report to it without knowing it exists.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether progress is shown: on a terminal only, never with `--json`.
pub fn show_progress(json: bool) -> bool {
    !json && std::io::stderr().is_terminal()
}

/// A progress bar on stderr (or nowhere, see [`show_progress`]); clones draw the same bar.
#[derive(Clone)]
pub struct Bar(ProgressBar);

impl Bar {
    /// A bar that draws only when `show` is set; `len` may be 0 until an operation
    /// reports its length.
    pub fn new(show: bool, len: u64, what: &str) -> Bar {
        let bar = ProgressBar::new(len);
        if show {
            if let Ok(style) =
                ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec}")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(what.to_string());
        } else {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        Bar(bar)
    }

    /// A bar for `--json` or not: drawn only where [`show_progress`] says so.
    pub fn for_output(json: bool, len: u64, what: &str) -> Bar {
        Bar::new(show_progress(json), len, what)
    }

    /// One more step done.
    pub fn inc(&self, n: u64) {
        self.0.inc(n);
    }

    /// Sets how many steps are done.
    pub fn set_position(&self, pos: u64) {
        self.0.set_position(pos);
    }

    /// Clears the bar.
    pub fn finish_and_clear(&self) {
        self.0.finish_and_clear();
    }
}

impl warden_ops::progress::Progress for Bar {
    fn start(&self, len: u64, what: &str) {
        self.0.set_length(len);
        self.0.set_message(what.to_string());
    }

    fn advance(&self, n: u64) {
        self.0.inc(n);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
