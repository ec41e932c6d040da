//! The open-file limit. The rig holds a descriptor per listener and per
//! connection it holds; the soft limit is raised as far as the hard one
//! allows (further when the process may raise the hard one too).

use anyhow::{Result, ensure};

/// Raises the soft `RLIMIT_NOFILE` towards `want`; returns the limit now in
/// force (children, the checkers, inherit it).
pub fn raise_to(want: usize) -> Result<usize> {
    // SAFETY: a plain struct the kernel fills.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to our struct.
    let got = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    ensure!(
        got == 0,
        "getrlimit(RLIMIT_NOFILE): {}",
        std::io::Error::last_os_error()
    );
    let want = want as libc::rlim_t;
    if lim.rlim_cur >= want {
        return Ok(lim.rlim_cur as usize);
    }
    let hard = lim.rlim_max;
    // Both limits up to `want` (needs CAP_SYS_RESOURCE if above the hard one) …
    let mut to = libc::rlimit {
        rlim_cur: want,
        rlim_max: hard.max(want),
    };
    // SAFETY: a valid pointer to our struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &to) } != 0 {
        // … else the soft one up to the hard one.
        to = libc::rlimit {
            rlim_cur: hard,
            rlim_max: hard,
        };
        // SAFETY: as above.
        let set = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &to) };
        ensure!(
            set == 0,
            "raising the open-file limit to {hard}: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(to.rlim_cur as usize)
}
