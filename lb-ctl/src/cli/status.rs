//! `lb-ctl status`: the agent, where its desired state comes from, and every
//! VIP with its backends (runtime overrides marked).

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;

use super::{Exit, Output, answer, backend::render_backends, table, vip};
use lb_api::{
    client::Client,
    types::{ReloadInfo, Status},
};

pub async fn run(client: &Client, out: Output) -> Result<Exit> {
    let answer = answer::get(client, "/v1/status").await?;
    if out == Output::Json {
        answer.print_json();
    } else {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        print!("{}", render(&answer.typed()?, now));
    }
    Ok(Exit::Ok)
}

fn render(s: &Status, now: u64) -> String {
    let mut head = table::Table::new(&[]);
    let data_path = if s.adopted { "adopted" } else { "loaded" };
    head.row([
        "agent".into(),
        format!(
            "lb-ctl {}, data path {data_path} at {}",
            s.version,
            s.bpffs.display()
        ),
    ]);
    head.row(["config".into(), s.config_file.display().to_string()]);
    head.row(["state".into(), s.state_file.display().to_string()]);
    head.row(["precedence", s.precedence.as_str()]);
    let interfaces = if s.interfaces.is_empty() {
        "none".to_owned()
    } else {
        s.interfaces
            .iter()
            .map(|i| format!("{} ({})", i.name, i.xdp_mode))
            .collect::<Vec<_>>()
            .join(", ")
    };
    head.row(["interfaces".into(), interfaces]);
    head.row(["reloads".into(), reloads(&s.reloads, now)]);
    let mut out = head.render();
    for v in &s.vips {
        out.push('\n');
        out.push_str(&format!(
            "{}  {}  hash {}  ring {}  {}\n",
            v.name,
            vip::vip_id(v.address, v.port, v.protocol),
            v.hash,
            v.ring_size,
            vip::source(v.source)
        ));
        out.push_str(&render_backends(&v.backends, 2));
    }
    if s.vips.is_empty() {
        out.push_str("\nno VIPs\n");
    }
    out
}

fn reloads(r: &ReloadInfo, now: u64) -> String {
    let Some(result) = &r.last_result else {
        return "none since start".into();
    };
    let when = r
        .last_at
        .map(|t| format!(" {}", table::ago(t, now)))
        .unwrap_or_default();
    let mut text = format!("{} ({} failed); last {result}{when}", r.count, r.failures);
    if result != "ok"
        && let Some(e) = &r.last_error
    {
        // Diagnostics can span lines; the summary keeps the first.
        text.push_str(": ");
        text.push_str(e.lines().next().unwrap_or(""));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_api::types::{BackendStatus, Counters, InterfaceStatus, Source, VipStatus};
    use lb_config::{AdminState, HashMode, Protocol};

    #[test]
    fn renders_header_and_vips() {
        let status = Status {
            version: "0.1.0".into(),
            config_file: "/etc/lb/lb.yaml".into(),
            state_file: "/var/lib/lb/state.json".into(),
            precedence: "runtime overrides > config file".into(),
            bpffs: "/sys/fs/bpf/lb".into(),
            adopted: true,
            interfaces: vec![InterfaceStatus {
                name: "eth0".into(),
                xdp_mode: "native".into(),
            }],
            reloads: ReloadInfo {
                count: 2,
                failures: 1,
                last_result: Some("error".into()),
                last_error: Some("lb.yaml:3:1: bad\nmore".into()),
                last_at: Some(940),
            },
            vips: vec![VipStatus {
                name: "web".into(),
                address: "2001:db8::1".parse().unwrap(),
                port: 80,
                protocol: Protocol::Tcp,
                hash: HashMode::SourcePort,
                ring_size: 65537,
                source: Source::Config,
                counters: Counters::default(),
                backends: vec![BackendStatus {
                    name: "b1".into(),
                    address: "2001:db8::10".parse().unwrap(),
                    port: 80,
                    weight: 1,
                    config_weight: Some(1),
                    weight_override: None,
                    state: "up".into(),
                    config_state: Some(AdminState::Up),
                    state_override: None,
                    down_reason: None,
                    source: Source::Runtime,
                    next_hop: None,
                    counters: Counters::default(),
                }],
            }],
        };
        assert_eq!(
            render(&status, 1000),
            "agent       lb-ctl 0.1.0, data path adopted at /sys/fs/bpf/lb\n\
             config      /etc/lb/lb.yaml\n\
             state       /var/lib/lb/state.json\n\
             precedence  runtime overrides > config file\n\
             interfaces  eth0 (native)\n\
             reloads     2 (1 failed); last error 1m ago: lb.yaml:3:1: bad\n\
             \n\
             web  [2001:db8::1]:80/tcp  hash source-port  ring 65537  config\n\
             \x20 NAME  ADDRESS       PORT  STATE  WEIGHT  SOURCE   NEXT HOP\n\
             \x20 b1    2001:db8::10    80  up          1  runtime  -\n"
        );
    }

    #[test]
    fn no_reload_yet() {
        assert_eq!(reloads(&ReloadInfo::default(), 0), "none since start");
    }
}
