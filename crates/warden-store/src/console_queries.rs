//! Light reads of the account table for the pages that summarise thousands of accounts
//! (the console's overview, hierarchy, operator and account pages): one statement each,
//! returning only the columns those pages show. No account JWT is read, and a spec only
//! where it may name the imports or the exports the page needs (as text: the caller
//! decodes what it reads of it), so a page over 4,000 accounts does not move and decode
//! 4,000 specs and JWTs to show names and counts. The accounts list searches the same
//! light rows (a spec read only where its text may hold the search) and reads whole rows
//! only for the page it shows ([`Store::accounts_by_keys`]).

use sqlx::AnyConnection;

use crate::rows::column;
use crate::{AccountRow, Store, StoreError, Tx};

/// An account as the summary pages list it.
#[derive(Clone, Debug, PartialEq)]
pub struct AccountBrief {
    /// Account identity public key (`A…`).
    pub public_key: String,
    /// Account name.
    pub name: String,
    /// Whether a device owns it.
    pub device: bool,
    /// Whether a tenant owns it.
    pub tenant: bool,
    /// How many users it has (revoked ones included).
    pub users: usize,
    /// Creation time, unix seconds.
    pub created_at: i64,
    /// Last update, unix seconds.
    pub updated_at: i64,
    /// Its spec (JSON text), read only when the text names the key asked for (`imports`
    /// or `exports`: a spec without any leaves the key out); `None` for the others.
    pub spec: Option<String>,
}

/// Which accounts' specs [`Store::account_briefs`] reads: those that may import, or those
/// that may export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpecOf {
    /// Specs whose text names `imports`.
    Importers,
    /// Specs whose text names `exports`.
    Exporters,
}

/// The statement behind [`Store::account_briefs`] (`{KEY}` the spec key asked for):
/// devices and tenants joined by account key, users counted in one grouped pass, the spec
/// kept only where its text may name the key (a key is written `"imports"`; inside a JSON
/// string a quote is escaped, so a description cannot match; a tag named so can, and is
/// decoded and found empty by the caller).
const BRIEFS: &str = "SELECT a.public_key, a.name, a.created_at, a.updated_at, \
     CAST(CASE WHEN d.account_key IS NULL THEN 0 ELSE 1 END AS BIGINT) AS device, \
     CAST(CASE WHEN t.account_key IS NULL THEN 0 ELSE 1 END AS BIGINT) AS tenant, \
     CAST(COALESCE(u.n, 0) AS BIGINT) AS users, \
     CASE WHEN a.spec LIKE '%\"{KEY}\"%' THEN a.spec ELSE NULL END AS spec \
     FROM accounts a \
     LEFT JOIN devices d ON d.account_key = a.public_key \
     LEFT JOIN tenants t ON t.account_key = a.public_key \
     LEFT JOIN (SELECT account, COUNT(*) AS n FROM users GROUP BY account) u ON u.account = a.public_key \
     WHERE a.operator = $1 ORDER BY a.name";

/// The statement behind [`Store::account_briefs_mentioning`]: the same rows as
/// [`BRIEFS`], the spec kept where its lower-cased text is `LIKE` the pattern `$1`
/// (bound first: SQLite numbers `$N` parameters in the order they appear).
const BRIEFS_LIKE: &str = "SELECT a.public_key, a.name, a.created_at, a.updated_at, \
     CAST(CASE WHEN d.account_key IS NULL THEN 0 ELSE 1 END AS BIGINT) AS device, \
     CAST(CASE WHEN t.account_key IS NULL THEN 0 ELSE 1 END AS BIGINT) AS tenant, \
     CAST(COALESCE(u.n, 0) AS BIGINT) AS users, \
     CASE WHEN LOWER(a.spec) LIKE $1 ESCAPE '\\' THEN a.spec ELSE NULL END AS spec \
     FROM accounts a \
     LEFT JOIN devices d ON d.account_key = a.public_key \
     LEFT JOIN tenants t ON t.account_key = a.public_key \
     LEFT JOIN (SELECT account, COUNT(*) AS n FROM users GROUP BY account) u ON u.account = a.public_key \
     WHERE a.operator = $2 ORDER BY a.name";

/// The `LIKE` pattern (escape `\\`) matching text that contains `needle` anywhere.
fn contains_pattern(needle: &str) -> String {
    let mut p = String::with_capacity(needle.len() + 2);
    p.push('%');
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

async fn account_briefs(
    conn: &mut AnyConnection,
    operator: &str,
    spec_of: SpecOf,
) -> Result<Vec<AccountBrief>, StoreError> {
    let key = match spec_of {
        SpecOf::Importers => "imports",
        SpecOf::Exporters => "exports",
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(BRIEFS.replace("{KEY}", key)))
        .bind(operator)
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::query("listing accounts briefly"))?;
    briefs_of(&rows)
}

async fn account_briefs_mentioning(
    conn: &mut AnyConnection,
    operator: &str,
    needle: Option<&str>,
) -> Result<Vec<AccountBrief>, StoreError> {
    // The empty pattern matches only an empty text, which no spec (JSON) is.
    let pattern = needle.map_or_else(String::new, |n| contains_pattern(&n.to_lowercase()));
    let rows = sqlx::query(BRIEFS_LIKE)
        .bind(pattern)
        .bind(operator)
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::query("searching accounts briefly"))?;
    briefs_of(&rows)
}

fn briefs_of(rows: &[sqlx::any::AnyRow]) -> Result<Vec<AccountBrief>, StoreError> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let device: i64 = column(row, "device")?;
        let tenant: i64 = column(row, "tenant")?;
        let users: i64 = column(row, "users")?;
        out.push(AccountBrief {
            public_key: column(row, "public_key")?,
            name: column(row, "name")?,
            device: device != 0,
            tenant: tenant != 0,
            users: usize::try_from(users).unwrap_or(0),
            created_at: column(row, "created_at")?,
            updated_at: column(row, "updated_at")?,
            spec: column(row, "spec")?,
        });
    }
    Ok(out)
}

async fn account_jwts_only(
    conn: &mut AnyConnection,
    operator: &str,
) -> Result<Vec<String>, StoreError> {
    sqlx::query("SELECT jwt FROM accounts WHERE operator = $1 ORDER BY name")
        .bind(operator)
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::query("listing account JWTs"))?
        .iter()
        .map(|r| column(r, "jwt"))
        .collect()
}

async fn accounts_by_keys(
    conn: &mut AnyConnection,
    backend: crate::Backend,
    keys: &[String],
) -> Result<Vec<AccountRow>, StoreError> {
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(crate::relay::KEYS_PER_QUERY) {
        // The columns `AccountRow::from_row` reads (rows.rs's `account_columns!`, which is
        // defined after this module).
        let sql = format!(
            "SELECT public_key, operator, name, spec, jwt, created_at, updated_at \
             FROM accounts WHERE public_key IN ({})",
            crate::bulk::placeholders_for(backend, 1, chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for key in chunk {
            q = q.bind(key.as_str());
        }
        for row in q
            .fetch_all(&mut *conn)
            .await
            .map_err(StoreError::query("reading accounts by key"))?
        {
            out.push(AccountRow::from_row(&row)?);
        }
    }
    Ok(out)
}

impl Store {
    /// Every account of `operator` as the summary pages list it, ordered by name, with
    /// the specs of the accounts that may import or export (`spec_of`): one statement
    /// however many accounts there are.
    pub async fn account_briefs(
        &self,
        operator: &str,
        spec_of: SpecOf,
    ) -> Result<Vec<AccountBrief>, StoreError> {
        account_briefs(&mut *self.pooled().await?, operator, spec_of).await
    }

    /// Every account of `operator` as [`Store::account_briefs`] lists it, with the spec
    /// (as text) of the accounts whose spec contains `needle` ignoring ASCII case (an
    /// over-approximation of a search in a spec field: the caller decodes the field; an
    /// empty needle reads every spec, none reads no spec); one statement however many
    /// accounts there are.
    pub async fn account_briefs_mentioning(
        &self,
        operator: &str,
        needle: Option<&str>,
    ) -> Result<Vec<AccountBrief>, StoreError> {
        account_briefs_mentioning(&mut *self.pooled().await?, operator, needle).await
    }

    /// The whole rows of the accounts with these public keys, in no particular order
    /// (keys of no account left out): a page's accounts read in one or a few statements.
    pub async fn accounts_by_keys(&self, keys: &[String]) -> Result<Vec<AccountRow>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        accounts_by_keys(&mut *self.pooled().await?, self.backend(), keys).await
    }

    /// The JWT of every account of `operator` (for who signed each), nothing else.
    pub async fn account_jwts_only(&self, operator: &str) -> Result<Vec<String>, StoreError> {
        account_jwts_only(&mut *self.pooled().await?, operator).await
    }
}

impl Tx<'_> {
    /// [`Store::account_jwts_only`] inside this transaction.
    pub async fn account_jwts_only(&mut self, operator: &str) -> Result<Vec<String>, StoreError> {
        account_jwts_only(self.conn(), operator).await
    }
}
