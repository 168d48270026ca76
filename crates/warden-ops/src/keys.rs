//! Whose a public key is: the operator, one of its signing keys, an account or one of an
//! account's signing keys — so output that shows a key (an issuer, a subject) can say
//! whose it is in Warden's names.

use crate::{Result, Scope, Warden};

impl Warden {
    /// The holder of `key` in Warden's names (`operator ACME`, `operator ACME (signing
    /// key)`, `account SHOP`, `account SHOP (signing key)`), or `None` when Warden holds
    /// no such key.
    pub async fn key_holder(&self, key: &str) -> Result<Option<String>> {
        self.need(Scope::Read, "naming a key")?;
        let op = self.operator().await?;
        if op.public_key == key {
            return Ok(Some(format!("operator {}", op.name)));
        }
        if op.signing_key == key {
            return Ok(Some(format!("operator {} (signing key)", op.name)));
        }
        for account in self.list_accounts().await? {
            if account.public_key == key {
                return Ok(Some(format!("account {}", account.name)));
            }
            if account
                .spec
                .signing_keys
                .iter()
                .any(|sk| sk.key().as_str() == key)
            {
                return Ok(Some(format!("account {} (signing key)", account.name)));
            }
        }
        Ok(None)
    }
}
