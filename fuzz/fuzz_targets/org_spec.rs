//! Fuzzes the organisation spec reader (`warden org check|apply FILE`):
//! `warden_ops::org::parse_spec` as YAML, as JSON and by content, then `compile` under the
//! default naming policy and `plan` against an empty store. The users an accepted spec
//! compiles to must become JWTs that Warden can read back.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use nats_jwt::{User, decode};
use warden_core::NamingPolicy;
use warden_core::compile_user;
use warden_core::org::{CurrentOrg, compile, plan};
use warden_fuzz::signers;
use warden_ops::org::parse_spec;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let policy = NamingPolicy::default();
    for file in ["org.yaml", "org.json", "org"] {
        let Ok(spec) = parse_spec(Path::new(file), text) else {
            continue;
        };
        let Ok(desired) = compile(&spec, &policy) else {
            continue;
        };
        let _ = plan(&desired, &CurrentOrg::default());
        let [_, acc, user] = signers();
        let (Ok(acc_pk), Ok(user_pk)) = (acc.account_public_key(), user.user_public_key()) else {
            return;
        };
        for u in &desired.users {
            let mut claims = compile_user(&user_pk, &u.name, &u.spec, Some(&acc_pk));
            let _ = claims.validate(0);
            if let Ok(token) = claims.encode_at(acc, 1_700_000_000) {
                if let Err(e) = decode::<User>(&token) {
                    panic!("user {} compiles to a JWT Warden cannot read: {e}", u.name);
                }
            }
        }
    }
});
