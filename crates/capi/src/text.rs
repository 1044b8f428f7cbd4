//! Text models: tokenizing, token inputs, and the head's outputs.

use super::*;
use crate::ffi::*;

/// Tokenizes the NUL-terminated UTF-8 `text` with the model's vocabulary:
/// `*count` is set to the number of tokens; their ids are written to `ids`
/// when `capacity` suffices, else the status is LSTMRT_BUFFER_TOO_SMALL
/// (`ids` may be NULL to ask for the count).
///
/// # Safety
/// `model` is NULL or live; `text` is NULL or a C string; `ids` is NULL or
/// holds `capacity` values; `count` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_tokenize(
    model: *const lstmrt_model,
    text: *const c_char,
    ids: *mut u32,
    capacity: usize,
    count: *mut usize,
) -> lstmrt_status {
    // SAFETY: `count` is NULL or writable by the contract.
    unsafe {
        guard_sized(count, |needed| {
            // SAFETY: the contract.
            let model = &get(model, "model")?.model;
            // SAFETY: the contract.
            let text = self::text(text, "text")?;
            check_out(count, "count")?;
            let tokens = model.tokenize(text)?;
            *needed = Some(tokens.len());
            // SAFETY: `capacity` values at `ids` by the contract.
            copy_out(&tokens, ids, capacity, "ids", || {
                format!("the text has {} tokens, the buffer has room for {capacity}", tokens.len())
            })
        })
    }
}

/// The input vector of token `id` (its embedding row, or one-hot) into `x`
/// (`[input_size]`).
///
/// # Safety
/// `model` is NULL or live; `x` is NULL or holds `input_size` floats.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_token_input(model: *const lstmrt_model, id: u32, x: *mut f32) -> lstmrt_status {
    guard(|| {
        // SAFETY: the contract.
        let model = &unsafe { get(model, "model") }?.model;
        // SAFETY: the size the contract promises.
        let x = unsafe { slice_mut(x, model.architecture().input_size as usize, "x") }?;
        model.token_input(id, x)?;
        Ok(())
    })
}

/// The model's head on one stream's step output `y` (`[output_size]`) into
/// `out` (`[head_size]`), as probabilities where the head is a classifier or
/// a language model (a softmax over logits, as `lstm-run --text` prints).
///
/// # Safety
/// `model` is NULL or live; `y` and `out` are NULL or hold `output_size`
/// and `head_size` floats.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_head(model: *const lstmrt_model, y: *const f32, out: *mut f32) -> lstmrt_status {
    guard(|| {
        // SAFETY: the contract.
        let model = &unsafe { get(model, "model") }?.model;
        let Some(head) = model.metadata().head.as_ref() else {
            return Err(Failure(LSTMRT_UNSUPPORTED, "this model has no output head".into()));
        };
        // SAFETY: the sizes the contract promises.
        let y = unsafe { slice(y, model.architecture().sequence_output_size(), "y") }?;
        // SAFETY: the contract stated on this function: the buffer holds that many values (NULL refused unless empty).
        let out = unsafe { slice_mut(out, head.out_features as usize, "out") }?;
        model.apply_head(y, out)?;
        let distribution = matches!(head.task, HeadTask::Classifier | HeadTask::LanguageModel);
        if head.activation == lstmrt::format::HeadActivation::None && distribution {
            lstmrt::text::softmax(out);
        }
        Ok(())
    })
}

/// The name of head output `index` (its label, or for a language model its
/// token) into `buf` as a NUL-terminated string; `*len` is set to its length
/// without the NUL. When `capacity` is less than `*len + 1`, nothing is
/// written to `buf` and the status is LSTMRT_BUFFER_TOO_SMALL.
///
/// # Safety
/// `model` is NULL or live; `buf` is NULL or holds `capacity` bytes; `len`
/// is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_head_label(
    model: *const lstmrt_model,
    index: usize,
    buf: *mut c_char,
    capacity: usize,
    len: *mut usize,
) -> lstmrt_status {
    // SAFETY: `len` is NULL or writable by the contract.
    unsafe {
        guard_sized(len, |needed| {
            // SAFETY: the contract.
            let model = &get(model, "model")?.model;
            check_out(len, "len")?;
            let Some(head) = model.metadata().head.as_ref() else {
                return Err(Failure(LSTMRT_UNSUPPORTED, "this model has no output head".into()));
            };
            if index >= head.out_features as usize {
                return Err(bad(format!("head output {index} does not exist (the head has {})", head.out_features)));
            }
            let name = match head.labels.get(index) {
                Some(label) => label.as_str(),
                None if head.task == HeadTask::LanguageModel => model.token(index as u32)?,
                None => return Err(bad(format!("head output {index} has no label"))),
            };
            *needed = Some(name.len());
            let with_nul: Vec<u8> = name.bytes().chain([0]).collect();
            // SAFETY: `capacity` bytes at `buf` by the contract.
            copy_out(&with_nul, buf.cast::<u8>(), capacity, "buf", || {
                format!("the label needs {} bytes with its NUL, the buffer has {capacity}", with_nul.len())
            })
        })
    }
}
