// The maximum (`take_max`) or the sum of `x` over a workgroup of WG threads (the including
// shader's constant), for the shaders that reduce across their workgroup: RMSNorm and the
// attention. Every thread calls it.
// Defines: COMBINE (through subgroup operations where subgroups are 32 lanes wide, two
// barriers; else a tree in workgroup memory, a barrier a level).

var<workgroup> reduce: array<f32, WG>;

fn combine(x: f32, lid: u32, take_max: bool) -> f32 {
    {{COMBINE}}
}
