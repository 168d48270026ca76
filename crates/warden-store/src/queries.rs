//! The statements behind [`crate::Store`] and [`crate::Tx`]: one function per operation,
//! each on a connection, so a `Store` read and a `Tx` read share their semantics.

use sqlx::AnyConnection;

use crate::StoreError;
use crate::ledger::canonical_json;
use crate::rows::{
    AccountRow, Counts, MigrationRecord, OperatorRow, UserRow, account_columns, column,
    operator_columns, user_columns,
};
use crate::seal::MasterKey;

/// Maps a failed write: a uniqueness violation that slipped past the pre-checks (a concurrent
/// writer) becomes [`StoreError::Conflict`], anything else [`StoreError::Query`].
fn write_error(context: &'static str, what: String) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| match &source {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict { what },
        _ => StoreError::Query { context, source },
    }
}

fn not_found(what: String) -> StoreError {
    StoreError::NotFound { what }
}

// ----------------------------------------------------------------------------------------
// Seeds
// ----------------------------------------------------------------------------------------

pub(crate) async fn seed_exists(
    conn: &mut AnyConnection,
    public_key: &str,
) -> Result<bool, StoreError> {
    Ok(
        sqlx::query("SELECT public_key FROM nkeys WHERE public_key = $1")
            .bind(public_key)
            .fetch_optional(&mut *conn)
            .await
            .map_err(StoreError::query("looking up a seed"))?
            .is_some(),
    )
}

pub(crate) async fn put_seed(
    conn: &mut AnyConnection,
    key: &MasterKey,
    public_key: &str,
    kind: &str,
    seed: &str,
    now: i64,
) -> Result<(), StoreError> {
    let what = || format!("seed for {public_key}");
    if seed_exists(conn, public_key).await? {
        return Err(StoreError::Conflict { what: what() });
    }
    let sealed = key.seal(public_key, seed.as_bytes())?;
    sqlx::query(
        "INSERT INTO nkeys (public_key, kind, sealed_seed, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(public_key)
    .bind(kind)
    .bind(&sealed)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(write_error("storing a sealed seed", what()))?;
    Ok(())
}

pub(crate) async fn seed(
    conn: &mut AnyConnection,
    key: &MasterKey,
    public_key: &str,
) -> Result<zeroize::Zeroizing<String>, StoreError> {
    let row = sqlx::query("SELECT sealed_seed FROM nkeys WHERE public_key = $1")
        .bind(public_key)
        .fetch_optional(&mut *conn)
        .await
        .map_err(StoreError::query("reading a sealed seed"))?
        .ok_or_else(|| not_found(format!("seed for {public_key}")))?;
    let sealed: String = column(&row, "sealed_seed")?;
    Ok(key.unseal_str(public_key, &sealed)?)
}

pub(crate) async fn delete_seed(
    conn: &mut AnyConnection,
    public_key: &str,
) -> Result<(), StoreError> {
    let done = sqlx::query("DELETE FROM nkeys WHERE public_key = $1")
        .bind(public_key)
        .execute(&mut *conn)
        .await
        .map_err(StoreError::query("deleting a seed"))?;
    if done.rows_affected() == 0 {
        return Err(not_found(format!("seed for {public_key}")));
    }
    Ok(())
}

// ----------------------------------------------------------------------------------------
// Operator
// ----------------------------------------------------------------------------------------

pub(crate) async fn operator(conn: &mut AnyConnection) -> Result<Option<OperatorRow>, StoreError> {
    sqlx::query(concat!(
        "SELECT ",
        operator_columns!(),
        " FROM operators ORDER BY created_at, public_key LIMIT 1"
    ))
    .fetch_optional(&mut *conn)
    .await
    .map_err(StoreError::query("reading the operator"))?
    .as_ref()
    .map(OperatorRow::from_row)
    .transpose()
}

pub(crate) async fn insert_operator(
    conn: &mut AnyConnection,
    row: &OperatorRow,
) -> Result<(), StoreError> {
    if let Some(existing) = operator(conn).await? {
        return Err(StoreError::Conflict {
            what: format!(
                "an operator (\"{}\", {}; a store holds one)",
                existing.name, existing.public_key
            ),
        });
    }
    sqlx::query(concat!(
        "INSERT INTO operators (",
        operator_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
    ))
    .bind(&row.public_key)
    .bind(&row.name)
    .bind(&row.signing_key)
    .bind(&row.system_account)
    .bind(&row.jwt)
    .bind(row.created_at)
    .bind(row.updated_at)
    .execute(&mut *conn)
    .await
    .map_err(write_error(
        "inserting the operator",
        format!("operator {}", row.public_key),
    ))?;
    Ok(())
}

pub(crate) async fn update_operator(
    conn: &mut AnyConnection,
    row: &OperatorRow,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE operators SET name = $1, signing_key = $2, system_account = $3, jwt = $4, \
         updated_at = $5 WHERE public_key = $6",
    )
    .bind(&row.name)
    .bind(&row.signing_key)
    .bind(&row.system_account)
    .bind(&row.jwt)
    .bind(row.updated_at)
    .bind(&row.public_key)
    .execute(&mut *conn)
    .await
    .map_err(write_error(
        "updating the operator",
        format!("operator named \"{}\"", row.name),
    ))?;
    if done.rows_affected() == 0 {
        return Err(not_found(format!("operator {}", row.public_key)));
    }
    Ok(())
}

// ----------------------------------------------------------------------------------------
// Accounts
// ----------------------------------------------------------------------------------------

pub(crate) async fn account_by_name(
    conn: &mut AnyConnection,
    operator: &str,
    name: &str,
) -> Result<Option<AccountRow>, StoreError> {
    sqlx::query(concat!(
        "SELECT ",
        account_columns!(),
        " FROM accounts WHERE operator = $1 AND name = $2"
    ))
    .bind(operator)
    .bind(name)
    .fetch_optional(&mut *conn)
    .await
    .map_err(StoreError::query("reading an account by name"))?
    .as_ref()
    .map(AccountRow::from_row)
    .transpose()
}

pub(crate) async fn account(
    conn: &mut AnyConnection,
    public_key: &str,
) -> Result<Option<AccountRow>, StoreError> {
    sqlx::query(concat!(
        "SELECT ",
        account_columns!(),
        " FROM accounts WHERE public_key = $1"
    ))
    .bind(public_key)
    .fetch_optional(&mut *conn)
    .await
    .map_err(StoreError::query("reading an account"))?
    .as_ref()
    .map(AccountRow::from_row)
    .transpose()
}

pub(crate) async fn accounts(
    conn: &mut AnyConnection,
    operator: &str,
) -> Result<Vec<AccountRow>, StoreError> {
    sqlx::query(concat!(
        "SELECT ",
        account_columns!(),
        " FROM accounts WHERE operator = $1 ORDER BY name"
    ))
    .bind(operator)
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::query("listing accounts"))?
    .iter()
    .map(AccountRow::from_row)
    .collect()
}

async fn operator_exists(conn: &mut AnyConnection, public_key: &str) -> Result<bool, StoreError> {
    Ok(
        sqlx::query("SELECT public_key FROM operators WHERE public_key = $1")
            .bind(public_key)
            .fetch_optional(&mut *conn)
            .await
            .map_err(StoreError::query("looking up an operator"))?
            .is_some(),
    )
}

fn account_name_what(operator: &str, name: &str) -> String {
    format!("account \"{name}\" of operator {operator}")
}

pub(crate) async fn insert_account(
    conn: &mut AnyConnection,
    row: &AccountRow,
) -> Result<(), StoreError> {
    if !operator_exists(conn, &row.operator).await? {
        return Err(not_found(format!("operator {}", row.operator)));
    }
    if account_by_name(conn, &row.operator, &row.name)
        .await?
        .is_some()
    {
        return Err(StoreError::Conflict {
            what: account_name_what(&row.operator, &row.name),
        });
    }
    if account(conn, &row.public_key).await?.is_some() {
        return Err(StoreError::Conflict {
            what: format!("account {}", row.public_key),
        });
    }
    sqlx::query(concat!(
        "INSERT INTO accounts (",
        account_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
    ))
    .bind(&row.public_key)
    .bind(&row.operator)
    .bind(&row.name)
    .bind(canonical_json(&row.spec))
    .bind(&row.jwt)
    .bind(row.created_at)
    .bind(row.updated_at)
    .execute(&mut *conn)
    .await
    .map_err(write_error(
        "inserting an account",
        account_name_what(&row.operator, &row.name),
    ))?;
    Ok(())
}

pub(crate) async fn update_account(
    conn: &mut AnyConnection,
    row: &AccountRow,
) -> Result<(), StoreError> {
    let Some(current) = account(conn, &row.public_key).await? else {
        return Err(not_found(format!("account {}", row.public_key)));
    };
    if current.name != row.name
        && account_by_name(conn, &current.operator, &row.name)
            .await?
            .is_some()
    {
        return Err(StoreError::Conflict {
            what: account_name_what(&current.operator, &row.name),
        });
    }
    sqlx::query(
        "UPDATE accounts SET name = $1, spec = $2, jwt = $3, updated_at = $4 \
         WHERE public_key = $5",
    )
    .bind(&row.name)
    .bind(canonical_json(&row.spec))
    .bind(&row.jwt)
    .bind(row.updated_at)
    .bind(&row.public_key)
    .execute(&mut *conn)
    .await
    .map_err(write_error(
        "updating an account",
        account_name_what(&current.operator, &row.name),
    ))?;
    Ok(())
}

pub(crate) async fn delete_account(
    conn: &mut AnyConnection,
    public_key: &str,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM users WHERE account = $1")
        .bind(public_key)
        .execute(&mut *conn)
        .await
        .map_err(StoreError::query("deleting the users of an account"))?;
    let done = sqlx::query("DELETE FROM accounts WHERE public_key = $1")
        .bind(public_key)
        .execute(&mut *conn)
        .await
        .map_err(StoreError::query("deleting an account"))?;
    if done.rows_affected() == 0 {
        return Err(not_found(format!("account {public_key}")));
    }
    Ok(())
}

// ----------------------------------------------------------------------------------------
// Users
// ----------------------------------------------------------------------------------------

pub(crate) async fn user_by_name(
    conn: &mut AnyConnection,
    account: &str,
    name: &str,
) -> Result<Option<UserRow>, StoreError> {
    sqlx::query(concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE account = $1 AND name = $2"
    ))
    .bind(account)
    .bind(name)
    .fetch_optional(&mut *conn)
    .await
    .map_err(StoreError::query("reading a user by name"))?
    .as_ref()
    .map(UserRow::from_row)
    .transpose()
}

pub(crate) async fn user(
    conn: &mut AnyConnection,
    public_key: &str,
) -> Result<Option<UserRow>, StoreError> {
    sqlx::query(concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE public_key = $1"
    ))
    .bind(public_key)
    .fetch_optional(&mut *conn)
    .await
    .map_err(StoreError::query("reading a user"))?
    .as_ref()
    .map(UserRow::from_row)
    .transpose()
}

pub(crate) async fn users(
    conn: &mut AnyConnection,
    account: &str,
) -> Result<Vec<UserRow>, StoreError> {
    sqlx::query(concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE account = $1 ORDER BY name"
    ))
    .bind(account)
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::query("listing users"))?
    .iter()
    .map(UserRow::from_row)
    .collect()
}

/// How many users each account has (accounts without users are absent), in one query:
/// listing thousands of accounts must not ask once per account.
pub(crate) async fn user_counts(
    conn: &mut AnyConnection,
) -> Result<std::collections::BTreeMap<String, usize>, StoreError> {
    let rows = sqlx::query("SELECT account, COUNT(*) AS n FROM users GROUP BY account")
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::query("counting users"))?;
    let mut out = std::collections::BTreeMap::new();
    for row in &rows {
        let account: String = crate::rows::column(row, "account")?;
        let n: i64 = crate::rows::column(row, "n")?;
        out.insert(account, usize::try_from(n).unwrap_or(0));
    }
    Ok(out)
}

fn user_name_what(account: &str, name: &str) -> String {
    format!("user \"{name}\" of account {account}")
}

pub(crate) async fn insert_user(conn: &mut AnyConnection, row: &UserRow) -> Result<(), StoreError> {
    if account(conn, &row.account).await?.is_none() {
        return Err(not_found(format!("account {}", row.account)));
    }
    if user_by_name(conn, &row.account, &row.name).await?.is_some() {
        return Err(StoreError::Conflict {
            what: user_name_what(&row.account, &row.name),
        });
    }
    if user(conn, &row.public_key).await?.is_some() {
        return Err(StoreError::Conflict {
            what: format!("user {}", row.public_key),
        });
    }
    sqlx::query(concat!(
        "INSERT INTO users (",
        user_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    ))
    .bind(&row.public_key)
    .bind(&row.account)
    .bind(&row.name)
    .bind(canonical_json(&row.spec))
    .bind(&row.jwt)
    .bind(row.signing_key.as_deref())
    .bind(row.revoked_at)
    .bind(row.created_at)
    .bind(row.updated_at)
    .execute(&mut *conn)
    .await
    .map_err(write_error(
        "inserting a user",
        user_name_what(&row.account, &row.name),
    ))?;
    Ok(())
}

pub(crate) async fn update_user(conn: &mut AnyConnection, row: &UserRow) -> Result<(), StoreError> {
    let Some(current) = user(conn, &row.public_key).await? else {
        return Err(not_found(format!("user {}", row.public_key)));
    };
    if current.name != row.name
        && user_by_name(conn, &current.account, &row.name)
            .await?
            .is_some()
    {
        return Err(StoreError::Conflict {
            what: user_name_what(&current.account, &row.name),
        });
    }
    sqlx::query(
        "UPDATE users SET name = $1, spec = $2, jwt = $3, signing_key = $4, revoked_at = $5, \
         updated_at = $6 WHERE public_key = $7",
    )
    .bind(&row.name)
    .bind(canonical_json(&row.spec))
    .bind(&row.jwt)
    .bind(row.signing_key.as_deref())
    .bind(row.revoked_at)
    .bind(row.updated_at)
    .bind(&row.public_key)
    .execute(&mut *conn)
    .await
    .map_err(write_error(
        "updating a user",
        user_name_what(&current.account, &row.name),
    ))?;
    Ok(())
}

pub(crate) async fn delete_user(
    conn: &mut AnyConnection,
    public_key: &str,
) -> Result<(), StoreError> {
    let done = sqlx::query("DELETE FROM users WHERE public_key = $1")
        .bind(public_key)
        .execute(&mut *conn)
        .await
        .map_err(StoreError::query("deleting a user"))?;
    if done.rows_affected() == 0 {
        return Err(not_found(format!("user {public_key}")));
    }
    Ok(())
}

// ----------------------------------------------------------------------------------------
// JWT migrations
// ----------------------------------------------------------------------------------------

pub(crate) async fn migration_applied(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<bool, StoreError> {
    Ok(sqlx::query("SELECT id FROM jwt_migrations WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(StoreError::query("looking up a JWT migration"))?
        .is_some())
}

pub(crate) async fn record_migration(
    conn: &mut AnyConnection,
    id: &str,
    description: &str,
    now: i64,
) -> Result<(), StoreError> {
    let what = || format!("JWT migration {id}");
    if migration_applied(conn, id).await? {
        return Err(StoreError::Conflict { what: what() });
    }
    sqlx::query("INSERT INTO jwt_migrations (id, description, applied_at) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(description)
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(write_error("recording a JWT migration", what()))?;
    Ok(())
}

pub(crate) async fn migrations_applied(
    conn: &mut AnyConnection,
) -> Result<Vec<MigrationRecord>, StoreError> {
    sqlx::query("SELECT id, description, applied_at FROM jwt_migrations ORDER BY applied_at, id")
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::query("listing JWT migrations"))?
        .iter()
        .map(MigrationRecord::from_row)
        .collect()
}

// ----------------------------------------------------------------------------------------
// Settings (table meta)
// ----------------------------------------------------------------------------------------

/// `meta` keys the store itself owns; callers cannot overwrite them.
pub(crate) const RESERVED_META_KEYS: &[&str] = &["seal_check"];

pub(crate) async fn meta(
    conn: &mut AnyConnection,
    key: &str,
) -> Result<Option<String>, StoreError> {
    sqlx::query("SELECT value FROM meta WHERE key = $1")
        .bind(key)
        .fetch_optional(&mut *conn)
        .await
        .map_err(StoreError::query("reading a setting"))?
        .as_ref()
        .map(|row| column(row, "value"))
        .transpose()
}

pub(crate) async fn set_meta(
    conn: &mut AnyConnection,
    key: &str,
    value: &str,
) -> Result<(), StoreError> {
    if RESERVED_META_KEYS.contains(&key) {
        return Err(StoreError::Conflict {
            what: format!("setting \"{key}\" (reserved for the store)"),
        });
    }
    sqlx::query(
        "INSERT INTO meta (key, value) VALUES ($1, $2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::query("writing a setting"))?;
    Ok(())
}

// ----------------------------------------------------------------------------------------
// Counts
// ----------------------------------------------------------------------------------------

pub(crate) async fn counts(conn: &mut AnyConnection) -> Result<Counts, StoreError> {
    let row = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM operators) AS operators, \
         (SELECT COUNT(*) FROM accounts) AS accounts, \
         (SELECT COUNT(*) FROM users) AS users, \
         (SELECT COUNT(*) FROM nkeys) AS nkeys, \
         (SELECT COUNT(*) FROM ledger) AS ledger_events, \
         (SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL) AS outbox_pending",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(StoreError::query("counting rows"))?;
    Ok(Counts {
        operators: column(&row, "operators")?,
        accounts: column(&row, "accounts")?,
        users: column(&row, "users")?,
        nkeys: column(&row, "nkeys")?,
        ledger_events: column(&row, "ledger_events")?,
        outbox_pending: column(&row, "outbox_pending")?,
    })
}
