//! The data path loaded into a [`Lab`] from this process, through lb-ctl's
//! library: loader, next-hop resolver and reconciler, as the agent uses them.

use std::{net::IpAddr, time::Duration};

use anyhow::{Context as _, Result};
use lb_agent::neigh::Resolver;
use lb_common::{
    abi::{Addr, BackendId, VipKey},
    consts::{state, vip_flags},
    hash::{flow_hash, ring_slot},
};
use lb_dataplane::{
    Dataplane, Options,
    plan::{self as reconcile, Actual, DesiredBackend, DesiredVip},
};

use crate::lab::{IFNAME, Lab};

/// XDP mode the lab attaches with: native, which veth supports (docs/testing.md).
pub const MODE: lb_dataplane::XdpMode = lb_dataplane::XdpMode::Driver;

/// Keeps `lb_pass` on the bridge-side peer of the LB's veth: a frame sent with
/// `XDP_TX` into a veth is dropped unless the peer runs an XDP program
/// (docs/testing.md, veth gotcha 1; real NICs need nothing of the sort).
pub struct PeerPass {
    _dp: Dataplane,
}

impl PeerPass {
    pub fn attach(lab: &Lab) -> Result<PeerPass> {
        let (sw, peer) = lab.lb_peer();
        let peer = peer.to_owned();
        let mut dp = Dataplane::open(&Options {
            flow_table_size: 1024,
            ..Options::default()
        })
        .context("loading the XDP object for the veth peer")?;
        sw.try_run(|| dp.attach_pass(&peer, MODE))?
            .with_context(|| format!("attaching lb_pass to {peer}"))?;
        Ok(PeerPass { _dp: dp })
    }
}

/// One backend as a test describes it.
#[derive(Clone, Debug)]
pub struct TestBackend {
    pub name: String,
    pub addr: IpAddr,
    pub weight: u32,
    pub state: u32,
}

/// One VIP as a test describes it.
#[derive(Clone, Debug)]
pub struct TestVip {
    pub addr: IpAddr,
    pub port: u16,
    pub proto: u8,
    pub hash_port: bool,
    pub backends: Vec<TestBackend>,
}

impl TestVip {
    /// A TCP VIP over every backend of the lab, weight 1, hashed by source.
    pub fn tcp(lab: &Lab, ipv6: bool, port: u16) -> TestVip {
        TestVip {
            addr: lab.vip(ipv6),
            port,
            proto: 6,
            hash_port: false,
            backends: lab
                .backends()
                .iter()
                .map(|b| TestBackend {
                    name: b.name.clone(),
                    addr: b.ip(ipv6),
                    weight: 1,
                    state: state::UP,
                })
                .collect(),
        }
    }

    pub fn key(&self) -> VipKey {
        VipKey::new(self.addr, self.port, self.proto)
    }
}

/// The load balancer of a lab, run from this process.
pub struct InProcessLb {
    pub dp: Dataplane,
    pub actual: Actual,
    pub vips: Vec<TestVip>,
    /// Next hops resolved once per backend address.
    next_hops: Vec<(IpAddr, reconcile::NextHop)>,
    _peer: PeerPass,
}

impl InProcessLb {
    /// Loads the data path in the lab's LB namespace, attaches it to its
    /// `eth0`, resolves every backend's MAC through the kernel and applies `vips`.
    pub fn start(lab: &Lab, vips: Vec<TestVip>) -> Result<InProcessLb> {
        let peer = PeerPass::attach(lab)?;
        let lb = &lab.lb().ns;
        let mut dp = Dataplane::open(&Options {
            flow_table_size: 65536,
            ..Options::default()
        })
        .context("loading the data path (needs root and BPF)")?;
        lb.try_run(|| dp.attach(IFNAME, MODE))??;
        let addrs: Vec<IpAddr> = {
            let mut a: Vec<IpAddr> = vips
                .iter()
                .flat_map(|v| v.backends.iter().map(|b| b.addr))
                .collect();
            a.sort();
            a.dedup();
            a
        };
        let next_hops = lb.try_run(|| -> Result<Vec<(IpAddr, reconcile::NextHop)>> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let r = Resolver::new()?;
                let mut out = Vec::new();
                for a in addrs {
                    let nh = r
                        .next_hop(a, Some(IFNAME), None, Duration::from_secs(3))
                        .await
                        .with_context(|| format!("next hop for {a}"))?;
                    out.push((a, nh));
                }
                Ok(out)
            })
        })??;
        dp.tick()?;
        let mut lb = InProcessLb {
            dp,
            actual: Actual::default(),
            vips,
            next_hops,
            _peer: peer,
        };
        lb.reconcile()?;
        Ok(lb)
    }

    /// Applies `self.vips` to the maps.
    pub fn reconcile(&mut self) -> Result<usize> {
        let desired: reconcile::Desired = self.vips.iter().map(|v| self.desired(v)).collect();
        let plan = reconcile::plan_full(&self.actual, &desired)?;
        Ok(reconcile::apply(&mut self.dp, &mut self.actual, plan)?)
    }

    fn desired(&self, v: &TestVip) -> DesiredVip {
        DesiredVip {
            key: v.key(),
            flags: if v.hash_port {
                vip_flags::HASH_SRC_PORT
            } else {
                0
            },
            ring_size: lb_common::consts::DEFAULT_RING_SIZE,
            backends: v
                .backends
                .iter()
                .map(|b| DesiredBackend {
                    key: format!("{}", std::net::SocketAddr::new(b.addr, v.port)),
                    addr: Addr::from_ip(b.addr),
                    port: v.port,
                    weight: b.weight,
                    state: b.state,
                    next_hop: self
                        .next_hops
                        .iter()
                        .find(|(a, _)| *a == b.addr)
                        .map(|(_, n)| *n)
                        .unwrap_or_default(),
                })
                .collect(),
        }
    }

    /// Sets the state of backend `name` in every VIP, and applies it.
    pub fn set_state(&mut self, name: &str, s: u32) -> Result<()> {
        for v in &mut self.vips {
            for b in v.backends.iter_mut().filter(|b| b.name == name) {
                b.state = s;
            }
        }
        self.reconcile().map(|_| ())
    }

    /// Name of the backend the ring gives `src:sport` at `vip` (the shared hash
    /// over the ring read back from the kernel — what `lb-ctl explain` does).
    pub fn predict(&self, vip: &TestVip, src: IpAddr, sport: u16) -> Option<String> {
        let v = self.actual.vips.get(&vip.key())?;
        let ring = self.dp.ring(v.id).ok()??;
        let sp = if v.flags & vip_flags::HASH_SRC_PORT != 0 {
            sport.to_be()
        } else {
            0
        };
        let id: BackendId =
            ring[ring_slot(flow_hash(&Addr::from_ip(src), sp), ring.len() as u32) as usize];
        let b = self.actual.backends.get(&id)?;
        let addr = b.addr.to_ip();
        vip.backends
            .iter()
            .find(|tb| tb.addr == addr)
            .map(|tb| tb.name.clone())
    }
}
