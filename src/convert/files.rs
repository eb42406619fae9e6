//! Reading a model folder's files: regular files only ([`crate::regular_file`]), and no
//! more bytes than a file of its kind needs, checked against its size and again while
//! reading.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::ConvertError;

/// Most bytes of a JSON file read whole: a tokenizer.json of a 256k vocabulary is about
/// 20 MB.
pub const MAX_JSON_BYTES: u64 = 256 << 20;

/// Opens `path`, if it is a regular file (after links).
pub fn open_regular(path: &Path) -> Result<File, ConvertError> {
    crate::regular_file::open(path).map_err(|e| ConvertError::io(path, e))
}

/// The bytes of `path`, a regular file of at most `limit` bytes.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, ConvertError> {
    let file = open_regular(path)?;
    let too_large = |len: u64| {
        ConvertError::invalid(
            path.display().to_string(),
            format!("{len} bytes is more than the {limit} ropewalk reads from such a file"),
        )
    };
    let len = file
        .metadata()
        .map_err(|e| ConvertError::io(path, e))?
        .len();
    if len > limit {
        return Err(too_large(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ConvertError::io(path, e))?;
    // It grew while being read.
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// As [`read_bounded`], or `None` where nothing is at `path`.
pub fn read_optional(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, ConvertError> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        _ => read_bounded(path, limit).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_of_bounded_size_are_read() {
        let dir = std::env::temp_dir().join(format!("ropewalk-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let small = dir.join("small.json");
        std::fs::write(&small, b"{}").unwrap();
        assert_eq!(read_bounded(&small, 2).unwrap(), b"{}");
        let e = read_bounded(&small, 1).unwrap_err().to_string();
        assert!(
            e.ends_with("2 bytes is more than the 1 ropewalk reads from such a file"),
            "{e}"
        );
        assert!(read_optional(&dir.join("absent.json"), 10)
            .unwrap()
            .is_none());
        let e = read_bounded(&dir, 10).unwrap_err().to_string();
        assert!(e.ends_with(": not a regular file"), "{e}");
        // A device reports no length and never ends.
        let e = read_bounded(Path::new("/dev/zero"), 10)
            .unwrap_err()
            .to_string();
        assert!(e.ends_with(": not a regular file"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
