//! What loading the data path needs from the kernel and the process:
//! capabilities and the kernel version, checked up front so a missing one is
//! named instead of surfacing as a verifier log (docs/datapath.md,
//! "Capabilities").

/// A capability the data path needs, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cap {
    pub name: &'static str,
    bit: u32,
    pub why: &'static str,
}

/// `CAP_SYS_ADMIN` implies `CAP_BPF` and `CAP_PERFMON` (the kernel checks
/// `bpf_capable()`/`perfmon_capable()`), never `CAP_NET_ADMIN`.
const CAP_SYS_ADMIN: u32 = 21;

/// Exactly what `Dataplane::open` needs, with the reason for each.
pub const NEEDED: [Cap; 3] = [
    Cap {
        name: "CAP_BPF",
        bit: 39,
        why: "creating maps and loading programs",
    },
    Cap {
        name: "CAP_NET_ADMIN",
        bit: 12,
        why: "creating the device map for redirects, attaching XDP",
    },
    Cap {
        name: "CAP_PERFMON",
        bit: 38,
        why: "the XDP program reads packet headers at offsets known only at run \
              time (after a VLAN tag, IPv4 options, IPv6 extension headers), \
              which the verifier allows only with it",
    },
];

/// The capabilities in [`NEEDED`] that the effective set `eff` lacks.
pub fn missing(eff: u64) -> Vec<Cap> {
    let has = |bit: u32| eff & (1u64 << bit) != 0;
    let covered = |c: &Cap| has(c.bit) || (c.name != "CAP_NET_ADMIN" && has(CAP_SYS_ADMIN));
    NEEDED.iter().copied().filter(|c| !covered(c)).collect()
}

/// This process's effective capabilities (`CapEff` of `/proc/self/status`).
pub fn effective() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// The first kernel with BPF load-acquire and store-release (ISA v4 atomics
/// the data path's ordering is built on).
pub const MIN_KERNEL: (u32, u32) = (6, 15);

/// `major.minor` of a kernel release string (`6.18.44-fc-v669`).
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.trim().split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

/// The running kernel's release string.
pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_capabilities_by_name() {
        let bit = |n: u32| 1u64 << n;
        let names = |eff| missing(eff).iter().map(|c| c.name).collect::<Vec<_>>();
        assert!(names(bit(39) | bit(12) | bit(38)).is_empty());
        assert_eq!(names(bit(39) | bit(12)), ["CAP_PERFMON"]);
        assert_eq!(names(0), ["CAP_BPF", "CAP_NET_ADMIN", "CAP_PERFMON"]);
        // CAP_SYS_ADMIN stands in for CAP_BPF and CAP_PERFMON only.
        assert_eq!(names(bit(21)), ["CAP_NET_ADMIN"]);
        assert!(names(bit(21) | bit(12)).is_empty());
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(kernel_version("6.18.44-fc-v669"), Some((6, 18)));
        assert_eq!(kernel_version("6.1.0-28-amd64\n"), Some((6, 1)));
        assert_eq!(kernel_version("6.15"), Some((6, 15)));
        assert_eq!(kernel_version("x"), None);
        assert!(kernel_version("6.1.0").unwrap() < MIN_KERNEL);
        assert!(kernel_version("6.15.0").unwrap() >= MIN_KERNEL);
        assert!(kernel_version("7.0.1").unwrap() >= MIN_KERNEL);
    }
}
