//! Gate traces: every gate value, cell and hidden state of every layer at
//! every step of a sequence, as CSV, to see what the network does with it
//! (for instance the forget gate dropping when a story changes subject).
//!
//! The values come from [`lstmrt::reference::run_traced`] on the model's
//! weights. The CSV has one row per step, layer, direction and unit:
//!
//! ```text
//! position,token,layer,direction,unit,<cell columns>
//! ```
//!
//! `position` is the 0-based step, `token` its label (CSV-quoted when needed),
//! `direction` 0 forward / 1 backward. The cell columns ([`value_columns`]):
//! LSTM `input_gate,forget_gate,cell_candidate,output_gate,cell,hidden`;
//! GRU `reset_gate,update_gate,new_gate,hidden`; RNN `hidden`. With an LSTM
//! projection, `hidden` is the projected `h` and has only `proj_size` units,
//! so it is empty for units at or past `proj_size`.

use std::fmt::Write;

use crate::data::csv_field;
use lstmrt::Model;
use lstmrt::reference;
use lstmrt_format::CellKind;

/// The value columns after `unit` for a cell kind.
pub fn value_columns(cell: CellKind) -> &'static [&'static str] {
    match cell {
        CellKind::Lstm => &["input_gate", "forget_gate", "cell_candidate", "output_gate", "cell", "hidden"],
        CellKind::Gru => &["reset_gate", "update_gate", "new_gate", "hidden"],
        CellKind::RnnTanh | CellKind::RnnRelu => &["hidden"],
    }
}

/// Runs `xs` (`[steps, input_size]`, one sequence, from a zero state) through
/// the reference engine and returns the trace CSV. `labels` name the steps
/// (tokens); missing labels are left empty.
pub fn gate_trace_csv(model: &Model, xs: &[f32], labels: &[String]) -> String {
    let arch = model.architecture();
    let hidden = arch.hidden();
    let gates = match arch.cell {
        CellKind::Lstm | CellKind::Gru => arch.cell.gates(),
        // An RNN's single "gate" is its new h; print it once, as `hidden`.
        CellKind::RnnTanh | CellKind::RnnRelu => 0,
    };
    // Rows keyed by (position, layer, direction) so the file reads in step order.
    let mut blocks: Vec<((usize, usize, usize), String)> = Vec::new();
    let weights = model.weights();
    reference::run_traced(arch, &weights, xs, 1, None, None, &mut |s: &reference::StepTrace| {
        let label = labels.get(s.t).map(|l| csv_field(l)).unwrap_or_default();
        let mut block = String::new();
        for unit in 0..hidden {
            write!(block, "{},{},{},{},{unit}", s.t, label, s.layer, s.direction).expect("String write");
            for g in 0..gates {
                write!(block, ",{:?}", s.gates[g * hidden + unit] as f32).expect("String write");
            }
            if let Some(c) = s.c.get(unit) {
                write!(block, ",{:?}", *c as f32).expect("String write");
            }
            match s.h.get(unit) {
                Some(h) => write!(block, ",{:?}", *h as f32).expect("String write"),
                None => block.push(','),
            }
            block.push('\n');
        }
        blocks.push(((s.t, s.layer, s.direction), block));
    });
    blocks.sort_by_key(|(key, _)| *key);
    let mut csv = String::from("position,token,layer,direction,unit,");
    csv.push_str(&value_columns(arch.cell).join(","));
    csv.push('\n');
    blocks.iter().for_each(|(_, block)| csv.push_str(block));
    csv
}
