//! `lb_notifications_total{channel,result}` and
//! `lb_notification_retries_total{channel}`: what the notifier did
//! (`crate::notify`), every series from the first scrape, zeros included.

use super::encode::{Family, Labels, counter};
use crate::notify::Snapshot;

pub(super) fn families(s: &Snapshot) -> Vec<Family> {
    let label = |c: crate::notify::Channel| -> Labels { vec![("channel", c.as_str().to_owned())] };
    let results = s.0.iter().flat_map(|(c, n)| {
        [
            ("sent", n.sent),
            ("failed", n.failed),
            ("dropped", n.dropped),
        ]
        .map(|(result, v)| {
            let mut l = label(*c);
            l.push(("result", result.to_owned()));
            (l, v)
        })
    });
    vec![
        counter(
            "lb_notifications",
            "Notifications by channel and result: events mailed or posted, script runs; \
             dropped: never tried (queue full).",
            results.collect(),
        ),
        counter(
            "lb_notification_retries",
            "Mails and webhook POSTs tried again after a failure that may pass.",
            s.0.iter().map(|(c, n)| (label(*c), n.retries)).collect(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::{Channel, Counters};

    #[test]
    fn every_channel_and_result() {
        let c = Counters::new();
        c.sent(Channel::Email, 3);
        c.retried(Channel::Webhook);
        let out = super::super::encode::text(families(&c.snapshot()));
        for line in [
            r#"lb_notifications_total{channel="email",result="sent"} 3"#,
            r#"lb_notifications_total{channel="script",result="dropped"} 0"#,
            r#"lb_notification_retries_total{channel="webhook"} 1"#,
        ] {
            assert!(out.lines().any(|l| l == line), "{line} in\n{out}");
        }
        assert_eq!(out.matches("lb_notifications_total{").count(), 9);
    }
}
