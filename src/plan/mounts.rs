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

/// A listing of the store in the current directory: size, time, mode and name of everything
/// in it, one a line. The restore keeps it for the save, which compares the store with it.
const LISTING: &str = "find . -mindepth 1 -exec stat -c '%s %Y %f %n' {} +";

/// Where the restore helper finds the saved stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SavedCopy<'a> {
    /// The stores image, which BuildKit pulls and unpacks: `/sdi-saved/<dir>/`.
    Image(&'a str),
    /// A named build context with one tar a store (`/sdi-saved/<dir>.tar`), fetched by the
    /// action: each file is written once, straight into the store.
    Context(&'a str),
}

impl SavedCopy<'_> {
    /// `(test, copy into /sdi-mount, what to measure)` for store `dir`.
    fn commands(&self, dir: &str) -> (String, String, String) {
        match self {
            SavedCopy::Image(_) => {
                let at = format!("/sdi-saved/{dir}");
                (format!("[ -d {at} ]"), format!("cp -a {at}/. /sdi-mount/"), at)
            }
            SavedCopy::Context(_) => {
                let at = format!("/sdi-saved/{dir}.tar");
                (format!("[ -f {at} ]"), format!("tar --numeric-owner -xf {at} -C /sdi-mount"), at)
            }
        }
    }

    fn bind(&self) -> String {
        let from = match self {
            SavedCopy::Image(_) => "saved",
            SavedCopy::Context(name) => name,
        };
        format!("--mount=type=bind,from={from},target=/sdi-saved")
    }
}

/// The helper Dockerfile that copies the saved contents (`saved`) into the stores: one stage a
/// store, all of them needed by the last stage, so BuildKit fills them in parallel. The last
/// stage holds each store's listing as restored (`<dir>.list`), for the save.
/// `touched`: stores a stopped build step had begun to write. On a builder made for the run
/// (`fresh`) they were empty before, so what they hold is that step's partial files: emptied,
/// they get the saved copy. On a builder that outlives runs they may have been warm: kept only
/// when they hold at least half the saved copy's size (a stop comes within a moment of the
/// step's start; a warm store is whole).
/// `emptied`: stores of the plan that are only emptied (left to their steps, but a stopped step
/// began to write them on a fresh builder, where they were empty before).
pub fn restore_dockerfile(
    plan: &MountsPlan,
    saved: SavedCopy<'_>,
    (touched, fresh): (&[String], bool),
    emptied: &[String],
) -> String {
    // No `# syntax=` line: the builder's own frontend reads these, no frontend image is pulled.
    let mut d = match saved {
        SavedCopy::Image(from) => format!("FROM {from} AS saved\n"),
        SavedCopy::Context(_) => String::new(),
    };
    for (i, m) in plan.mounts.iter().enumerate() {
        let dir = mount_dir(&m.id);
        let fill = match (touched.contains(&m.id), fresh) {
            _ if emptied.contains(&m.id) => {
                "find /sdi-mount -mindepth 1 -maxdepth 1 -exec rm -rf {} +; how=none".into()
            }
            (true, fresh) => refill(m, &dir, saved, fresh),
            (false, _) => format!("if [ -n \"$(ls -A /sdi-mount)\" ]; then how=warm; elif {}", copy(m, &dir, saved)),
        };
        // `SDI_RUN` (new every run) keeps a builder that outlives runs from serving this step
        // from its cache.
        d.push_str(&format!(
            "FROM {} AS r{i}\nARG SDI_RUN\nRUN {} {} \\\n    {fill}; \\\n    echo \"sdi-restored {dir} $(du -sk /sdi-mount | cut -f1) {FINGERPRINT} $how\" > /sdi-done; cat /sdi-done; \\\n    (cd /sdi-mount && {LISTING}) > /sdi-list\n",
            plan.helper_image,
            mount_flag(m, "/sdi-mount"),
            saved.bind()
        ));
    }
    d.push_str("FROM scratch\n");
    for (i, m) in plan.mounts.iter().enumerate() {
        d.push_str(&format!(
            "COPY --from=r{i} /sdi-done /r{i}\nCOPY --from=r{i} /sdi-list /{}.list\n",
            mount_dir(&m.id)
        ));
    }
    d
}

/// `then <copy the saved copy of dir, or say there is none>; fi`, after an `if`/`elif` test.
fn copy(m: &crate::dockerfile::CacheMount, dir: &str, saved: SavedCopy<'_>) -> String {
    // Saved layers come back owned by root: give a store declared with uid/gid its owner.
    let chown = match (&m.uid, &m.gid) {
        (None, None) => String::new(),
        (uid, gid) => {
            format!(" && chown -R {}:{} /sdi-mount", uid.as_deref().unwrap_or("0"), gid.as_deref().unwrap_or("0"))
        }
    };
    let (test, copy, _) = saved.commands(dir);
    format!("{test}; then {copy}{chown}; how=image; else how=none; fi")
}

/// A store a stopped step began to write: emptied and filled again (on a fresh builder), or
/// (on one that outlives runs) kept when it holds at least half the saved copy's size.
fn refill(m: &crate::dockerfile::CacheMount, dir: &str, saved: SavedCopy<'_>, fresh: bool) -> String {
    let replace = format!("find /sdi-mount -mindepth 1 -maxdepth 1 -exec rm -rf {{}} +; if {}", copy(m, dir, saved));
    if fresh {
        return replace;
    }
    let (_, _, at) = saved.commands(dir);
    format!(
        "saved=$(du -sk {at} 2>/dev/null | cut -f1); if [ -n \"$(ls -A /sdi-mount)\" ] && [ $(du -sk /sdi-mount | cut -f1) -ge $(( ${{saved:-0}} / 2 )) ]; then how=warm; else {replace}; fi"
    )
}

/// The helper Dockerfile that reads each store's fingerprint (in parallel, a stage a store)
/// after the build, to tell the stores that changed from those left as restored, with its size
/// and whether it is empty (a prune or garbage collection under the build empties a store).
/// With the listings the restore kept (named context `lists`), it also counts the names the
/// build removed from each store (`-` without one): a save of what changed cannot remove them.
/// `SDI_RUN` changes every run, so the reading is never served from cache.
pub fn check_dockerfile(plan: &MountsPlan, lists: Option<&str>) -> String {
    let mut d = String::new();
    for (i, m) in plan.mounts.iter().enumerate() {
        let dir = mount_dir(&m.id);
        let (bind, gone) = match lists {
            Some(name) => (
                format!(" --mount=type=bind,from={name},target=/sdi-lists"),
                format!(
                    "if [ -f /sdi-lists/{dir}.list ]; then gone=$(cd /sdi-mount && find . -mindepth 1 | awk 'FNR == NR {{ seen[$0] = 1; next }} {{ {NAME}; if (!(n in seen)) g++ }} END {{ print g + 0 }}' - /sdi-lists/{dir}.list); else gone=-; fi; "
                ),
            ),
            None => (String::new(), "gone=-; ".into()),
        };
        d.push_str(&format!(
            "FROM {} AS c{i}\nARG SDI_RUN\nRUN {}{bind} \\\n    if [ -n \"$(ls -A /sdi-mount)\" ]; then state=full; else state=empty; fi; {gone}\\\n    echo \"sdi-mount-fp {dir} {FINGERPRINT} $SDI_RUN $(du -sk /sdi-mount | cut -f1) $state $gone\" > /sdi-fp; cat /sdi-fp\n",
            plan.helper_image,
            mount_flag(m, "/sdi-mount"),
        ));
    }
    d.push_str("FROM scratch\n");
    for i in 0..plan.mounts.len() {
        d.push_str(&format!("COPY --from=c{i} /sdi-fp /c{i}\n"));
    }
    d
}

/// awk: the name of a listing line (`size time mode name`) into `n`.
const NAME: &str = "n = $0; sub(/^[^ ]+ [^ ]+ [^ ]+ /, \"\", n)";

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
    let (layers, costs_label) = (crate::stores_image::LABEL, super::mount_costs::COSTS_LABEL);
    format!("LABEL {layers}=\"{}\" {costs_label}=\"{costs}\"\n", dirs.join(" "))
}

/// A shell script that copies into `/sdi-out/{dir}` what of `/sdi-mount` differs from the
/// listing the restore kept (names, sizes, times, modes): the files a save on top adds. busybox
/// has no rsync, comm or `tar -T`: awk compares the two listings, cpio copies the list. Prints
/// the changed bytes.
fn delta_script(dir: &str) -> String {
    format!(
        "(cd /sdi-mount && {LISTING}) > /tmp/sdi-new && \\\n    awk 'FNR == NR {{ {NAME}; old[n] = $0; next }} {{ {NAME}; if (old[n] != $0) {{ print n; b += $1 }} }} END {{ print int(b / 1024) > \"/tmp/sdi-delta\" }}' /sdi-lists/{dir}.list /tmp/sdi-new > /tmp/sdi-changed && \\\n    (cd /sdi-mount && cpio -o -H newc < /tmp/sdi-changed 2>/dev/null) | (cd /sdi-out/{dir} && cpio -idmu 2>/dev/null) && \\\n    echo \"sdi-mount-delta {dir} $(cat /tmp/sdi-delta)\""
    )
}

/// The helper Dockerfile that saves the stores `which` on top of the stores image they were
/// restored from (`from`, whose layers the label `dirs` names): a stage a store copies what
/// changed since the restore (its listing, in the named context `lists`), and `COPY --link`
/// puts each on the image as a layer of its own: BuildKit neither pulls nor unpacks the old
/// image, and nothing of it is uploaded again. It cannot remove a file: a store the build
/// removed files from is saved whole (the check counts them).
pub fn save_on_top_dockerfile(
    plan: &MountsPlan,
    which: &[usize],
    (from, dirs, lists): (&str, &[String], &str),
    costs: &str,
) -> String {
    let max_kib = plan.max_bytes / 1024;
    let mut d = String::new();
    let mut dirs = dirs.to_vec();
    let mut stages = Vec::new();
    for (i, m) in which.iter().filter_map(|&i| plan.mounts.get(i)).enumerate() {
        let dir = mount_dir(&m.id);
        d.push_str(&format!(
            "FROM {} AS d{i}\nARG SDI_RUN\nRUN {} --mount=type=bind,from={lists},target=/sdi-lists \\\n    kib=$(du -sk /sdi-mount | cut -f1) && echo \"sdi-mount-size {dir} $kib $SDI_RUN\" && mkdir -p /sdi-out/{dir} && \\\n    if [ \"$kib\" -le {max_kib} ]; then {}; else echo \"sdi-mount-too-big {dir}\"; fi\n",
            plan.helper_image,
            mount_flag(m, "/sdi-mount"),
            delta_script(&dir)
        ));
        stages.push(format!("COPY --link --from=d{i} /sdi-out/ /\n"));
        dirs.push(dir);
    }
    d.push_str(&format!("FROM {from}\n"));
    d.push_str(&stages.concat());
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
