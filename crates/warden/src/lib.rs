//! The `warden` binary's library half: the operations every surface shares (CLI,
//! HTTP API, NATS service), and the pieces of I/O around them.
//!
//! - [`ops`]: one function per operation: validate through `warden-core`, decide,
//!   then write state + ledger event + outbox row in one `warden-store` transaction.
//! - [`paths`]: where the data directory, database and master key live.
//! - [`cli`]: the clap command line, printing and exit codes.
//! - [`http`]: the HTTP API of `warden serve` (axum), behind scoped bearer tokens.
//! - [`tokens`]: admin bearer tokens of the HTTP API (`warden token`).
//! - [`service`]: the NATS request/reply API of `warden serve`.
//! - [`serve`]: `warden serve`, which runs the HTTP API, the relay and the NATS service.
//! - [`relay`]: the outbox relay that keeps nats-server in step.
//! - [`tool`]: `warden tool pub|sub|req`, a small NATS client for checking access.
//! - [`observe`]: device lifecycle observed from server connect events.
//! - [`onboarding`]: onboarding packages of tenant collectors (`warden onboarding`).
//! - [`bench`]: `warden bench`, measurements users can run on their own hardware.
//! - [`leaf`]: `warden tenant leaf-config`, leaf node configs for tenants' sites.
//! - [`chat`]: the rooms gateway (`/rooms`, `/chat`), in `serve` or alone (`warden chat`).
//! - [`console`]: the web console of `warden serve`, under `/console`.
//! - [`dirsync`]: `warden dir sync|export`, directory sync with AD (LDIF, LDAP) and Azure AD (Graph JSON).
#![deny(missing_docs)]

pub mod bench;
pub mod chat;
pub mod cli;
pub mod console;
pub mod device;
pub mod dir_keys;
pub mod dir_keys_cli;
pub mod dirsync;
pub mod governance;
pub mod governance_bench;
pub mod governance_cli;
pub mod http;
pub mod leaf;
pub mod nsc;
pub mod observe;
pub mod onboarding;
pub mod ops;
pub mod org;
pub mod paths;
pub mod relay;
pub mod serve;
pub mod service;
pub mod streams;
pub mod tenant;
pub mod tenant_lint;
pub mod tokens;
pub mod tool;
