/*!
Warden's NATS side: the nats-server configuration that trusts Warden's operator
([`config`]), one such configuration per node of a whole deployment of clusters and
gateways ([`deploy`]), the configuration of a leaf node at a tenant's site ([`leaf`]), and the
live account resolver — pushing, deleting, listing and looking up accounts on a running
server as a system-account user ([`resolver`]), the trust check run before every push
([`trust`]), and drift between Warden's accounts and the server's ([`drift`]).

```no_run
# async fn run(sys_creds: &str, operator: &nats_jwt::OperatorClaims, account_jwt: &str)
# -> Result<(), warden_nats::ResolverError> {
use std::time::Duration;
use warden_nats::ResolverClient;

let client = ResolverClient::connect("nats://127.0.0.1:4222", sys_creds, Duration::from_secs(2)).await?;
let reply = client.push(operator, account_jwt).await?; // verify_trust, then $SYS.REQ.CLAIMS.UPDATE
assert_eq!(reply.code, 200);
let accounts = client.list().await?;
# let _ = accounts;
# Ok(())
# }
```

The protocol facts (subjects, reply shapes, what each server version checks) are summed up in
[`resolver`].
*/
#![deny(missing_docs)]

pub mod account_jsz;
pub mod config;
pub mod deploy;
pub mod drift;
pub mod jsz;
pub mod leaf;
pub mod resolver;
pub mod trust;
pub mod urls;
pub mod varz;

pub use drift::{Drift, drift};
pub use resolver::{
    DeleteReply, OwnPushes, ResolverClient, ResolverError, ServerInfo, UpdateReply, delete_request,
    push_waves,
};
pub use trust::{TrustError, check_own_trust, verify_trust};
pub use urls::{NatsUrlError, NatsUrls, servers};
