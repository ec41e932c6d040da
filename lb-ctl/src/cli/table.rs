//! Plain aligned tables and human-readable numbers for the CLI's table output
//! (ipvsadm/`ip` style: no box drawing, two spaces between columns).

use std::{fmt::Write as _, time::Duration};

/// Rows of cells printed in aligned columns.
#[derive(Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    /// Columns aligned to the right (numbers).
    right: Vec<usize>,
    indent: usize,
}

impl Table {
    /// A table with a header line; an empty `header` prints none (key/value lists).
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            ..Table::default()
        }
    }

    /// Aligns these columns (0-based) to the right.
    pub fn right(mut self, columns: &[usize]) -> Table {
        self.right = columns.to_vec();
        self
    }

    /// Indents every line by `n` spaces.
    pub fn indent(mut self, n: usize) -> Table {
        self.indent = n;
        self
    }

    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The lines, each ending in `\n`, without trailing spaces.
    pub fn render(&self) -> String {
        let lines: Vec<&Vec<String>> = std::iter::once(&self.header)
            .filter(|h| !h.is_empty())
            .chain(&self.rows)
            .collect();
        let columns = lines.iter().map(|l| l.len()).max().unwrap_or(0);
        let mut widths = vec![0; columns];
        for line in &lines {
            for (w, cell) in widths.iter_mut().zip(line.iter()) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for line in lines {
            let mut text = " ".repeat(self.indent);
            for (i, cell) in line.iter().enumerate() {
                if i > 0 {
                    text.push_str("  ");
                }
                let pad = widths[i] - cell.chars().count();
                if self.right.contains(&i) {
                    text.push_str(&" ".repeat(pad));
                    text.push_str(cell);
                } else {
                    text.push_str(cell);
                    text.push_str(&" ".repeat(pad));
                }
            }
            let _ = writeln!(out, "{}", text.trim_end());
        }
        out
    }
}

/// Bytes in IEC units, one decimal above 1 KiB: `512 B`, `1.5 KiB`, `20.0 MiB`.
pub fn bytes(n: u64) -> String {
    // Precision lost above 2^53 bytes is invisible at one decimal.
    scaled(n as f64, "B")
}

/// A byte rate: `1.5 KiB/s`.
pub fn byte_rate(per_sec: f64) -> String {
    format!("{}/s", scaled(per_sec, "B"))
}

fn scaled(value: f64, unit: &str) -> String {
    const PREFIXES: [&str; 6] = ["", "Ki", "Mi", "Gi", "Ti", "Pi"];
    let mut v = value;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < PREFIXES.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0} {unit}")
    } else {
        format!("{v:.1} {}{unit}", PREFIXES[i])
    }
}

/// A rate of things per second: `0`, `12.5`, `3400`.
pub fn rate(per_sec: f64) -> String {
    if per_sec >= 100.0 || per_sec == 0.0 {
        format!("{per_sec:.0}")
    } else {
        format!("{per_sec:.1}")
    }
}

/// A duration the way the config file writes it: `300s` → `5m`, `90s` → `1m30s`.
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let mut s = d.as_secs();
    let mut out = String::new();
    for (unit, len) in [("h", 3600), ("m", 60), ("s", 1)] {
        if s >= len {
            let _ = write!(out, "{}{unit}", s / len);
            s %= len;
        }
    }
    out
}

/// The current unix time in seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// How long ago a unix time was, relative to `now`: `42s ago`, `3m ago`.
pub fn ago(then: u64, now: u64) -> String {
    let Some(secs) = now.checked_sub(then) else {
        return "just now".into();
    };
    match secs {
        0..60 => format!("{secs}s ago"),
        60..3600 => format!("{}m ago", secs / 60),
        3600..86400 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86400),
    }
}

/// A unix time in milliseconds, in UTC: `2023-11-14T22:13:20.000Z`.
pub fn utc(ms: u64) -> String {
    let (days, ms) = (ms / 86_400_000, ms % 86_400_000);
    let (y, m, d) = civil(days);
    let s = ms / 1000;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        ms % 1000
    )
}

/// (year, month, day) of a day counted from 1970-01-01, in the Gregorian
/// calendar: years of 400-year eras, counted from March so that the leap day
/// comes last.
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let (era, doe) = (z / 146_097, z % 146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = era * 400 + yoe + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns_without_trailing_spaces() {
        let mut t = Table::new(&["NAME", "WEIGHT", "NOTE"]).right(&[1]);
        t.row(["b1", "100", ""]);
        t.row(["backend-2", "5", "drain"]);
        assert_eq!(
            t.render(),
            "NAME       WEIGHT  NOTE\n\
             b1            100\n\
             backend-2       5  drain\n"
        );
    }

    #[test]
    fn headerless_and_indented() {
        let mut t = Table::new(&[]).indent(2);
        t.row(["agent", "lb 0.1.0"]);
        t.row(["config", "/etc/lb/lb.yaml"]);
        assert_eq!(
            t.render(),
            "  agent   lb 0.1.0\n  config  /etc/lb/lb.yaml\n"
        );
        assert!(Table::new(&["A"]).is_empty());
    }

    #[test]
    fn counts_unicode_width_by_chars() {
        let mut t = Table::new(&["A", "B"]);
        t.row(["é", "x"]);
        assert_eq!(t.render(), "A  B\né  x\n");
    }

    #[test]
    fn human_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(20 * 1024 * 1024), "20.0 MiB");
        assert_eq!(byte_rate(2048.0), "2.0 KiB/s");
        assert_eq!(rate(0.0), "0");
        assert_eq!(rate(12.46), "12.5");
        assert_eq!(rate(3400.2), "3400");
    }

    #[test]
    fn durations_and_ages() {
        assert_eq!(duration(Duration::from_secs(300)), "5m");
        assert_eq!(duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(duration(Duration::from_secs(3661)), "1h1m1s");
        assert_eq!(duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(duration(Duration::ZERO), "0s");
        assert_eq!(ago(100, 142), "42s ago");
        assert_eq!(ago(0, 7200), "2h ago");
        assert_eq!(ago(200, 100), "just now");
    }

    #[test]
    fn utc_times() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(utc(951_868_799_999), "2000-02-29T23:59:59.999Z");
        assert_eq!(utc(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
    }
}
