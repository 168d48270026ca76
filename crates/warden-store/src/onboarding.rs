//! Onboarding packages (table `onboarding_packages`) and per-tenant CAs (table
//! `tenant_cas`).
//!
//! Two secrets live here, both sealed with the master key like every seed and never in
//! `Debug`: a CA's private key (AAD `tenant-ca:<slug>`) and a package's archive, which
//! holds its creds and client key (AAD `onboarding-package:<id>`). The archive is dropped
//! when the package is delivered or revoked. Download tokens are stored as a hash only;
//! the caller (the `warden` crate) makes and checks them.
//!
//! Reads are on [`crate::Store`] and [`crate::Tx`]; writes on [`crate::Tx`], so a package,
//! its collector user, the ledger event and outbox rows commit together. The one write
//! outside a caller's transaction is [`crate::Store::mark_package_activated`], an
//! observation.

use serde::Serialize;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use zeroize::Zeroizing;

use crate::rows::column;
use crate::{MasterKey, Store, StoreError, Tx};

/// One package as stored (without its sealed archive).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PackageRow {
    /// `pkg_…`, unique.
    pub id: String,
    /// Tenant slug.
    pub tenant: String,
    /// Collector component.
    pub component: String,
    /// Site name.
    pub site: String,
    /// Name of its collector user in the tenant account.
    pub user_name: String,
    /// Public key of that user, unique.
    pub user_key: String,
    /// Client certificate serial, hex.
    pub cert_serial: String,
    /// SHA-256 of the client certificate (DER), hex.
    pub cert_fingerprint: String,
    /// End of the certificate's validity, unix seconds.
    pub cert_not_after: i64,
    /// `issued`, `delivered`, `activated` or `revoked`.
    pub state: String,
    /// Hex SHA-256 of the download token's secret.
    #[serde(skip)]
    pub token_hash: String,
    /// When the download token expires.
    pub token_expires_at: i64,
    /// Created.
    pub issued_at: i64,
    /// Downloaded (token spent).
    pub delivered_at: Option<i64>,
    /// First connection of its collector observed.
    pub activated_at: Option<i64>,
    /// Revoked.
    pub revoked_at: Option<i64>,
    /// Refused download attempts.
    pub refused_downloads: i64,
    /// Last refused attempt.
    pub last_refused_at: Option<i64>,
    /// Last change.
    pub updated_at: i64,
}

const COLUMNS: &str = "id, tenant, component, site, user_name, user_key, cert_serial, \
                       cert_fingerprint, cert_not_after, state, token_hash, token_expires_at, \
                       issued_at, delivered_at, activated_at, revoked_at, refused_downloads, \
                       last_refused_at, updated_at";

impl PackageRow {
    fn from_row(row: &AnyRow) -> Result<PackageRow, StoreError> {
        Ok(PackageRow {
            id: column(row, "id")?,
            tenant: column(row, "tenant")?,
            component: column(row, "component")?,
            site: column(row, "site")?,
            user_name: column(row, "user_name")?,
            user_key: column(row, "user_key")?,
            cert_serial: column(row, "cert_serial")?,
            cert_fingerprint: column(row, "cert_fingerprint")?,
            cert_not_after: column(row, "cert_not_after")?,
            state: column(row, "state")?,
            token_hash: column(row, "token_hash")?,
            token_expires_at: column(row, "token_expires_at")?,
            issued_at: column(row, "issued_at")?,
            delivered_at: column(row, "delivered_at")?,
            activated_at: column(row, "activated_at")?,
            revoked_at: column(row, "revoked_at")?,
            refused_downloads: column(row, "refused_downloads")?,
            last_refused_at: column(row, "last_refused_at")?,
            updated_at: column(row, "updated_at")?,
        })
    }
}

/// A tenant's CA as stored; its private key is opened separately
/// ([`Tx::tenant_ca_key`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TenantCaRow {
    /// Tenant slug.
    pub slug: String,
    /// The CA certificate, PEM.
    pub cert_pem: String,
    /// SHA-256 of the CA certificate (DER), hex.
    pub fingerprint: String,
    /// Created.
    pub created_at: i64,
}

fn ca_aad(slug: &str) -> String {
    format!("tenant-ca:{slug}")
}

fn archive_aad(id: &str) -> String {
    format!("onboarding-package:{id}")
}

async fn by_id(conn: &mut AnyConnection, id: &str) -> Result<Option<PackageRow>, StoreError> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM onboarding_packages WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(StoreError::query("reading an onboarding package"))?
    .as_ref()
    .map(PackageRow::from_row)
    .transpose()
}

async fn list(
    conn: &mut AnyConnection,
    tenant: Option<&str>,
) -> Result<Vec<PackageRow>, StoreError> {
    let rows = match tenant {
        Some(t) => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM onboarding_packages WHERE tenant = $1 \
                 ORDER BY issued_at, id"
            )))
            .bind(t)
            .fetch_all(&mut *conn)
            .await
        }
        None => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM onboarding_packages ORDER BY tenant, issued_at, id"
            )))
            .fetch_all(&mut *conn)
            .await
        }
    }
    .map_err(StoreError::query("listing onboarding packages"))?;
    rows.iter().map(PackageRow::from_row).collect()
}

async fn insert(
    conn: &mut AnyConnection,
    key: &MasterKey,
    row: &PackageRow,
    archive: &[u8],
) -> Result<(), StoreError> {
    let what = || format!("onboarding package {}", row.id);
    let taken = sqlx::query("SELECT id FROM onboarding_packages WHERE id = $1 OR user_key = $2")
        .bind(&row.id)
        .bind(&row.user_key)
        .fetch_optional(&mut *conn)
        .await
        .map_err(StoreError::query("looking up an onboarding package"))?;
    if taken.is_some() {
        return Err(StoreError::Conflict { what: what() });
    }
    let sealed = key.seal(&archive_aad(&row.id), archive)?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO onboarding_packages ({COLUMNS}, sealed_archive) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"
    )))
    .bind(&row.id)
    .bind(&row.tenant)
    .bind(&row.component)
    .bind(&row.site)
    .bind(&row.user_name)
    .bind(&row.user_key)
    .bind(&row.cert_serial)
    .bind(&row.cert_fingerprint)
    .bind(row.cert_not_after)
    .bind(&row.state)
    .bind(&row.token_hash)
    .bind(row.token_expires_at)
    .bind(row.issued_at)
    .bind(row.delivered_at)
    .bind(row.activated_at)
    .bind(row.revoked_at)
    .bind(row.refused_downloads)
    .bind(row.last_refused_at)
    .bind(row.updated_at)
    .bind(&sealed)
    .execute(&mut *conn)
    .await
    .map_err(|source| match &source {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict { what: what() }
        }
        _ => StoreError::Query {
            context: "inserting an onboarding package",
            source,
        },
    })?;
    Ok(())
}

impl Store {
    /// The package with this id.
    pub async fn package(&self, id: &str) -> Result<Option<PackageRow>, StoreError> {
        by_id(&mut *self.pooled().await?, id).await
    }

    /// Every package (or a tenant's), ordered by tenant and issue time.
    pub async fn packages(&self, tenant: Option<&str>) -> Result<Vec<PackageRow>, StoreError> {
        list(&mut *self.pooled().await?, tenant).await
    }

    /// Records the first connection of a package's collector user: state `activated` at
    /// `at`, from `issued` or `delivered`. Returns the package id when a row changed
    /// (never for revoked or already activated ones, nor for other users).
    pub async fn mark_package_activated(
        &self,
        user_key: &str,
        at: i64,
    ) -> Result<Option<String>, StoreError> {
        let mut conn = self.pooled().await?;
        let done = sqlx::query(
            "UPDATE onboarding_packages SET state = 'activated', activated_at = $1, \
             updated_at = $1 WHERE user_key = $2 AND state IN ('issued', 'delivered')",
        )
        .bind(at)
        .bind(user_key)
        .execute(&mut *conn)
        .await
        .map_err(StoreError::query("marking an onboarding package activated"))?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let id = sqlx::query("SELECT id FROM onboarding_packages WHERE user_key = $1")
            .bind(user_key)
            .fetch_optional(&mut *conn)
            .await
            .map_err(StoreError::query("reading an onboarding package"))?;
        id.as_ref().map(|r| column(r, "id")).transpose()
    }
}

impl Tx<'_> {
    /// The package with this id.
    pub async fn package(&mut self, id: &str) -> Result<Option<PackageRow>, StoreError> {
        by_id(self.conn(), id).await
    }

    /// Inserts a package with its archive (sealed here). [`StoreError::Conflict`] if its
    /// id or user key is taken.
    pub async fn insert_package(
        &mut self,
        row: &PackageRow,
        archive: &[u8],
    ) -> Result<(), StoreError> {
        let key = self.store.inner.key.clone();
        insert(self.conn(), &key, row, archive).await
    }

    /// The package's archive, unsealed; `None` once delivered or revoked.
    pub async fn package_archive(
        &mut self,
        id: &str,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let row = sqlx::query("SELECT sealed_archive FROM onboarding_packages WHERE id = $1")
            .bind(id)
            .fetch_optional(self.conn())
            .await
            .map_err(StoreError::query("reading an onboarding package archive"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let sealed: Option<String> = column(&row, "sealed_archive")?;
        match sealed {
            None => Ok(None),
            Some(s) => Ok(Some(self.store.inner.key.unseal(&archive_aad(id), &s)?)),
        }
    }

    /// Moves a package from `from` to `row.state`, writing its times and counters; the
    /// archive is dropped when `drop_archive`. Returns false (and changes nothing) when
    /// the stored state is no longer `from`, so two concurrent downloads cannot both win.
    pub async fn update_package(
        &mut self,
        row: &PackageRow,
        from: &str,
        drop_archive: bool,
    ) -> Result<bool, StoreError> {
        let sql = if drop_archive {
            "UPDATE onboarding_packages SET state = $1, delivered_at = $2, activated_at = $3, \
             revoked_at = $4, refused_downloads = $5, last_refused_at = $6, updated_at = $7, \
             sealed_archive = NULL WHERE id = $8 AND state = $9"
        } else {
            "UPDATE onboarding_packages SET state = $1, delivered_at = $2, activated_at = $3, \
             revoked_at = $4, refused_downloads = $5, last_refused_at = $6, updated_at = $7 \
             WHERE id = $8 AND state = $9"
        };
        let done = sqlx::query(sql)
            .bind(&row.state)
            .bind(row.delivered_at)
            .bind(row.activated_at)
            .bind(row.revoked_at)
            .bind(row.refused_downloads)
            .bind(row.last_refused_at)
            .bind(row.updated_at)
            .bind(&row.id)
            .bind(from)
            .execute(self.conn())
            .await
            .map_err(StoreError::query("updating an onboarding package"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Counts one refused download of package `id` at `at` (its `refused_downloads` and
    /// `last_refused_at`), in whatever state it is: an increment in the database, so
    /// concurrent refusals are all counted. Returns the new count, `None` if no such
    /// package.
    pub async fn count_refused_download(
        &mut self,
        id: &str,
        at: i64,
    ) -> Result<Option<i64>, StoreError> {
        let done = sqlx::query(
            "UPDATE onboarding_packages SET refused_downloads = refused_downloads + 1, \
             last_refused_at = $1, updated_at = $1 WHERE id = $2",
        )
        .bind(at)
        .bind(id)
        .execute(self.conn())
        .await
        .map_err(StoreError::query("counting a refused onboarding download"))?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let row = sqlx::query("SELECT refused_downloads FROM onboarding_packages WHERE id = $1")
            .bind(id)
            .fetch_optional(self.conn())
            .await
            .map_err(StoreError::query("reading an onboarding package"))?;
        row.as_ref()
            .map(|r| column(r, "refused_downloads"))
            .transpose()
    }

    /// The tenant's CA, if made.
    pub async fn tenant_ca(&mut self, slug: &str) -> Result<Option<TenantCaRow>, StoreError> {
        let row = sqlx::query(
            "SELECT slug, cert_pem, fingerprint, created_at FROM tenant_cas WHERE slug = $1",
        )
        .bind(slug)
        .fetch_optional(self.conn())
        .await
        .map_err(StoreError::query("reading a tenant CA"))?;
        row.map(|r| {
            Ok(TenantCaRow {
                slug: column(&r, "slug")?,
                cert_pem: column(&r, "cert_pem")?,
                fingerprint: column(&r, "fingerprint")?,
                created_at: column(&r, "created_at")?,
            })
        })
        .transpose()
    }

    /// The tenant CA's private key (PEM), unsealed. [`StoreError::NotFound`] if none.
    pub async fn tenant_ca_key(&mut self, slug: &str) -> Result<Zeroizing<String>, StoreError> {
        let row = sqlx::query("SELECT sealed_key FROM tenant_cas WHERE slug = $1")
            .bind(slug)
            .fetch_optional(self.conn())
            .await
            .map_err(StoreError::query("reading a tenant CA key"))?
            .ok_or_else(|| StoreError::NotFound {
                what: format!("CA of tenant {slug}"),
            })?;
        let sealed: String = column(&row, "sealed_key")?;
        Ok(self.store.inner.key.unseal_str(&ca_aad(slug), &sealed)?)
    }

    /// Stores a tenant's CA, its key sealed. [`StoreError::Conflict`] if it has one.
    pub async fn insert_tenant_ca(
        &mut self,
        row: &TenantCaRow,
        key_pem: &str,
    ) -> Result<(), StoreError> {
        let what = || format!("CA of tenant {}", row.slug);
        if self.tenant_ca(&row.slug).await?.is_some() {
            return Err(StoreError::Conflict { what: what() });
        }
        let sealed = self
            .store
            .inner
            .key
            .seal(&ca_aad(&row.slug), key_pem.as_bytes())?;
        sqlx::query(
            "INSERT INTO tenant_cas (slug, cert_pem, sealed_key, fingerprint, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&row.slug)
        .bind(&row.cert_pem)
        .bind(&sealed)
        .bind(&row.fingerprint)
        .bind(row.created_at)
        .execute(self.conn())
        .await
        .map_err(|source| match &source {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict { what: what() }
            }
            _ => StoreError::Query {
                context: "inserting a tenant CA",
                source,
            },
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Packages and CAs on SQLite and on PostgreSQL (never skipped).

    use super::{PackageRow, TenantCaRow};
    use crate::{MasterKey, Store, StoreError};

    fn row(id: &str) -> PackageRow {
        PackageRow {
            id: id.into(),
            tenant: "a".into(),
            component: "flowgger".into(),
            site: "paris".into(),
            user_name: format!("flowgger-{id}"),
            user_key: format!("U{id}"),
            cert_serial: "01".into(),
            cert_fingerprint: "ff".into(),
            cert_not_after: 1000,
            state: "issued".into(),
            token_hash: "00".repeat(32),
            token_expires_at: 500,
            issued_at: 100,
            delivered_at: None,
            activated_at: None,
            revoked_at: None,
            refused_downloads: 0,
            last_refused_at: None,
            updated_at: 100,
        }
    }

    async fn behaviour(store: Store) {
        let mut tx = store.begin().await.unwrap();
        tx.insert_package(&row("p1"), b"archive-1").await.unwrap();
        tx.insert_package(&row("p2"), b"archive-2").await.unwrap();
        let dup = tx.insert_package(&row("p1"), b"x").await;
        assert!(matches!(dup, Err(StoreError::Conflict { .. })), "{dup:?}");
        assert_eq!(
            tx.package_archive("p1").await.unwrap().unwrap().as_slice(),
            b"archive-1"
        );
        tx.insert_tenant_ca(
            &TenantCaRow {
                slug: "a".into(),
                cert_pem: "CERT".into(),
                fingerprint: "aa".into(),
                created_at: 1,
            },
            "KEY",
        )
        .await
        .unwrap();
        assert_eq!(tx.tenant_ca_key("a").await.unwrap().as_str(), "KEY");
        assert!(matches!(
            tx.tenant_ca_key("b").await,
            Err(StoreError::NotFound { .. })
        ));
        tx.commit().await.unwrap();

        assert_eq!(store.package("p1").await.unwrap(), Some(row("p1")));
        assert_eq!(store.packages(Some("a")).await.unwrap().len(), 2);
        assert!(store.packages(Some("b")).await.unwrap().is_empty());

        // Delivery: only from the state read, and the archive is gone afterwards.
        let mut delivered = row("p1");
        delivered.state = "delivered".into();
        delivered.delivered_at = Some(200);
        let mut tx = store.begin().await.unwrap();
        assert!(tx.update_package(&delivered, "issued", true).await.unwrap());
        assert!(!tx.update_package(&delivered, "issued", true).await.unwrap());
        assert!(tx.package_archive("p1").await.unwrap().is_none());
        tx.commit().await.unwrap();

        // Refused downloads: counted by increment, whatever the state; none for an
        // unknown package.
        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.count_refused_download("p2", 150).await.unwrap(), Some(1));
        assert_eq!(tx.count_refused_download("p2", 160).await.unwrap(), Some(2));
        assert_eq!(tx.count_refused_download("p1", 170).await.unwrap(), Some(1));
        assert_eq!(tx.count_refused_download("nope", 170).await.unwrap(), None);
        tx.commit().await.unwrap();
        let p2 = store.package("p2").await.unwrap().unwrap();
        assert_eq!(
            (p2.state.as_str(), p2.refused_downloads, p2.last_refused_at),
            ("issued", 2, Some(160))
        );
        assert_eq!(
            store.package("p1").await.unwrap().unwrap().state,
            "delivered"
        );

        // Observation: once, from issued or delivered only.
        assert_eq!(
            store
                .mark_package_activated("Up1", 300)
                .await
                .unwrap()
                .as_deref(),
            Some("p1")
        );
        assert_eq!(
            store.mark_package_activated("Up1", 400).await.unwrap(),
            None
        );
        assert_eq!(
            store.mark_package_activated("Unone", 400).await.unwrap(),
            None
        );
        let p1 = store.package("p1").await.unwrap().unwrap();
        assert_eq!(
            (p1.state.as_str(), p1.activated_at),
            ("activated", Some(300))
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn packages_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("warden.db").display());
        let store = Store::open(&url, MasterKey::from_bytes([7; 32]))
            .await
            .unwrap();
        behaviour(store.clone()).await;
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn packages_on_postgres() {
        let db = warden_testkit::PgDatabase::create().await;
        let store = Store::open(db.url(), MasterKey::from_bytes([7; 32]))
            .await
            .unwrap();
        behaviour(store.clone()).await;
        store.close().await;
        drop(db);
    }
}
