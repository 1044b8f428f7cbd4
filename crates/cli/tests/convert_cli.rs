//! The lstm-convert binary: exit codes, messages, --help, --check, and that
//! nothing is left at OUTPUT when a conversion fails.

mod common;

use common::convert::{lstm_convert, run_convert, stderr, stdout};
use common::{TempDir, fixtures};

fn pt(case: &str) -> std::path::PathBuf {
    fixtures().join("convert/pytorch").join(case).join("model.pt")
}

fn args<'a>(src: &'a std::path::Path, out: &'a std::path::Path, extra: &[&'a str]) -> Vec<&'a std::ffi::OsStr> {
    let mut v: Vec<&std::ffi::OsStr> = vec![src.as_os_str(), "-o".as_ref(), out.as_os_str()];
    v.extend(extra.iter().map(|s| std::ffi::OsStr::new(*s)));
    v
}

#[test]
fn help_documents_every_option_with_an_example() {
    let o = lstm_convert().arg("--help").output().unwrap();
    assert!(o.status.success());
    let help = stdout(&o);
    for option in [
        "--output",
        "--from",
        "--dtype",
        "--check",
        "--tolerance",
        "--embedding",
        "--head",
        "--head-activation",
        "--cell",
        "--prefix",
    ] {
        assert!(help.contains(option), "--help lacks {option}");
        let example = format!("Example: {option} ");
        let in_examples = help.lines().any(|l| l.trim_start().starts_with("lstm-convert ") && l.contains(option));
        assert!(
            help.contains(&example) || in_examples || option == "--check" || option == "--output",
            "--help has no example for {option}"
        );
    }
    assert!(help.contains("Exit codes"));
    assert!(help.contains("lstm-convert model.onnx -o model.lstm --dtype f16 --check"));
}

#[test]
fn converts_and_prints_a_summary() {
    let dir = TempDir::new("cli-ok");
    let out = dir.path("m.lstm");
    let o = run_convert(args(&pt("lstm_1layer"), &out, &[]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("lstm x1 layer, input 3, hidden 5"), "{}", stdout(&o));
    assert!(out.exists());
}

#[test]
fn check_prints_the_largest_difference_and_the_rounding_cost() {
    let dir = TempDir::new("cli-check");
    let out = dir.path("m.lstm");
    let o = run_convert(args(&pt("lstm_2layer_bidirectional_proj"), &out, &["--check"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("largest difference") && stdout(&o).contains("tolerance 1e-5"), "{}", stdout(&o));
    let o = run_convert(args(&pt("lstm_2layer_bidirectional_proj"), &out, &["--check", "--dtype", "bf16"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("rounding the weights to bf16 costs"), "{}", stdout(&o));
}

#[test]
fn check_above_tolerance_exits_1_and_writes_nothing() {
    let dir = TempDir::new("cli-check-fail");
    let out = dir.path("m.lstm");
    let o = run_convert(args(&pt("lstm_1layer"), &out, &["--check", "--dtype", "f16", "--tolerance", "1e-9"]));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("FAILED") && stderr(&o).contains("nothing was written"), "{}", stderr(&o));
    assert!(!out.exists());
}

fn fails_with_2(extra: &[&str], src: &std::path::Path, expected: &[&str]) {
    let dir = TempDir::new("cli-bad");
    let out = dir.path("m.lstm");
    let o = run_convert(args(src, &out, extra));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    for e in expected {
        assert!(err.contains(e), "expected {e:?} in {err}");
    }
    assert!(!out.exists(), "output left behind");
    assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 0, "temporary files left behind");
}

#[test]
fn missing_input_exits_2_naming_the_file() {
    fails_with_2(&[], std::path::Path::new("/nonexistent/model.pt"), &["/nonexistent/model.pt", "No such file"]);
}

#[test]
fn corrupt_zip_exits_2_with_one_line() {
    let dir = TempDir::new("cli-corrupt");
    let src = dir.path("broken.pt");
    let bytes = std::fs::read(pt("lstm_1layer")).unwrap();
    std::fs::write(&src, &bytes[..bytes.len() / 2]).unwrap();
    fails_with_2(&[], &src, &["broken.pt", "corrupt zip"]);
}

#[test]
fn a_state_dict_that_is_not_recurrent_exits_2() {
    let dir = TempDir::new("cli-notrnn");
    let src = dir.path("linear.safetensors");
    let header = br#"{"fc.weight":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&1.0f32.to_le_bytes());
    std::fs::write(&src, &bytes).unwrap();
    fails_with_2(&[], &src, &["linear.safetensors", "not a state dict of nn.LSTM"]);
}

#[test]
fn a_misshapen_tensor_exits_2_naming_it() {
    let dir = TempDir::new("cli-shape");
    let src = dir.path("bad.safetensors");
    // weight_hh_l0 [8, 2] says hidden 2 (4 gates), but weight_ih_l0 has 6 rows.
    let header = br#"{"weight_ih_l0":{"dtype":"F32","shape":[6,1],"data_offsets":[0,24]},"weight_hh_l0":{"dtype":"F32","shape":[8,2],"data_offsets":[24,88]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend(std::iter::repeat_n(0u8, 88));
    std::fs::write(&src, &bytes).unwrap();
    fails_with_2(&[], &src, &["bad.safetensors", "weight_ih_l0", "shape [6, 1]"]);
}

#[test]
fn from_that_contradicts_the_content_exits_2() {
    fails_with_2(&["--from", "onnx"], &pt("lstm_1layer"), &["--from onnx", "pytorch"]);
}

#[test]
fn pytorch_only_options_are_refused_for_other_sources() {
    let onnx = fixtures().join("convert/onnx/gru_linear_before_reset_1/model.onnx");
    fails_with_2(&["--head", "fc"], &onnx, &["--head applies to PyTorch"]);
}

#[test]
fn unknown_option_values_exit_2() {
    fails_with_2(&["--dtype", "f8"], &pt("lstm_1layer"), &["f8"]);
}

#[test]
fn refuses_to_overwrite_the_input() {
    let dir = TempDir::new("cli-same");
    let src = dir.path("m.pt");
    std::fs::copy(pt("lstm_1layer"), &src).unwrap();
    let before = std::fs::read(&src).unwrap();
    let o = run_convert(args(&src, &src, &[]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("is the same file as the input"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&src).unwrap(), before);
}

#[test]
fn a_failed_conversion_keeps_an_existing_output_untouched() {
    let dir = TempDir::new("cli-keep");
    let out = dir.path("m.lstm");
    std::fs::write(&out, b"previous").unwrap();
    let evil = fixtures().join("convert/pytorch/refused/os_system.pt");
    let o = run_convert(args(&evil, &out, &[]));
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read(&out).unwrap(), b"previous");
}

#[test]
fn detects_the_kind_whatever_the_extension() {
    let dir = TempDir::new("cli-ext");
    let src = dir.path("weights.bin");
    std::fs::copy(fixtures().join("convert/onnx/torch_gru_2layer/model.onnx"), &src).unwrap();
    let out = dir.path("m.lstm");
    let o = run_convert(args(&src, &out, &[]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("from onnx"), "{}", stdout(&o));
}

#[test]
fn a_failed_write_exits_1_and_help_documents_the_exit_codes() {
    let dir = TempDir::new("cli-write");
    // A folder as the output cannot be used: refused before any work (2).
    let out = dir.path("taken");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep"), b"x").unwrap();
    let o = run_convert(args(&pt("lstm_1layer"), &out, &[]));
    assert_eq!(o.status.code(), Some(lstmrt_cli::exit::BAD_INPUT.into()), "{}", stderr(&o));
    assert!(stderr(&o).contains("taken: is a folder"), "{}", stderr(&o));
    // A name the file system cannot hold fails only when written (1).
    let out = dir.path(&"n".repeat(300));
    let o = run_convert(args(&pt("lstm_1layer"), &out, &[]));
    assert_eq!(o.status.code(), Some(lstmrt_cli::exit::FAILURE.into()), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot write"), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 1, "temporary files left behind");
    let help = run_convert(["--help"]);
    assert!(stdout(&help).contains(lstmrt_cli::exit::TABLE), "{}", stdout(&help));
}

#[test]
fn int8_conversion_checks_the_error_and_info_shows_the_scales() {
    let dir = TempDir::new("cli-int8");
    let out = dir.path("m.lstm");
    let o = run_convert(args(&pt("lstm_2layer_bidirectional_proj"), &out, &["--check", "--dtype", "int8"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    assert!(
        s.contains("rounding the weights to int8 costs") && s.contains("mean difference") && s.contains("-> ok"),
        "{s}"
    );
    let info = std::process::Command::new(env!("CARGO_BIN_EXE_lstm-run")).arg(&out).arg("--info").output().unwrap();
    assert!(info.status.success(), "{}", stderr(&info));
    let text = stdout(&info);
    assert!(text.contains("weights         int8, layout canonical, panel16x4"), "{text}");
    assert!(text.contains("int8 scales") && text.contains("rows of 12 matrices") && text.contains("product"), "{text}");
    assert!(text.contains("format version 1.1"), "{text}");
}

/// Sets the uncompressed size that a zip declares for its entry ending in `suffix`
/// (local header and central directory), leaving its bytes as they are.
fn declare_size(zip: &mut [u8], suffix: &[u8], size: u32) -> usize {
    let mut patched = 0;
    for i in 0..zip.len().saturating_sub(46) {
        // Local file header, or central directory entry: where the name's
        // length, the uncompressed size and the name are.
        let (name_len_at, size_at, name_at) = match &zip[i..i + 4] {
            b"PK\x03\x04" => (26, 22, 30),
            b"PK\x01\x02" => (28, 24, 46),
            _ => continue,
        };
        let name_len = u16::from_le_bytes([zip[i + name_len_at], zip[i + name_len_at + 1]]) as usize;
        if zip[i + name_at..].len() >= name_len && zip[i + name_at..i + name_at + name_len].ends_with(suffix) {
            zip[i + size_at..i + size_at + 4].copy_from_slice(&size.to_le_bytes());
            patched += 1;
        }
    }
    patched
}

#[test]
fn a_zip_entry_declaring_more_than_deflate_can_make_is_refused_before_inflating() {
    let dir = TempDir::new("cli-zipbomb");
    let mut bytes = std::fs::read(pt("lstm_1layer")).unwrap();
    assert_eq!(declare_size(&mut bytes, b"data.pkl", 3 << 30), 2, "local header and central directory");
    let src = dir.path("bomb.pt");
    std::fs::write(&src, &bytes).unwrap();
    let out = dir.path("m.lstm");
    let o = run_convert(args(&src, &out, &[]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("more than deflate can produce"), "{}", stderr(&o));
    assert!(!out.exists());
}
