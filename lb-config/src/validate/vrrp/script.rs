//! `track_scripts:` (keepalived `vrrp_script`): command, interval, timeout,
//! weight, rise and fall, with keepalived's defaults.

use serde_yaml::Value;

use super::super::in_range;
use super::raw::RawScript;
use super::{command, weight};
use crate::diagnostic::Problems;
use crate::positions::YamlPath;
use crate::raw::deserialize_all;
use crate::vrrp::*;

/// Shortest `interval` and `timeout`.
const MIN_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

pub(super) fn script(
    name: String,
    v: Value,
    at: &YamlPath,
    p: &mut Problems,
) -> Option<TrackScript> {
    let (raw, broken) = deserialize_all::<RawScript>(v, at, p)?;
    let Some(cmd) = raw.script else {
        if !broken.contains("script") {
            p.error(at, "missing required key `script` (the program to run, e.g. `/usr/local/bin/check.sh`)");
        }
        return None;
    };
    let command = command(cmd, "script", at, p);
    let time = |v: Option<super::raw::Seconds>, key: &str, default, p: &mut Problems| match v {
        Some(s) if s.0 < MIN_INTERVAL => {
            p.error(
                &at.key(key),
                format!("{key} must be at least {}ms", MIN_INTERVAL.as_millis()),
            );
            default
        }
        Some(s) => s.0,
        None => default,
    };
    let interval = time(raw.interval, "interval", DEFAULT_SCRIPT_INTERVAL, p);
    let timeout = time(raw.timeout, "timeout", interval, p);
    let threshold = |v: Option<crate::raw::Int>, key: &str, p: &mut Problems| {
        v.and_then(|n| in_range(n, SCRIPT_THRESHOLD_RANGE, key, &at.key(key), p))
            .unwrap_or(1)
    };
    Some(TrackScript {
        name,
        command: command?,
        interval,
        timeout,
        weight: raw
            .weight
            .and_then(|w| weight(w, &at.key("weight"), p))
            .unwrap_or(0),
        rise: threshold(raw.rise, "rise", p),
        fall: threshold(raw.fall, "fall", p),
    })
}
