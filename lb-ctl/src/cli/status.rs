//! `lb-ctl status`: the agent, where its desired state comes from, every
//! pool with its backends (runtime overrides marked), and every service.

use anyhow::Result;

use super::{Exit, Output, answer, pool::render_pools, service::render_services, table};
use lb_api::{
    client::Client,
    paths::Route,
    types::{ReloadInfo, Status},
};

pub async fn run(client: &Client, out: Output) -> Result<Exit> {
    let now = table::unix_now();
    let answer = answer::get(client, &Route::Status.path()).await?;
    answer.show(out, |s| render(s, now))
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
    format!(
        "{}\n{}\n{}",
        head.render(),
        render_pools(&s.pools, now),
        render_services(&s.services)
    )
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
    use crate::cli::{pool::tests::backend, service::tests::service};
    use lb_api::types::{BackendState, InterfaceStatus, PoolStatus, RingSizeSetting, Source};

    #[test]
    fn renders_header_pools_and_services() {
        let mut b1 = backend("b1", BackendState::Up);
        b1.source = Source::Runtime;
        b1.next_hop = None;
        let status = Status {
            version: "0.1.0".into(),
            config_file: "/etc/lb/lb.yaml".into(),
            state_file: "/var/lib/lb/overrides.json".into(),
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
            pools: vec![PoolStatus {
                name: "web".into(),
                source: Source::Config,
                services: vec!["web".into()],
                backends: vec![b1],
            }],
            services: vec![service("web", RingSizeSetting::Fixed(65537))],
        };
        assert_eq!(
            render(&status, 1000),
            "agent       lb-ctl 0.1.0, data path adopted at /sys/fs/bpf/lb\n\
             config      /etc/lb/lb.yaml\n\
             state       /var/lib/lb/overrides.json\n\
             precedence  runtime overrides > config file\n\
             interfaces  eth0 (native)\n\
             reloads     2 (1 failed); last error 1m ago: lb.yaml:3:1: bad\n\
             \n\
             pool web (config; services: web)\n\
             \x20 NAME  ADDRESS   PORT  STATE  WEIGHT  SOURCE   CHECK  SINCE  NEXT-HOP/WHY\n\
             \x20 b1    10.0.1.1     -  up        100  runtime  -      -      -\n\
             \n\
             NAME  SERVICE               HASH         RING   POOL  SOURCE  NEW FLOWS  PACKETS    BYTES\n\
             web   [2001:db8::1]:80/tcp  source-port  65537  web   config         12     3400  1.5 MiB\n"
        );
    }

    #[test]
    fn no_reload_yet() {
        assert_eq!(reloads(&ReloadInfo::default(), 0), "none since start");
    }
}
