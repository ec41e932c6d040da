//! One `virtual_ipaddress` line, keepalived's syntax:
//! `ADDR[/PREFIX] [dev IFNAME] [label LABEL]`.

use std::net::IpAddr;

use crate::diagnostic::Problems;
use crate::positions::YamlPath;
use crate::rules;
use crate::vrrp::VirtualAddress;

pub(super) fn vip(line: &str, at: &YamlPath, p: &mut Problems) -> Option<VirtualAddress> {
    match parse(line) {
        Ok(a) => Some(a),
        Err(why) => {
            p.error(at, format!("virtual_ipaddress `{line}`: {why}"));
            None
        }
    }
}

fn parse(line: &str) -> Result<VirtualAddress, String> {
    let mut words = line.split_whitespace();
    let first = words.next().ok_or("empty")?;
    let (addr, prefix) = first
        .split_once('/')
        .map_or((first, None), |(a, n)| (a, Some(n)));
    let address: IpAddr = addr
        .parse()
        .map_err(|_| format!("`{addr}` is not an IPv4 or IPv6 address"))?;
    rules::check_address("virtual", address)?;
    let max = if address.is_ipv6() { 128 } else { 32 };
    let prefix = match prefix {
        None => max,
        Some(n) => n
            .parse::<u8>()
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| format!("prefix `/{n}` is not 0..={max}"))?,
    };
    let mut out = VirtualAddress {
        address,
        prefix,
        dev: None,
        label: None,
    };
    while let Some(word) = words.next() {
        let value = words
            .next()
            .ok_or_else(|| format!("`{word}` needs a value"))?;
        match word {
            "dev" => {
                super::super::check_ifname(value).map_err(|why| format!("dev `{value}`: {why}"))?;
                out.dev = Some(value.to_owned());
            }
            "label" if address.is_ipv4() => out.label = Some(value.to_owned()),
            "label" => return Err("labels are IPv4 only".into()),
            other => {
                return Err(format!(
                    "unknown word `{other}`; lb reads `ADDR[/PREFIX] [dev IFNAME] [label LABEL]`"
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalived_lines() {
        let a = parse("192.168.60.88").unwrap();
        assert_eq!((a.prefix, a.dev, a.label), (32, None, None));
        let a = parse("10.0.0.1/24 dev eth1 label eth1:vip").unwrap();
        assert_eq!(
            (a.prefix, a.dev.as_deref(), a.label.as_deref()),
            (24, Some("eth1"), Some("eth1:vip"))
        );
        assert_eq!(parse("2001:db8::1").unwrap().prefix, 128);
        for (bad, why) in [
            ("10.0.0.1/33", "prefix"),
            ("nope", "not an IPv4"),
            ("10.0.0.1 dev", "needs a value"),
            ("10.0.0.1 scope link", "unknown word"),
            ("2001:db8::1 label x", "IPv4 only"),
        ] {
            assert!(parse(bad).unwrap_err().contains(why), "{bad}");
        }
    }
}
