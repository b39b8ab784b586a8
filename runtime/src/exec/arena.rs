//! The one buffer that holds every intermediate tensor of a compiled plan.
//!
//! The memory plan assigns each intermediate a byte offset in a single arena,
//! reusing bytes between tensors whose lifetimes do not overlap. [`Arena`] is
//! that allocation: zeroed, 64-byte aligned (a cache line, and enough for any
//! SIMD load), of a size known before running. Generated kernels receive the
//! raw base pointer ([`Arena::base_ptr`]); Rust code reads and writes tensors
//! through checked `f32` regions ([`Arena::region`], [`Arena::region_mut`],
//! [`Arena::regions_mut`]) that fail with an error, never a panic, when a
//! request is out of bounds, misaligned, or overlaps another borrowed region.

use std::alloc::{self, Layout};
use std::ptr::NonNull;

/// Alignment of the arena's base address in bytes.
pub const ALIGN: usize = 64;

/// Size in bytes of one element of an `f32` region.
const F32_BYTES: usize = std::mem::size_of::<f32>();

/// A zeroed, [`ALIGN`]-aligned block of bytes, owned exclusively.
///
/// Invariant: `ptr` points to an allocation of `layout` (size
/// `max(len, 1)`, alignment [`ALIGN`]) made by this value, initialised
/// (zeroed at creation, and only ever written with initialised `f32`s or by
/// generated code through [`base_ptr`](Arena::base_ptr)), and freed only by
/// `Drop`.
pub struct Arena {
    ptr: NonNull<u8>,
    len: usize,
    layout: Layout,
}

// SAFETY: `Arena` owns its allocation exclusively (like `Vec<u8>`); no other
// value aliases it, so moving it to another thread is sound.
unsafe impl Send for Arena {}
// SAFETY: shared access (`&Arena`) only yields shared `&[f32]` views; all
// mutation needs `&mut Arena`, so sharing references across threads is sound.
unsafe impl Sync for Arena {}

impl Arena {
    /// A zeroed arena of `bytes` bytes. Fails if the size cannot be laid out
    /// (it exceeds `isize::MAX` once aligned) or the allocation is refused.
    pub fn new(bytes: usize) -> Result<Arena, String> {
        // A zero-size layout may not be allocated; one byte stands in for it.
        let layout = Layout::from_size_align(bytes.max(1), ALIGN)
            .map_err(|_| format!("arena of {bytes} bytes is too large"))?;
        // SAFETY: `layout` has a non-zero size (at least 1 byte, see above).
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).ok_or_else(|| format!("cannot allocate an arena of {bytes} bytes"))?;
        Ok(Arena { ptr, len: bytes, layout })
    }

    /// Size of the arena in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an arena of zero bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The base address, aligned to [`ALIGN`] bytes, for generated code.
    ///
    /// The pointer is valid for reads and writes of [`len`](Arena::len) bytes
    /// while the arena lives. Taking `&mut self` ends every region borrowed
    /// before, so no safe reference aliases the memory when the pointer is
    /// handed out; code that dereferences it must stay within `len` bytes and
    /// must not use it after the arena is dropped or while a region obtained
    /// afterwards is alive.
    pub fn base_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Sets every byte of the arena to zero.
    pub fn zero(&mut self) {
        // SAFETY: `ptr` is valid for writes of `len` bytes (type invariant) and
        // `&mut self` guarantees no other reference into the arena is alive.
        unsafe { std::ptr::write_bytes(self.ptr.as_ptr(), 0, self.len) }
    }

    /// The `count` `f32`s starting at byte `offset`.
    pub fn region(&self, offset: usize, count: usize) -> Result<&[f32], String> {
        let end = self.check(offset, count)?;
        debug_assert!(end <= self.len);
        // SAFETY: `check` proved `offset + 4 * count <= len` and `offset % 4 ==
        // 0`; with the base aligned to 64 the start is aligned for f32, the
        // bytes lie inside the allocation and are initialised (type invariant),
        // and every bit pattern is a valid f32. `&self` forbids mutation for the
        // returned lifetime.
        Ok(unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(offset).cast::<f32>(), count) })
    }

    /// The `count` `f32`s starting at byte `offset`, mutably.
    pub fn region_mut(&mut self, offset: usize, count: usize) -> Result<&mut [f32], String> {
        self.check(offset, count)?;
        // SAFETY: as in `region` the range is in bounds, aligned and
        // initialised; `&mut self` makes the returned slice the only live
        // reference into the arena for its lifetime.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(offset).cast::<f32>(), count) })
    }

    /// Several mutable `f32` regions at once, each given as (byte offset,
    /// element count), returned in the order requested. Fails if any region is
    /// out of bounds or misaligned, or if two non-empty regions overlap.
    pub fn regions_mut(&mut self, requests: &[(usize, usize)]) -> Result<Vec<&mut [f32]>, String> {
        let mut spans = Vec::with_capacity(requests.len());
        for &(offset, count) in requests {
            let end = self.check(offset, count)?;
            if count > 0 {
                spans.push((offset, end));
            }
        }
        spans.sort_unstable();
        for pair in spans.windows(2) {
            let ((a_start, a_end), (b_start, b_end)) = (pair[0], pair[1]);
            if b_start < a_end {
                return Err(format!("arena regions [{a_start}, {a_end}) and [{b_start}, {b_end}) overlap"));
            }
        }
        let base = self.ptr.as_ptr();
        Ok(requests
            .iter()
            .map(|&(offset, count)| {
                // SAFETY: every request was checked to be in bounds and aligned
                // (as in `region`), and the non-empty ones are pairwise disjoint,
                // so the slices never alias one another (empty slices touch no
                // bytes); `&mut self` keeps any other reference out for their
                // lifetime.
                unsafe { std::slice::from_raw_parts_mut(base.add(offset).cast::<f32>(), count) }
            })
            .collect())
    }

    /// Checks that `count` f32s at byte `offset` lie inside the arena and are
    /// aligned; returns the end byte offset.
    fn check(&self, offset: usize, count: usize) -> Result<usize, String> {
        if !offset.is_multiple_of(F32_BYTES) {
            return Err(format!("arena offset {offset} is not {F32_BYTES}-byte aligned for f32"));
        }
        let end = count
            .checked_mul(F32_BYTES)
            .and_then(|bytes| offset.checked_add(bytes))
            .filter(|&end| end <= self.len)
            .ok_or_else(|| {
                format!(
                    "arena region of {count} f32 at offset {offset} exceeds the arena of {} bytes",
                    self.len
                )
            })?;
        Ok(end)
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: `ptr` was returned by `alloc_zeroed(self.layout)` and is freed
        // only here, once.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

impl std::fmt::Debug for Arena {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arena").field("len", &self.len).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_arena_is_zeroed_and_aligned() {
        for bytes in [0, 1, 4, 63, 64, 65, 4096] {
            let mut arena = Arena::new(bytes).expect("arena");
            assert_eq!(arena.len(), bytes);
            assert_eq!(arena.is_empty(), bytes == 0);
            assert_eq!(arena.base_ptr() as usize % ALIGN, 0, "{bytes} bytes");
            let all = arena.region(0, bytes / 4).expect("whole arena");
            assert!(all.iter().all(|&x| x.to_bits() == 0));
        }
    }

    #[test]
    fn too_large_is_an_error() {
        assert!(Arena::new(usize::MAX).is_err());
    }

    #[test]
    fn region_checks() {
        let arena = Arena::new(64).expect("arena");
        // (offset, count, ok)
        let cases = [
            (0, 16, true),
            (0, 0, true),
            (64, 0, true),
            (60, 1, true),
            (60, 2, false),
            (64, 1, false),
            (68, 0, false),
            (2, 1, false),
            (1, 0, false),
            (0, usize::MAX, false),
            (usize::MAX - 3, 1, false),
        ];
        for (offset, count, ok) in cases {
            assert_eq!(arena.region(offset, count).is_ok(), ok, "region({offset}, {count})");
        }
    }

    #[test]
    fn writes_through_regions_and_base_ptr_agree() {
        let mut arena = Arena::new(32).expect("arena");
        arena.region_mut(8, 2).expect("region").copy_from_slice(&[1.5, -2.0]);
        let base = arena.base_ptr();
        // SAFETY: byte 16 is inside the 32-byte arena and 4-aligned, and no
        // region borrow is alive.
        unsafe { base.add(16).cast::<f32>().write(3.0) };
        assert_eq!(arena.region(8, 3).expect("region"), &[1.5, -2.0, 3.0]);
        arena.zero();
        assert_eq!(arena.region(8, 3).expect("region"), &[0.0, 0.0, 0.0]);
    }

    #[test]
    fn regions_mut_checks_disjointness() {
        let mut arena = Arena::new(64).expect("arena");
        let cases: &[(&[(usize, usize)], bool)] = &[
            (&[], true),
            (&[(0, 4), (16, 4)], true),
            (&[(16, 4), (0, 4)], true),
            (&[(0, 4), (12, 4)], false),
            (&[(0, 4), (16, 0), (16, 4)], true),
            (&[(8, 0), (0, 4)], true),
            (&[(0, 16), (32, 1)], false),
            (&[(0, 1), (2, 1)], false),
            (&[(0, 4), (48, 8)], false),
        ];
        for (requests, ok) in cases {
            assert_eq!(arena.regions_mut(requests).is_ok(), *ok, "{requests:?}");
        }
        let mut regions = arena.regions_mut(&[(16, 2), (0, 2)]).expect("disjoint");
        regions[0].copy_from_slice(&[1.0, 2.0]);
        regions[1].copy_from_slice(&[3.0, 4.0]);
        assert_eq!(arena.region(0, 6).expect("region"), &[3.0, 4.0, 0.0, 0.0, 1.0, 2.0]);
    }
}
