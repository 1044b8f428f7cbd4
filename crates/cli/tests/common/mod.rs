//! The workspace's shared test helpers, plus the lstm-convert fixtures,
//! which need this crate's binary.
#![allow(dead_code)]

pub use lstmrt_testkit::*;

pub mod convert;
