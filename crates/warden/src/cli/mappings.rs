//! `warden account mapping …`: an account's subject mappings (`--from S --to T[:W%]`),
//! with their human and JSON output.

use anyhow::Result;
use clap::Subcommand;
use nats_jwt::Subject;
use warden_ops::Warden;
use warden_ops::mappings::{MappingAdd, MappingRemove, MappingTarget, MappingsView};

use super::values::subject;
use super::{emit, table};

/// `warden account mapping …`.
#[derive(Subcommand, Debug)]
pub enum MappingCmd {
    /// Map a subject to one or more weighted destinations (a destination already listed
    /// for the source is updated, as nsc's `add mapping` does).
    Add {
        /// Account name.
        account: String,
        /// Subject published in the account.
        #[arg(long, value_parser = subject)]
        from: Subject,
        /// Destination, `SUBJECT` or `SUBJECT:WEIGHT%` (1-100; none = 100); repeatable.
        /// Weights of one source add up to 100 at most; nats-server delivers what is left
        /// on the source subject itself.
        #[arg(long, required = true, value_name = "SUBJECT[:WEIGHT%]", value_parser = target)]
        to: Vec<MappingTarget>,
        /// Apply these destinations only in this nats-server cluster.
        #[arg(long)]
        cluster: Option<String>,
    },
    /// List an account's mappings.
    #[command(alias = "ls")]
    List {
        /// Account name.
        account: String,
    },
    /// Remove a mapping, or one of its destinations.
    #[command(alias = "remove")]
    Rm {
        /// Account name.
        account: String,
        /// Source subject.
        #[arg(long, value_parser = subject)]
        from: Subject,
        /// Only this destination (the mapping goes with its last destination).
        #[arg(long, value_parser = subject)]
        to: Option<Subject>,
    },
}

/// Parses `--to SUBJECT[:WEIGHT%]`: a `:` starts the weight, 1 to 100, `%` optional.
pub(crate) fn target(s: &str) -> Result<MappingTarget, String> {
    let (subj, weight) = match s.rsplit_once(':') {
        None => (s, None),
        Some((subj, w)) => {
            let digits = w.trim().strip_suffix('%').unwrap_or(w.trim());
            let bad = || {
                format!(
                    "invalid destination {s:?}: use SUBJECT or SUBJECT:WEIGHT% with a weight from 1 to 100"
                )
            };
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let w: u32 = digits.parse().map_err(|_| bad())?;
            if !(1..=100).contains(&w) {
                return Err(format!(
                    "invalid weight {w}% in {s:?}: a destination's weight is 1% to 100%"
                ));
            }
            (subj, Some(w as u8))
        }
    };
    let subject = subject(subj)?;
    if subject.has_wildcards() || subject.queue().is_some() {
        return Err(format!(
            "invalid destination {subj:?}: a mapping destination is a plain subject (no wildcards, no queue group)"
        ));
    }
    Ok(MappingTarget { subject, weight })
}

/// Runs `warden account mapping …`.
pub async fn run(json: bool, w: &Warden, cmd: MappingCmd) -> Result<()> {
    match cmd {
        MappingCmd::Add {
            account,
            from,
            to,
            cluster,
        } => {
            let v = w
                .add_mapping(&MappingAdd {
                    account,
                    from,
                    to,
                    cluster,
                })
                .await?;
            emit(json, &v, || {
                format!("account {} mappings\n{}", v.account, text(&v))
            })
        }
        MappingCmd::List { account } => {
            let v = w.mappings(&account).await?;
            emit(json, &v, || text(&v))
        }
        MappingCmd::Rm { account, from, to } => {
            let v = w
                .remove_mapping(&MappingRemove { account, from, to })
                .await?;
            emit(json, &v, || {
                format!("account {} mappings\n{}", v.account, text(&v))
            })
        }
    }
}

/// The mappings as one table (a row per destination), or a line saying there are none.
pub(crate) fn text(v: &MappingsView) -> String {
    if v.mappings.is_empty() {
        return "no subject mappings\n".into();
    }
    let mut t = table(["from", "to", "weight", "cluster"]);
    for m in &v.mappings {
        for d in &m.to {
            t.add_row(vec![
                m.from.to_string(),
                d.subject.to_string(),
                format!("{}%", d.weight),
                d.cluster.clone().unwrap_or_default(),
            ]);
        }
        if m.unmapped > 0 && m.unmapped < 100 {
            t.add_row(vec![
                m.from.to_string(),
                format!("{} (unmapped)", m.from),
                format!("{}%", m.unmapped),
                String::new(),
            ]);
        }
    }
    format!("{t}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_with_and_without_weight() {
        let t = target("b").unwrap();
        assert_eq!((t.subject.as_str(), t.weight), ("b", None));
        let t = target("orders.v2:30%").unwrap();
        assert_eq!((t.subject.as_str(), t.weight), ("orders.v2", Some(30)));
        assert_eq!(target("b:100").unwrap().weight, Some(100));
        for bad in [
            "", " ", "b:", "b:%", "b:0%", "b:101%", "b:-5", "b:x%", ":50%", "b.*:50%", "b.>",
            "b q:10%", "b:5%%",
        ] {
            assert!(target(bad).is_err(), "{bad:?}");
        }
    }
}
