//! The search box, sortable column headers and pager of the console's long lists, as
//! plain links and GET forms (no script needed). A list's state is in the page's query:
//! `q`, `sort`, `dir=asc|desc`, `page`, `per`, each with the list's prefix when a page
//! shows several lists (the directory's `u_`, `r_`, `t_`); every link keeps the other
//! lists' and the page's own parameters. What a page holds is decided by
//! [`warden_ops::page`]; this module only reads the query and draws the controls.

use std::fmt::Write as _;

use warden_core::units::{count, plural};
use warden_ops::page::{Page, PageRequest};

use super::ConsoleError;
use super::render::esc;

/// The query parameters of a page, in order.
#[derive(Clone, Debug, Default)]
pub(crate) struct ListQuery {
    params: Vec<(String, String)>,
}

/// Percent-encodes a query component (everything but RFC 3986 unreserved characters).
fn enc(text: &str) -> String {
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

impl ListQuery {
    /// The query of a request (`Query<Vec<(String, String)>>`).
    pub(crate) fn new(params: Vec<(String, String)>) -> ListQuery {
        ListQuery { params }
    }

    /// The query with `key` set to `value` unless it is given.
    pub(crate) fn or_default(mut self, key: &str, value: &str) -> ListQuery {
        if self.get(key).is_none() {
            self.params.retain(|(k, _)| k != key);
            self.params.push((key.to_string(), value.to_string()));
        }
        self
    }

    /// The value of parameter `key`, when given and not blank.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The page request of the list with parameter prefix `prefix`; a page number or
    /// size that is not a number, or a direction other than `asc`/`desc`, is bad input.
    pub(crate) fn request(&self, prefix: &str) -> Result<PageRequest, ConsoleError> {
        let number = |name: &str| -> Result<Option<usize>, ConsoleError> {
            match self.get(&format!("{prefix}{name}")) {
                None => Ok(None),
                Some(v) => v.parse().map(Some).map_err(|_| {
                    ConsoleError::Invalid(format!("{prefix}{name}={v:?} is not a page number"))
                }),
            }
        };
        let desc = match self.get(&format!("{prefix}dir")) {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => {
                return Err(ConsoleError::Invalid(format!(
                    "{prefix}dir={other:?}: use asc or desc"
                )));
            }
        };
        Ok(PageRequest::new(
            self.get(&format!("{prefix}q")).unwrap_or(""),
            self.get(&format!("{prefix}sort")).unwrap_or(""),
            desc,
            number("page")?.unwrap_or(1),
            number("per")?,
        ))
    }

    /// `path` with this query, parameters in `set` replaced (`None`: removed), the
    /// others kept in order.
    pub(crate) fn href(&self, path: &str, set: &[(&str, Option<&str>)]) -> String {
        let mut pairs: Vec<(String, String)> = self
            .params
            .iter()
            .filter(|(k, v)| !v.trim().is_empty() && !set.iter().any(|(s, _)| s == k))
            .cloned()
            .collect();
        for (k, v) in set {
            if let Some(v) = v {
                pairs.push((k.to_string(), v.to_string()));
            }
        }
        if pairs.is_empty() {
            return path.to_string();
        }
        let query: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect();
        format!("{path}?{}", query.join("&"))
    }

    /// A GET search form for the list with prefix `prefix`, keeping the page's other
    /// parameters as hidden fields (a new search starts at page 1). `id` names the
    /// input (`{id}-q`).
    pub(crate) fn search_form(&self, path: &str, prefix: &str, id: &str, label: &str) -> String {
        let q_key = format!("{prefix}q");
        let page_key = format!("{prefix}page");
        let mut hidden = String::new();
        for (k, v) in &self.params {
            if *k == q_key || *k == page_key || v.trim().is_empty() {
                continue;
            }
            let _ = write!(
                hidden,
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                esc(k),
                esc(v)
            );
        }
        let q = self.get(&q_key).unwrap_or("");
        let clear = if q.is_empty() {
            String::new()
        } else {
            format!(
                " <a href=\"{}\" class=\"clear\">Clear</a>",
                esc(&self.href(path, &[(&q_key, None), (&page_key, None)]))
            )
        };
        format!(
            "<form method=\"get\" action=\"{path}\" class=\"search\" role=\"search\">{hidden}<label for=\"{id}-q\">{label}</label><span class=\"search-row\"><input type=\"search\" id=\"{id}-q\" name=\"{qk}\" value=\"{qv}\" autocomplete=\"off\"><button type=\"submit\">Search</button>{clear}</span></form>",
            qk = esc(&q_key),
            qv = esc(q),
        )
    }

    /// A column header that sorts the list by `key` when clicked (ascending first; a
    /// second click reverses), marked with `aria-sort` when it is the sort applied.
    pub(crate) fn header<T>(
        &self,
        path: &str,
        prefix: &str,
        page: &Page<T>,
        key: &str,
        label: &str,
    ) -> String {
        let current = page.sort == key;
        let next_desc = current && !page.desc;
        let href = self.href(
            path,
            &[
                (&format!("{prefix}sort"), Some(key)),
                (
                    &format!("{prefix}dir"),
                    Some(if next_desc { "desc" } else { "asc" }),
                ),
                (&format!("{prefix}page"), None),
            ],
        );
        let (aria, mark) = match (current, page.desc) {
            (false, _) => ("", ""),
            (true, false) => (" aria-sort=\"ascending\"", " ▲"),
            (true, true) => (" aria-sort=\"descending\"", " ▼"),
        };
        format!(
            "<th scope=\"col\"{aria}><a href=\"{}\" class=\"sort\" data-sort=\"{key}\">{label}{mark}</a></th>",
            esc(&href)
        )
    }

    /// "Showing 51–100 of 2,000 accounts" with links to the first, previous, next and
    /// last pages. `id` names the block (`{id}-pager`, `{id}-showing`).
    pub(crate) fn pager<T>(
        &self,
        path: &str,
        prefix: &str,
        id: &str,
        page: &Page<T>,
        one: &str,
        many: &str,
    ) -> String {
        let of = if page.matched == page.total {
            plural(page.total, one, many)
        } else {
            format!(
                "{} matching, of {}",
                count(page.matched),
                plural(page.total, one, many)
            )
        };
        let showing = if page.items.is_empty() {
            format!("Showing none of {of}")
        } else {
            format!(
                "Showing {}–{} of {of}",
                count(page.first()),
                count(page.last())
            )
        };
        let pages = page.pages();
        let key = format!("{prefix}page");
        let link = |n: usize, rel: &str, text: &str| {
            let n_text = n.to_string();
            format!(
                "<a href=\"{}\" rel=\"{rel}\">{text}</a>",
                esc(&self.href(path, &[(&key, Some(&n_text))]))
            )
        };
        let mut nav = String::new();
        if pages > 1 {
            let prev = if page.page > 1 {
                format!(
                    "{} {}",
                    link(1, "first", "« First"),
                    link(page.page - 1, "prev", "‹ Previous")
                )
            } else {
                "<span class=\"muted\">« First ‹ Previous</span>".into()
            };
            let next = if page.page < pages {
                format!(
                    "{} {}",
                    link(page.page + 1, "next", "Next ›"),
                    link(pages, "last", "Last »")
                )
            } else {
                "<span class=\"muted\">Next › Last »</span>".into()
            };
            let _ = write!(
                nav,
                " <span class=\"pages\">{prev} <span>page {} of {}</span> {next}</span>",
                count(page.page),
                count(pages)
            );
        }
        format!(
            "<div class=\"pager\" id=\"{id}-pager\" data-page=\"{}\" data-pages=\"{pages}\" data-matched=\"{}\" data-total=\"{}\"><span id=\"{id}-showing\">{showing}</span>{nav}</div>",
            page.page, page.matched, page.total
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> ListQuery {
        ListQuery::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn links_keep_the_other_parameters() {
        let lq = q(&[("show", "all"), ("q", "a b&c"), ("page", "3")]);
        assert_eq!(
            lq.href("/console/sync", &[("page", Some("4"))]),
            "/console/sync?show=all&q=a%20b%26c&page=4"
        );
        assert_eq!(
            lq.href("/console/sync", &[("q", None), ("page", None)]),
            "/console/sync?show=all"
        );
        let r = lq.request("").unwrap();
        assert_eq!((r.q.as_str(), r.page, r.desc), ("a b&c", 3, false));
        assert!(q(&[("page", "x")]).request("").is_err());
        assert!(q(&[("u_dir", "up")]).request("u_").is_err());
        assert!(q(&[("u_dir", "desc")]).request("u_").unwrap().desc);
    }

    #[test]
    fn headers_and_pager() {
        let page = Page {
            items: vec![1; 50],
            total: 2000,
            matched: 2000,
            page: 2,
            per: 50,
            sort: "name".to_string(),
            desc: false,
        };
        let lq = q(&[("page", "2")]);
        let h = lq.header("/console/accounts", "", &page, "name", "Name");
        assert!(
            h.contains("aria-sort=\"ascending\"") && h.contains("sort=name&amp;dir=desc"),
            "{h}"
        );
        let h = lq.header("/console/accounts", "", &page, "users", "Users");
        assert!(
            !h.contains("aria-sort") && h.contains("sort=users&amp;dir=asc"),
            "{h}"
        );
        let p = lq.pager(
            "/console/accounts",
            "",
            "accounts",
            &page,
            "account",
            "accounts",
        );
        assert!(p.contains("Showing 51–100 of 2,000 accounts"), "{p}");
        assert!(p.contains("rel=\"next\"") && p.contains("page=3"), "{p}");
    }
}
