/*!
The pure half of Warden's rooms gateway (rooms with permission tables, in the manner of nano-messaging):
who may do what in a room, which HS256 tokens are accepted, and what the websocket
`/chat` speaks. No I/O: the store keeps rooms, rules and messages, and `warden` serves
them over HTTP, websockets and NATS.

```
use warden_chat::permissions::{Caller, RoomFacts, RuleFacts, evaluate};

let room = RoomFacts { owner_user: "u-owner".into(), owner_entity: "e-acme".into(), level_admin: 500 };
let caller = Caller { user_uuid: "u-bob".into(), entity_uuid: "e-acme".into(), level_on_entity: 10 };
let rule = RuleFacts::parse("u-bob", "rw", 0).unwrap();
let rights = evaluate(&room, &caller, [&rule]);
assert!(rights.read && rights.write && !rights.admin);
```

- [`permissions`]: the one evaluation function (`r`, `w`, `a`, `b`; ban wins).
- [`token`]: HS256 tokens (`aud`, `iss`, `exp`; several secrets during a rotation).
- [`protocol`]: the websocket commands and replies, and the per-connection rate limit.
*/
#![deny(missing_docs)]

pub mod permissions;
pub mod protocol;
pub mod token;
