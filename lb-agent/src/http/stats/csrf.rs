//! The token that proves an admin action was posted from a page this agent
//! served to that user (cross-site request forgery): an HMAC-SHA256, keyed
//! with a secret drawn at the agent's start, of the user and the hour. A
//! token holds for the rest of its hour and the next one; a restart voids
//! every token (the page is reloaded and gets a new one).

use ring::hmac;
use ring::rand::{SecureRandom as _, SystemRandom};

/// How long one window lasts; a token is good in its window and the next.
const WINDOW_SECS: u64 = 3600;

/// The per-agent key.
pub struct Csrf {
    key: hmac::Key,
}

/// Why a token was refused (the 403's reason).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the form has no csrf token: reload the page and try again")]
    Missing,
    #[error(
        "the csrf token is not valid (expired, from another agent or another user): reload the page and try again"
    )]
    Invalid,
}

impl Csrf {
    /// A fresh random key; fails only if the system has no randomness.
    pub fn new() -> Result<Csrf, ring::error::Unspecified> {
        let mut secret = [0u8; 32];
        SystemRandom::new().fill(&mut secret)?;
        Ok(Csrf {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
        })
    }

    /// The token for `user` at unix time `now`.
    pub fn token(&self, user: &str, now: u64) -> String {
        hex(hmac::sign(&self.key, &message(user, now / WINDOW_SECS)).as_ref())
    }

    /// Checks `token` (from the form) for `user` at `now`, in constant time.
    pub fn check(&self, user: &str, token: Option<&str>, now: u64) -> Result<(), Refused> {
        let token = token.filter(|t| !t.is_empty()).ok_or(Refused::Missing)?;
        let tag = unhex(token).ok_or(Refused::Invalid)?;
        let window = now / WINDOW_SECS;
        let ok = [window, window.saturating_sub(1)]
            .iter()
            .any(|w| hmac::verify(&self.key, &message(user, *w), &tag).is_ok());
        if ok { Ok(()) } else { Err(Refused::Invalid) }
    }
}

/// The user and the window, unambiguous (a user name has no NUL).
fn message(user: &str, window: u64) -> Vec<u8> {
    let mut m = user.as_bytes().to_vec();
    m.push(0);
    m.extend_from_slice(&window.to_be_bytes());
    m
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_holds_for_its_user_and_about_an_hour() {
        let c = Csrf::new().unwrap();
        let now = 1_700_000_000;
        let t = c.token("admin", now);
        assert_eq!(t.len(), 64);
        assert_eq!(c.check("admin", Some(&t), now), Ok(()));
        assert_eq!(c.check("admin", Some(&t), now + WINDOW_SECS), Ok(()));
        assert_eq!(
            c.check("admin", Some(&t), now + 2 * WINDOW_SECS),
            Err(Refused::Invalid),
            "expired"
        );
        assert_eq!(c.check("guest", Some(&t), now), Err(Refused::Invalid));
        assert_eq!(c.check("admin", None, now), Err(Refused::Missing));
        assert_eq!(c.check("admin", Some(""), now), Err(Refused::Missing));
        assert_eq!(c.check("admin", Some("zz"), now), Err(Refused::Invalid));
        let mut forged = t.clone();
        forged.replace_range(0..2, if &t[0..2] == "00" { "01" } else { "00" });
        assert_eq!(c.check("admin", Some(&forged), now), Err(Refused::Invalid));
        let other = Csrf::new().unwrap();
        assert_eq!(
            other.check("admin", Some(&t), now),
            Err(Refused::Invalid),
            "another agent's"
        );
    }
}
