//! One VRRP router described once, written as lb's YAML or as a
//! keepalived.conf, so that both sides of an interop test agree by
//! construction.

use std::net::IpAddr;

use crate::lab::{Lab, VIP4, VIP6};

/// A `vrrp_instance` `VI_1` on `eth0`.
#[derive(Clone, Debug)]
pub struct Router {
    pub version: u8,
    pub vrid: u8,
    pub priority: u8,
    pub advert_ms: u64,
    pub ipv6: bool,
    /// `mcast_src_ip` / `unicast_src_ip`.
    pub source: Option<IpAddr>,
    pub unicast_peers: Vec<IpAddr>,
    /// `auth_type PASS` with this password (v2).
    pub auth: Option<String>,
    pub nopreempt: bool,
}

impl Router {
    pub fn new(version: u8, priority: u8, advert_ms: u64) -> Router {
        Router {
            version,
            vrid: 51,
            priority,
            advert_ms,
            ipv6: false,
            source: None,
            unicast_peers: vec![],
            auth: None,
            nopreempt: false,
        }
    }

    pub fn vip(&self) -> IpAddr {
        if self.ipv6 { VIP6.into() } else { VIP4.into() }
    }

    fn advert_int(&self) -> String {
        format!("{}", self.advert_ms as f64 / 1000.0)
    }

    /// lb's configuration after `agent:`: the XDP data path serving the VIP
    /// on port 80 from the lab's backends, and the instance.
    pub fn lb_yaml(&self, lab: &Lab) -> String {
        let backends: Vec<String> = lab
            .backends()
            .iter()
            .map(|b| format!("{{address: '{}'}}", b.ip(self.ipv6)))
            .collect();
        let mut y = format!(
            "interfaces:\n  - name: eth0\npools:\n  web:\n    backends: [{}]\nservices:\n  - {{name: web, address: '{}', port: 80, pool: web}}\n",
            backends.join(", "),
            self.vip()
        );
        y += &format!(
            "vrrp:\n  instances:\n    VI_1:\n      interface: eth0\n      version: {}\n      virtual_router_id: {}\n      priority: {}\n      advert_int: {}\n      virtual_ipaddress: ['{}']\n      garp_master_delay: 0\n",
            self.version,
            self.vrid,
            self.priority,
            self.advert_int(),
            self.vip()
        );
        if let Some(s) = self.source {
            y += &format!("      mcast_src_ip: '{s}'\n");
        }
        if !self.unicast_peers.is_empty() {
            let p: Vec<String> = self
                .unicast_peers
                .iter()
                .map(|a| format!("'{a}'"))
                .collect();
            y += &format!("      unicast_peer: [{}]\n", p.join(", "));
        }
        if let Some(pass) = &self.auth {
            y += &format!("      authentication: {{auth_type: PASS, auth_pass: '{pass}'}}\n");
        }
        if self.nopreempt {
            y += "      nopreempt: true\n";
        }
        y
    }

    /// The same instance for keepalived (blocks on their own lines: keepalived
    /// 2.2.7 reads only the first keyword of a one-line block).
    pub fn keepalived_conf(&self) -> String {
        let mut c = format!(
            "global_defs {{\n    router_id lbtest\n    vrrp_version {}\n    vrrp_garp_master_delay 0\n}}\n",
            self.version
        );
        c += &format!(
            "vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id {}\n    priority {}\n    advert_int {}\n",
            self.vrid,
            self.priority,
            self.advert_int()
        );
        if let Some(s) = self.source {
            c += &format!("    mcast_src_ip {s}\n");
        }
        if !self.unicast_peers.is_empty() {
            c += "    unicast_peer {\n";
            for p in &self.unicast_peers {
                c += &format!("        {p}\n");
            }
            c += "    }\n";
        }
        if let Some(pass) = &self.auth {
            c += &format!(
                "    authentication {{\n        auth_type PASS\n        auth_pass {pass}\n    }}\n"
            );
        }
        if self.nopreempt {
            c += "    nopreempt\n";
        }
        c += &format!(
            "    virtual_ipaddress {{\n        {}\n    }}\n}}\n",
            self.vip()
        );
        c
    }
}
