//! Notifications from a real agent on the netns rig: a real SMTP server
//! (aiosmtpd) gets the mail, a webhook the JSON, scripts their arguments
//! when an operator takes a backend out; and notifiers that hang (an SMTP
//! server and a webhook that never answer, a script that sleeps) delay no
//! state change, while their retries are counted. Needs root.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use lb_tests::{
    agent::Agent,
    lab::{Lab, LabSpec},
    notify::{Hang, HookSink, Scripts, SmtpSink, metric, wait_until},
};

const T: Duration = Duration::from_secs(20);
const SMTP: u16 = 2525;
const HOOK: u16 = 9000;

fn lab() -> Lab {
    Lab::new(LabSpec {
        backends: 2,
        client_aliases: 0,
        ipv6: false,
    })
    .expect("building the lab (needs root)")
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Service `web` over pool `web` (`b1`, `b2`) with the pool's `notify_up`
/// and `notify_down`, then `notify` (indented under `notify:`).
fn config(lab: &Lab, up: &str, down: &str, notify: &str) -> String {
    let mut y = format!(
        "interfaces: [{{name: eth0}}]\npools:\n  web:\n    notify_up: {up}\n    notify_down: {down}\n    backends:\n"
    );
    for b in lab.backends() {
        y += &format!("      - {{name: {}, address: {}}}\n", b.name, b.ipv4);
    }
    y += &format!(
        "services: [{{name: web, address: {}, port: 80, pool: web}}]\nnotify:\n{notify}",
        lab.vip4()
    );
    y
}

/// The state of `web/<backend>` in `lb-ctl status`.
fn state(agent: &Agent, backend: &str) -> String {
    let status = agent.json(&["status"]);
    let pools = status["pools"].as_array().expect("pools");
    let web = pools.iter().find(|p| p["name"] == "web").expect("pool web");
    let b = web["backends"].as_array().expect("backends");
    let b = b.iter().find(|b| b["name"] == backend).expect("backend");
    b["state"].as_str().unwrap_or_default().to_owned()
}

/// Runs `lb-ctl ARGS`, which must succeed; how long it took.
fn timed(agent: &Agent, args: &[&str]) -> Duration {
    let start = Instant::now();
    let out = agent.ctl(args);
    let took = start.elapsed();
    assert!(out.status.success(), "lb-ctl {}: {out:?}", args.join(" "));
    took
}

/// Waits for a `/metrics` sample to reach `at_least`.
fn wait_metric(agent: &Agent, lab: &Lab, sample: &str, at_least: u64) -> u64 {
    wait_until(T, || {
        let text = agent.metrics(lab)?;
        Ok(metric(&text, sample).filter(|v| *v >= at_least))
    })
    .unwrap_or_else(|e| panic!("{sample} >= {at_least}: {e:#}\n{}", agent.log()))
}

#[test]
fn a_backend_in_maintenance_is_mailed_posted_and_scripted_like_keepalived() {
    let lab = lab();
    let ns = &lab.lb().ns;
    let scripts = Scripts::new("deliver").unwrap();
    let smtp = SmtpSink::start(ns, SMTP, &scripts.dir.join("mail")).unwrap();
    // The webhook fails once (503): the POST is tried again.
    let hook = HookSink::start(ns, local(HOOK), &[503, 200]).unwrap();
    let notify = format!(
        "  batch: 300ms\n  retry: {{attempts: 3, backoff: 100ms}}\n  script: {events}\n  \
         email:\n    to: [675583110@qq.com, ops@example.com]\n    from: lb@example.com\n    \
         smtp_server: 127.0.0.1:{SMTP}\n    smtp_connect_timeout: 5s\n    \
         subject_prefix: '[LVS_DEVEL]'\n  webhook: {{url: 'http://127.0.0.1:{HOOK}/lb-events', timeout: 5s}}\n",
        events = scripts.record("events")
    );
    let body = config(
        &lab,
        &scripts.record("up"),
        &scripts.record("down"),
        &notify,
    );
    let agent = Agent::start(&lab, &body).unwrap();
    let b2 = lab.backend("b2").ipv4.to_string();

    agent.json(&["backend", "maint", "web", "b2"]);
    let mails = smtp.wait_for(1, T).unwrap();
    let m = &mails[0];
    assert_eq!(m.from, "lb@example.com");
    assert_eq!(m.to, ["675583110@qq.com", "ops@example.com"]);
    assert_eq!(
        m.header("Subject"),
        Some("[LVS_DEVEL] web/b2 maint (set by an operator)")
    );
    for h in ["Date", "Message-ID", "From", "To"] {
        assert!(m.header(h).is_some(), "no {h}: in\n{}", m.data);
    }
    assert!(
        m.body
            .contains(" GMT  backend web/b2 up -> maint: set by an operator\n"),
        "{}",
        m.data
    );

    let posted = hook.wait_for(1, T).unwrap();
    let e = &posted[0]["events"][0];
    assert_eq!(
        (&e["type"], &e["pool"], &e["backend"], &e["to"]),
        (
            &"backend_state".into(),
            &"web".into(),
            &"b2".into(),
            &"maint".into()
        )
    );
    assert_eq!(hook.requests(), 2, "503, then tried again");

    let line = &scripts.wait_lines("events", 1, T).unwrap()[0];
    assert_eq!(line, "BACKEND web/b2 MAINT UP operator");
    let down = &scripts.wait_lines("down", 1, T).unwrap()[0];
    assert_eq!(down, &format!("web b2 {b2} - MAINT"));

    agent.json(&["backend", "enable", "web", "b2"]);
    let up = &scripts.wait_lines("up", 1, T).unwrap()[0];
    assert_eq!(up, &format!("web b2 {b2} - UP"));
    let mails = smtp.wait_for(2, T).unwrap();
    assert_eq!(
        mails[1].header("Subject"),
        Some("[LVS_DEVEL] web/b2 up (set by an operator)")
    );
    wait_metric(
        &agent,
        &lab,
        r#"lb_notifications_total{channel="email",result="sent"}"#,
        2,
    );
    wait_metric(
        &agent,
        &lab,
        r#"lb_notifications_total{channel="script",result="sent"}"#,
        4,
    );
    let retries = r#"lb_notification_retries_total{channel="webhook"}"#;
    assert_eq!(wait_metric(&agent, &lab, retries, 1), 1);
}

#[test]
fn hung_notifiers_delay_no_state_change_and_their_retries_are_counted() {
    let lab = lab();
    let ns = &lab.lb().ns;
    let scripts = Scripts::new("hang").unwrap();
    let smtp = Hang::start(ns, local(SMTP)).unwrap();
    let hook = Hang::start(ns, local(HOOK)).unwrap();
    let notify = format!(
        "  batch: 100ms\n  retry: {{attempts: 3, backoff: 100ms}}\n  script_timeout: 30s\n  \
         script: {sleeper}\n  email:\n    to: [ops@example.com]\n    from: lb@example.com\n    \
         smtp_server: 127.0.0.1:{SMTP}\n    smtp_connect_timeout: 1s\n  \
         webhook: {{url: 'http://127.0.0.1:{HOOK}/', timeout: 1s}}\n",
        sleeper = scripts.sleeper()
    );
    let body = config(&lab, &scripts.sleeper(), &scripts.sleeper(), &notify);
    let agent = Agent::start(&lab, &body).unwrap();

    let took = timed(&agent, &["backend", "drain", "web", "b1"]);
    assert!(took < Duration::from_millis(500), "drain took {took:?}");
    assert_eq!(state(&agent, "b1"), "drain");
    // Every notifier is now stuck on that change...
    wait_until(T, || {
        Ok((smtp.accepted() > 0 && hook.accepted() > 0).then_some(()))
    })
    .expect("the agent reached the hung SMTP server and webhook");
    wait_until(T, || {
        Ok(scripts.dir.join("sleeper.pid").exists().then_some(()))
    })
    .expect("the sleeping script started");
    // ...and the next change is as quick, data path included.
    let took = timed(&agent, &["backend", "maint", "web", "b2"]);
    assert!(took < Duration::from_millis(500), "maint took {took:?}");
    assert_eq!(state(&agent, "b2"), "maint");
    assert!(
        smtp.accepted() >= 1 && hook.accepted() >= 1,
        "the servers are still hanging"
    );

    // Each try times out after 1 s and is tried again.
    for channel in ["email", "webhook"] {
        let sample = format!(r#"lb_notification_retries_total{{channel="{channel}"}}"#);
        wait_metric(&agent, &lab, &sample, 1);
    }
    let failed = r#"lb_notifications_total{channel="email",result="failed"}"#;
    wait_metric(&agent, &lab, failed, 1);
    let log = agent.log();
    assert!(
        log.contains("notification failed, trying again"),
        "retries are logged:\n{log}"
    );
}
