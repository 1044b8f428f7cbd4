//! Experiments.
use crate::error::Error;
use std::path::Path;
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub distances: Vec<usize>,
    pub steps: u64,
    pub train_size: usize,
    pub hidden: usize,
    pub threads: usize,
    pub seed: u64,
    pub progress: bool,
}
pub fn vanishing(_s: &Settings, _out: &Path, _command: &str) -> Result<(), Error> {
    Err(Error::failed("todo"))
}
