/*!
The `warden` binary's surfaces: each parses its input into `warden-ops`' validated types,
calls one operation with an `Actor`, and renders the result or the error.

- [`cli`]: the clap command line, human and `--json` output, exit codes (the only place
  that prints).
- [`http`]: the HTTP API of `warden serve` (axum) behind scoped bearer tokens.
- [`console`]: the web console under `/console`, server-rendered HTML.
- [`nats_api`]: the NATS request/reply service of `warden serve`.
- [`chat`]: the rooms gateway (`/rooms`, `/chat`), in `serve` or alone (`warden chat`).
- [`serve`]: `warden serve`, which composes the HTTP API, console, relay, NATS service
  and rooms gateway.
- [`bench`]: `warden bench`, measurements users can run on their own hardware.
- [`paths`]: where the data directory, database and master key live.
*/
#![deny(missing_docs)]

pub mod bench;
pub mod chat;
pub mod cli;
pub mod console;
pub mod http;
pub mod nats_api;
pub mod paths;
pub mod serve;
