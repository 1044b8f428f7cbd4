//! The fast kernels of lstmrt and the choice of instruction set.
//!
//! One kernel body, written once over a small SIMD trait (`simd`), is
//! instantiated per tier inside `#[target_feature]` functions ([`dispatch`]).
//! The tier is chosen once per process: the best the CPU has, or the one named
//! by the `LSTMRT_ISA` environment variable (`scalar`, `wide`, `avx2`,
//! `avx512`, `amx`). Naming a tier the CPU lacks is an error, never a crash.
//! `amx` is `avx512` plus Intel AMX tiles for the int8 products of many
//! rows ([`amx`]): usable only once Linux grants the process tile state.
//!
//! The modules, bottom up, each using only those before it: `simd` (the
//! trait and the activations), `microkernel` (register blocks of rows x
//! panels x gates), `cells` (LSTM, GRU, RNN and the projection, once the
//! pre-activations are summed), `step` (the passes of one timestep) and
//! `gemm` (the input projection's blocks), `blocking` (`Tier`: block
//! heights, k-blocks, many- or few-register walks), `drive` (the entry
//! points `run_steps` and `gemm`), `int8` (the int8 path), [`dispatch`].
//! Weights are read in the panel layout of [`lstmrt_format::panel`].
//!
//! In release builds every body is `#[inline(always)]` into its tier's
//! `#[target_feature]` entry point, so it compiles for that instruction set.
//! In debug builds (`debug_assertions`, as in a dependent's default dev
//! profile) the cell, pass, blocking and GEMM-block bodies stay functions of
//! their own: at opt-level 0 nothing shares stack slots, and one function
//! holding every instantiation needed over 2 MiB of stack, more than a
//! `std::thread` has. Their intrinsics are then calls, slower but the same
//! arithmetic (`crates/embed-check` runs every tier this way).

// A WebAssembly build runs the f32 kernels of the portable tier only (f16,
// bf16 and int8 weights become f32 when a model loads there, and there is
// no scalar, x86 or tile code): the rest still compiles there, unreachable.
#![cfg_attr(target_family = "wasm", allow(dead_code, unused_imports, unused_macros))]

mod aligned;
pub mod amx;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod blocking;
mod cells;
pub mod dispatch;
mod drive;
mod gemm;
mod int8;
mod microkernel;
pub mod operands;
#[cfg(not(target_family = "wasm"))]
mod portable;
/// On WebAssembly the portable tier is [`wasm`]'s simd128 code.
#[cfg(target_family = "wasm")]
mod portable {
    pub(crate) use crate::wasm::Wasm as Wide;
}
pub mod probe;
mod scalar;
mod simd;
mod step;
#[cfg(target_family = "wasm")]
mod wasm;

pub use aligned::AlignedVec;
pub use blocking::{ROW_BLOCK, WIDEN_BUFFER};
pub use dispatch::{Activation, activation};
pub use int8::Int8Dot;
pub use int8::TILE_MIN_ROWS as INT8_TILE_MIN_ROWS;
pub use int8::buffer_bytes as int8_buffer_bytes;

use std::fmt;
use std::sync::OnceLock;

/// An instruction-set tier, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Plain Rust, one lane at a time.
    Scalar,
    /// The `wide` crate at the target's baseline (SSE2 on x86-64, NEON on aarch64).
    Wide,
    /// AVX2 + FMA + F16C.
    Avx2,
    /// AVX-512 F/BW/VL/DQ (with F16C).
    Avx512,
    /// AVX-512 with VNNI, and AMX-TILE/AMX-INT8 tiles for int8 products of
    /// many rows, once the OS grants tile state ([`amx::status`]).
    Amx,
}

impl Isa {
    /// Every tier, lowest first.
    pub const ALL: [Isa; 5] = [Isa::Scalar, Isa::Wide, Isa::Avx2, Isa::Avx512, Isa::Amx];

    /// The tier's name, as `LSTMRT_ISA` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Wide => "wide",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Amx => "amx",
        }
    }

    /// The tier `LSTMRT_ISA` names by `name`.
    pub fn from_name(name: &str) -> Option<Isa> {
        Isa::ALL.into_iter().find(|i| i.name() == name)
    }

    /// Whether this CPU can run the tier. A WebAssembly build has the
    /// `wide` tier only (simd128 where the build enables it): the scalar
    /// tier's code is left out of the `.wasm`, whose size a page pays for.
    pub fn available(self) -> bool {
        match self {
            Isa::Scalar => cfg!(not(target_family = "wasm")),
            Isa::Wide => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                Isa::Avx2.available()
                    && is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vl")
                    && is_x86_feature_detected!("avx512dq")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 => false,
            Isa::Amx => Isa::Avx512.available() && amx::status().is_ok(),
        }
    }

    /// Why this CPU cannot run the tier, if it cannot: the missing
    /// instructions, or (for `amx`) what the CPU or the OS refused.
    pub fn unavailable_reason(self) -> Option<String> {
        if self.available() {
            return None;
        }
        Some(match self {
            Isa::Amx if Isa::Avx512.available() => amx::status().err().unwrap_or("unavailable").to_string(),
            Isa::Amx => "the CPU lacks the avx512 tier it builds on".to_string(),
            _ => format!("the CPU lacks the {self} instructions"),
        })
    }

    /// Every tier this CPU can run, lowest first.
    pub fn available_tiers() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|i| i.available()).collect()
    }

    /// The best tier this CPU can run.
    pub fn best() -> Isa {
        Isa::ALL.into_iter().rev().find(|i| i.available()).unwrap_or(Isa::Scalar)
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an instruction-set tier cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IsaError {
    /// `LSTMRT_ISA` names no tier.
    NotATier {
        /// The value of `LSTMRT_ISA`.
        name: String,
    },
    /// This CPU lacks the instructions of the tier asked for.
    Unavailable {
        /// The tier asked for.
        isa: Isa,
        /// Whether `LSTMRT_ISA` asked for it (rather than a program).
        from_env: bool,
        /// The tiers this CPU can run, lowest first.
        available: Vec<Isa>,
    },
}

impl IsaError {
    /// The error for a tier this CPU cannot run.
    pub fn unavailable(isa: Isa, from_env: bool) -> IsaError {
        IsaError::Unavailable { isa, from_env, available: Isa::available_tiers() }
    }
}

impl fmt::Display for IsaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IsaError::NotATier { name } => {
                let all: Vec<_> = Isa::ALL.iter().map(|i| i.name()).collect();
                write!(f, "LSTMRT_ISA={name} is not a tier; use one of {}", all.join(", "))
            }
            IsaError::Unavailable { isa, from_env, available } => {
                let available: Vec<_> = available.iter().map(|i| i.name()).collect();
                let prefix = if *from_env { format!("LSTMRT_ISA={isa}: ") } else { String::new() };
                let why = isa.unavailable_reason().map(|r| format!(": {r}")).unwrap_or_default();
                write!(f, "{prefix}this CPU cannot run the {isa} tier{why} (available: {})", available.join(", "))
            }
        }
    }
}

impl std::error::Error for IsaError {}

/// The tier a value of `LSTMRT_ISA` asks for (`None` or empty: the best).
pub fn choose(requested: Option<&str>) -> Result<Isa, IsaError> {
    let Some(name) = requested.map(str::trim).filter(|s| !s.is_empty()) else { return Ok(Isa::best()) };
    let isa = Isa::from_name(name).ok_or_else(|| IsaError::NotATier { name: name.to_string() })?;
    if !isa.available() {
        return Err(IsaError::unavailable(isa, true));
    }
    Ok(isa)
}

static SELECTED: OnceLock<Result<Isa, IsaError>> = OnceLock::new();

/// The tier in use in this process, chosen on first call from the CPU and
/// `LSTMRT_ISA`. An impossible `LSTMRT_ISA` is returned as the error.
pub fn selected() -> Result<Isa, IsaError> {
    SELECTED.get_or_init(|| choose(std::env::var("LSTMRT_ISA").ok().as_deref())).clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_or_unavailable_tiers_are_errors() {
        assert_eq!(choose(Some("sse9")), Err(IsaError::NotATier { name: "sse9".into() }));
        assert!(choose(Some("sse9")).unwrap_err().to_string().contains("not a tier"));
        assert_eq!(choose(Some("scalar")), Ok(Isa::Scalar));
        assert_eq!(choose(None), Ok(Isa::best()));
        for isa in Isa::ALL {
            assert_eq!(choose(Some(isa.name())).is_ok(), isa.available());
        }
    }
}
