//! Durations as written in the file: `250ms`, `10s`, `5m`, `1h`, and combinations
//! such as `1m30s` (units largest first, each at most once, as in HAProxy's
//! `timeout` values and Go's `time.ParseDuration`, minus fractions).

use std::fmt;
use std::time::Duration;

use serde::Serializer;
use serde::de::{self, Deserialize, Deserializer, Visitor};

/// Units from largest to smallest, with their length in milliseconds.
const UNITS: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];

/// Parses `250ms`, `10s`, `5m`, `1h`, `1m30s`, …; the error says what is wrong.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = |why: &str| format!("invalid duration `{text}`: {why}");
    if text.is_empty() {
        return Err(bad("empty"));
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "duration `{text}` has no unit; write e.g. `{text}s` (units: h, m, s, ms)"
        ));
    }
    let mut rest = text;
    let mut total_ms: u64 = 0;
    let mut last_rank: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad("expected a number"));
        }
        let (num, tail) = rest.split_at(digits);
        let letters = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, tail) = tail.split_at(letters);
        if unit.is_empty() && tail.starts_with('.') {
            return Err(bad(
                "fractions are not supported; use a smaller unit (`1500ms`, not `1.5s`)",
            ));
        }
        if unit.is_empty() {
            return Err(bad(&format!("`{num}` has no unit (units: h, m, s, ms)")));
        }
        let Some(rank) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(bad(&format!("unknown unit `{unit}` (units: h, m, s, ms)")));
        };
        if last_rank.is_some_and(|r| rank <= r) {
            return Err(bad(
                "units must go from largest to smallest, each once (e.g. `1m30s`)",
            ));
        }
        last_rank = Some(rank);
        let n: u64 = num.parse().map_err(|_| bad("number too large"))?;
        total_ms = n
            .checked_mul(UNITS[rank].1)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(|| bad("too long"))?;
        rest = tail;
    }
    Ok(Duration::from_millis(total_ms))
}

/// The shortest spelling [`parse_duration`] reads back: `5m`, `1m30s`, `250ms`, `0s`.
/// Sub-millisecond parts are dropped (the file cannot express them).
pub fn format_duration(d: Duration) -> String {
    let mut ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, len) in UNITS {
        if ms >= len {
            out.push_str(&format!("{}{unit}", ms / len));
            ms %= len;
        }
    }
    out
}

/// `serialize_with` helper: a duration as its text form, for JSON output.
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

/// `serde(with)` for a [`Duration`] as its text form, both ways (for the
/// model types persisted as JSON).
pub mod text {
    use std::time::Duration;

    use serde::{Deserialize as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        super::serialize(d, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        super::DurationText::deserialize(d).map(|t| t.0)
    }
}

/// Raw-layer duration: a string parsed while deserializing, so a bad value is
/// reported at its own position with a specific message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DurationText(pub Duration);

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DurationText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as `300s`, `5m` or `1m30s`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationText, E> {
                parse_duration(v).map(DurationText).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DurationText, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DurationText, E> {
                self.visit_str(&v.to_string())
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        let cases: &[(&str, u64, &str)] = &[
            ("250ms", 250, "250ms"),
            ("10s", 10_000, "10s"),
            ("300s", 300_000, "5m"),
            ("5m", 300_000, "5m"),
            ("1h", 3_600_000, "1h"),
            ("1m30s", 90_000, "1m30s"),
            ("1h0m5s", 3_605_000, "1h5s"),
            ("2s500ms", 2_500, "2s500ms"),
            ("0s", 0, "0s"),
        ];
        for (text, ms, canon) in cases {
            let d = parse_duration(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(d, Duration::from_millis(*ms), "{text}");
            assert_eq!(format_duration(d), *canon, "{text}");
            assert_eq!(parse_duration(canon), Ok(d), "{canon} reads back");
        }
    }

    #[test]
    fn rejects_with_reasons() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("300", "has no unit"),
            ("5x", "unknown unit `x`"),
            ("s", "expected a number"),
            ("30s1m", "largest to smallest"),
            ("1s1s", "largest to smallest"),
            ("1.5s", "fractions"),
            ("5 m", "has no unit"),
            ("99999999999999999999s", "too large"),
            ("18446744073709551615h", "too long"),
        ];
        for (text, want) in cases {
            let err = parse_duration(text).expect_err(text);
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
