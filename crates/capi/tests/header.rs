//! include/lstmrt.h is what cbindgen makes of src/lib.rs now, and its
//! version macros are the crate's version. `LSTMRT_WRITE_HEADER=1` rewrites it.

use std::path::PathBuf;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn header_path() -> PathBuf {
    crate_dir().join("../../include/lstmrt.h")
}

fn generated() -> String {
    let dir = crate_dir();
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut out);
    String::from_utf8(out).expect("UTF-8")
}

#[test]
fn the_committed_header_is_the_generated_one() {
    let made = generated();
    let path = header_path();
    if std::env::var_os("LSTMRT_WRITE_HEADER").is_some() {
        std::fs::write(&path, &made).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == made,
        "include/lstmrt.h is stale: LSTMRT_WRITE_HEADER=1 cargo test -p lstmrt-capi --test header"
    );
}

#[test]
fn the_header_version_macros_are_the_crate_version() {
    let header = std::fs::read_to_string(header_path()).unwrap();
    let macro_value = |name: &str| -> String {
        let line =
            header.lines().find(|l| l.starts_with(&format!("#define {name} "))).unwrap_or_else(|| panic!("{name}"));
        line.split_whitespace().nth(2).unwrap().to_string()
    };
    let version: Vec<&str> = env!("CARGO_PKG_VERSION").split('.').collect();
    assert_eq!(macro_value("LSTMRT_VERSION_MAJOR"), version[0]);
    assert_eq!(macro_value("LSTMRT_VERSION_MINOR"), version[1]);
    assert_eq!(macro_value("LSTMRT_VERSION_PATCH"), version[2]);
    // SAFETY: lstmrt_version returns a static NUL-terminated string.
    let lib = unsafe { std::ffi::CStr::from_ptr(lstmrt_capi::lstmrt_version()) };
    assert_eq!(lib.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}
