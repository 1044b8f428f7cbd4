//! A summary of a model file: what network it holds, how big it is, how it is
//! stored and where it came from. Printed by `lstm-run --info`, as text or
//! (it is `Serialize`) as JSON.

use std::fmt;

use serde::Serialize;

use crate::generate::task_name;
use lstmrt::Model;
use lstmrt_format::{CellKind, HeadActivation, Tokenizer};

/// Everything `--info` reports about a model.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// The file as named on the command line.
    pub path: String,
    pub file_size: u64,
    /// `major.minor` of the file format.
    pub format_version: String,
    pub cell: &'static str,
    pub input_size: u32,
    pub hidden_size: u32,
    /// 0 means no projection.
    pub proj_size: u32,
    pub num_layers: u32,
    pub bidirectional: bool,
    /// Every layer reads the sequence from its end (ONNX `direction = "reverse"`).
    pub reverse: bool,
    /// The file stores the state every sequence starts from (format 1.2).
    pub initial_state: bool,
    /// Width of one step of the stack's output (`directions * output size`).
    pub output_size: usize,
    pub peepholes: bool,
    pub clip: Option<f32>,
    pub input_forget: bool,
    /// GRU only (PyTorch's form is `true`).
    pub linear_before_reset: Option<bool>,
    pub parameter_count: u64,
    /// The dtype of the recurrent weight matrices.
    pub dtype: &'static str,
    /// The distinct tensor layouts in the file.
    pub layouts: Vec<&'static str>,
    /// The instruction-set tier the kernels run on, and why the amx tier is
    /// not it where it cannot be.
    pub isa: IsaInfo<'static>,
    /// int8 models: the row scales and how the kernels multiply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub int8: Option<Int8Info>,
    /// Chunked models (format 1.3): the input, front-end and head stages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stages: Option<StagesInfo>,
    pub embedding: Option<EmbeddingInfo>,
    pub head: Option<HeadInfo>,
    pub vocabulary: Option<VocabularyInfo>,
    pub provenance: ProvenanceInfo,
    pub tensors: Vec<TensorSummary>,
    /// Kinds of optional sections (from a newer minor version) that were skipped.
    pub skipped_sections: Vec<u32>,
    /// Whether every tensor checksum was checked and matched (absent: not checked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksums_verified: Option<bool>,
}

/// The tier a model runs on (`LSTMRT_ISA`, else the best this CPU has).
#[derive(Debug, Clone, Serialize)]
pub struct IsaInfo<'a> {
    pub tier: &'a str,
    /// Why the amx tier cannot run here (absent where it can).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amx_unavailable: Option<String>,
}

impl IsaInfo<'static> {
    pub fn of(isa: lstmrt::Isa) -> IsaInfo<'static> {
        IsaInfo { tier: isa.name(), amx_unavailable: lstmrt::Isa::Amx.unavailable_reason() }
    }
}

impl fmt::Display for IsaInfo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tier)?;
        match &self.amx_unavailable {
            Some(why) => write!(f, " (amx unavailable: {why})"),
            None => Ok(()),
        }
    }
}

/// The per-row scales of an int8 model's matrices.
#[derive(Debug, Clone, Serialize)]
pub struct Int8Info {
    /// int8 matrices in the file.
    pub matrices: usize,
    /// Rows (one scale each) over all of them.
    pub rows: usize,
    pub scale_min: f32,
    pub scale_median: f32,
    pub scale_max: f32,
    /// Rows whose weights are all zero (scale 0).
    pub zero_rows: usize,
    /// The `u8 x s8` product the kernels use on this CPU (`avx512-vnni`, ...).
    pub product: &'static str,
}

impl Int8Info {
    fn of(model: &Model) -> Option<Int8Info> {
        let mut scales: Vec<f32> = Vec::new();
        let mut matrices = 0;
        for t in model.tensors().filter(|t| t.dtype() == lstmrt_format::DType::I8) {
            matrices += 1;
            let s = model.tensor(&lstmrt_format::names::scale(t.name())).and_then(|s| s.as_f32());
            scales.extend_from_slice(s.expect("validated: every int8 matrix has f32 scales"));
        }
        if matrices == 0 {
            return None;
        }
        let zero_rows = scales.iter().filter(|&&s| s == 0.0).count();
        scales.sort_by(f32::total_cmp);
        Some(Int8Info {
            matrices,
            rows: scales.len(),
            scale_min: scales.first().copied().unwrap_or(0.0),
            scale_median: scales.get(scales.len() / 2).copied().unwrap_or(0.0),
            scale_max: scales.last().copied().unwrap_or(0.0),
            zero_rows,
            product: model.int8_dot().name(),
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EmbeddingInfo {
    pub num_embeddings: u32,
    pub dim: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct HeadInfo {
    pub out_features: u32,
    pub activation: &'static str,
    pub task: &'static str,
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VocabularyInfo {
    pub tokenizer: &'static str,
    pub size: usize,
    pub lowercase: bool,
    /// The unknown token's string, if the model has one.
    pub unknown: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProvenanceInfo {
    pub producer: String,
    pub source_file: String,
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TensorSummary {
    pub name: String,
    pub dtype: &'static str,
    pub layout: &'static str,
    pub shape: Vec<u64>,
}

fn activation_name(a: HeadActivation) -> &'static str {
    match a {
        HeadActivation::None => "none",
        HeadActivation::Softmax => "softmax",
        HeadActivation::Sigmoid => "sigmoid",
    }
}

fn tokenizer_name(t: Tokenizer) -> &'static str {
    match t {
        Tokenizer::Char => "char",
        Tokenizer::Word => "word",
    }
}

impl ModelInfo {
    /// The summary of `model`, opened from `path`.
    pub fn of(model: &Model, path: &str) -> ModelInfo {
        let meta = model.metadata();
        let arch = &meta.architecture;
        let file = model.file_info();
        let mut layouts: Vec<&'static str> = model.tensors().map(|t| t.layout().name()).collect();
        layouts.sort_unstable();
        layouts.dedup();
        ModelInfo {
            path: path.to_string(),
            file_size: file.file_len,
            format_version: format!("{}.{}", file.version_major, file.version_minor),
            cell: arch.cell.name(),
            input_size: arch.input_size,
            hidden_size: arch.hidden_size,
            proj_size: arch.proj_size,
            num_layers: arch.num_layers,
            bidirectional: arch.bidirectional,
            reverse: arch.reverse,
            initial_state: model.initial_state().is_some(),
            output_size: arch.sequence_output_size(),
            peepholes: arch.peepholes,
            clip: arch.clip,
            input_forget: arch.input_forget,
            linear_before_reset: (arch.cell == CellKind::Gru).then_some(arch.linear_before_reset),
            parameter_count: model.parameter_count(),
            dtype: model.dtype().name(),
            isa: IsaInfo::of(model.isa()),
            layouts,
            int8: Int8Info::of(model),
            stages: StagesInfo::of(model),
            embedding: meta
                .embedding
                .as_ref()
                .map(|e| EmbeddingInfo { num_embeddings: e.num_embeddings, dim: arch.input_size }),
            head: meta.head.as_ref().map(|h| HeadInfo {
                out_features: h.out_features,
                activation: activation_name(h.activation),
                task: task_name(h.task),
                labels: h.labels.clone(),
            }),
            vocabulary: meta.vocabulary.as_ref().map(|v| VocabularyInfo {
                tokenizer: tokenizer_name(v.tokenizer),
                size: v.tokens.len(),
                lowercase: v.lowercase,
                unknown: v.unknown.and_then(|u| v.tokens.get(u as usize).cloned()),
            }),
            provenance: ProvenanceInfo {
                producer: meta.provenance.producer.clone(),
                source_file: meta.provenance.source_file.clone(),
                entries: meta
                    .provenance
                    .entries
                    .iter()
                    .map(|e| Entry { key: e.key.clone(), value: e.value.clone() })
                    .collect(),
            },
            tensors: model
                .tensors()
                .map(|t| TensorSummary {
                    name: t.name().to_string(),
                    dtype: t.dtype().name(),
                    layout: t.layout().name(),
                    shape: t.shape().to_vec(),
                })
                .collect(),
            skipped_sections: file.skipped_sections.clone(),
            checksums_verified: None,
        }
    }
}

/// The stages of a chunked model, each described on one line.
#[derive(Debug, Clone, Serialize)]
pub struct StagesInfo {
    pub chunk: u32,
    pub channels: u32,
    pub context: u32,
    pub sample_rate: u32,
    /// Recurrent steps per chunk.
    pub steps: usize,
    /// Values a chunk's result holds.
    pub out_values: usize,
    pub front: Vec<String>,
    pub back: Vec<String>,
}

impl StagesInfo {
    fn of(model: &Model) -> Option<StagesInfo> {
        let (stages, plan) = (model.metadata().stages.as_ref()?, model.stages_plan()?);
        // `first`: the index of the list's first stage in the model's numbering.
        let describe = |list: &[lstmrt_format::Stage], shapes: &[lstmrt_format::StageShape], first: usize| {
            list.iter()
                .zip(shapes)
                .enumerate()
                .map(|(i, (s, sh))| {
                    let fft = if model.stage_runs_as_fft(first + i) { " (an STFT: runs as an FFT)" } else { "" };
                    format!("{} -> {}x{}{fft}", s.describe(sh.channels_in), sh.positions, sh.channels)
                })
                .collect()
        };
        Some(StagesInfo {
            chunk: stages.chunk,
            channels: stages.channels,
            context: stages.context,
            sample_rate: stages.sample_rate,
            steps: plan.steps,
            out_values: plan.out_values(),
            front: describe(&stages.front, &plan.front, 0),
            back: describe(&stages.back, &plan.back, stages.front.len()),
        })
    }
}

/// Groups digits by thousands: 1234567 -> `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

impl fmt::Display for ModelInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: u32, word: &str| if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") };
        writeln!(f, "model           {}", self.path)?;
        writeln!(f, "file            {} bytes, format version {}", thousands(self.file_size), self.format_version)?;
        let mut network = format!(
            "{}, {}, input {}, hidden {}",
            self.cell,
            plural(self.num_layers, "layer"),
            self.input_size,
            self.hidden_size
        );
        if self.proj_size > 0 {
            network.push_str(&format!(", projection {}", self.proj_size));
        }
        network.push_str(match (self.bidirectional, self.reverse) {
            (true, _) => ", bidirectional",
            (false, true) => ", reverse (reads sequences from the end)",
            (false, false) => ", unidirectional",
        });
        writeln!(f, "network         {network}")?;
        let mut options = Vec::new();
        if self.peepholes {
            options.push("peepholes".to_string());
        }
        if let Some(c) = self.clip {
            options.push(format!("clip {c}"));
        }
        if self.input_forget {
            options.push("input_forget".to_string());
        }
        if self.linear_before_reset == Some(false) {
            options.push("reset before linear (ONNX default)".to_string());
        }
        if !options.is_empty() {
            writeln!(f, "options         {}", options.join(", "))?;
        }
        if self.initial_state {
            writeln!(f, "initial state   stored: every sequence starts from it unless a state is given")?;
        }
        if let Some(s) = &self.stages {
            let rate = if s.sample_rate > 0 { format!(" at {} Hz", s.sample_rate) } else { String::new() };
            writeln!(
                f,
                "chunks          {} frames of {} channel{}{rate}, after {} frames of context; {} step{} each, {} value{} out",
                s.chunk,
                s.channels,
                if s.channels == 1 { "" } else { "s" },
                s.context,
                s.steps,
                if s.steps == 1 { "" } else { "s" },
                s.out_values,
                if s.out_values == 1 { "" } else { "s" }
            )?;
            for (i, line) in s.front.iter().enumerate() {
                writeln!(f, "  front.{i}       {line}")?;
            }
            for (i, line) in s.back.iter().enumerate() {
                writeln!(f, "  back.{i}        {line}")?;
            }
        }
        writeln!(f, "output per step {} values", self.output_size)?;
        writeln!(f, "parameters      {}", thousands(self.parameter_count))?;
        writeln!(f, "weights         {}, layout {}", self.dtype, self.layouts.join(", "))?;
        writeln!(f, "isa             {}", self.isa)?;
        if let Some(q) = &self.int8 {
            writeln!(
                f,
                "int8 scales     {} rows of {} matrices: min {:.3e}, median {:.3e}, max {:.3e}{}; product {}",
                q.rows,
                q.matrices,
                q.scale_min,
                q.scale_median,
                q.scale_max,
                if q.zero_rows > 0 { format!(", {} all-zero rows", q.zero_rows) } else { String::new() },
                q.product
            )?;
        }
        if let Some(e) = &self.embedding {
            writeln!(f, "embedding       {} tokens x {}", e.num_embeddings, e.dim)?;
        }
        if let Some(v) = &self.vocabulary {
            let unknown = v.unknown.as_ref().map_or("no unknown token".to_string(), |u| format!("unknown token {u:?}"));
            let case = if v.lowercase { ", lower-cased" } else { "" };
            writeln!(f, "vocabulary      {} {} tokens{case}, {unknown}", v.size, v.tokenizer)?;
        }
        if let Some(h) = &self.head {
            write!(f, "head            {}: {} outputs, {}", h.task, h.out_features, h.activation)?;
            if !h.labels.is_empty() {
                const SHOWN: usize = 10;
                let shown: Vec<&str> = h.labels.iter().take(SHOWN).map(String::as_str).collect();
                let more = if h.labels.len() > SHOWN {
                    format!(", ... ({} more)", h.labels.len() - SHOWN)
                } else {
                    String::new()
                };
                write!(f, " (labels: {}{more})", shown.join(", "))?;
            }
            writeln!(f)?;
        }
        let p = &self.provenance;
        if !p.producer.is_empty() {
            writeln!(f, "producer        {}", p.producer)?;
        }
        if !p.source_file.is_empty() {
            writeln!(f, "source          {}", p.source_file)?;
        }
        for e in &p.entries {
            writeln!(f, "  {:<13} {}", e.key, e.value)?;
        }
        if !self.skipped_sections.is_empty() {
            writeln!(f, "skipped         optional sections of kind {:?} (newer minor version)", self.skipped_sections)?;
        }
        writeln!(f, "tensors         {}", self.tensors.len())?;
        for t in &self.tensors {
            let shape: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
            writeln!(f, "  {:<24} {:<5} [{}]", t.name, t.dtype, shape.join(", "))?;
        }
        match self.checksums_verified {
            Some(true) => writeln!(f, "checksums       all {} tensors verified", self.tensors.len())?,
            Some(false) => writeln!(f, "checksums       MISMATCH")?,
            None => writeln!(f, "checksums       not checked (add --verify)")?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
