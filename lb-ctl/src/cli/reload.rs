//! `lb-ctl reload`: asks the agent to re-read its configuration file (like
//! `systemctl reload`); an invalid file changes nothing and exits 2.

use anyhow::Result;

use super::{Exit, Output, answer, print_json};
use lb_api::{
    client::{Client, ClientError},
    paths::Route,
    types::{ErrorBody, ReloadResult},
};

pub async fn run(client: &Client, out: Output) -> Result<Exit> {
    let answer = match answer::post_empty(client, &Route::Reload.path()).await {
        Ok(a) => a,
        Err(ClientError::Api(e)) if (400..500).contains(&e.code) => {
            // The file's diagnostics, file:line:col each: the answer, not a failure of lb-ctl.
            if out == Output::Json {
                print_json(&serde_json::to_value(ErrorBody { error: e })?);
            } else {
                eprintln!("{}", e.reason);
                eprintln!("lb-ctl: reload refused; nothing was changed");
            }
            return Ok(Exit::BadInput);
        }
        Err(e) => return Err(e.into()),
    };
    if out == Output::Json {
        answer.print_json();
        return Ok(Exit::Ok);
    }
    let r: ReloadResult = answer.typed()?;
    for w in &r.warnings {
        eprintln!("lb-ctl: warning: {w}");
    }
    if r.changed_services.is_empty() && r.map_writes == 0 {
        println!("reloaded: no change");
    } else {
        let services = if r.changed_services.is_empty() {
            "none".into()
        } else {
            r.changed_services.join(", ")
        };
        println!(
            "reloaded: {} map writes; services changed: {services}",
            r.map_writes
        );
    }
    Ok(Exit::Ok)
}
