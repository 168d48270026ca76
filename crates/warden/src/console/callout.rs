//! The console's auth callout page (read-only): the callout account and its keys (the
//! account, Warden's responder, the sentinel clients present), whether requests are
//! sealed to a curve key, the accounts users may be placed in, the lifetime of the user
//! JWTs it issues, and the authenticators in the order they are tried — never a secret,
//! only whether one is stored. Before set-up it says how to set it up.
//!
//! Changes are made with `warden callout …` or the HTTP API (`admin`): the page offers
//! no form.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use warden_ops::ErrorKind;
use warden_ops::callout::CalloutView;

use super::pages::{account_link, seq};
use super::render::plural;
use super::render::{esc, page};
use super::{ConsoleResult, ConsoleState, session};

/// A lifetime in seconds for people: the largest unit that divides it.
fn lifetime(secs: i64) -> String {
    for (unit, size) in [("d", 86_400), ("h", 3600), ("min", 60)] {
        if secs > 0 && secs % size == 0 {
            return format!("{} {unit}", secs / size);
        }
    }
    format!("{secs} s")
}

/// `GET /console/callout`.
pub(crate) async fn callout_page(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
) -> ConsoleResult<Response> {
    let sess = session(&s, &headers).await?;
    let w = s.ops(&sess);
    let seq = seq(&w).await?;
    let body = match w.callout_status().await {
        Ok(view) => configured(&view),
        // Not set up (or its account is gone): say so, and how to set it up.
        Err(e) if e.kind() == ErrorKind::NotFound => not_set_up(&e.to_string()),
        Err(e) => return Err(e.into()),
    };
    Ok(page("Auth callout", "/console/callout", &sess, seq, &body).into_response())
}

fn not_set_up(why: &str) -> String {
    format!(
        r#"<section id="callout" data-live aria-labelledby="h-callout"><h2 id="h-callout">Not set up</h2>
<p id="callout-state" data-state="not-set-up">The auth callout is not set up: {why}.</p>
<p>With the auth callout (nats-server 2.10 or later), Warden decides at connect time who may connect and with which permissions: a client presents a directory password, an OIDC ID token or a client certificate, and gets the grants its directory user holds.</p>
<p>Set it up with <code>warden callout setup</code> (or <code>PUT /v1/callout</code> with an <code>admin</code> token), add authenticators with <code>warden callout auth add ldap|oidc|mtls …</code>, then run the responder with <code>warden serve --callout</code>.</p>
</section>"#,
        why = esc(why),
    )
}

fn configured(v: &CalloutView) -> String {
    let allowed = if v.allowed_accounts.iter().any(|a| a == "*") {
        "any account but the callout account".to_string()
    } else {
        v.allowed_accounts
            .iter()
            .map(|a| account_link(a))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let xkey = match &v.xkey {
        Some(k) => format!("sealed to <code class=\"key\">{}</code>", esc(k)),
        None => "not sealed (no curve key)".to_string(),
    };
    let mut rows = String::new();
    for a in &v.authenticators {
        let _ = write!(
            rows,
            "<tr id=\"authenticator-{name}\"><td>{pos}</td><td>{name}</td><td data-kind=\"{kind}\">{kind}</td><td>{detail}</td><td>{secret}</td></tr>",
            pos = a.position,
            name = esc(&a.name),
            kind = esc(a.kind),
            detail = esc(&a.detail),
            secret = if a.has_secret {
                "stored, sealed"
            } else {
                "none"
            },
        );
    }
    let authenticators = if v.authenticators.is_empty() {
        "<p class=\"warn\" id=\"no-authenticators\">No authenticators: every client is refused. Add one with <code>warden callout auth add ldap|oidc|mtls …</code> (or <code>POST /v1/callout/authenticators</code>).</p>".to_string()
    } else {
        format!(
            r#"<div class="scroll"><table><thead><tr><th scope="col">#</th><th scope="col">Name</th><th scope="col">Kind</th><th scope="col">Checks against</th><th scope="col">Secret</th></tr></thead><tbody>{rows}</tbody></table></div>"#
        )
    };
    format!(
        r#"<section id="callout" data-live aria-labelledby="h-callout"><h2 id="h-callout">Set-up</h2>
<dl class="facts" id="callout-state" data-state="set-up">
<dt>Account</dt><dd>{account} <code class="key">{account_key}</code></dd>
<dt>Responder</dt><dd><code class="key">{responder}</code> (Warden's auth user: it answers the requests)</dd>
<dt>Sentinel</dt><dd><code class="key">{sentinel}</code> (clients present its creds, <code>warden callout sentinel</code>, with their own credentials)</dd>
<dt>Requests</dt><dd id="callout-xkey">{xkey}</dd>
<dt>Allowed accounts</dt><dd id="callout-allowed">{allowed}</dd>
<dt>User JWT lifetime</dt><dd id="callout-ttl" data-secs="{ttl_secs}">{ttl}</dd>
</dl>
</section>
<section id="callout-authenticators" data-live aria-labelledby="h-authenticators"><h2 id="h-authenticators">{n}, tried in order</h2>
{authenticators}
<p class="hint">Change the set-up with <code>warden callout setup</code> and the authenticators with <code>warden callout auth add|rm</code> (or the HTTP API, with an <code>admin</code> token).</p>
</section>"#,
        account = account_link(&v.account),
        account_key = esc(&v.account_key),
        responder = esc(&v.responder_key),
        sentinel = esc(&v.sentinel_key),
        ttl_secs = v.ttl_secs,
        ttl = esc(&lifetime(v.ttl_secs)),
        n = plural(v.authenticators.len(), "Authenticator", "Authenticators"),
    )
}

#[cfg(test)]
mod tests {
    use super::lifetime;

    #[test]
    fn lifetimes_in_the_largest_unit() {
        assert_eq!(lifetime(3600), "1 h");
        assert_eq!(lifetime(900), "15 min");
        assert_eq!(lifetime(2 * 86_400), "2 d");
        assert_eq!(lifetime(90), "90 s");
    }
}
