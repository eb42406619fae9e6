//! Opening an input file: a regular file only. Opening a FIFO blocks until something
//! writes to it, and a device (/dev/zero) has no end to map or read.

use std::fs::File;
use std::io;
use std::path::Path;

/// Opens `path` for reading, if it is a regular file (after links).
pub fn open(path: &Path) -> io::Result<File> {
    if !std::fs::metadata(path)?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    File::open(path)
}
