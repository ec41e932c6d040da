//! `lb-ctl events [--follow]`: what the agent did and why (backend state
//! changes, reloads, services and pools added or removed), oldest first; with
//! `--follow`, then every new event as it happens, until the agent stops or
//! Ctrl-C. `-o json` prints the JSON lines as the agent sends them.

use std::io::{self, Write as _};

use anyhow::{Context as _, Result};

use super::{Exit, Output, table};
use lb_api::{
    client::Client,
    event_stream::{Lagged, Line},
    paths::EventsQuery,
};

pub async fn run(client: &Client, out: Output, follow: bool) -> Result<Exit> {
    let mut lines = client.get_lines(&EventsQuery { follow }.path()).await?;
    if out == Output::Table && !emit(&row("TIME", "TYPE", "EVENT"))? {
        return Ok(Exit::Ok);
    }
    while let Some(line) = lines.next_line().await.context("reading the events")? {
        let shown = match out {
            _ if line.is_empty() => true,
            Output::Json => emit(&line)?,
            Output::Table => emit(&render(&line))?,
        };
        if !shown {
            return Ok(Exit::Ok);
        }
    }
    if follow {
        eprintln!("lb-ctl: the agent ended the stream (it is stopping)");
    }
    Ok(Exit::Ok)
}

/// Prints a line at once; `false` when stdout is closed (`| head`), which
/// ends the command quietly.
fn emit(text: &str) -> Result<bool> {
    match writeln!(io::stdout(), "{text}") {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e).context("writing to stdout"),
    }
}

/// Time (24 characters, UTC), type (15, the longest), text.
fn row(time: &str, kind: &str, text: &str) -> String {
    format!("{time:<24}  {kind:<15}  {text}")
}

/// One line of the stream for people; lines of a newer agent show as sent.
fn render(text: &str) -> String {
    match Line::parse(text) {
        Some(Line::Event(e)) => row(&table::utc(e.time_ms), e.kind.name(), &e.kind.to_string()),
        Some(Line::Lagged(Lagged { missed })) => row(
            "",
            "lagged",
            &format!("{missed} events missed: this reader fell behind"),
        ),
        Some(Line::Other(v)) => {
            let time = v["time_ms"].as_u64().map(table::utc).unwrap_or_default();
            row(&time, v["type"].as_str().unwrap_or("?"), text)
        }
        None => row("", "?", text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_line() {
        let e = r#"{"seq":3,"time_ms":1700000000123,"type":"backend_state","pool":"web","backend":"b2","address":"10.0.0.2","port":null,"from":"up","to":"drain","cause":"operator","reason":"drained by an operator"}"#;
        assert_eq!(
            render(e),
            "2023-11-14T22:13:20.123Z  backend_state    backend web/b2 up -> drain: drained by an operator"
        );
        assert_eq!(
            render(r#"{"type":"lagged","missed":12}"#),
            "                          lagged           12 events missed: this reader fell behind"
        );
        let newer = r#"{"seq":4,"time_ms":0,"type":"vrrp_master","instance":"VI_1"}"#;
        assert_eq!(
            render(newer),
            format!("1970-01-01T00:00:00.000Z  vrrp_master      {newer}")
        );
        assert_eq!(
            row("TIME", "TYPE", "EVENT").trim_end(),
            "TIME                      TYPE             EVENT"
        );
    }
}
