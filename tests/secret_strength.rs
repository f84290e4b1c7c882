//! The strength classifier behind the proof ledger's value keys (`verify::strength`): real token
//! shapes are strong, what people type is weak. Token bodies below are random (drawn for this
//! table), in the formats the services document; none is a live credential.

use sdi::verify::strength::{BAR, Strength, classify};

fn strong(value: &str) -> (&'static str, f64) {
    match classify(value.as_bytes()) {
        Strength::Strong { what, bits } => (what, bits),
        Strength::Weak { why } => panic!("{value:?} was judged weak: {why}"),
    }
}

fn weak(value: &[u8]) -> String {
    match classify(value) {
        Strength::Weak { why } => why,
        s => panic!("{:?} was judged strong: {s:?}", String::from_utf8_lossy(value)),
    }
}

#[test]
fn issued_tokens_are_strong() {
    let table = [
        ("ghp_R8kT2mWq9ZpL4vXc7NbY1dFh6JsG3aEo0Ui5", "a GitHub token"),
        ("ghs_0aZ9yXb8WcV7dUe6TfS5gRh4QiP3jOk2NlM1", "a GitHub token"),
        (
            "github_pat_11ABCDEFG0q3Rk8sLm2NpT5v_W7xYz9bC4dF6gH1jK3mN5pQ8rS0tU2vW4xY6zA8bC0dE2fG4hJ6kL8mN0pQ2rS",
            "a GitHub fine-grained token",
        ),
        ("npm_Xk29fJq0LmZ8rTb3VwY6hN1cPdE7sGa4uQiK", "an npm token"),
        ("glpat-xR4_kT9bQ2mZ7vN-cY5w", "a GitLab token"),
        ("dckr_pat_Qm7Zx2Vb9Nc4Lk8Jh3Gf6Ds1Aw0E", "a Docker Hub token"),
        ("xoxb-2468013579-1357924680-Zq8Xw7Ev6Rt5Yu4Io3Pa2Sd1", "a Slack token"),
        // An AWS secret access key (40 characters of base64's alphabet), a 256-bit hex key, 32
        // random bytes in base64, a UUIDv4: no format, random-looking.
        ("q9Xf2Lk+Vb7ZmR0pT4sW/yN8cH3jD6gA1eK5uIoE", "a random-looking value"),
        ("3f9c2a7be41d08c56fa97e2b1034d5c8e6f7a9b0c2d4e6f8a1b3c5d7e9f0a2b4", "a random-looking value"),
        ("h7Jq2xV9mL4cZ0pR6tW3yB8nF1sK5gD2aE7uI9oQbXc=", "a random-looking value"),
        ("4b0e5f8a-93d2-4c71-b6ae-2f8d07c19e35", "a random-looking value"),
    ];
    for (value, what) in table {
        let (got, bits) = strong(value);
        assert_eq!(got, what, "{value}");
        assert!(bits >= BAR, "{value}: {bits}");
    }
}

#[test]
fn files_holding_a_token_are_strong_by_it() {
    let npmrc = "registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken=npm_Xk29fJq0LmZ8rTb3VwY6hN1cPdE7sGa4uQiK\nalways-auth=true\n";
    assert_eq!(strong(npmrc).0, "an npm token");
    assert_eq!(strong("export GITHUB_TOKEN=\"ghp_R8kT2mWq9ZpL4vXc7NbY1dFh6JsG3aEo0Ui5\"").0, "a GitHub token");
}

#[test]
fn what_people_type_is_weak() {
    let table: [&[u8]; 16] = [
        b"hunter2",
        b"123456",
        b"password",
        b"P@ssw0rd2024!",
        b"Summer2024!Summer2024!",
        b"correct horse battery staple",
        b"correcthorsebatterystaple",
        b"mysecretpassword",
        b"ThisIsMyVeryLongAndSecurePassphrase2024!",
        b"bench-secret-value-0123456789",
        b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        b"abcdefghijklmnopqrstuvwxyz0123456789ABCD",
        b"0123456789012345678901234567890123456789",
        b"DB_PASSWORD=changeme\nDB_USER=admin\n",
        b"",
        b"\xff\xfe\x00\x01binary",
    ];
    for value in table {
        weak(value);
    }
    // Placeholders in a token's format are no token.
    for placeholder in [
        "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "ghp_123456789012345678901234567890123456",
        "npm_abcdabcdabcdabcdabcdabcdabcdabcdabcd",
        "ghp_short",
        "glpat-0123456789",
    ] {
        weak(placeholder.as_bytes());
    }
    let why = weak(b"hunter2hunter2");
    assert!(why.contains("14-character") && why.contains("112"), "{why}");
    assert!(!why.contains("hunter"), "the reason never quotes the value: {why}");
}

/// Random values in the formats above, drawn many times: the estimate must not flip for a
/// token of the same shape (the bench's and the tests' tokens are such draws).
#[test]
fn random_draws_of_issued_formats_are_all_strong() {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    const B62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const HEX: &[u8] = b"0123456789abcdef";
    for _ in 0..2000 {
        let mut draw =
            |alphabet: &[u8], n: usize| (0..n).map(|_| alphabet[next(alphabet.len())] as char).collect::<String>();
        for value in [
            format!("ghp_{}", draw(B62, 36)),
            format!("npm_{}", draw(B62, 36)),
            draw(B64, 40),
            draw(B62, 40),
            draw(HEX, 64),
            draw(B64, 43),
        ] {
            strong(&value);
        }
    }
}
