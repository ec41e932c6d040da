//! Header layouts and the one bounds-checked accessor every packet read goes through.

use aya_ebpf::{helpers::generated::bpf_xdp_load_bytes, programs::XdpContext};

pub const ETH_HLEN: usize = 14;
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86DD;
pub const ETH_P_8021Q: u16 = 0x8100;

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_ACK: u8 = 0x10;

/// IPv4 "more fragments" flag and fragment offset mask (host order).
pub const IP_MF: u16 = 0x2000;
pub const IP_OFFSET: u16 = 0x1fff;

#[repr(C)]
pub struct EthHdr {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    pub proto: u16,
}

#[repr(C)]
pub struct VlanHdr {
    pub tci: u16,
    pub proto: u16,
}

#[repr(C)]
pub struct Ipv4Hdr {
    pub version_ihl: u8,
    pub tos: u8,
    pub tot_len: u16,
    pub id: u16,
    pub frag_off: u16,
    pub ttl: u8,
    pub proto: u8,
    pub check: u16,
    pub src: u32,
    pub dst: u32,
}

#[repr(C)]
pub struct Ipv6Hdr {
    pub vtc_flow: u32,
    pub payload_len: u16,
    pub next_hdr: u8,
    pub hop_limit: u8,
    pub src: [u32; 4],
    pub dst: [u32; 4],
}

/// First two bytes of every IPv6 extension header we walk.
#[repr(C)]
pub struct Ipv6ExtHdr {
    pub next_hdr: u8,
    pub hdr_len: u8,
}

/// The part of TCP and UDP headers both start with.
#[repr(C)]
pub struct Ports {
    pub src: u16,
    pub dst: u16,
}

#[repr(C)]
pub struct TcpHdr {
    pub src: u16,
    pub dst: u16,
    pub seq: u32,
    pub ack: u32,
    /// Data offset (high nibble) and reserved bits.
    pub doff: u8,
    pub flags: u8,
    pub window: u16,
    pub check: u16,
    pub urg: u16,
}

#[repr(C)]
pub struct UdpHdr {
    pub src: u16,
    pub dst: u16,
    pub len: u16,
    pub check: u16,
}

#[repr(C)]
pub struct IcmpHdr {
    pub kind: u8,
    pub code: u8,
    pub check: u16,
    pub rest: u32,
}

/// Pointer to a `T` at `off` bytes into the packet, or `None` when the packet is
/// shorter. The only way this crate reads packet memory.
#[inline(always)]
pub fn ptr_at<T>(ctx: &XdpContext, off: usize) -> Option<*mut T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + off + size_of::<T>() > end {
        return None;
    }
    Some((start + off) as *mut T)
}

/// Copy of a `T` at `off`.
///
/// A plain (aligned) load, as C XDP programs do: headers sit at 2-byte-aligned
/// offsets at worst, and the kernel only permits BPF programs packet access it
/// can perform (misaligned loads are fine where the CPU handles them, x86 and
/// arm64; elsewhere the verifier refuses the program rather than fault). An
/// unaligned read would make the BPF backend split every field into byte loads,
/// which costs more than the rest of the parser.
#[inline(always)]
pub fn read<T>(ctx: &XdpContext, off: usize) -> Option<T> {
    let p = ptr_at::<T>(ctx, off)?;
    // SAFETY: `ptr_at` checked that `size_of::<T>()` bytes at `p` lie inside the
    // packet; see above on alignment.
    Some(unsafe { p.read() })
}

/// Whether the frame is at least `end` bytes long. A bounds comparison,
/// not `data_end - data`: subtracting packet pointers is refused to
/// programs loaded without `CAP_PERFMON`.
#[inline(always)]
pub fn fits(ctx: &XdpContext, end: usize) -> bool {
    ctx.data() + end <= ctx.data_end()
}

/// Ones'-complement sum of the IPv4 header is 0xffff when its checksum is right
/// (RFC 1071). `ihl` is in 32-bit words, already checked to be 5..=15. The
/// fixed 20 bytes are summed from one bounds-checked read; options, rare, are
/// copied with one helper call into a zeroed buffer and summed whole
/// (no loop over a variable count: that made the verifier explore a branch per
/// word and give up without `CAP_PERFMON`).
#[inline(always)]
pub fn ipv4_header_ok(ctx: &XdpContext, l3: usize, ihl: usize) -> bool {
    let Some(base) = read::<[u32; 5]>(ctx, l3) else {
        return false;
    };
    let mut sum: u64 =
        base[0] as u64 + base[1] as u64 + base[2] as u64 + base[3] as u64 + base[4] as u64;
    if ihl > 5 {
        // 4..=40 bytes; written so that the verifier sees 4..=64 without
        // having to follow `ihl > 5` into the arithmetic.
        let len = (((ihl - 6) & 0xf) + 1) * 4;
        // Zeroed with volatile stores: a zeroing loop LLVM would turn into a
        // call to compiler_builtins' `memset`, whose variable stack offsets
        // the verifier refuses without `CAP_PERFMON`.
        let mut opts = core::mem::MaybeUninit::<[u64; 8]>::uninit();
        let words = opts.as_mut_ptr().cast::<u64>();
        let mut i = 0;
        while i < 8 {
            // SAFETY: word `i < 8` of our buffer.
            unsafe { core::ptr::write_volatile(words.add(i), 0) };
            i += 1;
        }
        // SAFETY: the helper writes at most `len` (<= 64) bytes into `opts`,
        // 64 bytes on our stack; it fails if the frame is shorter.
        let rc = unsafe { bpf_xdp_load_bytes(ctx.ctx, (l3 + 20) as u32, words.cast(), len as u32) };
        if rc != 0 {
            return false;
        }
        // SAFETY: all 8 words were written above.
        for w in unsafe { opts.assume_init() } {
            sum += (w & 0xffff_ffff) + (w >> 32);
        }
    }
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum == 0xffff
}
