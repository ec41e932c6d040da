//! The operator's runtime changes. Each one resolves its target in the
//! configuration in effect, builds the changed overrides aside, checks the
//! configuration they would put in effect against every rule of the file
//! ([`check`]), and only then commits: a refused change leaves the overrides
//! untouched. Each returns whether anything changed.

use super::effective::{same_backend, same_vip};
use super::spec::{
    BackendSpec, VipSpec, backend_differences, backend_from_request, vip_differences,
    vip_from_request,
};
use super::{BackendOverride, Overrides, effective};
use lb_api::types::{AddBackend, AddVip, ApiError, Source};
use lb_config::{AdminState, Config, parse};

/// What the configuration rebuilt for [`check`] is called in diagnostics,
/// whose positions are dropped: they point into text nobody wrote.
const RUNTIME_FILE: &str = "<runtime>";

/// Adds a VIP (with its backends). Adding back a file VIP removed at runtime
/// restores it if the request is exactly the file's definition, else 409;
/// adding a VIP identical to one in effect changes nothing; one clashing with
/// a VIP in effect by name or address:port/protocol is a 409.
pub fn add_vip(ov: &mut Overrides, file: &Config, req: AddVip) -> Result<bool, ApiError> {
    let want = vip_from_request(&req)?;
    let mut next = ov.clone();
    if let Some(fv) = file
        .vips
        .iter()
        .find(|fv| ov.removed_vips.contains(&fv.name) && same_vip(fv, &want))
    {
        let diff = vip_differences("file", fv, &want);
        if !diff.is_empty() {
            return Err(ApiError::conflict(format!(
                "VIP `{}` of the configuration file was removed at runtime; it can only be \
                 added back exactly as the file defines it, or under another name and \
                 address ({})",
                fv.name,
                diff.join("; ")
            )));
        }
        next.removed_vips.remove(&fv.name);
        return commit(ov, file, next);
    }
    let eff = effective(file, ov);
    if let Some(have) = eff.config.vips.iter().find(|v| same_vip(v, &want)) {
        let diff = vip_differences("in effect", have, &want);
        if diff.is_empty() {
            return Ok(false);
        }
        let clash = if have.name == want.name {
            format!("VIP `{}` already exists", have.name)
        } else {
            format!("VIP {} already exists as `{}`", have.key(), have.name)
        };
        return Err(ApiError::conflict(format!(
            "{clash}, defined differently ({}); remove it first to replace it",
            diff.join("; ")
        )));
    }
    next.added_vips.push(VipSpec::from(&want));
    commit(ov, file, next)
}

/// Removes a VIP in effect (by name or address:port/protocol): one added at
/// runtime is deleted; one from the file is hidden (tombstone) and the runtime
/// changes to its backends are forgotten.
pub fn remove_vip(ov: &mut Overrides, file: &Config, vip: &str) -> Result<bool, ApiError> {
    let eff = effective(file, ov);
    let i = eff.find_vip(vip)?;
    let name = &eff.config.vips[i].name;
    let mut next = ov.clone();
    next.backend_overrides.remove(name);
    match eff.provenance[i].source {
        Source::Runtime => next.added_vips.retain(|v| v.name != *name),
        Source::Config => {
            next.forget_vip_children(name);
            next.removed_vips.insert(name.clone());
        }
    }
    commit(ov, file, next)
}

/// Adds a backend to a VIP in effect. Adding back a file backend removed at
/// runtime restores it if the request is exactly the file's definition, else
/// 409; adding one identical to a backend in effect changes nothing; one
/// clashing with a backend in effect by name or address is a 409.
pub fn add_backend(
    ov: &mut Overrides,
    file: &Config,
    vip: &str,
    req: AddBackend,
) -> Result<bool, ApiError> {
    let eff = effective(file, ov);
    let i = eff.find_vip(vip)?;
    let v = &eff.config.vips[i];
    let source = eff.provenance[i].source;
    let want = backend_from_request(&req)?;
    let mut next = ov.clone();
    let file_vip = file.vips.iter().find(|fv| fv.name == v.name);
    if let (Source::Config, Some(fv), Some(removed)) =
        (source, file_vip, ov.removed_backends.get(&v.name))
        && let Some(fb) = fv
            .backends
            .iter()
            .find(|fb| removed.contains(&fb.name) && same_backend(fv.port, fb, &want))
    {
        let diff = backend_differences("file", fv.port, fb, &want);
        if !diff.is_empty() {
            return Err(ApiError::conflict(format!(
                "backend `{}` of VIP `{}` in the configuration file was removed at runtime; it \
                 can only be added back exactly as the file defines it, or under another name \
                 and address ({})",
                fb.name,
                v.name,
                diff.join("; ")
            )));
        }
        if let Some(r) = next.removed_backends.get_mut(&v.name) {
            r.remove(&fb.name);
        }
        return commit(ov, file, next);
    }
    if let Some(have) = v.backends.iter().find(|b| same_backend(v.port, b, &want)) {
        let diff = backend_differences("in effect", v.port, have, &want);
        if diff.is_empty() {
            return Ok(false);
        }
        return Err(ApiError::conflict(format!(
            "VIP `{}` already has backend `{}` at {}, defined differently ({}); remove it first \
             to replace it",
            v.name,
            have.name,
            have.address,
            diff.join("; ")
        )));
    }
    let spec = BackendSpec::from(&want);
    match source {
        Source::Config => next
            .added_backends
            .entry(v.name.clone())
            .or_default()
            .push(spec),
        Source::Runtime => runtime_vip(&mut next, &v.name)?.backends.push(spec),
    }
    commit(ov, file, next)
}

/// Removes a backend in effect (by name or address): one added at runtime is
/// deleted; one from the file is hidden (tombstone). Its state and weight
/// overrides are forgotten either way.
pub fn remove_backend(
    ov: &mut Overrides,
    file: &Config,
    vip: &str,
    backend: &str,
) -> Result<bool, ApiError> {
    let eff = effective(file, ov);
    let (i, j) = eff.find_backend(vip, backend)?;
    let (v, b) = (&eff.config.vips[i], &eff.config.vips[i].backends[j]);
    let mut next = ov.clone();
    if let Some(per_backend) = next.backend_overrides.get_mut(&v.name) {
        per_backend.remove(&b.name);
    }
    match (
        eff.provenance[i].source,
        eff.provenance[i].backends[j].source,
    ) {
        (_, Source::Config) => {
            next.removed_backends
                .entry(v.name.clone())
                .or_default()
                .insert(b.name.clone());
        }
        (Source::Config, Source::Runtime) => {
            if let Some(added) = next.added_backends.get_mut(&v.name) {
                added.retain(|x| x.name != b.name);
            }
        }
        (Source::Runtime, Source::Runtime) => {
            runtime_vip(&mut next, &v.name)?
                .backends
                .retain(|x| x.name != b.name);
        }
    }
    commit(ov, file, next)
}

/// Sets a backend's administrative state; setting its base value (the
/// file's, or the one it was added with) drops the override.
pub fn set_state(
    ov: &mut Overrides,
    file: &Config,
    vip: &str,
    backend: &str,
    state: AdminState,
) -> Result<bool, ApiError> {
    set(ov, file, vip, backend, |base, o| {
        o.state = (state != base.0).then_some(state);
    })
}

/// Sets a backend's weight; setting its base value (the file's, or the one it
/// was added with) drops the override.
pub fn set_weight(
    ov: &mut Overrides,
    file: &Config,
    vip: &str,
    backend: &str,
    weight: u32,
) -> Result<bool, ApiError> {
    set(ov, file, vip, backend, |base, o| {
        o.weight = (weight != base.1).then_some(weight);
    })
}

/// Checks a configuration built in memory with every rule of the file, by
/// writing it as YAML and parsing that back: one set of rules, not two. The
/// warnings it raises come back as messages; errors make a 422 listing them.
pub fn check(config: &Config) -> Result<Vec<String>, ApiError> {
    let text = serde_yaml::to_string(config).map_err(|e| {
        ApiError::internal(format!(
            "cannot write the configuration as YAML to check it: {e}"
        ))
    })?;
    match parse(&text, RUNTIME_FILE) {
        Ok(checked) => Ok(checked
            .warnings
            .iter()
            .map(|d| without_line_refs(&d.message))
            .collect()),
        Err(diagnostics) => {
            let mut errors: Vec<String> = diagnostics
                .errors()
                .map(|d| without_line_refs(&d.message))
                .collect();
            errors.dedup();
            Err(ApiError::invalid(format!(
                "the configuration would be invalid: {}",
                errors.join("; ")
            )))
        }
    }
}

/// The shared body of [`set_state`] and [`set_weight`]: `f` gets the
/// backend's base (state, weight) and its override entry to update.
fn set(
    ov: &mut Overrides,
    file: &Config,
    vip: &str,
    backend: &str,
    f: impl FnOnce((AdminState, u32), &mut BackendOverride),
) -> Result<bool, ApiError> {
    let eff = effective(file, ov);
    let (i, j) = eff.find_backend(vip, backend)?;
    let p = &eff.provenance[i].backends[j];
    let mut next = ov.clone();
    let entry = next
        .backend_overrides
        .entry(eff.config.vips[i].name.clone())
        .or_default()
        .entry(eff.config.vips[i].backends[j].name.clone())
        .or_default();
    f((p.base_state, p.base_weight), entry);
    commit(ov, file, next)
}

/// Replaces `ov` with `next` if that changes anything and the configuration
/// it puts in effect passes [`check`].
fn commit(ov: &mut Overrides, file: &Config, mut next: Overrides) -> Result<bool, ApiError> {
    next.normalize();
    if next == *ov {
        return Ok(false);
    }
    check(&effective(file, &next).config)?;
    *ov = next;
    Ok(true)
}

/// The spec of the runtime VIP `name`, which the caller found in effect.
fn runtime_vip<'a>(ov: &'a mut Overrides, name: &str) -> Result<&'a mut VipSpec, ApiError> {
    ov.added_vips
        .iter_mut()
        .find(|s| s.name == name)
        .ok_or_else(|| ApiError::internal(format!("runtime VIP `{name}` vanished")))
}

/// Drops ` (first at line N)` from a message: lines of the rebuilt YAML mean
/// nothing to the caller.
fn without_line_refs(message: &str) -> String {
    const REF: &str = " (first at line ";
    let mut out = message.to_owned();
    while let Some(at) = out.find(REF) {
        let Some(len) = out[at..].find(')') else {
            break;
        };
        out.replace_range(at..=at + len, "");
    }
    out
}
