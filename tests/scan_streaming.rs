//! The scan reads layers as streams: a value is found wherever the reads split it (every
//! encoded form, every compression), and memory does not grow with the layer (an allocation
//! counter watches a scan of a layer far bigger than the bound).

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use sdi::oci::{Compression, Layer, layer_blob};
use sdi::verify::{Encoding, Needles, scan_layer};

/// Counts live heap bytes and their peak, for the whole test binary.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
            PEAK.fetch_max(live, Ordering::SeqCst);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The tests of this binary measure memory one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

const VALUE: &[u8] = b"npm_Str4ddl1ngS3cretValue";

/// At most `n` bytes a read: every boundary the decompressor and the matcher can meet.
struct Trickle<'a> {
    data: &'a [u8],
    n: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.n.min(buf.len()).min(self.data.len());
        buf[..k].copy_from_slice(&self.data[..k]);
        self.data = &self.data[k..];
        Ok(k)
    }
}

/// Every form the scan looks for, as it would appear inside a larger file.
fn forms() -> Vec<(Vec<u8>, Encoding)> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = vec![(VALUE.to_vec(), Encoding::Raw)];
    for k in 0..3 {
        // `user:<value>` style, at each of the three alignments inside a longer base64 text.
        let mut plain = b"x".repeat(k);
        plain.extend_from_slice(VALUE);
        plain.extend_from_slice(b"@registry.example.com");
        out.push((b64.encode(&plain).into_bytes(), Encoding::Base64));
    }
    let hex: String = VALUE.iter().map(|b| format!("{b:02x}")).collect();
    out.push((hex.to_uppercase().into_bytes(), Encoding::Hex));
    out.push((hex.into_bytes(), Encoding::Hex));
    out.push((b"token=npm_Str4ddl1ngS3cretValue%2B".to_vec(), Encoding::Raw));
    out
}

#[test]
fn a_value_split_across_reads_is_found_in_every_form_and_compression() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let needles = Needles::new(&[("npm".to_string(), VALUE.to_vec())]);
    for (form, encoding) in forms() {
        // Around the matcher's and the decoder's own 64 KiB buffers, and far from them.
        for offset in [0, 65_530, 65_536 - form.len() / 2, 131_069] {
            let mut content = vec![b'.'; offset];
            content.extend_from_slice(&form);
            content.extend_from_slice(&[b'.'; 100]);
            for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
                let layer = Layer { files: vec![("app/config.txt".into(), content.clone())], compression };
                let (blob, media) = layer_blob(&layer);
                for n in [1, 3, 7, 4096] {
                    let found = scan_layer("sha256:l", media, Trickle { data: &blob, n }, None, &needles).unwrap();
                    let what = format!("{encoding:?} at {offset}, {compression:?}, reads of {n}");
                    assert_eq!(found.hits.len(), 1, "{what}");
                    assert_eq!(found.hits[0].encoding, encoding, "{what}");
                    assert_eq!(found.compressed, blob.len() as u64, "{what}: every byte read");
                }
            }
        }
    }
    // The URL-encoded form on its own: a value with characters that get escaped.
    let odd = b"p@ss/w0rd+with=chars";
    let needles = Needles::new(&[("odd".to_string(), odd.to_vec())]);
    let layer = Layer {
        files: vec![("f".into(), b"x=p%40ss%2Fw0rd%2Bwith%3Dchars&y".to_vec())],
        compression: Compression::Gzip,
    };
    let (blob, media) = layer_blob(&layer);
    let found = scan_layer("sha256:l", media, Trickle { data: &blob, n: 2 }, None, &needles).unwrap();
    assert_eq!(found.hits.iter().map(|h| h.encoding).collect::<Vec<_>>(), [Encoding::UrlEncoded]);
}

/// A tar stream of one file of `size` bytes, made as it is read (never held), with the value
/// written at its very end.
struct BigTar {
    header: Vec<u8>,
    size: u64,
    sent: u64,
    block: Vec<u8>,
}

impl BigTar {
    fn new(size: u64) -> BigTar {
        let mut h = tar::Header::new_gnu();
        h.set_path("data/big.bin").unwrap();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_cksum();
        let mut x: u32 = 0x9e37_79b9;
        let block = (0..65_536)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        BigTar { header: h.as_bytes().to_vec(), size, sent: 0, block }
    }
}

impl Read for BigTar {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let total = 512 + self.size + 1024 + (512 - self.size % 512) % 512;
        if self.sent >= total {
            return Ok(0);
        }
        let pos = self.sent;
        let n = if pos < 512 {
            let k = (512 - pos as usize).min(buf.len());
            buf[..k].copy_from_slice(&self.header[pos as usize..pos as usize + k]);
            k
        } else if pos < 512 + self.size {
            let at = pos - 512;
            let k = ((self.size - at) as usize).min(buf.len()).min(65_536 - (at % 65_536) as usize);
            let tail_start = self.size - VALUE.len() as u64;
            for (i, b) in buf[..k].iter_mut().enumerate() {
                let p = at + i as u64;
                *b = if p >= tail_start { VALUE[(p - tail_start) as usize] } else { self.block[(p % 65_536) as usize] };
            }
            k
        } else {
            let k = ((total - pos) as usize).min(buf.len());
            buf[..k].fill(0);
            k
        };
        self.sent += n as u64;
        Ok(n)
    }
}

#[test]
fn memory_does_not_grow_with_the_layer() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let needles = Needles::new(&[("npm".to_string(), VALUE.to_vec())]);
    const SIZE: u64 = 96 << 20;
    const BOUND: usize = 8 << 20;
    for gzip in [false, true] {
        let reader: Box<dyn Read> = if gzip {
            Box::new(flate2::read::GzEncoder::new(BigTar::new(SIZE), flate2::Compression::none()))
        } else {
            Box::new(BigTar::new(SIZE))
        };
        let media =
            if gzip { "application/vnd.oci.image.layer.v1.tar+gzip" } else { "application/vnd.oci.image.layer.v1.tar" };
        let base = LIVE.load(Ordering::SeqCst);
        PEAK.store(base, Ordering::SeqCst);
        let found = scan_layer("sha256:big", media, reader, None, &needles).unwrap();
        let peak = PEAK.load(Ordering::SeqCst) - base;
        assert_eq!(found.hits.len(), 1, "the value at the end of {SIZE} bytes is found (gzip: {gzip})");
        assert!(found.uncompressed > SIZE);
        assert!(peak < BOUND, "scanning {} MiB took {} KiB of heap (gzip: {gzip})", SIZE >> 20, peak >> 10);
    }
}
