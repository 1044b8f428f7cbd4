//! `lstmrt._lstmrt`: the Python bindings of lstmrt (the package `lstmrt`
//! re-exports them; `python/lstmrt/_lstmrt.pyi` types them).
//!
//! Arrays in: float32 numpy arrays, read in place when C-contiguous (copied
//! into order otherwise). Arrays out: buffers filled by the runtime and
//! handed to numpy without a copy. The GIL is released while the runtime
//! computes, so other Python threads run meanwhile; a `State` or
//! `StreamBatch` in use by one call is refused to a second one at once
//! (pyo3's borrow check), never shared.

use std::path::PathBuf;

use numpy::ndarray::{Array, IxDyn};
use numpy::{
    IntoPyArray, PyArray1, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList};

use lstmrt::format::DType;

mod vad;

/// The exception classes of `lstmrt._errors` (pure Python, so that they can
/// also derive from `ValueError`, `OSError`, ...).
fn raise(py: Python<'_>, class: &str, message: String) -> PyErr {
    static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    let module = match ERRORS.get_or_try_init(py, || py.import("lstmrt._errors").map(Bound::unbind)) {
        Ok(m) => m.bind(py),
        Err(e) => return e,
    };
    match module.getattr(class).and_then(|c| c.call1((message,))) {
        Ok(instance) => PyErr::from_value(instance),
        Err(e) => e,
    }
}

/// The `lstmrt.Error` subclass for each runtime error, with its message.
fn runtime_error(py: Python<'_>, e: lstmrt::Error) -> PyErr {
    use lstmrt::ErrorKind as K;
    // Every kind named: a new one does not compile until it has a class.
    let class = match e.kind() {
        K::Io => "ReadError",
        K::Format => "FileError",
        K::Isa | K::Unsupported => "UnsupportedError",
        K::Shape | K::Batch => "ShapeError",
        K::BadLengths => "LengthsError",
        K::StateMismatch | K::BadState => "StateError",
        K::Stream => "StreamError",
        K::UnknownToken | K::BadTokenId => "TokenError",
        K::OutOfMemory => "OutOfMemoryError",
        K::NotFinite => "NotFiniteError",
    };
    raise(py, class, e.to_string())
}

trait OrRaise<T> {
    fn or_raise(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> OrRaise<T> for Result<T, lstmrt::Error> {
    fn or_raise(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| runtime_error(py, e))
    }
}

/// A float32 array's values in C order: the array's own memory when it is
/// C-contiguous (no copy), else a copy. Anything else than a float32 numpy
/// array is a `DTypeError` naming what it is.
enum Floats<'py> {
    Borrowed(PyReadonlyArrayDyn<'py, f32>),
    Owned(Vec<f32>),
}

impl Floats<'_> {
    fn as_slice(&self) -> &[f32] {
        match self {
            Floats::Borrowed(a) => a.as_slice().expect("checked contiguous"),
            Floats::Owned(v) => v,
        }
    }
}

fn floats<'py>(py: Python<'py>, what: &str, x: &Bound<'py, PyAny>) -> PyResult<(Floats<'py>, Vec<usize>)> {
    let Ok(array) = x.cast::<PyArrayDyn<f32>>() else {
        let got = match x.cast::<PyUntypedArray>() {
            Ok(a) => format!("a numpy array of {}", a.dtype()),
            Err(_) => format!("a {}", x.get_type().name()?),
        };
        return Err(raise(
            py,
            "DTypeError",
            format!("{what} must be a numpy float32 array, got {got} (use np.asarray(x, dtype=np.float32))"),
        ));
    };
    let shape = array.shape().to_vec();
    let ro = array.try_readonly().map_err(|e| raise(py, "Error", format!("{what}: {e}")))?;
    // (`as_slice` also accepts Fortran order, which is not the order meant.)
    if ro.is_c_contiguous() && ro.as_slice().is_ok() {
        Ok((Floats::Borrowed(ro), shape))
    } else {
        Ok((Floats::Owned(ro.as_array().iter().copied().collect()), shape))
    }
}

fn shape_error(py: Python<'_>, message: String) -> PyErr {
    raise(py, "ShapeError", message)
}

fn dims(shape: &[usize]) -> String {
    format!("[{}]", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "))
}

/// A model file, opened and validated once; shared by any number of states
/// and threads.
#[pyclass(module = "lstmrt", frozen)]
struct Model {
    inner: lstmrt::Model,
}

impl Model {
    fn arch(&self) -> &lstmrt::format::Architecture {
        self.inner.architecture()
    }

    fn new_state_of(&self, py: Python<'_>, batch: usize, threads: usize) -> PyResult<State> {
        let mut inner = self.inner.new_batch_state(batch).or_raise(py)?;
        inner.set_threads(threads);
        Ok(State::wrap(self, inner))
    }
}

#[pymethods]
impl Model {
    /// Opens a model file: memory-mapped (`mmap=True`, pages shared by every
    /// process that opens it) or read into memory (`mmap=False`, for a file
    /// that may change while in use). Raises `ReadError` or `FileError`.
    #[new]
    #[pyo3(signature = (path, *, mmap = true))]
    fn new(py: Python<'_>, path: PathBuf, mmap: bool) -> PyResult<Model> {
        let inner = py.detach(|| if mmap { lstmrt::Model::open(&path) } else { lstmrt::Model::load(&path) });
        Ok(Model { inner: inner.or_raise(py)? })
    }

    /// A model from the bytes of a model file (copied and validated).
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8]) -> PyResult<Model> {
        Ok(Model { inner: lstmrt::Model::from_bytes(data).or_raise(py)? })
    }

    /// Features per timestep of the input.
    #[getter]
    fn input_size(&self) -> usize {
        self.arch().input_size as usize
    }

    /// Features per timestep of the output (directions x hidden or projection size).
    #[getter]
    fn output_size(&self) -> usize {
        self.arch().sequence_output_size()
    }

    /// What the model is: architecture, dtype, sizes, the instruction-set
    /// tier in use, head and vocabulary.
    #[getter]
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (m, a) = (&self.inner, self.arch());
        let d = PyDict::new(py);
        d.set_item("architecture", a.cell.name())?;
        d.set_item("dtype", m.dtype().name())?;
        d.set_item("input_size", a.input_size)?;
        d.set_item("hidden_size", a.hidden_size)?;
        d.set_item("proj_size", a.proj_size)?;
        d.set_item("num_layers", a.num_layers)?;
        d.set_item("bidirectional", a.bidirectional)?;
        d.set_item("output_size", a.sequence_output_size())?;
        d.set_item("isa", m.isa().name())?;
        d.set_item("parameters", m.parameter_count())?;
        d.set_item("mapped", m.is_mapped())?;
        let info = m.file_info();
        d.set_item("format_version", format!("{}.{}", info.version_major, info.version_minor))?;
        d.set_item("file_bytes", info.file_len)?;
        let meta = m.metadata();
        match &meta.head {
            Some(h) => {
                let head = PyDict::new(py);
                head.set_item("out_features", h.out_features)?;
                head.set_item("activation", lstmrt_import::convert::head_activation_name(h.activation))?;
                head.set_item("labels", PyList::new(py, &h.labels)?)?;
                d.set_item("head", head)?;
            }
            None => d.set_item("head", py.None())?,
        }
        d.set_item("vocabulary_size", meta.vocabulary.as_ref().map(|v| v.tokens.len()))?;
        match (&meta.stages, m.stages_plan()) {
            (Some(st), Some(plan)) => {
                let c = PyDict::new(py);
                c.set_item("chunk", st.chunk)?;
                c.set_item("channels", st.channels)?;
                c.set_item("context", st.context)?;
                c.set_item("sample_rate", st.sample_rate)?;
                c.set_item("outputs", plan.out_values())?;
                d.set_item("chunks", c)?;
            }
            _ => d.set_item("chunks", py.None())?,
        }
        Ok(d)
    }

    /// A fresh state (zeros, or the file's initial state) for `batch`
    /// sequences run together, computed on `threads` threads.
    #[pyo3(signature = (batch = 1, *, threads = 1))]
    fn new_state(&self, py: Python<'_>, batch: usize, threads: usize) -> PyResult<State> {
        self.new_state_of(py, batch, threads.max(1))
    }

    /// For a chunked model (a conv front-end and head around the stack, such
    /// as Silero VAD): the carried state and buffers of `streams` signals
    /// run together, on `threads` threads. Raises for other models.
    #[pyo3(signature = (streams = 1, *, threads = 1))]
    fn new_chunk_state(slf: &Bound<'_, Self>, py: Python<'_>, streams: usize, threads: usize) -> PyResult<ChunkState> {
        let model = slf.get();
        let mut inner = model.inner.new_chunk_state(streams).or_raise(py)?;
        inner.set_threads(threads.max(1));
        let stages = model.inner.metadata().stages.as_ref().expect("a chunk state exists only for chunked models");
        let per = (stages.chunk * stages.channels) as usize;
        Ok(ChunkState { model: slf.clone().unbind(), inner, per })
    }

    /// Runs a whole sequence, as `torch.nn.LSTM` (GRU, RNN) does.
    ///
    /// `x` is float32 `[T, F]` (one sequence) or `[T, B, F]` (`[B, T, F]`
    /// with `batch_first=True`). Returns the output shaped as PyTorch's
    /// `output`: `[T, D*P]`, `[T, B, D*P]` or `[B, T, D*P]`. With `state`,
    /// starts from it and leaves the final `h`/`c` in it; without, starts
    /// from a fresh state. `lengths` (one per row) runs rows of different
    /// lengths as a packed sequence: zeros past each row's length, each
    /// row's final state at its own last step.
    #[pyo3(signature = (x, state = None, *, batch_first = false, lengths = None))]
    fn run<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        state: Option<&Bound<'py, State>>,
        batch_first: bool,
        lengths: Option<Vec<i64>>,
    ) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        let (values, shape) = floats(py, "x", x)?;
        let f = self.input_size();
        let (steps, batch) = match (shape.as_slice(), batch_first) {
            ([t, n], _) if *n == f => (*t, None),
            ([t, b, n], false) if *n == f => (*t, Some(*b)),
            ([b, t, n], true) if *n == f => (*t, Some(*b)),
            _ => {
                let layout = if batch_first { "[B, T, F]" } else { "[T, B, F]" };
                return Err(shape_error(
                    py,
                    format!("x is {}, the model needs [T, F] or {layout} with F = {f}", dims(&shape)),
                ));
            }
        };
        let rows = batch.unwrap_or(1);
        if rows == 0 {
            return Err(shape_error(py, format!("x is {}: a batch of 0 sequences", dims(&shape))));
        }
        let lengths = match lengths {
            None => None,
            Some(l) => Some(
                l.iter()
                    .enumerate()
                    .map(|(i, &n)| {
                        usize::try_from(n).map_err(|_| raise(py, "LengthsError", format!("lengths[{i}] is {n}")))
                    })
                    .collect::<PyResult<Vec<usize>>>()?,
            ),
        };
        // Sequence-major input, as the runtime reads it.
        let reordered;
        let xs: &[f32] = if batch_first && rows > 1 && steps > 1 {
            reordered = swap_leading(values.as_slice(), rows, steps, f);
            &reordered
        } else {
            values.as_slice()
        };
        let width = self.output_size();
        let mut out = vec![0.0f32; steps * rows * width];
        let model = &self.inner;
        let (mut borrowed, mut fresh);
        let st: &mut lstmrt::State = match state {
            Some(s) => {
                borrowed = s.try_borrow_mut()?;
                if borrowed.inner.batch() != rows {
                    let b = borrowed.inner.batch();
                    return Err(raise(py, "StateError", format!("the state is for a batch of {b}, x holds {rows}")));
                }
                &mut borrowed.inner
            }
            None => {
                fresh = model.new_batch_state(rows).or_raise(py)?;
                &mut fresh
            }
        };
        py.detach(|| match &lengths {
            Some(l) => model.run_lengths_into(st, xs, l, &mut out),
            None => model.run_into(st, xs, &mut out),
        })
        .or_raise(py)?;
        let out = if batch_first && rows > 1 && steps > 1 { swap_leading(&out, steps, rows, width) } else { out };
        let shape = match (batch, batch_first) {
            (None, _) => vec![steps, width],
            (Some(b), false) => vec![steps, b, width],
            (Some(b), true) => vec![b, steps, width],
        };
        Ok(Array::from_shape_vec(IxDyn(&shape), out).expect("sized above").into_pyarray(py))
    }

    /// One timestep: `x` is float32 `[B, F]` (or `[F]` for a state of batch
    /// 1); returns the top layer's new `h`, `[B, P]` (or `[P]`), and carries
    /// the state to the next call. With `out` (a float32 array of that
    /// shape), writes there instead of allocating.
    #[pyo3(signature = (state, x, out = None))]
    fn step<'py>(
        &self,
        py: Python<'py>,
        state: &Bound<'py, State>,
        x: &Bound<'py, PyAny>,
        out: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (values, shape) = floats(py, "x", x)?;
        let mut s = state.try_borrow_mut()?;
        let (f, batch) = (self.input_size(), s.inner.batch());
        let flat = match shape.as_slice() {
            [n] if *n == f && batch == 1 => true,
            [b, n] if *n == f && *b == batch => false,
            _ => {
                return Err(shape_error(py, format!("x is {}, the state needs [{batch}, {f}]", dims(&shape))));
            }
        };
        let model = &self.inner;
        let st = &mut s.inner;
        let xs = values.as_slice();
        let ys = py.detach(|| model.step(st, xs)).or_raise(py)?;
        match out {
            Some(o) => {
                let Ok(array) = o.cast::<PyArrayDyn<f32>>() else {
                    return Err(raise(py, "DTypeError", "out must be a numpy float32 array".into()));
                };
                let mut rw = array.try_readwrite().map_err(|e| raise(py, "Error", format!("out: {e}")))?;
                let c_order = rw.is_c_contiguous();
                let Some(dst) = rw.as_slice_mut().ok().filter(|_| c_order) else {
                    return Err(shape_error(py, "out must be C-contiguous".into()));
                };
                if dst.len() != ys.len() {
                    return Err(shape_error(
                        py,
                        format!("out holds {} values, the step makes {}", dst.len(), ys.len()),
                    ));
                }
                dst.copy_from_slice(ys);
                Ok(o)
            }
            None => {
                let y = PyArray1::from_slice(py, ys);
                if flat { Ok(y.into_any()) } else { Ok(y.reshape([batch, ys.len() / batch])?.into_any()) }
            }
        }
    }

    /// A batch of up to `capacity` independent streams, stepped together.
    #[pyo3(signature = (capacity, *, threads = 1))]
    fn new_stream_batch(slf: &Bound<'_, Self>, capacity: usize, threads: usize) -> PyResult<StreamBatch> {
        let py = slf.py();
        let model = slf.get();
        let mut inner = model.inner.new_stream_batch(capacity).or_raise(py)?;
        inner.set_threads(threads.max(1));
        Ok(StreamBatch { model: slf.clone().unbind(), inner, ids: Vec::with_capacity(capacity) })
    }

    /// The token ids of `text` (models with a vocabulary).
    fn tokenize(&self, py: Python<'_>, text: &str) -> PyResult<Vec<u32>> {
        self.inner.tokenize(text).or_raise(py)
    }

    /// The input rows of token ids, `[len(ids), F]`.
    fn token_inputs<'py>(&self, py: Python<'py>, ids: Vec<u32>) -> PyResult<Bound<'py, PyAny>> {
        let xs = self.inner.token_inputs(&ids).or_raise(py)?;
        Ok(PyArray1::from_vec(py, xs).reshape([ids.len(), self.input_size()])?.into_any())
    }

    /// The output head (with its activation) on one timestep's output `[D*P]`.
    fn head<'py>(&self, py: Python<'py>, y: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let (values, _) = floats(py, "y", y)?;
        let n = self.inner.metadata().head.as_ref().map_or(0, |h| h.out_features as usize);
        let mut out = vec![0.0; n];
        self.inner.apply_head(values.as_slice(), &mut out).or_raise(py)?;
        Ok(PyArray1::from_vec(py, out))
    }

    fn __repr__(&self) -> String {
        let a = self.arch();
        format!(
            "lstmrt.Model({} {}, input {}, hidden {}, {} layer(s){}, {})",
            a.cell.name(),
            self.inner.dtype().name(),
            a.input_size,
            a.hidden_size,
            a.num_layers,
            if a.bidirectional { ", bidirectional" } else { "" },
            self.inner.isa().name()
        )
    }
}

/// `[a, b, n]` values as `[b, a, n]`.
fn swap_leading(v: &[f32], a: usize, b: usize, n: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for i in 0..a {
        for j in 0..b {
            out[(j * a + i) * n..][..n].copy_from_slice(&v[(i * b + j) * n..][..n]);
        }
    }
    out
}

/// The recurrent state of `batch` sequences (or one stream): `h`, `c`, the
/// runtime's buffers and worker threads. One per stream; not shared by
/// two calls at once.
#[pyclass(module = "lstmrt")]
struct State {
    inner: lstmrt::State,
    /// Layers x directions, and the sizes of `h` and `c` per row.
    slots: usize,
    h_size: usize,
    c_size: usize,
}

impl State {
    fn wrap(model: &Model, inner: lstmrt::State) -> State {
        let a = model.arch();
        let slots = a.num_layers as usize * a.directions();
        let c_size = if a.has_cell_state() { a.hidden() } else { 0 };
        State { inner, slots, h_size: a.output_size(), c_size }
    }

    fn array<'py>(&self, py: Python<'py>, values: &[f32], size: usize) -> PyResult<Bound<'py, PyAny>> {
        Ok(PyArray1::from_slice(py, values).reshape([self.slots, self.inner.batch(), size])?.into_any())
    }

    fn set(&mut self, py: Python<'_>, what: &str, value: &Bound<'_, PyAny>, size: usize) -> PyResult<()> {
        let (values, shape) = floats(py, what, value)?;
        let want = [self.slots, self.inner.batch(), size];
        if shape != want {
            return Err(shape_error(py, format!("{what} is {}, the state's is {}", dims(&shape), dims(&want))));
        }
        let set = if what == "h" { lstmrt::State::set_h } else { lstmrt::State::set_c };
        set(&mut self.inner, values.as_slice()).or_raise(py)
    }
}

#[pymethods]
impl State {
    /// The saved state `data` (from `to_bytes`) of this model.
    #[staticmethod]
    fn from_bytes(py: Python<'_>, model: &Bound<'_, Model>, data: &[u8]) -> PyResult<State> {
        let model = model.get();
        let inner = lstmrt::State::from_bytes(&model.inner, data).or_raise(py)?;
        Ok(State::wrap(model, inner))
    }

    /// The state as bytes (batch, `h`, `c`; checked against the model on load).
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.to_bytes())
    }

    /// Back to the model's initial state: the next step starts a new sequence.
    fn reset(&mut self) {
        self.inner.reset();
    }

    /// A copy (same `h`, `c` and thread count), to branch a stream.
    fn copy(&self) -> State {
        State { inner: self.inner.clone(), ..*self }
    }

    /// Sequences run together.
    #[getter]
    fn batch(&self) -> usize {
        self.inner.batch()
    }

    /// Threads the runtime uses for this state (settable).
    #[getter]
    fn threads(&self) -> usize {
        self.inner.threads()
    }

    #[setter]
    fn set_threads(&mut self, threads: usize) {
        self.inner.set_threads(threads.max(1));
    }

    /// `h` (a copy), `[layers * directions, batch, P]` like PyTorch's `h_n`;
    /// settable, like `h_0`.
    #[getter]
    fn h<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.array(py, self.inner.h(), self.h_size)
    }

    #[setter(h)]
    fn set_h(&mut self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.set(py, "h", value, self.h_size)
    }

    /// `c` (a copy), `[layers * directions, batch, H]` like `c_n`; `None`
    /// unless the model is an LSTM. Settable.
    #[getter]
    fn c<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        if self.c_size == 0 { Ok(None) } else { self.array(py, self.inner.c(), self.c_size).map(Some) }
    }

    #[setter(c)]
    fn set_c(&mut self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        if self.c_size == 0 {
            return Err(raise(py, "UnsupportedError", "this model has no cell state c".into()));
        }
        self.set(py, "c", value, self.c_size)
    }

    fn __repr__(&self) -> String {
        format!("lstmrt.State(batch {}, {} thread(s))", self.inner.batch(), self.inner.threads())
    }
}

/// One stream of a `StreamBatch`: valid until it leaves.
#[pyclass(module = "lstmrt", frozen, eq, hash, from_py_object)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct StreamId {
    inner: lstmrt::StreamId,
}

#[pymethods]
impl StreamId {
    /// The stream's place in the batch, `0..capacity`.
    #[getter]
    fn index(&self) -> usize {
        self.inner.index()
    }

    /// How many streams held the place before.
    #[getter]
    fn generation(&self) -> u64 {
        self.inner.generation()
    }

    fn __repr__(&self) -> String {
        format!("lstmrt.StreamId({}, generation {})", self.inner.index(), self.inner.generation())
    }
}

/// The carried state of a chunked model's streams (the recurrent state and
/// each stream's context frames) and every buffer a chunk needs.
#[pyclass(module = "lstmrt")]
struct ChunkState {
    model: Py<Model>,
    inner: lstmrt::ChunkState,
    /// Values of one stream's chunk (frames x channels).
    per: usize,
}

#[pymethods]
impl ChunkState {
    /// One chunk of every stream: float32 `[streams, chunk]` (or
    /// `[streams, chunk, channels]`; `[chunk]` for one mono stream). Returns
    /// the head's outputs, `[streams, outputs]`, and carries the state.
    fn run<'py>(&mut self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let (values, shape) = floats(py, "x", x)?;
        let streams = self.inner.batch();
        let leading = match shape.as_slice() {
            [_] => streams == 1,
            [b, ..] => *b == streams,
            [] => false,
        };
        if !leading || shape.iter().product::<usize>() != streams * self.per {
            return Err(shape_error(
                py,
                format!("x is {}, {streams} streams need [{streams}, {}] values", dims(&shape), self.per),
            ));
        }
        let model = &self.model.get().inner;
        let (st, xs) = (&mut self.inner, values.as_slice());
        let ys = py.detach(|| model.run_chunk(st, xs)).or_raise(py)?;
        let width = ys.len() / streams;
        Ok(PyArray1::from_slice(py, ys).reshape([streams, width])?.into_any())
    }

    /// One chunk of some streams: `streams` names them (distinct, each
    /// below `self.streams`), `x` is float32 `[len(streams), chunk]` in that
    /// order. The other streams keep their state and context. Returns
    /// `[len(streams), outputs]`.
    fn run_streams<'py>(
        &mut self,
        py: Python<'py>,
        streams: Vec<usize>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (values, shape) = floats(py, "x", x)?;
        let k = streams.len();
        if shape.first() != Some(&k) || shape.iter().product::<usize>() != k * self.per {
            return Err(shape_error(py, format!("x is {}, {k} streams need [{k}, {}] values", dims(&shape), self.per)));
        }
        let model = &self.model.get().inner;
        let (st, xs) = (&mut self.inner, values.as_slice());
        let ys = py.detach(|| model.run_chunk_streams(st, &streams, xs)).or_raise(py)?;
        let width = ys.len() / k.max(1);
        Ok(PyArray1::from_slice(py, ys).reshape([k, width])?.into_any())
    }

    /// A whole signal (float32 `[samples]`) through a one-stream state,
    /// chunk after chunk (the last one padded with zeros), in one call with
    /// the GIL released; the state carries on from where it was and is left
    /// after the last chunk. Returns `[chunks, outputs]`.
    fn run_signal<'py>(&mut self, py: Python<'py>, signal: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let (values, shape) = floats(py, "signal", signal)?;
        if shape.len() != 1 {
            return Err(shape_error(py, format!("signal is {}, a signal is one-dimensional", dims(&shape))));
        }
        let model = &self.model.get().inner;
        let chunks = model.signal_chunks(shape[0]);
        let width = model.stages_plan().map_or(0, |p| p.out_positions * p.out_channels);
        let mut out = vec![0.0f32; chunks * width];
        let (st, xs) = (&mut self.inner, values.as_slice());
        py.detach(|| model.run_signal(st, xs, &mut out)).or_raise(py)?;
        Ok(PyArray1::from_vec(py, out).reshape([chunks, width])?.into_any())
    }

    /// Every stream starts afresh (initial state, zero context).
    fn reset(&mut self) {
        self.inner.reset();
    }

    /// Stream `stream` starts afresh; the others keep their state.
    fn reset_stream(&mut self, py: Python<'_>, stream: usize) -> PyResult<()> {
        self.inner.reset_stream(stream).or_raise(py)
    }

    /// Streams run together.
    #[getter]
    fn streams(&self) -> usize {
        self.inner.batch()
    }
}

/// Up to `capacity` independent streams of one model, stepped together by
/// one call (many audio or sensor streams on one server): each stream
/// joins, steps when it has input, and leaves.
#[pyclass(module = "lstmrt")]
struct StreamBatch {
    model: Py<Model>,
    inner: lstmrt::StreamBatch,
    /// The ids of the current `step` call (kept: no allocation per step).
    ids: Vec<lstmrt::StreamId>,
}

#[pymethods]
impl StreamBatch {
    /// A new stream from the initial state, or from a copy of `state`.
    #[pyo3(signature = (state = None))]
    fn join(&mut self, py: Python<'_>, state: Option<PyRef<'_, State>>) -> PyResult<StreamId> {
        let id = match state {
            Some(s) => self.inner.join_from(&s.inner),
            None => self.inner.join(),
        };
        Ok(StreamId { inner: id.or_raise(py)? })
    }

    /// The stream leaves; its place is free for another.
    fn leave(&mut self, py: Python<'_>, id: StreamId) -> PyResult<()> {
        self.inner.leave(id.inner).or_raise(py)
    }

    /// The stream starts a new sequence.
    fn reset(&mut self, py: Python<'_>, id: StreamId) -> PyResult<()> {
        self.inner.reset(id.inner).or_raise(py)
    }

    /// A copy of one stream's state (batch 1).
    fn state(&self, py: Python<'_>, id: StreamId) -> PyResult<State> {
        let model = self.model.get();
        let inner = self.inner.stream_state(&model.inner, id.inner).or_raise(py)?;
        Ok(State::wrap(model, inner))
    }

    /// Sets one stream's state from a state of batch 1.
    fn set_state(&mut self, py: Python<'_>, id: StreamId, state: PyRef<'_, State>) -> PyResult<()> {
        self.inner.set_stream_state(id.inner, &state.inner).or_raise(py)
    }

    /// One step of the streams `ids` (distinct, in any order): `xs` is
    /// float32 `[len(ids), F]`, row `i` for `ids[i]`; returns `[len(ids), P]`.
    /// Streams not named keep their state.
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        ids: Vec<StreamId>,
        xs: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (values, shape) = floats(py, "xs", xs)?;
        let model = self.model.get();
        let f = model.input_size();
        if shape != [ids.len(), f] {
            return Err(shape_error(
                py,
                format!("xs is {}, {} ids need [{}, {f}]", dims(&shape), ids.len(), ids.len()),
            ));
        }
        self.ids.clear();
        self.ids.extend(ids.iter().map(|i| i.inner));
        let (inner, ids, x) = (&mut self.inner, &self.ids, values.as_slice());
        let ys = py.detach(|| inner.step(&model.inner, ids, x)).or_raise(py)?;
        let width = if ids.is_empty() { 0 } else { ys.len() / ids.len() };
        Ok(PyArray1::from_slice(py, ys).reshape([ids.len(), width])?.into_any())
    }

    /// Streams in the batch now.
    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// Streams it has room for.
    #[getter]
    fn capacity(&self) -> usize {
        self.inner.capacity()
    }
}

/// Converts a PyTorch (`.pt`, `.safetensors`), ONNX or Keras-export model
/// at `src` into a model file at `dst` (written to a temporary name, then
/// renamed; never over `src`), with weights in `dtype` (`"f32"`, `"f16"`,
/// `"bf16"`, `"int8"`). With `check`, runs it against the reference engine
/// first and raises if it differs. `cell` (`"lstm"`, `"gru"`, `"rnn_tanh"`,
/// `"rnn_relu"`) names the cell where the weights cannot tell (an `nn.RNN`
/// with ReLU looks like tanh). Returns what was converted, in one line.
#[pyfunction]
#[pyo3(signature = (src, dst, dtype = "f32", *, check = false, cell = None))]
fn convert<'py>(
    py: Python<'py>,
    src: PathBuf,
    dst: PathBuf,
    dtype: &str,
    check: bool,
    cell: Option<&str>,
) -> PyResult<String> {
    let Some(dtype) = DType::from_name(dtype) else {
        return Err(raise(py, "ConvertError", format!("unknown dtype {dtype:?}: use f32, f16, bf16 or int8")));
    };
    let mut request = lstmrt_import::convert::Request::new(src, dst);
    request.dtype = dtype;
    request.check = check;
    if let Some(name) = cell {
        let Some(kind) = lstmrt::format::CellKind::from_name(name) else {
            return Err(raise(
                py,
                "ConvertError",
                format!("unknown cell {name:?}: use lstm, gru, rnn_tanh or rnn_relu"),
            ));
        };
        request.options.cell = Some(kind);
    }
    let outcome = py.detach(|| lstmrt_import::convert::convert(&request));
    match outcome {
        Ok(o) => Ok(lstmrt_import::convert::summary(&request, &o)),
        Err(e) => Err(raise(py, "ConvertError", e.to_string())),
    }
}

/// The instruction-set tier this process runs on (`LSTMRT_ISA` forces one).
#[pyfunction]
fn isa(py: Python<'_>) -> PyResult<&'static str> {
    lstmrt::isa().map(|i| i.name()).map_err(|e| raise(py, "UnsupportedError", e.to_string()))
}

#[pymodule]
fn _lstmrt(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<Model>()?;
    m.add_class::<State>()?;
    m.add_class::<StreamBatch>()?;
    m.add_class::<ChunkState>()?;
    m.add_class::<StreamId>()?;
    m.add_function(wrap_pyfunction!(convert, m)?)?;
    m.add_function(wrap_pyfunction!(isa, m)?)?;
    vad::register(m)?;
    Ok(())
}
