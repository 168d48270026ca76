//! The account page's account-model sections and their forms: exports (with the Warden
//! accounts importing each and their activations), imports, signing keys (plain keys and
//! roles with their permission templates), subject mappings, and the settings page for
//! JetStream tiers, default permissions, tags and the info URL; on the user page, the
//! permissions a role's template gives the user and the rotation of the user's key.
//!
//! Each form runs ONE operation of [`warden_ops`] as the session's actor; a refused form is
//! answered with the account page again, the message on the form's section (status of
//! [`super::status_of`]) and the typed values kept; nothing changed. Forms a session's
//! scopes cannot use are left out (presentation only: the operation decides).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use nats_jwt::{ExportType, Permissions, ResponseType, SigningKey, Subject, UserPermissionLimits};
use serde::Deserialize;
use warden_core::parse::parse_size;
use warden_core::permcheck::Direction;
use warden_core::spec::{AccountEdit, JsTier, PermissionsEdit};
use warden_core::template::ServerLine;
use warden_ops::exports::{ExportOptions, ImportOptions};
use warden_ops::mappings::{MappingAdd, MappingRemove, MappingTarget, MappingsView};
use warden_ops::signing_keys::{EffectivePermissions, KeyRef, NewSigningKey};
use warden_ops::tokens::Scope;
use warden_ops::{AccountView, UserView, Warden};

use super::pages::{account_link, csrf_field, parse_subjects, seq};
use super::render::{esc, limit, page, plural, seg, short_key, size as bytes, when};
use super::{ConsoleResult, ConsoleState, Problem, Session, check_csrf, form_session, session};

/// Which account-page form a problem belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) enum Which {
    #[default]
    Exports,
    Imports,
    Keys,
    Mappings,
}

/// What the account page's account-model forms show: the values typed into each and the
/// problem of the one that was sent and refused.
#[derive(Default)]
pub(crate) struct Forms {
    pub export: ExportForm,
    pub import: ImportForm,
    pub key: KeyForm,
    pub mapping: MappingForm,
    pub problem: Option<(Which, Problem)>,
}

impl Forms {
    fn is(&self, which: Which) -> bool {
        matches!(&self.problem, Some((w, _)) if *w == which)
    }

    fn block(&self, which: Which) -> String {
        match &self.problem {
            Some((w, p)) if *w == which => p.block(),
            _ => String::new(),
        }
    }

    /// The status of the page that shows these forms.
    pub(crate) fn status(&self) -> Option<StatusCode> {
        self.problem.as_ref().map(|(_, p)| p.status)
    }
}

#[derive(Deserialize, Default, Clone)]
pub(crate) struct ExportForm {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    private: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    response_type: String,
    #[serde(default)]
    csrf: Option<String>,
}

#[derive(Deserialize, Default, Clone)]
pub(crate) struct ImportForm {
    /// `ACCOUNT SUBJECT` of the export chosen.
    #[serde(default)]
    export: String,
    /// A narrower subject than the export's (optional).
    #[serde(default)]
    subject: String,
    #[serde(default)]
    local_subject: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    csrf: Option<String>,
}

#[derive(Deserialize, Default, Clone)]
pub(crate) struct KeyForm {
    #[serde(default)]
    role: String,
    #[serde(default)]
    pub_allow: String,
    #[serde(default)]
    pub_deny: String,
    #[serde(default)]
    sub_allow: String,
    #[serde(default)]
    sub_deny: String,
    #[serde(default)]
    csrf: Option<String>,
}

#[derive(Deserialize, Default, Clone)]
pub(crate) struct MappingForm {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    weight: String,
    #[serde(default)]
    cluster: String,
    #[serde(default)]
    csrf: Option<String>,
}

/// The hidden fields and the button of a one-click action on a list entry.
fn button_form(
    action: &str,
    csrf: &str,
    fields: &[(&str, &str)],
    label: &str,
    id: &str,
    danger: bool,
) -> String {
    let mut hidden = String::new();
    for (k, v) in fields {
        let _ = write!(
            hidden,
            "<input type=\"hidden\" name=\"{k}\" value=\"{}\">",
            esc(v)
        );
    }
    format!(
        "<form class=\"inline\" method=\"post\" action=\"{action}\">{}{hidden}<button type=\"submit\" id=\"{}\"{}>{label}</button></form>",
        csrf_field(csrf),
        esc(id),
        if danger { " class=\"danger\"" } else { "" }
    )
}

/// A form field id from a subject or key (letters, digits, `-`).
fn id_of(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

fn subjects_text(list: &[Subject]) -> String {
    list.iter()
        .map(|s| format!("<code>{}</code>", esc(s.as_str())))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A permission set in one line: `pub allow a.> · sub deny x` (or `all` when open).
fn permissions_summary(p: &Permissions) -> String {
    let mut parts = Vec::new();
    for (label, list) in [
        ("pub allow", &p.publish.allow),
        ("pub deny", &p.publish.deny),
        ("sub allow", &p.subscribe.allow),
        ("sub deny", &p.subscribe.deny),
    ] {
        if !list.is_empty() {
            parts.push(format!("{label} {}", subjects_text(list)));
        }
    }
    if let Some(r) = &p.response {
        parts.push(format!(
            "responses: {}",
            plural(r.max as usize, "message", "messages")
        ));
    }
    if parts.is_empty() {
        "everything allowed".into()
    } else {
        parts.join(" · ")
    }
}

fn limits_summary(l: &UserPermissionLimits) -> String {
    let mut s = permissions_summary(&l.permissions);
    for (label, v, size) in [
        ("subscriptions", l.subs, false),
        ("data", l.data, true),
        ("payload", l.payload, true),
    ] {
        if v >= 0 {
            let _ = write!(
                s,
                " · {label} {}",
                if size { bytes(v) } else { v.to_string() }
            );
        }
    }
    s
}

fn selected(on: bool) -> &'static str {
    if on { " selected" } else { "" }
}

// ---------------------------------------------------------------------------------------
// The account page's sections
// ---------------------------------------------------------------------------------------

/// The account-model sections of the account page of `a`; `others` is every account's
/// name by public key and the accounts that export something.
pub(crate) async fn sections(
    sess: &Session,
    w: &Warden,
    a: &AccountView,
    others: &warden_ops::overview::NamesAndExporters,
    forms: &Forms,
) -> ConsoleResult<String> {
    let (all_names, exporters) = others;
    let names: BTreeMap<&str, &str> = all_names
        .iter()
        .map(|(k, n)| (k.as_str(), n.as_str()))
        .collect();
    let write = sess.offers(Scope::Write) && !a.system;
    let base = format!("/console/accounts/{}", seg(&a.name));
    let csrf = sess.csrf.as_str();
    let mut out = String::new();

    // Exports.
    let exports = w.list_exports(&a.name).await?;
    let mut items = String::new();
    for e in &exports {
        let x = &e.export;
        let subj = x.subject.as_str();
        let mut facts = vec![x.export_type.to_string()];
        facts.push(if x.token_req { "private" } else { "public" }.to_string());
        if let Some(n) = x.name.as_deref().filter(|n| !n.is_empty()) {
            facts.push(format!("“{}”", esc(n)));
        }
        if x.export_type == ExportType::Service {
            let rt = match x.response_type {
                None | Some(ResponseType::Singleton) => "singleton",
                Some(ResponseType::Stream) => "stream",
                Some(ResponseType::Chunked) => "chunked",
            };
            facts.push(format!("responses: {rt}"));
        }
        if !x.revocations.is_empty() {
            facts.push(plural(
                x.revocations.len(),
                "activation revocation",
                "activation revocations",
            ));
        }
        let mut importers = String::new();
        for i in &e.importers {
            let revoked = x
                .revocations
                .get(&i.public_key)
                .or_else(|| x.revocations.get("*"));
            let state = match (x.token_req, i.activation, revoked) {
                (false, _, _) => String::new(),
                (true, _, Some(t)) => format!(
                    " <span class=\"bad\">activation revoked {}</span>",
                    esc(&when(Some(*t)))
                ),
                (true, true, None) => " <span class=\"ok\">activation</span>".into(),
                (true, false, None) => " <span class=\"bad\">no activation</span>".into(),
            };
            let revoke = if write && x.token_req && i.activation && revoked.is_none() {
                format!(
                    " {}",
                    button_form(
                        &format!("{base}/exports/revoke"),
                        csrf,
                        &[("subject", subj), ("target", &i.public_key)],
                        "Revoke activation",
                        &format!("revoke-{}-{}", id_of(subj), id_of(&i.account)),
                        true,
                    )
                )
            } else {
                String::new()
            };
            let _ = write!(
                importers,
                "<li>{} imports <code>{}</code>{state}{revoke}</li>",
                account_link(&i.account),
                esc(&i.subject)
            );
        }
        let remove = if write {
            format!(
                " {}",
                button_form(
                    &format!("{base}/exports/remove"),
                    csrf,
                    &[("subject", subj)],
                    "Remove",
                    &format!("rm-export-{}", id_of(subj)),
                    true,
                )
            )
        } else {
            String::new()
        };
        let _ = write!(
            items,
            "<li id=\"export-{}\"><code>{}</code> — {}{remove}{}</li>",
            id_of(subj),
            esc(subj),
            facts.join(" · "),
            if importers.is_empty() {
                "<br><span class=\"muted\">not imported by a Warden account</span>".to_string()
            } else {
                format!("<ul>{importers}</ul>")
            }
        );
    }
    let f = &forms.export;
    let export_form = if write || forms.is(Which::Exports) {
        format!(
            r#"<details class="card" id="add-export"{open}><summary>Add an export</summary>
{problem}<form method="post" action="{base}/exports">{csrf}
<div class="grid2">
<div><label for="export-subject">Subject</label><input id="export-subject" name="subject" value="{subject}" required autocomplete="off" placeholder="orders.>"></div>
<div><label for="export-kind">Type</label><select id="export-kind" name="kind"><option value="stream"{st}>stream</option><option value="service"{sv}>service</option></select></div>
<div><label for="export-name">Name (optional)</label><input id="export-name" name="name" value="{name}" autocomplete="off"></div>
<div><label for="export-response">Response type (services)</label><select id="export-response" name="response_type"><option value=""{r0}>singleton (default)</option><option value="stream"{r1}>stream</option><option value="chunked"{r2}>chunked</option></select></div>
</div>
<label class="check" for="export-private"><input type="checkbox" id="export-private" name="private"{private}> Private: importers need an activation</label>
<button type="submit">Add export</button>
</form></details>"#,
            open = if forms.is(Which::Exports) {
                " open"
            } else {
                ""
            },
            problem = forms.block(Which::Exports),
            csrf = csrf_field(csrf),
            subject = esc(&f.subject),
            st = selected(f.kind != "service"),
            sv = selected(f.kind == "service"),
            name = esc(&f.name),
            r0 = selected(f.response_type.is_empty()),
            r1 = selected(f.response_type == "stream"),
            r2 = selected(f.response_type == "chunked"),
            private = if f.private.is_some() { " checked" } else { "" },
        )
    } else {
        String::new()
    };
    let _ = write!(
        out,
        r#"<section id="exports" aria-labelledby="h-exports"><h2 id="h-exports">{n}</h2>
<ul class="entries">{items}</ul>{export_form}</section>"#,
        n = if exports.is_empty() {
            "Exports".to_string()
        } else {
            plural(exports.len(), "export", "exports")
        },
        items = if items.is_empty() {
            "<li class=\"muted\">none</li>".into()
        } else {
            items
        },
    );

    // Imports.
    let imports = w.list_imports(&a.name).await?;
    let mut items = String::new();
    for v in &imports {
        let i = &v.import;
        let from_key = i.account.as_str();
        let from = names
            .get(from_key)
            .map(|n| account_link(n))
            .unwrap_or_else(|| short_key(from_key));
        // Activation status: the exporter's revocations say whether it still holds.
        let revoked = exporters
            .iter()
            .find(|o| o.public_key == from_key)
            .and_then(|o| {
                o.spec
                    .exports
                    .iter()
                    .find(|e| e.subject.overlaps(&i.subject))
            })
            .and_then(|e| {
                e.revocations
                    .get(&a.public_key)
                    .or_else(|| e.revocations.get("*"))
            });
        let activation = match (&i.token, revoked) {
            (None, _) => "public".to_string(),
            (Some(_), Some(t)) => format!(
                "<span class=\"bad\">activation revoked {}</span>",
                esc(&when(Some(*t)))
            ),
            (Some(_), None) => match v.activation_expires_at {
                Some(t) => format!(
                    "<span class=\"ok\">activation</span> until {}",
                    esc(&when(Some(t)))
                ),
                None => "<span class=\"ok\">activation</span>, no expiry".to_string(),
            },
        };
        let local = i
            .local_subject
            .as_ref()
            .or(i.to.as_ref())
            .map(|l| format!(" as <code>{}</code>", esc(l.as_str())))
            .unwrap_or_default();
        let remove = if write {
            format!(
                " {}",
                button_form(
                    &format!("{base}/imports/remove"),
                    csrf,
                    &[("subject", i.subject.as_str()), ("from", from_key)],
                    "Remove",
                    &format!("rm-import-{}", id_of(i.subject.as_str())),
                    true,
                )
            )
        } else {
            String::new()
        };
        let _ = write!(
            items,
            "<li id=\"import-{}\"><code>{}</code>{local} from {from} — {} · {activation}{remove}</li>",
            id_of(i.subject.as_str()),
            esc(i.subject.as_str()),
            i.import_type,
        );
    }
    let f = &forms.import;
    let mut choices = String::new();
    for o in exporters.iter().filter(|o| o.public_key != a.public_key) {
        for e in &o.spec.exports {
            let value = format!("{} {}", o.name, e.subject.as_str());
            let _ = write!(
                choices,
                "<option value=\"{}\"{}>{}: {} ({}, {})</option>",
                esc(&value),
                selected(f.export == value),
                esc(&o.name),
                esc(e.subject.as_str()),
                e.export_type,
                if e.token_req { "private" } else { "public" }
            );
        }
    }
    let import_open = forms.is(Which::Imports);
    let import_form = if (write || import_open) && !choices.is_empty() {
        format!(
            r#"<details class="card" id="add-import"{open}><summary>Add an import</summary>
{problem}<form method="post" action="{base}/imports">{csrf}
<label for="import-export">Export of another account</label>
<select id="import-export" name="export">{choices}</select>
<div class="grid2">
<div><label for="import-subject">Subject (optional: narrower than the export's)</label><input id="import-subject" name="subject" value="{subject}" autocomplete="off"></div>
<div><label for="import-local">Local subject (optional)</label><input id="import-local" name="local_subject" value="{local}" autocomplete="off"></div>
<div><label for="import-name">Name (optional)</label><input id="import-name" name="name" value="{name}" autocomplete="off"></div>
</div>
<button type="submit">Add import</button>
</form></details>"#,
            open = if import_open { " open" } else { "" },
            problem = forms.block(Which::Imports),
            csrf = csrf_field(csrf),
            subject = esc(&f.subject),
            local = esc(&f.local_subject),
            name = esc(&f.name),
        )
    } else {
        String::new()
    };
    let _ = write!(
        out,
        r#"<section id="imports" aria-labelledby="h-imports"><h2 id="h-imports">{n}</h2>
<ul class="entries">{items}</ul>{import_form}</section>"#,
        n = if imports.is_empty() {
            "Imports".to_string()
        } else {
            plural(imports.len(), "import", "imports")
        },
        items = if items.is_empty() {
            "<li class=\"muted\">none</li>".into()
        } else {
            items
        },
    );

    // Signing keys.
    let keys = w.signing_keys(&a.name).await?;
    let mut items = String::new();
    for k in &keys {
        let what = match (&k.role, &k.template) {
            (Some(role), Some(t)) => {
                format!("role <strong>{}</strong>: {}", esc(role), limits_summary(t))
            }
            (Some(role), None) => format!("role <strong>{}</strong>", esc(role)),
            _ => "plain (users carry their own permissions)".into(),
        };
        let actions = if write {
            format!(
                " {} {}",
                button_form(
                    &format!("{base}/signing-keys/rotate"),
                    csrf,
                    &[("key", &k.key)],
                    "Rotate",
                    &format!("rotate-{}", k.key),
                    false,
                ),
                button_form(
                    &format!("{base}/signing-keys/remove"),
                    csrf,
                    &[("key", &k.key)],
                    "Remove",
                    &format!("rm-key-{}", k.key),
                    true,
                )
            )
        } else {
            String::new()
        };
        let _ = write!(
            items,
            "<li id=\"key-{}\">{} — {what} · signed {}{}{actions}</li>",
            esc(&k.key),
            short_key(&k.key),
            plural(k.users, "user", "users"),
            if k.seed_held {
                ""
            } else {
                " · <span class=\"warn\">seed not held</span>"
            },
        );
    }
    let keys_open = forms.is(Which::Keys);
    let f = &forms.key;
    let key_forms = if write || keys_open {
        format!(
            r#"{problem}<div class="actions">{plain}</div>
<details class="card" id="add-role"{open}><summary>Add a role (scoped signing key)</summary>
<form method="post" action="{base}/signing-keys">{csrf}
<p class="hint">The server applies the role's template to every user the key signs. Subjects may use <code>{{{{name()}}}}</code>, <code>{{{{subject()}}}}</code>, <code>{{{{account-name()}}}}</code>, <code>{{{{tag(NAME)}}}}</code>; an empty allow list allows everything not denied.</p>
<label for="role-name">Role</label><input id="role-name" name="role" value="{role}" required autocomplete="off">
<div class="grid2">
<div><label for="role-pub-allow">Publish allow</label><textarea id="role-pub-allow" name="pub_allow" rows="2">{pa}</textarea></div>
<div><label for="role-pub-deny">Publish deny</label><textarea id="role-pub-deny" name="pub_deny" rows="2">{pd}</textarea></div>
<div><label for="role-sub-allow">Subscribe allow</label><textarea id="role-sub-allow" name="sub_allow" rows="2">{sa}</textarea></div>
<div><label for="role-sub-deny">Subscribe deny</label><textarea id="role-sub-deny" name="sub_deny" rows="2">{sd}</textarea></div>
</div>
<button type="submit">Add role</button>
</form></details>"#,
            problem = forms.block(Which::Keys),
            plain = button_form(
                &format!("{base}/signing-keys"),
                csrf,
                &[],
                "Add a plain signing key",
                "add-plain-key",
                false
            ),
            open = if keys_open && !f.role.is_empty() {
                " open"
            } else {
                ""
            },
            csrf = csrf_field(csrf),
            role = esc(&f.role),
            pa = esc(&f.pub_allow),
            pd = esc(&f.pub_deny),
            sa = esc(&f.sub_allow),
            sd = esc(&f.sub_deny),
        )
    } else {
        String::new()
    };
    let _ = write!(
        out,
        r#"<section id="signing-keys" aria-labelledby="h-keys"><h2 id="h-keys">{n}</h2>
<ul class="entries">{items}</ul>{key_forms}</section>"#,
        n = if keys.is_empty() {
            "Signing keys".to_string()
        } else {
            plural(keys.len(), "signing key", "signing keys")
        },
        items = if items.is_empty() {
            "<li class=\"muted\">none (the account key signs its users)</li>".into()
        } else {
            items
        },
    );

    // Subject mappings.
    let m = MappingsView::of_spec(&a.name, &a.public_key, &a.spec);
    let mut items = String::new();
    for src in &m.mappings {
        let from = src.from.as_str();
        let mut dests = Vec::new();
        for d in &src.to {
            let rm = if write {
                format!(
                    " {}",
                    button_form(
                        &format!("{base}/mappings/remove"),
                        csrf,
                        &[("from", from), ("to", d.subject.as_str())],
                        "×",
                        &format!("rm-dest-{}-{}", id_of(from), id_of(d.subject.as_str())),
                        true,
                    )
                )
            } else {
                String::new()
            };
            dests.push(format!(
                "<code>{}</code> {}%{}{rm}",
                esc(d.subject.as_str()),
                d.weight,
                d.cluster
                    .as_deref()
                    .map(|c| format!(" (cluster {})", esc(c)))
                    .unwrap_or_default()
            ));
        }
        if src.unmapped > 0 && src.unmapped < 100 {
            dests.push(format!("{}% unmapped", src.unmapped));
        }
        let rm = if write {
            format!(
                " {}",
                button_form(
                    &format!("{base}/mappings/remove"),
                    csrf,
                    &[("from", from)],
                    "Remove",
                    &format!("rm-mapping-{}", id_of(from)),
                    true,
                )
            )
        } else {
            String::new()
        };
        let _ = write!(
            items,
            "<li id=\"mapping-{}\"><code>{}</code> → {}{rm}</li>",
            id_of(from),
            esc(from),
            dests.join(", ")
        );
    }
    let map_open = forms.is(Which::Mappings);
    let f = &forms.mapping;
    let map_form = if write || map_open {
        format!(
            r#"<details class="card" id="add-mapping"{open}><summary>Add a mapping</summary>
{problem}<form method="post" action="{base}/mappings">{csrf}
<p class="hint">A destination already mapped from the subject gets the new weight; weights of one subject add up to at most 100%.</p>
<div class="grid2">
<div><label for="mapping-from">From subject</label><input id="mapping-from" name="from" value="{from}" required autocomplete="off"></div>
<div><label for="mapping-to">To subject</label><input id="mapping-to" name="to" value="{to}" required autocomplete="off"></div>
<div><label for="mapping-weight">Weight % (optional: 100)</label><input id="mapping-weight" name="weight" value="{weight}" autocomplete="off" inputmode="numeric"></div>
<div><label for="mapping-cluster">Only in cluster (optional)</label><input id="mapping-cluster" name="cluster" value="{cluster}" autocomplete="off"></div>
</div>
<button type="submit">Add mapping</button>
</form></details>"#,
            open = if map_open { " open" } else { "" },
            problem = forms.block(Which::Mappings),
            csrf = csrf_field(csrf),
            from = esc(&f.from),
            to = esc(&f.to),
            weight = esc(&f.weight),
            cluster = esc(&f.cluster),
        )
    } else {
        String::new()
    };
    let _ = write!(
        out,
        r#"<section id="mappings" aria-labelledby="h-mappings"><h2 id="h-mappings">{n}</h2>
<ul class="entries">{items}</ul>{map_form}</section>"#,
        n = if m.mappings.is_empty() {
            "Subject mappings".to_string()
        } else {
            plural(m.mappings.len(), "subject mapping", "subject mappings")
        },
        items = if items.is_empty() {
            "<li class=\"muted\">none</li>".into()
        } else {
            items
        },
    );

    // Settings.
    let spec = &a.spec;
    let tiers = if spec.limits.jetstream_tiers.is_empty() {
        "none".to_string()
    } else {
        spec.limits
            .jetstream_tiers
            .iter()
            .map(|(t, l)| {
                format!(
                    "{}: memory {}, disk {}, {} streams, {} consumers",
                    esc(t),
                    bytes(l.mem_storage),
                    bytes(l.disk_storage),
                    limit(l.streams),
                    limit(l.consumer)
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let _ = write!(
        out,
        r#"<section id="settings" aria-labelledby="h-settings"><h2 id="h-settings">Settings</h2>
<dl class="facts"><dt>JetStream tiers</dt><dd id="js-tiers">{tiers}</dd>
<dt>Default permissions</dt><dd id="default-perms">{defaults}</dd>
<dt>Tags</dt><dd id="account-tags">{tags}</dd>
<dt>Info URL</dt><dd id="info-url">{url}</dd></dl>{edit}</section>"#,
        defaults = permissions_summary(&spec.default_permissions),
        tags = if spec.tags.is_empty() {
            "none".to_string()
        } else {
            spec.tags
                .iter()
                .map(|t| format!("<span class=\"tag\">{}</span>", esc(t)))
                .collect::<Vec<_>>()
                .join(" ")
        },
        url = spec
            .info_url
            .as_deref()
            .map(esc)
            .unwrap_or_else(|| "—".into()),
        edit = if sess.offers(Scope::Write) {
            format!(
                "<p><a class=\"button\" id=\"edit-settings\" href=\"{base}/settings\">Edit JetStream tiers, default permissions, tags and info URL</a></p>"
            )
        } else {
            String::new()
        },
    );
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// The account page's actions
// ---------------------------------------------------------------------------------------

/// After an action: the account page (success), or the page again with the problem on
/// the form's section and what was typed.
async fn answer(
    s: &ConsoleState,
    sess: &Session,
    account: &str,
    result: Result<(), Problem>,
    forms: impl FnOnce() -> Forms,
) -> ConsoleResult<Response> {
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/console/accounts/{}", seg(account))).into_response()),
        Err(_) => super::pages::render_account_model(s, sess, account, &forms()).await,
    }
}

fn opt(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_string())
}

fn subject(label: &str, text: &str) -> Result<Subject, Problem> {
    let t = text.trim();
    if t.is_empty() {
        return Err(Problem::invalid(format!("{label}: give a subject")));
    }
    Subject::new(t).map_err(|e| Problem::invalid(format!("{label}: {e}")))
}

fn opt_subject(label: &str, text: &str) -> Result<Option<Subject>, Problem> {
    if text.trim().is_empty() {
        Ok(None)
    } else {
        subject(label, text).map(Some)
    }
}

/// Runs an action: CSRF, the parse, then ONE operation; a problem goes on `which`.
macro_rules! act {
    ($s:expr, $headers:expr, $account:expr, $form:expr, $which:expr, $slot:ident, $body:expr) => {{
        let sess = session(&$s, &$headers).await?;
        check_csrf(&sess, $form.csrf.as_deref())?;
        let w = $s.ops(&sess);
        let result: Result<(), Problem> = $body(&w).await;
        let problem = result.as_ref().err().cloned();
        answer(&$s, &sess, &$account, result, move || Forms {
            $slot: $form,
            problem: problem.map(|p| ($which, p)),
            ..Forms::default()
        })
        .await
    }};
}

/// `POST /console/accounts/{name}/exports`: `Warden::add_export`.
pub(crate) async fn add_export(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path(account): Path<String>,
    Form(form): Form<ExportForm>,
) -> ConsoleResult<Response> {
    let f = form.clone();
    act!(
        s,
        headers,
        account,
        form,
        Which::Exports,
        export,
        |w: &Warden| {
            let w = w.clone();
            let account = account.clone();
            async move {
                let subject = subject("Subject", &f.subject)?;
                let kind = match f.kind.as_str() {
                    "service" => ExportType::Service,
                    "stream" | "" => ExportType::Stream,
                    other => {
                        return Err(Problem::invalid(format!("unknown export type {other:?}")));
                    }
                };
                let response_type = match f.response_type.as_str() {
                    "" => None,
                    "stream" => Some(ResponseType::Stream),
                    "chunked" => Some(ResponseType::Chunked),
                    "singleton" => Some(ResponseType::Singleton),
                    other => {
                        return Err(Problem::invalid(format!("unknown response type {other:?}")));
                    }
                };
                if response_type.is_some() && kind == ExportType::Stream {
                    return Err(Problem::invalid(
                        "a response type is for service exports only",
                    ));
                }
                let mut opts = ExportOptions::new(subject, kind);
                opts.private = f.private.is_some();
                opts.name = opt(&f.name);
                opts.response_type = response_type;
                w.add_export(&account, &opts)
                    .await
                    .map(|_| ())
                    .map_err(|e| Problem::of(&e))
            }
        }
    )
}

#[derive(Deserialize, Default)]
pub(crate) struct SubjectForm {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    csrf: Option<String>,
}

/// `POST /console/accounts/{name}/exports/remove`: `Warden::remove_export`.
pub(crate) async fn remove_export(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path(account): Path<String>,
    Form(form): Form<SubjectForm>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    check_csrf(&sess, form.csrf.as_deref())?;
    let w = s.ops(&sess);
    let result = match subject("Subject", &form.subject) {
        Err(p) => Err(p),
        Ok(subj) => w
            .remove_export(&account, &subj)
            .await
            .map(|_| ())
            .map_err(|e| Problem::of(&e)),
    };
    let problem = result.as_ref().err().cloned();
    answer(&s, &sess, &account, result, move || Forms {
        problem: problem.map(|p| (Which::Exports, p)),
        ..Forms::default()
    })
    .await
}

/// `POST /console/accounts/{name}/exports/revoke`: `Warden::revoke_activation`.
pub(crate) async fn revoke_activation(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path(account): Path<String>,
    Form(form): Form<SubjectForm>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    check_csrf(&sess, form.csrf.as_deref())?;
    let w = s.ops(&sess);
    let result = match subject("Subject", &form.subject) {
        Err(p) => Err(p),
        Ok(subj) => w
            .revoke_activation(&account, &subj, form.target.trim())
            .await
            .map(|_| ())
            .map_err(|e| Problem::of(&e)),
    };
    let problem = result.as_ref().err().cloned();
    answer(&s, &sess, &account, result, move || Forms {
        problem: problem.map(|p| (Which::Exports, p)),
        ..Forms::default()
    })
    .await
}

/// `POST /console/accounts/{name}/imports`: `Warden::add_import`.
pub(crate) async fn add_import(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path(account): Path<String>,
    Form(form): Form<ImportForm>,
) -> ConsoleResult<Response> {
    let f = form.clone();
    act!(
        s,
        headers,
        account,
        form,
        Which::Imports,
        import,
        |w: &Warden| {
            let w = w.clone();
            let account = account.clone();
            async move {
                let Some((from, export_subject)) = f.export.trim().split_once(' ') else {
                    return Err(Problem::invalid("choose the export to import"));
                };
                let subj = match opt_subject("Subject", &f.subject)? {
                    Some(s) => s,
                    None => subject("Export", export_subject)?,
                };
                let mut opts = ImportOptions::new(from, subj);
                opts.local_subject = opt_subject("Local subject", &f.local_subject)?;
                opts.name = opt(&f.name);
                w.add_import(&account, &opts)
                    .await
                    .map(|_| ())
                    .map_err(|e| Problem::of(&e))
            }
        }
    )
}

/// `POST /console/accounts/{name}/imports/remove`: `Warden::remove_import`.
pub(crate) async fn remove_import(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path(account): Path<String>,
    Form(form): Form<SubjectForm>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    check_csrf(&sess, form.csrf.as_deref())?;
    let w = s.ops(&sess);
    let result = match subject("Subject", &form.subject) {
        Err(p) => Err(p),
        Ok(subj) => {
            let from = opt(&form.from);
            w.remove_import(&account, &subj, from.as_deref())
                .await
                .map(|_| ())
                .map_err(|e| Problem::of(&e))
        }
    };
    let problem = result.as_ref().err().cloned();
    answer(&s, &sess, &account, result, move || Forms {
        problem: problem.map(|p| (Which::Imports, p)),
        ..Forms::default()
    })
    .await
}

/// `POST /console/accounts/{name}/signing-keys`: `Warden::add_signing_key` (a role's
/// scoped key when a role is named, else a plain key).
pub(crate) async fn add_signing_key(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path(account): Path<String>,
    Form(form): Form<KeyForm>,
) -> ConsoleResult<Response> {
    let f = form.clone();
    act!(s, headers, account, form, Which::Keys, key, |w: &Warden| {
        let w = w.clone();
        let account = account.clone();
        async move {
            let role = opt(&f.role);
            let mut template = UserPermissionLimits::unlimited();
            let p = &mut template.permissions;
            p.publish.allow = parse_subjects("Publish allow", &f.pub_allow)?;
            p.publish.deny = parse_subjects("Publish deny", &f.pub_deny)?;
            p.subscribe.allow = parse_subjects("Subscribe allow", &f.sub_allow)?;
            p.subscribe.deny = parse_subjects("Subscribe deny", &f.sub_deny)?;
            if role.is_none() && template != UserPermissionLimits::unlimited() {
                return Err(Problem::invalid(
                    "permissions make a role's template: name the role (a plain signing key has no template)",
                ));
            }
            w.add_signing_key(&account, NewSigningKey { role, template })
                .await
                .map(|_| ())
                .map_err(|e| Problem::of(&e))
        }
    })
}

#[derive(Deserialize, Default)]
pub(crate) struct KeyChoice {
    #[serde(default)]
    key: String,
    #[serde(default)]
    csrf: Option<String>,
}

/// `POST /console/accounts/{name}/signing-keys/rotate`: `Warden::rotate_signing_key`.
pub(crate) async fn rotate_signing_key(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path(account): Path<String>,
    Form(form): Form<KeyChoice>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    check_csrf(&sess, form.csrf.as_deref())?;
    let result = s
        .ops(&sess)
        .rotate_signing_key(&account, &KeyRef::Key(form.key.trim().to_string()))
        .await
        .map(|_| ())
        .map_err(|e| Problem::of(&e));
    let problem = result.as_ref().err().cloned();
    answer(&s, &sess, &account, result, move || Forms {
        problem: problem.map(|p| (Which::Keys, p)),
        ..Forms::default()
    })
    .await
}

/// `POST /console/accounts/{name}/signing-keys/remove`: `Warden::remove_signing_key`.
pub(crate) async fn remove_signing_key(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path(account): Path<String>,
    Form(form): Form<KeyChoice>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    check_csrf(&sess, form.csrf.as_deref())?;
    let result = s
        .ops(&sess)
        .remove_signing_key(&account, &KeyRef::Key(form.key.trim().to_string()))
        .await
        .map(|_| ())
        .map_err(|e| Problem::of(&e));
    let problem = result.as_ref().err().cloned();
    answer(&s, &sess, &account, result, move || Forms {
        problem: problem.map(|p| (Which::Keys, p)),
        ..Forms::default()
    })
    .await
}

/// `POST /console/accounts/{name}/mappings`: `Warden::add_mapping`.
pub(crate) async fn add_mapping(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path(account): Path<String>,
    Form(form): Form<MappingForm>,
) -> ConsoleResult<Response> {
    let f = form.clone();
    act!(
        s,
        headers,
        account,
        form,
        Which::Mappings,
        mapping,
        |w: &Warden| {
            let w = w.clone();
            let account = account.clone();
            async move {
                let from = subject("From subject", &f.from)?;
                let to = subject("To subject", &f.to)?;
                let weight = match f.weight.trim().trim_end_matches('%').trim() {
                    "" => None,
                    t => match t.parse::<u8>() {
                        Ok(n) if (1..=100).contains(&n) => Some(n),
                        _ => {
                            return Err(Problem::invalid(format!(
                                "Weight: {t:?} is not a percentage from 1 to 100"
                            )));
                        }
                    },
                };
                let req = MappingAdd {
                    account: account.clone(),
                    from,
                    to: vec![MappingTarget {
                        subject: to,
                        weight,
                    }],
                    cluster: opt(&f.cluster),
                };
                w.add_mapping(&req)
                    .await
                    .map(|_| ())
                    .map_err(|e| Problem::of(&e))
            }
        }
    )
}

#[derive(Deserialize, Default)]
pub(crate) struct MappingChoice {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    csrf: Option<String>,
}

/// `POST /console/accounts/{name}/mappings/remove`: `Warden::remove_mapping` (a whole
/// source, or one destination).
pub(crate) async fn remove_mapping(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path(account): Path<String>,
    Form(form): Form<MappingChoice>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    check_csrf(&sess, form.csrf.as_deref())?;
    let w = s.ops(&sess);
    let result = async {
        let req = MappingRemove {
            account: account.clone(),
            from: subject("From subject", &form.from)?,
            to: opt_subject("To subject", &form.to)?,
        };
        w.remove_mapping(&req)
            .await
            .map(|_| ())
            .map_err(|e| Problem::of(&e))
    }
    .await;
    let problem = result.as_ref().err().cloned();
    answer(&s, &sess, &account, result, move || Forms {
        problem: problem.map(|p| (Which::Mappings, p)),
        ..Forms::default()
    })
    .await
}

// ---------------------------------------------------------------------------------------
// Settings: JetStream tiers, default permissions, tags, info URL
// ---------------------------------------------------------------------------------------

#[derive(Deserialize, Default, Clone)]
pub(crate) struct SettingsForm {
    #[serde(default)]
    info_url: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    default_pub_allow: String,
    #[serde(default)]
    default_pub_deny: String,
    #[serde(default)]
    default_sub_allow: String,
    #[serde(default)]
    default_sub_deny: String,
    /// A tier to set (`R1`, `R3`, …), with the limits below.
    #[serde(default)]
    tier: String,
    #[serde(default)]
    tier_mem: String,
    #[serde(default)]
    tier_disk: String,
    #[serde(default)]
    tier_streams: String,
    #[serde(default)]
    tier_consumers: String,
    /// Tiers to remove (separated by spaces or commas).
    #[serde(default)]
    remove_tiers: String,
    /// Clear the flat JetStream limits (and tiers) first.
    #[serde(default)]
    js_disable: Option<String>,
    #[serde(default)]
    csrf: Option<String>,
}

fn lines(list: &[Subject]) -> String {
    list.iter()
        .map(|s| s.as_str().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

impl SettingsForm {
    fn from_view(a: &AccountView) -> SettingsForm {
        let p = &a.spec.default_permissions;
        SettingsForm {
            info_url: a.spec.info_url.clone().unwrap_or_default(),
            tags: a.spec.tags.join(" "),
            default_pub_allow: lines(&p.publish.allow),
            default_pub_deny: lines(&p.publish.deny),
            default_sub_allow: lines(&p.subscribe.allow),
            default_sub_deny: lines(&p.subscribe.deny),
            ..SettingsForm::default()
        }
    }

    /// The edit that turns `a` into what the form says.
    fn edit(&self, a: &AccountView) -> Result<AccountEdit, Problem> {
        let mut edit = AccountEdit::default();
        let url = self.info_url.trim();
        if a.spec.info_url.as_deref().unwrap_or("") != url {
            edit.info_url = Some(url.to_string());
        }
        let tags: Vec<String> = super::form_entries(&self.tags, true)
            .map_err(|e| Problem::invalid(format!("Tags: {e}")))?
            .into_iter()
            .map(|t| t.to_ascii_lowercase())
            .collect();
        edit.add_tags = tags
            .iter()
            .filter(|t| !a.spec.tags.contains(t))
            .cloned()
            .collect();
        edit.remove_tags = a
            .spec
            .tags
            .iter()
            .filter(|t| !tags.contains(t))
            .cloned()
            .collect();
        let p = &a.spec.default_permissions;
        let new = [
            parse_subjects("Default publish allow", &self.default_pub_allow)?,
            parse_subjects("Default publish deny", &self.default_pub_deny)?,
            parse_subjects("Default subscribe allow", &self.default_sub_allow)?,
            parse_subjects("Default subscribe deny", &self.default_sub_deny)?,
        ];
        let old = [
            &p.publish.allow,
            &p.publish.deny,
            &p.subscribe.allow,
            &p.subscribe.deny,
        ];
        // As the user form does: a subject whose lists changed is removed from all and
        // added where it now is; subjects that kept their lists stay.
        let mut d = PermissionsEdit::default();
        let new_refs = [&new[0], &new[1], &new[2], &new[3]];
        let membership = |lists: [&Vec<Subject>; 4], s: &Subject| lists.map(|l| l.contains(s));
        for s in old.iter().flat_map(|l| l.iter()) {
            if membership(old, s) != membership(new_refs, s) && !d.remove.contains(s) {
                d.remove.push(s.clone());
            }
        }
        let adds = |i: usize, remove: &[Subject]| -> Vec<Subject> {
            new[i]
                .iter()
                .filter(|s| !old[i].contains(s) || remove.contains(s))
                .cloned()
                .collect()
        };
        d.allow_pub = adds(0, &d.remove);
        d.deny_pub = adds(1, &d.remove);
        d.allow_sub = adds(2, &d.remove);
        d.deny_sub = adds(3, &d.remove);
        edit.default_permissions = d;
        edit.js_disable = self.js_disable.is_some();
        for t in super::form_entries(&self.remove_tiers, true)
            .map_err(|e| Problem::invalid(format!("Remove tiers: {e}")))?
        {
            edit.remove_js_tiers.push(
                t.parse::<JsTier>()
                    .map_err(|e| Problem::invalid(format!("Remove tiers: {e}")))?,
            );
        }
        let tier_fields = [
            &self.tier_mem,
            &self.tier_disk,
            &self.tier_streams,
            &self.tier_consumers,
        ];
        if !self.tier.trim().is_empty() {
            edit.js_tier = Some(
                self.tier
                    .parse::<JsTier>()
                    .map_err(|e| Problem::invalid(format!("Tier: {e}")))?,
            );
            let num = |label: &str, t: &str| -> Result<Option<i64>, Problem> {
                let t = t.trim();
                if t.is_empty() {
                    return Ok(None);
                }
                parse_size(t)
                    .map(Some)
                    .map_err(|e| Problem::invalid(format!("{label}: {e}")))
            };
            let l = &mut edit.limits;
            l.js_mem_storage = num("Tier memory", &self.tier_mem)?;
            l.js_disk_storage = num("Tier disk", &self.tier_disk)?;
            l.js_streams = num("Tier streams", &self.tier_streams)?;
            l.js_consumer = num("Tier consumers", &self.tier_consumers)?;
        } else if tier_fields.iter().any(|f| !f.trim().is_empty()) {
            return Err(Problem::invalid(
                "Tier: name the tier (R1, R3, …) the limits are for",
            ));
        }
        if edit == AccountEdit::default() {
            return Err(Problem::invalid("no field was changed"));
        }
        Ok(edit)
    }
}

fn settings_page(
    sess: &Session,
    seq: i64,
    a: &AccountView,
    f: &SettingsForm,
    problem: Option<&Problem>,
) -> Response {
    let base = format!("/console/accounts/{}", seg(&a.name));
    let area = |id: &str, label: &str, v: &str| {
        format!(
            "<div><label for=\"{id}\">{label}</label><textarea id=\"{id}\" name=\"{id}\" rows=\"2\" autocomplete=\"off\">{}</textarea></div>",
            esc(v)
        )
    };
    let field = |id: &str, label: &str, v: &str, hint: &str| {
        format!(
            "<div><label for=\"{id}\">{label}</label><input id=\"{id}\" name=\"{id}\" value=\"{}\" autocomplete=\"off\"><p class=\"hint\">{hint}</p></div>",
            esc(v)
        )
    };
    let tiers: Vec<&str> = a
        .spec
        .limits
        .jetstream_tiers
        .keys()
        .map(String::as_str)
        .collect();
    let body = format!(
        r#"<p>Account {link}. Saving re-signs the account JWT and pushes it to NATS.</p>
{error}<form method="post" action="{base}/settings" class="card" id="settings-edit">{csrf}
<fieldset><legend>Description</legend><div class="grid2">
{url}{tags}
</div></fieldset>
<fieldset><legend>Default permissions (for users whose JWT carries none)</legend><div class="grid2">
{pa}{pd}{sa}{sd}
</div></fieldset>
<fieldset><legend>JetStream tiers (now: {now})</legend>
<div class="grid2">
{tier}{mem}{disk}{streams}{consumers}{rm}
</div>
<label class="check" for="js_disable"><input type="checkbox" id="js_disable" name="js_disable"{dis}> Clear every JetStream limit first (flat and tiered: the way from flat limits to tiers)</label>
</fieldset>
<button type="submit">Save settings</button>
</form>
<p><a href="{base}">Cancel</a></p>"#,
        link = account_link(&a.name),
        error = problem.map(Problem::block).unwrap_or_default(),
        csrf = csrf_field(&sess.csrf),
        url = field("info_url", "Info URL", &f.info_url, "empty: none"),
        tags = field("tags", "Tags", &f.tags, "separated by spaces"),
        pa = area("default_pub_allow", "Publish allow", &f.default_pub_allow),
        pd = area("default_pub_deny", "Publish deny", &f.default_pub_deny),
        sa = area("default_sub_allow", "Subscribe allow", &f.default_sub_allow),
        sd = area("default_sub_deny", "Subscribe deny", &f.default_sub_deny),
        now = if tiers.is_empty() {
            "none".to_string()
        } else {
            esc(&tiers.join(", "))
        },
        tier = field("tier", "Tier to set", &f.tier, "R1, R3, …; empty: none"),
        mem = field(
            "tier_mem",
            "Memory storage",
            &f.tier_mem,
            "e.g. 1G, unlimited"
        ),
        disk = field("tier_disk", "Disk storage", &f.tier_disk, "e.g. 10G"),
        streams = field("tier_streams", "Streams", &f.tier_streams, ""),
        consumers = field("tier_consumers", "Consumers", &f.tier_consumers, ""),
        rm = field(
            "remove_tiers",
            "Tiers to remove",
            &f.remove_tiers,
            "e.g. R1"
        ),
        dis = if f.js_disable.is_some() {
            " checked"
        } else {
            ""
        },
    );
    let status = problem.map_or(StatusCode::OK, |p| p.status);
    (
        status,
        page(
            &format!("Settings of account {}", a.name),
            "/console/accounts",
            sess,
            seq,
            &body,
        ),
    )
        .into_response()
}

/// `GET /console/accounts/{name}/settings`.
pub(crate) async fn settings_form(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ConsoleResult<Response> {
    let sess = form_session(&s, &headers, Scope::Write).await?;
    let w = s.ops(&sess);
    let seq = seq(&w).await?;
    let a = w.account(&name).await?;
    Ok(settings_page(
        &sess,
        seq,
        &a,
        &SettingsForm::from_view(&a),
        None,
    ))
}

/// `POST /console/accounts/{name}/settings`: `Warden::change_account`.
pub(crate) async fn edit_settings(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<SettingsForm>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    check_csrf(&sess, form.csrf.as_deref())?;
    let w = s.ops(&sess);
    let a = w.account(&name).await?;
    let result = match form.edit(&a) {
        Err(p) => Err(p),
        Ok(edit) => w
            .change_account(&a.name, edit)
            .await
            .map_err(|e| Problem::of(&e)),
    };
    match result {
        Ok(v) => Ok(Redirect::to(&format!("/console/accounts/{}", seg(&v.name))).into_response()),
        Err(p) => {
            let seq = seq(&w).await?;
            Ok(settings_page(&sess, seq, &a, &form, Some(&p)))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Users: by role, effective permissions, key rotation
// ---------------------------------------------------------------------------------------

/// The roles of an account, for the add-user form's choice (empty when it has none).
pub(crate) fn role_options(a: &AccountView, chosen: &str) -> String {
    let roles: Vec<&str> = a
        .spec
        .signing_keys
        .iter()
        .filter_map(|k| match k {
            SigningKey::Scoped(s) => Some(s.role.as_str()),
            SigningKey::Plain(_) => None,
        })
        .collect();
    if roles.is_empty() {
        return String::new();
    }
    let mut opts = format!(
        "<option value=\"\"{}>none: the permissions below</option>",
        selected(chosen.is_empty())
    );
    for r in roles {
        let _ = write!(
            opts,
            "<option value=\"{}\"{}>{}</option>",
            esc(r),
            selected(chosen == r),
            esc(r)
        );
    }
    format!(
        "<label for=\"user-role\">Role (its template gives the permissions; the fields below are then left empty)</label><select id=\"user-role\" name=\"role\">{opts}</select>"
    )
}

/// The user page's section of what the server lets the user do when a role signed it,
/// and, for such a user, the answer of the page's "Can this user…?" check as the server
/// decides it (the template expanded for the user); `None`s for a user with its own
/// permissions.
pub(crate) async fn user_extras(
    w: &Warden,
    u: &UserView,
    direction: Option<&str>,
    subject: Option<&str>,
) -> ConsoleResult<(String, Option<String>)> {
    let eff = w
        .user_permissions(&u.account, &u.name, ServerLine::default())
        .await?;
    if eff.role.is_none() {
        return Ok((String::new(), None));
    }
    let check = match subject.map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => Some(match Subject::new(text) {
            Err(e) => format!(
                "<p id=\"check-result\" class=\"bad\" role=\"status\">Not a valid subject: {}</p>",
                esc(&e.to_string())
            ),
            Ok(subj) => {
                let dir = match direction {
                    Some("subscribe") => Direction::Subscribe,
                    _ => Direction::Publish,
                };
                let x = w
                    .explain_user(&u.account, &u.name, dir, &subj, ServerLine::default())
                    .await?;
                format!(
                    "<p id=\"check-result\" class=\"{cls}\" role=\"status\"><strong>{word}</strong>: {who} may {verb}{dir} <code>{subject}</code> — {reason}</p>",
                    cls = if x.allowed { "ok" } else { "bad" },
                    word = if x.allowed { "Allowed" } else { "Denied" },
                    who = esc(&u.name),
                    verb = if x.allowed { "" } else { "not " },
                    dir = x.direction,
                    subject = esc(text),
                    reason = esc(&x.reason),
                )
            }
        }),
    };
    Ok((effective_html(&eff), check))
}

fn effective_html(eff: &EffectivePermissions) -> String {
    let Some(role) = eff.role.as_deref() else {
        return String::new();
    };
    let perms = match &eff.limits {
        Some(l) => format!(
            "<div class=\"scroll\"><table><tbody>{}{}</tbody></table></div><p>{}</p>",
            super::pages::permission_rows("Publish", &l.permissions.publish),
            super::pages::permission_rows("Subscribe", &l.permissions.subscribe),
            limits_summary(l)
        ),
        None => String::new(),
    };
    let mut notes = String::new();
    for d in &eff.dropped {
        let _ = write!(
            notes,
            "<li>{} <code>{}</code> is not given: {}</li>",
            esc(d.list),
            esc(&d.subject),
            esc(&d.why)
        );
    }
    if let Some(why) = &eff.connect_refused {
        let _ = write!(notes, "<li class=\"bad\">{}</li>", esc(why));
    }
    format!(
        r#"<section id="effective" aria-labelledby="h-effective"><h2 id="h-effective">Effective permissions (role {role})</h2>
<p>Issued by role <strong>{role}</strong>'s signing key {key}; the server applies the role's template, expanded for this user (nats-server 2.15; 2.9 expands a function only as a whole token).</p>
{perms}{notes}</section>"#,
        role = esc(role),
        key = eff
            .signing_key
            .as_deref()
            .map(short_key)
            .unwrap_or_default(),
        notes = if notes.is_empty() {
            String::new()
        } else {
            format!("<ul>{notes}</ul>")
        }
    )
}

/// `POST /console/accounts/{account}/users/{user}/rotate`: `Warden::rotate_user`; the new
/// creds are the answer, as a download (the operation needs `write` and `creds`).
pub(crate) async fn rotate_user(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Path((account, user)): Path<(String, String)>,
    Form(form): Form<super::CsrfForm>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    check_csrf(&sess, form.csrf.as_deref())?;
    let w = s.ops(&sess);
    match w.rotate_user(&account, &user).await {
        Ok((rotated, creds)) => {
            tracing::info!(token_id = %sess.token_id, account = %rotated.user.account, user = %rotated.user.name, "console user key rotation, creds download");
            let filename = super::pages::creds_filename(&rotated.user.account, &rotated.user.name);
            let mut res = creds.as_str().to_string().into_response();
            let h = res.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(res)
        }
        Err(e) => {
            super::pages::render_user_problem(&s, &sess, &account, &user, &Problem::of(&e)).await
        }
    }
}
