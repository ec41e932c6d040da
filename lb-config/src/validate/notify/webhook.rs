//! `notify.webhook`: an `http://` or `https://` URL and a timeout.

use super::host::authority;
use super::raw::RawWebhook;
use super::timeout;
use crate::diagnostic::Problems;
use crate::notify::*;
use crate::positions::YamlPath;

/// `webhook:`; `None` when it cannot be used (reported).
pub(super) fn webhook(raw: RawWebhook, at: &YamlPath, p: &mut Problems) -> Option<WebhookConfig> {
    let timeout = timeout(raw.timeout, DEFAULT_WEBHOOK_TIMEOUT, "timeout", at, p);
    let Some(url) = raw.url else {
        p.error(
            at,
            "missing required key `url` (e.g. `http://127.0.0.1:9000/lb-events`)",
        );
        return None;
    };
    match target(&url) {
        Ok(target) => Some(WebhookConfig {
            url,
            target,
            timeout,
        }),
        Err(why) => {
            p.error(&at.key("url"), format!("url `{url}`: {why}"));
            None
        }
    }
}

/// The parts of an `http://` or `https://` URL without credentials or fragment.
fn target(url: &str) -> Result<WebhookTarget, String> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let (tls, rest) = if lower.starts_with("https://") {
        (true, &url[8..])
    } else if lower.starts_with("http://") {
        (false, &url[7..])
    } else {
        return Err("only `http://` and `https://` URLs are supported".into());
    };
    if url.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err("holds a space or control character (percent-encode it)".into());
    }
    if url.contains('#') {
        return Err("a fragment (`#...`) is never sent; remove it".into());
    }
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (auth, path) = rest.split_at(split);
    if auth.contains('@') {
        return Err("credentials do not belong in the URL (the file is not a secret store)".into());
    }
    let (host, port) = authority(auth, if tls { 443 } else { 80 })?;
    let path = match path {
        "" => "/".to_owned(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_owned(),
    };
    Ok(WebhookTarget {
        tls,
        host,
        port,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_their_parts() {
        let t = target("http://127.0.0.1:9000/lb-events?x=1").unwrap();
        assert_eq!(
            (t.tls, t.host.as_str(), t.port, t.path.as_str()),
            (false, "127.0.0.1", 9000, "/lb-events?x=1")
        );
        let t = target("HTTPS://hooks.example.com").unwrap();
        assert_eq!((t.tls, t.port, t.path.as_str()), (true, 443, "/"));
        let t = target("http://[2001:db8::1]/h").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("2001:db8::1", 80));
        for (bad, why) in [
            ("ftp://x/", "only `http://`"),
            ("http://u:p@x/", "credentials"),
            ("http://x/a b", "space"),
            ("http://x/#f", "fragment"),
            ("http:///p", "host name"),
            ("http://x:99999/", "port"),
        ] {
            let e = target(bad).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
