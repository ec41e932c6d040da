//! Cold apply and adopt: `lb-ctl apply` of a whole file onto an empty pin
//! directory (after flushing the LB's neighbour table, so every next hop is
//! resolved by ARP as on a fresh boot), then the same again onto the pins it
//! left (nothing to write), then `lb-ctl teardown`; `runs` times.

use std::path::Path;

use anyhow::{Result, ensure};

use super::{
    Rig,
    config::{AgentPaths, Scale},
    procs::{self, Pins},
};

/// The times of every run, in order.
#[derive(Clone, Debug, Default)]
pub struct ApplyRuns {
    pub cold_ms: Vec<f64>,
    pub adopt_ms: Vec<f64>,
    /// Map writes of the first cold and first adopting run.
    pub cold_writes: u64,
    pub adopt_writes: u64,
}

pub fn measure(
    rig: &Rig,
    scale: &Scale,
    dir: &Path,
    runs: usize,
    progress: &mut dyn FnMut(&str),
) -> Result<ApplyRuns> {
    let vips = scale.vips();
    let pins = Pins::new(&rig.bin, &format!("{vips}-apply"))?;
    let paths = AgentPaths::under(dir, pins.dir.clone(), rig.metrics_port(vips, 0));
    let config = dir.join("lb.yaml");
    scale.write(&paths, &config)?;
    let netns = rig.lab.lb().ns.name();
    let mut out = ApplyRuns::default();
    for run in 1..=runs {
        super::stop::check()?;
        rig.lab.lb().ns.ip(&["neigh", "flush", "all"])?;
        let cold = procs::apply(&rig.bin, netns, &config)?;
        ensure!(
            !cold.adopted,
            "the cold apply adopted pins in {}",
            pins.dir.display()
        );
        progress(&format!(
            "{vips} VIPs: cold apply  {run}/{runs}: {:8.1} ms ({} map writes)",
            cold.ms, cold.map_writes
        ));
        let adopt = procs::apply(&rig.bin, netns, &config)?;
        ensure!(adopt.adopted, "the second apply did not adopt the pins");
        progress(&format!(
            "{vips} VIPs: adopt       {run}/{runs}: {:8.1} ms ({} map writes)",
            adopt.ms, adopt.map_writes
        ));
        if run == 1 {
            out.cold_writes = cold.map_writes;
            out.adopt_writes = adopt.map_writes;
        }
        out.cold_ms.push(cold.ms);
        out.adopt_ms.push(adopt.ms);
        pins.teardown()?;
    }
    Ok(out)
}
