//! The governance commands: `warden dir user …`, `warden dir expire`, `warden role …`,
//! `warden task …`, `warden propose …`, `warden proposals list`, `warden confirm`,
//! `warden reject` and `warden user explain`. Flags are read here (bad input is a usage
//! error, exit 2, before anything is touched); [`crate::governance`] does the work.

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use nats_jwt::Subject;
use warden_core::directory::NextUser;
use warden_core::governance::{Change, ProposalKind, ProposalStatus, TaskGrants};
use warden_core::parse::{format_unix, parse_expiry};

use crate::cli::{print_json, usage};
use warden_ops::governance::ProposalInput;
use warden_ops::{Warden, now};

/// The acting directory user.
#[derive(Args, Debug, Clone, Default)]
pub struct Acting {
    /// Act as this directory user (recorded as initiator / closer; checked by the approval rules).
    #[arg(long = "as", value_name = "USER")]
    pub as_user: Option<String>,
}

impl Acting {
    fn required(&self, what: &str) -> Result<&str> {
        self.as_user.as_deref().ok_or_else(|| {
            usage(format!(
                "{what} needs --as USER (the acting directory user)"
            ))
        })
    }
}

/// `warden dir …`.
#[derive(Subcommand, Debug)]
pub enum DirCmd {
    /// Directory users.
    #[command(subcommand)]
    User(DirUserCmd),
    /// Remove expired grants and proposals now (what `serve` does periodically); re-issues affected NATS users.
    Expire,
    /// Sync with Active Directory / Azure AD, export changes (`dir sync`, `dir export`).
    #[command(flatten)]
    Sync(crate::cli::dirsync::DirSyncCmd),
}

/// `warden dir user …`.
#[derive(Subcommand, Debug)]
pub enum DirUserCmd {
    /// Add a directory user (the first one becomes a system administrator).
    Add {
        /// Directory id: a NATS user name (snake_case by default).
        id: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Manager's directory id.
        #[arg(long)]
        manager: Option<String>,
        /// E-mail address.
        #[arg(long)]
        email: Option<String>,
        /// Make the user a system administrator.
        #[arg(long)]
        sysadmin: bool,
        /// The acting directory user.
        #[command(flatten)]
        acting: Acting,
    },
    /// List directory users.
    List {
        /// The acting directory user.
        #[command(flatten)]
        acting: Acting,
    },
    /// Show a directory user with their relationships and NATS accounts.
    Show {
        /// Directory id.
        id: String,
        /// The acting directory user.
        #[command(flatten)]
        acting: Acting,
    },
    /// A user's own NATS keys (ADD_KEY): add, list, remove.
    #[command(subcommand)]
    Key(crate::cli::dir_keys::DirKeyCmd),
}

/// `warden role …`.
#[derive(Subcommand, Debug)]
pub enum RoleCmd {
    /// Create a role with its first owner(s).
    Create {
        /// Role name.
        name: String,
        /// Owner (repeatable).
        #[arg(long = "owner", required = true, value_name = "ID")]
        owners: Vec<String>,
        /// Description.
        #[arg(long)]
        description: Option<String>,
        /// The acting directory user.
        #[command(flatten)]
        acting: Acting,
    },
    /// List roles.
    List {
        /// The acting directory user.
        #[command(flatten)]
        acting: Acting,
    },
    /// Show a role: members, owners, admins, tasks.
    Show {
        /// Role name.
        name: String,
        /// The acting directory user.
        #[command(flatten)]
        acting: Acting,
    },
}

/// `warden task …`.
#[derive(Subcommand, Debug)]
pub enum TaskCmd {
    /// Create a task: NATS grants in one account.
    Create {
        /// Task name.
        name: String,
        /// Account the grants apply in.
        #[arg(long)]
        account: String,
        /// Allow publishing (repeatable, comma-separated).
        #[arg(long, value_delimiter = ',', value_name = "SUBJECT", value_parser = super::values::subject)]
        allow_pub: Vec<Subject>,
        /// Allow subscribing (`subject queue` for a queue group).
        #[arg(long, value_delimiter = ',', value_name = "SUBJECT", value_parser = super::values::subject)]
        allow_sub: Vec<Subject>,
        /// Deny publishing.
        #[arg(long, value_delimiter = ',', value_name = "SUBJECT", value_parser = super::values::subject)]
        deny_pub: Vec<Subject>,
        /// Deny subscribing.
        #[arg(long, value_delimiter = ',', value_name = "SUBJECT", value_parser = super::values::subject)]
        deny_sub: Vec<Subject>,
        /// Owner (repeatable).
        #[arg(long = "owner", required = true, value_name = "ID")]
        owners: Vec<String>,
        /// Description.
        #[arg(long)]
        description: Option<String>,
        /// The acting directory user.
        #[command(flatten)]
        acting: Acting,
    },
    /// List tasks.
    List {
        /// The acting directory user.
        #[command(flatten)]
        acting: Acting,
    },
    /// Show a task.
    Show {
        /// Task name.
        name: String,
        /// The acting directory user.
        #[command(flatten)]
        acting: Acting,
    },
}

/// `warden propose …`.
#[derive(Subcommand, Debug)]
pub enum ProposeCmd {
    /// A user's membership of a role (approved by the role's owners).
    RoleMember(RelArgs),
    /// A user's ownership of a role (approved by the role's admins).
    RoleOwner(RelArgs),
    /// A user's administration of a role (approved by the role's admins).
    RoleAdmin(RelArgs),
    /// A task held by a role (approved by the task's owners).
    RoleTask(RelArgs),
    /// A user's ownership of a task (approved by the task's admins).
    TaskOwner(RelArgs),
    /// A user's administration of a task (approved by the task's admins).
    TaskAdmin(RelArgs),
    /// A user's manager (approved by the proposed manager).
    Manager {
        /// The user.
        #[arg(long)]
        user: String,
        /// The proposed manager.
        #[arg(long)]
        manager: String,
        /// Reason, deadline, acting user.
        #[command(flatten)]
        common: ProposeCommon,
    },
}

/// Add or remove.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum AddRemove {
    /// Add the relationship.
    Add,
    /// Remove it.
    Remove,
}

/// The flags of a relationship proposal.
#[derive(Args, Debug)]
pub struct RelArgs {
    /// Add or remove.
    pub change: AddRemove,
    /// The role.
    #[arg(long)]
    pub role: Option<String>,
    /// The task (the object of task-owner/task-admin, the related task of role-task).
    #[arg(long)]
    pub task: Option<String>,
    /// The user.
    #[arg(long)]
    pub user: Option<String>,
    /// Grant expiry of an addition: `30m`, `2h`, `7d`, `yyyy-mm-dd`, `@unix`.
    #[arg(long = "expiry", alias = "expires", value_name = "WHEN")]
    pub expires: Option<String>,
    /// Reason, deadline, acting user.
    #[command(flatten)]
    pub common: ProposeCommon,
}

/// Flags every proposal takes.
#[derive(Args, Debug)]
pub struct ProposeCommon {
    /// Why.
    #[arg(long)]
    pub reason: Option<String>,
    /// The proposal expires unanswered after this (`7d`, …).
    #[arg(long, value_name = "EXPIRY")]
    pub open_for: Option<String>,
    /// The acting directory user.
    #[command(flatten)]
    pub acting: Acting,
}

/// `warden proposals …`.
#[derive(Subcommand, Debug)]
pub enum ProposalsCmd {
    /// List proposals.
    List {
        /// Only those the acting user initiated.
        #[arg(long, conflicts_with = "to_approve")]
        mine: bool,
        /// Only open ones the acting user may confirm or reject.
        #[arg(long)]
        to_approve: bool,
        /// Only this status: open, confirmed, rejected, expired.
        #[arg(long)]
        status: Option<String>,
        /// The acting directory user.
        #[command(flatten)]
        acting: Acting,
    },
    /// Show one proposal.
    Show {
        /// Proposal id.
        id: String,
        /// The acting directory user.
        #[command(flatten)]
        acting: Acting,
    },
}

/// `warden confirm ID…`.
#[derive(Args, Debug)]
pub struct ConfirmArgs {
    /// Proposal ids (several: batch approval, each in its own transaction).
    #[arg(required = true)]
    pub ids: Vec<String>,
    /// Why it is approved.
    #[arg(long)]
    pub justification: Option<String>,
    /// The acting directory user.
    #[command(flatten)]
    pub acting: Acting,
}

/// `warden reject ID`.
#[derive(Args, Debug)]
pub struct RejectArgs {
    /// Proposal id.
    pub id: String,
    /// Why not.
    #[arg(long, required = true)]
    pub reason: String,
    /// The acting directory user.
    #[command(flatten)]
    pub acting: Acting,
}

fn expiry(flag: &str, raw: Option<&str>) -> Result<Option<i64>> {
    match raw {
        None => Ok(None),
        Some(s) => parse_expiry(s, now()).map_err(|e| usage(format!("--{flag}: {e}"))),
    }
}

fn when(t: Option<i64>) -> String {
    t.map(format_unix).unwrap_or_else(|| "-".into())
}

/// Runs `warden dir …`.
pub async fn run_dir(json: bool, cmd: DirCmd, w: &Warden) -> Result<()> {
    match cmd {
        DirCmd::User(DirUserCmd::Add {
            id,
            name,
            manager,
            email,
            sysadmin,
            acting,
        }) => {
            let user = NextUser {
                id,
                name: Some(name),
                manager,
                email,
                ..Default::default()
            };
            let v = w
                .dir_user_add(acting.as_user.as_deref(), user, sysadmin)
                .await?;
            if json {
                return print_json(&v);
            }
            outln!(
                "directory user {} added{}",
                v.id,
                if v.sysadmin {
                    " (system administrator)"
                } else {
                    ""
                }
            )?;
            Ok(())
        }
        DirCmd::User(DirUserCmd::List { .. }) => {
            let list = w.dir_users().await?;
            if json {
                return print_json(&list);
            }
            let mut t = crate::cli::table(["ID", "NAME", "MANAGER", "SOURCE"]);
            for u in &list {
                t.add_row([
                    u.user.id.clone(),
                    u.user.name.clone().unwrap_or_default(),
                    u.user.manager.clone().unwrap_or_default(),
                    u.source.clone(),
                ]);
            }
            outln!("{t}")?;
            Ok(())
        }
        DirCmd::User(DirUserCmd::Show { id, .. }) => {
            let v = w.dir_user(&id).await?;
            if json {
                return print_json(&v);
            }
            outln!("id         {}", v.id)?;
            outln!("name       {}", v.user.name.clone().unwrap_or_default())?;
            outln!("manager    {}", v.user.manager.clone().unwrap_or_default())?;
            outln!("source     {}", v.source)?;
            outln!("sysadmin   {}", v.sysadmin)?;
            outln!("nats       {}", v.nats_accounts.join(", "))?;
            for r in &v.relationships {
                outln!(
                    "  {}{}",
                    r.address,
                    r.expires_at
                        .map(|e| format!(" until {}", format_unix(e)))
                        .unwrap_or_default()
                )?;
            }
            Ok(())
        }
        DirCmd::Sync(cmd) => crate::cli::dirsync::run(json, cmd, w).await,
        DirCmd::User(DirUserCmd::Key(cmd)) => crate::cli::dir_keys::run_key(json, cmd, w).await,
        DirCmd::Expire => {
            let r = w.expire_governance().await?;
            if json {
                return print_json(&r);
            }
            outln!(
                "{} grants removed, {} proposals expired, {} NATS users re-issued",
                r.relationships.len(),
                r.proposals.len(),
                r.reissued.len()
            )?;
            Ok(())
        }
    }
}

/// Runs `warden role …`.
pub async fn run_role(json: bool, cmd: RoleCmd, w: &Warden) -> Result<()> {
    match cmd {
        RoleCmd::Create {
            name,
            owners,
            description,
            acting,
        } => {
            let v = w
                .role_create(acting.as_user.as_deref(), &name, &owners, description)
                .await?;
            if json {
                return print_json(&v);
            }
            outln!("role {} created (owners: {})", v.id, owners.join(", "))?;
            Ok(())
        }
        RoleCmd::List { .. } => {
            let list = w.roles().await?;
            if json {
                return print_json(&list);
            }
            let mut t =
                crate::cli::table(["ROLE", "SOURCE", "OWNERS", "ADMINS", "MEMBERS", "TASKS"]);
            for r in &list {
                t.add_row([
                    r.id.clone(),
                    r.row.source.clone(),
                    r.row.role.owners.join(", "),
                    r.row.admins.join(", "),
                    r.row.role.members.len().to_string(),
                    r.row.tasks.join(", "),
                ]);
            }
            outln!("{t}")?;
            Ok(())
        }
        RoleCmd::Show { name, .. } => {
            let v = w.role(&name).await?;
            if json {
                return print_json(&v);
            }
            outln!("role     {}", v.id)?;
            outln!("source   {}", v.row.source)?;
            outln!("owners   {}", v.row.role.owners.join(", "))?;
            outln!("admins   {}", v.row.admins.join(", "))?;
            outln!("members  {}", v.row.role.members.join(", "))?;
            outln!("tasks    {}", v.row.tasks.join(", "))?;
            Ok(())
        }
    }
}

/// Runs `warden task …`.
pub async fn run_task(json: bool, cmd: TaskCmd, w: &Warden) -> Result<()> {
    match cmd {
        TaskCmd::Create {
            name,
            account,
            allow_pub,
            allow_sub,
            deny_pub,
            deny_sub,
            owners,
            description,
            acting,
        } => {
            let grants = TaskGrants {
                allow_pub,
                deny_pub,
                allow_sub,
                deny_sub,
            };
            let v = w
                .task_create(
                    acting.as_user.as_deref(),
                    &name,
                    &account,
                    grants,
                    &owners,
                    description,
                )
                .await?;
            if json {
                return print_json(&v);
            }
            outln!("task {} created in account {}", v.id, v.row.account)?;
            Ok(())
        }
        TaskCmd::List { .. } => {
            let list = w.tasks().await?;
            if json {
                return print_json(&list);
            }
            let mut t = crate::cli::table(["TASK", "ACCOUNT", "ALLOW PUB", "ALLOW SUB", "OWNERS"]);
            for v in &list {
                let join =
                    |s: &[Subject]| s.iter().map(Subject::as_str).collect::<Vec<_>>().join(", ");
                t.add_row([
                    v.id.clone(),
                    v.row.account.clone(),
                    join(&v.row.grants.allow_pub),
                    join(&v.row.grants.allow_sub),
                    v.owners.join(", "),
                ]);
            }
            outln!("{t}")?;
            Ok(())
        }
        TaskCmd::Show { name, .. } => {
            let v = w.task(&name).await?;
            if json {
                return print_json(&v);
            }
            outln!("{}", serde_json::to_string_pretty(&v)?)?;
            Ok(())
        }
    }
}

fn rel_input(kind: ProposalKind, a: RelArgs) -> Result<(ProposalInput, Option<String>)> {
    let need = |v: Option<String>, flag: &str| {
        v.ok_or_else(|| usage(format!("{kind} proposals need --{flag}")))
    };
    let (object, related) = match kind {
        ProposalKind::RoleMember | ProposalKind::RoleOwner | ProposalKind::RoleAdmin => {
            (need(a.role, "role")?, need(a.user, "user")?)
        }
        ProposalKind::RoleTask => (need(a.role, "role")?, need(a.task, "task")?),
        ProposalKind::TaskOwner | ProposalKind::TaskAdmin => {
            (need(a.task, "task")?, need(a.user, "user")?)
        }
        ProposalKind::UserManager => bail!(usage("use `warden propose manager`")),
    };
    let change = match a.change {
        AddRemove::Add => Change::Add,
        AddRemove::Remove => Change::Remove,
    };
    Ok((
        ProposalInput {
            kind,
            change,
            object,
            related,
            reason: a.common.reason,
            grant_expires_at: expiry("expires", a.expires.as_deref())?,
            expires_at: expiry("open-for", a.common.open_for.as_deref())?,
        },
        a.common.acting.as_user,
    ))
}

fn print_proposal(v: &warden_ops::governance::ProposalView) -> Result<()> {
    let p = &v.proposal;
    outln!(
        "{} {} {} ({}) by {} [{}]{}",
        v.id,
        v.message,
        p.address,
        p.reason.clone().unwrap_or_default(),
        p.initiator,
        p.status,
        p.closer
            .as_ref()
            .map(|c| format!(" closed by {c}"))
            .unwrap_or_default()
    )?;
    for r in &v.reissued {
        outln!(
            "  NATS user {} in {} re-issued ({})",
            r.user,
            r.account,
            r.public_key.clone().unwrap_or_else(|| "removed".into())
        )?;
    }
    Ok(())
}

/// Runs `warden propose …`.
pub async fn run_propose(json: bool, cmd: ProposeCmd, w: &Warden) -> Result<()> {
    let (input, actor) = match cmd {
        ProposeCmd::RoleMember(a) => rel_input(ProposalKind::RoleMember, a)?,
        ProposeCmd::RoleOwner(a) => rel_input(ProposalKind::RoleOwner, a)?,
        ProposeCmd::RoleAdmin(a) => rel_input(ProposalKind::RoleAdmin, a)?,
        ProposeCmd::RoleTask(a) => rel_input(ProposalKind::RoleTask, a)?,
        ProposeCmd::TaskOwner(a) => rel_input(ProposalKind::TaskOwner, a)?,
        ProposeCmd::TaskAdmin(a) => rel_input(ProposalKind::TaskAdmin, a)?,
        ProposeCmd::Manager {
            user,
            manager,
            common,
        } => (
            ProposalInput {
                kind: ProposalKind::UserManager,
                change: Change::Update,
                object: user,
                related: manager,
                reason: common.reason,
                grant_expires_at: None,
                expires_at: expiry("open-for", common.open_for.as_deref())?,
            },
            common.acting.as_user,
        ),
    };
    let actor = actor.ok_or_else(|| usage("a proposal needs --as USER (its initiator)"))?;
    let v = w.propose(&actor, input).await?;
    if json {
        return print_json(&v);
    }
    print_proposal(&v)?;
    outln!(
        "  approvers: {}",
        v.approvers.iter().cloned().collect::<Vec<_>>().join(", ")
    )?;
    Ok(())
}

/// Runs `warden proposals …`.
pub async fn run_proposals(json: bool, cmd: ProposalsCmd, w: &Warden) -> Result<()> {
    match cmd {
        ProposalsCmd::List {
            mine,
            to_approve,
            status,
            acting,
        } => {
            if (mine || to_approve) && acting.as_user.is_none() {
                bail!(usage("--mine and --to-approve need --as USER"));
            }
            let status = status
                .map(|s| s.parse::<ProposalStatus>())
                .transpose()
                .map_err(|e| usage(e.to_string()))?;
            let list = w
                .proposals(acting.as_user.as_deref(), mine, to_approve, status)
                .await?;
            if json {
                return print_json(&list);
            }
            let mut t = crate::cli::table([
                "ID", "MESSAGE", "OBJECT", "RELATED", "BY", "STATUS", "CREATED",
            ]);
            for v in &list {
                let p = &v.proposal;
                t.add_row([
                    v.id.clone(),
                    v.message.clone(),
                    format!("{} {}", p.address.object_type, p.address.object_id),
                    format!("{} {}", p.address.related_type, p.address.related_id),
                    p.initiator.clone(),
                    p.status.to_string(),
                    when(Some(p.created_at)),
                ]);
            }
            outln!("{t}")?;
            Ok(())
        }
        ProposalsCmd::Show { id, .. } => {
            let v = w.proposal(&id).await?;
            if json {
                return print_json(&v);
            }
            print_proposal(&v)?;
            Ok(())
        }
    }
}

/// Runs `warden confirm ID…`: one id prints the proposal, several a result per id
/// (exit 1 if any failed).
pub async fn run_confirm(json: bool, args: ConfirmArgs, w: &Warden) -> Result<()> {
    let actor = args.acting.required("confirm")?;
    if args.ids.len() == 1 {
        let v = w
            .confirm(actor, &args.ids[0], args.justification.as_deref())
            .await?;
        if json {
            return print_json(&v);
        }
        print_proposal(&v)?;
        return Ok(());
    }
    let results = w
        .confirm_many(actor, &args.ids, args.justification.as_deref())
        .await;
    let failed = results.iter().filter(|r| !r.ok).count();
    if json {
        print_json(&results)?;
    } else {
        for r in &results {
            match (&r.proposal, &r.error) {
                (Some(v), _) => print_proposal(v)?,
                (None, Some(e)) => outln!("{} FAILED: {e}", r.id)?,
                _ => {}
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} confirmations failed", results.len());
    }
    Ok(())
}

/// Runs `warden reject ID --reason …`.
pub async fn run_reject(json: bool, args: RejectArgs, w: &Warden) -> Result<()> {
    let actor = args.acting.required("reject")?;
    let v = w.reject(actor, &args.id, &args.reason).await?;
    if json {
        return print_json(&v);
    }
    print_proposal(&v)?;
    Ok(())
}

/// Runs `warden user explain USER SUBJECT [--account A]`.
pub async fn run_explain(
    json: bool,
    w: &Warden,
    user: &str,
    subject: &str,
    account: Option<&str>,
) -> Result<()> {
    let subject = warden_core::parse::parse_subject(subject).map_err(|e| usage(e.to_string()))?;
    let list = w.explain(user, &subject, account).await?;
    if json {
        return print_json(&list);
    }
    if list.is_empty() {
        outln!("{user} holds no task: no NATS access")?;
    }
    for e in &list {
        outln!(
            "{} {} {} in {}: {}",
            e.direction,
            e.subject,
            if e.allowed { "ALLOWED" } else { "DENIED" },
            e.account,
            e.reason
        )?;
        for s in &e.allowed_by {
            outln!("  allowed by role {} task {} ({})", s.role, s.task, s.rule)?;
        }
        for s in &e.denied_by {
            outln!("  denied by role {} task {} ({})", s.role, s.task, s.rule)?;
        }
    }
    Ok(())
}
