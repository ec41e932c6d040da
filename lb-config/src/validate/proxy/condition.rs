//! `if COND` / `unless COND` as HAProxy 2.6 reads them (`parse_acl_cond`,
//! src/acl.c): ACLs side by side are ANDed, `||` or `or` separates ORed
//! groups, `!` negates the next ACL (`!a`, `! a`), `{ … }` is an anonymous
//! ACL. A name is looked up among the frontend's ACLs first, then among
//! HAProxy's predefined ones ([`PREDEFINED`]), so a frontend may redefine
//! one, as in HAProxy. Where HAProxy silently skips a stray `!` or an
//! empty `||` group, lb refuses it.

use super::acl;
use super::words::{Line, Word};
use crate::proxy::{AclRef, AclTest, AclUse, Condition, Fetch, Matcher};

/// HAProxy 2.6's predefined ACLs that lb evaluates (section 7.4 of its
/// manual). Left out: `RDP_COOKIE`, `REQ_CONTENT` and `WAIT_END`, which
/// look at raw TCP buffer contents.
pub(super) const PREDEFINED: [&str; 19] = [
    "TRUE",
    "FALSE",
    "HTTP",
    "HTTP_1.0",
    "HTTP_1.1",
    "HTTP_2.0",
    "HTTP_CONTENT",
    "HTTP_URL_ABS",
    "HTTP_URL_SLASH",
    "HTTP_URL_STAR",
    "LOCALHOST",
    "METH_CONNECT",
    "METH_DELETE",
    "METH_GET",
    "METH_HEAD",
    "METH_OPTIONS",
    "METH_POST",
    "METH_PUT",
    "METH_TRACE",
];

/// The frontend's named ACLs, and which conditions used.
pub(super) struct Acls<'a> {
    /// Names, in the order of `FrontendConfig::acls`.
    pub names: &'a [String],
    pub used: Vec<bool>,
}

/// The condition after `keyword` (`if` or `unless`). `None` after reporting.
pub(super) fn condition(
    keyword: &Word,
    words: &[Word],
    acls: &mut Acls,
    line: &mut Line,
) -> Option<Condition> {
    let mut any: Vec<Vec<AclRef>> = Vec::new();
    let mut term: Vec<AclRef> = Vec::new();
    let mut bang: Option<&Word> = None;
    let mut ok = true;
    let mut i = 0;
    while let Some(w) = words.get(i) {
        i += 1;
        let name = w.text.trim_start_matches('!');
        if name.len() != w.text.len() {
            // Each `!` flips: `!!a` is `a`, as in HAProxy.
            let flips = w.text.len() - name.len();
            bang = match (bang, flips % 2) {
                (None, 1) => Some(w),
                (Some(_), 1) => None,
                (b, _) => b,
            };
        }
        if name.is_empty() {
            continue;
        }
        if name == "||" || name.eq_ignore_ascii_case("or") {
            ok &= close_term(w, &mut term, &mut any, bang.take(), line);
            continue;
        }
        let acl = match name {
            "{" => anonymous(w, words, &mut i, line),
            "}" => {
                line.error(w, "`}` without `{`");
                None
            }
            _ => named(w, name, acls, line),
        };
        match acl {
            Some(acl) => term.push(AclRef {
                negated: bang.take().is_some(),
                acl,
            }),
            None => ok = false,
        }
    }
    if let Some(b) = bang {
        line.error(b, "`!` must come right before an ACL");
        ok = false;
    }
    finish(keyword, words, (term, any), ok, line)
}

/// The condition once every word is read: the last ANDed group closes it.
fn finish(
    keyword: &Word,
    words: &[Word],
    (term, mut any): (Vec<AclRef>, Vec<Vec<AclRef>>),
    ok: bool,
    line: &mut Line,
) -> Option<Condition> {
    if !ok {
        return None;
    }
    if term.is_empty() {
        match (any.is_empty(), words.last()) {
            (false, Some(last)) => line.error(last, "`||` needs an ACL on each side"),
            _ => line.error(keyword, format!("`{}` needs a condition", keyword.text)),
        }
        return None;
    }
    any.push(term);
    Some(Condition {
        unless: keyword.text == "unless",
        any,
    })
}

/// Ends the ANDed group before an `||`; false if there is none.
fn close_term(
    w: &Word,
    term: &mut Vec<AclRef>,
    any: &mut Vec<Vec<AclRef>>,
    bang: Option<&Word>,
    line: &mut Line,
) -> bool {
    if let Some(b) = bang {
        line.error(b, "`!` must come right before an ACL");
        return false;
    }
    if term.is_empty() {
        line.error(w, format!("`{}` needs an ACL on each side", w.text));
        return false;
    }
    any.push(std::mem::take(term));
    true
}

/// `{ FETCH [FLAGS] VALUE... }` starting at the `{` word `open`; `i` is
/// the index after it, moved past the `}`.
fn anonymous(open: &Word, words: &[Word], i: &mut usize, line: &mut Line) -> Option<AclUse> {
    let start = *i;
    let Some(len) = words[start..].iter().position(|w| w.text == "}") else {
        line.error(
            open,
            "missing `}` (braces are words of their own: `{ src 10.0.0.0/8 }`)",
        );
        *i = words.len();
        return None;
    };
    *i = start + len + 1;
    if len == 0 {
        line.error(open, "empty `{ }`: write an ACL line inside");
        return None;
    }
    acl::test(&words[start..start + len], line).map(AclUse::Inline)
}

/// A frontend's ACL, else a predefined one.
fn named(w: &Word, name: &str, acls: &mut Acls, line: &mut Line) -> Option<AclUse> {
    if let Some(i) = acls.names.iter().position(|n| n == name) {
        acls.used[i] = true;
        return Some(AclUse::Named(i));
    }
    match predefined(name, line.place(w)) {
        Some(Ok(acl)) => return Some(acl),
        Some(Err(why)) => line.error(w, why),
        None => {
            let mine = match acls.names {
                [] => "none".to_owned(),
                names => names.join(", "),
            };
            line.error(
                w,
                format!(
                    "unknown ACL `{name}` (this frontend's: {mine}; predefined: {})",
                    PREDEFINED.join(", ")
                ),
            );
        }
    }
    None
}

/// A predefined ACL as the test it stands for (HAProxy 2.6, manual 7.4);
/// `at` is where it is used.
fn predefined(name: &str, at: String) -> Option<Result<AclUse, String>> {
    let test = |fetch, matcher, values: &[&str]| {
        Ok(AclUse::Inline(AclTest {
            fetch,
            matcher,
            ignore_case: false,
            values: values.iter().map(|v| (*v).to_owned()).collect(),
            at: at.clone(),
        }))
    };
    let method = |m: &[&str]| test(Fetch::Method, Matcher::Str, m);
    Some(match name {
        "TRUE" => Ok(AclUse::Always(true)),
        "FALSE" => Ok(AclUse::Always(false)),
        // `req.proto_http`: every request a frontend in HTTP mode routes is.
        "HTTP" => Ok(AclUse::Always(true)),
        "HTTP_1.0" => test(Fetch::ReqVer, Matcher::Str, &["1.0"]),
        "HTTP_1.1" => test(Fetch::ReqVer, Matcher::Str, &["1.1"]),
        "HTTP_2.0" => test(Fetch::ReqVer, Matcher::Str, &["2.0"]),
        // `req.hdr_val(content-length) gt 0`; lb refuses any other form of
        // Content-Length than digits, so "not all zeros" says it.
        "HTTP_CONTENT" => test(
            Fetch::Hdr("content-length".into()),
            Matcher::Reg,
            &["^0*[1-9]"],
        ),
        "HTTP_URL_ABS" => test(Fetch::Url, Matcher::Reg, &["^[^/:]*://"]),
        "HTTP_URL_SLASH" => test(Fetch::Url, Matcher::Beg, &["/"]),
        "HTTP_URL_STAR" => test(Fetch::Url, Matcher::Str, &["*"]),
        "LOCALHOST" => test(Fetch::Src, Matcher::Ip, &["127.0.0.0/8", "::1/128"]),
        "METH_CONNECT" => method(&["CONNECT"]),
        "METH_DELETE" => method(&["DELETE"]),
        "METH_GET" => method(&["GET", "HEAD"]),
        "METH_HEAD" => method(&["HEAD"]),
        "METH_OPTIONS" => method(&["OPTIONS"]),
        "METH_POST" => method(&["POST"]),
        "METH_PUT" => method(&["PUT"]),
        "METH_TRACE" => method(&["TRACE"]),
        "RDP_COOKIE" | "REQ_CONTENT" | "WAIT_END" => Err(format!(
            "predefined ACL `{name}` is not supported: it tests raw TCP buffer contents"
        )),
        _ => return None,
    })
}
