//! `lstm-convert`: turns a trained PyTorch, ONNX or Keras recurrent model into
//! an lstmrt model file. The work is done by [`lstmrt_import::convert`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use lstmrt::format::{CellKind, HeadActivation};
use lstmrt_cli::args::DTypeArg;
use lstmrt_cli::exit;
use lstmrt_import::Options;
use lstmrt_import::convert::{self, ConvertError, Family, Request};

/// Convert a trained LSTM, GRU or RNN to an lstmrt model file.
///
/// The source kind is recognised from the file's content (not its name):
/// a PyTorch state dict (`torch.save` .pt/.pth, zip or legacy format, or
/// .safetensors), an ONNX model with LSTM/GRU/RNN nodes, or the .npz that
/// tools/export_keras.py writes from a Keras model.
///
#[derive(Parser, Debug)]
#[command(
    name = "lstm-convert",
    version,
    after_help = format!(
        "Examples:\n  \
        lstm-convert lstm.pt -o lstm.lstm\n  \
        lstm-convert model.onnx -o model.lstm --dtype f16 --check\n  \
        lstm-convert tagger.pth -o tagger.lstm --embedding embed --head fc --head-activation softmax\n  \
        lstm-convert rnn.safetensors -o rnn.lstm --cell rnn_relu\n  \
        lstm-convert keras_lstm.npz -o keras.lstm --from keras\n\n\
        See docs/convert.md for what is supported and what is refused.\n\n{}",
        exit::TABLE
    )
)]
struct Args {
    /// The source model file.
    input: PathBuf,

    /// Where to write the lstmrt model (written atomically; nothing is left here on failure).
    #[arg(short, long, value_name = "OUTPUT.lstm")]
    output: PathBuf,

    /// The source framework; recognised from the content when absent. Example: --from onnx
    #[arg(long, value_enum)]
    from: Option<FromArg>,

    /// Element type of the stored weight matrices (biases, peepholes and the head stay f32; int8
    /// quantizes W_ih, W_hh and W_hr with one scale per row). Example: --dtype int8
    #[arg(long, value_enum, default_value = "f32")]
    dtype: DTypeArg,

    /// Chunked models (--arch): element type of the stages' convolution weights, when not
    /// --dtype's (default: --dtype's, except f32 for --dtype int8: int8 front-ends cost far
    /// more accuracy, and an STFT runs as an FFT only from f32, docs/silero-vad.md). Example: --stage-dtype f16
    #[arg(long, value_enum, value_name = "DTYPE")]
    stage_dtype: Option<DTypeArg>,

    /// Run the converted model and the reference engine on the source's f32 weights on random
    /// input (fixed seed), print the largest difference, and fail (exit 1, nothing written) above
    /// the tolerance: 1e-5 for f32, 1e-2 for f16, 5e-2 for bf16 (the rounding of the weights), 2e-2
    /// for int8 (weights and activations); reports the mean difference too.
    #[arg(long)]
    check: bool,

    /// Largest difference --check accepts, instead of the dtype's default. Example: --tolerance 1e-3
    #[arg(long, value_name = "X", requires = "check")]
    tolerance: Option<f32>,

    /// PyTorch: module name of the nn.Embedding in front of the recurrent stack
    /// (found by shape when there is exactly one candidate). Example: --embedding embed
    #[arg(long, value_name = "NAME")]
    embedding: Option<String>,

    /// PyTorch: module name of the nn.Linear applied to each step's output
    /// (found by shape when there is exactly one candidate). Example: --head classifier
    #[arg(long, value_name = "NAME")]
    head: Option<String>,

    /// PyTorch: activation applied after the head (a state dict cannot say). Example: --head-activation softmax
    #[arg(long, value_enum, value_name = "ACT")]
    head_activation: Option<HeadActArg>,

    /// PyTorch: the cell, when the weights cannot tell (nn.RNN with ReLU looks like tanh).
    /// Example: --cell rnn_relu
    #[arg(long, value_enum)]
    cell: Option<CellArg>,

    /// PyTorch: module prefix of the recurrent layer when the state dict holds several.
    /// Example: --prefix encoder.rnn
    #[arg(long, value_name = "PREFIX")]
    prefix: Option<String>,

    /// PyTorch: an architecture description (JSON) naming the stages before and
    /// after the recurrent module and the tensors each takes (docs/arch.md).
    /// Example: --arch models/silero_vad/arch.json
    #[arg(long, value_name = "ARCH")]
    arch: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum FromArg {
    Pytorch,
    Onnx,
    Keras,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum HeadActArg {
    None,
    Softmax,
    Sigmoid,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum CellArg {
    Lstm,
    Gru,
    #[value(name = "rnn_tanh")]
    RnnTanh,
    #[value(name = "rnn_relu")]
    RnnRelu,
}

impl Args {
    fn request(self) -> Result<Request, String> {
        let arch = match &self.arch {
            None => None,
            Some(path) => {
                let bytes = lstmrt_format::read_regular(
                    path,
                    lstmrt_format::FileLimit {
                        bytes: lstmrt_import::arch::MAX_ARCH_BYTES,
                        what: "architecture descriptions",
                    },
                )
                .map_err(|e| format!("{}: {e}", path.display()))?;
                let text = String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8 text", path.display()))?;
                Some(lstmrt_import::arch::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?)
            }
        };
        let mut r = Request::new(self.input, self.output);
        r.read.extend(self.arch.clone());
        r.from = self.from.map(|f| match f {
            FromArg::Pytorch => Family::PyTorch,
            FromArg::Onnx => Family::Onnx,
            FromArg::Keras => Family::Keras,
        });
        r.dtype = self.dtype.dtype();
        r.stage_dtype = self.stage_dtype.map(DTypeArg::dtype);
        r.check = self.check;
        r.tolerance = self.tolerance;
        r.options = Options {
            cell: self.cell.map(|c| match c {
                CellArg::Lstm => CellKind::Lstm,
                CellArg::Gru => CellKind::Gru,
                CellArg::RnnTanh => CellKind::RnnTanh,
                CellArg::RnnRelu => CellKind::RnnRelu,
            }),
            prefix: self.prefix,
            embedding: self.embedding,
            head: self.head,
            head_activation: self.head_activation.map(|a| match a {
                HeadActArg::None => HeadActivation::None,
                HeadActArg::Softmax => HeadActivation::Softmax,
                HeadActArg::Sigmoid => HeadActivation::Sigmoid,
            }),
            arch,
        };
        Ok(r)
    }
}

fn main() -> ExitCode {
    let request = match Args::parse().request() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("lstm-convert: {e}");
            return ExitCode::from(exit::BAD_INPUT);
        }
    };
    match convert::convert(&request) {
        Ok(outcome) => {
            for note in &outcome.notes {
                eprintln!("lstm-convert: note: {note}");
            }
            println!("{}", convert::summary(&request, &outcome));
            if let Some(report) = &outcome.check {
                println!("{report}");
            }
            ExitCode::SUCCESS
        }
        Err(ConvertError::CheckFailed(report)) => {
            eprintln!("lstm-convert: {}: {report}; nothing was written", request.input.display());
            ExitCode::from(exit::FAILURE)
        }
        Err(e @ ConvertError::Write { .. }) => {
            eprintln!("lstm-convert: {e}");
            ExitCode::from(exit::FAILURE)
        }
        Err(e) => {
            eprintln!("lstm-convert: {e}");
            ExitCode::from(exit::BAD_INPUT)
        }
    }
}
