//! lb-ctl: the operator CLI over the agent's control API, and the entry
//! point of `lb-ctl agent`.

pub mod cli;
pub mod netns;
