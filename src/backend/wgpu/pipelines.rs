//! The shaders, and a cache of compute pipelines keyed by shader and defines.
//!
//! A shader is a plain `.wgsl` file under `shaders/`; `{{NAME}}` marks where a define
//! goes (a workgroup size, a head dimension, how the KV cache stores a pair), so one
//! file serves every variant. Every shader starts with `common.wgsl`. A matrix product is
//! `product.wgsl` (its bindings), a driver (`matvec.wgsl` for one token, `gemm.wgsl` for
//! several, or `gemm_coop.wgsl` on matrix units), `block.wgsl`, the weight type's
//! `decode_*.wgsl` and the activations' side: `act_f32.wgsl`, or `act_q8.wgsl` with the
//! type's integer dot product `idot_*.wgsl`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// `(name, text)` of `shaders/NAME.wgsl`.
macro_rules! shaders {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../../shaders/", $name, ".wgsl")))),*]
    };
}

/// Every shader file, by name.
pub const SHADERS: &[(&str, &str)] = shaders![
    "common",
    "product",
    "matvec",
    "gemm",
    "gemm_coop",
    "block",
    "act_f32",
    "act_q8",
    "decode_f32",
    "decode_f16",
    "decode_q4_0",
    "decode_q4_1",
    "decode_q5_0",
    "decode_q5_1",
    "decode_q8_0",
    "decode_q4_k",
    "decode_q5_k",
    "decode_q6_k",
    "idot_q4_0",
    "idot_q4_1",
    "idot_q5_0",
    "idot_q5_1",
    "idot_q8_0",
    "idot_q4_k",
    "idot_q5_k",
    "idot_q6_k",
    "q8_store",
    "q8_none",
    "norm_in",
    "norm_in_none",
    "out_store",
    "norm_out",
    "glu_out",
    "q8_block",
    "fold_store",
    "rms_fold",
    "combine",
    "norm_input",
    "rms_norm",
    "rope_store",
    "attention",
    "attention_parts",
    "attention_merge",
    "silu_mul",
    "shortlist",
    "shortlist_max",
    "shortlist_gather",
    "copy",
];

fn file(name: &str) -> &'static str {
    SHADERS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no shader named {name}"))
        .1
}

/// The WGSL of `files` joined after `common.wgsl`, with each `{{KEY}}` replaced by its
/// define. A file's `enable` directives go first, where WGSL wants them.
pub fn source(files: &[&str], defines: &[(&str, String)]) -> String {
    let lines = std::iter::once("common")
        .chain(files.iter().copied())
        .flat_map(|name| file(name).lines());
    let (enables, body): (Vec<&str>, Vec<&str>) =
        lines.partition(|line| line.starts_with("enable "));
    let mut text = enables
        .into_iter()
        .chain(body)
        .collect::<Vec<_>>()
        .join("\n");
    for (key, value) in defines {
        text = text.replace(&format!("{{{{{key}}}}}"), value);
    }
    assert!(
        !text.contains("{{"),
        "shader {files:?} has a define left unset"
    );
    text
}

/// How a shader binds a buffer: binding 0 and 1 are always the op's parameters and the
/// step's (uniforms); the rest are storage buffers, read-only or read-write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    Uniform,
    Read,
    ReadWrite,
}

/// A compiled shader variant with its bind group layout.
pub struct Pipeline {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
    /// The shader's files, joined by `+`.
    pub name: String,
}

type Key = (Vec<&'static str>, Vec<(&'static str, String)>);

/// Pipelines built so far; building one compiles a shader, so each variant is built once.
pub struct Pipelines {
    built: Mutex<HashMap<Key, Arc<Pipeline>>>,
    layouts: Mutex<HashMap<Vec<Access>, wgpu::BindGroupLayout>>,
}

impl Pipelines {
    pub fn new() -> Pipelines {
        Pipelines {
            built: Mutex::new(HashMap::new()),
            layouts: Mutex::new(HashMap::new()),
        }
    }

    /// The pipeline of `files` with `defines`, whose entry point `main` binds buffers as
    /// `bindings` says.
    pub fn get(
        &self,
        device: &wgpu::Device,
        files: &[&'static str],
        defines: &[(&'static str, String)],
        bindings: &[Access],
    ) -> Arc<Pipeline> {
        let key = (files.to_vec(), defines.to_vec());
        if let Some(p) = self.built.lock().expect("not poisoned").get(&key) {
            return p.clone();
        }
        let layout = self.layout(device, bindings);
        let desc = wgpu::ShaderModuleDescriptor {
            label: Some(files[0]),
            source: wgpu::ShaderSource::Wgsl(source(files, defines).into()),
        };
        let module = device.create_shader_module(desc);
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(files[0]),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(files[0]),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        let p = Arc::new(Pipeline {
            pipeline,
            layout,
            name: files.join("+"),
        });
        self.built
            .lock()
            .expect("not poisoned")
            .insert(key, p.clone());
        p
    }

    fn layout(&self, device: &wgpu::Device, bindings: &[Access]) -> wgpu::BindGroupLayout {
        let mut layouts = self.layouts.lock().expect("not poisoned");
        layouts
            .entry(bindings.to_vec())
            .or_insert_with(|| {
                let entries: Vec<_> = bindings
                    .iter()
                    .enumerate()
                    .map(|(i, access)| wgpu::BindGroupLayoutEntry {
                        binding: i as u32,
                        visibility: wgpu::ShaderStages::COMPUTE,
                        ty: wgpu::BindingType::Buffer {
                            ty: match access {
                                Access::Uniform => wgpu::BufferBindingType::Uniform,
                                Access::Read => {
                                    wgpu::BufferBindingType::Storage { read_only: true }
                                }
                                Access::ReadWrite => {
                                    wgpu::BufferBindingType::Storage { read_only: false }
                                }
                            },
                            has_dynamic_offset: false,
                            min_binding_size: None,
                        },
                        count: None,
                    })
                    .collect();
                device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: None,
                    entries: &entries,
                })
            })
            .clone()
    }
}
