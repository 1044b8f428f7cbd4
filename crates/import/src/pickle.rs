//! A restricted pickle reader for PyTorch state dicts.
//!
//! `torch.save(model.state_dict())` writes a pickle of an `OrderedDict` of
//! tensors. A pickle is a program for a stack machine, and unpickling it with
//! Python can call any importable function (`os.system` included). This module
//! runs that stack machine with a fixed allow-list of the few callables a
//! state dict uses, implemented here as data constructors:
//!
//! | global                                   | here                                |
//! |------------------------------------------|-------------------------------------|
//! | `collections.OrderedDict`                | an empty (or given) dict            |
//! | `torch._utils._rebuild_tensor_v2`        | a [`TensorRef`] (storage, offset, size, stride) |
//! | `torch._utils._rebuild_tensor`           | the same, older signature           |
//! | `torch._utils._rebuild_parameter`        | its tensor argument                 |
//! | `torch._utils._rebuild_parameter_with_state` | its tensor argument             |
//! | `torch.FloatStorage`, `torch.HalfStorage`, ... | a storage dtype, only inside a persistent id |
//!
//! Every other `GLOBAL`/`STACK_GLOBAL` is an error naming it; `INST`, `OBJ`,
//! extension codes and out-of-band buffers are errors too. Nothing is ever
//! executed or imported. Storages arrive as persistent ids
//! `('storage', StorageType, key, location, numel[, view])`, which become
//! [`StorageRef`]s; the caller finds their bytes (in the zip, or after the
//! pickle in the legacy format).
//!
//! Objects live in an arena and the stack and memo hold indices, so a memo
//! entry sees later mutations (as in Python) and a hostile pickle cannot make
//! copies blow up: every opcode adds at most one object, so memory stays
//! linear in the input size.

use std::collections::HashMap;
use std::fmt;

/// Where and why a pickle was refused.
#[derive(Debug, Clone, PartialEq)]
pub struct PickleError {
    /// Byte offset of the opcode in the pickle.
    pub position: usize,
    pub message: String,
}

impl fmt::Display for PickleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pickle byte {}: {}", self.position, self.message)
    }
}

impl std::error::Error for PickleError {}

/// Why a pickle's object is not a state dict ([`Pickle::tensors`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StateDictError {
    /// The root object is not a dict; `found` is its kind (`list`, `tensor`, ...).
    NotADict { found: &'static str },
    /// Two tensors get the same dotted name.
    DuplicateName { name: String },
    /// Dicts nest deeper than the limit under `prefix` (a hostile file).
    TooDeep { prefix: String, limit: usize },
    /// The dict at `prefix` was already reached under another name: a cycle,
    /// or one dict shared many times (which would name its tensors over and
    /// over, exponentially in the nesting).
    SharedDict { prefix: String },
}

impl fmt::Display for StateDictError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateDictError::NotADict { found } => {
                write!(f, "the pickled object is a {found}, expected a dict of tensors (a state dict)")
            }
            StateDictError::DuplicateName { name } => write!(f, "the name `{name}` appears twice"),
            StateDictError::TooDeep { prefix, limit } => {
                write!(f, "dicts nested deeper than {limit} levels under `{prefix}`")
            }
            StateDictError::SharedDict { prefix } => {
                write!(
                    f,
                    "the dict at `{prefix}` is reached a second time (a cycle or a shared dict): not a state dict"
                )
            }
        }
    }
}

impl std::error::Error for StateDictError {}

/// Element type of a torch storage, from its `torch.*Storage` class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageDType {
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl StorageDType {
    fn from_class(name: &str) -> Option<StorageDType> {
        Some(match name {
            "DoubleStorage" => StorageDType::F64,
            "FloatStorage" => StorageDType::F32,
            "HalfStorage" => StorageDType::F16,
            "BFloat16Storage" => StorageDType::BF16,
            "LongStorage" => StorageDType::I64,
            "IntStorage" => StorageDType::I32,
            "ShortStorage" => StorageDType::I16,
            "CharStorage" => StorageDType::I8,
            "ByteStorage" => StorageDType::U8,
            "BoolStorage" => StorageDType::Bool,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            StorageDType::F64 | StorageDType::I64 => 8,
            StorageDType::F32 | StorageDType::I32 => 4,
            StorageDType::F16 | StorageDType::BF16 | StorageDType::I16 => 2,
            StorageDType::I8 | StorageDType::U8 | StorageDType::Bool => 1,
        }
    }

    /// Whether this is a floating-point type (the only ones weights come in).
    pub fn is_float(self) -> bool {
        matches!(self, StorageDType::F64 | StorageDType::F32 | StorageDType::F16 | StorageDType::BF16)
    }

    /// PyTorch's name of the dtype.
    pub fn name(self) -> &'static str {
        match self {
            StorageDType::F64 => "float64",
            StorageDType::F32 => "float32",
            StorageDType::F16 => "float16",
            StorageDType::BF16 => "bfloat16",
            StorageDType::I64 => "int64",
            StorageDType::I32 => "int32",
            StorageDType::I16 => "int16",
            StorageDType::I8 => "int8",
            StorageDType::U8 => "uint8",
            StorageDType::Bool => "bool",
        }
    }
}

/// A storage named by a persistent id: its bytes are elsewhere in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageRef {
    pub dtype: StorageDType,
    /// The key its bytes are filed under (`data/{key}` in the zip format).
    pub key: String,
    /// Number of elements of `dtype` in the storage.
    pub numel: u64,
}

/// A tensor as `_rebuild_tensor_v2` describes it: a strided view of a storage.
/// Offsets, sizes and strides are in elements.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    pub storage: StorageRef,
    pub offset: u64,
    pub shape: Vec<u64>,
    pub stride: Vec<u64>,
}

/// The allowed callables and classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Global {
    OrderedDict,
    RebuildTensorV2,
    RebuildTensor,
    RebuildParameter,
    RebuildParameterWithState,
    Storage(StorageDType),
}

impl Global {
    fn resolve(module: &str, name: &str) -> Option<Global> {
        Some(match (module, name) {
            ("collections", "OrderedDict") => Global::OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensorV2,
            ("torch._utils", "_rebuild_tensor") => Global::RebuildTensor,
            ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
            ("torch._utils", "_rebuild_parameter_with_state") => Global::RebuildParameterWithState,
            ("torch", class) => Global::Storage(StorageDType::from_class(class)?),
            _ => return None,
        })
    }
}

/// Index of an object in the arena.
pub type Id = usize;

/// A value built by the pickle.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    None,
    Bool(bool),
    /// Integers up to 128 bits (the legacy format's magic number is 80 bits).
    Int(i128),
    /// An integer wider than 128 bits; its value is never needed.
    BigInt,
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Id>),
    /// Lists, sets and frozensets.
    List(Vec<Id>),
    /// Dicts and `OrderedDict`s, in insertion order.
    Dict(Vec<(Id, Id)>),
    /// An allowed global, before it is called.
    Global(GlobalName),
    Storage(StorageRef),
    Tensor(TensorRef),
}

/// An allowed global (opaque; it only exists to be called by `REDUCE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalName(Global);

impl Object {
    /// A short description for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Object::None => "None",
            Object::Bool(_) => "bool",
            Object::Int(_) | Object::BigInt => "int",
            Object::Float(_) => "float",
            Object::Str(_) => "str",
            Object::Bytes(_) => "bytes",
            Object::Tuple(_) => "tuple",
            Object::List(_) => "list",
            Object::Dict(_) => "dict",
            Object::Global(_) => "global",
            Object::Storage(_) => "storage",
            Object::Tensor(_) => "tensor",
        }
    }
}

/// The result of running a pickle: an arena of objects and the one `STOP` returned.
#[derive(Debug, Clone)]
pub struct Pickle {
    objects: Vec<Object>,
    root: Id,
    /// Bytes of input the pickle took, up to and including `STOP`.
    pub len: usize,
}

/// Deepest nesting of dicts [`Pickle::tensors`] follows (a cycle would be infinite).
const MAX_DEPTH: usize = 32;

impl Pickle {
    /// The object `STOP` returned.
    pub fn root(&self) -> &Object {
        &self.objects[self.root]
    }

    pub fn get(&self, id: Id) -> &Object {
        &self.objects[id]
    }

    /// Every tensor reachable from the root through dicts, named by the keys
    /// on the way joined with `.` (a checkpoint `{'model': state_dict, ...}`
    /// gives `model.lstm.weight_ih_l0`). Other values (numbers, lists,
    /// optimizer settings) are skipped. The root must be a dict.
    pub fn tensors(&self) -> Result<Vec<(String, TensorRef)>, StateDictError> {
        if !matches!(self.root(), Object::Dict(_)) {
            return Err(StateDictError::NotADict { found: self.root().kind() });
        }
        let mut out = Vec::new();
        // Each dict is walked once: the walk is at most as long as the file.
        let mut seen = std::collections::HashSet::new();
        self.collect(self.root, "", 0, &mut seen, &mut out)?;
        let mut names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(StateDictError::DuplicateName { name: w[0].to_owned() });
        }
        Ok(out)
    }

    fn collect(
        &self,
        dict: Id,
        prefix: &str,
        depth: usize,
        seen: &mut std::collections::HashSet<Id>,
        out: &mut Vec<(String, TensorRef)>,
    ) -> Result<(), StateDictError> {
        if depth > MAX_DEPTH {
            return Err(StateDictError::TooDeep { prefix: prefix.to_owned(), limit: MAX_DEPTH });
        }
        if !seen.insert(dict) {
            return Err(StateDictError::SharedDict { prefix: prefix.to_owned() });
        }
        let Object::Dict(items) = &self.objects[dict] else { return Ok(()) };
        for &(k, v) in items {
            let key = match &self.objects[k] {
                Object::Str(s) => s.clone(),
                Object::Int(i) => i.to_string(),
                _ => continue,
            };
            let name = if prefix.is_empty() { key } else { format!("{prefix}.{key}") };
            match &self.objects[v] {
                Object::Tensor(t) => out.push((name, t.clone())),
                Object::Dict(_) => self.collect(v, &name, depth + 1, seen, out)?,
                _ => {}
            }
        }
        Ok(())
    }
}

/// Runs the pickle at the start of `data` (trailing bytes are left alone:
/// the legacy format puts several pickles and raw data in one file).
pub fn load(data: &[u8]) -> Result<Pickle, PickleError> {
    Machine { data, pos: 0, op_pos: 0, objects: Vec::new(), stack: Vec::new(), marks: Vec::new(), memo: HashMap::new() }
        .run()
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    /// Position of the opcode being run, for errors.
    op_pos: usize,
    objects: Vec<Object>,
    stack: Vec<Id>,
    /// Stack heights at each `MARK`.
    marks: Vec<usize>,
    memo: HashMap<u64, Id>,
}

type Step<T> = Result<T, PickleError>;

impl<'a> Machine<'a> {
    fn fail<T>(&self, message: impl Into<String>) -> Step<T> {
        Err(PickleError { position: self.op_pos, message: message.into() })
    }

    fn take(&mut self, n: usize) -> Step<&'a [u8]> {
        match self.pos.checked_add(n).filter(|&end| end <= self.data.len()) {
            Some(end) => {
                let s = &self.data[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => self.fail(format!("truncated: needs {n} more bytes, {} left", self.data.len() - self.pos)),
        }
    }

    fn u8(&mut self) -> Step<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Step<u16> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }
    fn u32(&mut self) -> Step<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Step<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    /// A length prefix, checked against the bytes left so it cannot size an allocation.
    fn len(&mut self, n: u64) -> Step<usize> {
        let left = (self.data.len() - self.pos) as u64;
        if n > left {
            return self.fail(format!("length {n} runs past the end ({left} bytes left)"));
        }
        Ok(n as usize)
    }
    /// A text line (protocol 0 arguments), without the newline.
    fn line(&mut self) -> Step<&'a str> {
        let rest = &self.data[self.pos..];
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return self.fail("truncated: a text argument has no newline");
        };
        self.pos += end + 1;
        std::str::from_utf8(&rest[..end]).or_else(|_| self.fail("a text argument is not UTF-8"))
    }
    fn utf8(&self, bytes: &[u8]) -> Step<String> {
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => self.fail("a string is not valid UTF-8"),
        }
    }

    fn push(&mut self, object: Object) {
        self.objects.push(object);
        self.stack.push(self.objects.len() - 1);
    }
    fn pop(&mut self) -> Step<Id> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return self.fail("stack underflow");
        }
        Ok(self.stack.pop().expect("checked non-empty"))
    }
    fn top(&self) -> Step<Id> {
        let floor = self.marks.last().copied().unwrap_or(0);
        match self.stack.last() {
            Some(&id) if self.stack.len() > floor => Ok(id),
            _ => self.fail("stack underflow"),
        }
    }
    /// Pops everything down to the last mark, and the mark.
    fn pop_mark(&mut self) -> Step<Vec<Id>> {
        let Some(at) = self.marks.pop() else { return self.fail("no MARK on the stack") };
        Ok(self.stack.split_off(at))
    }
    fn put(&mut self, key: u64) -> Step<()> {
        let id = self.top()?;
        self.memo.insert(key, id);
        Ok(())
    }
    fn get(&mut self, key: u64) -> Step<()> {
        match self.memo.get(&key) {
            Some(&id) => {
                self.stack.push(id);
                Ok(())
            }
            None => self.fail(format!("memo key {key} was never stored")),
        }
    }

    fn int(&self, id: Id, what: &str) -> Step<i128> {
        match &self.objects[id] {
            Object::Int(i) => Ok(*i),
            Object::Bool(b) => Ok(*b as i128),
            o => self.fail(format!("{what} is a {}, expected an int", o.kind())),
        }
    }
    fn u64_of(&self, id: Id, what: &str) -> Step<u64> {
        let v = self.int(id, what)?;
        match u64::try_from(v) {
            Ok(v) => Ok(v),
            Err(_) => self.fail(format!("{what} is {v}, expected a non-negative 64-bit integer")),
        }
    }
    fn ints(&self, id: Id, what: &str) -> Step<Vec<u64>> {
        match &self.objects[id] {
            Object::Tuple(items) | Object::List(items) => items.iter().map(|&i| self.u64_of(i, what)).collect(),
            o => self.fail(format!("{what} is a {}, expected a tuple of ints", o.kind())),
        }
    }
    fn tuple(&self, id: Id, what: &str) -> Step<Vec<Id>> {
        match &self.objects[id] {
            Object::Tuple(items) => Ok(items.clone()),
            o => self.fail(format!("{what} is a {}, expected a tuple", o.kind())),
        }
    }

    fn global(&mut self, module: &str, name: &str) -> Step<()> {
        match Global::resolve(module, name) {
            Some(g) => {
                self.push(Object::Global(GlobalName(g)));
                Ok(())
            }
            None => self.fail(format!(
                "refusing global `{module}.{name}`: a state dict holds only tensors, dicts and numbers, and \
                 pickled code is never run (save `model.state_dict()`, not the model or other objects)"
            )),
        }
    }

    /// `REDUCE`: calls an allowed global with a tuple of arguments.
    fn call(&mut self, callable: Id, args: Id) -> Step<Object> {
        let Object::Global(GlobalName(g)) = self.objects[callable] else {
            return self.fail(format!("REDUCE calls a {}, expected an allowed global", self.objects[callable].kind()));
        };
        let args = self.tuple(args, "the arguments")?;
        let tensor_arg = |m: &Self, id: Id| match &m.objects[id] {
            Object::Tensor(t) => Ok(Object::Tensor(t.clone())),
            o => m.fail(format!("_rebuild_parameter gets a {}, expected a tensor", o.kind())),
        };
        match g {
            Global::OrderedDict => match args.as_slice() {
                [] => Ok(Object::Dict(Vec::new())),
                [items] => {
                    let pairs = match &self.objects[*items] {
                        Object::List(v) | Object::Tuple(v) => v.clone(),
                        o => return self.fail(format!("OrderedDict gets a {}, expected a list of pairs", o.kind())),
                    };
                    let mut dict = Vec::with_capacity(pairs.len());
                    for p in pairs {
                        match self.tuple(p, "an OrderedDict item")?.as_slice() {
                            &[k, v] => dict.push((k, v)),
                            _ => return self.fail("an OrderedDict item is not a (key, value) pair"),
                        }
                    }
                    Ok(Object::Dict(dict))
                }
                _ => self.fail(format!("OrderedDict gets {} arguments, expected at most 1", args.len())),
            },
            Global::RebuildTensorV2 | Global::RebuildTensor => {
                let expected = if g == Global::RebuildTensor { 4..=4 } else { 6..=7 };
                if !expected.contains(&args.len()) {
                    return self.fail(format!("tensor rebuild gets {} arguments, expected {expected:?}", args.len()));
                }
                let storage = match &self.objects[args[0]] {
                    Object::Storage(s) => s.clone(),
                    o => return self.fail(format!("a tensor's storage is a {}, expected a persistent id", o.kind())),
                };
                let offset = self.u64_of(args[1], "the storage offset")?;
                let shape = self.ints(args[2], "the tensor size")?;
                let stride = self.ints(args[3], "the tensor stride")?;
                if shape.len() != stride.len() {
                    return self.fail(format!("tensor size {shape:?} and stride {stride:?} differ in rank"));
                }
                Ok(Object::Tensor(TensorRef { storage, offset, shape, stride }))
            }
            Global::RebuildParameter | Global::RebuildParameterWithState => {
                let expected = if g == Global::RebuildParameter { 3 } else { 4 };
                if args.len() != expected {
                    return self.fail(format!("_rebuild_parameter gets {} arguments, expected {expected}", args.len()));
                }
                tensor_arg(self, args[0])
            }
            Global::Storage(_) => self.fail("a torch storage class is only valid inside a persistent id"),
        }
    }

    /// `BINPERSID`: `('storage', StorageType, key, location, numel[, view_metadata])`.
    fn persistent(&mut self, pid: Id) -> Step<Object> {
        let parts = self.tuple(pid, "a persistent id")?;
        let tag = match parts.first().map(|&p| &self.objects[p]) {
            Some(Object::Str(s)) => s.clone(),
            _ => return self.fail("a persistent id does not start with a string tag"),
        };
        if tag != "storage" {
            return self.fail(format!("persistent id of kind `{tag}`, expected `storage`"));
        }
        if !(5..=6).contains(&parts.len()) {
            return self.fail(format!("a storage persistent id has {} parts, expected 5 or 6", parts.len()));
        }
        let dtype = match self.objects[parts[1]] {
            Object::Global(GlobalName(Global::Storage(d))) => d,
            ref o => return self.fail(format!("a storage type is a {}, expected torch.*Storage", o.kind())),
        };
        let key = match &self.objects[parts[2]] {
            Object::Str(s) => s.clone(),
            Object::Int(i) => i.to_string(),
            o => return self.fail(format!("a storage key is a {}, expected a string", o.kind())),
        };
        let numel = self.u64_of(parts[4], "the storage size")?;
        if let Some(&view) = parts.get(5)
            && self.objects[view] != Object::None
        {
            return self.fail("storage views (a legacy-format feature) are not supported; re-save with torch.save");
        }
        Ok(Object::Storage(StorageRef { dtype, key, numel }))
    }

    fn run(mut self) -> Step<Pickle> {
        loop {
            self.op_pos = self.pos;
            let op = self.u8()?;
            match op {
                // Framing and protocol.
                0x80 => {
                    let proto = self.u8()?;
                    if proto > 5 {
                        return self.fail(format!("pickle protocol {proto}, expected at most 5"));
                    }
                }
                0x95 => {
                    self.u64()?; // FRAME: a size hint only
                }
                b'.' => {
                    let root = self.pop()?;
                    return Ok(Pickle { objects: self.objects, root, len: self.pos });
                }
                // Stack manipulation and memo.
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let id = self.top()?;
                    self.stack.push(id);
                }
                b'p' => {
                    let key = self.line()?.parse::<u64>().or_else(|_| self.fail("bad PUT key"))?;
                    self.put(key)?;
                }
                b'q' => {
                    let key = self.u8()? as u64;
                    self.put(key)?;
                }
                b'r' => {
                    let key = self.u32()? as u64;
                    self.put(key)?;
                }
                0x94 => {
                    let key = self.memo.len() as u64;
                    self.put(key)?;
                }
                b'g' => {
                    let key = self.line()?.parse::<u64>().or_else(|_| self.fail("bad GET key"))?;
                    self.get(key)?;
                }
                b'h' => {
                    let key = self.u8()? as u64;
                    self.get(key)?;
                }
                b'j' => {
                    let key = self.u32()? as u64;
                    self.get(key)?;
                }
                // Constants.
                b'N' => self.push(Object::None),
                0x88 => self.push(Object::Bool(true)),
                0x89 => self.push(Object::Bool(false)),
                b'K' => {
                    let v = self.u8()?;
                    self.push(Object::Int(v as i128));
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(Object::Int(v as i128));
                }
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push(Object::Int(v as i128));
                }
                0x8a | 0x8b => {
                    let n = if op == 0x8a { self.u8()? as u64 } else { self.u32()? as u64 };
                    let n = self.len(n)?;
                    let bytes = self.take(n)?;
                    self.push(long(bytes));
                }
                b'I' | b'L' => {
                    let text = self.line()?;
                    let text = text.strip_suffix('L').unwrap_or(text);
                    let object = match text {
                        "01" if op == b'I' => Object::Bool(true),
                        "00" if op == b'I' => Object::Bool(false),
                        t => Object::Int(t.parse().or_else(|_| self.fail(format!("bad integer literal {t:?}")))?),
                    };
                    self.push(object);
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes"));
                    self.push(Object::Float(v));
                }
                b'F' => {
                    let text = self.line()?;
                    let v = text.parse().or_else(|_| self.fail(format!("bad float literal {text:?}")))?;
                    self.push(Object::Float(v));
                }
                // Strings and bytes.
                b'X' | 0x8c | 0x8d => {
                    let n = match op {
                        b'X' => self.u32()? as u64,
                        0x8c => self.u8()? as u64,
                        _ => self.u64()?,
                    };
                    let n = self.len(n)?;
                    let bytes = self.take(n)?;
                    let s = self.utf8(bytes)?;
                    self.push(Object::Str(s));
                }
                b'T' | b'U' => {
                    // Python 2 `str`: bytes, read as text when they are ASCII/UTF-8.
                    let n = if op == b'T' { self.u32()? as u64 } else { self.u8()? as u64 };
                    let n = self.len(n)?;
                    let bytes = self.take(n)?;
                    let object = match std::str::from_utf8(bytes) {
                        Ok(s) => Object::Str(s.to_owned()),
                        Err(_) => Object::Bytes(bytes.to_vec()),
                    };
                    self.push(object);
                }
                b'B' | b'C' | 0x8e => {
                    let n = match op {
                        b'B' => self.u32()? as u64,
                        b'C' => self.u8()? as u64,
                        _ => self.u64()?,
                    };
                    let n = self.len(n)?;
                    let bytes = self.take(n)?.to_vec();
                    self.push(Object::Bytes(bytes));
                }
                b'V' => {
                    let text = self.line()?;
                    if text.contains('\\') {
                        return self.fail("escaped protocol-0 unicode strings are not supported");
                    }
                    self.push(Object::Str(text.to_owned()));
                }
                b'S' => {
                    let text = self.line()?;
                    let inner = text
                        .strip_prefix('\'')
                        .and_then(|t| t.strip_suffix('\''))
                        .or_else(|| text.strip_prefix('"').and_then(|t| t.strip_suffix('"')));
                    match inner {
                        Some(s) if !s.contains('\\') => self.push(Object::Str(s.to_owned())),
                        _ => return self.fail(format!("unsupported protocol-0 string literal {text:?}")),
                    }
                }
                // Containers.
                b')' => self.push(Object::Tuple(Vec::new())),
                b']' => self.push(Object::List(Vec::new())),
                b'}' => self.push(Object::Dict(Vec::new())),
                0x8f => self.push(Object::List(Vec::new())),
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Object::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push(Object::Tuple(items));
                }
                b'l' | 0x91 => {
                    let items = self.pop_mark()?;
                    self.push(Object::List(items));
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return self.fail("DICT with an odd number of items");
                    }
                    let pairs = items.chunks_exact(2).map(|p| (p[0], p[1])).collect();
                    self.push(Object::Dict(pairs));
                }
                b'a' => {
                    let item = self.pop()?;
                    let list = self.top()?;
                    self.extend_list(list, &[item])?;
                }
                b'e' | 0x90 => {
                    let items = self.pop_mark()?;
                    let list = self.top()?;
                    self.extend_list(list, &items)?;
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    let dict = self.top()?;
                    self.extend_dict(dict, &[key, value])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return self.fail("SETITEMS with an odd number of items");
                    }
                    let dict = self.top()?;
                    self.extend_dict(dict, &items)?;
                }
                // Globals and calls: only the allow-list.
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.global(module, name)?;
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (&self.objects[module], &self.objects[name]) {
                        (Object::Str(m), Object::Str(n)) => {
                            let (m, n) = (m.clone(), n.clone());
                            self.global(&m, &n)?;
                        }
                        _ => return self.fail("STACK_GLOBAL needs two strings"),
                    }
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let object = self.call(callable, args)?;
                    self.push(object);
                }
                0x81 => {
                    let args = self.pop()?;
                    let class = self.pop()?;
                    if self.objects[class] != Object::Global(GlobalName(Global::OrderedDict)) {
                        return self.fail("NEWOBJ of anything but OrderedDict");
                    }
                    let object = self.call(class, args)?;
                    self.push(object);
                }
                b'b' => {
                    // Sets attributes (a state dict's `_metadata`, a tensor's Python
                    // attributes): none of them matter for the weights.
                    self.pop()?;
                    let target = self.top()?;
                    if !matches!(self.objects[target], Object::Dict(_) | Object::Tensor(_)) {
                        return self.fail(format!("BUILD on a {}", self.objects[target].kind()));
                    }
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let object = self.persistent(pid)?;
                    self.push(object);
                }
                b'P' => return self.fail("text persistent ids are not used by torch.save"),
                b'i' | b'o' | 0x92 => return self.fail("refusing to instantiate a class (INST/OBJ/NEWOBJ_EX)"),
                0x82..=0x84 => return self.fail("refusing an extension-registry global (EXT1/2/4)"),
                0x96..=0x98 => return self.fail("out-of-band buffers (pickle protocol 5) are not supported"),
                other => return self.fail(format!("unknown opcode 0x{other:02x}")),
            }
        }
    }

    fn extend_list(&mut self, list: Id, items: &[Id]) -> Step<()> {
        match &mut self.objects[list] {
            Object::List(v) => {
                v.extend_from_slice(items);
                Ok(())
            }
            o => {
                let kind = o.kind();
                self.fail(format!("APPEND to a {kind}, expected a list"))
            }
        }
    }

    fn extend_dict(&mut self, dict: Id, items: &[Id]) -> Step<()> {
        match &mut self.objects[dict] {
            Object::Dict(v) => {
                v.extend(items.chunks_exact(2).map(|p| (p[0], p[1])));
                Ok(())
            }
            o => {
                let kind = o.kind();
                self.fail(format!("SETITEM on a {kind}, expected a dict"))
            }
        }
    }
}

/// A little-endian two's-complement integer of `LONG1`/`LONG4`.
fn long(bytes: &[u8]) -> Object {
    if bytes.is_empty() {
        return Object::Int(0);
    }
    if bytes.len() > 16 {
        return Object::BigInt;
    }
    let fill = if bytes[bytes.len() - 1] & 0x80 != 0 { 0xff } else { 0 };
    let mut b = [fill; 16];
    b[..bytes.len()].copy_from_slice(bytes);
    Object::Int(i128::from_le_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `OrderedDict([('w', _rebuild_tensor_v2(storage, 0, (2, 3), (3, 1), False, OrderedDict()))])`
    /// as protocol 2 writes it.
    fn state_dict_pickle() -> Vec<u8> {
        let mut p = vec![0x80, 2];
        p.extend(b"ccollections\nOrderedDict\nq\x00)R");
        p.extend(b"q\x01(X\x01\x00\x00\x00w");
        p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storage");
        p.extend(b"ctorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x06tQ");
        p.extend(b"K\x00K\x02K\x03\x86K\x03K\x01\x86\x89h\x00)Rtq\x02R");
        // BUILD sets `_metadata`; POP the dict and fetch it again from the memo.
        p.extend(b"u}q\x03b0h\x01.");
        p
    }

    #[test]
    fn reads_a_state_dict_of_one_tensor() {
        let data = state_dict_pickle();
        let p = load(&data).unwrap();
        assert_eq!(p.len, data.len());
        let tensors = p.tensors().unwrap();
        assert_eq!(tensors.len(), 1);
        let (name, t) = &tensors[0];
        assert_eq!(name, "w");
        assert_eq!(t.storage, StorageRef { dtype: StorageDType::F32, key: "0".into(), numel: 6 });
        assert_eq!((t.offset, t.shape.clone(), t.stride.clone()), (0, vec![2, 3], vec![3, 1]));
    }

    #[test]
    fn memo_entries_see_later_mutation() {
        // The dict is memoized empty (BINPUT 1) and filled afterwards; the
        // root is fetched with GET 1 and holds the item.
        let p = load(&state_dict_pickle()).unwrap();
        assert!(matches!(p.root(), Object::Dict(items) if items.len() == 1));
    }

    #[test]
    fn rejects_pickle_with_os_system_global() {
        let data = b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00ls\x85R.";
        let e = load(data).unwrap_err();
        assert_eq!(e.position, 2);
        assert!(e.message.contains("`posix.system`"), "{e}");
    }

    #[test]
    fn rejects_stack_global_of_a_custom_class() {
        let data = b"\x80\x04\x8c\x08__main__\x8c\x06Config\x93).";
        let e = load(data).unwrap_err();
        assert!(e.message.contains("`__main__.Config`"), "{e}");
    }

    #[test]
    fn rejects_calling_a_storage_class() {
        let data = b"\x80\x02ctorch\nFloatStorage\n)R.";
        assert!(load(data).unwrap_err().message.contains("persistent id"));
    }

    #[test]
    fn rejects_instantiation_opcodes() {
        for data in [&b"(i__main__\nX\n."[..], b"(o.", b"\x82\x01."] {
            assert!(load(data).is_err(), "{data:?}");
        }
    }

    #[test]
    fn reports_truncation_and_underflow_with_positions() {
        let e = load(b"\x80\x02X\xff\x00\x00\x00ab").unwrap_err();
        assert!(e.message.contains("past the end"), "{e}");
        let e = load(b"\x80\x02R").unwrap_err();
        assert_eq!(e.position, 2);
        assert!(e.message.contains("underflow"), "{e}");
        assert!(load(b"\x80\x02").unwrap_err().message.contains("truncated"));
        assert!(load(b"h\x05.").unwrap_err().message.contains("memo key 5"));
    }

    #[test]
    fn reads_the_legacy_magic_number_as_a_wide_integer() {
        let data = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.";
        assert_eq!(load(data).unwrap().root(), &Object::Int(0x1950A86A20F9469CFC6C));
        assert_eq!(long(&[0xff]), Object::Int(-1));
    }

    #[test]
    fn flattens_nested_dicts_into_dotted_names_and_skips_other_values() {
        // {'epoch': 3, 'model': <the state dict>}
        let inner = state_dict_pickle();
        let mut data = vec![0x80, 2, b'}', b'(', b'X', 5, 0, 0, 0];
        data.extend(b"epochK\x03X\x05\x00\x00\x00model");
        data.extend(&inner[2..inner.len() - 1]);
        data.extend(b"u.");
        let p = load(&data).unwrap();
        let names: Vec<String> = p.tensors().unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["model.w"]);
    }

    #[test]
    fn rejects_a_root_that_is_not_a_dict() {
        let p = load(b"\x80\x02K\x01.").unwrap();
        assert_eq!(p.tensors().unwrap_err(), StateDictError::NotADict { found: "int" });
    }

    #[test]
    fn self_referencing_dicts_are_refused_when_reached_again() {
        // d = {}; d['a'] = d
        let p = load(b"}q\x00X\x01\x00\x00\x00ah\x00s.").unwrap();
        assert_eq!(p.tensors().unwrap_err(), StateDictError::SharedDict { prefix: "a".into() });
    }

    #[test]
    fn dicts_shared_exponentially_are_refused_at_once() {
        // d0 = {}; d_i = {'a': d_(i-1), 'b': d_(i-1)} for i = 1..=30 (under the
        // depth limit): a walk without a visited set names 2^30 paths; this
        // pickle is 460 bytes.
        let mut data = b"}q\x000".to_vec();
        for i in 1u8..=30 {
            data.extend(b"}(X\x01\x00\x00\x00ah");
            data.push(i - 1);
            data.extend(b"X\x01\x00\x00\x00bh");
            data.push(i - 1);
            data.extend(b"uq");
            data.push(i);
            data.push(b'0');
        }
        data.extend(b"h\x1e.");
        let p = load(&data).unwrap();
        let e = p.tensors().unwrap_err();
        assert!(matches!(e, StateDictError::SharedDict { .. }), "{e}");
    }
}
