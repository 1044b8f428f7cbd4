//! Which int8 product a model's kernels use ([`Int8Dot`]): the tier's best,
//! what `LSTMRT_INT8_DOT` asks for a whole process, or (in tests and
//! measurements) one chosen per model.

use crate::Isa;

/// How the int8 kernels multiply `u8 x s8` and sum in i32: every form gives
/// the same sums (the tests check each against [`Int8Dot::Scalar`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Int8Dot {
    /// Plain integer code, one product at a time: the oracle.
    Scalar,
    /// The same integer code compiled for the portable tier's baseline.
    Portable,
    /// AVX2 without VNNI: `vpmaddubsw` on the activations' two halves, then `vpmaddwd`.
    Avx2Maddubs,
    /// AVX-VNNI: `vpdpbusd` on 256-bit vectors.
    AvxVnni,
    /// AVX-512BW without VNNI: as `Avx2Maddubs` on 512-bit vectors.
    Avx512Maddubs,
    /// AVX-512 VNNI: `vpdpbusd` on 512-bit vectors.
    Avx512Vnni,
    /// AMX tiles (`tdpbusd`) for products of many rows, else AVX-512 VNNI.
    Amx,
    /// The AMX form with its tile instructions emulated in plain Rust, on
    /// the avx512 tier: slow; for testing the form on CPUs without AMX.
    AmxEmulated,
}

impl Int8Dot {
    /// Every form, lowest tier first.
    pub const ALL: [Int8Dot; 8] = [
        Int8Dot::Scalar,
        Int8Dot::Portable,
        Int8Dot::Avx2Maddubs,
        Int8Dot::AvxVnni,
        Int8Dot::Avx512Maddubs,
        Int8Dot::Avx512Vnni,
        Int8Dot::Amx,
        Int8Dot::AmxEmulated,
    ];

    /// The name `--info` prints.
    pub fn name(self) -> &'static str {
        match self {
            Int8Dot::Scalar => "scalar",
            Int8Dot::Portable => "portable",
            Int8Dot::Avx2Maddubs => "avx2-maddubs",
            Int8Dot::AvxVnni => "avx-vnni",
            Int8Dot::Avx512Maddubs => "avx512-maddubs",
            Int8Dot::Avx512Vnni => "avx512-vnni",
            Int8Dot::Amx => "amx-int8",
            Int8Dot::AmxEmulated => "amx-emulated",
        }
    }

    /// The f32 tier the form runs with.
    pub fn isa(self) -> Isa {
        match self {
            Int8Dot::Scalar => Isa::Scalar,
            Int8Dot::Portable => Isa::Wide,
            Int8Dot::Avx2Maddubs | Int8Dot::AvxVnni => Isa::Avx2,
            Int8Dot::Avx512Maddubs | Int8Dot::Avx512Vnni => Isa::Avx512,
            Int8Dot::Amx => Isa::Amx,
            Int8Dot::AmxEmulated => Isa::Avx512,
        }
    }

    /// Whether the form multiplies with tiles (its buffers need room for them).
    pub fn tiles(self) -> bool {
        matches!(self, Int8Dot::Amx | Int8Dot::AmxEmulated)
    }

    /// Whether this CPU can run the form.
    pub fn available(self) -> bool {
        if !self.isa().available() {
            return false;
        }
        match self {
            #[cfg(target_arch = "x86_64")]
            Int8Dot::AvxVnni => is_x86_feature_detected!("avxvnni"),
            #[cfg(target_arch = "x86_64")]
            Int8Dot::Avx512Vnni | Int8Dot::AmxEmulated => is_x86_feature_detected!("avx512vnni"),
            #[cfg(not(target_arch = "x86_64"))]
            Int8Dot::AvxVnni | Int8Dot::Avx512Vnni | Int8Dot::AmxEmulated => false,
            _ => true,
        }
    }

    /// The form tier `isa` uses: with VNNI where the CPU has it (and tiles
    /// on the amx tier), unless `LSTMRT_INT8_DOT` asks otherwise:
    /// `maddubs` for the forms without VNNI (to test and measure them on a
    /// VNNI machine), `amx-emulated` for the amx form's blocking with its
    /// tile instructions emulated, on the avx512 tier (to test it without AMX).
    pub fn for_isa(isa: Isa) -> Int8Dot {
        let asked = asked_form();
        let (vnni, plain) = match isa {
            Isa::Scalar => return Int8Dot::Scalar,
            Isa::Wide => return Int8Dot::Portable,
            Isa::Avx2 => (Int8Dot::AvxVnni, Int8Dot::Avx2Maddubs),
            Isa::Avx512 if asked == "amx-emulated" && Int8Dot::AmxEmulated.available() => {
                return Int8Dot::AmxEmulated;
            }
            Isa::Avx512 => (Int8Dot::Avx512Vnni, Int8Dot::Avx512Maddubs),
            Isa::Amx => (Int8Dot::Amx, Int8Dot::Avx512Maddubs),
        };
        if asked != "maddubs" && vnni.available() { vnni } else { plain }
    }
}

/// What `LSTMRT_INT8_DOT` asks for (read once per process; empty if unset).
pub(crate) fn asked_form() -> &'static str {
    static ASKED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ASKED.get_or_init(|| std::env::var("LSTMRT_INT8_DOT").unwrap_or_default().trim().to_string())
}

impl std::fmt::Display for Int8Dot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
