//! The seccomp filter of a proxy core thread: a short classic-BPF program
//! that answers EPERM to a fixed list of system calls (and to raw and
//! packet sockets) and lets everything else through. A deny list, not an
//! allow list: the proxy's calls (epoll, sockets, reads and writes, timers,
//! futexes, memory) come from tokio, std and the allocator and change with
//! them; an allow list would break on an upgrade, while what is denied
//! here is never the proxy's business.
//!
//! Denied calls fail with EPERM rather than killing the process: the same
//! process runs the data path and VRRP, which must outlive a confused
//! thread.

use std::io;

/// What the proxy threads never do.
const DENIED: &[libc::c_long] = &[
    // BPF: programs, maps, and the pinned maps of the data path.
    libc::SYS_bpf,
    // Other processes' memory and execution.
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    // Running another program.
    libc::SYS_execve,
    libc::SYS_execveat,
    // Namespaces and the file system tree.
    libc::SYS_setns,
    libc::SYS_unshare,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_mount_setattr,
    // The kernel itself.
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_perf_event_open,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_userfaultfd,
    // io_uring can open sockets and files outside this filter's sight.
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
];

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7;

/// x32 system calls carry this bit on x86_64; they are refused whole, so
/// no call slips past the list under its x32 number.
#[cfg(target_arch = "x86_64")]
const X32_BIT: u32 = 0x4000_0000;
#[cfg(target_arch = "aarch64")]
const X32_BIT: u32 = u32::MAX;

/// Offsets in `struct seccomp_data`: the call's number, its architecture,
/// and the low 32 bits of its first two arguments (little-endian).
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARG0_LO: u32 = 16;
const ARG1_LO: u32 = 24;

const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
/// `SOCK_TYPE_MASK`: the type without `SOCK_NONBLOCK`/`SOCK_CLOEXEC`.
const SOCK_TYPE_MASK: u32 = 0xf;

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// The program. Its layout, so the jump offsets can be checked by eye:
///
/// ```text
///  0..=2  load arch;  != AUDIT_ARCH -> EPERM (its own return)
///  3      load nr
///  4      nr >= X32_BIT -> deny
///  5..s   nr == DENIED[i] -> deny                  (one line each)
///  s      nr == socket -> s+2, else s+1: allow
///  s+2    load domain; == AF_PACKET -> deny
///  s+4    load type, & mask; == SOCK_RAW -> deny
///  s+7    allow
///  s+8    deny (the last instruction)
/// ```
pub(super) fn program() -> Vec<libc::sock_filter> {
    use libc::{
        BPF_ABS, BPF_ALU, BPF_AND, BPF_JEQ, BPF_JGE, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W,
    };
    let n = DENIED.len();
    // Instructions after the denied list: 9 (see above, s+0 ..= s+8).
    let tail = 9;
    // From instruction `i`, the jump that lands on the last one (deny).
    let to_deny_from = |i: usize, len: usize| u8::try_from(len - 2 - i).expect("a short program");
    let mut p = Vec::with_capacity(4 + n + tail);
    p.push(stmt(BPF_LD | BPF_W | BPF_ABS, ARCH));
    p.push(jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH, 1, 0));
    p.push(stmt(BPF_RET | BPF_K, EPERM));
    p.push(stmt(BPF_LD | BPF_W | BPF_ABS, NR));
    let len = 4 + 1 + n + tail;
    let at = p.len();
    p.push(jump(
        BPF_JMP | BPF_JGE | BPF_K,
        X32_BIT,
        to_deny_from(at, len),
        0,
    ));
    for &nr in DENIED {
        let at = p.len();
        p.push(jump(
            BPF_JMP | BPF_JEQ | BPF_K,
            nr as u32,
            to_deny_from(at, len),
            0,
        ));
    }
    // s: socket(2) goes on to its checks, anything else is allowed.
    p.push(jump(
        BPF_JMP | BPF_JEQ | BPF_K,
        libc::SYS_socket as u32,
        1,
        0,
    ));
    p.push(stmt(BPF_RET | BPF_K, ALLOW));
    p.push(stmt(BPF_LD | BPF_W | BPF_ABS, ARG0_LO));
    p.push(jump(
        BPF_JMP | BPF_JEQ | BPF_K,
        libc::AF_PACKET as u32,
        4,
        0,
    ));
    p.push(stmt(BPF_LD | BPF_W | BPF_ABS, ARG1_LO));
    p.push(stmt(BPF_ALU | BPF_AND | BPF_K, SOCK_TYPE_MASK));
    p.push(jump(BPF_JMP | BPF_JEQ | BPF_K, libc::SOCK_RAW as u32, 1, 0));
    p.push(stmt(BPF_RET | BPF_K, ALLOW));
    p.push(stmt(BPF_RET | BPF_K, EPERM));
    debug_assert_eq!(p.len(), len);
    p
}

/// Installs [`program`] on the calling thread (no `TSYNC`: the agent's
/// other threads are left alone). Needs `no_new_privs` set first.
pub(super) fn install() -> io::Result<()> {
    let program = program();
    let prog = libc::sock_fprog {
        len: u16::try_from(program.len()).map_err(|_| io::ErrorKind::InvalidInput)?,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: seccomp(2) reads `prog` and the instructions it points to,
    // both alive across the call; flags 0: this thread only.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &raw const prog,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
