//! The console's status reads that no other operation answers: the outbox backlog and the
//! relay's last error, the chat gateway's rooms with their rules, the directory's system
//! administrators and the closed proposals. Every read needs the `read` scope.

use warden_core::governance::{ObjectType, Proposal, ProposalStatus, Relationship, SYSADMIN};
use warden_store::governance::ProposalFilter;
use warden_store::{RoomRow, RoomRuleRow};

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

impl Warden {
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

    /// The first `limit` rooms by id, with their rule counts.
    pub async fn rooms_overview(&self, limit: i64) -> Result<Vec<RoomSummary>> {
        self.need(Scope::Read, "listing rooms")?;
        let rooms = self.store.rooms_by_id(0, limit.max(1)).await?;
        let mut out = Vec::with_capacity(rooms.len());
        for room in rooms {
            let rules = self.store.room_rules(room.id).await?.len();
            out.push(RoomSummary { room, rules });
        }
        Ok(out)
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
