//! The console's operator page: the operator's signing keys (which one issues accounts,
//! how many accounts each signed, whether Warden holds its seed), the signing key rotation
//! in progress with its next step, and the buttons to add a key, remove one and take the
//! rotation's next step (admin acts: the operations decide).
//!
//! A rotation step is one call of [`warden_ops::Warden::rotate_operator_signing_key`]
//! against the nats-server `serve` keeps in step (when known); its report is shown once on
//! the page after the redirect.

use std::fmt::Write as _;

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use warden_ops::operator_keys::{RotateOptions, RotateReport, RotateStep};
use warden_ops::tokens::Scope;

use super::pages::{csrf_field, seq};
use super::render::plural;
use super::render::{esc, page, when};
use super::{
    ASK_TIMEOUT, ConsoleResult, ConsoleState, Flash, Problem, Session, check_csrf, session,
};

/// `GET /console/operator`.
pub(crate) async fn operator_page(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    let flash = s.take_flash(&headers);
    render(&s, &sess, flash, None).await
}

async fn render(
    s: &ConsoleState,
    sess: &Session,
    flash: Option<Flash>,
    problem: Option<&Problem>,
) -> ConsoleResult<Response> {
    let w = s.ops(sess);
    let seq = seq(&w).await?;
    let view = w.operator_signing_keys().await?;
    let admin = sess.offers(Scope::Admin);
    let csrf = csrf_field(&sess.csrf);
    let notice = match flash {
        None => problem.map(Problem::block).unwrap_or_default(),
        Some(Flash { ok: true, text }) => format!(
            "<p class=\"notice\" role=\"status\" id=\"operator-notice\">{}</p>",
            esc(&text)
        ),
        Some(Flash { ok: false, text }) => format!(
            "<div class=\"form-error\" role=\"alert\" id=\"operator-notice\"><p class=\"error\">{}</p></div>",
            esc(&text)
        ),
    };
    let mut items = String::new();
    for k in &view.keys {
        let mut facts = Vec::new();
        if k.issuing {
            facts.push("<strong>issues accounts</strong>".to_string());
        }
        if k.identity {
            facts.push("operator identity key".to_string());
        }
        facts.push(if k.in_operator_jwt {
            "in the operator JWT".to_string()
        } else {
            "<span class=\"warn\">not in the operator JWT</span>".to_string()
        });
        facts.push(format!(
            "signed {}",
            plural(k.accounts, "account", "accounts")
        ));
        if !k.seed_held {
            facts.push("<span class=\"warn\">seed not held</span>".into());
        }
        if let Some(r) = k.rotation {
            facts.push(format!("rotation: {r} key"));
        }
        let remove = if admin && !k.issuing && k.rotation.is_none() && !k.identity {
            format!(
                " <form class=\"inline\" method=\"post\" action=\"/console/operator/keys/remove\">{csrf}<input type=\"hidden\" name=\"key\" value=\"{key}\"><button type=\"submit\" class=\"danger\" id=\"rm-op-key-{key}\">Remove</button></form>",
                key = esc(&k.public_key)
            )
        } else {
            String::new()
        };
        let _ = write!(
            items,
            "<li id=\"op-key-{key}\"><code class=\"key\">{key}</code> — {}{remove}</li>",
            facts.join(" · "),
            key = esc(&k.public_key),
        );
    }
    let rotation = match &view.rotation {
        None => "<p id=\"rotation-state\">No rotation in progress.</p>".to_string(),
        Some(r) => format!(
            "<dl class=\"facts\" id=\"rotation-state\"><dt>From</dt><dd><code class=\"key\">{}</code></dd><dt>To</dt><dd><code class=\"key\">{}</code></dd><dt>Now</dt><dd id=\"rotation-phase\" data-phase=\"{:?}\">{}</dd><dt>Started</dt><dd>{}</dd><dt>Last step</dt><dd>{}</dd></dl>",
            esc(&r.from),
            esc(&r.to),
            r.phase,
            esc(r.phase.label()),
            esc(&when(Some(r.started_at))),
            esc(&when(Some(r.updated_at))),
        ),
    };
    let buttons = if admin {
        format!(
            r#"<div class="actions"><form method="post" action="/console/operator/rotate">{csrf}<button type="submit" id="rotate-operator">{label}</button></form>
<form method="post" action="/console/operator/keys">{csrf}<button type="submit" id="add-operator-key">Add a signing key</button></form></div>
<p class="hint">{server}</p>"#,
            label = if view.rotation.is_some() {
                "Take the rotation's next step"
            } else {
                "Start a signing key rotation"
            },
            server = match &s.server {
                Some(link) => format!(
                    "Each step asks the nats-server at <code>{}</code> what it trusts and holds.",
                    esc(link.url())
                ),
                None => "This console knows no nats-server: a rotation can be started here; its further steps need <code>warden operator signing-key rotate --nats URL</code>.".to_string(),
            }
        )
    } else {
        String::new()
    };
    let body = format!(
        r#"{notice}<p>Operator <code class="key">{op}</code>. New and changed accounts are signed by <code class="key">{issuing}</code>.</p>
<section id="operator-keys" aria-labelledby="h-op-keys"><h2 id="h-op-keys">{n}</h2><ul class="entries">{items}</ul></section>
<section id="operator-rotation" aria-labelledby="h-rotation"><h2 id="h-rotation">Signing key rotation</h2>{rotation}{buttons}</section>"#,
        op = esc(&view.operator),
        issuing = esc(&view.issuing_key),
        n = plural(view.keys.len(), "signing key", "signing keys"),
    );
    let status = problem.map_or(StatusCode::OK, |p| p.status);
    Ok((
        status,
        page("Operator", "/console/operator", sess, seq, &body),
    )
        .into_response())
}

fn report_text(r: &RotateReport) -> String {
    let step = match r.step {
        RotateStep::Started => "Rotation started: the new key is in the operator JWT.",
        RotateStep::AwaitingTrust => "Nothing changed: the servers do not trust the new key yet.",
        RotateStep::Resigned => "Every account was re-signed by the new key.",
        RotateStep::AwaitingAccounts => {
            "Nothing changed: the server does not hold every re-signed account yet."
        }
        RotateStep::OldKeyRemoved => "The old key left the operator JWT and its seed was deleted.",
        RotateStep::AwaitingRestart => "Nothing changed: a server still trusts the old key.",
        RotateStep::Completed => "The rotation is complete.",
    };
    let mut text = step.to_string();
    if let Some(w) = &r.waiting_for {
        let _ = write!(text, " Waiting for: {w}.");
    }
    if r.accounts_resigned > 0 {
        let _ = write!(
            text,
            " {} re-signed.",
            plural(r.accounts_resigned, "account", "accounts")
        );
    }
    if !r.next.is_empty() {
        let _ = write!(text, " Next: {}", r.next.join(" "));
    }
    text
}

/// `POST /console/operator/rotate`: the rotation's next step.
pub(crate) async fn rotate(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Form(form): Form<super::CsrfForm>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    check_csrf(&sess, form.csrf.as_deref())?;
    let opts = RotateOptions {
        nats: s.server.as_ref().map(|l| l.url().to_string()),
        timeout: ASK_TIMEOUT,
        ..RotateOptions::default()
    };
    match s.ops(&sess).rotate_operator_signing_key(&opts).await {
        Ok(r) => {
            s.set_flash(
                &headers,
                Flash {
                    ok: true,
                    text: report_text(&r),
                },
            );
            Ok(Redirect::to("/console/operator").into_response())
        }
        Err(e) => render(&s, &sess, None, Some(&Problem::of(&e))).await,
    }
}

/// `POST /console/operator/keys`: adds a signing key to the operator JWT.
pub(crate) async fn add_key(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Form(form): Form<super::CsrfForm>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    check_csrf(&sess, form.csrf.as_deref())?;
    match s.ops(&sess).add_operator_signing_key().await {
        Ok(c) => {
            s.set_flash(
                &headers,
                Flash {
                    ok: true,
                    text: format!("Signing key {} added. {}", c.public_key, c.next.join(" ")),
                },
            );
            Ok(Redirect::to("/console/operator").into_response())
        }
        Err(e) => render(&s, &sess, None, Some(&Problem::of(&e))).await,
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct KeyForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    csrf: Option<String>,
}

/// `POST /console/operator/keys/remove`.
pub(crate) async fn remove_key(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Form(form): Form<KeyForm>,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    check_csrf(&sess, form.csrf.as_deref())?;
    match s
        .ops(&sess)
        .remove_operator_signing_key(form.key.trim())
        .await
    {
        Ok(c) => {
            s.set_flash(
                &headers,
                Flash {
                    ok: true,
                    text: format!("Signing key {} removed. {}", c.public_key, c.next.join(" ")),
                },
            );
            Ok(Redirect::to("/console/operator").into_response())
        }
        Err(e) => render(&s, &sess, None, Some(&Problem::of(&e))).await,
    }
}
