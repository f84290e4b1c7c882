//! build-push-action's inputs under this action's trust rules. Untrusted code never gets an
//! SSH agent or key, a privileged entitlement (`allow`, `network: host`), a cache it writes
//! (`cache-to`) or an output that pushes; everything else (`load`, local outputs, build
//! contexts, attestations, `no-cache`, `pull`…) works for everyone. Each drop is a warning.

use crate::context::inputs::{BuildOptions, CacheSpec};
use crate::context::{ActionsCacheMode, Context};

fn dropped(warnings: &mut Vec<String>, input: &str, items: &[String], why: &str) {
    if !items.is_empty() {
        warnings.push(format!("{input} withheld from untrusted code ({}): {why}", items.join(", ")));
    }
}

/// The options this run passes to buildx.
pub(super) fn for_run(ctx: &Context, trusted: bool, warnings: &mut Vec<String>) -> BuildOptions {
    let mut o = ctx.inputs.build.clone();
    let mode = &ctx.actions_cache_mode;
    keep_caches(&mut o.cache_from, mode.allows_read(), "cache-from", mode, warnings);
    keep_caches(&mut o.cache_to, mode.allows_write(), "cache-to", mode, warnings);
    if trusted {
        return o;
    }
    dropped(warnings, "ssh", &o.ssh, "an SSH agent or key would let it reach what the key opens");
    o.ssh.clear();
    dropped(warnings, "allow", &o.allow, "privileged entitlements are for trusted code only");
    o.allow.clear();
    if o.network.as_deref() == Some("host") {
        warnings.push("network: host withheld from untrusted code (it needs the network.host entitlement); RUN steps use the default network.".into());
        o.network = None;
    }
    let writes: Vec<String> = o.cache_to.iter().map(|c| c.arg.clone()).collect();
    dropped(warnings, "cache-to", &writes, "untrusted code never writes a cache another run reads");
    o.cache_to.clear();
    let pushes: Vec<String> = o.outputs.iter().filter(|x| x.pushes).map(|x| x.arg.clone()).collect();
    dropped(warnings, "outputs", &pushes, "untrusted code never pushes");
    o.outputs.retain(|x| !x.pushes);
    o
}

fn keep_caches(
    caches: &mut Vec<CacheSpec>,
    allowed: bool,
    input: &str,
    mode: &ActionsCacheMode,
    warnings: &mut Vec<String>,
) {
    if !allowed && !caches.is_empty() {
        warnings.push(format!("{input} not used: ACTIONS_CACHE_MODE is {mode:?}."));
        caches.clear();
    }
}

/// The registries this run writes to through the user's own outputs and caches.
pub(super) fn written_registries(o: &BuildOptions) -> Vec<String> {
    let outputs = o.outputs.iter().filter(|x| x.pushes).flat_map(|x| x.registries.iter().cloned());
    outputs.chain(o.cache_to.iter().filter_map(|c| c.registry.clone())).collect()
}

/// Entitlements BuildKit must be started with for `allow` (the builder this run makes).
pub fn insecure_entitlements(o: &BuildOptions) -> Vec<&str> {
    o.allow.iter().map(String::as_str).filter(|a| ["network.host", "security.insecure"].contains(a)).collect()
}
