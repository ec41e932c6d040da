//! A frontend's rule lines: `http_request:` (`deny [deny_status N]`,
//! `allow`) and `use_backend:` (`POOL`), each with an optional
//! `if`/`unless` condition; and the rules HAProxy accepts that can never
//! apply (after one that always does).

use super::condition::{Acls, condition};
use super::words::{Line, Word, split};
use crate::diagnostic::Problems;
use crate::positions::YamlPath;
use crate::proxy::*;
use crate::raw::Each;
use crate::validate::pool::Pools;

/// The `http_request:` rules that parsed, each with where it is.
pub(super) fn http_request(
    raw: Vec<Each<String>>,
    at: &YamlPath,
    acls: &mut Acls,
    p: &mut Problems,
) -> Vec<(HttpRequestRule, YamlPath)> {
    each_line(raw, at, p, |words, line| {
        let (action, rest) = action(words, line)?;
        let cond = tail(rest, acls, line)?;
        Some(HttpRequestRule { action, cond })
    })
}

/// The `use_backend:` rules that parsed, each naming a pool of the file.
pub(super) fn use_backend(
    raw: Vec<Each<String>>,
    at: &YamlPath,
    pools: &Pools,
    acls: &mut Acls,
    p: &mut Problems,
) -> Vec<(UseBackend, YamlPath)> {
    each_line(raw, at, p, |words, line| {
        let (first, rest) = words.split_first()?;
        let cond = tail(rest, acls, line);
        let known = pools.check_ref(&first.text, |why| line.error(first, why));
        Some(UseBackend {
            pool: known.then(|| first.text.clone())?,
            cond: cond?,
        })
    })
}

/// Parses each line of a rule list with `rule`, which reports its own
/// problems; an empty or unsplittable line is reported here.
fn each_line<T>(
    raw: Vec<Each<String>>,
    at: &YamlPath,
    p: &mut Problems,
    mut rule: impl FnMut(&[Word], &mut Line) -> Option<T>,
) -> Vec<(T, YamlPath)> {
    let mut out = Vec::new();
    for (i, each) in raw.into_iter().enumerate() {
        let at = at.index(i);
        let Some((text, _)) = each.parse(&at, p) else {
            continue;
        };
        let Some(words) = words(&text, &at, p) else {
            continue;
        };
        let mut line = Line { at: &at, p };
        if let Some(r) = rule(&words, &mut line) {
            out.push((r, at));
        }
    }
    out
}

/// The words of `text`, found at `at`; `None` when empty or broken
/// (reported).
pub(super) fn words(text: &str, at: &YamlPath, p: &mut Problems) -> Option<Vec<Word>> {
    match split(text) {
        Ok(w) if w.is_empty() => {
            p.error(at, "empty line");
            None
        }
        Ok(w) => Some(w),
        Err(e) => {
            p.error_in(at, e.at, &e.raw, e.message);
            None
        }
    }
}

/// `deny [deny_status N]` or `allow`, and the words after it.
fn action<'w>(words: &'w [Word], line: &mut Line) -> Option<(HttpRequestAction, &'w [Word])> {
    let (first, rest) = words.split_first()?;
    match first.text.as_str() {
        "allow" => Some((HttpRequestAction::Allow, rest)),
        "deny" => match rest.split_first() {
            Some((kw, after)) if kw.text == "deny_status" => {
                let Some((n, after)) = after.split_first() else {
                    line.error(kw, "`deny_status` needs a status");
                    return None;
                };
                let status = deny_status(n, line)?;
                Some((HttpRequestAction::Deny { status }, after))
            }
            _ => Some((
                HttpRequestAction::Deny {
                    status: DEFAULT_DENY_STATUS,
                },
                rest,
            )),
        },
        other => {
            line.error(
                first,
                format!(
                    "`{other}` is not supported in http_request; supported: \
                     `deny [deny_status N] [if|unless COND]`, `allow [if|unless COND]`"
                ),
            );
            None
        }
    }
}

/// A status `deny` can answer with.
fn deny_status(w: &Word, line: &mut Line) -> Option<u16> {
    let status = w
        .text
        .parse::<u16>()
        .ok()
        .filter(|s| DENY_STATUSES.contains(s));
    if status.is_none() {
        let list: Vec<String> = DENY_STATUSES.iter().map(u16::to_string).collect();
        line.error(
            w,
            format!("deny_status `{}` is not one of {}", w.text, list.join(", ")),
        );
    }
    status
}

/// What may follow a rule: nothing, or `if`/`unless` and a condition.
/// `Some(None)`: no condition.
fn tail(words: &[Word], acls: &mut Acls, line: &mut Line) -> Option<Option<Condition>> {
    let Some((keyword, rest)) = words.split_first() else {
        return Some(None);
    };
    if keyword.text != "if" && keyword.text != "unless" {
        line.error(
            keyword,
            format!(
                "expected `if` or `unless` before a condition, found `{}`",
                keyword.text
            ),
        );
        return None;
    }
    condition(keyword, rest, acls, line).map(Some)
}

/// Whether a rule with this condition applies to every request: none, or
/// one made of constants that holds (`if TRUE`).
pub(super) fn always(cond: &Option<Condition>) -> bool {
    let Some(c) = cond else { return true };
    let value = |r: &AclRef| match r.acl {
        AclUse::Always(b) => Some(b != r.negated),
        _ => None,
    };
    if c.unless {
        c.any
            .iter()
            .all(|t| t.iter().any(|r| value(r) == Some(false)))
    } else {
        c.any
            .iter()
            .any(|t| t.iter().all(|r| value(r) == Some(true)))
    }
}

/// Rules after one that always applies are never reached (HAProxy takes
/// them silently); returns where that one is.
pub(super) fn warn_unreachable<T>(
    rules: &[(T, YamlPath)],
    cond: impl Fn(&T) -> &Option<Condition>,
    what: &str,
    p: &mut Problems,
) -> Option<YamlPath> {
    let first = rules.iter().position(|(r, _)| always(cond(r)))?;
    let line = p.line_of(&rules[first].1);
    for (_, at) in &rules[first + 1..] {
        p.warning(
            at,
            format!(
                "this {what} rule is never reached: the one at line {line} applies to every request"
            ),
        );
    }
    Some(rules[first].1.clone())
}
