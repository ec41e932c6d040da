//! Reading `Cookie` and `Set-Cookie` header values as HAProxy 2.6 reads
//! them (http_ana.c, the client- and server-side cookie managers): blanks
//! around names, `=` and values ignored; in `Cookie`, both `;` and `,`
//! separate cookies; a double-quoted value may hold separators; a value is
//! kept as sent, quotes included.

use std::ops::Range;

/// One `name[=value]` item of a header value, as byte ranges into it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Item {
    pub(super) name: Range<usize>,
    /// None: no `=` (not a cookie; kept as it is).
    pub(super) value: Option<Range<usize>>,
}

impl Item {
    /// The item's text, blanks around `=` left out.
    pub(super) fn text<'a>(&self, line: &'a [u8]) -> (&'a [u8], Option<&'a [u8]>) {
        (
            &line[self.name.clone()],
            self.value.clone().map(|v| &line[v]),
        )
    }

    /// An RFC 2109 attribute (`$Path`, `$Domain`): it belongs to the cookie
    /// before it.
    pub(super) fn is_attribute(&self, line: &[u8]) -> bool {
        line.get(self.name.start) == Some(&b'$')
    }
}

/// The items of a `Cookie` header value, in order.
pub(super) fn cookie_items(line: &[u8]) -> impl Iterator<Item = Item> + '_ {
    let mut pos = 0;
    let mut first = true;
    std::iter::from_fn(move || {
        if pos >= line.len() {
            return None;
        }
        let start = if first { pos } else { pos + 1 };
        first = false;
        let (item, next) = item_at(line, start, b",;");
        pos = next;
        Some(item)
    })
}

/// The first item of a `Set-Cookie` header value (the rest are its
/// attributes: a comma may appear unquoted in `Expires`).
pub(super) fn set_cookie_item(line: &[u8]) -> Item {
    item_at(line, 0, b";").0
}

/// The item starting at `start` and where the next one's separator is.
fn item_at(line: &[u8], start: usize, separators: &[u8]) -> (Item, usize) {
    let name_beg = skip_blanks(line, start);
    let (mut eq, mut name_end) = (name_beg, name_beg);
    while eq < line.len() && line[eq] != b'=' && !separators.contains(&line[eq]) {
        eq += 1;
        if !is_blank(line[eq - 1]) {
            name_end = eq;
        }
    }
    if line.get(eq) != Some(&b'=') {
        return (
            Item {
                name: name_beg..name_end,
                value: None,
            },
            eq,
        );
    }
    let value_beg = skip_blanks(line, eq + 1);
    let next = value_end(line, value_beg);
    let mut end = next;
    while end > value_beg && is_blank(line[end - 1]) {
        end -= 1;
    }
    (
        Item {
            name: name_beg..name_end,
            value: Some(value_beg..end),
        },
        next,
    )
}

/// Where a cookie value ends: the first `;` or `,` outside double quotes
/// (a backslash inside quotes escapes the next byte), or the end.
fn value_end(line: &[u8], from: usize) -> usize {
    let (mut quoted, mut escaped) = (false, false);
    for (i, &c) in line.iter().enumerate().skip(from) {
        if escaped {
            escaped = false;
        } else if quoted {
            escaped = c == b'\\';
            quoted = c != b'"';
        } else if c == b'"' {
            quoted = true;
        } else if c == b';' || c == b',' {
            return i;
        }
    }
    line.len()
}

fn skip_blanks(line: &[u8], mut at: usize) -> usize {
    while at < line.len() && is_blank(line[at]) {
        at += 1;
    }
    at
}

fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}
