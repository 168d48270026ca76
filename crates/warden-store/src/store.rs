//! The [`Store`] handle: opening a database by URL, short reads, and [`Tx`], the one way to
//! write.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::{Any, AnyPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::{AnyConnection, AnyPool, Connection as _, Transaction};
use zeroize::Zeroizing;

use crate::StoreError;
use crate::ledger::{self, LedgerEvent, LedgerReport, NewEvent};
use crate::outbox::{self, OutboxRow};
use crate::queries;
use crate::rows::{AccountRow, Counts, MigrationRecord, OperatorRow, UserRow, column};
use crate::schema::MIGRATOR;
use crate::seal::MasterKey;
use crate::tokens::{self, ApiTokenRow};

/// How long SQLite waits for a lock held by another connection before failing.
const SQLITE_BUSY_TIMEOUT_MS: u64 = 10_000;
/// How long the first connection attempt of [`Store::open`] may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long acquiring a pooled connection may take.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(15);

/// The `meta` row that proves the master key is the database's.
const SEAL_CHECK_KEY: &str = "seal_check";
const SEAL_CHECK_AAD: &str = "warden:meta:seal_check";
const SEAL_CHECK_PLAINTEXT: &[u8] = b"warden seal check v1";

/// Which database a [`Store`] runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// An SQLite file (`sqlite://…`), the default for one machine.
    Sqlite,
    /// PostgreSQL (`postgres://…` or `postgresql://…`).
    Postgres,
}

impl Backend {
    /// The backend a URL selects, by its scheme.
    pub fn from_url(url: &str) -> Option<Backend> {
        let scheme = url.split_once(':')?.0.to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Some(Backend::Sqlite),
            "postgres" | "postgresql" => Some(Backend::Postgres),
            _ => None,
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// `url` with its password (in the authority, or a `password=` query parameter) replaced by
/// `***`. Everything else is left exactly as given.
///
/// ```
/// use warden_store::redact_url;
/// assert_eq!(redact_url("postgres://u:secret@db/x"), "postgres://u:***@db/x");
/// assert_eq!(redact_url("sqlite:///var/lib/warden/warden.db"), "sqlite:///var/lib/warden/warden.db");
/// ```
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let start = scheme_end + 3;
        let rest = &out[start..];
        let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_len];
        if let Some(at) = authority.rfind('@')
            && let Some(colon) = authority[..at].find(':')
        {
            out.replace_range(start + colon + 1..start + at, "***");
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let (query, fragment) = match query.find('#') {
            Some(h) => query.split_at(h),
            None => (query, ""),
        };
        let redacted: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                Some((k, _)) if k.eq_ignore_ascii_case("sslpassword") => format!("{k}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out = format!("{head}{}{fragment}", redacted.join("&"));
    }
    out
}

/// Installs sqlx's `Any` drivers once per process.
fn install_drivers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(sqlx::any::install_default_drivers);
}

/// Now, in unix seconds.
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Where an SQLite URL points.
enum SqliteTarget {
    Memory,
    File(PathBuf),
}

fn sqlite_target(url: &str) -> SqliteTarget {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" || query.split('&').any(|p| p == "mode=memory") {
        SqliteTarget::Memory
    } else {
        // sqlx percent-decodes the path (so `?` and `#` can appear in file names): so do we.
        SqliteTarget::File(PathBuf::from(percent_decode(path)))
    }
}

/// `%XX` escapes decoded; anything that is not a valid escape is kept as is.
fn percent_decode(text: &str) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStringExt;
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    std::ffi::OsString::from_vec(out)
}

/// Creates the database file with mode 0600 if it is missing (so it is never readable by
/// others, not even briefly) and tightens an existing one (and its WAL files) to 0600.
fn prepare_sqlite_file(path: &Path) -> io::Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        match fs::set_permissions(&side, fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Applies the embedded migrations.
///
/// PostgreSQL serialises concurrent migrators with an advisory lock; sqlx's SQLite migrator
/// takes none, so on SQLite the whole run happens inside one `BEGIN IMMEDIATE` transaction
/// (each migration becomes a savepoint), and a second process opening the same new file
/// waits, then finds the migrations applied.
async fn migrate(pool: &AnyPool, backend: Backend) -> Result<(), StoreError> {
    match backend {
        Backend::Postgres => Ok(MIGRATOR.run(pool).await?),
        Backend::Sqlite => {
            let mut conn = pool
                .acquire()
                .await
                .map_err(StoreError::query("acquiring a connection to migrate"))?;
            let mut tx = conn
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(StoreError::query("locking the database to migrate"))?;
            MIGRATOR.run(&mut *tx).await?;
            tx.commit()
                .await
                .map_err(StoreError::query("committing the migrations"))
        }
    }
}

pub(crate) struct Inner {
    pub(crate) pool: AnyPool,
    pub(crate) key: MasterKey,
    pub(crate) url_redacted: String,
    pub(crate) backend: Backend,
    /// Whether a commit wrote to a SQLite file's write-ahead log since the last
    /// checkpoint (see [`checkpoints`]); unused on PostgreSQL and in-memory SQLite.
    pub(crate) wal_written: std::sync::atomic::AtomicBool,
}

/// How often a SQLite file store copies its write-ahead log into the database, when
/// something was committed meanwhile.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Checkpoints a SQLite file's write-ahead log in the background, for as long as the
/// store is open. SQLite's own automatic checkpoint runs inside the commit that takes
/// the log past 1,000 pages: that commit then waits for the log and the database file to
/// be synced and the pages copied (5–15 ms measured here; a group commit of the rooms
/// gateway holds back every sender in it). Connections are opened with
/// `wal_autocheckpoint = 0` and this task checkpoints instead (`PASSIVE`: it waits for
/// no reader or writer, and commits go on appending to the log meanwhile). Closing the
/// store's last connection checkpoints what is left, as SQLite always does.
async fn checkpoints(inner: std::sync::Weak<Inner>) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if inner.pool.is_closed() {
            return;
        }
        if !inner
            .wal_written
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            continue;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&inner.pool)
            .await
        {
            // The next commit marks the log again, and the checkpoint is retried.
            tracing::debug!(error = %e, "write-ahead log checkpoint failed");
        }
    }
}

/// A handle on the database: cheap to clone (the pool and the master key are shared).
///
/// Reads are short, each on its own connection; every write goes through [`Store::begin`].
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("url", &self.inner.url_redacted)
            .field("backend", &self.inner.backend)
            .finish_non_exhaustive()
    }
}

/// Connections to a SQLite file: SQLite writes one transaction at a time and WAL readers
/// need no more than a couple per core, while each connection is a thread of its own with
/// its page and statement caches (~200 KB apiece in a rooms gateway): two per core,
/// between 4 and 8.
fn sqlite_pool_size() -> u32 {
    let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
    u32::try_from(cores.saturating_mul(2))
        .unwrap_or(u32::MAX)
        .clamp(4, 8)
}

impl Store {
    /// Opens the database at `url` (`sqlite://<path>` or `postgres://…`), applies the schema
    /// migrations and checks that `key` is the database's master key (the first open records
    /// a sealed check value; later opens with another key fail with
    /// [`StoreError::WrongMasterKey`]).
    ///
    /// SQLite files are created if missing, with mode 0600, and run in WAL mode with a busy
    /// timeout. An unreachable database is [`StoreError::Connect`], naming the URL without
    /// its password.
    pub async fn open(url: &str, key: MasterKey) -> Result<Store, StoreError> {
        install_drivers();
        let url_redacted = redact_url(url);
        let connect_error = |source: sqlx::Error| StoreError::Connect {
            url: url_redacted.clone(),
            source,
        };
        let backend = Backend::from_url(url).ok_or_else(|| {
            connect_error(sqlx::Error::Configuration(
                "unsupported database URL: expected sqlite://<path> or postgres://…".into(),
            ))
        })?;

        let mut url = url.to_owned();
        let mut options = AnyPoolOptions::new().acquire_timeout(ACQUIRE_TIMEOUT);
        let mut wal = false;
        match backend {
            Backend::Sqlite => match sqlite_target(&url) {
                SqliteTarget::Memory => {
                    // Every connection would get its own database: keep exactly one, forever.
                    options = options
                        .max_connections(1)
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None);
                }
                SqliteTarget::File(path) => {
                    prepare_sqlite_file(&path).map_err(|e| connect_error(sqlx::Error::Io(e)))?;
                    if !url.contains("mode=") {
                        url.push(if url.contains('?') { '&' } else { '?' });
                        url.push_str("mode=rwc");
                    }
                    options = options.max_connections(sqlite_pool_size());
                    wal = true;
                }
            },
            Backend::Postgres => options = options.max_connections(10),
        }
        if backend == Backend::Sqlite {
            options = options.after_connect(move |conn, _meta| {
                Box::pin(async move {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}"
                    )))
                    .execute(&mut *conn)
                    .await?;
                    if wal {
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA synchronous = NORMAL")
                            .execute(&mut *conn)
                            .await?;
                        // The store's own task checkpoints, off the commit path.
                        sqlx::query("PRAGMA wal_autocheckpoint = 0")
                            .execute(&mut *conn)
                            .await?;
                    }
                    sqlx::query("PRAGMA foreign_keys = ON")
                        .execute(&mut *conn)
                        .await?;
                    // A statement that changes several rows inside a transaction (every
                    // multi-row insert and update of a batch: room messages, devices,
                    // outbox marks) keeps a statement journal of the pages it touches, to
                    // undo itself alone if it fails. Past 64 KiB SQLite spills that journal
                    // to a temporary file, created, written and deleted per transaction: in
                    // the rooms gateway's group commits that was ~8 % of its CPU. In memory
                    // it is bounded by one statement's pages and freed with it.
                    sqlx::query("PRAGMA temp_store = MEMORY")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            });
        }
        // One direct attempt first: the pool retries until its acquire timeout and then
        // reports only "timed out"; this fails at once with the driver's reason.
        match tokio::time::timeout(CONNECT_TIMEOUT, AnyConnection::connect(&url)).await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
            }
            Ok(Err(e)) => return Err(connect_error(e)),
            Err(_) => {
                return Err(connect_error(sqlx::Error::Io(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no connection within {} s", CONNECT_TIMEOUT.as_secs()),
                ))));
            }
        }
        let pool = options.connect(&url).await.map_err(connect_error)?;
        if let Err(e) = migrate(&pool, backend).await {
            pool.close().await;
            return Err(e);
        }
        let store = Store {
            inner: Arc::new(Inner {
                pool,
                key,
                url_redacted,
                backend,
                wal_written: std::sync::atomic::AtomicBool::new(false),
            }),
        };
        if wal {
            tokio::spawn(checkpoints(Arc::downgrade(&store.inner)));
        }
        if let Err(e) = store.seal_check().await {
            store.close().await;
            return Err(e);
        }
        Ok(store)
    }

    /// Writes the seal check the first time, then verifies the master key opens it.
    async fn seal_check(&self) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let read = "SELECT value FROM meta WHERE key = $1";
        let mut row = sqlx::query(read)
            .bind(SEAL_CHECK_KEY)
            .fetch_optional(&mut *conn)
            .await
            .map_err(StoreError::query("reading the seal check"))?;
        if row.is_none() {
            let sealed = self.inner.key.seal(SEAL_CHECK_AAD, SEAL_CHECK_PLAINTEXT)?;
            // Two first opens may race: the first insert wins, both then check it.
            sqlx::query(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            )
            .bind(SEAL_CHECK_KEY)
            .bind(&sealed)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::query("writing the seal check"))?;
            row = sqlx::query(read)
                .bind(SEAL_CHECK_KEY)
                .fetch_optional(&mut *conn)
                .await
                .map_err(StoreError::query("reading the seal check"))?;
        }
        let row = row.ok_or_else(|| StoreError::NotFound {
            what: "the seal check in table meta".to_owned(),
        })?;
        let sealed: String = column(&row, "value")?;
        match self.inner.key.unseal(SEAL_CHECK_AAD, &sealed) {
            Ok(plain) if plain.as_slice() == SEAL_CHECK_PLAINTEXT => Ok(()),
            _ => Err(StoreError::WrongMasterKey),
        }
    }

    /// The URL the store was opened with, password replaced by `***`.
    pub fn url_redacted(&self) -> &str {
        &self.inner.url_redacted
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// Closes every connection (waiting for them to be returned). Later calls fail.
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }

    async fn conn(&self) -> Result<PoolConnection<Any>, StoreError> {
        self.pooled().await
    }

    /// A pooled connection, for the crate's other modules.
    pub(crate) async fn pooled(&self) -> Result<PoolConnection<Any>, StoreError> {
        self.inner
            .pool
            .acquire()
            .await
            .map_err(StoreError::query("acquiring a database connection"))
    }

    /// Starts a transaction. Nothing it writes is visible until [`Tx::commit`]; dropping it
    /// uncommitted rolls everything back.
    ///
    /// On SQLite the transaction takes the write lock at once (`BEGIN IMMEDIATE`), so
    /// concurrent writers wait (up to the busy timeout) instead of failing mid-way.
    pub async fn begin(&self) -> Result<Tx<'_>, StoreError> {
        let tx = match self.inner.backend {
            Backend::Sqlite => self.inner.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.inner.pool.begin().await,
        }
        .map_err(StoreError::query("starting a transaction"))?;
        Ok(Tx {
            tx,
            store: self,
            locked: false,
            kept_unfinished: None,
        })
    }

    /// [`Store::begin`] on `kept` (connecting it first if it holds no connection), for a
    /// writer that commits many small transactions in a row.
    ///
    /// A transaction dropped without [`Tx::commit`] or [`Tx::rollback`] would stay open on
    /// the connection, with its locks, until the connection's next use (sqlx rolls back
    /// lazily); so the next `begin_on` drops that connection — the server rolls the
    /// transaction back when it closes — and opens another.
    pub async fn begin_on<'a>(
        &'a self,
        kept: &'a mut KeptConnection,
    ) -> Result<Tx<'a>, StoreError> {
        if kept.unfinished {
            kept.discard();
        }
        let KeptConnection { conn, unfinished } = kept;
        let conn = match conn {
            Some(conn) => conn,
            empty => empty.insert(self.pooled().await?.detach()),
        };
        let tx = match self.inner.backend {
            Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => conn.begin().await,
        }
        .map_err(StoreError::query("starting a transaction"))?;
        *unfinished = true;
        Ok(Tx {
            tx,
            store: self,
            locked: false,
            kept_unfinished: Some(unfinished),
        })
    }

    /// The operator, if the store has been initialised.
    pub async fn operator(&self) -> Result<Option<OperatorRow>, StoreError> {
        queries::operator(&mut *self.conn().await?).await
    }

    /// The account `name` of `operator`.
    pub async fn account_by_name(
        &self,
        operator: &str,
        name: &str,
    ) -> Result<Option<AccountRow>, StoreError> {
        queries::account_by_name(&mut *self.conn().await?, operator, name).await
    }

    /// The account with this public key.
    pub async fn account(&self, public_key: &str) -> Result<Option<AccountRow>, StoreError> {
        queries::account(&mut *self.conn().await?, public_key).await
    }

    /// The accounts of `operator`, ordered by name.
    pub async fn accounts(&self, operator: &str) -> Result<Vec<AccountRow>, StoreError> {
        queries::accounts(&mut *self.conn().await?, operator).await
    }

    /// The user `name` of `account`.
    pub async fn user_by_name(
        &self,
        account: &str,
        name: &str,
    ) -> Result<Option<UserRow>, StoreError> {
        queries::user_by_name(&mut *self.conn().await?, account, name).await
    }

    /// The user with this public key.
    pub async fn user(&self, public_key: &str) -> Result<Option<UserRow>, StoreError> {
        queries::user(&mut *self.conn().await?, public_key).await
    }

    /// The users of `account`, ordered by name (revoked ones included).
    pub async fn users(&self, account: &str) -> Result<Vec<UserRow>, StoreError> {
        queries::users(&mut *self.conn().await?, account).await
    }

    /// How many users each account (by public key) has; accounts without users are absent.
    pub async fn user_counts(
        &self,
    ) -> Result<std::collections::BTreeMap<String, usize>, StoreError> {
        queries::user_counts(&mut *self.conn().await?).await
    }

    /// The seed of `public_key`, unsealed. [`StoreError::NotFound`] if there is none.
    pub async fn seed(&self, public_key: &str) -> Result<Zeroizing<String>, StoreError> {
        queries::seed(&mut *self.conn().await?, &self.inner.key, public_key).await
    }

    /// Whether a seed is stored for `public_key`.
    pub async fn has_seed(&self, public_key: &str) -> Result<bool, StoreError> {
        queries::seed_exists(&mut *self.conn().await?, public_key).await
    }

    /// The JWT migrations applied so far, oldest first.
    pub async fn migrations_applied(&self) -> Result<Vec<MigrationRecord>, StoreError> {
        queries::migrations_applied(&mut *self.conn().await?).await
    }

    /// Ledger events with `seq > after_seq`, in order, at most `limit`.
    pub async fn ledger(&self, after_seq: i64, limit: i64) -> Result<Vec<LedgerEvent>, StoreError> {
        ledger::read(&mut *self.conn().await?, after_seq, limit)
            .await?
            .into_iter()
            .map(|raw| raw.into_event())
            .collect()
    }

    /// Walks the whole ledger and reports the first edited, inserted or removed event.
    pub async fn verify_ledger(&self) -> Result<LedgerReport, StoreError> {
        ledger::verify(&mut *self.conn().await?).await
    }

    /// The setting `key` (table `meta`), if set.
    pub async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        queries::meta(&mut *self.conn().await?, key).await
    }

    /// Row counts.
    pub async fn counts(&self) -> Result<Counts, StoreError> {
        queries::counts(&mut *self.conn().await?).await
    }

    /// Undelivered outbox messages due at `now` (unix seconds), oldest first, at most `limit`.
    pub async fn pending_outbox(&self, now: i64, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        outbox::pending(&mut *self.conn().await?, now, 0, limit).await
    }

    /// [`Store::pending_outbox`] from the rows with ids above `after` on (ids start at 1):
    /// the next batch while the one before it is still in flight.
    pub async fn pending_outbox_after(
        &self,
        now: i64,
        after: i64,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        outbox::pending(&mut *self.conn().await?, now, after, limit).await
    }

    /// One outbox message by id.
    pub async fn outbox_message(&self, id: i64) -> Result<Option<OutboxRow>, StoreError> {
        outbox::get(&mut *self.conn().await?, id).await
    }

    /// Marks outbox message `id` delivered at `at`. [`StoreError::NotFound`] if absent.
    pub async fn mark_delivered(&self, id: i64, at: i64) -> Result<(), StoreError> {
        outbox::mark_delivered(&mut *self.conn().await?, id, at).await
    }

    /// Records a failed delivery of outbox message `id`: counts the attempt, keeps `error`
    /// and defers the next try to `next_attempt_at`. [`StoreError::NotFound`] if absent.
    pub async fn mark_failed(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: i64,
    ) -> Result<(), StoreError> {
        outbox::mark_failed(&mut *self.conn().await?, id, error, next_attempt_at).await
    }

    /// The API token with this id.
    pub async fn api_token(&self, id: &str) -> Result<Option<ApiTokenRow>, StoreError> {
        tokens::by_id(&mut *self.conn().await?, id).await
    }

    /// The API token whose secret hashes to `hash` (lowercase hex SHA-256).
    pub async fn api_token_by_hash(&self, hash: &str) -> Result<Option<ApiTokenRow>, StoreError> {
        tokens::by_hash(&mut *self.conn().await?, hash).await
    }

    /// Every API token, oldest first (revoked and expired ones included).
    pub async fn api_tokens(&self) -> Result<Vec<ApiTokenRow>, StoreError> {
        tokens::list(&mut *self.conn().await?).await
    }

    /// Records that API token `id` was used at `at`, unless its last use is at or after
    /// `not_before`; returns whether it wrote. Outside any transaction (best effort).
    pub async fn touch_api_token(
        &self,
        id: &str,
        at: i64,
        not_before: i64,
    ) -> Result<bool, StoreError> {
        tokens::touch(&mut *self.conn().await?, id, at, not_before).await
    }
}

/// A database connection one writer keeps out of the pool for its transactions
/// ([`Store::begin_on`]); it connects on first use.
///
/// The pool hands its idle connections out in turn, and on SQLite each connection has its
/// own page cache, which it drops whenever another connection wrote since its last
/// transaction: a writer that commits hundreds of times a second (the rooms gateway's group
/// commit) read its pages back from the file for every transaction. On a connection of its
/// own, the pages it wrote last stay cached.
#[derive(Default)]
pub struct KeptConnection {
    conn: Option<AnyConnection>,
    /// A transaction was begun on `conn` and not committed or rolled back.
    unfinished: bool,
}

impl KeptConnection {
    /// A writer's connection, not connected yet.
    pub fn new() -> KeptConnection {
        KeptConnection::default()
    }

    /// Drops the connection (after a failed transaction, which may have been its fault);
    /// the next [`Store::begin_on`] opens another.
    pub fn discard(&mut self) {
        self.conn = None;
        self.unfinished = false;
    }
}

impl fmt::Debug for KeptConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeptConnection")
            .field("connected", &self.conn.is_some())
            .finish()
    }
}

/// A database transaction: the one way to write.
///
/// Commit explicitly with [`Tx::commit`]; a `Tx` dropped without it is rolled back. Getters
/// see the transaction's own uncommitted writes.
pub struct Tx<'a> {
    pub(crate) tx: Transaction<'a, Any>,
    pub(crate) store: &'a Store,
    pub(crate) locked: bool,
    /// On a [`KeptConnection`]: its flag of an unfinished transaction, cleared when this
    /// one commits or rolls back.
    kept_unfinished: Option<&'a mut bool>,
}

impl fmt::Debug for Tx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tx")
            .field("store", self.store)
            .finish_non_exhaustive()
    }
}

impl Tx<'_> {
    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// Serialises writers that number rows (ledger seq, outbox id). SQLite transactions
    /// already hold the write lock; PostgreSQL ones take a table lock that plain reads pass.
    pub(crate) async fn lock_sequences(&mut self) -> Result<(), StoreError> {
        if !self.locked && self.store.inner.backend == Backend::Postgres {
            sqlx::query("LOCK TABLE ledger IN EXCLUSIVE MODE")
                .execute(&mut *self.tx)
                .await
                .map_err(StoreError::query("locking the ledger"))?;
        }
        self.locked = true;
        Ok(())
    }

    /// Makes every write of the transaction durable and visible.
    pub async fn commit(self) -> Result<(), StoreError> {
        let Tx {
            tx,
            store,
            kept_unfinished,
            ..
        } = self;
        tx.commit()
            .await
            .map_err(StoreError::query("committing a transaction"))?;
        store
            .inner
            .wal_written
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(unfinished) = kept_unfinished {
            *unfinished = false;
        }
        Ok(())
    }

    /// Rolls the transaction back (what dropping it does, but waiting for it).
    pub async fn rollback(self) -> Result<(), StoreError> {
        let Tx {
            tx,
            kept_unfinished,
            ..
        } = self;
        tx.rollback()
            .await
            .map_err(StoreError::query("rolling back a transaction"))?;
        if let Some(unfinished) = kept_unfinished {
            *unfinished = false;
        }
        Ok(())
    }

    /// Seals `seed` under the master key (bound to `public_key`) and stores it.
    /// [`StoreError::Conflict`] if a seed for `public_key` exists.
    pub async fn put_seed(
        &mut self,
        public_key: &str,
        kind: &str,
        seed: &str,
    ) -> Result<(), StoreError> {
        let key = &self.store.inner.key;
        queries::put_seed(&mut self.tx, key, public_key, kind, seed, now()).await
    }

    /// The seed of `public_key`, unsealed. [`StoreError::NotFound`] if there is none.
    pub async fn seed(&mut self, public_key: &str) -> Result<Zeroizing<String>, StoreError> {
        let key = &self.store.inner.key;
        queries::seed(&mut self.tx, key, public_key).await
    }

    /// Whether a seed is stored for `public_key`.
    pub async fn has_seed(&mut self, public_key: &str) -> Result<bool, StoreError> {
        queries::seed_exists(self.conn(), public_key).await
    }

    /// Deletes the seed of `public_key`. [`StoreError::NotFound`] if there is none.
    pub async fn delete_seed(&mut self, public_key: &str) -> Result<(), StoreError> {
        queries::delete_seed(self.conn(), public_key).await
    }

    /// The operator, if the store has been initialised.
    pub async fn operator(&mut self) -> Result<Option<OperatorRow>, StoreError> {
        queries::operator(self.conn()).await
    }

    /// Inserts the operator. [`StoreError::Conflict`] if the store already has one.
    pub async fn insert_operator(&mut self, row: &OperatorRow) -> Result<(), StoreError> {
        queries::insert_operator(self.conn(), row).await
    }

    /// Updates the operator's name, signing key, system account, JWT and `updated_at`.
    /// [`StoreError::NotFound`] if absent.
    pub async fn update_operator(&mut self, row: &OperatorRow) -> Result<(), StoreError> {
        queries::update_operator(self.conn(), row).await
    }

    /// The account `name` of `operator`.
    pub async fn account_by_name(
        &mut self,
        operator: &str,
        name: &str,
    ) -> Result<Option<AccountRow>, StoreError> {
        queries::account_by_name(self.conn(), operator, name).await
    }

    /// The account with this public key.
    pub async fn account(&mut self, public_key: &str) -> Result<Option<AccountRow>, StoreError> {
        queries::account(self.conn(), public_key).await
    }

    /// The accounts of `operator`, ordered by name.
    pub async fn accounts(&mut self, operator: &str) -> Result<Vec<AccountRow>, StoreError> {
        queries::accounts(self.conn(), operator).await
    }

    /// Inserts an account. [`StoreError::Conflict`] if its name (per operator) or public key
    /// is taken, [`StoreError::NotFound`] if its operator does not exist; nothing is written
    /// then.
    pub async fn insert_account(&mut self, row: &AccountRow) -> Result<(), StoreError> {
        queries::insert_account(self.conn(), row).await
    }

    /// Updates an account's name, spec, JWT and `updated_at` (its operator and `created_at`
    /// never change). [`StoreError::NotFound`] if absent, [`StoreError::Conflict`] if renamed
    /// onto a taken name.
    pub async fn update_account(&mut self, row: &AccountRow) -> Result<(), StoreError> {
        queries::update_account(self.conn(), row).await
    }

    /// Deletes an account and its users. Their seeds are not touched (delete them with
    /// [`Tx::delete_seed`]). [`StoreError::NotFound`] if absent.
    pub async fn delete_account(&mut self, public_key: &str) -> Result<(), StoreError> {
        queries::delete_account(self.conn(), public_key).await
    }

    /// The user `name` of `account`.
    pub async fn user_by_name(
        &mut self,
        account: &str,
        name: &str,
    ) -> Result<Option<UserRow>, StoreError> {
        queries::user_by_name(self.conn(), account, name).await
    }

    /// The user with this public key.
    pub async fn user(&mut self, public_key: &str) -> Result<Option<UserRow>, StoreError> {
        queries::user(self.conn(), public_key).await
    }

    /// The users of `account`, ordered by name.
    pub async fn users(&mut self, account: &str) -> Result<Vec<UserRow>, StoreError> {
        queries::users(self.conn(), account).await
    }

    /// Inserts a user. [`StoreError::Conflict`] if its name (per account) or public key is
    /// taken, [`StoreError::NotFound`] if its account does not exist.
    pub async fn insert_user(&mut self, row: &UserRow) -> Result<(), StoreError> {
        queries::insert_user(self.conn(), row).await
    }

    /// Updates a user's name, spec, JWT, signing key, revocation and `updated_at` (its
    /// account and `created_at` never change). [`StoreError::NotFound`] if absent.
    pub async fn update_user(&mut self, row: &UserRow) -> Result<(), StoreError> {
        queries::update_user(self.conn(), row).await
    }

    /// Deletes a user (not its seed). [`StoreError::NotFound`] if absent.
    pub async fn delete_user(&mut self, public_key: &str) -> Result<(), StoreError> {
        queries::delete_user(self.conn(), public_key).await
    }

    /// Whether JWT migration `id` has been applied.
    pub async fn migration_applied(&mut self, id: &str) -> Result<bool, StoreError> {
        queries::migration_applied(self.conn(), id).await
    }

    /// Records JWT migration `id` as applied now. [`StoreError::Conflict`] if it already is.
    pub async fn record_migration(
        &mut self,
        id: &str,
        description: &str,
    ) -> Result<(), StoreError> {
        queries::record_migration(self.conn(), id, description, now()).await
    }

    /// The setting `key` (table `meta`), if set.
    pub async fn meta(&mut self, key: &str) -> Result<Option<String>, StoreError> {
        queries::meta(self.conn(), key).await
    }

    /// Sets (inserts or replaces) the setting `key`. Keys the store owns (`seal_check`) are
    /// refused with [`StoreError::Conflict`].
    pub async fn set_meta(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        queries::set_meta(self.conn(), key, value).await
    }

    /// Appends `event` to the ledger, chained to the last event; returns its `seq`.
    pub async fn append_event(&mut self, event: &NewEvent) -> Result<i64, StoreError> {
        self.lock_sequences().await?;
        ledger::append(self.conn(), event, now()).await
    }

    /// Enqueues a message for NATS, due now; returns its id.
    pub async fn enqueue(&mut self, topic: &str, payload: &str) -> Result<i64, StoreError> {
        self.lock_sequences().await?;
        outbox::enqueue(self.conn(), topic, payload, now()).await
    }

    /// Inserts an API token. [`StoreError::Conflict`] if its id or hash is taken.
    pub async fn insert_api_token(&mut self, row: &ApiTokenRow) -> Result<(), StoreError> {
        tokens::insert(self.conn(), row).await
    }

    /// The API token with this id.
    pub async fn api_token(&mut self, id: &str) -> Result<Option<ApiTokenRow>, StoreError> {
        tokens::by_id(self.conn(), id).await
    }

    /// Marks API token `id` revoked at `at`. [`StoreError::NotFound`] if absent,
    /// [`StoreError::Conflict`] if already revoked.
    pub async fn revoke_api_token(&mut self, id: &str, at: i64) -> Result<(), StoreError> {
        tokens::revoke(self.conn(), id, at).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_targets() {
        let file = |url: &str| match sqlite_target(url) {
            SqliteTarget::File(p) => Some(p),
            SqliteTarget::Memory => None,
        };
        assert_eq!(file("sqlite:///var/lib/w.db"), Some("/var/lib/w.db".into()));
        assert_eq!(file("sqlite://w.db?mode=rwc"), Some("w.db".into()));
        assert_eq!(file("sqlite:w.db"), Some("w.db".into()));
        assert_eq!(file("sqlite:///a%20b/w%3F.db"), Some("/a b/w?.db".into()));
        assert_eq!(file("sqlite:///a%zz"), Some("/a%zz".into()));
        assert_eq!(file("sqlite::memory:"), None);
        assert_eq!(file("sqlite://x.db?mode=memory"), None);
    }

    /// The relay's read of due rows walks the index of undelivered rows by id: without it
    /// (and SQLite keeps no statistics for Warden's stores) each batch sorted every pending
    /// row to take the first ones.
    #[tokio::test]
    async fn the_pending_read_walks_the_undelivered_rows_by_id() {
        let store = Store::open("sqlite::memory:", MasterKey::from_bytes([1; 32]))
            .await
            .expect("store");
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "EXPLAIN QUERY PLAN {}",
            crate::outbox::PENDING
        )))
        .bind(0_i64)
        .bind(0_i64)
        .bind(10_i64)
        .fetch_all(&mut *store.conn().await.expect("connection"))
        .await
        .expect("plan");
        let plan: Vec<String> = rows
            .iter()
            .map(|r| sqlx::Row::try_get::<String, _>(r, "detail").expect("detail"))
            .collect();
        let plan = plan.join(" | ");
        assert!(plan.contains("outbox_undelivered"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }
}
