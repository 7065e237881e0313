//! Brings the natively built fixtures of the browser parity test (`tests/browser_parity.rs`)
//! into the build:
//! `scripts/test-wasm.sh` builds them with the native `neardb` and names their folder in
//! `NEARDB_WASM_FIXTURES`. Without it the files are empty and the parity test says it skipped.
use std::path::{Path, PathBuf};
use std::{env, fs};

const FILES: [&str; 22] = [
    "base.fvecs",
    "query.fvecs",
    "hnsw.neardb",
    "results.json",
    "hnsw-sq8.neardb",
    "results-sq8.json",
    "hnsw-f16.neardb",
    "results-f16.json",
    "hnsw-sq8f16.neardb",
    "results-sq8f16.json",
    "ivfpq.neardb",
    "results-ivfpq.json",
    "binary.neardb",
    "results-binary.json",
    "vamana.neardb",
    "results-vamana.json",
    "allow-wide.u8",
    "allow-tight.u8",
    "results-allow-wide.json",
    "results-allow-tight.json",
    "results-vamana-allow-wide.json",
    "results-vamana-allow-tight.json",
];

fn main() {
    println!("cargo:rerun-if-env-changed=NEARDB_WASM_FIXTURES");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR for build scripts"));
    let source = env::var_os("NEARDB_WASM_FIXTURES");
    for name in FILES {
        let dst = out.join(name);
        match &source {
            Some(dir) => {
                let src = Path::new(dir).join(name);
                println!("cargo:rerun-if-changed={}", src.display());
                if let Err(e) = fs::copy(&src, &dst) {
                    panic!(
                        "NEARDB_WASM_FIXTURES names {}, but {} cannot be copied: {e}",
                        Path::new(dir).display(),
                        src.display()
                    );
                }
            }
            None => fs::write(&dst, b"").expect("OUT_DIR is writable"),
        }
    }
}
