//! lstm-train: trains LSTM, GRU and tanh RNN models with backpropagation
//! through time and writes them as lstmrt model files.
//!
//! The pieces, in the order data flows through them:
//! [`data`] makes examples (built-in tasks and user files), [`bptt`] runs the
//! forward and backward passes (generic over f32/f64, see [`real`]), [`optim`]
//! updates the flat parameter vector, [`train`] drives minibatches, evaluation,
//! early stopping and checkpoints, and [`export`] writes the model file.
//! [`experiment`] is the vanishing/exploding gradient study; [`cli`] is the
//! command line.

pub mod bptt;
pub mod cli;
pub mod data;
pub mod error;
pub mod experiment;
pub mod export;
pub mod limits;
pub mod net;
pub mod optim;
pub mod plot;
pub mod real;
pub mod rng;
pub mod train;
