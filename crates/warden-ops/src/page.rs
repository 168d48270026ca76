//! Pages of Warden's long lists: search, sort and paging, decided once for every surface
//! that shows thousands of accounts, users, devices, tenants, directory entries,
//! proposals or ledger events (the console's lists ask through these).
//!
//! A [`PageRequest`] says what to show — search text (a case-insensitive substring of the
//! list's text columns), a sort column of the list, the direction, a page number and its
//! size — and a [`Page`] answers with one page of items, how many the whole list holds and
//! how many matched the search. A sort column the list does not have is refused as bad
//! input; a page number past the end shows the last page. Each list operation needs the
//! same scope as its whole-list counterpart.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::Serialize;
use warden_core::device::DeviceState;
use warden_core::governance::{Proposal, ProposalStatus};
use warden_store::console_queries::AccountBrief;
use warden_store::governance::DirUserRow;
use warden_store::{AccountRow, LedgerEvent};

use crate::device::DeviceView;
use crate::drift::{AccountDrift, DriftReport, SyncState};
use crate::governance::{ProposalView, RoleView, TaskView};
use crate::tenant::TenantView;
use crate::{AccountView, OpsError, Result, Scope, UserView, Warden};

/// Items per page when the request does not say.
pub const DEFAULT_PER: usize = 50;
/// Most items one page may hold (a bound on the work of one request).
pub const MAX_PER: usize = 500;
/// Ledger events read at a time while searching the ledger.
const LEDGER_CHUNK: i64 = 2000;

/// What page of a list to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    /// Search text: items whose text columns contain it (any case); empty: all.
    pub q: String,
    /// Sort column (one of the list's); empty: the list's first.
    pub sort: String,
    /// Descending order.
    pub desc: bool,
    /// Page number, from 1.
    pub page: usize,
    /// Items per page, 1..=[`MAX_PER`].
    pub per: usize,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            q: String::new(),
            sort: String::new(),
            desc: false,
            page: 1,
            per: DEFAULT_PER,
        }
    }
}

impl PageRequest {
    /// A request with the search text trimmed, the page at least 1 and the page size
    /// within 1..=[`MAX_PER`] (none: [`DEFAULT_PER`]).
    pub fn new(q: &str, sort: &str, desc: bool, page: usize, per: Option<usize>) -> PageRequest {
        PageRequest {
            q: q.trim().to_string(),
            sort: sort.trim().to_string(),
            desc,
            page: page.max(1),
            per: per.unwrap_or(DEFAULT_PER).clamp(1, MAX_PER),
        }
    }
}

/// One page of a list.
#[derive(Clone, Debug, Serialize)]
pub struct Page<T> {
    /// The items of the page, in order.
    pub items: Vec<T>,
    /// How many items the whole list holds.
    pub total: usize,
    /// How many of them match the search (`total` without one).
    pub matched: usize,
    /// The page shown (from 1; the last one when the request was past the end).
    pub page: usize,
    /// Items per page.
    pub per: usize,
    /// The sort column applied.
    pub sort: String,
    /// Whether descending.
    pub desc: bool,
}

impl<T> Page<T> {
    /// Position (from 1) of the first item shown in the matching items; 0 when none.
    pub fn first(&self) -> usize {
        if self.items.is_empty() {
            0
        } else {
            (self.page - 1) * self.per + 1
        }
    }

    /// Position (from 1) of the last item shown; 0 when none.
    pub fn last(&self) -> usize {
        if self.items.is_empty() {
            0
        } else {
            self.first() + self.items.len() - 1
        }
    }

    /// How many pages the matching items fill (at least 1).
    pub fn pages(&self) -> usize {
        self.matched.div_ceil(self.per).max(1)
    }

    /// The same page with its items mapped.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            total: self.total,
            matched: self.matched,
            page: self.page,
            per: self.per,
            sort: self.sort,
            desc: self.desc,
        }
    }
}

/// A sort column of a list: its name and its order (ties are broken by the list's first
/// column, so a page boundary never moves between requests).
pub(crate) type Column<T> = (&'static str, fn(&T, &T) -> Ordering);

/// The page `req` asks for of `items` (the whole list), searched in the text `text` gives
/// for each item and sorted by one of `columns` (the first is the default and tie-break).
pub(crate) fn paginate<T>(
    items: Vec<T>,
    req: &PageRequest,
    columns: &[Column<T>],
    text: impl Fn(&T) -> Vec<&str>,
) -> Result<Page<T>> {
    let total = items.len();
    let (sort, order) = if req.sort.is_empty() {
        columns[0]
    } else {
        *columns
            .iter()
            .find(|(name, _)| *name == req.sort)
            .ok_or_else(|| {
                let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
                OpsError::Invalid(format!(
                    "unknown sort column {:?}: use one of {}",
                    req.sort,
                    names.join(", ")
                ))
            })?
    };
    let needle = req.q.to_lowercase();
    let mut list: Vec<T> = if needle.is_empty() {
        items
    } else {
        items
            .into_iter()
            .filter(|item| {
                text(item)
                    .iter()
                    .any(|t| t.to_lowercase().contains(&needle))
            })
            .collect()
    };
    let tie = columns[0].1;
    list.sort_by(|a, b| {
        let o = order(a, b).then_with(|| tie(a, b));
        if req.desc { o.reverse() } else { o }
    });
    let matched = list.len();
    let pages = matched.div_ceil(req.per).max(1);
    let page = req.page.min(pages);
    let items: Vec<T> = list
        .into_iter()
        .skip((page - 1) * req.per)
        .take(req.per)
        .collect();
    Ok(Page {
        items,
        total,
        matched,
        page,
        per: req.per,
        sort: sort.to_string(),
        desc: req.desc,
    })
}

/// What an account is for, as the lists and the hierarchy group accounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    /// The system account.
    System,
    /// An account made directly (or by `warden org`), neither a tenant's nor a device's.
    Plain,
    /// A tenant's account.
    Tenant,
    /// A device's account (one per device of the fleet).
    Device,
}

impl AccountKind {
    /// Every kind, in the order lists show them.
    pub const ALL: [AccountKind; 4] = [
        AccountKind::System,
        AccountKind::Plain,
        AccountKind::Tenant,
        AccountKind::Device,
    ];

    /// `system`, `plain`, `tenant` or `device`.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::System => "system",
            AccountKind::Plain => "plain",
            AccountKind::Tenant => "tenant",
            AccountKind::Device => "device",
        }
    }
}

impl std::str::FromStr for AccountKind {
    type Err = OpsError;

    fn from_str(s: &str) -> Result<Self> {
        AccountKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                OpsError::Invalid(format!(
                    "unknown account kind {s:?}: use system, plain, tenant or device"
                ))
            })
    }
}

/// An account of a list, with its kind.
#[derive(Clone, Debug, Serialize)]
pub struct AccountEntry {
    /// The account.
    #[serde(flatten)]
    pub account: AccountView,
    /// What it is for.
    pub kind: AccountKind,
}

/// The accounts compared with one nats-server's resolver, a page of them.
#[derive(Clone, Debug, Serialize)]
pub struct DriftPage {
    /// Accounts whose JWT the server holds as Warden does.
    pub in_sync: usize,
    /// Accounts the server holds stale, newer, or not at all.
    pub drifting: usize,
    /// Accounts the server holds that Warden does not (public keys).
    pub unknown: Vec<String>,
    /// The page of accounts shown: drifting ones only, or all when asked.
    pub page: Page<AccountDrift>,
}

/// Bounds on the hierarchy the surfaces show.
#[derive(Clone, Copy, Debug)]
pub struct HierarchyBounds {
    /// A group of accounts with more members than this is shown as one summary.
    pub max_accounts: usize,
    /// An account with more users than this shows the first ones and a count.
    pub max_users: usize,
}

impl Default for HierarchyBounds {
    fn default() -> Self {
        HierarchyBounds {
            max_accounts: 50,
            max_users: 12,
        }
    }
}

/// A user in the hierarchy.
#[derive(Clone, Debug, Serialize)]
pub struct HierarchyUser {
    /// Name.
    pub name: String,
    /// Whether revoked.
    pub revoked: bool,
}

/// An account in the hierarchy with its first users.
#[derive(Clone, Debug, Serialize)]
pub struct HierarchyAccount {
    /// Name.
    pub name: String,
    /// Whether it is the system account.
    pub system: bool,
    /// How many users it has.
    pub users_total: usize,
    /// Its first users by name (at most [`HierarchyBounds::max_users`]).
    pub users: Vec<HierarchyUser>,
}

/// The accounts of one kind in the hierarchy: listed, or summarised when too many.
#[derive(Clone, Debug, Serialize)]
pub struct HierarchyGroup {
    /// Their kind.
    pub kind: AccountKind,
    /// How many accounts of that kind there are.
    pub total: usize,
    /// How many users they have together.
    pub users_total: usize,
    /// The accounts, by name; empty when the group is summarised (`total` above
    /// [`HierarchyBounds::max_accounts`]).
    pub accounts: Vec<HierarchyAccount>,
}

impl HierarchyGroup {
    /// Whether the group is shown as one summary instead of its accounts.
    pub fn summarised(&self) -> bool {
        self.total > 0 && self.accounts.is_empty()
    }
}

/// An import of `subject` by account `to` from account `from`.
#[derive(Clone, Debug, Serialize)]
pub struct HierarchyEdge {
    /// The exporting account.
    pub from: String,
    /// The importing account.
    pub to: String,
    /// The subject imported.
    pub subject: String,
}

/// Operator → accounts (grouped by kind) → users, with import edges, bounded.
#[derive(Clone, Debug, Serialize)]
pub struct Hierarchy {
    /// The operator's name.
    pub operator: String,
    /// Accounts grouped by kind, in [`AccountKind::ALL`] order (empty kinds left out).
    pub groups: Vec<HierarchyGroup>,
    /// Imports between accounts both listed.
    pub edges: Vec<HierarchyEdge>,
    /// Imports left out because an end is in a summarised group.
    pub edges_hidden: usize,
}

/// An account of the light query with what the list sorts and searches by; its whole row
/// (spec and JWT) is read only when it is on the page shown.
struct Light {
    brief: AccountBrief,
    kind: AccountKind,
    /// Its description, read for a search only (from the specs that may hold the text).
    description: Option<String>,
}

/// What a search reads of a spec: its description.
#[derive(serde::Deserialize)]
struct DescriptionOnly {
    #[serde(default)]
    description: Option<String>,
}

fn cmp_str(a: &str, b: &str) -> Ordering {
    a.cmp(b)
}

impl Warden {
    /// A page of the accounts (of one kind, when given). Sort columns: `name`, `users`,
    /// `kind`, `created`, `updated`; searched in name, public key and description.
    ///
    /// However many accounts there are, the list is one light query (names, keys, kinds,
    /// user counts, dates; no JWT; a spec only where its text may hold the search) and
    /// one read of the whole rows of the page's accounts, whose specs alone are decoded.
    pub async fn accounts_page(
        &self,
        kind: Option<AccountKind>,
        req: &PageRequest,
    ) -> Result<Page<AccountEntry>> {
        self.need(Scope::Read, "listing accounts")?;
        let op = self
            .store
            .operator()
            .await?
            .ok_or(OpsError::NotInitialised)?;
        let needle = req.q.to_lowercase();
        // The store lowers ASCII only and compares the spec as JSON text: a search that
        // is not plain ASCII, or holds what JSON escapes, reads every spec instead of
        // narrowing them in the statement (still no JWT, and only descriptions decoded).
        let narrow = needle
            .chars()
            .all(|c| c.is_ascii() && !c.is_ascii_control())
            && !needle.contains(['"', '\\']);
        let mentioning = match () {
            _ if needle.is_empty() => None,
            _ if narrow => Some(needle.as_str()),
            _ => Some(""),
        };
        let briefs = self
            .store
            .account_briefs_mentioning(&op.public_key, mentioning)
            .await?;
        let mut list = Vec::with_capacity(briefs.len());
        for mut brief in briefs {
            let kind_of = if brief.public_key == op.system_account {
                AccountKind::System
            } else if brief.device {
                AccountKind::Device
            } else if brief.tenant {
                AccountKind::Tenant
            } else {
                AccountKind::Plain
            };
            if kind.is_some_and(|k| k != kind_of) {
                continue;
            }
            // Only the description is read from a spec, and only for a search.
            let description = match brief.spec.take() {
                Some(text) if !needle.is_empty() => {
                    serde_json::from_str::<DescriptionOnly>(&text)
                        .map_err(|e| OpsError::Conflict(format!("stored spec is unreadable: {e}")))?
                        .description
                }
                _ => None,
            };
            list.push(Light {
                brief,
                kind: kind_of,
                description,
            });
        }
        let page = paginate(
            list,
            req,
            &[
                ("name", |a, b| cmp_str(&a.brief.name, &b.brief.name)),
                ("users", |a, b| a.brief.users.cmp(&b.brief.users)),
                ("kind", |a, b| a.kind.cmp(&b.kind)),
                ("created", |a, b| {
                    a.brief.created_at.cmp(&b.brief.created_at)
                }),
                ("updated", |a, b| {
                    a.brief.updated_at.cmp(&b.brief.updated_at)
                }),
            ],
            |l| {
                vec![
                    l.brief.name.as_str(),
                    l.brief.public_key.as_str(),
                    l.description.as_deref().unwrap_or(""),
                ]
            },
        )?;
        let keys: Vec<String> = page
            .items
            .iter()
            .map(|l| l.brief.public_key.clone())
            .collect();
        let mut rows: BTreeMap<String, AccountRow> = self
            .store
            .accounts_by_keys(&keys)
            .await?
            .into_iter()
            .map(|r| (r.public_key.clone(), r))
            .collect();
        let mut items = Vec::with_capacity(page.items.len());
        for l in &page.items {
            // An account deleted between the two reads is left off the page.
            let Some(row) = rows.remove(&l.brief.public_key) else {
                continue;
            };
            items.push(AccountEntry {
                account: crate::warden::account_view(row, &op, l.brief.users)?,
                kind: l.kind,
            });
        }
        Ok(Page {
            items,
            total: page.total,
            matched: page.matched,
            page: page.page,
            per: page.per,
            sort: page.sort,
            desc: page.desc,
        })
    }

    /// A page of the users of `account`. Sort columns: `name`, `state` (active first),
    /// `expires`, `created`; searched in name and public key.
    pub async fn users_page(&self, account: &str, req: &PageRequest) -> Result<Page<UserView>> {
        let list = self.list_users(account).await?;
        paginate(
            list,
            req,
            &[
                ("name", |a, b| cmp_str(&a.name, &b.name)),
                ("state", |a, b| {
                    a.revoked_at.is_some().cmp(&b.revoked_at.is_some())
                }),
                ("expires", |a, b| a.spec.expires_at.cmp(&b.spec.expires_at)),
                ("created", |a, b| a.created_at.cmp(&b.created_at)),
            ],
            |u| vec![u.name.as_str(), u.public_key.as_str()],
        )
    }

    /// A page of the devices (in `state`, when given). Sort columns: `id`, `state`,
    /// `created`, `activated`; searched in id, account and user.
    pub async fn devices_page(
        &self,
        state: Option<DeviceState>,
        req: &PageRequest,
    ) -> Result<Page<DeviceView>> {
        let list = self.list_devices(state).await?;
        paginate(
            list,
            req,
            &[
                ("id", |a, b| cmp_str(&a.id, &b.id)),
                ("state", |a, b| cmp_str(a.state.as_str(), b.state.as_str())),
                ("created", |a, b| a.created_at.cmp(&b.created_at)),
                ("activated", |a, b| a.activated_at.cmp(&b.activated_at)),
            ],
            |d| vec![d.id.as_str(), d.account.as_str(), d.user.as_str()],
        )
    }

    /// A page of the tenants. Sort columns: `slug`, `state`, `users`, `created`; searched
    /// in slug, account and prefix.
    pub async fn tenants_page(&self, req: &PageRequest) -> Result<Page<TenantView>> {
        let list = self.list_tenants().await?;
        paginate(
            list,
            req,
            &[
                ("slug", |a, b| cmp_str(&a.slug, &b.slug)),
                ("state", |a, b| cmp_str(&a.state, &b.state)),
                ("users", |a, b| a.users.len().cmp(&b.users.len())),
                ("created", |a, b| a.created_at.cmp(&b.created_at)),
            ],
            |t| vec![t.slug.as_str(), t.account.as_str(), t.prefix.as_str()],
        )
    }

    /// A page of the directory users. Sort columns: `id`, `name`, `manager`, `source`;
    /// searched in id, name, email and manager.
    pub async fn dir_users_page(&self, req: &PageRequest) -> Result<Page<DirUserRow>> {
        let list = self.dir_users().await?;
        paginate(
            list,
            req,
            &[
                ("id", |a, b| cmp_str(&a.user.id, &b.user.id)),
                ("name", |a, b| a.user.name.cmp(&b.user.name)),
                ("manager", |a, b| a.user.manager.cmp(&b.user.manager)),
                ("source", |a, b| cmp_str(&a.source, &b.source)),
            ],
            |u| {
                vec![
                    u.user.id.as_str(),
                    u.user.name.as_deref().unwrap_or(""),
                    u.user.email.as_deref().unwrap_or(""),
                    u.user.manager.as_deref().unwrap_or(""),
                ]
            },
        )
    }

    /// A page of the roles. Sort columns: `name`, `members`, `tasks`, `source`; searched
    /// in name, description and tasks.
    pub async fn roles_page(&self, req: &PageRequest) -> Result<Page<RoleView>> {
        let list = self.roles().await?;
        paginate(
            list,
            req,
            &[
                ("name", |a, b| cmp_str(&a.id, &b.id)),
                ("members", |a, b| {
                    a.row.role.members.len().cmp(&b.row.role.members.len())
                }),
                ("tasks", |a, b| a.row.tasks.len().cmp(&b.row.tasks.len())),
                ("source", |a, b| cmp_str(&a.row.source, &b.row.source)),
            ],
            |r| {
                let mut t = vec![
                    r.id.as_str(),
                    r.row.role.description.as_deref().unwrap_or(""),
                ];
                t.extend(r.row.tasks.iter().map(String::as_str));
                t
            },
        )
    }

    /// A page of the tasks. Sort columns: `name`, `account`, `source`; searched in name,
    /// account and description.
    pub async fn tasks_page(&self, req: &PageRequest) -> Result<Page<TaskView>> {
        let list = self.tasks().await?;
        paginate(
            list,
            req,
            &[
                ("name", |a, b| cmp_str(&a.id, &b.id)),
                ("account", |a, b| cmp_str(&a.row.account, &b.row.account)),
                ("source", |a, b| cmp_str(&a.row.source, &b.row.source)),
            ],
            |t| {
                vec![
                    t.id.as_str(),
                    t.row.account.as_str(),
                    t.row.description.as_deref().unwrap_or(""),
                ]
            },
        )
    }

    /// A page of the open proposals (all, or those `actor` may close when `to_approve`),
    /// as [`Warden::proposals`] lists them. Sort columns: `created`, `expires`, `kind`,
    /// `initiator`, `id`; searched in id, kind, change, initiator, reason and the
    /// address's ids.
    pub async fn open_proposals_page(
        &self,
        actor: Option<&str>,
        to_approve: bool,
        req: &PageRequest,
    ) -> Result<Page<ProposalView>> {
        let list = self
            .proposals(actor, false, to_approve, Some(ProposalStatus::Open))
            .await?;
        paginate(
            list,
            req,
            &[
                ("created", |a, b| {
                    (a.proposal.created_at, &a.id).cmp(&(b.proposal.created_at, &b.id))
                }),
                ("expires", |a, b| {
                    a.proposal.expires_at.cmp(&b.proposal.expires_at)
                }),
                ("kind", |a, b| {
                    a.proposal.kind.as_str().cmp(b.proposal.kind.as_str())
                }),
                ("initiator", |a, b| {
                    cmp_str(&a.proposal.initiator, &b.proposal.initiator)
                }),
                ("id", |a, b| cmp_str(&a.id, &b.id)),
            ],
            |p| proposal_text(&p.proposal),
        )
    }

    /// A page of the closed proposals (confirmed, rejected, expired). Sort columns:
    /// `closed`, `created`, `status`, `kind`; searched as the open ones and in closer and
    /// justification.
    pub async fn closed_proposals_page(&self, req: &PageRequest) -> Result<Page<Proposal>> {
        let all = self.closed_proposals(usize::MAX).await?.newest;
        paginate(
            all,
            req,
            &[
                ("closed", |a, b| {
                    (a.closed_at, a.created_at, &a.id).cmp(&(b.closed_at, b.created_at, &b.id))
                }),
                ("created", |a, b| a.created_at.cmp(&b.created_at)),
                ("status", |a, b| a.status.as_str().cmp(b.status.as_str())),
                ("kind", |a, b| a.kind.as_str().cmp(b.kind.as_str())),
            ],
            |p| {
                let mut t = proposal_text(p);
                t.push(p.closer.as_deref().unwrap_or(""));
                t.push(p.justification.as_deref().unwrap_or(""));
                t
            },
        )
    }

    /// A page of the ledger's events. Sort column: `seq` (only: the ledger is in order);
    /// searched in actor, action, object kind and object key. Without a search a page is
    /// read directly; a search reads the whole ledger, in chunks.
    pub async fn ledger_page(&self, req: &PageRequest) -> Result<Page<LedgerEvent>> {
        let end = self.ledger_position().await?;
        if !req.sort.is_empty() && req.sort != "seq" {
            return Err(OpsError::Invalid(format!(
                "unknown sort column {:?}: use seq",
                req.sort
            )));
        }
        let per = req.per as i64;
        if req.q.is_empty() {
            let total = usize::try_from(end).unwrap_or(0);
            let pages = total.div_ceil(req.per).max(1);
            let page = req.page.min(pages);
            let skip = (page as i64 - 1) * per;
            let mut items = if req.desc {
                let after = (end - skip - per).max(0);
                let mut v = self
                    .ledger_events(after, (end - skip - after).max(0))
                    .await?;
                v.reverse();
                v
            } else {
                self.ledger_events(skip, per).await?
            };
            items.truncate(req.per);
            return Ok(Page {
                items,
                total,
                matched: total,
                page,
                per: req.per,
                sort: "seq".into(),
                desc: req.desc,
            });
        }
        let mut all = Vec::new();
        let mut after = 0;
        while after < end {
            let chunk = self.ledger_events(after, LEDGER_CHUNK).await?;
            let Some(last) = chunk.last() else { break };
            after = last.seq;
            let needle = req.q.to_lowercase();
            all.extend(chunk.into_iter().filter(|e| {
                [&e.actor, &e.action, &e.object_kind, &e.object_key]
                    .iter()
                    .any(|t| t.to_lowercase().contains(&needle))
            }));
        }
        let mut page = paginate(
            all,
            &PageRequest {
                q: String::new(),
                ..req.clone()
            },
            &[("seq", |a, b| a.seq.cmp(&b.seq))],
            |_| Vec::new(),
        )?;
        page.total = usize::try_from(end).unwrap_or(0);
        Ok(page)
    }

    /// A comparison of a server's resolver with Warden (a [`Warden::drift_check`] report,
    /// such as the one a [`crate::drift::DriftCache`] keeps), a page of it: the drifting
    /// accounts only, or every account when `all`. Sort columns: `name`, `state`; searched
    /// in name and public key.
    pub fn drift_page(
        &self,
        report: &DriftReport,
        all: bool,
        req: &PageRequest,
    ) -> Result<DriftPage> {
        self.need(Scope::Read, "comparing NATS with Warden")?;
        let report = report.clone();
        let in_sync = report
            .accounts
            .iter()
            .filter(|a| a.state == SyncState::InSync)
            .count();
        let drifting = report.accounts.len() - in_sync;
        let mut accounts = report.accounts;
        if !all {
            accounts.retain(|a| a.state != SyncState::InSync);
        }
        let page = paginate(
            accounts,
            req,
            &[
                ("name", |a, b| cmp_str(&a.name, &b.name)),
                ("state", |a, b| cmp_str(a.state.label(), b.state.label())),
            ],
            |a| vec![a.name.as_str(), a.public_key.as_str()],
        )?;
        Ok(DriftPage {
            in_sync,
            drifting,
            unknown: report.unknown,
            page,
        })
    }
}

/// The text a proposal is searched in.
fn proposal_text(p: &Proposal) -> Vec<&str> {
    vec![
        p.id.as_str(),
        p.kind.as_str(),
        p.change.as_str(),
        p.initiator.as_str(),
        p.reason.as_deref().unwrap_or(""),
        p.address.object_id.as_str(),
        p.address.related_id.as_str(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("ACC{i:04}")).collect()
    }

    fn page(items: Vec<String>, req: &PageRequest) -> Result<Page<String>> {
        paginate(
            items,
            req,
            &[
                ("name", |a: &String, b: &String| a.cmp(b)),
                ("len", |a: &String, b: &String| a.len().cmp(&b.len())),
            ],
            |s| vec![s.as_str()],
        )
    }

    #[test]
    fn pages_sort_and_search() {
        let req = PageRequest::new("", "", false, 2, None);
        let p = page(names(120), &req).unwrap();
        assert_eq!((p.total, p.matched, p.page, p.pages()), (120, 120, 2, 3));
        assert_eq!((p.first(), p.last()), (51, 100));
        assert_eq!(p.items[0], "ACC0050");

        // Descending reverses; past the end shows the last page.
        let p = page(names(120), &PageRequest::new("", "name", true, 9, None)).unwrap();
        assert_eq!((p.page, p.first(), p.last()), (3, 101, 120));
        assert_eq!(p.items.last().unwrap(), "ACC0000");

        // Search, any case; nothing found is an empty first page.
        let p = page(
            names(120),
            &PageRequest::new(" acc0107 ", "", false, 1, None),
        )
        .unwrap();
        assert_eq!(
            (p.matched, p.items.clone()),
            (1, vec!["ACC0107".to_string()])
        );
        let p = page(names(3), &PageRequest::new("zzz", "", false, 4, None)).unwrap();
        assert_eq!((p.matched, p.page, p.first(), p.last()), (0, 1, 0, 0));

        // Ties broken by the first column, so pages are stable.
        let p = page(names(5), &PageRequest::new("", "len", true, 1, Some(2))).unwrap();
        assert_eq!(p.items, ["ACC0004", "ACC0003"]);
    }

    #[test]
    fn bad_sort_columns_and_sizes() {
        let e = page(names(3), &PageRequest::new("", "nope", false, 1, None)).unwrap_err();
        assert!(e.to_string().contains("use one of name, len"), "{e}");
        assert_eq!(PageRequest::new("", "", false, 0, Some(0)).per, 1);
        assert_eq!(
            PageRequest::new("", "", false, 0, Some(10_000)).per,
            MAX_PER
        );
        assert_eq!(PageRequest::new("", "", false, 0, None).page, 1);
    }

    #[test]
    fn account_kinds_parse() {
        for k in AccountKind::ALL {
            assert_eq!(k.as_str().parse::<AccountKind>().unwrap(), k);
        }
        assert!("x".parse::<AccountKind>().is_err());
    }
}
