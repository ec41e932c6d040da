//! An ACL or rule line cut into words as HAProxy 2.6 cuts a configuration
//! line (`parse_line`, src/tools.c): blanks separate words; `'…'` quotes
//! everything; `"…"` and bare text take the escapes `\ `, `\\`, `\'`,
//! `\"`, `\#`, `\t`, `\n`, `\r`, `\xHH` (and `\$` inside `"…"`); any other
//! backslash stays, so `path_reg ^/v\d+/` means what it says. HAProxy's
//! `"$VAR"` expansion is not done. A `#` is literal: YAML has already
//! taken comments out.
//!
//! Each word keeps where it starts and how it was written, so a problem
//! with it is reported at its column ([`Line`]).

use crate::diagnostic::Problems;
use crate::positions::YamlPath;

/// One word of a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Word {
    /// The word, quotes and escapes resolved.
    pub text: String,
    /// Byte offset of its first character in the line.
    pub start: usize,
    /// As written (quotes and backslashes included).
    pub raw: String,
}

/// A line being checked: where it is, and the sink its problems go to, at
/// the column of the word they concern.
pub(super) struct Line<'a, 'p> {
    pub at: &'a YamlPath,
    pub p: &'a mut Problems<'p>,
}

impl Line<'_, '_> {
    pub fn error(&mut self, w: &Word, message: impl Into<String>) {
        self.p.error_in(self.at, w.start, &w.raw, message);
    }

    pub fn warning(&mut self, w: &Word, message: impl Into<String>) {
        self.p.warning_in(self.at, w.start, &w.raw, message);
    }

    /// `file:line:col` of `w`.
    pub fn place(&self, w: &Word) -> String {
        self.p.place_of(self.at, w.start, &w.raw)
    }
}

/// Where a line cannot be cut: byte offset and why.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct SplitError {
    pub at: usize,
    pub raw: String,
    pub message: String,
}

/// The words of `line`.
pub(super) fn split(line: &str) -> Result<Vec<Word>, SplitError> {
    let mut words = Vec::new();
    let mut chars = line.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c == ' ' || c == '\t' {
            chars.next();
            continue;
        }
        let mut text = String::new();
        let mut quote: Option<(char, usize)> = None;
        let mut end = line.len();
        while let Some(&(i, c)) = chars.peek() {
            match (quote, c) {
                (None, ' ' | '\t') => {
                    end = i;
                    break;
                }
                (None, '\'' | '"') => quote = Some((c, i)),
                (Some((q, _)), c) if c == q => quote = None,
                (Some(('\'', _)), c) => text.push(c),
                (_, '\\') => {
                    chars.next();
                    escape(line, i, &mut chars, quote.is_some(), &mut text)?;
                    continue;
                }
                (_, c) => text.push(c),
            }
            chars.next();
        }
        if let Some((q, at)) = quote {
            return Err(SplitError {
                at,
                raw: q.to_string(),
                message: format!("unterminated quote {q}: close it, or escape it as \\{q}"),
            });
        }
        words.push(Word {
            text,
            start,
            raw: line[start..end].to_owned(),
        });
    }
    Ok(words)
}

/// Resolves the escape whose backslash is at `at` (already consumed).
fn escape(
    line: &str,
    at: usize,
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
    in_double_quotes: bool,
    text: &mut String,
) -> Result<(), SplitError> {
    let resolved = match chars.peek().map(|&(_, c)| c) {
        Some(c @ (' ' | '\t' | '\\' | '#' | '\'' | '"')) => c,
        Some('$') if in_double_quotes => '$',
        Some('t') => '\t',
        Some('n') => '\n',
        Some('r') => '\r',
        Some('x') => return hex_escape(line, at, chars, text),
        _ => {
            // Not an escape: the backslash stays (`\d` in a regex).
            text.push('\\');
            return Ok(());
        }
    };
    chars.next();
    text.push(resolved);
    Ok(())
}

/// `\xHH`: two hex digits, the byte they spell (as a character: HAProxy's
/// lines are bytes, lb's are UTF-8, so only ASCII is accepted).
fn hex_escape(
    line: &str,
    at: usize,
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
    text: &mut String,
) -> Result<(), SplitError> {
    let digits = line
        .get(at + 2..at + 4)
        .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()));
    let byte = digits
        .and_then(|d| u8::from_str_radix(d, 16).ok())
        .filter(u8::is_ascii);
    let Some(byte) = byte else {
        return Err(SplitError {
            at,
            raw: line[at..].chars().take(4).collect(),
            message: "`\\x` takes two hex digits of an ASCII character (e.g. \\x20)".to_owned(),
        });
    };
    for _ in 0..3 {
        chars.next();
    }
    text.push(char::from(byte));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(line: &str) -> Vec<String> {
        split(line)
            .expect(line)
            .into_iter()
            .map(|w| w.text)
            .collect()
    }

    #[test]
    fn words_are_cut_as_haproxy_cuts_them() {
        let cases: &[(&str, &[&str])] = &[
            (
                "path_beg -i /static /images",
                &["path_beg", "-i", "/static", "/images"],
            ),
            ("  a\t b  ", &["a", "b"]),
            (r"hdr(x) a\ b", &["hdr(x)", "a b"]),
            (r#"hdr(x) "a b" 'c d'"#, &["hdr(x)", "a b", "c d"]),
            (r#"x "a"'b'c"#, &["x", "abc"]),
            (r"path_reg ^/v\d+/", &["path_reg", r"^/v\d+/"]),
            (r"x 'a\ b'", &["x", r"a\ b"]),
            (
                r#"x "a\"b" a\\b \x41 \t"#,
                &["x", "a\"b", r"a\b", "A", "\t"],
            ),
            (r#"x "\$" \$"#, &["x", "$", r"\$"]),
            ("x ''", &["x", ""]),
            ("", &[]),
        ];
        for (line, want) in cases {
            assert_eq!(texts(line), *want, "{line}");
        }
    }

    #[test]
    fn words_know_where_they_are() {
        let w = split(r#"a  "b c" d\ e"#).expect("split");
        let at: Vec<(usize, &str)> = w.iter().map(|w| (w.start, w.raw.as_str())).collect();
        assert_eq!(at, [(0, "a"), (3, "\"b c\""), (9, r"d\ e")]);
    }

    #[test]
    fn broken_quotes_and_escapes_are_located() {
        let e = split("a 'b c").expect_err("quote");
        assert_eq!((e.at, e.raw.as_str()), (2, "'"));
        let e = split(r"a \xZZ").expect_err("hex");
        assert_eq!((e.at, e.raw.as_str()), (2, r"\xZZ"));
        assert!(split(r"a \xC3").is_err(), "not ASCII");
    }
}
