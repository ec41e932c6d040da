//! A small driver of headless Chromium over the DevTools protocol, for tests
//! that need a real browser: [`Browser`] starts Debian's `chromium` and owns
//! it, [`Page`] opens, reads and clicks pages, and HTTP authentication is
//! answered the way a user answers the browser's login prompt.

mod browser;
mod conn;
mod page;

use std::time::Duration;

pub use browser::{Browser, processes_mentioning};
pub use conn::{Credentials, Event};
pub use page::Page;

/// The limit of every wait: generous, as Chromium on a busy two-core machine
/// is slow to start and to render.
pub const TIMEOUT: Duration = Duration::from_secs(30);
