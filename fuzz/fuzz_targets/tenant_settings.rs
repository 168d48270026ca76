//! Fuzzes the tenant settings reader (`warden tenant settings set FILE`):
//! `warden_ops::tenant::settings_from_file` over the defaults as YAML, as JSON and by
//! content, then `check()`, a tenant slug, the platform and tenant specs, and the platform
//! account compiled to a JWT, which must read back.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use nats_jwt::{Account, decode};
use warden_core::compile_account;
use warden_core::tenant::{TenantSettings, TenantSlug};
use warden_fuzz::signers;
use warden_ops::tenant::settings_from_file;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let current = TenantSettings::default();
    for file in ["tenant.yaml", "tenant.json", "tenant"] {
        let Ok(settings) = settings_from_file(&current, Path::new(file), text) else {
            continue;
        };
        if settings.check().is_err() {
            continue;
        }
        let _ = settings.catalogue_tokens();
        let [op, acc, _] = signers();
        let Ok(acc_pk) = acc.account_public_key() else {
            return;
        };
        if let Ok(slug) = settings.parse_slug("acme") {
            let _ = settings.account_name(&slug);
            let _ = settings.tenant_spec(&slug, &settings.default_limits, &acc_pk);
            let _ = TenantSlug::parse(slug.as_str());
        }
        let _ = settings.platform_user_spec();
        let _ = settings.tenant_user_spec();
        if let (Ok(spec), Ok(name)) = (settings.platform_spec(), settings.platform_name()) {
            let mut claims = compile_account(&acc_pk, &name, &spec);
            let _ = claims.validate(0);
            if let Ok(token) = claims.encode_at(op, 1_700_000_000) {
                if let Err(e) = decode::<Account>(&token) {
                    panic!("platform account compiles to a JWT Warden cannot read: {e}");
                }
            }
        }
    }
});
