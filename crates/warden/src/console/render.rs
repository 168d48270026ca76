//! HTML building blocks of the console: escaping, the page layout (landmarks, navigation,
//! sign-out form, live region) and the pages shown without a session.
//!
//! Every value that comes from the store or the request goes through [`esc`] (text and
//! attribute values) or [`seg`] (URL path segments) before it reaches the page.

use std::fmt::Write as _;

use axum::response::Html;

use super::Session;

/// Escapes text for HTML content and quoted attribute values.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a URL path segment (everything but RFC 3986 unreserved characters).
pub(crate) fn seg(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A unix time as UTC text (`2026-01-31 12:00:00Z`), or `—` for none.
pub(crate) fn when(unix: Option<i64>) -> String {
    match unix {
        None => "—".into(),
        Some(t) => {
            let days = t.div_euclid(86_400);
            let secs = t.rem_euclid(86_400);
            // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
            let z = days + 719_468;
            let era = z.div_euclid(146_097);
            let doe = z - era * 146_097;
            let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
            let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
            let mp = (5 * doy + 2) / 153;
            let d = doy - (153 * mp + 2) / 5 + 1;
            let m = if mp < 10 { mp + 3 } else { mp - 9 };
            let y = yoe + era * 400 + i64::from(m <= 2);
            format!(
                "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z",
                secs / 3600,
                secs % 3600 / 60,
                secs % 60
            )
        }
    }
}

pub(crate) use warden_core::units::{bytes, count, limit, plural, size};

/// The shortened key shown in lists (the whole key is in the `title`).
pub(crate) fn short_key(key: &str) -> String {
    if key.chars().count() <= 14 {
        return format!("<code class=\"key\">{}</code>", esc(key));
    }
    let k: String = key.chars().take(12).collect();
    format!(
        "<code class=\"key\" title=\"{}\">{}…</code>",
        esc(key),
        esc(&k)
    )
}

const NAV: [(&str, &str); 13] = [
    ("/console", "Overview"),
    ("/console/operator", "Operator"),
    ("/console/callout", "Auth callout"),
    ("/console/accounts", "Accounts"),
    ("/console/hierarchy", "Hierarchy"),
    ("/console/sync", "NATS sync"),
    ("/console/devices", "Devices"),
    ("/console/tenants", "Tenants"),
    ("/console/onboarding", "Onboarding"),
    ("/console/rooms", "Rooms"),
    ("/console/ledger", "Ledger"),
    ("/console/directory", "Directory"),
    ("/console/proposals", "Proposals"),
];

/// The main navigation, `current` marked.
fn nav(current: &str) -> String {
    let mut nav = String::new();
    for (href, label) in NAV {
        let here = if href == current {
            " aria-current=\"page\""
        } else {
            ""
        };
        let _ = write!(nav, "<li><a href=\"{href}\"{here}>{label}</a></li>");
    }
    nav
}

/// The page layout around `body`: the header with the navigation and, for a session, its
/// sign-out form; `seq` (the ledger position the page shows) lets the live script ask for
/// newer events.
fn layout(title: &str, current: &str, sess: Option<&Session>, seq: i64, body: &str) -> String {
    let signout = match sess {
        Some(sess) => format!(
            r#"<form class="signout" method="post" action="/console/logout">
<input type="hidden" name="csrf" value="{csrf}">
<span class="who">Signed in as {who}</span>
<button type="submit">Sign out</button>
</form>"#,
            csrf = esc(&sess.csrf),
            who = esc(&sess.token_name),
        ),
        None => String::new(),
    };
    let (script, footer) = if sess.is_some() {
        (
            "<script src=\"/console/assets/console.js\" defer></script>\n",
            "<p id=\"live\" role=\"status\" aria-live=\"polite\" data-state=\"static\">Live updates need JavaScript; reload to see changes.</p>",
        )
    } else {
        ("", "")
    };
    format!(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Warden console</title>
<link rel="stylesheet" href="/console/assets/console.css">
{script}</head>
<body data-seq="{seq}">
<a class="skip" href="#main">Skip to content</a>
<header class="top">
<p class="brand"><a href="/console">Warden</a></p>
<nav aria-label="Main"><ul>{nav}</ul></nav>
{signout}
</header>
<main id="main" tabindex="-1">
<h1>{title}</h1>
{body}
</main>
<footer>
{footer}
</footer>
</body>
</html>
"##,
        title = esc(title),
        nav = nav(current),
    )
}

/// A whole page: `body` goes into `<main>`. `seq` is the ledger position the page shows,
/// from which the live script asks for newer events.
pub(crate) fn page(
    title: &str,
    current: &str,
    sess: &Session,
    seq: i64,
    body: &str,
) -> Html<String> {
    Html(layout(title, current, Some(sess), seq, body))
}

/// The sign-in page (no session yet).
pub(crate) fn login_page(csrf: &str, error: Option<&str>) -> Html<String> {
    let error = error
        .map(|e| {
            format!(
                "<p class=\"error\" role=\"alert\" id=\"login-error\">{}</p>",
                esc(e)
            )
        })
        .unwrap_or_default();
    Html(format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · Warden console</title>
<link rel="stylesheet" href="/console/assets/console.css">
</head>
<body>
<main id="main" class="narrow">
<h1>Warden console</h1>
{error}
<form method="post" action="/console/login" class="card">
<input type="hidden" name="csrf" value="{csrf}">
<label for="token">Admin API token</label>
<input id="token" name="token" type="password" autocomplete="off" required placeholder="wdn_…">
<p class="hint">Create one with <code>warden token create --name console --scope admin</code>. A <code>read</code> token can look; <code>write</code> can act; <code>creds</code> can download creds.</p>
<button type="submit">Sign in</button>
</form>
</main>
</body>
</html>
"#,
        csrf = esc(csrf),
    ))
}

/// An error page, with the navigation (it may be shown without a session, so without the
/// sign-out form and the live script).
pub(crate) fn error_page(title: &str, message: &str) -> Html<String> {
    let body = format!(
        "<p class=\"error\" role=\"alert\">{}</p>\n<p><a href=\"/console\">Back to the console</a></p>",
        esc(message)
    );
    Html(layout(title, "", None, 0, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(seg("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn dates() {
        assert_eq!(when(Some(0)), "1970-01-01 00:00:00Z");
        assert_eq!(when(Some(1_767_225_600)), "2026-01-01 00:00:00Z");
        assert_eq!(when(None), "—");
    }
}
