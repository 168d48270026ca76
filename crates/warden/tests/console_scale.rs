//! The web console with thousands: 2,000 accounts (one `warden org apply`) and 2,000
//! devices (one bulk add, each with its own account) seeded through warden-ops in a few
//! transactions, every account pushed to a real nats-server (2.9 and 2.15), then:
//!
//! - every console page is measured over plain HTTP (reqwest, with a session): its size
//!   must stay under 200 KB and its server response time (request sent → whole body read,
//!   median of three) is reported against the 300 ms target (pages over it are marked)
//!   and held to it in a release build; a debug build (unoptimised, on a shared machine)
//!   is held to 3 s, which a return to whole-list pages (seconds) still fails. The sync
//!   page reads the comparison with the nats-server kept in the background (one lookup
//!   per account, measured apart and reported with the figures). The measurements are
//!   written to `target/console-shots/scale-<version>.txt`.
//! - a real headless Chromium: search finds one account by name, "Next" shows the next 50,
//!   clicking the sorted column's header reverses the order; the sync page lists only the
//!   accounts that drift (three deleted from the resolver behind Warden's back), pushes
//!   two of them selected with checkboxes ("Push selected") and leaves the third; the
//!   hierarchy draws at most its bound of boxes and says what it summarised; a device page
//!   revokes and restores its device, a tenant page suspends and resumes its tenant; an
//!   error page keeps the navigation; the accounts page fits 390 px. Screenshots go to
//!   `target/console-shots/scale-*.png`.

mod common;

use std::time::{Duration, Instant};

use common::Home;
use common::browser::{self, browser_sign_in, click, shot, shots_dir, submit, text_of};
use common::chromedriver::Driver;
use fantoccini::{Client, Locator};
use reqwest::StatusCode;
use warden::http::{self, HttpState};
use warden_ops::Warden;
use warden_ops::device::NewDevice;
use warden_ops::drift::ResolverLink;
use warden_testkit::{NatsServerBinary, ServerLine};

const WAIT: Duration = Duration::from_secs(30);
const ACCOUNTS: usize = 2000;
const DEVICES: usize = 2000;
/// The bound on a console page's size.
const MAX_PAGE_BYTES: usize = 200 * 1024;
/// The response time a console page aims at, and the bound held in a release build:
/// the pages that summarise or list every account read the light account query (names,
/// keys, kinds, counts; no JWT, a spec only where an account imports or exports, or where
/// it holds the accounts list's search), the accounts list reads whole rows for its page
/// only, and the sync page reads the comparison kept in memory.
const TARGET_MS: u128 = 300;
/// The bound held in a debug build (unoptimised, on a machine shared with other builds):
/// a regression to the old whole-list pages (seconds) still fails.
const MAX_MS_DEBUG: u128 = 3000;
/// Most boxes the hierarchy picture may draw (the console's bound).
const MAX_NODES: usize = 400;

/// Seeds the organisation: `ACCOUNTS` accounts `ACC0000…` in one org apply, `DEVICES`
/// devices `dev-0000…` in one bulk add, two tenants, three users in ACC0000.
async fn seed(w: &Warden) {
    let t0 = Instant::now();
    let units: Vec<serde_json::Value> = (0..ACCOUNTS)
        .map(|i| {
            let name = format!("ACC{i:04}");
            serde_json::json!({"id": format!("u{i}"), "name": name, "account": name})
        })
        .collect();
    let spec: warden_core::org::OrgSpec = serde_json::from_value(serde_json::json!({
        "organization": {"name": "scale"},
        "units": units,
    }))
    .unwrap();
    w.org_apply(&spec, false).await.expect("org apply");
    let t_accounts = t0.elapsed();
    let devices: Vec<NewDevice> = (0..DEVICES)
        .map(|i| NewDevice {
            id: format!("dev-{i:04}"),
            meta: Default::default(),
        })
        .collect();
    w.add_devices_bulk(&devices, |_| {})
        .await
        .expect("bulk devices");
    let t_devices = t0.elapsed() - t_accounts;
    for slug in ["acme", "globex"] {
        w.add_tenant(slug, &Default::default()).await.unwrap();
    }
    for user in ["alice", "bob", "carol"] {
        w.add_user("ACC0000", user, Default::default())
            .await
            .unwrap();
    }
    eprintln!(
        "seeded {ACCOUNTS} accounts in {:.1}s, {DEVICES} devices in {:.1}s",
        t_accounts.as_secs_f64(),
        t_devices.as_secs_f64()
    );
}

/// One page measured: its size and its response times (ms) over `RUNS` requests after a
/// first one that warms the connection.
struct Measured {
    path: String,
    bytes: usize,
    ms: Vec<u128>,
}

impl Measured {
    fn median(&self) -> u128 {
        let mut v = self.ms.clone();
        v.sort();
        v[v.len() / 2]
    }
}

const RUNS: usize = 3;

async fn measure(http: &reqwest::Client, base: &str, cookie: &str, path: &str) -> Measured {
    let get = || async {
        let t = Instant::now();
        let res = http
            .get(format!("{base}{path}"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body = res.text().await.unwrap();
        let ms = t.elapsed().as_millis();
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        (body, ms)
    };
    let (body, _) = get().await;
    let mut ms = Vec::new();
    for _ in 0..RUNS {
        ms.push(get().await.1);
    }
    Measured {
        path: path.to_string(),
        bytes: body.len(),
        ms,
    }
}

/// The ids of the rows of the table body in section `section`.
async fn row_ids(b: &Client, section: &str) -> Vec<String> {
    let v = b
        .execute(
            &format!(
                "return Array.from(document.querySelectorAll('#{section} tbody tr[id]')).map(r => r.id);"
            ),
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(v).unwrap()
}

async fn scale(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    let tag = format!("v{}", bin.version.replace('.', "_"));
    eprintln!("running against nats-server {}", bin.version);
    let home = Home::new();
    home.ok(&["init", "--name", "SCALEOP"]);
    let token = home.json(&["token", "create", "--name", "scale", "--scope", "admin"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let w = home.warden().await;
    seed(&w).await;

    // The nats-server Warden renders, holding every account (pushed in one go).
    let server = home.start_nats(&bin, "main");
    let nats = server.url();
    let link = ResolverLink::new(nats.clone(), Duration::from_secs(10));
    let t = Instant::now();
    let pushed = w
        .push_accounts(&link, None)
        .await
        .expect("push every account");
    let failed: Vec<_> = pushed.iter().filter(|p| !p.ok).collect();
    assert!(failed.is_empty(), "{failed:?}");
    eprintln!(
        "pushed {} accounts in {:.1}s",
        pushed.len(),
        t.elapsed().as_secs_f64()
    );

    // Behind Warden's back the server loses three accounts: the drift.
    let sys = w.system_user_creds().await.unwrap();
    let resolver = warden_nats::ResolverClient::connect(&nats, &sys, Duration::from_secs(5))
        .await
        .unwrap();
    let op = w.operator().await.unwrap();
    let signer =
        nats_jwt::KeyPair::from_seed(&w.store().seed(&op.signing_key).await.unwrap()).unwrap();
    let mut lost = Vec::new();
    for name in ["ACC0005", "ACC0006", "ACC0007"] {
        lost.push(w.account(name).await.unwrap());
    }
    let keys: Vec<nats_jwt::AccountPublicKey> =
        lost.iter().map(|a| a.public_key.parse().unwrap()).collect();
    let reply = resolver
        .delete(&warden_nats::delete_request(&signer, &keys).unwrap())
        .await
        .unwrap();
    assert_eq!(reply.code, 200, "{reply:?}");

    // The console (the HTTP server of `warden serve`, in this process), knowing the server.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = HttpState {
        warden: w.clone(),
        ready: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
    };
    tokio::spawn(http::serve_with_nats(
        listener,
        state,
        Some(nats.clone()),
        None,
        async move {
            let _ = stopped.await;
        },
    ));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookie = format!(
        "warden_console={}",
        browser::sign_in(&http, &base, &token).await
    );

    // Every page: size and response time.
    let pages = [
        "/console",
        "/console/accounts",
        "/console/accounts?page=2",
        "/console/accounts?q=ACC1234",
        "/console/accounts?sort=name&dir=desc",
        "/console/accounts?kind=device&page=40",
        "/console/accounts/ACC0000",
        "/console/accounts/EMDEV-dev-0001",
        "/console/accounts/ACC0000/users/alice",
        "/console/hierarchy",
        "/console/hierarchy.svg",
        "/console/sync",
        "/console/sync?show=all&page=3",
        "/console/devices",
        "/console/devices?page=2&sort=id&dir=desc",
        "/console/devices/dev-0001",
        "/console/tenants",
        "/console/tenants/acme",
        "/console/ledger",
        "/console/ledger?q=device&page=2",
        "/console/onboarding",
        "/console/onboarding?tenant=acme",
        "/console/rooms",
        "/console/operator",
        "/console/callout",
        "/console/directory",
        "/console/proposals",
        "/console/proposals?who=u",
    ];
    let mut measured = Vec::new();
    for path in pages {
        measured.push(measure(&http, &base, &cookie, path).await);
    }
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let mut report = format!(
        "console at scale: {ACCOUNTS} accounts + {DEVICES} devices ({} accounts in all), nats-server {}, {build} build\n{:<45} {:>9} {:>8} {:>8}\n",
        w.status().await.unwrap().accounts,
        bin.version,
        "page",
        "bytes",
        "median",
        "max"
    );
    for m in &measured {
        report.push_str(&format!(
            "{:<45} {:>9} {:>6}ms {:>6}ms{}\n",
            m.path,
            m.bytes,
            m.median(),
            m.ms.iter().max().unwrap(),
            if m.median() >= TARGET_MS {
                format!("  over the {TARGET_MS} ms target")
            } else {
                String::new()
            }
        ));
    }
    // The comparison the sync page shows, made in the background: how long it took.
    let sync = http
        .get(format!("{base}/console/sync"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let took = sync
        .split_once("id=\"drift-computed\"")
        .and_then(|(_, rest)| rest.split_once(", in "))
        .and_then(|(_, rest)| rest.split_once(" s)"))
        .map(|(t, _)| t.to_string())
        .unwrap_or_else(|| "?".into());
    report.push_str(&format!(
        "the sync page's comparison with the server (background, {} accounts): {took} s\n",
        w.status().await.unwrap().accounts
    ));
    eprintln!("{report}");
    std::fs::write(shots_dir().join(format!("scale-{tag}.txt")), &report).unwrap();
    for m in &measured {
        assert!(
            m.bytes < MAX_PAGE_BYTES,
            "{} is {} bytes (bound {MAX_PAGE_BYTES})\n{report}",
            m.path,
            m.bytes
        );
        let bound = if cfg!(debug_assertions) {
            MAX_MS_DEBUG
        } else {
            TARGET_MS
        };
        assert!(
            m.median() < bound,
            "{} took {} ms (bound {bound} ms in a {build} build)\n{report}",
            m.path,
            m.median()
        );
    }

    // The browser.
    let driver = Driver::start().await;
    let b = driver.chromium(1400, 1000, None).await;
    browser_sign_in(&b, &base, &token).await;

    // Accounts: page 1 is the first 50 by name, the total said.
    b.goto(&format!("{base}/console/accounts")).await.unwrap();
    let showing = text_of(&b, "#accounts-showing").await;
    let total = w.list_accounts().await.unwrap().len();
    assert!(
        showing.starts_with("Showing 1–50 of ") && showing.contains(&format!("{},", total / 1000)),
        "{showing}"
    );
    let rows = row_ids(&b, "accounts").await;
    assert_eq!(rows.len(), 50);
    assert_eq!(rows[0], "account-ACC0000");
    shot(&b, &format!("scale-{tag}-01-accounts")).await;

    // Next: the next 50.
    click(&b, "#accounts-pager a[rel=next]").await;
    b.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#account-ACC0050"))
        .await
        .unwrap();
    let rows = row_ids(&b, "accounts").await;
    assert_eq!(rows.len(), 50);
    assert_eq!(rows[0], "account-ACC0050");
    assert_eq!(rows[49], "account-ACC0099");
    assert!(
        text_of(&b, "#accounts-showing")
            .await
            .starts_with("Showing 51–100 of ")
    );

    // Sorting: the name column is the sort applied; a click reverses it.
    click(&b, "#accounts th[aria-sort] a.sort").await;
    b.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#accounts th[aria-sort=descending]"))
        .await
        .unwrap();
    let mut names: Vec<String> = w
        .list_accounts()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    names.sort();
    names.reverse();
    let rows = row_ids(&b, "accounts").await;
    let expected: Vec<String> = names[..50].iter().map(|n| format!("account-{n}")).collect();
    assert_eq!(rows, expected);
    shot(&b, &format!("scale-{tag}-02-accounts-desc")).await;

    // Search: one account by name.
    let field = b.find(Locator::Css("#accounts-q")).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys("acc1234").await.unwrap();
    click(&b, "form.search button[type=submit]").await;
    b.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#account-ACC1234"))
        .await
        .unwrap();
    assert_eq!(row_ids(&b, "accounts").await, ["account-ACC1234"]);
    let showing = text_of(&b, "#accounts-showing").await;
    assert!(showing.contains("1 matching"), "{showing}");
    shot(&b, &format!("scale-{tag}-03-accounts-search")).await;

    // Sync: only the drift is listed, the in-sync accounts counted. A nats-server busy
    // listing 4,000 accounts may miss the console's 2 s bound (the page then says it did
    // not answer): "Check now" compares again, for a bounded time.
    let deadline = Instant::now() + Duration::from_secs(60);
    b.goto(&format!("{base}/console/sync")).await.unwrap();
    loop {
        if b.find(Locator::Css("#drift-verdict")).await.is_ok() {
            break;
        }
        let said = text_of(&b, "#drift-unavailable").await;
        assert!(Instant::now() < deadline, "no comparison: {said}");
        eprintln!("sync page: {said}; check again");
        submit(&b, "#check-now").await;
    }
    let verdict = text_of(&b, "#drift-verdict").await;
    assert!(verdict.contains("3 accounts not in sync"), "{verdict}");
    assert_eq!(
        row_ids(&b, "drift").await,
        ["sync-ACC0005", "sync-ACC0006", "sync-ACC0007"]
    );
    assert!(
        text_of(&b, "#sync-filter")
            .await
            .contains("in sync are counted, not listed")
    );
    // One "Push selected" button, no button per account.
    let buttons = b
        .execute(
            "return document.querySelectorAll('#drift tbody button').length;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(buttons, serde_json::json!(0));
    shot(&b, &format!("scale-{tag}-04-sync-drift")).await;
    // Push two of the three: tick ACC0005 and ACC0006.
    click(&b, "#pick-ACC0005").await;
    click(&b, "#pick-ACC0006").await;
    submit(&b, "#push-selected").await;
    let notice = text_of(&b, "#sync-notice").await;
    assert!(
        notice.contains("Pushed 2 accounts") && notice.contains("ACC0005, ACC0006"),
        "{notice}"
    );
    assert_eq!(row_ids(&b, "drift").await, ["sync-ACC0007"]);
    assert_eq!(
        resolver
            .lookup(&lost[0].public_key)
            .await
            .unwrap()
            .as_deref(),
        Some(lost[0].jwt.as_str())
    );
    assert!(
        resolver
            .lookup(&lost[2].public_key)
            .await
            .unwrap()
            .is_none()
    );
    shot(&b, &format!("scale-{tag}-05-sync-pushed")).await;
    // Show all: paged.
    click(&b, "#show-all").await;
    b.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#sync-ACC0010"))
        .await
        .unwrap();
    let showing = text_of(&b, "#sync-showing").await;
    assert!(showing.starts_with("Showing 1–50 of "), "{showing}");

    // Hierarchy: bounded, and it says what it summarised.
    b.goto(&format!("{base}/console/hierarchy")).await.unwrap();
    let nodes = b
        .find(Locator::Css("svg.hierarchy"))
        .await
        .unwrap()
        .attr("data-nodes")
        .await
        .unwrap()
        .unwrap();
    let nodes: usize = nodes.parse().unwrap();
    assert!(nodes <= MAX_NODES, "{nodes} boxes drawn");
    let said = text_of(&b, "#hierarchy-aggregated").await;
    assert!(
        // Plain accounts: all but the devices', the two tenants' and the system account.
        said.contains("2,000 device accounts")
            && said.contains(&format!(
                "{} accounts",
                warden_core::units::count(total - DEVICES - 3)
            )),
        "{said}"
    );
    let group = text_of(&b, "#group-device a").await;
    assert_eq!(group, "2,000 device accounts");
    shot(&b, &format!("scale-{tag}-06-hierarchy")).await;

    // A device: revoke, then restore, from its page.
    b.goto(&format!("{base}/console/devices/dev-0042"))
        .await
        .unwrap();
    submit(&b, "#revoke-device").await;
    let state = text_of(&b, "#action-notice").await;
    assert!(state.contains("revoked"), "{state}");
    assert_eq!(text_of(&b, "#device-state").await, "revoked");
    shot(&b, &format!("scale-{tag}-07-device-revoked")).await;
    submit(&b, "#restore-device").await;
    let state = text_of(&b, "#action-notice").await;
    assert!(state.contains("restored"), "{state}");
    assert_ne!(text_of(&b, "#device-state").await, "revoked");
    assert_ne!(
        w.device("dev-0042").await.unwrap().state.as_str(),
        "revoked"
    );

    // A tenant: suspend, then resume.
    b.goto(&format!("{base}/console/tenants/acme"))
        .await
        .unwrap();
    submit(&b, "#suspend-tenant").await;
    assert!(text_of(&b, "#action-notice").await.contains("suspended"));
    assert_eq!(text_of(&b, "#tenant-state").await, "suspended");
    shot(&b, &format!("scale-{tag}-08-tenant-suspended")).await;
    submit(&b, "#resume-tenant").await;
    assert!(text_of(&b, "#action-notice").await.contains("resumed"));
    assert_eq!(text_of(&b, "#tenant-state").await, "active");
    assert_eq!(w.tenant("acme").await.unwrap().state, "active");

    // An error page keeps the navigation.
    b.goto(&format!("{base}/console/accounts/NOSUCH"))
        .await
        .unwrap();
    text_of(&b, "nav[aria-label=Main] a[href='/console/accounts']").await;
    shot(&b, &format!("scale-{tag}-09-error")).await;

    // Phone width: no sideways scrolling.
    b.set_window_size(390, 844).await.unwrap();
    b.goto(&format!("{base}/console/accounts")).await.unwrap();
    text_of(&b, "#accounts-showing").await;
    let fits = b
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(fits, serde_json::json!(true), "sideways scroll at 390 px");
    shot(&b, &format!("scale-{tag}-10-phone")).await;

    b.close().await.unwrap();
    drop(driver);
    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_at_scale_nats_2_9() {
    scale(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_at_scale_nats_2_15() {
    scale(ServerLine::V2_15).await;
}
