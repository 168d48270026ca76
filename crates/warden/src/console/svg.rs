//! The hierarchy as a picture: a server-rendered SVG with the operator on the left, its
//! accounts in the middle column and each account's users on the right, and an arrow
//! from an exporting account to each account importing from it. A group of accounts too
//! large to list ([`BOUNDS`]) is one summary box linking to its paged list, and the
//! picture draws at most [`MAX_NODES`] boxes, whatever the organisation's size.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use warden_core::units::plural;
use warden_ops::page::{Hierarchy, HierarchyBounds};

use super::pages::{group_href, group_noun};
use super::render::{esc, seg};

/// What the hierarchy lists: groups of more than 50 accounts are summarised, an
/// account's first 12 users are drawn.
pub(crate) const BOUNDS: HierarchyBounds = HierarchyBounds {
    max_accounts: 50,
    max_users: 12,
};
/// Most boxes drawn (operator, summaries, accounts, users); the rest are counted.
pub(crate) const MAX_NODES: usize = 400;
const ROW: i64 = 28;
const BOX_H: i64 = 22;

/// The picture and what it left out.
pub(crate) struct Picture {
    /// The SVG document.
    pub svg: String,
    /// Boxes drawn.
    pub drawn: usize,
    /// Accounts and users listed in the tree but not drawn (over [`MAX_NODES`]).
    pub omitted: usize,
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

/// The SVG document (also valid inline in HTML) of `t`, with at most [`MAX_NODES`] boxes.
pub(crate) fn render(t: &Hierarchy) -> Picture {
    let (op_x, acc_x, user_x, w) = (10, 250, 520, 190);
    let mut body = String::new();
    let mut y = 10;
    let mut account_y: BTreeMap<&str, i64> = BTreeMap::new();
    let mut left_y: Vec<i64> = Vec::new();
    let mut links = String::new();
    let mut drawn = 1; // the operator
    let mut omitted = 0;
    for g in &t.groups {
        if g.summarised() {
            if drawn >= MAX_NODES {
                omitted += 1;
                continue;
            }
            drawn += 1;
            left_y.push(y);
            node(
                &mut body,
                acc_x,
                y,
                w,
                &group_noun(g.kind, g.total),
                &group_href(g.kind),
                "acc group",
            );
            let _ = write!(
                body,
                "<text class=\"more\" x=\"{}\" y=\"{}\">{}</text>",
                user_x + 6,
                y + 15,
                esc(&plural(g.users_total, "user", "users"))
            );
            y += ROW + 10;
            continue;
        }
        for a in &g.accounts {
            if drawn >= MAX_NODES {
                omitted += 1 + a.users.len();
                continue;
            }
            drawn += 1;
            let top = y;
            account_y.insert(a.name.as_str(), top);
            left_y.push(top);
            let href = format!("/console/accounts/{}", seg(&a.name));
            node(
                &mut body,
                acc_x,
                top,
                w,
                &a.name,
                &href,
                if a.system { "acc sys" } else { "acc" },
            );
            let mut rows = 0;
            for u in &a.users {
                if drawn >= MAX_NODES {
                    omitted += 1;
                    continue;
                }
                drawn += 1;
                let uy = top + rows * ROW;
                rows += 1;
                let _ = write!(
                    links,
                    "<path class=\"tie\" d=\"M{} {} L{} {}\"/>",
                    acc_x + w,
                    top + BOX_H / 2,
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
                    if u.revoked { "user revoked" } else { "user" },
                );
            }
            let more = a.users_total - rows as usize;
            if more > 0 {
                let _ = write!(
                    body,
                    "<text class=\"more\" x=\"{}\" y=\"{}\">+{more} more</text>",
                    user_x + 6,
                    top + rows * ROW + 15,
                );
                rows += 1;
            }
            y = top + rows.max(1) * ROW + 10;
        }
    }
    if omitted > 0 {
        let _ = write!(
            body,
            "<text class=\"more\" x=\"{}\" y=\"{}\">… {omitted} more not drawn (see the tree)</text>",
            acc_x + 6,
            y + 15
        );
        y += ROW + 10;
    }
    let height = y.max(10 + ROW) + 10;
    let op_y = 10;
    for ay in &left_y {
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
    let accounts: usize = t.groups.iter().map(|g| g.total).sum();
    let svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"hierarchy\" viewBox=\"0 0 {vw} {height}\" role=\"img\" aria-labelledby=\"svg-title\" data-nodes=\"{drawn}\">\
<title id=\"svg-title\">Operator {op}: {n}, {edges}</title>\
<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0 0 L10 5 L0 10 z\"/></marker></defs>\
{links}{arcs}{body}</svg>",
        vw = user_x + w + 10,
        op = esc(&t.operator),
        n = plural(accounts, "account", "accounts"),
        edges = plural(t.edges.len(), "import edge", "import edges"),
    );
    Picture {
        svg,
        drawn,
        omitted,
    }
}
