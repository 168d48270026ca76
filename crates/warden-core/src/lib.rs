//! Warden's domain, with no I/O: validated names, the specs of operators, accounts
//! and users, the policy compiler that turns a spec into NATS JWT claims, the
//! bootstrap plan and the declarative "JWT migrations" applied on top of it, and the
//! parsers for the values people type (sizes, durations, expiries, CIDRs).
//!
//! Everything here is a pure function of its inputs: the caller (the `warden`
//! binary's operations layer) supplies keys, clocks and storage. See
//! [`compile`] for where each JWT is born.
#![deny(missing_docs)]

pub mod bootstrap;
pub mod compile;
pub mod decompile;
pub mod device;
pub mod directory;
pub mod dirsync;
pub mod governance;
pub mod lint;
pub mod names;
pub mod onboarding;
pub mod org;
pub mod parse;
pub mod permcheck;
pub mod spec;
pub mod streams;
pub mod template;
pub mod tenant;
pub mod units;

pub use bootstrap::{JwtMigration, MigrationStep, default_migrations};
pub use compile::{compile_account, compile_operator, compile_user};
pub use names::{AccountName, NameCase, NameError, NamingPolicy, OperatorName, UserName};
pub use spec::{AccountSpec, UserSpec};
