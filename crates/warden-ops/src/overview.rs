//! The console's status reads that no other operation answers: the outbox backlog and the
//! relay's last error, the chat gateway's rooms with their rules, the directory's system
//! administrators and the closed proposals; and the summaries of thousands of accounts
//! (the system account's name, the hierarchy, every account's name with the exporters an
//! account page offers) read through the store's light account query
//! ([`warden_store::console_queries`]): no account JWT read; a spec read only where the
//! account may export (decoded whole) or import (only its imports' accounts and subjects
//! decoded). Every read needs the `read` scope.

use std::collections::{BTreeMap, BTreeSet};

use warden_core::AccountSpec;
use warden_core::governance::{ObjectType, Proposal, ProposalStatus, Relationship, SYSADMIN};
use warden_store::console_queries::{AccountBrief, SpecOf};
use warden_store::governance::ProposalFilter;
use warden_store::{RoomRow, RoomRuleRow};

use crate::onboarding::PackageView;
use crate::page::{
    AccountKind, Hierarchy, HierarchyAccount, HierarchyBounds, HierarchyEdge, HierarchyGroup,
    HierarchyUser, Page, PageRequest, paginate,
};
use crate::{OpsError, Result, Scope, Warden};

/// Outbox rows looked at for the relay's last error.
const OUTBOX_PEEK: i64 = 50;

/// What is waiting to be delivered to NATS.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct OutboxState {
    /// Rows not yet delivered.
    pub pending: i64,
    /// The error the oldest failing row last got, with its attempts so far.
    pub last_error: Option<(i64, String)>,
}

/// A room of the chat gateway with how many rules (members) it has.
#[derive(Clone, Debug)]
pub struct RoomSummary {
    /// The room.
    pub room: RoomRow,
    /// Its rules.
    pub rules: usize,
}

/// Closed proposals, newest closed first.
#[derive(Clone, Debug)]
pub struct ClosedProposals {
    /// How many there are in all.
    pub total: usize,
    /// The newest of them (at most the number asked for).
    pub newest: Vec<Proposal>,
}

/// An account that exports something, as an account page offers its exports to import.
#[derive(Clone, Debug)]
pub struct Exporter {
    /// Its name.
    pub name: String,
    /// Its public key.
    pub public_key: String,
    /// Its spec (exports, with their revocations).
    pub spec: AccountSpec,
}

/// Every account's name by public key, and the accounts that export something.
pub type NamesAndExporters = (BTreeMap<String, String>, Vec<Exporter>);

/// An account of the light query with its kind (its spec, when read, in `row.spec`).
struct Brief {
    row: AccountBrief,
    kind: AccountKind,
}

/// What the hierarchy reads of an importing account's spec: each import's exporter and
/// subject (the rest, activation tokens included, is skipped, not decoded).
#[derive(serde::Deserialize)]
struct ImportsOnly {
    #[serde(default)]
    imports: Vec<ImportRef>,
}

#[derive(serde::Deserialize)]
struct ImportRef {
    account: String,
    subject: String,
}

/// A spec's text decoded as `T`; unreadable is the store's trouble.
fn spec_as<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| OpsError::Conflict(format!("stored spec is unreadable: {e}")))
}

impl Warden {
    /// Every account as the summary pages need it: one light query (with the specs of
    /// the accounts `spec_of` names, as text), the kinds resolved.
    async fn briefs(&self, spec_of: SpecOf) -> Result<Vec<Brief>> {
        let op = self
            .store
            .operator()
            .await?
            .ok_or(OpsError::NotInitialised)?;
        let mut out = Vec::new();
        for row in self.store.account_briefs(&op.public_key, spec_of).await? {
            let kind = if row.public_key == op.system_account {
                AccountKind::System
            } else if row.device {
                AccountKind::Device
            } else if row.tenant {
                AccountKind::Tenant
            } else {
                AccountKind::Plain
            };
            out.push(Brief { row, kind });
        }
        Ok(out)
    }

    /// The system account's name (`None` before `warden init`).
    pub async fn system_account_name(&self) -> Result<Option<String>> {
        self.need(Scope::Read, "reading the operator")?;
        let Some(op) = self.store.operator().await? else {
            return Ok(None);
        };
        Ok(self
            .store
            .account(&op.system_account)
            .await?
            .map(|a| a.name))
    }

    /// What an account's page needs of the other accounts, however many there are: every
    /// account's name by public key, and the accounts that export something (their specs
    /// decoded). Other accounts' specs and every JWT are left unread.
    pub async fn account_names_and_exporters(&self) -> Result<NamesAndExporters> {
        self.need(Scope::Read, "listing accounts")?;
        let mut names = BTreeMap::new();
        let mut exporters = Vec::new();
        for b in self.briefs(SpecOf::Exporters).await? {
            names.insert(b.row.public_key.clone(), b.row.name.clone());
            let Some(text) = &b.row.spec else { continue };
            let spec: AccountSpec = spec_as(text)?;
            if !spec.exports.is_empty() {
                exporters.push(Exporter {
                    name: b.row.name,
                    public_key: b.row.public_key,
                    spec,
                });
            }
        }
        Ok((names, exporters))
    }

    /// Operator → accounts → users, with the accounts grouped by kind and every level
    /// bounded by `bounds`: a group with more accounts than the bound is summarised (its
    /// count), an account with more users shows its first ones and its count. Users are
    /// read only for the accounts listed.
    pub async fn hierarchy(&self, bounds: HierarchyBounds) -> Result<Hierarchy> {
        self.need(Scope::Read, "reading the hierarchy")?;
        let operator = self.operator().await?.name;
        let briefs = self.briefs(SpecOf::Importers).await?;
        let names: BTreeMap<&str, &str> = briefs
            .iter()
            .map(|b| (b.row.public_key.as_str(), b.row.name.as_str()))
            .collect();
        let mut groups = Vec::new();
        let mut listed: BTreeSet<&str> = BTreeSet::new();
        for kind in AccountKind::ALL {
            let of_kind: Vec<&Brief> = briefs.iter().filter(|b| b.kind == kind).collect();
            if of_kind.is_empty() {
                continue;
            }
            let users_total = of_kind.iter().map(|b| b.row.users).sum();
            let mut accounts = Vec::new();
            if of_kind.len() <= bounds.max_accounts {
                for b in &of_kind {
                    let users = if b.row.users == 0 {
                        Vec::new()
                    } else {
                        self.store
                            .users(&b.row.public_key)
                            .await?
                            .into_iter()
                            .take(bounds.max_users)
                            .map(|u| HierarchyUser {
                                name: u.name,
                                revoked: u.revoked_at.is_some(),
                            })
                            .collect()
                    };
                    listed.insert(b.row.name.as_str());
                    accounts.push(HierarchyAccount {
                        name: b.row.name.clone(),
                        system: b.kind == AccountKind::System,
                        users_total: b.row.users,
                        users,
                    });
                }
            }
            groups.push(HierarchyGroup {
                kind,
                total: of_kind.len(),
                users_total,
                accounts,
            });
        }
        let mut edges = Vec::new();
        let mut edges_hidden = 0;
        for b in &briefs {
            let Some(text) = &b.row.spec else { continue };
            for i in spec_as::<ImportsOnly>(text)?.imports {
                let Some(from) = names.get(i.account.as_str()) else {
                    continue;
                };
                if listed.contains(from) && listed.contains(b.row.name.as_str()) {
                    edges.push(HierarchyEdge {
                        from: from.to_string(),
                        to: b.row.name.clone(),
                        subject: i.subject,
                    });
                } else {
                    edges_hidden += 1;
                }
            }
        }
        Ok(Hierarchy {
            operator,
            groups,
            edges,
            edges_hidden,
        })
    }

    /// The outbox backlog and the relay's last error.
    pub async fn outbox_state(&self) -> Result<OutboxState> {
        self.need(Scope::Read, "reading the outbox")?;
        let pending = self.store.counts().await?.outbox_pending;
        let rows = self.store.pending_outbox(i64::MAX, OUTBOX_PEEK).await?;
        let last_error = rows
            .into_iter()
            .find_map(|r| r.last_error.map(|e| (r.attempts, e)));
        Ok(OutboxState {
            pending,
            last_error,
        })
    }

    /// A page of the onboarding packages (of one tenant, when given). Sort columns:
    /// `issued`, `id`, `tenant`, `state`, `user`; searched in id, tenant, collector, site,
    /// user and state.
    pub async fn packages_page(
        &self,
        tenant: Option<&str>,
        req: &PageRequest,
    ) -> Result<Page<PackageView>> {
        let list = self.list_packages(tenant).await?;
        paginate(
            list,
            req,
            &[
                ("issued", |a, b| {
                    (a.issued_at, &a.id).cmp(&(b.issued_at, &b.id))
                }),
                ("id", |a, b| a.id.cmp(&b.id)),
                ("tenant", |a, b| a.tenant.cmp(&b.tenant)),
                ("state", |a, b| a.state.cmp(&b.state)),
                ("user", |a, b| a.user.cmp(&b.user)),
            ],
            |p| {
                vec![
                    p.id.as_str(),
                    p.tenant.as_str(),
                    p.component.as_str(),
                    p.site.as_str(),
                    p.user.as_str(),
                    p.state.as_str(),
                ]
            },
        )
    }

    /// A page of the chat gateway's rooms, with the rule counts of the rooms shown (read
    /// for that page only). Sort columns: `id`, `name`, `kind`, `owner`, `created`;
    /// searched in name, kind and owner.
    pub async fn rooms_page(&self, req: &PageRequest) -> Result<Page<RoomSummary>> {
        self.need(Scope::Read, "listing rooms")?;
        let rooms = self.store.rooms_by_id(0, i64::MAX).await?;
        let page = paginate(
            rooms,
            req,
            &[
                ("id", |a: &RoomRow, b: &RoomRow| a.id.cmp(&b.id)),
                ("name", |a, b| a.name.cmp(&b.name)),
                ("kind", |a, b| a.kind.cmp(&b.kind)),
                ("owner", |a, b| a.owner_user.cmp(&b.owner_user)),
                ("created", |a, b| a.created_at.cmp(&b.created_at)),
            ],
            |r| vec![r.name.as_str(), r.kind.as_str(), r.owner_user.as_str()],
        )?;
        let mut out = Vec::with_capacity(page.items.len());
        for room in page.items {
            let rules = self.store.room_rules(room.id).await?.len();
            out.push(RoomSummary { room, rules });
        }
        Ok(Page {
            items: out,
            total: page.total,
            matched: page.matched,
            page: page.page,
            per: page.per,
            sort: page.sort,
            desc: page.desc,
        })
    }

    /// One room and its rules.
    pub async fn room_detail(&self, id: i64) -> Result<(RoomRow, Vec<RoomRuleRow>)> {
        self.need(Scope::Read, "reading a room")?;
        let room = self
            .store
            .room(id)
            .await?
            .ok_or_else(|| OpsError::NotFound(format!("room {id}")))?;
        let rules = self.store.room_rules(id).await?;
        Ok((room, rules))
    }

    /// The ids of the directory's system administrators, sorted.
    pub async fn sysadmins(&self) -> Result<Vec<String>> {
        self.need_gov(Scope::Read, "reading the directory")?;
        Ok(self
            .store
            .related(
                ObjectType::SysAdmin,
                SYSADMIN,
                ObjectType::User,
                &[Relationship::Member],
            )
            .await?)
    }

    /// Confirmed, rejected and expired proposals: how many, and the newest `shown` of them
    /// (by closing time).
    pub async fn closed_proposals(&self, shown: usize) -> Result<ClosedProposals> {
        self.need_gov(Scope::Read, "listing proposals")?;
        let mut closed = Vec::new();
        for status in [
            ProposalStatus::Confirmed,
            ProposalStatus::Rejected,
            ProposalStatus::Expired,
        ] {
            let filter = ProposalFilter {
                status: Some(status),
                initiator: None,
                limit: 0,
            };
            closed.extend(self.store.proposals(&filter).await?);
        }
        closed.sort_by(|a, b| {
            (b.closed_at, b.created_at, &b.id).cmp(&(a.closed_at, a.created_at, &a.id))
        });
        let total = closed.len();
        closed.truncate(shown);
        Ok(ClosedProposals {
            total,
            newest: closed,
        })
    }
}
