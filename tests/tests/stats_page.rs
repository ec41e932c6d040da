//! The statistics page in the real agent (the seed's `listen admin_status`):
//! basic auth, a reader's page without forms, an admin's forms, actions
//! with and without a valid CSRF token, and HAProxy's CSV. Needs root.

use lb_tests::stats::{ADMIN, GUEST, POOL, REALM, SERVERS, StatsLab, URI};

/// HAProxy 2.6's `show stat` columns, as its `src/stats.c` lists them, up to
/// the per-module ones.
const HAPROXY_COLUMNS: &str = "pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status";

/// The admin's CSRF token, from the page's first form.
fn token(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no csrf field: {page}"))
        + "name=\"csrf\" value=\"".len();
    page[at..].split('"').next().unwrap().to_owned()
}

fn row<'a>(page: &'a str, server: &str) -> &'a str {
    let tag =
        format!("<tr class=\"server\" data-pool=\"{POOL}\" data-server=\"{server}\" data-state=\"");
    let at = page
        .find(&tag)
        .unwrap_or_else(|| panic!("no row {server}: {page}"))
        + tag.len();
    page[at..].split('"').next().unwrap()
}

#[test]
fn readers_admins_and_tokens() {
    let s = StatsLab::start().unwrap();
    // Without credentials, and with a wrong password: 401 in the whole realm.
    for user in [None, Some((GUEST.0, "Guest")), Some(("nobody", "x"))] {
        let a = s.get(URI, user);
        assert_eq!(a.status, 401, "{user:?}: {a:?}");
        assert_eq!(
            a.header("www-authenticate"),
            Some(format!("Basic realm=\"{REALM}\", charset=\"UTF-8\"").as_str())
        );
    }
    // The reader: the page, its rows, no form.
    let guest = s.get(URI, Some(GUEST));
    assert_eq!(guest.status, 200, "{guest:?}");
    assert!(guest.body.contains("<title>lb statistics</title>"));
    assert_eq!(row(&guest.body, SERVERS[0]), "up");
    assert!(!guest.body.contains("<form"), "a reader gets no form");
    let version = format!("lb {}", env!("CARGO_PKG_VERSION"));
    assert!(!guest.body.contains(&version), "hide_version: true");
    // The admin: forms with a token.
    let admin = s.get(URI, Some(ADMIN));
    assert!(
        admin.body.contains("<form method=\"post\" class=\"admin\""),
        "{}",
        admin.body
    );
    let t = token(&admin.body);
    let drain = |csrf: &str| format!("csrf={csrf}&pool={POOL}&server={}&action=drain", SERVERS[0]);
    // Refused: no token, a wrong token, the reader, a foreign origin; a GET.
    for (user, form, origin) in [
        (
            ADMIN,
            format!("pool={POOL}&server={}&action=drain", SERVERS[0]),
            None,
        ),
        (ADMIN, drain(&"0".repeat(64)), None),
        (GUEST, drain(&t), None),
        (ADMIN, drain(&t), Some("http://evil.example")),
    ] {
        let headers: Vec<(&str, &str)> = origin.iter().map(|o| ("Origin", *o)).collect();
        let mut all = vec![("Content-Type", "application/x-www-form-urlencoded")];
        all.extend(headers);
        let a = s.request("POST", URI, Some(user), &all, &form);
        assert_eq!(a.status, 403, "{user:?} {form} {origin:?}: {a:?}");
        assert!(a.body.len() > 10, "a reason: {a:?}");
    }
    let a = s.get(&format!("{URI}?{}", drain(&t)), Some(ADMIN));
    assert_eq!(a.status, 200);
    assert_eq!(s.server_state(POOL, SERVERS[0]), "up", "nothing changed");
    // The admin's drain, with the page's token: 303 back, drained.
    let a = s.post(URI, Some(ADMIN), &drain(&t));
    assert_eq!(a.status, 303, "{a:?}");
    let back = a.header("location").expect("a Location").to_owned();
    assert!(back.starts_with(&format!("{URI}?")), "{back}");
    assert_eq!(s.server_state(POOL, SERVERS[0]), "drain");
    let page = s.get(&back, Some(ADMIN));
    assert_eq!(row(&page.body, SERVERS[0]), "drain");
    assert!(page.body.contains("b1: drain done"), "{}", page.body);
    for _ in 0..6 {
        assert_eq!(s.through_frontend().unwrap(), SERVERS[1], "b1 is drained");
    }
    // A weight, then enable again.
    let form = format!(
        "csrf={t}&pool={POOL}&server={}&action=set-weight&weight=5",
        SERVERS[1]
    );
    assert_eq!(s.post(URI, Some(ADMIN), &form).status, 303);
    assert_eq!(s.server_weight(POOL, SERVERS[1]), 5);
    let form = format!("csrf={t}&pool={POOL}&server={}&action=enable", SERVERS[0]);
    assert_eq!(s.post(URI, Some(ADMIN), &form).status, 303);
    assert_eq!(s.server_state(POOL, SERVERS[0]), "up");
    // An unknown server: the reconciler's 404, nothing else changes.
    let form = format!("csrf={t}&pool={POOL}&server=b9&action=maint");
    assert_eq!(s.post(URI, Some(ADMIN), &form).status, 404);
}

#[test]
fn csv_and_json() {
    let s = StatsLab::start().unwrap();
    for _ in 0..4 {
        s.through_frontend().unwrap();
    }
    let csv = s.get(&format!("{URI};csv"), Some(GUEST));
    assert_eq!(csv.status, 200, "{csv:?}");
    let mut lines = csv.body.lines();
    let header = lines.next().unwrap();
    assert_eq!(header, format!("# {HAPROXY_COLUMNS},"));
    let columns: Vec<&str> = HAPROXY_COLUMNS.split(',').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let col =
        |r: &Vec<&str>, name: &str| r[columns.iter().position(|c| *c == name).unwrap()].to_owned();
    for r in &rows {
        assert_eq!(
            r.len(),
            columns.len() + 1,
            "every field ends with a comma: {r:?}"
        );
    }
    let find = |px: &str, sv: &str| {
        rows.iter()
            .find(|r| r[0] == px && r[1] == sv)
            .unwrap_or_else(|| panic!("no row {px},{sv}: {}", csv.body))
    };
    let main = find("main", "FRONTEND");
    assert_eq!(
        (col(main, "status"), col(main, "req_tot")),
        ("OPEN".into(), "4".into())
    );
    assert_eq!(col(main, "hrsp_2xx"), "4");
    assert_eq!(col(find("vip", "FRONTEND"), "mode"), "l4");
    let b1 = find(POOL, SERVERS[0]);
    assert_eq!(
        (col(b1, "status"), col(b1, "type"), col(b1, "weight")),
        ("UP".into(), "2".into(), "1".into())
    );
    let total: u64 = SERVERS
        .iter()
        .map(|n| col(find(POOL, n), "hrsp_2xx").parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, 4);
    assert_eq!(col(find(POOL, "BACKEND"), "status"), "UP");
    let json = s.get(&format!("{URI};json"), Some(GUEST));
    let v: serde_json::Value = serde_json::from_str(&json.body).expect("JSON");
    let pool = v["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == POOL)
        .unwrap();
    assert_eq!(pool["servers"].as_array().unwrap().len(), 2);
    assert_eq!(pool["total"]["responses"][1], 4);
}
