//! Our reader and writer against the Python `gguf` package, in both directions.

mod common;

use std::io::Write;

use common::{oracle, Rng};
use ropewalk::gguf::{Array, GgufFile, GgufWriter, Metadata, TensorSpec, Value};
use ropewalk::quant::GgmlType;
use serde_json::{json, Value as Json};

/// The names the Python package gives value types.
fn py_type(v: &Value) -> &'static str {
    match v {
        Value::U8(_) => "UINT8",
        Value::I8(_) => "INT8",
        Value::U16(_) => "UINT16",
        Value::I16(_) => "INT16",
        Value::U32(_) => "UINT32",
        Value::I32(_) => "INT32",
        Value::F32(_) => "FLOAT32",
        Value::Bool(_) => "BOOL",
        Value::String(_) => "STRING",
        Value::Array(_) => "ARRAY",
        Value::U64(_) => "UINT64",
        Value::I64(_) => "INT64",
        Value::F64(_) => "FLOAT64",
    }
}

/// The Python reader's view of a value: a type chain (an array's element types, taken
/// from its first element) and the contents with nested arrays flattened.
fn py_view(v: &Value) -> (Vec<&'static str>, Json) {
    match v {
        Value::Array(a) => {
            let mut types = vec!["ARRAY"];
            let mut flat = Vec::new();
            flatten(a, &mut types, &mut flat, true);
            (types, Json::Array(flat))
        }
        _ => (vec![py_type(v)], scalar(v)),
    }
}

fn flatten(a: &Array, types: &mut Vec<&'static str>, flat: &mut Vec<Json>, first: bool) {
    for i in 0..a.len() {
        let item = a.get(i).unwrap();
        if first && i == 0 {
            types.push(py_type(&item));
        }
        match &item {
            Value::Array(inner) => flatten(inner, types, flat, first && i == 0),
            v => flat.push(scalar(v)),
        }
    }
}

fn scalar(v: &Value) -> Json {
    match v {
        Value::U8(x) => json!(x),
        Value::I8(x) => json!(x),
        Value::U16(x) => json!(x),
        Value::I16(x) => json!(x),
        Value::U32(x) => json!(x),
        Value::I32(x) => json!(x),
        Value::F32(x) => json!(f64::from(*x)),
        Value::Bool(x) => json!(x),
        Value::String(x) => json!(x),
        Value::U64(x) => json!(x),
        Value::I64(x) => json!(x),
        Value::F64(x) => json!(x),
        Value::Array(_) => unreachable!("arrays are flattened"),
    }
}

/// Everything the Python reader says about `path` must be what our reader says.
fn assert_same_as_python(path: &std::path::Path) {
    let py = oracle("describe", path);
    let ours = GgufFile::open(path).unwrap();
    let h = ours.header();
    assert_eq!(py["version"], json!(h.version));
    assert_eq!(py["alignment"], json!(h.alignment));
    assert_eq!(py["data_offset"], json!(h.data_offset));

    let py_fields = py["fields"].as_array().unwrap();
    assert_eq!(py_fields.len(), h.metadata.len(), "metadata count");
    for (field, (key, value)) in py_fields.iter().zip(h.metadata.iter()) {
        let (types, contents) = py_view(value);
        assert_eq!(field[0], json!(key));
        assert_eq!(field[1], json!(types), "type of {key}");
        assert_eq!(field[2], contents, "value of {key}");
    }

    let py_tensors = py["tensors"].as_array().unwrap();
    assert_eq!(py_tensors.len(), ours.tensors().len(), "tensor count");
    for (pt, view) in py_tensors.iter().zip(ours.tensor_views()) {
        let name = view.name();
        assert_eq!(pt["name"], json!(name));
        assert_eq!(pt["type"], json!(view.ty().id()), "type of {name}");
        assert_eq!(pt["dims"], json!(view.dims()), "dims of {name}");
        assert_eq!(pt["n_bytes"], json!(view.data.len()), "size of {name}");
        assert_eq!(
            pt["offset"],
            json!(h.data_offset + view.info.offset),
            "offset of {name}"
        );
        assert_eq!(
            pt["sha256"],
            json!(common::sha256(view.data)),
            "bytes of {name}"
        );
    }
}

#[test]
fn python_reads_what_we_write() {
    let mut m = Metadata::new();
    m.set("general.architecture", Value::String("llama".into()));
    m.set("general.alignment", Value::U32(64));
    m.set("t.u8", Value::U8(255));
    m.set("t.i8", Value::I8(-128));
    m.set("t.u16", Value::U16(65535));
    m.set("t.i16", Value::I16(-32768));
    m.set("t.u32", Value::U32(u32::MAX));
    m.set("t.i32", Value::I32(i32::MIN));
    m.set("t.f32", Value::F32(-0.1));
    m.set("t.bool", Value::Bool(false));
    m.set("t.str", Value::String("naïve 🦀\n\t\"quoted\"".into()));
    m.set("t.empty_str", Value::String(String::new()));
    m.set("t.u64", Value::U64(u64::MAX));
    m.set("t.i64", Value::I64(i64::MIN));
    m.set("t.f64", Value::F64(std::f64::consts::PI));
    m.set("t.a_u8", Value::Array(Array::U8(vec![0, 1, 255])));
    m.set("t.a_i8", Value::Array(Array::I8(vec![-1, 2])));
    m.set("t.a_u16", Value::Array(Array::U16(vec![7])));
    m.set("t.a_i16", Value::Array(Array::I16(vec![-7, 7])));
    m.set("t.a_u32", Value::Array(Array::U32(vec![1, 2, 3])));
    m.set("t.a_i32", Value::Array(Array::I32(vec![-1, 0, 1])));
    m.set("t.a_f32", Value::Array(Array::F32(vec![0.25, -1e30])));
    m.set(
        "t.a_bool",
        Value::Array(Array::Bool(vec![true, false, true])),
    );
    m.set(
        "t.a_str",
        Value::Array(Array::String(vec![
            "Ġthe".into(),
            String::new(),
            "<|im_end|>".into(),
        ])),
    );
    m.set("t.a_u64", Value::Array(Array::U64(vec![u64::MAX])));
    m.set("t.a_i64", Value::Array(Array::I64(vec![i64::MIN, 0])));
    m.set("t.a_f64", Value::Array(Array::F64(vec![1e-300, 2.5])));
    m.set("t.a_empty", Value::Array(Array::I32(vec![])));
    m.set(
        "t.a_nested",
        Value::Array(Array::Array(vec![
            Array::I32(vec![1, 2]),
            Array::I32(vec![3]),
            Array::Array(vec![Array::I32(vec![4])]),
        ])),
    );

    let mut w = GgufWriter::new(m).unwrap();
    let mut rng = Rng::new(1);
    // The Python package still sizes Q8_1 blocks at 40 bytes, the layout from before ggml
    // stored d and s as f16 (36 bytes). Q8_1 is an activation type that files never hold.
    let on_disk = GgmlType::ALL.into_iter().filter(|&t| t != GgmlType::Q8_1);
    for (i, ty) in on_disk.enumerate() {
        let row = ty.block_len() as u64 * (1 + i as u64 % 3);
        w.add_tensor(TensorSpec::new(format!("t.{}", ty.name()), ty, &[row, 3]))
            .unwrap();
    }
    w.add_tensor(TensorSpec::new("t.4d", GgmlType::F32, &[2, 3, 4, 5]))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ours.gguf");
    w.write_file(&path, |t, out| -> ropewalk::gguf::Result<()> {
        out.write_all(&rng.bytes(t.n_bytes() as usize)).unwrap();
        Ok(())
    })
    .unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), w.file_len());
    assert_same_as_python(&path);
}

#[test]
fn we_read_what_python_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("python.gguf");
    oracle("write", &path);
    assert_same_as_python(&path);
}

#[test]
fn we_read_the_test_model_as_python_does() {
    assert_same_as_python(&common::test_model());
}

#[test]
fn we_read_the_kquant_model_as_python_does() {
    assert_same_as_python(&common::kquant_model());
}
