//! A store's saved layers as one tar of its files, as the layers leave them: what the restore
//! helper unpacks straight into the store. BuildKit pulling the stores image would write every
//! file twice (unpacked into a snapshot, then copied into the store) and hash them all for the
//! step's cache key; one tar in the build context is written once and hashed as one file.
//! Pure: layers in (uncompressed tar streams, oldest first), one tar out.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// A path of a store layer relative to the store's directory (`""`: the directory itself), or
/// `None` for anything outside it. A name that climbs out is refused.
fn relative(path: &std::path::Path, dir: &str) -> io::Result<Option<String>> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            std::path::Component::Normal(p) => parts.push(p.to_str().ok_or_else(|| invalid(path))?.to_string()),
            std::path::Component::CurDir | std::path::Component::RootDir => {}
            _ => return Err(invalid(path)),
        }
    }
    Ok(match parts.split_first() {
        Some((first, rest)) if first == dir => Some(rest.join("/")),
        _ => None,
    })
}

fn invalid(path: &std::path::Path) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("unexpected path in a stores layer: {}", path.display()))
}

/// The proper ancestors of a relative path, nearest last (`a/b/c` → `""`, `a`, `a/b`).
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let ends = path.match_indices('/').map(|(i, _)| i);
    std::iter::once("").chain(ends.map(|i| &path[..i])).filter(move |a| *a != path)
}

/// What a newer layer does to the files of the layers under it: the paths it holds (and
/// whether each is a directory), those it removes (whiteouts) and the directories it empties
/// (opaque).
#[derive(Debug, Default)]
pub struct Shadow {
    entries: HashMap<String, bool>,
    whiteouts: HashSet<String>,
    opaque: HashSet<String>,
}

impl Shadow {
    /// Reads a layer's names (its data is skipped).
    pub fn read(layer: impl Read, dir: &str) -> io::Result<Shadow> {
        let mut shadow = Shadow::default();
        let mut archive = tar::Archive::new(layer);
        for entry in archive.entries()? {
            let entry = entry?;
            let Some(rel) = relative(&entry.path()?, dir)? else { continue };
            let (parent, name) = rel.rsplit_once('/').unwrap_or(("", &rel));
            if name == OPAQUE {
                shadow.opaque.insert(parent.to_string());
            } else if let Some(gone) = name.strip_prefix(WHITEOUT) {
                shadow.whiteouts.insert(join(parent, gone));
            } else {
                shadow.entries.insert(rel, entry.header().entry_type().is_dir());
            }
        }
        Ok(shadow)
    }

    /// Whether this layer replaces or removes `path` of a layer under it.
    fn hides(&self, path: &str) -> bool {
        self.entries.contains_key(path)
            || self.whiteouts.contains(path)
            || ancestors(path)
                .any(|a| self.whiteouts.contains(a) || self.opaque.contains(a) || self.entries.get(a) == Some(&false))
    }
}

fn join(parent: &str, name: &str) -> String {
    match parent {
        "" => name.to_string(),
        p => format!("{p}/{name}"),
    }
}

/// Writes one store's layers as one tar whose names are relative to the store. Directories
/// come last: an unpacker sets a directory's time as it reaches it, and files written into it
/// afterwards would change it (busybox's tar does not defer them as GNU tar does).
pub struct Flattener<W: Write> {
    out: tar::Builder<W>,
    dirs: Vec<(tar::Header, String)>,
    /// Bytes of the files written.
    pub bytes: u64,
}

impl<W: Write> Flattener<W> {
    pub fn new(out: W) -> Self {
        Flattener { out: tar::Builder::new(out), dirs: Vec::new(), bytes: 0 }
    }

    /// Adds what `layer` (store directory `dir`) holds that none of the `newer` layers hide.
    pub fn add_layer(&mut self, layer: impl Read, dir: &str, newer: &[Shadow]) -> io::Result<()> {
        let mut archive = tar::Archive::new(layer);
        for entry in archive.entries()? {
            let mut entry = entry?;
            let Some(rel) = relative(&entry.path()?, dir)? else { continue };
            let name = rel.rsplit('/').next().unwrap_or_default();
            if name.starts_with(WHITEOUT) || newer.iter().any(|s| s.hides(&rel)) {
                continue;
            }
            let mut header = entry.header().clone();
            let path = if rel.is_empty() { "./".to_string() } else { rel.clone() };
            match header.entry_type() {
                tar::EntryType::Directory => self.dirs.push((header, path)),
                tar::EntryType::Symlink => {
                    let target = entry.link_name()?.ok_or_else(|| invalid(rel.as_ref()))?.into_owned();
                    self.out.append_link(&mut header, &path, target)?;
                }
                tar::EntryType::Link => {
                    let target = entry.link_name()?.ok_or_else(|| invalid(rel.as_ref()))?.into_owned();
                    let target = relative(&target, dir)?.ok_or_else(|| invalid(&target))?;
                    self.out.append_link(&mut header, &path, target)?;
                }
                _ => {
                    self.bytes += header.size()?;
                    self.out.append_data(&mut header, &path, &mut entry)?;
                }
            }
        }
        Ok(())
    }

    /// Writes the directories, deepest first, and ends the tar.
    pub fn finish(mut self) -> io::Result<W> {
        let mut dirs = std::mem::take(&mut self.dirs);
        let depth = |p: &str| if p == "./" { 0 } else { p.matches('/').count() + 1 };
        dirs.sort_by_key(|(_, p)| std::cmp::Reverse(depth(p)));
        for (mut header, path) in dirs {
            self.out.append_data(&mut header, &path, io::empty())?;
        }
        self.out.into_inner()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    enum E<'a> {
        Dir(&'a str),
        File(&'a str, &'a str),
        Link(&'a str, &'a str),
        Hard(&'a str, &'a str),
    }

    fn layer(entries: &[E]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mtime(1_700_000_000);
            h.set_mode(0o644);
            h.set_size(0);
            match e {
                E::Dir(p) => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o755);
                    b.append_data(&mut h, p, io::empty()).unwrap();
                }
                E::File(p, text) => {
                    h.set_size(text.len() as u64);
                    b.append_data(&mut h, p, text.as_bytes()).unwrap();
                }
                E::Link(p, t) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    b.append_link(&mut h, p, t).unwrap();
                }
                E::Hard(p, t) => {
                    h.set_entry_type(tar::EntryType::Link);
                    b.append_link(&mut h, p, t).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    /// `(path, type, content or link target)` of each entry, in order.
    fn listing(tar: &[u8]) -> Vec<String> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let path = e.path().unwrap().display().to_string();
                let link = e.link_name().unwrap().map(|l| l.display().to_string());
                let mut text = String::new();
                e.read_to_string(&mut text).unwrap();
                match e.header().entry_type() {
                    tar::EntryType::Directory => format!("{path} dir"),
                    tar::EntryType::Symlink => format!("{path} -> {}", link.unwrap()),
                    tar::EntryType::Link => format!("{path} => {}", link.unwrap()),
                    _ => format!("{path} = {text}"),
                }
            })
            .collect()
    }

    fn flatten(layers: &[Vec<u8>], dir: &str) -> Vec<String> {
        let shadows: Vec<Shadow> = layers.iter().map(|l| Shadow::read(l.as_slice(), dir).unwrap()).collect();
        let mut f = Flattener::new(Vec::new());
        for (i, l) in layers.iter().enumerate() {
            f.add_layer(l.as_slice(), dir, &shadows[i + 1..]).unwrap();
        }
        listing(&f.finish().unwrap())
    }

    #[test]
    fn one_layer_keeps_its_files_relative_to_the_store_with_directories_last() {
        let whole = layer(&[
            E::Dir("m-a/"),
            E::Dir("m-a/pkg/"),
            E::File("m-a/pkg/index.js", "one"),
            E::Link("m-a/latest", "pkg/index.js"),
            E::Hard("m-a/copy.js", "m-a/pkg/index.js"),
            E::Dir("bin/"),
            E::File("bin/sh", "busybox"),
        ]);
        let expected = ["pkg/index.js = one", "latest -> pkg/index.js", "copy.js => pkg/index.js", "pkg dir", "./ dir"];
        assert_eq!(flatten(&[whole], "m-a"), expected);
    }

    #[test]
    fn a_newer_layer_replaces_removes_and_empties_what_is_under_it() {
        let whole = layer(&[
            E::Dir("m-a/"),
            E::File("m-a/kept", "old"),
            E::File("m-a/changed", "old"),
            E::File("m-a/gone", "old"),
            E::Dir("m-a/tree/"),
            E::File("m-a/tree/leaf", "old"),
            E::Dir("m-a/opaque/"),
            E::File("m-a/opaque/stale", "old"),
            E::Dir("m-a/became-file/"),
            E::File("m-a/became-file/inside", "old"),
        ]);
        let changes = layer(&[
            E::Dir("m-a/"),
            E::File("m-a/changed", "new"),
            E::File("m-a/.wh.gone", ""),
            E::File("m-a/.wh.tree", ""),
            E::Dir("m-a/opaque/"),
            E::File("m-a/opaque/.wh..wh..opq", ""),
            E::File("m-a/opaque/fresh", "new"),
            E::File("m-a/became-file", "new"),
        ]);
        let expected =
            ["kept = old", "changed = new", "opaque/fresh = new", "became-file = new", "opaque dir", "./ dir"];
        assert_eq!(flatten(&[whole, changes], "m-a"), expected);
    }

    #[test]
    fn a_name_that_climbs_out_of_the_store_is_refused() {
        let bad = layer(&[E::File("m-a/ok", "x")]);
        let mut raw = bad.clone();
        // Rewrite the name in place (the tar crate refuses to write `..`), fixing the checksum.
        raw[..7].copy_from_slice(b"m-a/../");
        raw[7..100].fill(0);
        raw[7..9].copy_from_slice(b"ok");
        let mut h = tar::Header::new_old();
        h.as_mut_bytes().copy_from_slice(&raw[..512]);
        h.set_cksum();
        raw[..512].copy_from_slice(h.as_bytes());
        let mut f = Flattener::new(Vec::new());
        let err = f.add_layer(raw.as_slice(), "m-a", &[]).unwrap_err();
        assert!(err.to_string().contains("m-a/../ok"), "{err}");
    }

    #[test]
    fn ancestors_are_every_directory_above_a_path() {
        assert_eq!(ancestors("a/b/c").collect::<Vec<_>>(), ["", "a", "a/b"]);
        assert_eq!(ancestors("a").collect::<Vec<_>>(), [""]);
        assert_eq!(ancestors("").count(), 0);
    }
}
