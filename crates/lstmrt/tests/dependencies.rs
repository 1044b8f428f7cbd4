//! The crate an embedder adds stays small: at most 25 crates in its normal
//! dependency tree (itself included), and no argument parser, archive, hash
//! or JSON crate among them.

use std::process::Command;

#[test]
fn the_runtime_tree_is_small_and_has_no_cli_archive_hash_or_json_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "-p", "lstmrt", "-e", "normal", "--prefix", "none", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(out.status.success(), "cargo tree: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut crates: Vec<&str> = text.lines().filter_map(|l| l.split_whitespace().next()).collect();
    crates.sort();
    crates.dedup();
    assert!(crates.contains(&"lstmrt") && crates.contains(&"lstmrt-kernels"), "{crates:?}");
    assert!(crates.len() <= 25, "{} crates in lstmrt's tree: {crates:?}", crates.len());
    let forbidden =
        ["clap", "zip", "flate2", "sha2", "digest", "serde_json", "safetensors", "indicatif", "lstmrt-import"];
    for name in forbidden {
        assert!(!crates.contains(&name), "{name} is in lstmrt's tree: {crates:?}");
    }
}
