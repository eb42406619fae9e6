//! Any bytes: the GGUF parser returns a header or an error, never panics, never allocates
//! beyond a small multiple of the input's size; and a header it accepts is written back
//! and re-read to the same bytes (metadata compared as bytes, so NaN values count as equal).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ropewalk::gguf::{GgufWriter, Header, TensorSpec};

/// The file our writer makes from `header`, with zeroed tensor data; `None` for headers
/// that are read but never written (alignments below 8), and for alignments too large to
/// pad in the fuzzer's memory (the writer streams padding; this target collects it).
fn rewrite(header: &Header) -> Option<Vec<u8>> {
    if header.alignment > 1 << 16 {
        return None;
    }
    let mut writer = GgufWriter::new(header.metadata.clone()).ok()?;
    for t in &header.tensors {
        writer
            .add_tensor(TensorSpec::new(t.name.clone(), t.ty, &t.dims))
            .expect("a parsed tensor is a valid spec");
    }
    let mut out = Vec::new();
    writer
        .write_to(&mut out, |t, sink| -> ropewalk::gguf::Result<()> {
            std::io::Write::write_all(sink, &vec![0; t.n_bytes() as usize]).unwrap();
            Ok(())
        })
        .expect("writing to memory");
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let Ok(header) = Header::parse(data) else {
        return;
    };
    for t in &header.tensors {
        assert!(header.data_offset + t.offset + t.n_bytes() <= data.len() as u64);
    }
    let Some(written) = rewrite(&header) else {
        return;
    };
    let again = Header::parse(&written).expect("what we write, we read");
    assert_eq!(again.tensors.len(), header.tensors.len());
    for (a, b) in again.tensors.iter().zip(&header.tensors) {
        assert_eq!((&a.name, a.ty, &a.dims), (&b.name, b.ty, &b.dims));
    }
    assert_eq!(rewrite(&again).as_deref(), Some(&written[..]));
});
