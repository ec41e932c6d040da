//! lb-ctl: the agent that owns lb's data path, and the operator CLI.

pub mod dataplane;
