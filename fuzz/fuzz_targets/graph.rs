//! Fuzzes directory sync's Microsoft Graph reading (JSON pages of `GET /users` and
//! `GET /groups` given to `warden dirsync`): `from_graph`, the delta `graph_delta`
//! applied to a snapshot made from real Graph pages, and the plan. The input is the
//! users document, optionally followed by a NUL byte and the groups document.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::Value as Json;
use warden_core::dirsync::{Mapped, Mapping, Provider, from_graph, graph_delta, plan_mapped};

const USERS: &str =
    include_str!("../../crates/warden-core/tests/fixtures/dirsync/graph_users_1.json");
const GROUPS: &str =
    include_str!("../../crates/warden-core/tests/fixtures/dirsync/graph_groups.json");

fn mapping() -> &'static Mapping {
    static M: OnceLock<Mapping> = OnceLock::new();
    M.get_or_init(|| Mapping::default_for(Provider::Aad))
}

/// What Warden holds after syncing the fixture pages: the base the deltas apply to.
fn base() -> &'static Mapped {
    static B: OnceLock<Mapped> = OnceLock::new();
    B.get_or_init(|| {
        let users: Json = serde_json::from_str(USERS).expect("fixture users are JSON");
        let groups: Json = serde_json::from_str(GROUPS).expect("fixture groups are JSON");
        from_graph("graph:contoso", mapping(), &[users], &[groups]).expect("the fixture maps")
    })
}

fuzz_target!(|data: &[u8]| {
    let (users, groups) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let Ok(users) = serde_json::from_slice::<Json>(users) else {
        return;
    };
    let groups: Vec<Json> = match groups.map(serde_json::from_slice::<Json>) {
        Some(Ok(g)) => vec![g],
        Some(Err(_)) => return,
        None => Vec::new(),
    };
    let users = [users];
    if let Ok(mapped) = from_graph("graph:contoso", mapping(), &users, &groups) {
        let _ = plan_mapped(&base().snapshot, &mapped);
    }
    if let Ok(mapped) = graph_delta(&base().snapshot, mapping(), &users, &groups) {
        let _ = plan_mapped(&base().snapshot, &mapped);
    }
});
