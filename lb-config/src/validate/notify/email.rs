//! `notify.email`: keepalived's `notification_email`, `_from` and
//! `smtp_server`, plus TLS and authentication for modern relays.

use std::path::Path;

use super::host::{authority, check_name};
use super::raw::RawEmail;
use super::timeout;
use crate::diagnostic::Problems;
use crate::notify::*;
use crate::positions::YamlPath;

/// `email:`; `None` when it cannot be used (reported).
pub(super) fn email(raw: RawEmail, at: &YamlPath, p: &mut Problems) -> Option<EmailConfig> {
    let to = recipients(raw.to, at, p);
    let from = required(
        raw.from,
        "from",
        "the sender, keepalived's notification_email_from",
        at,
        p,
    )
    .filter(|f| mailbox(f, &at.key("from"), p));
    let server = server(raw.smtp_server, at, p);
    let timeout = timeout(
        raw.smtp_connect_timeout,
        DEFAULT_SMTP_TIMEOUT,
        "smtp_connect_timeout",
        at,
        p,
    );
    let starttls = starttls(raw.starttls.as_deref(), at, p);
    let user = raw.username.as_deref();
    let auth_ok = auth(user, raw.password_file.as_deref(), starttls, at, p);
    let names_ok = names(
        raw.helo_name.as_deref(),
        raw.subject_prefix.as_deref(),
        at,
        p,
    );
    let (smtp_host, smtp_port) = server?;
    (auth_ok && names_ok).then_some(())?;
    Some(EmailConfig {
        to: to?,
        from: from?,
        smtp_host,
        smtp_port,
        smtp_connect_timeout: timeout,
        starttls: starttls?,
        username: raw.username,
        password_file: raw.password_file,
        subject_prefix: raw.subject_prefix,
        helo_name: raw.helo_name,
    })
}

/// `smtp_server`: host and port.
fn server(v: Option<String>, at: &YamlPath, p: &mut Problems) -> Option<(String, u16)> {
    let what = "e.g. `127.0.0.1` or `mail.example.com:587`";
    let text = required(v, "smtp_server", what, at, p)?;
    authority(&text, DEFAULT_SMTP_PORT)
        .map_err(|why| p.error(&at.key("smtp_server"), format!("smtp_server {why}")))
        .ok()
}

/// `helo_name` is a host name; `subject_prefix` one line.
fn names(helo: Option<&str>, prefix: Option<&str>, at: &YamlPath, p: &mut Problems) -> bool {
    let mut ok = true;
    if let Some(Err(why)) = helo.map(check_name) {
        p.error(&at.key("helo_name"), format!("helo_name {why}"));
        ok = false;
    }
    if prefix.is_some_and(|s| s.chars().any(char::is_control)) {
        p.error(
            &at.key("subject_prefix"),
            "subject_prefix holds a control character (a line break?)",
        );
        ok = false;
    }
    ok
}

fn required(
    v: Option<String>,
    key: &str,
    what: &str,
    at: &YamlPath,
    p: &mut Problems,
) -> Option<String> {
    if v.is_none() {
        p.error(at, format!("missing required key `{key}` ({what})"));
    }
    v
}

/// `to:`: at least one address, each a mailbox.
fn recipients(v: Option<Vec<String>>, at: &YamlPath, p: &mut Problems) -> Option<Vec<String>> {
    let list = required_list(v, at, p)?;
    let mut ok = true;
    for (i, a) in list.iter().enumerate() {
        ok &= mailbox(a, &at.key("to").index(i), p);
    }
    ok.then_some(list)
}

fn required_list(v: Option<Vec<String>>, at: &YamlPath, p: &mut Problems) -> Option<Vec<String>> {
    match v {
        None => p.error(
            at,
            "missing required key `to` (the recipients, keepalived's notification_email)",
        ),
        Some(l) if l.is_empty() => p.error(&at.key("to"), "to lists no recipient"),
        Some(l) => return Some(l),
    }
    None
}

/// Whether `a` is an address `local@domain` (reported if not).
fn mailbox(a: &str, at: &YamlPath, p: &mut Problems) -> bool {
    const SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~";
    let atext = |c: char| c.is_ascii_alphanumeric() || SPECIALS.contains(c);
    let ok = a.rsplit_once('@').is_some_and(|(local, domain)| {
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && local
                .split('.')
                .all(|w| !w.is_empty() && w.chars().all(atext));
        local_ok && check_name(domain).is_ok()
    });
    if !ok {
        p.error(
            at,
            format!("`{a}` is not an e-mail address (like `ops@example.com`)"),
        );
    }
    ok
}

fn starttls(v: Option<&str>, at: &YamlPath, p: &mut Problems) -> Option<StartTls> {
    let Some(text) = v else {
        return Some(StartTls::Off);
    };
    let found = StartTls::ALL
        .iter()
        .find(|(_, t)| *t == text)
        .map(|(s, _)| *s);
    if found.is_none() {
        p.error(
            &at.key("starttls"),
            format!("starttls `{text}`: expected `off`, `opportunistic` or `required`"),
        );
    }
    found
}

/// `username` and `password_file` go together, over TLS only.
fn auth(
    username: Option<&str>,
    password_file: Option<&Path>,
    tls: Option<StartTls>,
    at: &YamlPath,
    p: &mut Problems,
) -> bool {
    let mut ok = true;
    let mut err = |key: &str, msg: String| {
        p.error(&at.key(key), msg);
        ok = false;
    };
    match (username, password_file) {
        (Some(""), _) => err("username", "username is empty".into()),
        (Some(_), None) => err(
            "username",
            "username needs password_file (a file holding the password; never the password itself)".into(),
        ),
        (None, Some(_)) => err("password_file", "password_file needs username".into()),
        (_, Some(f)) if !f.is_absolute() => err(
            "password_file",
            format!("password_file must be an absolute path, not `{}`", f.display()),
        ),
        (Some(_), Some(_)) if tls.is_some_and(|t| t != StartTls::Required) => err(
            "username",
            "SMTP authentication needs `starttls: required`: the password never goes over a plain connection".into(),
        ),
        _ => {}
    }
    ok
}
