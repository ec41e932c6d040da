//! One ACL line, `FETCH [FLAGS] VALUE...`, as HAProxy 2.6 reads it
//! (`parse_acl_expr`, src/acl.c): the fetch with its match suffix, then
//! flags up to the first value (`-i`, `-m METHOD`, `--`), then values; a
//! word after the first value is a value, even `-i`.
//!
//! Supported fetches are those of HAProxy's list that lb evaluates (see
//! [`FETCHES`]); `_len`, converters, `-f` files and the rest are refused
//! with what to write instead.

use std::net::IpAddr;

use super::words::{Line, Word};
use crate::proxy::{AclTest, Fetch, IpNet, Matcher, check_header_name, check_param_name, is_token};

/// The fetches, as the message listing them reads.
const FETCHES: &str = "path, url, urlp(NAME) (alias url_param(NAME)), hdr(NAME) \
     (alias req.hdr(NAME)), each also with _beg, _end, _sub, _dir, _dom or _reg \
     (not url_param); method; src; req.ver (alias req_ver)";

/// The match methods `-m` takes.
const METHODS: &str = "str, beg, end, sub, dir, dom, reg, ip, found";

/// The eight methods HAProxy knows by name: it compares them exactly, even
/// under `-i`, so a lowercase `get` never matches a GET request.
const KNOWN_METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "CONNECT", "TRACE",
];

/// The fetch of an ACL line, before its values.
struct Criterion {
    fetch: Fetch,
    matcher: Matcher,
}

/// Reads the ACL line `words` (at least one word). `None` after reporting.
pub(super) fn test(words: &[Word], line: &mut Line) -> Option<AclTest> {
    let (first, rest) = words.split_first()?;
    let Criterion { fetch, matcher } = match criterion(&first.text) {
        Ok(c) => c,
        Err(why) => {
            line.error(first, why);
            return None;
        }
    };
    let flags = flags(rest, matcher, line)?;
    let matcher = flags.matcher;
    check_pairing(&fetch, matcher, first, line)?;
    let mut ignore_case = flags.ignore_case;
    if ignore_case && fetch == Fetch::Src {
        line.warning(
            first,
            "`-i` means nothing to `src` (an address) and is ignored",
        );
        ignore_case = false;
    }
    let rest = &rest[flags.words..];
    let values = values(rest, (&fetch, matcher, ignore_case), flags.ended, line)?;
    if values.is_empty() && matcher != Matcher::Found {
        line.error(
            first,
            format!(
                "`{}` has no value to match, so it would never match (HAProxy only warns); \
                 give values, or `-m found` to test presence",
                first.text
            ),
        );
        return None;
    }
    Some(AclTest {
        fetch,
        matcher,
        ignore_case,
        values,
        at: line.place(first),
    })
}

/// What the flags of a line say.
struct Flags {
    matcher: Matcher,
    ignore_case: bool,
    /// `--` was given: every word after it is a value.
    ended: bool,
    /// Words taken by the flags.
    words: usize,
}

/// The flags at the start of `words`, over the fetch's own `matcher`.
fn flags(words: &[Word], matcher: Matcher, line: &mut Line) -> Option<Flags> {
    let mut f = Flags {
        matcher,
        ignore_case: false,
        ended: false,
        words: 0,
    };
    while let Some(w) = words.get(f.words).filter(|w| w.text.starts_with('-')) {
        f.words += 1;
        match w.text.as_str() {
            "-i" => f.ignore_case = true,
            "--" => {
                f.ended = true;
                break;
            }
            "-m" => {
                let Some(m) = words.get(f.words) else {
                    line.error(w, format!("`-m` needs a match method: {METHODS}"));
                    return None;
                };
                f.words += 1;
                f.matcher = match_method(m, line)?;
            }
            flag => {
                line.error(w, flag_error(flag));
                return None;
            }
        }
    }
    Some(f)
}

/// The fetch word: `path_beg`, `hdr(host)`, `urlp_reg(id)`, `method`, …
fn criterion(word: &str) -> Result<Criterion, String> {
    let (name, arg) = match word.split_once('(') {
        None if word.contains(',') => return Err(converter_error(word)),
        None => (word, None),
        Some((name, rest)) => match rest.split_once(')') {
            Some((arg, "")) => (name, Some(arg)),
            Some((_, tail)) if tail.starts_with(',') => return Err(converter_error(word)),
            _ => return Err(format!("`{word}`: expected `{name}(NAME)`")),
        },
    };
    // Only path, url, urlp and hdr have suffixed forms; the others keep `str`.
    let (base, matcher) = split_suffix(name);
    let fetch = match (base, arg) {
        ("path", None) => Fetch::Path,
        ("url", None) => Fetch::Url,
        ("urlp", Some(a)) => Fetch::UrlParam(param_name(a)?),
        ("url_param", Some(a)) => Fetch::UrlParam(param_name(a)?),
        ("hdr" | "req.hdr", Some(a)) => Fetch::Hdr(header_name(a)?),
        ("method", None) => Fetch::Method,
        ("src", None) => {
            return Ok(Criterion {
                fetch: Fetch::Src,
                matcher: Matcher::Ip,
            });
        }
        ("req.ver" | "req_ver", None) => Fetch::ReqVer,
        ("urlp" | "url_param" | "hdr" | "req.hdr", None) => {
            return Err(format!("`{name}` needs a name: `{name}(NAME)`"));
        }
        ("path" | "url" | "method" | "src" | "req.ver" | "req_ver", Some(_)) => {
            return Err(format!("`{base}` takes no argument: write `{name}` alone"));
        }
        _ => return Err(unknown_fetch(name)),
    };
    Ok(Criterion { fetch, matcher })
}

/// `path_beg` → (`path`, beg); `path` → (`path`, str).
fn split_suffix(name: &str) -> (&str, Matcher) {
    const SUFFIXES: [(&str, Matcher); 6] = [
        ("_beg", Matcher::Beg),
        ("_end", Matcher::End),
        ("_sub", Matcher::Sub),
        ("_dir", Matcher::Dir),
        ("_dom", Matcher::Dom),
        ("_reg", Matcher::Reg),
    ];
    for (suffix, m) in SUFFIXES {
        if let Some(base) = name.strip_suffix(suffix)
            && matches!(base, "path" | "url" | "urlp" | "hdr")
        {
            return (base, m);
        }
    }
    (name, Matcher::Str)
}

fn unknown_fetch(name: &str) -> String {
    if name.ends_with("_len") {
        return format!(
            "`{name}`: matching a length (`_len`) is not supported; supported: {FETCHES}"
        );
    }
    format!("unknown or unsupported fetch `{name}`; supported: {FETCHES}")
}

fn converter_error(word: &str) -> String {
    format!("`{word}`: converters (`,lower`, …) are not supported; use `-i` for case")
}

fn header_name(arg: &str) -> Result<String, String> {
    if arg.contains(',') {
        return Err(format!(
            "`hdr({arg})`: an occurrence (`hdr(NAME,N)`) is not supported; every value is tested"
        ));
    }
    check_header_name(arg)?;
    Ok(arg.to_ascii_lowercase())
}

fn param_name(arg: &str) -> Result<String, String> {
    if arg.contains(',') {
        return Err(format!(
            "`{arg}`: a delimiter argument is not supported; write `urlp(NAME)`"
        ));
    }
    check_param_name(arg)?;
    Ok(arg.to_owned())
}

/// The word after `-m`.
fn match_method(w: &Word, line: &mut Line) -> Option<Matcher> {
    if let Some(m) = Matcher::ALL.iter().copied().find(|m| m.as_str() == w.text) {
        return Some(m);
    }
    let why = match w.text.as_str() {
        "bool" | "int" | "len" | "bin" => {
            format!(
                "match method `{}` is not supported; supported: {METHODS}",
                w.text
            )
        }
        other => format!("unknown match method `{other}`; supported: {METHODS}"),
    };
    line.error(w, why);
    None
}

fn flag_error(flag: &str) -> String {
    match flag {
        "-f" | "-M" => {
            format!("`{flag}` (patterns from a file) is not supported: list the values in the line")
        }
        "-n" | "-u" => format!("`{flag}` is not supported (and not needed: no names are resolved)"),
        _ => format!(
            "`{flag}` is not an ACL flag (flags: -i, -m METHOD, --); write `--` before a value \
             that starts with `-`"
        ),
    }
}

/// `src` is an address, everything else text.
fn check_pairing(fetch: &Fetch, matcher: Matcher, first: &Word, line: &mut Line) -> Option<()> {
    let why = match (fetch, matcher) {
        (_, Matcher::Found) | (Fetch::Src, Matcher::Ip) => return Some(()),
        (Fetch::Src, m) => format!(
            "`src` is an address: match it against networks (the default) or with `-m found`, \
             not `-m {m}` (HAProxy's string forms of an address are not supported)"
        ),
        (_, Matcher::Ip) => format!(
            "`-m ip` needs an address, and `{}` is text; only `src` is matched as an address",
            first.text
        ),
        _ => return Some(()),
    };
    line.error(first, why);
    None
}

/// The values of a line, checked for the fetch and matcher: regexes
/// compile, networks parse, methods are tokens. Each bad one is reported.
fn values(
    words: &[Word],
    (fetch, matcher, ignore_case): (&Fetch, Matcher, bool),
    ended_flags: bool,
    line: &mut Line,
) -> Option<Vec<String>> {
    if matcher == Matcher::Found {
        if let Some(w) = words.first() {
            line.warning(
                w,
                "values after `-m found` are ignored: it only tests presence",
            );
        }
        return Some(Vec::new());
    }
    let mut out = Vec::new();
    let mut ok = true;
    for w in words {
        if !ended_flags && matches!(w.text.as_str(), "-i" | "-m" | "--") {
            line.warning(
                w,
                format!(
                    "`{}` after a value is matched as the value `{0}`, not a flag; put flags \
                     before the first value (or `--` first to mean the value)",
                    w.text
                ),
            );
        }
        match value(w, fetch, matcher, ignore_case) {
            Ok(Some(v)) => out.push(v),
            Ok(None) => ok = false,
            Err(why) => {
                line.error(w, why);
                ok = false;
            }
        }
        if let Some(warning) = method_warning(fetch, matcher, w) {
            line.warning(w, warning);
        }
    }
    ok.then_some(out)
}

/// One value as the model keeps it.
fn value(
    w: &Word,
    fetch: &Fetch,
    matcher: Matcher,
    ignore_case: bool,
) -> Result<Option<String>, String> {
    match matcher {
        Matcher::Reg => regex::RegexBuilder::new(&w.text)
            .case_insensitive(ignore_case)
            .build()
            .map(|_| Some(w.text.clone()))
            .map_err(|e| regex_error(&w.text, &e)),
        Matcher::Ip => network(&w.text).map(|n| Some(n.to_string())),
        _ if *fetch == Fetch::Method && !is_token(&w.text) => Err(format!(
            "`{}` is not a method (letters, digits and !#$%&'*+-.^_`|~)",
            w.text
        )),
        _ => Ok(Some(w.text.clone())),
    }
}

/// The regex crate's message is several lines with a caret; keep its last.
fn regex_error(text: &str, e: &regex::Error) -> String {
    let detail = e.to_string();
    let why = detail
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid");
    format!(
        "regex `{text}` does not compile: {} (the regex crate's syntax: no look-around or \
         backreferences)",
        why.trim().trim_start_matches("error: ")
    )
}

/// A `src` value: an address or a network.
fn network(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>().map_err(|why| {
        let addr = text.split('/').next().unwrap_or(text);
        if addr.parse::<IpAddr>().is_err() {
            format!(
                "`{addr}` is not an IP address: write a full address or network (10.0.0.0/8); \
                 host names and HAProxy's short forms (10.12/8) are not accepted"
            )
        } else {
            why
        }
    })
}

/// A method written in lowercase never matches the method HAProxy knows by
/// name (it compares those exactly, whatever `-i` says).
fn method_warning(fetch: &Fetch, matcher: Matcher, w: &Word) -> Option<String> {
    let upper = w.text.to_ascii_uppercase();
    (*fetch == Fetch::Method
        && matcher == Matcher::Str
        && upper != w.text
        && KNOWN_METHODS.contains(&upper.as_str()))
    .then(|| {
        format!(
            "methods are case-sensitive: `{}` matches only a request sent with `{0}`, never {upper} \
             (HAProxy never matches {upper} with it, even with -i); write {upper}",
            w.text
        )
    })
}
