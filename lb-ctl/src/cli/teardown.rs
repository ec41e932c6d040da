//! `lb-ctl teardown`: asks a running agent to detach and unpin its data path
//! and stop; with no agent, removes what `apply` (or a dead agent) left pinned.

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use super::{
    Exit, Output,
    answer::{self, pretty},
    block_on, print_json,
};
use lb_api::{
    client::{Client, ClientError},
    paths::Route,
    types::ChangeResult,
};
use lb_dataplane as dataplane;

pub fn run(client: &Client, bpffs: &Path, out: Output) -> Result<Exit> {
    let asked = block_on(async { Ok(answer::post_empty(client, &Route::Teardown.path()).await) })?;
    match asked {
        Ok(answer) => {
            if out == Output::Json {
                // Built as text so the agent's answer is printed as it sent it.
                let mut doc = br#"{"via":"agent","result":"#.to_vec();
                doc.extend_from_slice(answer.raw());
                doc.push(b'}');
                println!("{}", pretty(&doc));
            } else {
                let r: ChangeResult = answer.typed()?;
                for w in &r.warnings {
                    eprintln!("lb-ctl: warning: {w}");
                }
                println!(
                    "the agent at {} detached and unpinned its data path and is stopping",
                    client.socket().display()
                );
            }
            Ok(Exit::Ok)
        }
        Err(ClientError::NotRunning { .. }) => {
            let removed = dataplane::teardown(bpffs)?;
            if out == Output::Json {
                print_json(&json!({ "via": "direct", "bpffs": bpffs, "removed": removed }));
            } else {
                println!(
                    "no agent at {}; removed {} pins under {} directly",
                    client.socket().display(),
                    removed.len(),
                    bpffs.display()
                );
            }
            Ok(Exit::Ok)
        }
        Err(e) => Err(e.into()),
    }
}
