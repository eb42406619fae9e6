// Causal attention of each (query head, token) over the layer's cached keys and values:
// token t sees positions 0..=pos0 + t. One workgroup of HD threads per (head, token)
// walks the cached positions HD at a time: thread i scores position i of the run against
// the query (a key row, read as vectors, eight at a time so that the loads overlap), the
// run's maximum and sum update a running softmax, then each thread adds the run's
// weighted values at four dimensions for a quarter of its positions (consecutive threads
// read consecutive values), eight positions' loads at a time. The quarters are summed at
// the end, and each thread ends with one output value; the head's 8-bit copy follows where
// the product that reads it wants one (`store_q8`: q8_store.wgsl at bindings 8 and 9, or
// q8_none.wgsl).
// Batches (ROPE = 0) find every position in the caches: their tokens read each other's
// keys, so rope_store ran first, rotating q and k in place and writing the caches. A step
// of one token (ROPE = 1) does rope_store's work here, one dispatch a layer fewer: it
// rotates its query and key by the table's row, the first workgroup of a group of query
// heads writes the key and value into the caches, and the token's own position is scored
// last, from its qkv row rounded as the cache rounds it, so that no workgroup waits on
// another's cache write. Its cached positions may be split over several workgroups a head
// (attention_parts.wgsl): then each leaves its part in `parts`, the last part also
// scores the token's own position, and attention_merge.wgsl makes the output.
// Defines: HD (head dimension = threads, a power of two from 32 to 256), ROPE, COMBINE
// (combine.wgsl), SPAN and MAX_PARTS (attention_parts.wgsl), KV_VEC, KV_LOAD8 and
// KV_STORE8 (how eight key values are read and written: one vector of f16 pairs, or two
// of f32), KV_WORD, KV_VALUE4 and KV_STORE_VALUES8 (how values are read, four at a time,
// and written, eight), KV_ROUND (a value as the cache keeps it).

struct AttnParams {
    n_heads: u32,
    // query heads per KV head
    group: u32,
    // values in a cached row (n_kv_heads · HD)
    kv_dim: u32,
    scale: f32,
    // values between consecutive tokens' queries
    q_stride: u32,
}

@group(0) @binding(0) var<uniform> p: AttnParams;
@group(0) @binding(1) var<uniform> step: Step;
// [n_tokens][HD / 2] cos, then [n_tokens][HD / 2] sin (read with ROPE = 1)
@group(0) @binding(2) var<storage, read> table: array<f32>;
// [n_tokens][q_stride]: each token's n_heads query heads of HD, then its key heads and its
// value heads (kv_dim each)
@group(0) @binding(3) var<storage, read> qkv: array<f32>;
// [n_ctx][kv_dim] each (written with ROPE = 1)
@group(0) @binding(4) var<storage, read_write> k_cache: array<{{KV_VEC}}>;
@group(0) @binding(5) var<storage, read_write> v_cache: array<{{KV_WORD}}>;
// [n_heads][MAX_PARTS][HD + 2]: each part's unnormalized output, maximum score and sum of
// weights, where one token's positions are split (attention_parts.wgsl)
@group(0) @binding(6) var<storage, read_write> parts: array<f32>;
// [n_tokens][n_heads][HD]
@group(0) @binding(7) var<storage, read_write> out: array<f32>;

const HD: u32 = {{HD}}u;
// the workgroup's threads, for combine.wgsl
const WG: u32 = HD;
const ROPE: u32 = {{ROPE}}u;

// The weighted values' threads: QUADS along the head's dimensions, four values each, by
// SLOTS along the positions.
const QUADS: u32 = HD / 4u;
const SLOTS: u32 = 4u;

var<workgroup> q_row: array<f32, HD>;
// each thread's share of the weighted values, summed over its slot's positions
var<workgroup> shares: array<vec4<f32>, HD>;
var<workgroup> weights: array<f32, HD>;
// the token's own key and value
var<workgroup> own: array<vec2<f32>, HD>;

// Eight cached key values.
struct Eight {
    lo: vec4<f32>,
    hi: vec4<f32>,
}

// Key values 8i..8i + 7, counted from the cache's start.
fn load8(i: u32) -> Eight {
    {{KV_LOAD8}}
}

// Writes key values 8i..8i + 7.
fn store8(i: u32, e: Eight) {
    {{KV_STORE8}}
}

// Values i..i + 3 (i a multiple of 4), counted from the cache's start.
fn value4(i: u32) -> vec4<f32> {
    {{KV_VALUE4}}
}

// The query's dimensions 8i..8i + 7 times eight key values.
fn q_dot(i: u32, k: Eight) -> f32 {
    let q0 = vec4<f32>(q_row[8u * i], q_row[8u * i + 1u], q_row[8u * i + 2u], q_row[8u * i + 3u]);
    let q1 = vec4<f32>(q_row[8u * i + 4u], q_row[8u * i + 5u], q_row[8u * i + 6u], q_row[8u * i + 7u]);
    return dot(q0, k.lo) + dot(q1, k.hi);
}

// Writes values 8i..8i + 7.
fn store_values8(i: u32, e: Eight) {
    {{KV_STORE_VALUES8}}
}

// `x` as the cache keeps it.
fn round_kv(x: f32) -> f32 {
    {{KV_ROUND}}
}

// `x` rounded to the nearest f16 (ties to even), as pack2x16float stores it, in integer
// and exact float steps: a compiler may fold unpack2x16float(pack2x16float(x)) into x.
fn f16_round(x: f32) -> f32 {
    let a = abs(x);
    if a < 6.1035156e-5 {
        // f16's subnormals: multiples of 2^-24
        return round(x * 16777216.0) / 16777216.0;
    }
    if a >= 65520.0 {
        return bitcast<f32>((bitcast<u32>(x) & 0x80000000u) | 0x7f800000u);
    }
    // 13 of f32's 23 mantissa bits go
    let b = bitcast<u32>(x);
    return bitcast<f32>((b + 0xFFFu + ((b >> 13u) & 1u)) & 0xFFFFE000u);
}

// Dimensions i..i + 7 of the token's own key (c = 0) or value (c = 1).
fn own8(i: u32, c: u32) -> Eight {
    return Eight(vec4<f32>(own[i][c], own[i + 1u][c], own[i + 2u][c], own[i + 3u][c]),
        vec4<f32>(own[i + 4u][c], own[i + 5u][c], own[i + 6u][c], own[i + 7u][c]));
}

// Dimension `lid` of a head whose pair (lid & ~1, lid | 1) is (x, y), rotated by the
// cos and sin of the pair in the token's RoPE row, as rope_store.wgsl rotates it.
fn rotated(x: f32, y: f32, c: f32, s: f32, lid: u32) -> f32 {
    if lid % 2u == 0u {
        return x * c - y * s;
    }
    return x * s + y * c;
}

@compute @workgroup_size(HD)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let h = wg.x;
    // a batch's token, or which part of one token's positions
    let t = wg.y * (1u - ROPE);
    let part = wg.y * ROPE;
    let kv_base = (h / p.group) * HD;
    let qkv_row = t * p.q_stride;
    let k_at = qkv_row + p.n_heads * HD + kv_base + lid;
    q_row[lid] = qkv[qkv_row + h * HD + lid];
    if ROPE == 1u {
        let pair = t * (HD / 2u) + lid / 2u;
        let c = table[pair];
        let s = table[step.n_tokens * (HD / 2u) + pair];
        own[lid] = vec2<f32>(qkv[k_at], qkv[k_at + p.kv_dim]);
        workgroupBarrier();
        let x = lid & ~1u;
        let y = lid | 1u;
        let q_rot = rotated(q_row[x], q_row[y], c, s, lid);
        let k_rot = rotated(own[x].x, own[y].x, c, s, lid);
        workgroupBarrier();
        q_row[lid] = q_rot;
        own[lid] = vec2<f32>(round_kv(k_rot), round_kv(own[lid].y));
    }
    workgroupBarrier();
    if ROPE == 1u && h % p.group == 0u && part == 0u && lid % 8u == 0u {
        let i = ((step.pos0 + t) * p.kv_dim + kv_base + lid) / 8u;
        store8(i, own8(lid, 0u));
        store_values8(i, own8(lid, 1u));
    }

    // the positions in the caches: all of them for a batch, those before the token's own
    // for one token
    let seen = step.pos0 + t + 1u - ROPE;
    // this part's positions: whole runs of HD, the runs dealt out as evenly as they go
    // (a part has one at least, since there are no more parts than runs)
    let n_parts = select(1u, split_parts(seen), ROPE == 1u);
    let runs = (seen + HD - 1u) / HD;
    let begin = part * runs / n_parts * HD;
    let end = min(seen, (part + 1u) * runs / n_parts * HD);
    var m = LOW;
    var l = 0.0;
    // this thread's share of the weighted values: dimensions 4 · quad.. of the positions
    // slot, slot + SLOTS, ...
    let quad = lid % QUADS;
    let slot = lid / QUADS;
    var acc = vec4<f32>(0.0);
    for (var run = begin; run < end; run += HD) {
        let pos = run + lid;
        var s = LOW;
        if pos < end {
            let row = (pos * p.kv_dim + kv_base) / 8u;
            var dot_qk = 0.0;
            // four loads at a time, so that they overlap, eight where the head is long
            // enough
            var i = 0u;
            for (; i + 8u <= HD / 8u; i += 8u) {
                let k0 = load8(row + i);
                let k1 = load8(row + i + 1u);
                let k2 = load8(row + i + 2u);
                let k3 = load8(row + i + 3u);
                let k4 = load8(row + i + 4u);
                let k5 = load8(row + i + 5u);
                let k6 = load8(row + i + 6u);
                let k7 = load8(row + i + 7u);
                dot_qk += q_dot(i, k0) + q_dot(i + 1u, k1) + q_dot(i + 2u, k2) + q_dot(i + 3u, k3)
                    + q_dot(i + 4u, k4) + q_dot(i + 5u, k5) + q_dot(i + 6u, k6) + q_dot(i + 7u, k7);
            }
            for (; i < HD / 8u; i += 4u) {
                let k0 = load8(row + i);
                let k1 = load8(row + i + 1u);
                let k2 = load8(row + i + 2u);
                let k3 = load8(row + i + 3u);
                dot_qk += q_dot(i, k0) + q_dot(i + 1u, k1) + q_dot(i + 2u, k2) + q_dot(i + 3u, k3);
            }
            s = dot_qk * p.scale;
        }
        let m_new = max(m, combine(s, lid, true));
        var e = 0.0;
        if pos < end {
            e = exp(s - m_new);
        }
        weights[lid] = e;
        let correction = exp(m - m_new);
        l = l * correction + combine(e, lid, false);
        acc *= correction;
        let count = min(HD, end - run);
        let d = p.kv_dim;
        let v0 = run * d + kv_base + 4u * quad;
        var j = slot;
        // eight positions' loads at a time, so that they overlap
        for (; j + 7u * SLOTS < count; j += 8u * SLOTS) {
            let v = v0 + j * d;
            let next = SLOTS * d;
            let x0 = value4(v);
            let x1 = value4(v + next);
            let x2 = value4(v + 2u * next);
            let x3 = value4(v + 3u * next);
            let x4 = value4(v + 4u * next);
            let x5 = value4(v + 5u * next);
            let x6 = value4(v + 6u * next);
            let x7 = value4(v + 7u * next);
            acc += weights[j] * x0 + weights[j + SLOTS] * x1 + weights[j + 2u * SLOTS] * x2
                + weights[j + 3u * SLOTS] * x3 + weights[j + 4u * SLOTS] * x4
                + weights[j + 5u * SLOTS] * x5 + weights[j + 6u * SLOTS] * x6
                + weights[j + 7u * SLOTS] * x7;
        }
        for (; j < count; j += SLOTS) {
            acc += weights[j] * value4(v0 + j * d);
        }
        m = m_new;
        workgroupBarrier();
    }
    // dimension lid: the sum of its slots' shares
    shares[lid] = acc;
    workgroupBarrier();
    var out_d = 0.0;
    for (var g = 0u; g < SLOTS; g++) {
        out_d += shares[g * QUADS + lid / 4u][lid % 4u];
    }
    if ROPE == 1u && part == n_parts - 1u {
        // the token's own position
        let s_own = combine(q_row[lid] * own[lid].x, lid, false) * p.scale;
        let m_new = max(m, s_own);
        let e_own = exp(s_own - m_new);
        let correction = exp(m - m_new);
        l = l * correction + e_own;
        out_d = out_d * correction + e_own * own[lid].y;
        m = m_new;
    }

    if n_parts == 1u {
        store_head((t * p.n_heads + h) * HD, lid, out_d / l);
    } else {
        let at = part_at(h, part);
        parts[at + lid] = out_d;
        if lid == 0u {
            parts[at + HD] = m;
            parts[at + HD + 1u] = l;
        }
    }
}
