//! VRRP families, from the instances' status board (`crate::vrrp::status`):
//! the state as a label, the priority, adverts and refused packets. Every
//! instance has every state and every reason, zeros included, so alerts on
//! `fault` or `auth_password` see a value from the first scrape.

use lb_api::vrrp::{VrrpState, VrrpStatus};

use super::encode::{Family, Labels, counter, gauge};
use crate::vrrp::validate::Reason;

pub(super) fn families(s: &VrrpStatus) -> Vec<Family> {
    let label = |name: &str| -> Labels { vec![("instance", name.to_owned())] };
    let with = |name: &str, key: &'static str, v: &str| {
        let mut l = label(name);
        l.push((key, v.to_owned()));
        l
    };
    let states = s.instances.iter().flat_map(|i| {
        VrrpState::ALL.map(|st| {
            (
                with(&i.name, "state", st.as_str()),
                u64::from(i.state == st),
            )
        })
    });
    let adverts = s.instances.iter().flat_map(|i| {
        [("sent", i.adverts_sent), ("received", i.adverts_received)]
            .map(|(d, n)| (with(&i.name, "direction", d), n))
    });
    let errors = s.instances.iter().flat_map(|i| {
        Reason::ALL.map(|r| {
            let n = i.errors.get(r.as_str()).copied().unwrap_or(0);
            (with(&i.name, "reason", r.as_str()), n)
        })
    });
    let priority = s
        .instances
        .iter()
        .map(|i| (label(&i.name), u64::from(i.effective_priority)));
    vec![
        gauge(
            "lb_vrrp_state",
            "1 for the VRRP instance's state, 0 for the others.",
            states.collect(),
        ),
        gauge(
            "lb_vrrp_priority",
            "The priority the instance advertises (after tracking).",
            priority.collect(),
        ),
        counter(
            "lb_vrrp_adverts",
            "VRRP advertisements sent and accepted.",
            adverts.collect(),
        ),
        counter(
            "lb_vrrp_errors",
            "VRRP packets refused (or, for address_count/address_list, noted), by reason.",
            errors.collect(),
        ),
    ]
}

#[cfg(test)]
pub(super) mod tests {
    use std::collections::BTreeMap;

    use lb_api::vrrp::VrrpInstanceStatus;

    use super::*;

    /// One instance, master, with a wrong password seen twice.
    pub(in crate::metrics) fn fixture() -> VrrpStatus {
        let mut i = VrrpInstanceStatus::configured("VI_1", "eth0", 51, 2, 100, 1000);
        i.state = VrrpState::Master;
        i.effective_priority = 102;
        i.adverts_sent = 7;
        i.adverts_received = 3;
        i.errors = BTreeMap::from([("auth_password".to_owned(), 2)]);
        VrrpStatus { instances: vec![i] }
    }

    #[test]
    fn every_state_and_reason() {
        let out = super::super::encode::text(families(&fixture()));
        for line in [
            r#"lb_vrrp_state{instance="VI_1",state="master"} 1"#,
            r#"lb_vrrp_state{instance="VI_1",state="backup"} 0"#,
            r#"lb_vrrp_priority{instance="VI_1"} 102"#,
            r#"lb_vrrp_adverts_total{instance="VI_1",direction="sent"} 7"#,
            r#"lb_vrrp_errors_total{instance="VI_1",reason="auth_password"} 2"#,
            r#"lb_vrrp_errors_total{instance="VI_1",reason="ttl"} 0"#,
        ] {
            assert!(out.lines().any(|l| l == line), "{line} in\n{out}");
        }
        assert_eq!(out.matches("lb_vrrp_state{").count(), 5);
        assert!(super::super::encode::text(families(&VrrpStatus::default())).trim() == "# EOF");
    }
}
