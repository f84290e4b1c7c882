//! sigstore-python 4.5.1, the independent verifier the signing tests hand their bundles to
//! (`.ci/run` installs it).

use std::path::Path;
use std::process::Command;

/// The identity the test Sigstore's default claims certify (examples/sigstore-test-stack).
pub const IDENTITY: &str = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";

/// `sigstore --trust-config TRUST verify github --offline --bundle BUNDLE --cert-identity
/// IDENTITY --repository acme/app --trigger push [more] DIGEST`: whether it passed, and what it
/// printed. `None` where sigstore-python is not installed, which CI must not be.
pub fn verify_github(
    trust: &Path,
    bundle: &Path,
    identity: &str,
    more: &[&str],
    digest: &str,
) -> Option<(bool, String)> {
    let out = Command::new("python3")
        .args(["-m", "sigstore", "--trust-config"])
        .arg(trust)
        .args(["verify", "github", "--offline", "--bundle"])
        .arg(bundle)
        .args(["--cert-identity", identity, "--repository", "acme/app", "--trigger", "push"])
        .args(more)
        .arg(digest)
        .output()
        .expect("python3 runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if text.contains("No module named sigstore") {
        assert!(std::env::var_os("CI").is_none(), "CI must have sigstore-python (pip install sigstore==4.5.1)");
        eprintln!("skipped: sigstore-python is not installed (pip install sigstore==4.5.1)");
        return None;
    }
    Some((out.status.success(), text))
}
