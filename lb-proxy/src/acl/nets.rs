//! Networks for `src` and other `ip` matches, with HAProxy 2.6's rules
//! across families (pattern.c `pat_match_ip`): an IPv4 client matches
//! IPv4 networks and, as `::ffff:a.b.c.d`, IPv6 ones; an IPv6 client
//! matches IPv6 networks and, when it carries an IPv4 address (mapped
//! `::ffff:a.b.c.d`, compatible `::a.b.c.d`, 6to4 `2002:AABB:CCDD::`),
//! IPv4 ones. Networks are grouped by prefix length, each group sorted, so
//! a lookup is one binary search per distinct length, however many
//! networks there are.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lb_config::proxy::IpNet;

use super::pattern::PatternError;

#[derive(Debug)]
pub(crate) struct Nets {
    v4: Family,
    v6: Family,
}

/// One family's networks: per prefix length, its mask and the masked
/// addresses (right-aligned in 128 bits), sorted.
#[derive(Debug)]
struct Family {
    width: u8,
    groups: Vec<(u128, Vec<u128>)>,
}

impl Nets {
    pub(super) fn parse(values: &[String]) -> Result<Nets, PatternError> {
        let nets = values
            .iter()
            .map(|v| {
                v.parse().map_err(|reason| PatternError::Ip {
                    value: v.clone(),
                    reason,
                })
            })
            .collect::<Result<Vec<IpNet>, _>>()?;
        Ok(Nets::new(&nets))
    }

    /// The set of `nets` (a frontend's `src_deny`, `src_allow`).
    pub(crate) fn new(nets: &[IpNet]) -> Nets {
        let mut set = Nets {
            v4: Family::new(32),
            v6: Family::new(128),
        };
        for net in nets {
            match net.addr {
                IpAddr::V4(a) => set.v4.insert(u32::from(a).into(), net.prefix),
                IpAddr::V6(a) => set.v6.insert(a.into(), net.prefix),
            }
        }
        set
    }

    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => {
                self.v4.has(u32::from(a).into()) || self.v6.has(a.to_ipv6_mapped().into())
            }
            IpAddr::V6(a) => {
                self.v6.has(a.into())
                    || embedded_v4(a).is_some_and(|v4| self.v4.has(u32::from(v4).into()))
            }
        }
    }
}

impl Family {
    fn new(width: u8) -> Family {
        Family {
            width,
            groups: Vec::new(),
        }
    }

    fn insert(&mut self, addr: u128, prefix: u8) {
        let mask = self.mask(prefix.min(self.width));
        let at = match self.groups.iter().position(|(m, _)| *m == mask) {
            Some(at) => at,
            None => {
                self.groups.push((mask, Vec::new()));
                self.groups.len() - 1
            }
        };
        let nets = &mut self.groups[at].1;
        if let Err(pos) = nets.binary_search(&(addr & mask)) {
            nets.insert(pos, addr & mask);
        }
    }

    fn has(&self, addr: u128) -> bool {
        self.groups
            .iter()
            .any(|(mask, nets)| nets.binary_search(&(addr & mask)).is_ok())
    }

    /// The mask of a `/prefix`, right-aligned in the family's width.
    fn mask(&self, prefix: u8) -> u128 {
        let ones = u128::MAX >> (128 - u32::from(self.width));
        ones & !ones.checked_shr(u32::from(prefix)).unwrap_or(0)
    }
}

/// The IPv4 address an IPv6 address carries, if any, the way HAProxy
/// reads it (note `::1` counts as the IPv4-compatible `0.0.0.1`).
fn embedded_v4(a: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = a.segments();
    let o = a.octets();
    if s[..4] == [0; 4] && (s[4..6] == [0, 0] || s[4..6] == [0, 0xffff]) {
        Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]))
    } else if s[0] == 0x2002 {
        Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]))
    } else {
        None
    }
}
