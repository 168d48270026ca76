//! The `warden` binary's library half: the operations every surface shares (CLI
//! today; HTTP API and NATS service next), and the small pieces of I/O around them.
//!
//! - [`ops`]: one function per operation: validate through `warden-core`, decide,
//!   then write state + ledger event + outbox row in one `warden-store` transaction.
//! - [`paths`]: where the data directory, database and master key live.
//! - [`cli`]: the clap command line, printing and exit codes.
//! - [`tool`]: `warden tool pub|sub|req`, a small NATS client for checking access.
//! - [`bench`]: `warden bench`, measurements users can run on their own hardware.
#![deny(missing_docs)]

pub mod bench;
pub mod cli;
pub mod http;
pub mod ops;
pub mod paths;
pub mod service;
pub mod tokens;
pub mod tool;
