//! The resource limits of `docs/reliability.md`: each is accepted at the
//! limit and refused one past it with a message naming the limit, before
//! anything the size asks for is allocated. Files over a size limit are
//! sparse, so they cost no disk; where reading or running an input at the
//! limit would take gigabytes, the check is tested at the limit in its own
//! unit test (named here) and one past it here, through the tools.

use std::fs::File;
use std::path::Path;
use std::process::Command;

use lstmrt::format::{Architecture, CellKind, DType, Metadata};
use lstmrt::{Model, ModelWriter, State, Weights};
use lstmrt_format::limits;
use lstmrt_testkit::TempDir;

fn write_model(path: &Path, arch: Architecture) {
    let meta = Metadata::new(arch);
    let bytes = ModelWriter::new(&meta, &Weights::zeros(&meta)).dtype(DType::F32).to_bytes().unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn sparse(path: &Path, len: u64) {
    File::create(path).unwrap().set_len(len).unwrap();
}

fn run(bin: &str, args: &[&Path]) -> (i32, String) {
    let out = Command::new(bin).args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

const LSTM_RUN: &str = env!("CARGO_BIN_EXE_lstm-run");
const LSTM_CONVERT: &str = env!("CARGO_BIN_EXE_lstm-convert");

#[test]
fn model_sizes_and_layers_at_their_limits_pass_and_one_past_is_refused() {
    let max = 1u32 << 20;
    for (field, set) in [
        ("architecture.input_size", (|a: &mut Architecture, v| a.input_size = v) as fn(&mut Architecture, u32)),
        ("architecture.hidden_size", |a, v| a.hidden_size = v),
    ] {
        let mut a = Architecture::new(CellKind::Lstm, 1, 1, 1);
        set(&mut a, max);
        a.validate().unwrap();
        set(&mut a, max + 1);
        let e = a.validate().unwrap_err().to_string();
        assert!(e.contains(field) && e.contains("1..=1048576"), "{e}");
    }
    let mut a = Architecture::new(CellKind::Gru, 1, 1, 1024);
    a.validate().unwrap();
    a.num_layers = 1025;
    let e = a.validate().unwrap_err().to_string();
    assert!(e.contains("num_layers") && e.contains("1..=1024"), "{e}");
}

#[test]
fn embedding_rows_head_outputs_and_token_bytes_at_their_limits_pass_and_one_past_is_refused() {
    let rows = 1u32 << 26;
    let mut meta = Metadata::new(Architecture::new(CellKind::Lstm, 2, 2, 1));
    meta.embedding = Some(lstmrt::format::Embedding { num_embeddings: rows });
    meta.validate().unwrap();
    meta.embedding = Some(lstmrt::format::Embedding { num_embeddings: rows + 1 });
    let e = meta.validate().unwrap_err().to_string();
    assert!(e.contains("num_embeddings") && e.contains("2^26"), "{e}");

    let at = "x".repeat(limits::MAX_TOKEN_BYTES);
    let past = "y".repeat(limits::MAX_TOKEN_BYTES + 1);
    lstmrt_testkit::text_classifier(3, 4, &[&at]).validate().unwrap();
    let e = lstmrt_testkit::text_classifier(3, 4, &[&past]).validate().unwrap_err().to_string();
    assert!(e.contains("vocabulary.tokens") && e.contains("1025 bytes is longer than the limit of 1024"), "{e}");
}

#[test]
fn a_state_blob_of_the_largest_batch_loads_and_one_row_more_is_refused() {
    let dir = TempDir::new("limits-state");
    let path = dir.path("tiny.lstm");
    write_model(&path, Architecture::new(CellKind::Gru, 1, 1, 1));
    let model = Model::open(&path).unwrap();
    let at = model.new_batch_state(1 << 20).unwrap().to_bytes();
    assert_eq!(State::from_bytes(&model, &at).unwrap().batch(), 1 << 20);
    // One row more: the blob of the largest batch with one more row of
    // values, its batch field and checksum made to match.
    let mut past = at[..at.len() - 4].to_vec();
    past[16..20].copy_from_slice(&((1u32 << 20) + 1).to_le_bytes());
    past.extend_from_slice(&[0; 4]);
    past.extend_from_slice(&crc32c::crc32c(&past).to_le_bytes());
    let e = State::from_bytes(&model, &past).unwrap_err().to_string();
    assert!(e.contains("batch 1048577 is outside 1..=1048576 (the limit)"), "{e}");
    // Nor can a state of that batch be made.
    let e = model.new_batch_state((1 << 20) + 1).unwrap_err().to_string();
    assert!(e.contains("1048577 streams: the batch must be 1 to 1048576"), "{e}");
    for e in [model.new_batch_state(0).unwrap_err(), model.new_stream_batch(0).unwrap_err()] {
        assert!(e.to_string().contains("of 0 streams: the batch must be 1 to 1048576"), "{e}");
    }
}

#[test]
fn a_model_file_at_the_size_limit_is_mapped_and_checked_and_one_byte_more_is_refused_unread() {
    let dir = TempDir::new("limits-model");
    let path = dir.path("huge.lstm");
    sparse(&path, limits::MODEL_FILE.bytes);
    // At the limit the file is mapped and parsed: all zeros, so the magic is wrong.
    let e = Model::open(&path).err().unwrap().to_string();
    assert!(e.contains("not an lstmrt model file"), "{e}");
    sparse(&path, limits::MODEL_FILE.bytes + 1);
    for e in [Model::open(&path).err().unwrap(), Model::load(&path).err().unwrap()] {
        let e = e.to_string();
        assert!(e.contains("huge.lstm") && e.contains("over the limit of 64 GiB") && e.contains("model files"), "{e}");
    }
    let (code, err) = run(LSTM_RUN, &[&path, Path::new("--info")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("over the limit of 64 GiB"), "{err}");
}

#[test]
fn a_source_model_and_an_input_file_one_byte_past_their_limits_are_refused_unread() {
    let dir = TempDir::new("limits-files");
    let source = dir.path("huge.pt");
    sparse(&source, limits::SOURCE_FILE.bytes + 1);
    let (code, err) = run(LSTM_CONVERT, &[&source, Path::new("-o"), &dir.path("out.lstm")]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("huge.pt") && err.contains("over the limit of 16 GiB") && err.contains("source models"),
        "{err}"
    );
    assert!(!dir.path("out.lstm").exists());

    let model = dir.path("m.lstm");
    write_model(&model, Architecture::new(CellKind::Lstm, 2, 3, 1));
    let input = dir.path("huge.npy");
    sparse(&input, limits::DATA_FILE.bytes + 1);
    let (code, err) = run(LSTM_RUN, &[&model, &input]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("huge.npy") && err.contains("over the limit of 4 GiB") && err.contains("data files"), "{err}");
}

#[test]
fn an_input_whose_output_would_pass_the_limit_is_refused_before_the_run() {
    // 2^20 steps of one feature (4 MiB) into a bidirectional H=512 LSTM: 2^30
    // output values plus the state's, one state past the limit. At the limit:
    // `data::tests::outputs_up_to_the_limit_pass_and_one_value_more_is_refused`.
    let dir = TempDir::new("limits-output");
    let model = dir.path("wide.lstm");
    let mut arch = Architecture::new(CellKind::Lstm, 1, 512, 1);
    arch.bidirectional = true;
    write_model(&model, arch);
    let input = dir.path("long.npy");
    lstmrt_import::npy::write_f32(&input, &[1 << 20, 1], &vec![0.5; 1 << 20]).unwrap();
    let (code, err) = run(LSTM_RUN, &[&model, &input, Path::new("-o"), &dir.path("out.npy")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("long.npy") && err.contains("over the limit of 1073741824"), "{err}");
    assert!(!dir.path("out.npy").exists());
}

#[test]
fn a_stream_line_at_the_limit_is_read_and_one_byte_longer_is_refused() {
    use lstmrt_cli::run::{StreamJob, run_stream};
    use lstmrt_cli::session::Session;
    let dir = TempDir::new("limits-stream");
    let model = dir.path("m.lstm");
    write_model(&model, Architecture::new(CellKind::Lstm, 3, 2, 1));
    let job = StreamJob { model, threads: 1, ..Default::default() };
    let max = limits::max_stream_line(3);
    let line = |len: usize| {
        let mut l = b"1,2,3".to_vec();
        l.resize(len - 1, b' ');
        l.push(b'\n');
        l
    };
    let mut out = Vec::new();
    run_stream(&Session::default(), &job, &mut &line(max)[..], &mut out).unwrap();
    assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
    let e = run_stream(&Session::default(), &job, &mut &line(max + 1)[..], &mut Vec::new()).unwrap_err();
    assert_eq!(e.code, lstmrt_cli::exit::BAD_INPUT);
    assert!(e.message.contains("stdin, line 1: longer than 4288 bytes"), "{}", e.message);
    // A line that never ends is refused after the limit, not read to its end.
    let mut endless = std::io::BufReader::new(std::io::repeat(b' '));
    let e = run_stream(&Session::default(), &job, &mut endless, &mut Vec::new()).unwrap_err();
    assert!(e.message.contains("longer than"), "{}", e.message);
}

/// A protobuf field: key, then a length-delimited payload.
fn field(number: u32, payload: &[u8], out: &mut Vec<u8>) {
    let varint = |mut v: u64, out: &mut Vec<u8>| {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    };
    varint(((number as u64) << 3) | 2, out);
    varint(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

#[test]
fn an_onnx_graph_of_the_most_nodes_parses_and_one_more_is_refused() {
    let graph = |nodes: usize| {
        let mut g = Vec::new();
        for _ in 0..nodes {
            field(1, &[], &mut g); // an empty NodeProto
        }
        let mut model = Vec::new();
        field(7, &g, &mut model);
        model
    };
    let path = Path::new("graph.onnx");
    let at = lstmrt_import::onnx::import(&graph(limits::ONNX_GRAPH_ENTRIES), path).err().unwrap().to_string();
    assert!(!at.contains("the limit"), "{at}");
    let past = lstmrt_import::onnx::import(&graph(limits::ONNX_GRAPH_ENTRIES + 1), path).err().unwrap().to_string();
    assert!(past.contains("more than 65536 nodes in a graph, the limit"), "{past}");

    let node = |inputs: usize| {
        let mut n = Vec::new();
        for _ in 0..inputs {
            field(1, b"x", &mut n);
        }
        let mut g = Vec::new();
        field(1, &n, &mut g);
        let mut model = Vec::new();
        field(7, &g, &mut model);
        model
    };
    let at = lstmrt_import::onnx::import(&node(limits::ONNX_NODE_ENTRIES), path).err().unwrap().to_string();
    assert!(!at.contains("the limit"), "{at}");
    let past = lstmrt_import::onnx::import(&node(limits::ONNX_NODE_ENTRIES + 1), path).err().unwrap().to_string();
    assert!(past.contains("more than 1024 inputs of a node, the limit"), "{past}");
}
