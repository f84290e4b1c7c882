//! `RUN --mount=type=cache` stores carried across ephemeral runners: which stores, restored
//! from and saved to which images of the cache repository, and the helper Dockerfiles.

use serde::Serialize;

use super::Mode;
use super::cache::Scope;
use crate::context::Context;
use crate::trust::{ApiFacts, Decision, Lane, Lookup, Visibility};

/// `RUN --mount=type=cache` stores carried across ephemeral runners: restored into the builder
/// from an image in the cache repository before the build, saved (one layer per store) after a
/// trusted, successful one. BuildKit's registry cache never exports their contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MountsPlan {
    pub mounts: Vec<crate::dockerfile::CacheMount>,
    /// Images to restore from, the first that exists.
    pub restore_from: Vec<String>,
    /// Where a trusted, successful build saves them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub save_to: Option<String>,
    /// A store bigger than this is not saved.
    pub max_bytes: u64,
    /// The image with a shell the helper builds run in.
    pub helper_image: String,
}

pub const MOUNTS_TAG_MAIN: &str = "buildcache-mounts";

/// The directory of a store inside the saved image: its id, hex-encoded (ids may hold `/`).
pub fn mount_dir(id: &str) -> String {
    format!("m-{}", id.bytes().map(|b| format!("{b:02x}")).collect::<String>())
}

/// `--mount=type=cache,…` as the build itself declares the store, so the helper reaches the
/// very same one (id, sharing, ownership).
fn mount_flag(m: &crate::dockerfile::CacheMount, target: &str) -> String {
    let mut f = format!("--mount=type=cache,id={},target={target}", m.id);
    for (k, v) in [("sharing", &m.sharing), ("uid", &m.uid), ("gid", &m.gid), ("mode", &m.mode)] {
        if let Some(v) = v {
            f.push_str(&format!(",{k}={v}"));
        }
    }
    f
}

/// A shell expression for a store's fingerprint: names, sizes and modification times of
/// everything in it (contents are not read: cheap on thousands of files).
const FINGERPRINT: &str =
    "$(find /sdi-mount -mindepth 1 -exec stat -c '%n %s %Y' {} + 2>/dev/null | sort | md5sum | cut -c1-32)";

/// The helper Dockerfile that copies the saved contents (image `from`) into the stores: one
/// stage a store, all of them needed by the last stage, so BuildKit fills them in parallel.
/// `touched`: stores a stopped build step had begun to write. On a builder made for the run
/// (`fresh`) they were empty before, so what they hold is that step's partial files: emptied,
/// they get the saved copy. On a builder that outlives runs they may have been warm: kept only
/// when they hold at least half the saved copy's size (a stop comes within a moment of the
/// step's start; a warm store is whole).
/// `emptied`: stores of the plan that are only emptied (left to their steps, but a stopped step
/// began to write them on a fresh builder, where they were empty before).
pub fn restore_dockerfile(
    plan: &MountsPlan,
    from: &str,
    (touched, fresh): (&[String], bool),
    emptied: &[String],
) -> String {
    // No `# syntax=` line: the builder's own frontend reads these, no frontend image is pulled.
    let mut d = format!("FROM {from} AS saved\n");
    for (i, m) in plan.mounts.iter().enumerate() {
        let dir = mount_dir(&m.id);
        // Saved layers come back owned by root: give a store declared with uid/gid its owner.
        let chown = match (&m.uid, &m.gid) {
            (None, None) => String::new(),
            (uid, gid) => {
                format!(" && chown -R {}:{} /sdi-mount", uid.as_deref().unwrap_or("0"), gid.as_deref().unwrap_or("0"))
            }
        };
        let copy = format!(
            "[ -d /sdi-saved/{dir} ]; then cp -a /sdi-saved/{dir}/. /sdi-mount/{chown}; how=image; else how=none; fi"
        );
        // A store that already holds files (a builder that outlives runs) is newer than the
        // saved copy: it is left as it is, unless a stopped step wrote those files.
        let replace = format!("find /sdi-mount -mindepth 1 -maxdepth 1 -exec rm -rf {{}} +; if {copy}");
        let fill = match (touched.contains(&m.id), fresh) {
            _ if emptied.contains(&m.id) => {
                "find /sdi-mount -mindepth 1 -maxdepth 1 -exec rm -rf {} +; how=none".into()
            }
            (true, true) => replace,
            (true, false) => format!(
                "saved=$(du -sk /sdi-saved/{dir} 2>/dev/null | cut -f1); if [ -n \"$(ls -A /sdi-mount)\" ] && [ $(du -sk /sdi-mount | cut -f1) -ge $(( ${{saved:-0}} / 2 )) ]; then how=warm; else {replace}; fi"
            ),
            (false, _) => format!("if [ -n \"$(ls -A /sdi-mount)\" ]; then how=warm; elif {copy}"),
        };
        // `SDI_RUN` (new every run) keeps a builder that outlives runs from serving this step
        // from its cache.
        d.push_str(&format!(
            "FROM {} AS r{i}\nARG SDI_RUN\nRUN {} --mount=type=bind,from=saved,target=/sdi-saved \\\n    {fill}; \\\n    echo \"sdi-restored {dir} $(du -sk /sdi-mount | cut -f1) {FINGERPRINT} $how\" > /sdi-done; cat /sdi-done\n",
            plan.helper_image,
            mount_flag(m, "/sdi-mount")
        ));
    }
    d.push_str("FROM scratch\n");
    for i in 0..plan.mounts.len() {
        d.push_str(&format!("COPY --from=r{i} /sdi-done /r{i}\n"));
    }
    d
}

/// The helper Dockerfile that reads each store's fingerprint (in parallel, a stage a store)
/// after the build, to tell the stores that changed from those left as restored, with its size
/// and whether it is empty (a prune or garbage collection under the build empties a store).
/// `SDI_RUN` changes every run, so the reading is never served from cache.
pub fn check_dockerfile(plan: &MountsPlan) -> String {
    let mut d = String::new();
    for (i, m) in plan.mounts.iter().enumerate() {
        d.push_str(&format!(
            "FROM {} AS c{i}\nARG SDI_RUN\nRUN {} \\\n    if [ -n \"$(ls -A /sdi-mount)\" ]; then state=full; else state=empty; fi; \\\n    echo \"sdi-mount-fp {} {FINGERPRINT} $SDI_RUN $(du -sk /sdi-mount | cut -f1) $state\" > /sdi-fp; cat /sdi-fp\n",
            plan.helper_image,
            mount_flag(m, "/sdi-mount"),
            mount_dir(&m.id)
        ));
    }
    d.push_str("FROM scratch\n");
    for i in 0..plan.mounts.len() {
        d.push_str(&format!("COPY --from=c{i} /sdi-fp /c{i}\n"));
    }
    d
}

/// The helper Dockerfile that saves the stores `which` (indexes into the plan's): on top of the
/// helper image, one `RUN` a store copies it (once) into a directory of its own, so each store
/// is one layer; a store over the size limit is left empty. The label names the stores'
/// layers, so that a later save can keep the layer of a store that did not change.
pub fn save_dockerfile(plan: &MountsPlan, which: &[usize], costs: &str) -> String {
    let max_kib = plan.max_bytes / 1024;
    let mut d = format!("FROM {}\nARG SDI_RUN\n", plan.helper_image);
    let mut dirs = Vec::new();
    for m in which.iter().filter_map(|&i| plan.mounts.get(i)) {
        let dir = mount_dir(&m.id);
        d.push_str(&format!(
            "RUN {} \\\n    kib=$(du -sk /sdi-mount | cut -f1) && echo \"sdi-mount-size {dir} $kib $SDI_RUN\" && mkdir /{dir} && \\\n    if [ \"$kib\" -le {max_kib} ]; then cp -a /sdi-mount/. /{dir}/; else echo \"sdi-mount-too-big {dir}\"; fi\n",
            mount_flag(m, "/sdi-mount")
        ));
        dirs.push(dir);
    }
    d.push_str(&labels(&dirs, costs));
    d
}

/// The stores image's labels: which store each layer holds, and what restoring them cost.
fn labels(dirs: &[String], costs: &str) -> String {
    let (layers, costs_label) = (crate::mounts::image::LABEL, super::mount_costs::COSTS_LABEL);
    format!("LABEL {layers}=\"{}\" {costs_label}=\"{costs}\"\n", dirs.join(" "))
}

/// A shell script that makes `/{dir}` (the store as the saved image holds it) equal to
/// `/sdi-mount`, touching only what differs (names, sizes, times, modes): the step's layer is
/// then just the changed files and the removals. busybox has no rsync, comm or `tar -T`: awk
/// compares the two listings, cpio copies the list. Prints the changed bytes. A name that
/// climbs out (`..`, as a name split by a newline could read) is never removed.
fn sync_script(dir: &str) -> String {
    let list = "find . -mindepth 1 -exec stat -c '%s %Y %f %n' {} +";
    let name = "n = $0; sub(/^[^ ]+ [^ ]+ [^ ]+ /, \"\", n)";
    format!(
        "mkdir -p /{dir} && (cd /{dir} && {list}) > /tmp/sdi-old && (cd /sdi-mount && {list}) > /tmp/sdi-new && \\\n    awk 'FNR == NR {{ {name}; old[n] = $0; next }} {{ {name}; seen[n] = 1; if (old[n] != $0) {{ print n; b += $1 }} }} END {{ for (n in old) if (!(n in seen)) print n > \"/tmp/sdi-gone\"; print int(b / 1024) > \"/tmp/sdi-delta\" }}' /tmp/sdi-old /tmp/sdi-new > /tmp/sdi-changed && \\\n    touch /tmp/sdi-gone && (cd /{dir} && while IFS= read -r f; do case \"/$f/\" in */../*) ;; *) rm -rf -- \"./$f\" ;; esac; done < /tmp/sdi-gone) && \\\n    (cd /sdi-mount && cpio -o -H newc < /tmp/sdi-changed 2>/dev/null) | (cd /{dir} && cpio -idmu 2>/dev/null) && \\\n    echo \"sdi-mount-delta {dir} $(cat /tmp/sdi-delta)\""
    )
}

/// The helper Dockerfile that saves the stores `which` on top of the stores image they were
/// restored from (`from`, whose layers the label `dirs` names): one `RUN` a store brings its
/// directory up to date with the store, so its layer holds only what changed, and the label
/// names it after the others. Nothing of the old image is uploaded again.
pub fn save_on_top_dockerfile(
    plan: &MountsPlan,
    which: &[usize],
    (from, dirs): (&str, &[String]),
    costs: &str,
) -> String {
    let max_kib = plan.max_bytes / 1024;
    let mut d = format!("FROM {from}\nARG SDI_RUN\n");
    let mut dirs = dirs.to_vec();
    for m in which.iter().filter_map(|&i| plan.mounts.get(i)) {
        let dir = mount_dir(&m.id);
        d.push_str(&format!(
            "RUN {} \\\n    kib=$(du -sk /sdi-mount | cut -f1) && echo \"sdi-mount-size {dir} $kib $SDI_RUN\" && \\\n    if [ \"$kib\" -le {max_kib} ]; then {}; else echo \"sdi-mount-too-big {dir}\"; fi\n",
            mount_flag(m, "/sdi-mount"),
            sync_script(&dir)
        ));
        dirs.push(dir);
    }
    d.push_str(&labels(&dirs, costs));
    d
}

/// `BUILDPLATFORM` for the expansion: the runner's own platform (the action's binary is built
/// for it), where a builder made for the run runs.
fn build_platform() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "linux/arm64",
        _ => "linux/amd64",
    }
}

/// Restored for every run that builds, saved only by trusted ones, in the scope's own image;
/// untrusted runs read the main lane only (and nothing from a private package, without a
/// login). ACTIONS_CACHE_MODE applies.
pub(super) fn mounts_plan(
    ctx: &Context,
    decision: &Decision,
    mode: Mode,
    scope: Scope,
    api: &ApiFacts,
) -> Option<MountsPlan> {
    let inputs = &ctx.inputs;
    let text =
        ctx.dockerfile.as_ref().filter(|_| inputs.cache_mounts && matches!(mode, Mode::Build | Mode::PerPlatform))?;
    let platforms: Vec<&str> = inputs.platforms.iter().map(|p| p.as_str()).collect();
    let mounts = crate::dockerfile::cache_mounts_for(
        text,
        &inputs.build_args,
        (&platforms, build_platform()),
        inputs.target.as_deref(),
    );
    if mounts.is_empty() {
        return None;
    }
    let image = &inputs.cache_image;
    let platform = inputs.push_by_digest.then(|| inputs.platforms[0].as_str());
    let build = super::cache::build_scope(inputs);
    let tag = |lane: &str| super::cache::cache_tag(lane, build.as_deref(), platform);
    let main = format!("{image}:{}", tag(MOUNTS_TAG_MAIN));
    let pr = format!("{image}:{}", tag(&scope.pr_tag(MOUNTS_TAG_MAIN)));
    let trusted = decision.trust.trusted;
    let (mut restore_from, mut save_to) = match (trusted, decision.lane) {
        (true, Lane::Main) => (vec![main.clone()], Some(main)),
        (true, Lane::Pr) => (vec![pr.clone(), main], Some(pr)),
        (false, _) => (vec![main], None),
    };
    if !ctx.actions_cache_mode.allows_write() {
        save_to = None;
    }
    let private = api.package_visibility == Some(Lookup::Found(Visibility::Private));
    if !ctx.actions_cache_mode.allows_read() || (!trusted && private) {
        restore_from.clear();
    }
    Some(MountsPlan {
        mounts,
        restore_from,
        save_to,
        max_bytes: inputs.cache_mounts_max_bytes,
        helper_image: inputs.cache_mounts_image.clone(),
    })
}
