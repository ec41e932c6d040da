//! An ACL line's values compiled for its match method, and the match
//! itself, with HAProxy 2.6's semantics (pattern.c, http_acl.c): `-i`
//! compares ASCII case-insensitively; `dir` and `dom` match whole words
//! between delimiters; `method` compares the eight methods HAProxy knows
//! by identity and others as text.

use std::io::Write as _;
use std::net::IpAddr;

use hyper::http::Method;
use lb_config::proxy::Matcher;
use regex::bytes::{RegexSet, RegexSetBuilder};

use super::fetch::Sample;
use super::nets::Nets;
use super::strings::Strings;

/// Delimiters of `dir` words (HAProxy: `/` and `?`).
const DIR_DELIMS: &[u8] = b"/?";
/// Delimiters of `dom` words (HAProxy: `/`, `?`, `.` and `:`).
const DOM_DELIMS: &[u8] = b"/?.:";
/// The methods HAProxy knows, compared by identity, case included.
const KNOWN_METHODS: [Method; 8] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::CONNECT,
    Method::PUT,
    Method::OPTIONS,
    Method::DELETE,
    Method::TRACE,
];

/// Why an ACL line cannot be compiled.
#[derive(Debug, thiserror::Error)]
pub enum PatternError {
    #[error("`{value}` is not a valid regular expression: {source}")]
    Regex { value: String, source: regex::Error },
    #[error("`{value}` is not an IP address or network: {reason}")]
    Ip { value: String, reason: String },
}

/// One line's values, ready to match.
#[derive(Debug)]
pub(super) enum Patterns {
    /// A line that could not be compiled.
    Never,
    Found,
    Str(Strings),
    Beg(Strings),
    End(Strings),
    Sub {
        pats: Vec<Box<[u8]>>,
        icase: bool,
    },
    Words {
        pats: Vec<Box<[u8]>>,
        icase: bool,
        delims: &'static [u8],
    },
    Reg(RegexSet),
    Ip(Nets),
    /// `method` with the default match: known methods by identity, others as text.
    Method {
        known: Vec<Method>,
        other: Vec<Box<[u8]>>,
        icase: bool,
    },
}

impl Patterns {
    /// `values` compiled for `matcher`; `method` marks the `method` fetch.
    pub(super) fn compile(
        matcher: Matcher,
        icase: bool,
        values: &[String],
        method: bool,
    ) -> Result<Patterns, PatternError> {
        let bytes = || values.iter().map(|v| Box::<[u8]>::from(v.as_bytes()));
        Ok(match matcher {
            Matcher::Found => Patterns::Found,
            Matcher::Str if method => method_patterns(values, icase),
            Matcher::Str => Patterns::Str(Strings::new(bytes(), icase)),
            Matcher::Beg => Patterns::Beg(Strings::new(bytes(), icase)),
            Matcher::End => Patterns::End(Strings::new(bytes(), icase)),
            Matcher::Sub => Patterns::Sub {
                pats: bytes().collect(),
                icase,
            },
            Matcher::Dir => words(values, icase, DIR_DELIMS),
            Matcher::Dom => words(values, icase, DOM_DELIMS),
            Matcher::Reg => Patterns::Reg(regexes(values, icase)?),
            Matcher::Ip => Patterns::Ip(Nets::parse(values)?),
        })
    }

    /// Whether the sample matches one of the values.
    pub(super) fn matches(&self, sample: Sample<'_>) -> bool {
        match (self, sample) {
            (Patterns::Never, _) => false,
            (Patterns::Found, _) => true,
            (Patterns::Ip(nets), Sample::Ip(ip)) => nets.contains(ip),
            (Patterns::Ip(nets), Sample::Bytes(b)) => {
                parse_ip(b).is_some_and(|ip| nets.contains(ip))
            }
            (
                Patterns::Method {
                    known,
                    other,
                    icase,
                },
                Sample::Method(m),
            ) => {
                if KNOWN_METHODS.contains(m) {
                    known.contains(m)
                } else {
                    other.iter().any(|p| eq(p, m.as_str().as_bytes(), *icase))
                }
            }
            (_, Sample::Bytes(b)) => self.matches_bytes(b),
            (_, Sample::Method(m)) => self.matches_bytes(m.as_str().as_bytes()),
            (_, Sample::Ip(ip)) => {
                // A text match on an address: HAProxy compares its text form.
                let mut buf = [0u8; 48];
                let mut w = &mut buf[..];
                let _ = write!(w, "{ip}");
                let len = 48 - w.len();
                self.matches_bytes(&buf[..len])
            }
        }
    }

    fn matches_bytes(&self, s: &[u8]) -> bool {
        match self {
            Patterns::Never => false,
            Patterns::Found => true,
            Patterns::Str(set) => set.contains(s),
            Patterns::Beg(set) => set.prefix_of(s),
            Patterns::End(set) => set.suffix_of(s),
            Patterns::Sub { pats, icase } => pats.iter().any(|p| contains(s, p, *icase)),
            Patterns::Words {
                pats,
                icase,
                delims,
            } => pats.iter().any(|p| has_word(s, p, *icase, delims)),
            Patterns::Reg(set) => set.is_match(s),
            Patterns::Ip(nets) => parse_ip(s).is_some_and(|ip| nets.contains(ip)),
            Patterns::Method { other, icase, .. } => other.iter().any(|p| eq(p, s, *icase)),
        }
    }
}

fn method_patterns(values: &[String], icase: bool) -> Patterns {
    let (mut known, mut other) = (Vec::new(), Vec::new());
    for v in values {
        match KNOWN_METHODS.iter().find(|m| m.as_str() == v) {
            Some(m) => known.push(m.clone()),
            None => other.push(Box::from(v.as_bytes())),
        }
    }
    Patterns::Method {
        known,
        other,
        icase,
    }
}

/// `dir`/`dom` values: delimiters at either end are ignored (HAProxy).
fn words(values: &[String], icase: bool, delims: &'static [u8]) -> Patterns {
    let pats = values
        .iter()
        .map(|v| {
            let v = v.as_bytes();
            let start = v
                .iter()
                .position(|c| !delims.contains(c))
                .unwrap_or(v.len());
            let end = v
                .iter()
                .rposition(|c| !delims.contains(c))
                .map_or(start, |e| e + 1);
            Box::from(&v[start..end])
        })
        .collect();
    Patterns::Words {
        pats,
        icase,
        delims,
    }
}

fn regexes(values: &[String], icase: bool) -> Result<RegexSet, PatternError> {
    RegexSetBuilder::new(values)
        .case_insensitive(icase)
        .build()
        .map_err(|source| {
            let bad = values.iter().find(|v| regex::bytes::Regex::new(v).is_err());
            PatternError::Regex {
                value: bad.or(values.first()).cloned().unwrap_or_default(),
                source,
            }
        })
}

fn parse_ip(s: &[u8]) -> Option<IpAddr> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

fn eq(pat: &[u8], s: &[u8], icase: bool) -> bool {
    if icase {
        pat.eq_ignore_ascii_case(s)
    } else {
        pat == s
    }
}

/// `sub`: the value appears anywhere.
/// An empty value matches nothing (as in HAProxy, which compares its
/// first byte).
fn contains(s: &[u8], pat: &[u8], icase: bool) -> bool {
    if pat.is_empty() || pat.len() > s.len() {
        return false;
    }
    if icase {
        s.windows(pat.len()).any(|w| w.eq_ignore_ascii_case(pat))
    } else {
        memchr::memmem::find(s, pat).is_some()
    }
}

/// `dir`/`dom` (HAProxy's `match_word`): the value appears in `s` as a
/// whole run of words: starting at the beginning or after a delimiter,
/// ending at the end or before one.
fn has_word(s: &[u8], pat: &[u8], icase: bool, delims: &[u8]) -> bool {
    if pat.is_empty() || pat.len() > s.len() {
        return false;
    }
    let mut may_start = true;
    for at in 0..=s.len() - pat.len() {
        let c = s[at];
        if delims.contains(&c) {
            may_start = true;
            continue;
        }
        if may_start {
            let end = at + pat.len();
            if eq(pat, &s[at..end], icase) && (end == s.len() || delims.contains(&s[end])) {
                return true;
            }
        }
        may_start = false;
    }
    false
}
