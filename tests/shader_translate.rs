//! Every shader variant the GPU ops build translates with naga to SPIR-V (Vulkan), MSL
//! (Metal) and HLSL (DX12), so Metal and DX12 users are not left with shaders that only
//! Vulkan accepts. CI has neither; this is what checks their paths.

use naga::back::{hlsl, msl, spv};
use naga::valid::{
    Capabilities, ModuleInfo, ShaderStages, SubgroupOperationSet, ValidationFlags, Validator,
};
use ropewalk::backend::wgpu::ops::{matrix_unit_variants, shader_variants};
use ropewalk::backend::wgpu::shader_source;

/// Parses and validates a variant, then writes it as SPIR-V and MSL.
fn spirv_and_msl(files: &[&str], defines: &[(&str, String)]) -> (naga::Module, ModuleInfo) {
    let what = format!("{files:?} {defines:?}");
    let text = shader_source(files, defines);
    let module = naga::front::wgsl::parse_str(&text)
        .unwrap_or_else(|e| panic!("{what}: {}", e.emit_to_string(&text)));
    let info = Validator::new(ValidationFlags::all(), Capabilities::all())
        .subgroup_stages(ShaderStages::COMPUTE)
        .subgroup_operations(SubgroupOperationSet::all())
        .validate(&module)
        .unwrap_or_else(|e| panic!("{what}: {}", e.emit_to_string(&text)));

    let spirv = spv::write_vec(&module, &info, &spv::Options::default(), None)
        .unwrap_or_else(|e| panic!("{what}: SPIR-V: {e}"));
    assert!(!spirv.is_empty());

    let msl_options = msl::Options {
        lang_version: (2, 4),
        ..Default::default()
    };
    let (metal, _) = msl::write_string(&module, &info, &msl_options, &Default::default())
        .unwrap_or_else(|e| panic!("{what}: MSL: {e}"));
    assert!(metal.contains("kernel void"), "{what}: no MSL kernel");
    (module, info)
}

#[test]
fn every_shader_translates_to_spirv_msl_and_hlsl() {
    let variants = shader_variants();
    assert!(variants.len() > 30, "{} variants", variants.len());
    for (files, defines) in variants {
        let what = format!("{files:?} {defines:?}");
        let (module, info) = spirv_and_msl(&files, &defines);
        let hlsl_options = hlsl::Options {
            shader_model: hlsl::ShaderModel::V6_0,
            ..Default::default()
        };
        let mut dx = String::new();
        hlsl::Writer::new(&mut dx, &hlsl_options, &Default::default())
            .write(&module, &info, None)
            .unwrap_or_else(|e| panic!("{what}: HLSL: {e}"));
        assert!(dx.contains("[numthreads("), "{what}: no HLSL entry point");
    }
}

#[test]
fn the_matrix_unit_products_translate_to_spirv_and_msl() {
    let variants = matrix_unit_variants();
    assert!(variants.len() >= 8, "{} variants", variants.len());
    for (files, defines) in variants {
        let text = shader_source(&files, &defines);
        assert!(text.starts_with("enable f16;\nenable wgpu_cooperative_matrix;\n"));
        spirv_and_msl(&files, &defines);
    }
}
