//! Page advice for the mapped inputs: read a tensor ahead before it is needed, and let go
//! of its pages after, so that converting a model of any size keeps about one tensor
//! resident. Advice is a hint: where it fails or does not exist, nothing changes but
//! memory use.

use std::ops::Range;

use memmap2::Mmap;

#[cfg(unix)]
pub fn prefetch(map: &Mmap, range: Range<usize>) {
    let _ = map.advise_range(memmap2::Advice::WillNeed, range.start, range.len());
}

#[cfg(unix)]
pub fn release(map: &Mmap, range: Range<usize>) {
    if range.is_empty() {
        return;
    }
    // SAFETY: the map is read-only and file-backed, so MADV_DONTNEED only drops this
    // process's view of the pages; a later read faults them back in from the file with the
    // same contents. No reference into the range is held across this call by the converter
    // that would observe anything but the file's bytes.
    let _ = unsafe {
        map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, range.start, range.len())
    };
}

#[cfg(not(unix))]
pub fn prefetch(_map: &Mmap, _range: Range<usize>) {}

#[cfg(not(unix))]
pub fn release(_map: &Mmap, _range: Range<usize>) {}
