// The 8-bit copy of a block of 32 values that a workgroup made one a lane (as
// q8_store.wgsl rounds and lays it out, at its bindings): d and the sum of the bytes
// come from sums across the lanes (matvec.wgsl's `max32` and `sum32`), then two threads
// pack and store the bytes. Every run of the workgroup holds the same values, so that
// the sums see uniform control flow.

// the values, kept by whichever lanes made them
var<workgroup> kept: array<f32, 32>;
var<workgroup> kept_bytes: array<i32, 32>;

// Stores block `k`, whose value at the thread's lane is `v`; every thread calls it.
fn store_q8_block(k: u32, v: f32, lid: u32) {
    let lane = lid % LANES;
    let d = max32(abs(v), lid) / 127.0;
    let inv = select(0.0, 1.0 / d, d != 0.0);
    let q = i32(round_away(vec4<f32>(v * inv)).x);
    let q_sum = sum32(f32(q), lid);
    if lid < LANES {
        kept_bytes[lane] = q;
    }
    workgroupBarrier();
    if lid < 2u {
        var words: array<u32, 4>;
        for (var j = 0u; j < 4u; j++) {
            let b = 16u * lid + 4u * j;
            words[j] = pack4xI8(vec4<i32>(kept_bytes[b], kept_bytes[b + 1u],
                kept_bytes[b + 2u], kept_bytes[b + 3u]));
        }
        aq[2u * k + lid] = vec4<u32>(words[0], words[1], words[2], words[3]);
    }
    if lid == 0u {
        ad[k] = vec2<f32>(d, d * q_sum);
    }
}
