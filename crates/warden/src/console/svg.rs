//! The hierarchy as a picture: a server-rendered SVG with the operator on the left, its
//! accounts in the middle column and each account's users on the right, and an arrow
//! from an exporting account to each account importing from it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::render::{esc, seg};
use warden_ops::{AccountView, Result, UserView, Warden};

/// Users drawn per account; the rest are summarised as "+N more".
const MAX_USERS_DRAWN: usize = 12;
const ROW: i64 = 28;
const BOX_H: i64 = 22;

/// An import of `subject` by account `to` from account `from`.
pub(crate) struct Edge {
    pub from: String,
    pub to: String,
    pub subject: String,
}

/// What the hierarchy page shows.
pub(crate) struct Tree {
    pub operator: String,
    pub accounts: Vec<(AccountView, Vec<UserView>)>,
    pub edges: Vec<Edge>,
}

impl Tree {
    pub(crate) async fn load(w: &Warden) -> Result<Tree> {
        let operator = w.operator().await?.name;
        let mut accounts = Vec::new();
        for a in w.list_accounts().await? {
            let users = w.list_users(&a.name).await?;
            accounts.push((a, users));
        }
        let names: BTreeMap<&str, &str> = accounts
            .iter()
            .map(|(a, _)| (a.public_key.as_str(), a.name.as_str()))
            .collect();
        let mut edges = Vec::new();
        for (a, _) in &accounts {
            for i in &a.spec.imports {
                if let Some(from) = names.get(i.account.as_str()) {
                    edges.push(Edge {
                        from: from.to_string(),
                        to: a.name.clone(),
                        subject: i.subject.to_string(),
                    });
                }
            }
        }
        Ok(Tree {
            operator,
            accounts,
            edges,
        })
    }
}

fn node(out: &mut String, x: i64, y: i64, w: i64, label: &str, href: &str, class: &str) {
    let shown: String = if label.chars().count() > 22 {
        label.chars().take(21).chain(['…']).collect()
    } else {
        label.to_string()
    };
    let _ = write!(
        out,
        "<a href=\"{href}\"><g class=\"{class}\"><title>{full}</title><rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{BOX_H}\" rx=\"4\"/><text x=\"{tx}\" y=\"{ty}\">{text}</text></g></a>",
        full = esc(label),
        tx = x + 6,
        ty = y + 15,
        text = esc(&shown),
    );
}

/// The SVG document (also valid inline in HTML).
pub(crate) fn render(t: &Tree) -> String {
    let (op_x, acc_x, user_x, w) = (10, 250, 520, 190);
    let mut body = String::new();
    let mut y = 10;
    let mut account_y: BTreeMap<&str, i64> = BTreeMap::new();
    let mut links = String::new();
    for (a, users) in &t.accounts {
        let rows =
            users.len().min(MAX_USERS_DRAWN) as i64 + i64::from(users.len() > MAX_USERS_DRAWN);
        let top = y;
        let ay = top;
        account_y.insert(a.name.as_str(), ay);
        let href = format!("/console/accounts/{}", seg(&a.name));
        node(
            &mut body,
            acc_x,
            ay,
            w,
            &a.name,
            &href,
            if a.system { "acc sys" } else { "acc" },
        );
        for (i, u) in users.iter().take(MAX_USERS_DRAWN).enumerate() {
            let uy = top + i as i64 * ROW;
            let _ = write!(
                links,
                "<path class=\"tie\" d=\"M{} {} L{} {}\"/>",
                acc_x + w,
                ay + BOX_H / 2,
                user_x,
                uy + BOX_H / 2
            );
            node(
                &mut body,
                user_x,
                uy,
                w,
                &u.name,
                &format!("{href}/users/{}", seg(&u.name)),
                if u.revoked_at.is_some() {
                    "user revoked"
                } else {
                    "user"
                },
            );
        }
        if users.len() > MAX_USERS_DRAWN {
            let _ = write!(
                body,
                "<text class=\"more\" x=\"{}\" y=\"{}\">+{} more</text>",
                user_x + 6,
                top + MAX_USERS_DRAWN as i64 * ROW + 15,
                users.len() - MAX_USERS_DRAWN
            );
        }
        y = top + rows.max(1) * ROW + 10;
    }
    let height = y.max(10 + ROW) + 10;
    let op_y = 10;
    for ay in account_y.values() {
        let _ = write!(
            links,
            "<path class=\"tie\" d=\"M{} {} L{} {}\"/>",
            op_x + w,
            op_y + BOX_H / 2,
            acc_x,
            ay + BOX_H / 2
        );
    }
    node(
        &mut body,
        op_x,
        op_y,
        w,
        &format!("Operator {}", t.operator),
        "/console",
        "op",
    );
    // Import edges: arcs on the left of the accounts column, exporter → importer.
    let mut arcs = String::new();
    for (i, e) in t.edges.iter().enumerate() {
        let (Some(fy), Some(ty)) = (account_y.get(e.from.as_str()), account_y.get(e.to.as_str()))
        else {
            continue;
        };
        let bend = acc_x - 20 - (i as i64 % 5) * 8;
        let _ = write!(
            arcs,
            "<path class=\"edge\" marker-end=\"url(#arrow)\" d=\"M{acc_x} {} C{bend} {}, {bend} {}, {acc_x} {}\"><title>{} exports {} to {}</title></path>",
            fy + BOX_H / 2 - 4,
            fy + BOX_H / 2 - 4,
            ty + BOX_H / 2 + 4,
            ty + BOX_H / 2 + 4,
            esc(&e.from),
            esc(&e.subject),
            esc(&e.to)
        );
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"hierarchy\" viewBox=\"0 0 {vw} {height}\" role=\"img\" aria-labelledby=\"svg-title\">\
<title id=\"svg-title\">Operator {op}: {n} accounts, {edges} import edges</title>\
<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0 0 L10 5 L0 10 z\"/></marker></defs>\
{links}{arcs}{body}</svg>",
        vw = user_x + w + 10,
        op = esc(&t.operator),
        n = t.accounts.len(),
        edges = t.edges.len(),
    )
}
