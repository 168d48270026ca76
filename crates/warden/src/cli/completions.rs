//! `warden completions SHELL`: the shell completion script of the whole command line
//! (bash, zsh, fish), generated from the clap definitions so that it never lags behind
//! them. The Debian package installs each where its shell looks for it.

use anyhow::Result;
use clap::{Args, CommandFactory, ValueEnum};
use clap_complete::Shell;

use super::Cli;

/// The shells completions are made for.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum CompletionShell {
    /// bash (bash-completion).
    Bash,
    /// zsh.
    Zsh,
    /// fish.
    Fish,
}

/// Flags of `warden completions`.
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to write the completion script for.
    #[arg(value_enum)]
    shell: CompletionShell,
}

/// Writes the completion script for the shell asked for to standard output.
pub fn run(args: CompletionsArgs) -> Result<()> {
    let shell = match args.shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "warden", &mut script);
    super::write_out(&script)
}
