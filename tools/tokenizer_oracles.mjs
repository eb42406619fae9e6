// Writes the oracle files the tokenizer tests read, from two independent JavaScript
// tokenizers installed under .cache/npm by tools/fetch_tokenizer_oracles.sh:
//
//   llama2.json       llama-tokenizer-js (Llama 1/2 SentencePiece vocabulary): the vocabulary,
//                     the merges as id pairs in priority order, and the package's encodings
//                     (BOS and the leading space added, as the package does by default).
//   llama3.json       llama3-tokenizer-js: vocabulary (special tokens from 128000), merges as
//                     "left right" strings in rank order, encodings without BOS/EOS.
//   pretokenize.json  The GPT-2 and Llama-3 split regexes run by the JavaScript regex engine:
//                     an oracle for the hand-written matchers.
//
// Every package's own test inputs are included by running its test suite against a
// recording proxy, so the expected ids are the package's own answers.
//
// usage: node tools/tokenizer_oracles.mjs OUT_DIR

import fs from 'node:fs';
import path from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const outDir = process.argv[2];
if (!outDir) {
    console.error('usage: node tools/tokenizer_oracles.mjs OUT_DIR');
    process.exit(2);
}
const modules = path.join(root, '.cache/npm/node_modules');
const llama2 = (await import(path.join(modules, 'llama-tokenizer-js/llama-tokenizer.js'))).default;
const llama3 = (await import(path.join(modules, 'llama3-tokenizer-js/bundle/llama3-tokenizer-with-baked-data.js'))).default;

// --- inputs -------------------------------------------------------------------------

// The alice29.txt paragraphs, re-joined the way ../shared/reference's ppl_tokens.json says:
// CRLF -> LF, a paragraph's lines joined by single spaces, paragraphs separated by a blank line.
function aliceParagraphs() {
    const raw = fs.readFileSync(path.join(root, '.cache/text/alice29.txt'), 'latin1').replaceAll('\r\n', '\n');
    return raw.split(/\n[ \t]*\n/).map(p => p.split(/\s+/).filter(w => w).join(' ')).filter(p => p);
}

// Deterministic pseudo-random strings over characters chosen to exercise every branch of
// the split regexes: letters of several scripts, digits of several kinds (Nd, Nl, No),
// combining marks, contractions, Unicode spaces and line breaks, emoji outside the BMP.
// U+FEFF and U+0085 are left out: JavaScript's \s includes the first and not the second,
// the other way round from Unicode's White_Space, which Hugging Face and llama.cpp use.
function randomStrings(n, seed) {
    const pool = [
        'a', 'b', 'Z', 'é', 'ß', 'Ω', 'ж', 'ا', '中', '文', '镇', '한', 'ー', 'ﾟ',
        '0', '7', '٣', '²', 'Ⅻ', '½', '9',
        ' ', ' ', ' ', '  ', '\t', '\n', '\r\n', '\r', '\u00a0', '\u3000', '\u2028', '\u000b',
        "'", "'s", "'S", "'re", "'LL", "'ve", "'d", "'m", "'t", "'x",
        '.', ',', '!', '?', '-', '(', ')', '"', '`', '#', '$', '+', '<', '=', '|', '~', '^', '_', '@',
        '\u0301', '🦙', '👍🏽', '😀', 'Ꙋ', '\u200d', '\u0000', '\u007f',
        'the', ' the', 'Hello', ' world', '1234567', ' 42', '...', '\n\n', '   ',
    ];
    let s = seed >>> 0;
    const next = () => {
        s ^= s << 13; s >>>= 0;
        s ^= s >>> 17;
        s ^= s << 5; s >>>= 0;
        return s;
    };
    const out = [];
    for (let i = 0; i < n; i++) {
        const len = 1 + (next() % 24);
        let t = '';
        for (let j = 0; j < len; j++) t += pool[next() % pool.length];
        out.push(t);
    }
    return out;
}

const ownCases = [
    'Hello world', ' Hello world', '  Hello  world  ', 'Hello\nworld', 'Hello\n\nworld\n',
    '\n\n\n', '   ', ' ', 'a', '\t\tindented\ttext', 'line one\r\nline two\r\n',
    "I'm sure you've seen it, haven't you? They'll say it's what we'd do.",
    "DON'T SHOUT, WE'RE HERE", "rock 'n' roll", "'s", "o'clock", "‘curly’ “quotes”",
    'The year 1854, 3.14159 and 1,000,000; call 555-0123!', '123456789012', 'x2 = y**3 + 4z',
    'Emoji: 🦙🦙 👍🏽 😀!', 'Family: 👨‍👩‍👧', '日本語のテキストです。', '中文字符和镇', '한국어 텍스트',
    'Ελληνικά και русский текст', 'مرحبا بالعالم', 'naïve café résumé', 'e\u0301 combining',
    'Ꙋ🦙Ꙋ', '\u00a0nbsp\u00a0and\u3000ideographic space', 'tabs\there', 'control\u0001char\u007f',
    'fn main() {\n    println!("hi");\n}\n', '<html><body class="x">&amp;</body></html>',
    '    four spaces then text', 'text then four spaces    ', '\n  \n  x', 'a\u2028b\u2029c',
    '<s>not a special token in the SentencePiece tests</s>', '<0x41> is text, not a byte',
    '▁already▁escaped', '~~~~~', '!!!???', '$100 + <5> = ^ | ~',
];

// --- run a package's own test suite, recording what it asks -------------------------

function recordTests(tokenizer) {
    const encodes = [];
    const decodes = [];
    const proxy = {
        encode(...args) {
            const ids = tokenizer.encode(...args);
            encodes.push({ args, ids });
            return ids;
        },
        decode(...args) {
            const text = tokenizer.decode(...args);
            decodes.push({ args, text });
            return text;
        },
        optimisticCount(...args) {
            return tokenizer.optimisticCount(...args);
        },
    };
    const log = console.log;
    console.log = () => {};
    try {
        tokenizer.defaultTests(proxy);
    } finally {
        console.log = log;
    }
    return { encodes, decodes };
}

// --- llama-tokenizer-js -------------------------------------------------------------

function dumpLlama2(texts) {
    const t = llama2;
    const merges = [...t.merges.entries()].sort((a, b) => a[1] - b[1]).map(([key]) => {
        const [l, r] = key.split(' ');
        return [t.vocabByString.get(l), t.vocabByString.get(r)];
    });
    const rec = recordTests(t);
    const cases = [];
    for (const { args, ids } of rec.encodes) {
        cases.push({ text: args[0], ids, source: 'package' });
    }
    for (const text of texts) {
        const ids = t.encode(text);
        cases.push({ text, ids, decoded: t.decode(ids), source: 'ropewalk' });
    }
    // Decodes with the package's default flags (drop a leading BOS, strip the prefix space).
    const decodes = rec.decodes
        .filter(d => d.args.length === 1 || (d.args[1] !== false && d.args[2] !== false))
        .map(d => ({ ids: d.args[0], text: d.text }));
    return { package: 'llama-tokenizer-js@1.2.2', tokens: t.vocabById, merges, cases, decodes };
}

// --- llama3-tokenizer-js ------------------------------------------------------------

function dumpLlama3(texts) {
    const t = llama3;
    const merges = [...t.merges.entries()].sort((a, b) => a[1] - b[1]).map(([key]) => key);
    const rec = recordTests(t);
    const cases = [];
    for (const { args, ids } of rec.encodes) {
        const opts = args[1] ?? { bos: true, eos: true };
        if (opts.specialTokenRegex || opts.unexpectedSpecialTokenFallback) continue;
        cases.push({ text: args[0], bos: !!opts.bos, eos: !!opts.eos, ids, source: 'package' });
    }
    for (const text of texts) {
        const ids = t.encode(text, { bos: false, eos: false });
        cases.push({ text, bos: false, eos: false, ids, source: 'ropewalk' });
    }
    const decodes = rec.decodes.map(d => ({ ids: d.args[0], text: d.text }));
    return {
        package: 'llama3-tokenizer-js@1.2.0',
        tokens: t.vocabById,
        special_start: 128000,
        merges,
        cases,
        decodes,
    };
}

// --- the split regexes --------------------------------------------------------------

const GPT2 = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
const LLAMA3 = /(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;

function split(text, re) {
    const pieces = [];
    let at = 0;
    for (const m of text.matchAll(re)) {
        if (m.index > at) pieces.push(text.slice(at, m.index));
        pieces.push(m[0]);
        at = m.index + m[0].length;
    }
    if (at < text.length) pieces.push(text.slice(at));
    return pieces;
}

// --- main ---------------------------------------------------------------------------

const alice = aliceParagraphs();
const aliceText = alice.join('\n\n');
const randoms = randomStrings(400, 0x5eed);
const texts = [...ownCases, ...randoms, ...alice.slice(0, 40), aliceText].filter(t => t.length > 0);

fs.mkdirSync(outDir, { recursive: true });
const write = (name, value) => {
    const file = path.join(outDir, name);
    fs.writeFileSync(file + '.part', JSON.stringify(value));
    fs.renameSync(file + '.part', file);
};
write('llama2.json', dumpLlama2(texts));
write('llama3.json', dumpLlama3(texts));
const pre = [...ownCases, ...randoms, ...alice.slice(0, 40)];
write('pretokenize.json', {
    gpt2: pre.map(text => ({ text, pieces: split(text, GPT2) })),
    llama3: pre.map(text => ({ text, pieces: split(text, LLAMA3) })),
});
console.log(`tokenizer oracles: ${texts.length} texts -> ${outDir}`);
