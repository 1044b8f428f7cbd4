//! CSV input as `lstm-run` reads it: a header, rows of numbers, comments,
//! byte-order marks; as a table and as a sequence of a fixed width.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lstmrt_cli::data::{parse_csv, sequence_from_csv};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let allow = data.len() % 2 == 0;
    let _ = parse_csv(text, "fuzz.csv", allow);
    let _ = sequence_from_csv(text, "fuzz.csv", 3, allow);
});
