//! How a command that changes something reports: what it did, or that
//! nothing had to change; the agent's warnings on stderr; `-o json` prints
//! the agent's answer as it is.

use std::future::Future;

use anyhow::{Context as _, Result};

use super::{Exit, Output, answer::Answer};
use lb_api::{client::ClientError, types::ChangeResult};

/// The words of one change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Words {
    /// What is being done, for an error: `adding service web`.
    pub doing: String,
    /// What was done: `added service web`.
    pub done: String,
    /// What was already so: `service web exists as asked`.
    pub already: String,
}

impl Words {
    /// Adding `thing` (`service web`).
    pub fn add(thing: &str) -> Words {
        Words {
            doing: format!("adding {thing}"),
            done: format!("added {thing}"),
            already: format!("{thing} exists as asked"),
        }
    }

    /// Removing `thing`.
    pub fn remove(thing: &str) -> Words {
        Words {
            doing: format!("removing {thing}"),
            done: format!("removed {thing}"),
            already: format!("no {thing}"),
        }
    }
}

/// Waits for the agent's answer to a change and prints what it did.
pub async fn report(
    out: Output,
    words: Words,
    asked: impl Future<Output = Result<Answer, ClientError>>,
) -> Result<Exit> {
    let answer = asked.await.with_context(|| words.doing.clone())?;
    if out == Output::Json {
        answer.print_json();
        return Ok(Exit::Ok);
    }
    let result: ChangeResult = answer.typed()?;
    for w in &result.warnings {
        eprintln!("lb-ctl: warning: {w}");
    }
    println!("{}", summary(&result, &words));
    Ok(Exit::Ok)
}

fn summary(result: &ChangeResult, words: &Words) -> String {
    if result.changed {
        format!("{} ({} map writes)", words.done, result.map_writes)
    } else {
        format!("{}; nothing changed", words.already)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_what_changed_or_that_nothing_did() {
        let mut r = ChangeResult {
            changed: true,
            map_writes: 3,
            warnings: vec![],
        };
        assert_eq!(
            summary(&r, &Words::add("pool api")),
            "added pool api (3 map writes)"
        );
        r.changed = false;
        assert_eq!(
            summary(&r, &Words::remove("service web")),
            "no service web; nothing changed"
        );
        assert_eq!(Words::remove("pool api").doing, "removing pool api");
    }
}
