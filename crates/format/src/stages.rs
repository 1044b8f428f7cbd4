//! The stages section (format 1.3): a front-end before the recurrent stack
//! and a head after it, for models that read chunks of a signal (audio,
//! sensor frames) rather than ready-made feature vectors.
//!
//! A chunk of `chunk` frames of `channels` values, with the last `context`
//! frames before it (zeros before the first chunk), is a tensor of
//! `context + chunk` positions by `channels`. The front stages map it to
//! `P` positions of `input_size` features: `P` recurrent steps. The back
//! stages map the stack's `P` outputs to the chunk's result. Every size is
//! fixed by the file, so [`Stages::plan`] computes them all when the file is
//! opened and a chunk never allocates.
//!
//! Field order is part of the format (`format-spec.md` 4.3): never reorder.

use serde::{Deserialize, Serialize};

use super::Error;
use crate::arch::Architecture;

/// What a stage computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub enum StageKind {
    /// `Conv1d` over positions (PyTorch's), then `activation`; with kernel 1,
    /// stride 1 and no padding it is a `Linear` applied at every position.
    /// Tensors `<chain>.<i>.weight` `[out, kernel * in]` (tap-major: PyTorch's
    /// `[out, in, kernel]` with the last two axes swapped) and optional
    /// `<chain>.<i>.bias` `[out]`.
    Conv1d,
    /// `sqrt(a^2 + b^2)` of the two halves `a`, `b` of the channels (a
    /// spectrum's real and imaginary parts): half the channels out.
    Magnitude,
    /// `activation` alone, at every position.
    Activation,
    /// The mean over positions: one position out.
    Mean,
}

/// A stage's activation function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub enum StageActivation {
    None,
    Relu,
    Sigmoid,
    Tanh,
    /// Over the channels of each position.
    Softmax,
}

/// What a convolution reads outside its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub enum Padding {
    /// Zeros (PyTorch's `padding_mode="zeros"`).
    Zeros,
    /// The input mirrored without repeating the edge (`F.pad(mode="reflect")`):
    /// each side's padding must be smaller than the input.
    Reflect,
}

wire_codes!(StageKind, "stage kind", { Conv1d = 0, Magnitude = 1, Activation = 2, Mean = 3 });
wire_codes!(StageActivation, "stage activation", { None = 0, Relu = 1, Sigmoid = 2, Tanh = 3, Softmax = 4 });
wire_codes!(Padding, "padding", { Zeros = 0, Reflect = 1 });

impl StageKind {
    pub fn name(self) -> &'static str {
        match self {
            StageKind::Conv1d => "conv1d",
            StageKind::Magnitude => "magnitude",
            StageKind::Activation => "activation",
            StageKind::Mean => "mean",
        }
    }
}

impl StageActivation {
    pub fn name(self) -> &'static str {
        match self {
            StageActivation::None => "none",
            StageActivation::Relu => "relu",
            StageActivation::Sigmoid => "sigmoid",
            StageActivation::Tanh => "tanh",
            StageActivation::Softmax => "softmax",
        }
    }

    pub fn from_name(name: &str) -> Option<StageActivation> {
        StageActivation::ALL.iter().copied().find(|a| a.name() == name)
    }
}

impl Padding {
    pub fn name(self) -> &'static str {
        match self {
            Padding::Zeros => "zeros",
            Padding::Reflect => "reflect",
        }
    }

    pub fn from_name(name: &str) -> Option<Padding> {
        Padding::ALL.iter().copied().find(|p| p.name() == name)
    }
}

/// One stage. Fields a kind does not use are 0 (`padding` zeros,
/// `activation` none, except for [`StageKind::Activation`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    pub kind: StageKind,
    /// Conv1d: output channels.
    pub out_channels: u32,
    /// Conv1d: taps.
    pub kernel: u32,
    pub stride: u32,
    pub dilation: u32,
    /// Conv1d: positions added before and after the input.
    pub pad_left: u32,
    pub pad_right: u32,
    pub padding: Padding,
    /// Conv1d: applied to its output; Activation: the stage itself.
    pub activation: StageActivation,
}

impl Stage {
    /// A stage of `kind` with every parameter at its neutral value.
    pub fn new(kind: StageKind) -> Stage {
        Stage {
            kind,
            out_channels: 0,
            kernel: 0,
            stride: 0,
            dilation: 0,
            pad_left: 0,
            pad_right: 0,
            padding: Padding::Zeros,
            activation: StageActivation::None,
        }
    }

    /// A `Conv1d` of `out` channels, `kernel` taps, stride and dilation 1, no padding.
    pub fn conv1d(out: usize, kernel: usize) -> Stage {
        Stage {
            out_channels: out as u32,
            kernel: kernel as u32,
            stride: 1,
            dilation: 1,
            ..Stage::new(StageKind::Conv1d)
        }
    }

    /// An activation stage.
    pub fn activation(activation: StageActivation) -> Stage {
        Stage { activation, ..Stage::new(StageKind::Activation) }
    }

    /// One line for `--info`: `conv1d 258x(1x256) stride 128 pad 0+64 reflect, relu`.
    pub fn describe(&self, in_channels: usize) -> String {
        match self.kind {
            StageKind::Conv1d => {
                let mut s = format!("conv1d {}x({in_channels}x{})", self.out_channels, self.kernel);
                if self.stride != 1 {
                    s += &format!(" stride {}", self.stride);
                }
                if self.dilation != 1 {
                    s += &format!(" dilation {}", self.dilation);
                }
                if self.pad_left + self.pad_right > 0 {
                    s += &format!(" pad {}+{} {}", self.pad_left, self.pad_right, self.padding.name());
                }
                if self.activation != StageActivation::None {
                    s += &format!(", {}", self.activation.name());
                }
                s
            }
            StageKind::Activation => self.activation.name().to_string(),
            kind => kind.name().to_string(),
        }
    }
}

/// Which chain a stage belongs to: its tensors' name prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Chain {
    /// Before the recurrent stack: `front.<i>.*`.
    Front,
    /// After it: `back.<i>.*`.
    Back,
}

impl Chain {
    pub fn name(self) -> &'static str {
        match self {
            Chain::Front => "front",
            Chain::Back => "back",
        }
    }
}

/// The stages section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stages {
    /// Frames per chunk.
    pub chunk: u32,
    /// Values per frame (1 for mono audio).
    pub channels: u32,
    /// Frames of earlier input placed before each chunk (zeros before the first).
    pub context: u32,
    /// Frames per second the model was made for; 0 when it has no rate.
    pub sample_rate: u32,
    pub front: Vec<Stage>,
    pub back: Vec<Stage>,
}

/// The sizes of one stage: positions and channels in and out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageShape {
    pub positions_in: usize,
    pub channels_in: usize,
    pub positions: usize,
    pub channels: usize,
}

/// Every size of a chunk's way through the stages, computed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagesPlan {
    pub front: Vec<StageShape>,
    pub back: Vec<StageShape>,
    /// Positions the front-end produces: recurrent steps per chunk.
    pub steps: usize,
    /// Positions and channels of a chunk's result.
    pub out_positions: usize,
    pub out_channels: usize,
    /// The floats of one stream's buffers a chunk runs in.
    pub buffers: ChunkBuffers,
}

/// Floats of each buffer one stream of a chunk needs (a chunk state of `n`
/// streams holds `n` times each), computed once by [`Stages::plan`] and
/// bounded there in total by [`MAX_STREAM_FLOATS`]: what the runtime
/// allocates, so the bound holds for what is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkBuffers {
    /// The frames kept from chunk to chunk (`context * channels`).
    pub context: usize,
    /// The window a chunk is read in (`(context + chunk) * channels`).
    pub window: usize,
    /// The largest stage output, its channels padded to a multiple of 16
    /// (two such buffers take turns).
    pub stage: usize,
    /// The stack's inputs and outputs for the chunk's steps.
    pub rec_in: usize,
    pub rec_out: usize,
    /// The chunk's result.
    pub out: usize,
}

impl ChunkBuffers {
    /// Floats of all of them together, for one stream.
    pub fn total(&self) -> u64 {
        [self.context, self.window, self.stage, self.stage, self.rec_in, self.rec_out, self.out]
            .iter()
            .map(|&v| v as u64)
            .sum()
    }
}

impl StagesPlan {
    /// Values a chunk's result holds.
    pub fn out_values(&self) -> usize {
        self.out_positions * self.out_channels
    }
}

/// Floats of all the buffers one stream of a chunk needs ([`ChunkBuffers`]):
/// 2^26 (256 MiB). A file whose plan needs more is refused when it opens
/// and when it is written, so a chunk state's size is the number of streams
/// times at most this.
pub const MAX_STREAM_FLOATS: u64 = 1 << 26;

/// Bounds that keep every buffer and product far from overflow; a file
/// beyond them is refused before anything is sized from it.
const MAX_CHUNK: u32 = 1 << 20;
const MAX_CHANNELS: u32 = 1 << 16;
const MAX_PAD: u32 = 1 << 16;
const MAX_STAGES: usize = 64;
/// Values in one stage's output for one stream.
const MAX_VALUES: usize = 1 << 24;
/// Multiply-adds of one stage for one chunk of one stream.
const MAX_WORK: u64 = 1 << 32;

impl Stages {
    /// The tensors of stage `index` of `chain`.
    pub fn weight_name(chain: Chain, index: usize) -> String {
        format!("{}.{index}.weight", chain.name())
    }

    pub fn bias_name(chain: Chain, index: usize) -> String {
        format!("{}.{index}.bias", chain.name())
    }

    /// Whether `name` is a stage's tensor (`front.<i>.*`, `back.<i>.*`).
    pub fn is_stage_tensor(name: &str) -> bool {
        [Chain::Front, Chain::Back]
            .iter()
            .any(|c| name.strip_prefix(c.name()).is_some_and(|rest| rest.starts_with('.')))
    }

    /// Positions of the window a chunk is read in: context and chunk.
    pub fn window(&self) -> usize {
        (self.context + self.chunk) as usize
    }

    /// Checks every stage against the sizes that reach it and computes them.
    pub fn plan(&self, arch: &Architecture) -> Result<StagesPlan, Error> {
        let bad = |field: String, reason: String| Err(Error::invalid(field, reason));
        if self.chunk == 0 || self.chunk > MAX_CHUNK {
            return bad("stages.chunk".into(), format!("{} is outside 1..={MAX_CHUNK}", self.chunk));
        }
        if self.context > MAX_CHUNK {
            return bad("stages.context".into(), format!("{} is above {MAX_CHUNK}", self.context));
        }
        if self.channels == 0 || self.channels > MAX_CHANNELS {
            return bad("stages.channels".into(), format!("{} is outside 1..={MAX_CHANNELS}", self.channels));
        }
        if self.window() * self.channels as usize > MAX_VALUES {
            return bad("stages.chunk".into(), format!("a window of {} values is above {MAX_VALUES}", self.window()));
        }
        if self.front.len() > MAX_STAGES || self.back.len() > MAX_STAGES {
            return bad("stages".into(), format!("more than {MAX_STAGES} stages in a chain"));
        }
        if let Some((kind, why)) = arch.whole_sequence_only() {
            return bad("stages".into(), format!("a {kind} stack cannot carry its state from chunk to chunk: {why}"));
        }
        let front = chain_shapes(Chain::Front, &self.front, self.window(), self.channels as usize)?;
        let (steps, features) =
            front.last().map_or((self.window(), self.channels as usize), |s| (s.positions, s.channels));
        if features != arch.input_size as usize {
            return bad(
                "stages.front".into(),
                format!("the front-end gives {features} features per step, the stack takes {}", arch.input_size),
            );
        }
        let back = chain_shapes(Chain::Back, &self.back, steps, arch.sequence_output_size())?;
        let (out_positions, out_channels) =
            back.last().map_or((steps, arch.sequence_output_size()), |s| (s.positions, s.channels));
        // The stack's inputs and outputs for every step of a chunk: bounded
        // like a stage's output (with no stages at all, a long window of a
        // wide stack would otherwise need any amount).
        for (field, what, width) in [
            ("stages.chunk", "inputs", arch.input_size as usize),
            ("stages.chunk", "outputs", arch.sequence_output_size()),
        ] {
            let values = steps as u64 * width as u64;
            if values > MAX_VALUES as u64 {
                return bad(
                    field.into(),
                    format!(
                        "the recurrent stack's {what} for the {steps} steps of a chunk are {values} values, above {MAX_VALUES}"
                    ),
                );
            }
        }
        let padded = |s: &StageShape| s.positions * s.channels.div_ceil(16) * 16;
        let buffers = ChunkBuffers {
            context: (self.context * self.channels) as usize,
            window: self.window() * self.channels as usize,
            stage: front.iter().chain(&back).map(padded).max().unwrap_or(0),
            rec_in: steps * arch.input_size as usize,
            rec_out: steps * arch.sequence_output_size(),
            out: out_positions * out_channels,
        };
        if buffers.total() > MAX_STREAM_FLOATS {
            return bad(
                "stages".into(),
                format!(
                    "a chunk needs {} floats of buffers per stream, above the limit of {MAX_STREAM_FLOATS}",
                    buffers.total()
                ),
            );
        }
        Ok(StagesPlan { front, back, steps, out_positions, out_channels, buffers })
    }
}

fn chain_shapes(chain: Chain, stages: &[Stage], positions: usize, channels: usize) -> Result<Vec<StageShape>, Error> {
    let (mut p, mut c) = (positions, channels);
    let mut shapes = Vec::with_capacity(stages.len());
    for (i, s) in stages.iter().enumerate() {
        let field = |what: &str| format!("stages.{}[{i}].{what}", chain.name());
        let bad = |what: &str, reason: String| Err(Error::invalid(field(what), reason));
        let unused = |s: &Stage| {
            s.out_channels != 0
                || s.kernel != 0
                || s.stride != 0
                || s.dilation != 0
                || s.pad_left != 0
                || s.pad_right != 0
                || s.padding != Padding::Zeros
        };
        let (np, nc) = match s.kind {
            StageKind::Conv1d => {
                if s.out_channels == 0 || s.out_channels > MAX_CHANNELS {
                    return bad("out_channels", format!("{} is outside 1..={MAX_CHANNELS}", s.out_channels));
                }
                for (what, v) in [("kernel", s.kernel), ("stride", s.stride), ("dilation", s.dilation)] {
                    if v == 0 || v > MAX_CHUNK {
                        return bad(what, format!("{v} is outside 1..={MAX_CHUNK}"));
                    }
                }
                for (what, v) in [("pad_left", s.pad_left), ("pad_right", s.pad_right)] {
                    if v > MAX_PAD {
                        return bad(what, format!("{v} is above {MAX_PAD}"));
                    }
                    if s.padding == Padding::Reflect && v as usize >= p {
                        return bad(what, format!("reflect padding of {v} needs more than {p} input positions"));
                    }
                }
                let k = s.kernel as usize * c;
                if k > MAX_VALUES {
                    return bad("kernel", format!("{} taps of {c} channels are above {MAX_VALUES} inputs", s.kernel));
                }
                let padded = p + (s.pad_left + s.pad_right) as usize;
                let span = (s.kernel as usize - 1) * s.dilation as usize + 1;
                if span > padded {
                    return bad(
                        "kernel",
                        format!("a span of {span} positions is wider than the {padded} padded inputs"),
                    );
                }
                let np = (padded - span) / s.stride as usize + 1;
                let work = (np as u64) * (s.out_channels as u64) * (k as u64);
                if work > MAX_WORK {
                    return bad("kernel", format!("{work} multiply-adds per chunk are above {MAX_WORK}"));
                }
                (np, s.out_channels as usize)
            }
            StageKind::Magnitude => {
                if unused(s) || s.activation != StageActivation::None {
                    return bad("kind", "magnitude takes no parameters".into());
                }
                if !c.is_multiple_of(2) {
                    return bad("kind", format!("magnitude pairs the two halves of the channels; {c} is odd"));
                }
                (p, c / 2)
            }
            StageKind::Activation => {
                if unused(s) {
                    return bad("kind", "an activation stage takes no parameters but its activation".into());
                }
                if s.activation == StageActivation::None {
                    return bad("activation", "an activation stage needs an activation".into());
                }
                (p, c)
            }
            StageKind::Mean => {
                if unused(s) || s.activation != StageActivation::None {
                    return bad("kind", "mean takes no parameters".into());
                }
                (1, c)
            }
        };
        if np * nc > MAX_VALUES {
            return bad("kind", format!("{np} positions of {nc} channels are above {MAX_VALUES} values"));
        }
        shapes.push(StageShape { positions_in: p, channels_in: c, positions: np, channels: nc });
        (p, c) = (np, nc);
    }
    Ok(shapes)
}

/// The tensors of the stages, `(name, canonical shape, required, out rows)`,
/// in the order the writer stores them; weights are packable with one gate.
pub(crate) fn stage_tensors(stages: &Stages, plan: &StagesPlan) -> Vec<(String, Vec<u64>, bool, Option<usize>)> {
    let mut v = Vec::new();
    for (chain, list, shapes) in [(Chain::Front, &stages.front, &plan.front), (Chain::Back, &stages.back, &plan.back)] {
        for (i, (s, shape)) in list.iter().zip(shapes).enumerate() {
            if s.kind == StageKind::Conv1d {
                let (out, k) = (s.out_channels as u64, s.kernel as u64 * shape.channels_in as u64);
                v.push((Stages::weight_name(chain, i), vec![out, k], true, Some(out as usize)));
                v.push((Stages::bias_name(chain, i), vec![out], false, None));
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::CellKind;

    fn no_stages(chunk: u32, context: u32, channels: u32) -> Stages {
        Stages { chunk, channels, context, sample_rate: 0, front: Vec::new(), back: Vec::new() }
    }

    #[test]
    fn the_stacks_outputs_over_a_chunk_are_bounded_at_the_limit_and_refused_one_past() {
        // No stages: a chunk is `context + chunk` steps of a 1-input, 16-unit LSTM.
        let arch = Architecture::new(CellKind::Lstm, 1, 16, 1);
        let plan = no_stages(1 << 19, 1 << 19, 1).plan(&arch).unwrap();
        assert_eq!(plan.buffers.rec_out, 1 << 24);
        let e = no_stages(1 << 19, (1 << 19) + 1, 1).plan(&arch).unwrap_err().to_string();
        assert!(e.contains("stages.chunk") && e.contains("outputs for the 1048577 steps"), "{e}");
        // The inputs too: 16 channels in, 1 unit out.
        let arch = Architecture::new(CellKind::Gru, 16, 1, 1);
        assert!(no_stages(1 << 19, 1 << 19, 16).plan(&arch).is_ok());
        let e = no_stages(1 << 19, (1 << 19) + 1, 16).plan(&arch).unwrap_err().to_string();
        assert!(e.contains("window of 1048577"), "the window is the first to be too large: {e}");
    }

    #[test]
    fn all_of_a_streams_buffers_together_are_bounded() {
        // Every buffer within its own bound, their sum past 2^26 floats.
        let arch = Architecture::new(CellKind::Lstm, 16, 16, 1);
        let e = no_stages(1 << 19, 1 << 19, 16).plan(&arch).unwrap_err().to_string();
        assert!(e.contains("floats of buffers per stream, above the limit of 67108864"), "{e}");
        let plan = no_stages(1 << 18, 1 << 18, 16).plan(&arch).unwrap();
        assert!(plan.buffers.total() <= MAX_STREAM_FLOATS);
        assert_eq!(plan.buffers.window, (1 << 19) * 16);
        // Context 2^22, then the window, the stack's inputs, its outputs and
        // the result (no back stages: the outputs) 2^23 each.
        assert_eq!(plan.buffers.total(), (1 << 22) + 4 * (1 << 23));
    }
}
