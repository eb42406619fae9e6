//! Metadata key names. The `llama.*` keys are built from the architecture name, so they
//! are functions of it rather than constants.

pub const GENERAL_ARCHITECTURE: &str = "general.architecture";
pub const GENERAL_ALIGNMENT: &str = "general.alignment";
pub const GENERAL_NAME: &str = "general.name";
pub const GENERAL_FILE_TYPE: &str = "general.file_type";
pub const GENERAL_QUANTIZATION_VERSION: &str = "general.quantization_version";

pub const TOKENIZER_MODEL: &str = "tokenizer.ggml.model";
pub const TOKENIZER_PRE: &str = "tokenizer.ggml.pre";
pub const TOKENIZER_TOKENS: &str = "tokenizer.ggml.tokens";
pub const TOKENIZER_SCORES: &str = "tokenizer.ggml.scores";
pub const TOKENIZER_TOKEN_TYPE: &str = "tokenizer.ggml.token_type";
pub const TOKENIZER_MERGES: &str = "tokenizer.ggml.merges";
pub const TOKENIZER_BOS_ID: &str = "tokenizer.ggml.bos_token_id";
pub const TOKENIZER_EOS_ID: &str = "tokenizer.ggml.eos_token_id";
pub const TOKENIZER_UNK_ID: &str = "tokenizer.ggml.unknown_token_id";
pub const TOKENIZER_PAD_ID: &str = "tokenizer.ggml.padding_token_id";
pub const TOKENIZER_ADD_BOS: &str = "tokenizer.ggml.add_bos_token";
pub const TOKENIZER_ADD_EOS: &str = "tokenizer.ggml.add_eos_token";
pub const TOKENIZER_CHAT_TEMPLATE: &str = "tokenizer.chat_template";

/// `{arch}.{suffix}`, for example `arch_key("llama", CONTEXT_LENGTH)`.
pub fn arch_key(arch: &str, suffix: &str) -> String {
    format!("{arch}.{suffix}")
}

pub const CONTEXT_LENGTH: &str = "context_length";
pub const EMBEDDING_LENGTH: &str = "embedding_length";
pub const BLOCK_COUNT: &str = "block_count";
pub const FEED_FORWARD_LENGTH: &str = "feed_forward_length";
pub const VOCAB_SIZE: &str = "vocab_size";
pub const HEAD_COUNT: &str = "attention.head_count";
pub const HEAD_COUNT_KV: &str = "attention.head_count_kv";
pub const RMS_EPS: &str = "attention.layer_norm_rms_epsilon";
pub const ROPE_DIMENSION_COUNT: &str = "rope.dimension_count";
pub const ROPE_FREQ_BASE: &str = "rope.freq_base";
pub const ROPE_SCALE_LINEAR: &str = "rope.scale_linear";
pub const ROPE_SCALING_TYPE: &str = "rope.scaling.type";
pub const ROPE_SCALING_FACTOR: &str = "rope.scaling.factor";
pub const ROPE_SCALING_ORIG_CTX: &str = "rope.scaling.original_context_length";
pub const ROPE_SCALING_FINETUNED: &str = "rope.scaling.finetuned";
pub const ROPE_SCALING_ATTN_FACTOR: &str = "rope.scaling.attn_factor";
pub const ROPE_SCALING_YARN_BETA_FAST: &str = "rope.scaling.yarn_beta_fast";
pub const ROPE_SCALING_YARN_BETA_SLOW: &str = "rope.scaling.yarn_beta_slow";
pub const ROPE_SCALING_YARN_EXT_FACTOR: &str = "rope.scaling.yarn_ext_factor";

/// Per-frequency RoPE divisors (Llama 3 scaling), as llama.cpp stores them.
pub const ROPE_FREQS_TENSOR: &str = "rope_freqs.weight";

/// Keys of ropewalk's own namespace, for what GGUF has no standard key for; other engines
/// ignore them. NTK-by-alpha is already folded into `rope.freq_base`: the alpha is kept
/// to say so. Dynamic NTK is recorded here while the standard `rope.scaling.type` stays
/// `none`, so engines without it run the model unscaled rather than refuse it.
pub const ROPEWALK_NTK_ALPHA: &str = "ropewalk.rope.ntk_alpha";
pub const ROPEWALK_SCALING_TYPE: &str = "ropewalk.rope.scaling.type";
pub const ROPEWALK_SCALING_FACTOR: &str = "ropewalk.rope.scaling.factor";
