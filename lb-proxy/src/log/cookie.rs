//! The persistence cookie's two letters in an httplog line's termination
//! state (HAProxy's third and fourth characters): what the request's cookie
//! was, then what was done to the response's. A pool without `cookie`, or
//! whose bare `cookie NAME` only reads, keeps `--`, as in HAProxy.

use crate::cookie::SetCookie;
use crate::upstream::Persisted;

/// What the server side tells the log of a pool's persistence cookie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CookieTrace {
    /// What the request's cookie said.
    pub persisted: Persisted,
    /// What the response got; [`SetCookie::None`] until one came.
    pub set: SetCookie,
}

impl CookieTrace {
    pub fn new(persisted: Persisted) -> Self {
        CookieTrace {
            persisted,
            set: SetCookie::None,
        }
    }

    /// The two letters, `server` being the last server tried. HAProxy's
    /// other letters (`E`, `O` and `U` for the request, `U` for the
    /// response) need `maxidle`, `maxlife` or `use-server`, which lb does
    /// not offer.
    pub fn letters(self, server: Option<usize>) -> [u8; 2] {
        let request = match self.persisted {
            Persisted::No => b'N',
            Persisted::Invalid => b'I',
            Persisted::Down(_) => b'D',
            // Its server failed and another took the request (redispatch):
            // HAProxy turns the `V` into a `D` then.
            Persisted::To(s) if server.is_some_and(|t| t != s) => b'D',
            Persisted::To(_) => b'V',
        };
        let response = match self.set {
            SetCookie::None => b'N',
            SetCookie::Provided => b'P',
            SetCookie::Rewritten => b'R',
            SetCookie::Deleted => b'D',
            SetCookie::Inserted => b'I',
        };
        [request, response]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letters(persisted: Persisted, set: SetCookie, server: Option<usize>) -> String {
        let t = CookieTrace { persisted, set };
        String::from_utf8(t.letters(server).to_vec()).unwrap()
    }

    #[test]
    fn each_case_has_haproxys_letters() {
        let cases = [
            // A first visit with `insert`, then the next by the cookie.
            (Persisted::No, SetCookie::Inserted, Some(0), "NI"),
            (Persisted::To(0), SetCookie::None, Some(0), "VN"),
            (Persisted::Invalid, SetCookie::Inserted, Some(1), "II"),
            (Persisted::Down(0), SetCookie::Inserted, Some(1), "DI"),
            // The cookie's server failed; the request went to another.
            (Persisted::To(0), SetCookie::Inserted, Some(1), "DI"),
            // No response: nothing was set.
            (Persisted::To(0), SetCookie::None, None, "VN"),
            (Persisted::No, SetCookie::Provided, Some(0), "NP"),
            (Persisted::To(2), SetCookie::Rewritten, Some(2), "VR"),
            (Persisted::To(2), SetCookie::Deleted, Some(2), "VD"),
        ];
        for (persisted, set, server, want) in cases {
            assert_eq!(
                letters(persisted, set, server),
                want,
                "{persisted:?} {set:?} {server:?}"
            );
        }
    }
}
