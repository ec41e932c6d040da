//! `lb-ctl frontend list`: the L7 proxy's frontends with their sessions,
//! requests, responses and refusals (HAProxy's frontend rows of `show
//! stat`).

use anyhow::Result;
use clap::Subcommand;

use super::{Exit, Output, answer, table::Table};
use lb_api::{
    client::Client,
    paths::Route,
    proxy::{FrontendStatus, Frontends},
};

#[derive(Debug, Subcommand)]
pub enum FrontendCommand {
    /// List the frontends: mode, binds, state, sessions (now/maxconn), requests,
    /// responses by class and connections or requests refused.
    List,
}

pub async fn run(cmd: FrontendCommand, client: &Client, out: Output) -> Result<Exit> {
    match cmd {
        FrontendCommand::List => {
            let answer = answer::get(client, &Route::Frontends.path()).await?;
            answer.show(out, render)
        }
    }
}

fn render(f: &Frontends) -> String {
    if f.frontends.is_empty() {
        return "no frontends (the configuration has no `frontends:` section)\n".into();
    }
    let mut t = Table::new(&[
        "FRONTEND", "MODE", "BINDS", "STATE", "SESSIONS", "REQUESTS", "2XX", "3XX", "4XX", "5XX",
        "DENIED",
    ])
    .right(&[4, 5, 6, 7, 8, 9, 10]);
    for fe in &f.frontends {
        t.row(row(fe));
    }
    let mut text = t.render();
    let refused: Vec<String> = f.frontends.iter().filter_map(denials).collect();
    if !refused.is_empty() {
        text.push('\n');
        text.push_str(&refused.join(""));
    }
    text
}

fn row(f: &FrontendStatus) -> Vec<String> {
    let class = |c: &str| f.responses.get(c).copied().unwrap_or(0).to_string();
    vec![
        f.name.clone(),
        f.mode.clone(),
        f.binds.join(","),
        f.state.as_str().to_owned(),
        format!("{}/{}", f.sessions, f.maxconn),
        f.requests.to_string(),
        class("2xx"),
        class("3xx"),
        class("4xx"),
        class("5xx"),
        f.denied.values().sum::<u64>().to_string(),
    ]
}

/// `NAME denied: reason N, …` for a frontend that refused anything.
fn denials(f: &FrontendStatus) -> Option<String> {
    let parts: Vec<String> = f
        .denied
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect();
    (!parts.is_empty()).then(|| format!("{} denied: {}\n", f.name, parts.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_api::proxy::FrontendState;

    #[test]
    fn a_frontend_is_one_row_and_its_refusals_a_line() {
        let f = FrontendStatus {
            name: "main".into(),
            mode: "http".into(),
            binds: vec!["*:80".into(), "[::]:80".into()],
            state: FrontendState::Open,
            sessions: 2,
            maxconn: 3000,
            connections: 9,
            requests: 12,
            responses: [("2xx", 10), ("4xx", 2)]
                .map(|(k, n)| (k.to_owned(), n))
                .into(),
            denied: [("conn_rate", 3), ("http_req_rate", 2), ("deny_list", 0)]
                .map(|(k, n)| (k.to_owned(), n))
                .into(),
        };
        let text = render(&Frontends { frontends: vec![f] });
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("FRONTEND"), "{text}");
        let cells: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            cells,
            [
                "main",
                "http",
                "*:80,[::]:80",
                "open",
                "2/3000",
                "12",
                "10",
                "0",
                "2",
                "0",
                "5"
            ],
            "{text}"
        );
        assert_eq!(lines[3], "main denied: conn_rate 3, http_req_rate 2");
    }
}
