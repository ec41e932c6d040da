//! A frontend's refusals of abusive clients, compiled: the source deny and
//! allow lists and the rate limits, checked at accept (lists, `conn_rate`,
//! `conn_cur`) and at each request (`http_req_rate`), before any rule.
//! The counters live in a [`RateTable`] kept across reloads while the
//! period and table size stay the same.

mod table;

use std::net::IpAddr;
use std::sync::Arc;

use lb_config::proxy::{RateLimit, RateReply, Reject};
use tokio::time::Instant;

use crate::acl::Nets;
pub use table::{RateTable, Seen, Source};

/// Why a connection or request was refused; the order of the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// `src_deny`, or not in `src_allow`.
    DenyList,
    ConnRate,
    ConnCur,
    HttpReqRate,
}

impl Reason {
    pub const ALL: [Reason; 4] = [
        Reason::DenyList,
        Reason::ConnRate,
        Reason::ConnCur,
        Reason::HttpReqRate,
    ];

    /// As the metrics and `lb-ctl` write it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::DenyList => "deny_list",
            Reason::ConnRate => "conn_rate",
            Reason::ConnCur => "conn_cur",
            Reason::HttpReqRate => "http_req_rate",
        }
    }
}

/// One frontend's refusals.
#[derive(Debug, Default)]
pub struct Guard {
    deny: Option<Nets>,
    allow: Option<Nets>,
    limits: Option<Limits>,
}

#[derive(Debug)]
struct Limits {
    cfg: RateLimit,
    table: Arc<RateTable>,
    /// Time zero of the table's clock.
    epoch: Instant,
}

/// A connection counted in its source's `conn_cur` while it lives.
#[derive(Debug)]
pub struct Tracked {
    table: Arc<RateTable>,
    src: Source,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.table.close(self.src);
    }
}

impl Guard {
    /// The guard of `cfg`; `before` is the same frontend's before a
    /// reload, whose counts go on when the table's shape is unchanged.
    pub fn new(cfg: &Reject, before: Option<&Guard>) -> Guard {
        let nets = |list: &[_]| (!list.is_empty()).then(|| Nets::new(list));
        Guard {
            deny: nets(&cfg.src_deny),
            allow: cfg.src_allow.as_deref().map(Nets::new),
            limits: cfg.rate_limit.as_ref().map(|rl| {
                let kept = before
                    .and_then(|b| b.limits.as_ref())
                    .filter(|l| l.cfg.period == rl.period && l.cfg.table_size == rl.table_size);
                match kept {
                    Some(l) => Limits {
                        cfg: rl.clone(),
                        table: l.table.clone(),
                        epoch: l.epoch,
                    },
                    None => Limits {
                        cfg: rl.clone(),
                        table: Arc::new(RateTable::new(rl.table_size, ms(rl.period))),
                        epoch: Instant::now(),
                    },
                }
            }),
        }
    }

    /// Whether a connection from `ip` may be served: Ok with what tracks
    /// it (None without rate limits), or why not.
    pub fn accept(&self, ip: IpAddr) -> Result<Option<Tracked>, Reason> {
        let listed = self.deny.as_ref().is_some_and(|d| d.contains(ip))
            || self.allow.as_ref().is_some_and(|a| !a.contains(ip));
        if listed {
            return Err(Reason::DenyList);
        }
        let Some(l) = &self.limits else {
            return Ok(None);
        };
        let src = Source::of(ip);
        let seen = l.table.connect(src, l.now());
        let tracked = Tracked {
            table: l.table.clone(),
            src,
        };
        let over = |limit: Option<u32>, n: u32| limit.is_some_and(|max| n > max);
        if over(l.cfg.conn_rate, seen.conn_rate) {
            Err(Reason::ConnRate)
        } else if over(l.cfg.conn_cur, seen.conn_cur) {
            Err(Reason::ConnCur)
        } else {
            Ok(Some(tracked))
        }
    }

    /// A request from `ip`: None to serve it, or the answer when its
    /// source is over `http_req_rate`.
    pub fn request(&self, ip: IpAddr) -> Option<RateReply> {
        let l = self.limits.as_ref()?;
        let max = l.cfg.http_req_rate?;
        let rate = l.table.request(Source::of(ip), l.now());
        (rate > max).then_some(l.cfg.reply)
    }
}

impl Limits {
    fn now(&self) -> u64 {
        ms(self.epoch.elapsed())
    }
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn guard(yaml_like: Reject) -> Guard {
        Guard::new(&yaml_like, None)
    }

    fn limits(conn_rate: Option<u32>, conn_cur: Option<u32>, req: Option<u32>) -> Reject {
        Reject {
            rate_limit: Some(RateLimit {
                period: Duration::from_secs(10),
                conn_rate,
                http_req_rate: req,
                conn_cur,
                table_size: 100,
                reply: RateReply::Status(429),
            }),
            ..Reject::default()
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn lists_refuse_at_accept() {
        let g = guard(Reject {
            src_deny: vec!["10.1.0.0/16".parse().unwrap()],
            src_allow: Some(vec!["10.0.0.0/8".parse().unwrap()]),
            rate_limit: None,
        });
        assert!(matches!(g.accept(ip("10.2.0.1")), Ok(None)));
        assert_eq!(g.accept(ip("10.1.0.1")).unwrap_err(), Reason::DenyList);
        assert_eq!(g.accept(ip("192.0.2.1")).unwrap_err(), Reason::DenyList);
        assert_eq!(
            g.accept(ip("::ffff:10.1.0.1")).unwrap_err(),
            Reason::DenyList,
            "a mapped client is matched as IPv4"
        );
        assert!(g.request(ip("10.2.0.1")).is_none(), "no request limit");
    }

    #[tokio::test(start_paused = true)]
    async fn connection_limits_refuse_the_one_over_and_recover() {
        let g = guard(limits(Some(3), Some(2), None));
        let a = ip("192.0.2.1");
        let first = g.accept(a).unwrap();
        let _second = g.accept(a).unwrap();
        assert_eq!(g.accept(a).unwrap_err(), Reason::ConnCur);
        drop(first);
        // The refused attempt counted: the fourth in the period is over.
        assert_eq!(g.accept(a).unwrap_err(), Reason::ConnRate);
        assert!(g.accept(ip("192.0.2.2")).is_ok(), "another source");
        // Two periods later the rate has faded out.
        tokio::time::advance(Duration::from_secs(20)).await;
        assert!(g.accept(a).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn requests_over_the_rate_get_the_reply() {
        let g = guard(limits(None, None, Some(2)));
        let a = ip("2001:db8::1");
        assert_eq!(g.request(a), None);
        assert_eq!(g.request(ip("2001:db8::2")), None, "the same /64");
        assert_eq!(g.request(a), Some(RateReply::Status(429)));
        assert_eq!(g.request(ip("2001:db8:0:1::1")), None, "another /64");
    }

    #[tokio::test(start_paused = true)]
    async fn a_reload_keeps_counts_unless_the_table_changes() {
        let cfg = limits(None, None, Some(1));
        let g = guard(cfg.clone());
        let a = ip("192.0.2.9");
        g.request(a);
        let mut stricter = cfg.clone();
        stricter.rate_limit.as_mut().unwrap().reply = RateReply::Close;
        let kept = Guard::new(&stricter, Some(&g));
        assert_eq!(kept.request(a), Some(RateReply::Close), "the count went on");
        let mut resized = cfg;
        resized.rate_limit.as_mut().unwrap().table_size = 200;
        let fresh = Guard::new(&resized, Some(&kept));
        assert_eq!(fresh.request(a), None, "a new table starts at zero");
    }
}
