//! Weights in canonical form: f32, row-major, PyTorch's shapes and gate order.
//!
//! This is what importers and the trainer produce, what [`crate::ModelWriter`]
//! stores (converting dtype and layout), what [`crate::reference`] computes
//! with, and what [`crate::Model::weights`] gives back.

use lstmrt_format::{Architecture, Error, Metadata, expected_tensors, initial_state_tensors, names};

/// One layer and direction of the recurrent stack. `G` is the number of gates
/// (4 for LSTM `i, f, g, o`; 3 for GRU `r, z, n`; 1 for RNN), `H` the hidden
/// size, `P` the output size (projection size, or `H`), `I` the layer's input size.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LayerWeights {
    /// `[G*H, I]`
    pub w_ih: Vec<f32>,
    /// `[G*H, P]`
    pub w_hh: Vec<f32>,
    /// `[G*H]`; zeros when the source had no bias.
    pub b_ih: Vec<f32>,
    /// `[G*H]`
    pub b_hh: Vec<f32>,
    /// Projection `[P, H]` (LSTM with `proj_size > 0`).
    pub w_hr: Option<Vec<f32>>,
    /// Peepholes `[3, H]`, rows for `i, f, o` (LSTM with peepholes).
    pub peephole: Option<Vec<f32>>,
    /// The `h` every sequence starts from, `[P]` (absent: zeros).
    pub initial_h: Option<Vec<f32>>,
    /// The `c` every sequence starts from, `[H]` (LSTM; absent: zeros).
    pub initial_c: Option<Vec<f32>>,
}

/// The linear output head: `y = W x + b`, then the activation from the metadata.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HeadWeights {
    /// `[out, directions * P]`
    pub weight: Vec<f32>,
    /// `[out]`
    pub bias: Vec<f32>,
}

/// All weights of a model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Weights {
    /// Index `layer * directions + direction` (direction 1 is the reverse one).
    pub layers: Vec<LayerWeights>,
    /// `[num_embeddings, input_size]`
    pub embedding: Option<Vec<f32>>,
    /// The dense layer on top, when the metadata has one.
    pub head: Option<HeadWeights>,
    /// The stages' tensors (`front.<i>.weight`, `back.<i>.bias`, ...), by
    /// name, in canonical shape: a conv's weight is `[out, kernel * in]`,
    /// tap-major. Absent biases are zeros.
    pub stages: std::collections::BTreeMap<String, Vec<f32>>,
}

impl Weights {
    /// Zero weights of the right sizes for `meta`: a starting point for
    /// importers and tests.
    pub fn zeros(meta: &Metadata) -> Weights {
        let mut w = Weights::default();
        for t in expected_tensors(meta) {
            let n = t.shape.iter().product::<u64>() as usize;
            w.set(&meta.architecture, &t.name, vec![0.0; n]);
        }
        w
    }

    /// Random weights for `meta`, uniform in `±gain/sqrt(H)` (PyTorch's
    /// initialisation when `gain` is 1), from a seeded generator: for
    /// benchmarks, tests and experiments.
    pub fn random(meta: &Metadata, rng: &mut crate::rng::Rng, gain: f32) -> Weights {
        let mut w = Weights::default();
        let scale = gain / (meta.architecture.hidden_size as f32).sqrt();
        for t in expected_tensors(meta) {
            let n = t.shape.iter().product::<u64>() as usize;
            w.set(&meta.architecture, &t.name, (0..n).map(|_| rng.uniform_f32(-scale, scale)).collect());
        }
        w
    }

    /// Stores tensor `name` (canonical layout, f32). Returns `false` if the
    /// architecture has no tensor of that name.
    pub fn set(&mut self, arch: &Architecture, name: &str, values: Vec<f32>) -> bool {
        let Some(slot) = Slot::locate(arch, name) else { return false };
        match slot {
            Slot::Stage => {
                self.stages.insert(name.to_string(), values);
            }
            Slot::Embedding => self.embedding = Some(values),
            Slot::HeadWeight => self.head.get_or_insert_with(Default::default).weight = values,
            Slot::HeadBias => self.head.get_or_insert_with(Default::default).bias = values,
            Slot::Layer(index, field) => {
                if self.layers.len() <= index {
                    self.layers.resize_with(arch.layers() * arch.directions(), LayerWeights::default);
                }
                let lw = &mut self.layers[index];
                match field {
                    Field::WIh => lw.w_ih = values,
                    Field::WHh => lw.w_hh = values,
                    Field::BIh => lw.b_ih = values,
                    Field::BHh => lw.b_hh = values,
                    Field::WHr => lw.w_hr = Some(values),
                    Field::Peephole => lw.peephole = Some(values),
                    Field::InitialH => lw.initial_h = Some(values),
                    Field::InitialC => lw.initial_c = Some(values),
                }
            }
        }
        true
    }

    /// The stored values of tensor `name`, if present.
    pub fn get(&self, arch: &Architecture, name: &str) -> Option<&[f32]> {
        match Slot::locate(arch, name)? {
            Slot::Stage => self.stages.get(name).map(Vec::as_slice),
            Slot::Embedding => self.embedding.as_deref(),
            Slot::HeadWeight => self.head.as_ref().map(|h| h.weight.as_slice()),
            Slot::HeadBias => self.head.as_ref().map(|h| h.bias.as_slice()),
            Slot::Layer(index, field) => {
                let lw = self.layers.get(index)?;
                match field {
                    Field::WIh => Some(&lw.w_ih),
                    Field::WHh => Some(&lw.w_hh),
                    Field::BIh => Some(&lw.b_ih),
                    Field::BHh => Some(&lw.b_hh),
                    Field::WHr => lw.w_hr.as_deref(),
                    Field::Peephole => lw.peephole.as_deref(),
                    Field::InitialH => lw.initial_h.as_deref(),
                    Field::InitialC => lw.initial_c.as_deref(),
                }
            }
        }
    }

    /// Checks that every tensor `meta` needs is present with the right number
    /// of elements, that nothing else is present, and that all values are finite.
    pub fn check(&self, meta: &Metadata) -> Result<(), Error> {
        meta.validate()?;
        let arch = &meta.architecture;
        if self.layers.len() != arch.layers() * arch.directions() {
            return Err(Error::InvalidWeights {
                reason: format!(
                    "{} layer entries for {} layers x {} directions",
                    self.layers.len(),
                    arch.layers(),
                    arch.directions()
                ),
            });
        }
        let expected = expected_tensors(meta);
        let initial = initial_state_tensors(meta);
        for t in expected.iter().chain(&initial) {
            let n: u64 = t.shape.iter().product();
            match self.get(arch, &t.name) {
                None if !t.required && (initial.contains(t) || lstmrt_format::Stages::is_stage_tensor(&t.name)) => {}
                None => return Err(Error::MissingTensor { name: t.name.clone() }),
                Some(v) if v.len() as u64 != n => {
                    return Err(Error::InvalidWeights {
                        reason: format!("`{}` has {} values, shape {:?} needs {n}", t.name, v.len(), t.shape),
                    });
                }
                Some(v) => {
                    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                        return Err(Error::InvalidWeights {
                            reason: format!("`{}` element {i} is {} (weights must be finite)", t.name, v[i]),
                        });
                    }
                }
            }
        }
        let present = |name: &str| expected.iter().any(|t| t.name == name);
        if let Some(name) = self.stages.keys().find(|n| !present(n)) {
            return Err(Error::UnexpectedTensor { name: name.clone() });
        }
        if self.embedding.is_some() && !present(names::EMBEDDING) {
            return Err(Error::UnexpectedTensor { name: names::EMBEDDING.into() });
        }
        if self.head.is_some() && !present(names::HEAD_WEIGHT) {
            return Err(Error::UnexpectedTensor { name: names::HEAD_WEIGHT.into() });
        }
        for (i, lw) in self.layers.iter().enumerate() {
            let (layer, dir) = (i / arch.directions(), i % arch.directions());
            if lw.w_hr.is_some() && arch.proj_size == 0 {
                return Err(Error::UnexpectedTensor { name: names::weight_hr(layer, dir) });
            }
            if lw.peephole.is_some() && !arch.peepholes {
                return Err(Error::UnexpectedTensor { name: names::weight_peephole(layer, dir) });
            }
            if lw.initial_c.is_some() && !arch.has_cell_state() {
                return Err(Error::UnexpectedTensor { name: names::initial_c(layer, dir) });
            }
        }
        Ok(())
    }
}

/// Where a named tensor lives in [`Weights`].
enum Slot {
    Stage,
    Embedding,
    HeadWeight,
    HeadBias,
    Layer(usize, Field),
}

enum Field {
    WIh,
    WHh,
    BIh,
    BHh,
    WHr,
    Peephole,
    InitialH,
    InitialC,
}

impl Slot {
    fn locate(arch: &Architecture, name: &str) -> Option<Slot> {
        match name {
            names::EMBEDDING => return Some(Slot::Embedding),
            names::HEAD_WEIGHT => return Some(Slot::HeadWeight),
            names::HEAD_BIAS => return Some(Slot::HeadBias),
            _ if lstmrt_format::Stages::is_stage_tensor(name) => return Some(Slot::Stage),
            _ => {}
        }
        let dirs = arch.directions();
        for layer in 0..arch.layers() {
            for dir in 0..dirs {
                let field = [
                    (names::weight_ih(layer, dir), Field::WIh),
                    (names::weight_hh(layer, dir), Field::WHh),
                    (names::bias_ih(layer, dir), Field::BIh),
                    (names::bias_hh(layer, dir), Field::BHh),
                    (names::weight_hr(layer, dir), Field::WHr),
                    (names::weight_peephole(layer, dir), Field::Peephole),
                    (names::initial_h(layer, dir), Field::InitialH),
                    (names::initial_c(layer, dir), Field::InitialC),
                ]
                .into_iter()
                .find(|(n, _)| n == name);
                if let Some((_, field)) = field {
                    return Some(Slot::Layer(layer * dirs + dir, field));
                }
            }
        }
        None
    }
}
