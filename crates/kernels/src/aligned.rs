//! Buffers aligned to 64 bytes (a cache line and an AVX-512 vector), for
//! owned model bytes, repacked weights and kernel scratch.

use bytemuck::Pod;

#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Line([u8; 64]);

// SAFETY: `Line` is 64 bytes of `u8` (any bit pattern valid, zero included)
// with no padding: size 64 equals its alignment. Written out rather than
// derived, so the runtime's tree needs no derive macro crate.
unsafe impl bytemuck::Zeroable for Line {}
// SAFETY: as above; `Copy` and `'static`, with no padding or pointers.
unsafe impl bytemuck::Pod for Line {}

/// A growable, zero-initialised buffer of `T` whose data starts on a 64-byte boundary.
#[derive(Clone, Default)]
pub struct AlignedVec<T> {
    lines: Vec<Line>,
    len: usize,
    _t: std::marker::PhantomData<T>,
}

impl<T: Pod> AlignedVec<T> {
    /// `len` zeroed elements.
    pub fn zeroed(len: usize) -> Self {
        let mut v = AlignedVec { lines: Vec::new(), len: 0, _t: std::marker::PhantomData };
        v.resize(len);
        v
    }

    /// `len` zeroed elements, or an error instead of an abort when the
    /// memory cannot be had (or `len` elements overflow the address space).
    pub fn try_zeroed(len: usize) -> Result<Self, std::collections::TryReserveError> {
        let mut v = AlignedVec { lines: Vec::new(), len: 0, _t: std::marker::PhantomData };
        let lines = len.saturating_mul(std::mem::size_of::<T>()).div_ceil(64);
        v.lines.try_reserve_exact(lines)?;
        v.resize(len);
        Ok(v)
    }

    /// A copy of `data`.
    pub fn from_slice(data: &[T]) -> Self {
        let mut v = Self::zeroed(data.len());
        v.as_mut_slice().copy_from_slice(data);
        v
    }

    /// Grows or shrinks to `len` elements; new elements are zero.
    pub fn resize(&mut self, len: usize) {
        let bytes = len * std::mem::size_of::<T>();
        self.lines.resize(bytes.div_ceil(64), Line([0; 64]));
        self.len = len;
    }

    /// Whether it holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Elements it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn as_slice(&self) -> &[T] {
        let bytes: &[u8] = bytemuck::cast_slice(&self.lines);
        bytemuck::cast_slice(&bytes[..self.len * std::mem::size_of::<T>()])
    }

    pub fn as_mut_slice(&mut self) -> &mut [T] {
        let n = self.len * std::mem::size_of::<T>();
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut self.lines);
        bytemuck::cast_slice_mut(&mut bytes[..n])
    }

    pub fn as_mut_ptr(&mut self) -> *mut T {
        self.lines.as_mut_ptr().cast()
    }
}

impl<T: Pod + std::fmt::Debug> std::fmt::Debug for AlignedVec<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedVec(len {})", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_64_byte_aligned_and_zeroed() {
        for n in [0, 1, 15, 16, 17, 1000] {
            let v = AlignedVec::<f32>::zeroed(n);
            assert_eq!(v.as_slice().len(), n);
            assert_eq!(v.as_slice().as_ptr() as usize % 64, 0);
            assert!(v.as_slice().iter().all(|&x| x == 0.0));
        }
        let mut v = AlignedVec::from_slice(&[1u8, 2, 3]);
        v.resize(70);
        assert_eq!(&v.as_slice()[..4], &[1, 2, 3, 0]);
    }

    #[test]
    fn an_impossible_size_is_an_error_not_an_abort() {
        assert!(AlignedVec::<f32>::try_zeroed(usize::MAX / 2).is_err());
        let v = AlignedVec::<f32>::try_zeroed(33).unwrap();
        assert_eq!(v.len(), 33);
        assert!(v.as_slice().iter().all(|&x| x == 0.0));
    }
}
