//! The other way a server dies: it stops answering at all (a host that
//! froze, a cable pulled) rather than refusing. An nftables set in the
//! servers' namespace drops every packet to the servers in it, so a check's
//! SYN gets no answer and the check fails only at its timeout.

use anyhow::{Context as _, Result};

use super::layout::Server;
use crate::netns::NetNs;

const TABLE: &str = "lb_bench_health";

/// The table and its (initially empty) set; removed on drop.
pub struct Blackhole {
    ns: String,
}

impl Blackhole {
    /// Installs the table in `ns` (needs `nft`, Debian's nftables).
    pub fn install(ns: &NetNs) -> Result<Blackhole> {
        let script = format!(
            "table inet {TABLE} {{\n\
               set dead {{ type ipv4_addr . inet_service; }}\n\
               chain input {{\n\
                 type filter hook input priority filter; policy accept;\n\
                 ip daddr . tcp dport @dead drop\n\
               }}\n\
             }}\n"
        );
        let file = std::env::temp_dir().join(format!("lb-bench-health-{}.nft", std::process::id()));
        std::fs::write(&file, script).with_context(|| format!("writing {}", file.display()))?;
        let r = ns.exec(&["nft", "-f", &file.to_string_lossy()]);
        let _ = std::fs::remove_file(&file);
        r.context("installing the black-hole table (is nftables installed?)")?;
        Ok(Blackhole {
            ns: ns.name().to_owned(),
        })
    }

    /// From now on, every packet to `servers` is dropped (one transaction).
    pub fn swallow(&self, servers: &[Server]) -> Result<()> {
        let elements: Vec<String> = servers
            .iter()
            .map(|s| format!("{} . {}", s.addr(), s.port()))
            .collect();
        let set = format!("{{ {} }}", elements.join(", "));
        NetNs::open(&self.ns)?
            .exec(&["nft", "add", "element", "inet", TABLE, "dead", &set])
            .map(drop)
    }

    /// Every server answers again.
    pub fn release(&self) -> Result<()> {
        NetNs::open(&self.ns)?
            .exec(&["nft", "flush", "set", "inet", TABLE, "dead"])
            .map(drop)
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        if let Ok(ns) = NetNs::open(&self.ns) {
            let _ = ns.exec(&["nft", "delete", "table", "inet", TABLE]);
        }
    }
}
