//! Dates in the local time zone, as HAProxy writes them: the log line's
//! `[30/Nov/2026:03:22:29.863]`, RFC 3164's `Nov 30 03:22:29` and RFC
//! 5424's `2026-11-30T03:22:29.865701+00:00`.

use std::time::{SystemTime, UNIX_EPOCH};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A moment broken down in local time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Local {
    pub year: i32,
    /// 0 = January.
    pub month: usize,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub micros: u32,
    /// Seconds east of UTC.
    pub offset: i64,
}

impl Local {
    /// `t` in the process's time zone (`TZ`, else /etc/localtime).
    pub fn of(t: SystemTime) -> Local {
        let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = libc::time_t::try_from(since.as_secs()).unwrap_or(libc::time_t::MAX);
        // SAFETY: `tm` is plain data that localtime_r fills; both pointers
        // are valid for the call, and localtime_r keeps neither.
        let tm = unsafe {
            let mut tm: libc::tm = std::mem::zeroed();
            if libc::localtime_r(&secs, &mut tm).is_null() {
                return Local::utc(since.as_secs(), since.subsec_micros());
            }
            tm
        };
        Local {
            year: tm.tm_year + 1900,
            month: usize::try_from(tm.tm_mon).unwrap_or(0).min(11),
            day: u32::try_from(tm.tm_mday).unwrap_or(1),
            hour: u32::try_from(tm.tm_hour).unwrap_or(0),
            minute: u32::try_from(tm.tm_min).unwrap_or(0),
            second: u32::try_from(tm.tm_sec).unwrap_or(0),
            micros: since.subsec_micros(),
            offset: tm.tm_gmtoff,
        }
    }

    /// UTC, computed (for when the C library cannot say).
    fn utc(secs: u64, micros: u32) -> Local {
        let days = (secs / 86_400) as i64;
        let rest = secs % 86_400;
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as usize;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        Local {
            year,
            month: month - 1,
            day,
            hour: (rest / 3600) as u32,
            minute: (rest / 60 % 60) as u32,
            second: (rest % 60) as u32,
            micros,
            offset: 0,
        }
    }

    /// `30/Nov/2026:03:22:29.863` (the log line's date).
    pub fn clf(&self) -> String {
        format!(
            "{:02}/{}/{}:{:02}:{:02}:{:02}.{:03}",
            self.day,
            MONTHS[self.month],
            self.year,
            self.hour,
            self.minute,
            self.second,
            self.micros / 1000
        )
    }

    /// `Nov 30 03:22:29`, the day padded with a space (RFC 3164 §4.1.2).
    pub fn rfc3164(&self) -> String {
        format!(
            "{} {:2} {:02}:{:02}:{:02}",
            MONTHS[self.month], self.day, self.hour, self.minute, self.second
        )
    }

    /// `2026-11-30T03:22:29.865701+00:00` (RFC 5424 §6.2.3).
    pub fn iso(&self) -> String {
        let sign = if self.offset < 0 { '-' } else { '+' };
        let off = self.offset.unsigned_abs();
        format!(
            "{}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}{sign}{:02}:{:02}",
            self.year,
            self.month + 1,
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.micros,
            off / 3600,
            off / 60 % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_written_as_haproxy_writes_them() {
        let t = Local::utc(1_796_008_949, 863_123);
        assert_eq!(t.clf(), "30/Nov/2026:03:22:29.863");
        assert_eq!(t.rfc3164(), "Nov 30 03:22:29");
        assert_eq!(t.iso(), "2026-11-30T03:22:29.863123+00:00");
        let early = Local { day: 3, ..t };
        assert_eq!(early.rfc3164(), "Nov  3 03:22:29");
        let east = Local {
            offset: 5 * 3600 + 1800,
            ..t
        };
        assert!(east.iso().ends_with("+05:30"), "{}", east.iso());
        assert_eq!(Local::utc(951_782_400, 0).clf(), "29/Feb/2000:00:00:00.000");
    }
}
