//! Warden's NATS side. Today: rendering the nats-server configuration that trusts
//! Warden's operator ([`config`]). The live resolver sync and the request/reply
//! service join it as they land.
#![deny(missing_docs)]

pub mod config;
