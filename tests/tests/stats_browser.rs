//! The statistics page in a real browser: headless Chromium, started in the
//! lab's client namespace, logs in as an operator's browser does (it gets
//! the 401 and answers it), reads the page, and an admin drains a server
//! with the page's own button; requests through the L7 frontend then avoid
//! it. Needs root (network namespaces) and Debian's `chromium`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use lb_tests::cdp::{Browser, Credentials, Page};
use lb_tests::stats::{ADMIN, GUEST, POOL, SERVERS, StatsLab};

fn login((username, password): (&str, &str)) -> Option<Credentials> {
    Some(Credentials {
        username: username.into(),
        password: password.into(),
    })
}

fn start() -> (StatsLab, Browser) {
    let lab = StatsLab::start().expect("the lab and its agent (needs root)");
    let browser = Browser::launch_in(lab.client_ns()).expect("starting chromium");
    (lab, browser)
}

/// `page` at `url`, loaded.
fn open<'b>(browser: &'b Browser, user: Option<Credentials>, url: &str) -> Page<'b> {
    let page = browser.new_page(user).expect("a page");
    page.navigate(url)
        .unwrap_or_else(|e| panic!("{url}: {e:#}"));
    page
}

/// The server rows of the page: `data-server` → `data-state`.
fn states(page: &Page) -> HashMap<String, String> {
    let names = page.attributes("tr.server", "data-server").unwrap();
    let states = page.attributes("tr.server", "data-state").unwrap();
    names
        .into_iter()
        .zip(states)
        .map(|(n, s)| (n.expect("a data-server"), s.expect("a data-state")))
        .collect()
}

fn state(page: &Page, server: &str) -> String {
    states(page)
        .remove(server)
        .unwrap_or_else(|| panic!("no row for {server}: {}", page.text().unwrap_or_default()))
}

#[test]
fn the_page_needs_a_login_and_shows_a_guest_no_controls() {
    let (lab, browser) = start();

    let refused = open(&browser, login((ADMIN.0, "not the password")), &lab.url());
    assert_eq!(refused.status().unwrap(), 401);
    assert_eq!(refused.count("tr.server").unwrap(), 0);
    assert!(!refused.title().unwrap().contains("lb statistics"));
    // Tried once, refused, given up: as a user cancelling the second prompt.
    assert_eq!(refused.auth_challenges(), 2);
    drop(refused);

    let anonymous = open(&browser, None, &lab.url());
    assert_eq!(anonymous.status().unwrap(), 401);
    assert_eq!(anonymous.count("tr.server").unwrap(), 0);
    drop(anonymous);

    let admin = open(&browser, login(ADMIN), &lab.url());
    assert_eq!(admin.status().unwrap(), 200);
    assert!(
        admin.title().unwrap().contains("lb statistics"),
        "{}",
        admin.title().unwrap()
    );
    let rows = page_rows(&admin);
    assert_eq!(
        rows,
        [
            (POOL.into(), SERVERS[0].into()),
            (POOL.into(), SERVERS[1].into())
        ]
    );
    assert!(
        states(&admin).values().all(|s| s == "up"),
        "{:?}",
        states(&admin)
    );
    assert!(
        admin.count("form.admin").unwrap() > 0,
        "the admin has no controls"
    );
    drop(admin);

    let guest = open(&browser, login(GUEST), &lab.url());
    assert_eq!(guest.status().unwrap(), 200);
    assert_eq!(page_rows(&guest), rows);
    assert_eq!(guest.count("form.admin").unwrap(), 0);
    assert_eq!(guest.count("button[name=action]").unwrap(), 0);

    // The CSV form, as the guest's browser shows it (text/plain).
    guest.navigate(&format!("{};csv", lab.url())).unwrap();
    assert_eq!(guest.status().unwrap(), 200);
    let csv = guest.text().unwrap();
    let statuses = csv_statuses(&csv);
    for s in SERVERS {
        assert_eq!(statuses.get(s).map(String::as_str), Some("UP"), "{csv}");
    }
}

/// `(data-pool, data-server)` of each server row, sorted.
fn page_rows(page: &Page) -> Vec<(String, String)> {
    let pools = page.attributes("tr.server", "data-pool").unwrap();
    let servers = page.attributes("tr.server", "data-server").unwrap();
    let mut rows: Vec<_> = pools
        .into_iter()
        .zip(servers)
        .map(|(p, s)| (p.unwrap_or_default(), s.unwrap_or_default()))
        .filter(|(p, _)| p == POOL)
        .collect();
    rows.sort();
    rows
}

/// The `status` column of pool [`POOL`]'s server lines of HAProxy's CSV,
/// by server; panics unless the header is HAProxy's.
fn csv_statuses(csv: &str) -> HashMap<String, String> {
    let mut lines = csv.lines();
    let header = lines.next().unwrap_or_default();
    assert!(
        header.starts_with("# pxname,svname,qcur,qmax,scur,"),
        "header: {header:?}"
    );
    let columns: Vec<&str> = header.trim_start_matches("# ").split(',').collect();
    let col = |name: &str| columns.iter().position(|c| *c == name).expect(name);
    let (px, sv, status) = (col("pxname"), col("svname"), col("status"));
    lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f.len() > status && f[px] == POOL && SERVERS.contains(&f[sv]))
        .map(|f| (f[sv].to_owned(), f[status].to_owned()))
        .collect()
}

#[test]
fn an_admin_drains_a_server_with_the_pages_button_and_requests_avoid_it() {
    let (lab, browser) = start();
    let [drained, other] = SERVERS;
    // Both answer before: the check after the drain could fail.
    assert_eq!(answering(&lab, 8), [drained, other]);

    let page = open(&browser, login(ADMIN), &lab.url());
    assert_eq!(state(&page, drained), "up");
    page.click_and_wait(&button("drain", drained)).unwrap();
    assert!(
        page.url().unwrap().starts_with(&lab.url()),
        "after the 303: {}",
        page.url().unwrap()
    );
    assert_eq!(page.status().unwrap(), 200);
    assert_eq!(state(&page, drained), "drain");
    assert_eq!(state(&page, other), "up");
    assert_eq!(lab.server_state(POOL, drained), "drain");
    assert_eq!(answering(&lab, 8), [other]);
    let csv = lab.get(&format!("{};csv", lb_tests::stats::URI), Some(GUEST));
    assert_eq!(csv_statuses(&csv.body)[drained], "DRAIN", "{}", csv.body);
    page.screenshot(&screenshot_path()).unwrap();

    page.click_and_wait(&button("enable", drained)).unwrap();
    assert_eq!(state(&page, drained), "up");
    assert_eq!(answering(&lab, 8), [drained, other]);
}

/// The page's own button for `action` on `server` of [`POOL`].
fn button(action: &str, server: &str) -> String {
    format!("button[name=action][value={action}][data-pool={POOL}][data-server={server}]")
}

/// The servers that answer `n` requests through the L7 frontend, sorted.
fn answering(lab: &StatsLab, n: usize) -> Vec<String> {
    let mut who: Vec<String> = (0..n)
        .map(|_| {
            lab.through_frontend()
                .expect("a request through the frontend")
        })
        .collect();
    who.sort();
    who.dedup();
    who
}

/// `target/stats-page.png` of the workspace, left for a human to look at.
fn screenshot_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is in the workspace")
        .join("target/stats-page.png")
}
