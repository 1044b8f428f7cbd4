//! The `lstm-train` binary: everything is in the library's `cli` module.

fn main() {
    std::process::exit(lstm_train::cli::main());
}
