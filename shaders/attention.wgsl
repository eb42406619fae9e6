// Causal attention of each (query head, token) over the layer's cached keys and values:
// token t sees positions 0..=pos0 + t. One workgroup per (head, token); thread j takes
// positions j, j + WG, ... with a running max and sum (online softmax), and the threads'
// partial results are merged at the end.
// Defines: WG (threads), HD (head dimension), KV_WORD and KV_LOAD (how a pair of values
// is read from the cache: f16 pairs or f32).

struct AttnParams {
    n_heads: u32,
    // query heads per KV head
    group: u32,
    // values in a cached row (n_kv_heads · HD)
    kv_dim: u32,
    scale: f32,
}

struct Step {
    n_tokens: u32,
    pos0: u32,
    out_first: u32,
    n_out: u32,
}

@group(0) @binding(0) var<uniform> p: AttnParams;
@group(0) @binding(1) var<uniform> step: Step;
// [n_tokens][n_heads][HD]
@group(0) @binding(2) var<storage, read> q: array<f32>;
// [n_ctx][kv_dim] each
@group(0) @binding(3) var<storage, read> k_cache: array<{{KV_WORD}}>;
@group(0) @binding(4) var<storage, read> v_cache: array<{{KV_WORD}}>;
// [n_tokens][n_heads][HD]
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

const WG: u32 = {{WG}}u;
const HD: u32 = {{HD}}u;
// below any score, yet finite: exp(LOW - LOW) is 1, not NaN
const LOW: f32 = -3.0e38;

var<workgroup> q_row: array<f32, HD>;
var<workgroup> maxes: array<f32, WG>;
var<workgroup> sums: array<f32, WG>;
var<workgroup> merge: array<f32, WG * WG>;

fn kv_pair(cache_word: {{KV_WORD}}) -> vec2<f32> {
    {{KV_LOAD}}
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let h = wg.x;
    let t = wg.y;
    let q_base = (t * p.n_heads + h) * HD;
    for (var d = lid; d < HD; d += WG) {
        q_row[d] = q[q_base + d];
    }
    workgroupBarrier();

    let kv_base = (h / p.group) * HD / 2u;
    let seen = step.pos0 + t + 1u;
    var m = LOW;
    var l = 0.0;
    var acc: array<f32, HD>;
    for (var pos = lid; pos < seen; pos += WG) {
        let row = pos * p.kv_dim / 2u + kv_base;
        var s = 0.0;
        for (var i = 0u; i < HD / 2u; i++) {
            let k = kv_pair(k_cache[row + i]);
            s += q_row[2u * i] * k.x + q_row[2u * i + 1u] * k.y;
        }
        s *= p.scale;
        let m_new = max(m, s);
        let correction = exp(m - m_new);
        let e = exp(s - m_new);
        l = l * correction + e;
        for (var i = 0u; i < HD / 2u; i++) {
            let v = kv_pair(v_cache[row + i]);
            acc[2u * i] = acc[2u * i] * correction + e * v.x;
            acc[2u * i + 1u] = acc[2u * i + 1u] * correction + e * v.y;
        }
        m = m_new;
    }

    maxes[lid] = m;
    sums[lid] = l;
    workgroupBarrier();
    var m_all = LOW;
    for (var j = 0u; j < WG; j++) {
        m_all = max(m_all, maxes[j]);
    }
    var l_all = 0.0;
    for (var j = 0u; j < WG; j++) {
        l_all += sums[j] * exp(maxes[j] - m_all);
    }
    let mine = exp(m - m_all) / l_all;
    for (var c = 0u; c < HD; c += WG) {
        for (var i = 0u; i < WG; i++) {
            if c + i < HD {
                merge[lid * WG + i] = acc[c + i] * mine;
            }
        }
        workgroupBarrier();
        if c + lid < HD {
            var o = 0.0;
            for (var j = 0u; j < WG; j++) {
                o += merge[j * WG + lid];
            }
            out[q_base + c + lid] = o;
        }
        workgroupBarrier();
    }
}
