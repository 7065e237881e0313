//! The BERT encoder's forward pass (all-MiniLM-L6-v2's shape), written for throughput: the
//! texts of a batch are laid end to end without padding, every linear layer is one GEMM over
//! all their tokens (the `gemm` crate, which picks AVX2, AVX-512 or simd128 kernels at run
//! time), attention runs per text and head on strided views of the fused Q/K/V rows, and bias,
//! GELU, residual and layer norm are fused passes over rows — with every buffer sized once per
//! batch. It runs on the calling thread: callers parallelise over batches.

use crate::EmbedError;

/// The encoder's shape, from `config.json`.
#[derive(Clone, Copy, Debug)]
struct Shape {
    hidden: usize,
    heads: usize,
    layers: usize,
    intermediate: usize,
    vocab: usize,
    positions: usize,
    eps: f32,
}

/// A dense layer stored transposed (`in × out`, row-major) so that `x · w` reads it in order.
struct Linear {
    /// The weights as `linear` reads them: `inputs × outputs` row-major, or (in wasm, where
    /// [`panels`] reads them) in panels of eight output columns.
    w: Vec<f32>,
    b: Vec<f32>,
    inputs: usize,
    outputs: usize,
    /// `w` is in [`panels`]' layout.
    packed: bool,
}

struct LayerNorm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

struct Layer {
    /// Query, key and value in one layer of 3 × hidden outputs.
    qkv: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    up: Linear,
    down: Linear,
    output_norm: LayerNorm,
}

/// A loaded encoder.
pub(crate) struct Encoder {
    shape: Shape,
    word: Vec<f32>,
    position: Vec<f32>,
    /// Token type 0's embedding (every token of a single-segment input).
    segment: Vec<f32>,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
}

fn bad(what: String) -> EmbedError {
    EmbedError::Weights(what)
}

fn config_usize(config: &serde_json::Value, key: &str) -> Result<usize, EmbedError> {
    config
        .get(key)
        .and_then(serde_json::Value::as_u64)
        .and_then(|v| usize::try_from(v).ok())
        .filter(|&v| v > 0 && v <= 1 << 20)
        .ok_or_else(|| EmbedError::ConfigField(key.to_string()))
}

/// The weights of a safetensors file, converted to f32 on the way out.
struct Weights<'a> {
    file: safetensors::SafeTensors<'a>,
    /// Names may carry a model prefix (`bert.`), as some exports write them.
    prefix: &'static str,
}

impl Weights<'_> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, EmbedError> {
        let full = format!("{}{name}", self.prefix);
        let t = self.file.tensor(&full).map_err(|_| bad(format!("no tensor {full}")))?;
        if t.shape() != shape {
            return Err(bad(format!("{full} has shape {:?}, expected {shape:?}", t.shape())));
        }
        let data = t.data();
        let values: Vec<f32> = match t.dtype() {
            safetensors::Dtype::F32 => {
                data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
            }
            safetensors::Dtype::F16 => data
                .chunks_exact(2)
                .map(|b| half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32())
                .collect(),
            safetensors::Dtype::BF16 => data
                .chunks_exact(2)
                .map(|b| half::bf16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32())
                .collect(),
            other => return Err(bad(format!("{full} is {other:?}, expected f32, f16 or bf16"))),
        };
        if values.len() != shape.iter().product::<usize>() || values.iter().any(|x| !x.is_finite()) {
            return Err(bad(format!("{full} holds values that are cut short or not finite")));
        }
        Ok(values)
    }

    /// A dense layer from its `weight` (`out × in`, as PyTorch stores it) and `bias`.
    fn linear(&self, name: &str, inputs: usize, outputs: usize) -> Result<Linear, EmbedError> {
        let w = self.get(&format!("{name}.weight"), &[outputs, inputs])?;
        let b = self.get(&format!("{name}.bias"), &[outputs])?;
        Ok(Linear { w: transpose(&w, outputs, inputs), b, inputs, outputs, packed: false })
    }

    fn norm(&self, name: &str, width: usize) -> Result<LayerNorm, EmbedError> {
        Ok(LayerNorm {
            gamma: self.get(&format!("{name}.weight"), &[width])?,
            beta: self.get(&format!("{name}.bias"), &[width])?,
        })
    }
}

/// `rows × cols` row-major to `cols × rows` row-major, in 32 × 32 tiles so that the writes stay
/// in cache (a page load transposes 21 million weights).
fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const TILE: usize = 32;
    let mut t = vec![0.0; m.len()];
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                for c in c0..(c0 + TILE).min(cols) {
                    t[c * rows + r] = m[r * cols + c];
                }
            }
        }
    }
    t
}

impl Encoder {
    /// Loads the encoder from safetensors bytes and the parsed `config.json`.
    pub fn load(weights: &[u8], config: &serde_json::Value) -> Result<Self, EmbedError> {
        let shape = Shape {
            hidden: config_usize(config, "hidden_size")?,
            heads: config_usize(config, "num_attention_heads")?,
            layers: config_usize(config, "num_hidden_layers")?,
            intermediate: config_usize(config, "intermediate_size")?,
            vocab: config_usize(config, "vocab_size")?,
            positions: config_usize(config, "max_position_embeddings")?,
            eps: config.get("layer_norm_eps").and_then(serde_json::Value::as_f64).unwrap_or(1e-12) as f32,
        };
        if !shape.hidden.is_multiple_of(shape.heads) {
            return Err(EmbedError::ConfigField("num_attention_heads (must divide hidden_size)".into()));
        }
        match config.get("hidden_act").and_then(serde_json::Value::as_str) {
            None | Some("gelu") => {}
            Some(other) => {
                return Err(EmbedError::ConfigField(format!("hidden_act {other:?} (only \"gelu\")")))
            }
        }
        let file = safetensors::SafeTensors::deserialize(weights).map_err(|e| bad(e.to_string()))?;
        let prefix = if file.tensor("embeddings.word_embeddings.weight").is_ok() { "" } else { "bert." };
        let w = Weights { file, prefix };
        let h = shape.hidden;
        let segments =
            w.get("embeddings.token_type_embeddings.weight", &[config_usize(config, "type_vocab_size")?, h])?;
        let mut layers = Vec::with_capacity(shape.layers);
        for i in 0..shape.layers {
            let at = |part: &str| format!("encoder.layer.{i}.{part}");
            let (q, k, v) = (
                w.linear(&at("attention.self.query"), h, h)?,
                w.linear(&at("attention.self.key"), h, h)?,
                w.linear(&at("attention.self.value"), h, h)?,
            );
            // One GEMM for all three: each input row's outputs are [q | k | v].
            let mut qkv = Linear {
                w: vec![0.0; h * 3 * h],
                b: Vec::with_capacity(3 * h),
                inputs: h,
                outputs: 3 * h,
                packed: false,
            };
            for r in 0..h {
                for (j, part) in [&q, &k, &v].iter().enumerate() {
                    qkv.w[r * 3 * h + j * h..r * 3 * h + (j + 1) * h]
                        .copy_from_slice(&part.w[r * h..(r + 1) * h]);
                }
            }
            for part in [&q, &k, &v] {
                qkv.b.extend_from_slice(&part.b);
            }
            layers.push(Layer {
                qkv,
                attention_out: w.linear(&at("attention.output.dense"), h, h)?,
                attention_norm: w.norm(&at("attention.output.LayerNorm"), h)?,
                up: w.linear(&at("intermediate.dense"), h, shape.intermediate)?,
                down: w.linear(&at("output.dense"), shape.intermediate, h)?,
                output_norm: w.norm(&at("output.LayerNorm"), h)?,
            });
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        for layer in &mut layers {
            for linear in [&mut layer.qkv, &mut layer.attention_out, &mut layer.up, &mut layer.down] {
                panels::pack(linear);
            }
        }
        Ok(Self {
            word: w.get("embeddings.word_embeddings.weight", &[shape.vocab, h])?,
            position: w.get("embeddings.position_embeddings.weight", &[shape.positions, h])?,
            segment: segments[..h].to_vec(),
            embedding_norm: w.norm("embeddings.LayerNorm", h)?,
            layers,
            shape,
        })
    }

    /// The hidden size (the embeddings' dimension).
    pub fn hidden(&self) -> usize {
        self.shape.hidden
    }

    /// The vocabulary size.
    pub fn vocab(&self) -> usize {
        self.shape.vocab
    }

    /// The longest input, in tokens.
    pub fn max_tokens(&self) -> usize {
        self.shape.positions
    }

    /// Mean-pooled, unit-length embeddings of token sequences (each with its [CLS] and [SEP]),
    /// appended to `out` row after row. Token ids must be below the vocabulary size and
    /// sequences no longer than [`Encoder::max_tokens`] (checked by the caller).
    pub fn embed(&self, texts: &[&[u32]], out: &mut Vec<f32>) {
        let Shape { hidden: h, heads, intermediate, .. } = self.shape;
        let total: usize = texts.iter().map(|t| t.len()).sum();
        let longest = texts.iter().map(|t| t.len()).max().unwrap_or(0);
        // Every buffer of the batch, once.
        let mut x = vec![0.0f32; total * h];
        let mut qkv = vec![0.0f32; total * 3 * h];
        let mut context = vec![0.0f32; total * h];
        let mut wide = vec![0.0f32; total * intermediate];
        let mut narrow = vec![0.0f32; total * h];
        let mut scores = vec![0.0f32; longest * longest];

        let mut row = 0;
        for ids in texts {
            for (p, &id) in ids.iter().enumerate() {
                let dst = &mut x[row * h..(row + 1) * h];
                let word = &self.word[id as usize * h..(id as usize + 1) * h];
                let pos = &self.position[p * h..(p + 1) * h];
                for (((d, &a), &b), &c) in dst.iter_mut().zip(word).zip(pos).zip(&self.segment) {
                    *d = a + b + c;
                }
                layer_norm(dst, &self.embedding_norm, self.shape.eps);
                row += 1;
            }
        }

        let head = h / heads;
        let scale = 1.0 / (head as f32).sqrt();
        for layer in &self.layers {
            linear(&x, total, &layer.qkv, &mut qkv);
            let mut first = 0;
            for ids in texts {
                let len = ids.len();
                for hd in 0..heads {
                    let q = &qkv[first * 3 * h + hd * head..];
                    let k = &qkv[first * 3 * h + h + hd * head..];
                    let v = &qkv[first * 3 * h + 2 * h + hd * head..];
                    let s = &mut scores[..len * len];
                    // scores = q · kᵀ
                    matmul(
                        len,
                        len,
                        head,
                        s,
                        len,
                        MatRef { data: q, row_stride: 3 * h, col_stride: 1 },
                        MatRef { data: k, row_stride: 1, col_stride: 3 * h },
                        false,
                    );
                    elementwise::softmax_rows(s, len, scale);
                    // context = softmax(scores) · v, into this head's columns.
                    let ctx = &mut context[first * h + hd * head..];
                    matmul(
                        len,
                        head,
                        len,
                        ctx,
                        h,
                        MatRef { data: s, row_stride: len, col_stride: 1 },
                        MatRef { data: v, row_stride: 3 * h, col_stride: 1 },
                        false,
                    );
                }
                first += len;
            }
            linear(&context, total, &layer.attention_out, &mut narrow);
            elementwise::add_and_norm(&mut x, &narrow, h, &layer.attention_norm, self.shape.eps);
            linear(&x, total, &layer.up, &mut wide);
            elementwise::gelu_all(&mut wide);
            linear(&wide, total, &layer.down, &mut narrow);
            elementwise::add_and_norm(&mut x, &narrow, h, &layer.output_norm, self.shape.eps);
        }

        // Mean over each text's tokens, then unit length.
        let mut first = 0;
        for ids in texts {
            let mut mean = vec![0.0f32; h];
            for r in first..first + ids.len() {
                for (m, &v) in mean.iter_mut().zip(&x[r * h..(r + 1) * h]) {
                    *m += v;
                }
            }
            let n = ids.len().max(1) as f32;
            for m in mean.iter_mut() {
                *m /= n;
            }
            let norm = mean.iter().map(|m| m * m).sum::<f32>().sqrt().max(1e-12);
            out.extend(mean.iter().map(|m| m / norm));
            first += ids.len();
        }
    }
}

/// A read-only matrix view: element (r, c) is `data[r * row_stride + c * col_stride]`.
#[derive(Clone, Copy)]
struct MatRef<'a> {
    data: &'a [f32],
    row_stride: usize,
    col_stride: usize,
}

impl MatRef<'_> {
    /// Whether a `rows × cols` matrix fits in `data` with these strides.
    fn holds(&self, rows: usize, cols: usize) -> bool {
        rows == 0
            || cols == 0
            || (rows - 1) * self.row_stride + (cols - 1) * self.col_stride < self.data.len()
    }
}

/// `dst (m × n, row stride dst_stride) = lhs (m × k) · rhs (k × n)`, or `+=` when
/// `accumulate`.
#[allow(clippy::too_many_arguments)]
fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    dst_stride: usize,
    lhs: MatRef,
    rhs: MatRef,
    accumulate: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    let fits = (m - 1) * dst_stride + n <= dst.len() && n <= dst_stride && lhs.holds(m, k) && rhs.holds(k, n);
    assert!(fits, "matmul views out of bounds");
    // SAFETY: every element the GEMM reads or writes lies inside the slices (checked just
    // above for the given shapes and strides), `dst` is borrowed mutably so it overlaps
    // neither input, and the strides fit `isize` since they index allocated slices.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_stride as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `out (rows × outputs) = x (rows × inputs) · w + b`.
fn linear(x: &[f32], rows: usize, layer: &Linear, out: &mut [f32]) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    if layer.packed {
        panels::linear(x, rows, layer, out);
        return;
    }
    debug_assert!(!layer.packed, "only the wasm kernel reads packed weights");
    let n = layer.outputs;
    for r in out[..rows * n].chunks_exact_mut(n) {
        r.copy_from_slice(&layer.b);
    }
    matmul(
        rows,
        n,
        layer.inputs,
        &mut out[..rows * n],
        n,
        MatRef { data: &x[..rows * layer.inputs], row_stride: layer.inputs, col_stride: 1 },
        MatRef { data: &layer.w, row_stride: n, col_stride: 1 },
        true,
    );
}

/// The dense layers in wasm: `gemm` packs the 42 MB of weights again on every call, which a
/// single query (ten-odd rows) cannot amortise. Here the weights are packed once, at load, in
/// panels of eight output columns (`inputs` rows of eight floats each), and each panel is
/// streamed once per call while blocks of four input rows stay in registers. Every output sums
/// its bias, then its products in input order, whatever the number of rows: a text embeds to
/// the same vector alone or in a batch.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod panels {
    use core::arch::wasm32::{f32x4_add, f32x4_mul, f32x4_splat, v128, v128_load, v128_store};

    use super::Linear;

    const WIDTH: usize = 8;

    /// Repacks `layer.w` (`inputs × outputs` row-major) into panels, when the outputs come in
    /// whole panels (else it stays for `gemm`).
    pub(super) fn pack(layer: &mut Linear) {
        let (k, n) = (layer.inputs, layer.outputs);
        if layer.packed || !n.is_multiple_of(WIDTH) || layer.w.len() != k * n {
            return;
        }
        let mut out = Vec::with_capacity(k * n);
        for p in 0..n / WIDTH {
            for row in layer.w.chunks_exact(n) {
                out.extend_from_slice(&row[p * WIDTH..(p + 1) * WIDTH]);
            }
        }
        layer.w = out;
        layer.packed = true;
    }

    /// Four floats from `s[..4]`.
    #[inline(always)]
    fn load(s: &[f32]) -> v128 {
        let s = &s[..4];
        // SAFETY: `s` holds four floats (sliced just above); wasm loads need no alignment.
        unsafe { v128_load(s.as_ptr().cast()) }
    }

    #[inline(always)]
    fn store(d: &mut [f32], v: v128) {
        let d = &mut d[..4];
        // SAFETY: `d` holds four floats (sliced just above); wasm stores need no alignment.
        unsafe { v128_store(d.as_mut_ptr().cast(), v) }
    }

    /// `out (rows × outputs) = x (rows × inputs) · w + b` from packed weights.
    pub(super) fn linear(x: &[f32], rows: usize, layer: &Linear, out: &mut [f32]) {
        let (k, n) = (layer.inputs, layer.outputs);
        let x = &x[..rows * k];
        let out = &mut out[..rows * n];
        for (p, panel) in layer.w.chunks_exact(k * WIDTH).enumerate() {
            let bias = (load(&layer.b[p * WIDTH..]), load(&layer.b[p * WIDTH + 4..]));
            let mut r = 0;
            while r + 4 <= rows {
                block::<4>(x, r, k, n, p, panel, bias, out);
                r += 4;
            }
            while r < rows {
                block::<1>(x, r, k, n, p, panel, bias, out);
                r += 1;
            }
        }
    }

    /// Rows `r0..r0 + R` of panel `p`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn block<const R: usize>(
        x: &[f32],
        r0: usize,
        k: usize,
        n: usize,
        p: usize,
        panel: &[f32],
        bias: (v128, v128),
        out: &mut [f32],
    ) {
        let rows: [&[f32]; R] = core::array::from_fn(|i| &x[(r0 + i) * k..(r0 + i + 1) * k]);
        let mut acc = [[bias.0, bias.1]; R];
        for (kk, w) in panel.chunks_exact(WIDTH).enumerate() {
            let (w0, w1) = (load(w), load(&w[4..]));
            for (a, row) in acc.iter_mut().zip(&rows) {
                let xv = f32x4_splat(row[kk]);
                a[0] = f32x4_add(a[0], f32x4_mul(xv, w0));
                a[1] = f32x4_add(a[1], f32x4_mul(xv, w1));
            }
        }
        for (i, a) in acc.iter().enumerate() {
            let at = (r0 + i) * n + p * WIDTH;
            store(&mut out[at..], a[0]);
            store(&mut out[at + 4..], a[1]);
        }
    }
}

/// The passes over whole rows, compiled twice on x86: for the baseline target and for
/// AVX2 + FMA (chosen at run time), since the crate is built for baseline x86-64 and these
/// loops vectorise only as wide as the target allows. Both compute the same operations in the
/// same order (Rust does not contract `a * b + c` into an FMA), so the vectors are the same.
mod elementwise {
    use super::LayerNorm;

    macro_rules! dispatch {
        ($(fn $name:ident($($arg:ident: $ty:ty),*);)*) => {$(
            pub(super) fn $name($($arg: $ty),*) {
                #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    #[target_feature(enable = "avx2,fma")]
                    fn wide($($arg: $ty),*) {
                        super::$name($($arg),*)
                    }
                    // SAFETY: the CPU was just found to have AVX2 and FMA, all `wide` needs.
                    return unsafe { wide($($arg),*) };
                }
                super::$name($($arg),*)
            }
        )*};
    }

    dispatch! {
        fn softmax_rows(s: &mut [f32], len: usize, scale: f32);
        fn gelu_all(xs: &mut [f32]);
        fn add_and_norm(x: &mut [f32], y: &[f32], width: usize, norm: &LayerNorm, eps: f32);
    }
}

/// Softmax of each `len`-wide row of `s`, scaled.
#[inline(always)]
fn softmax_rows(s: &mut [f32], len: usize, scale: f32) {
    for r in s.chunks_exact_mut(len) {
        softmax(r, scale);
    }
}

/// GELU of every value.
#[inline(always)]
fn gelu_all(xs: &mut [f32]) {
    for x in xs.iter_mut() {
        *x = gelu(*x);
    }
}

/// `x = layer_norm(x + y)`, row by row.
#[inline(always)]
fn add_and_norm(x: &mut [f32], y: &[f32], width: usize, norm: &LayerNorm, eps: f32) {
    for (xr, yr) in x.chunks_exact_mut(width).zip(y.chunks_exact(width)) {
        for (a, &b) in xr.iter_mut().zip(yr) {
            *a += b;
        }
        layer_norm(xr, norm, eps);
    }
}

#[inline(always)]
fn layer_norm(row: &mut [f32], norm: &LayerNorm, eps: f32) {
    let n = row.len() as f32;
    let mean = row.iter().sum::<f32>() / n;
    let var = row.iter().map(|&v| (v - mean) * (v - mean)).sum::<f32>() / n;
    let inv = 1.0 / (var + eps).sqrt();
    for ((v, &g), &b) in row.iter_mut().zip(&norm.gamma).zip(&norm.beta) {
        *v = (*v - mean) * inv * g + b;
    }
}

/// Softmax of `row × scale`, in place. The maximum and the sum run over eight lanes so that
/// they vectorise (a single running sum is a serial chain the compiler may not reorder).
#[inline(always)]
fn softmax(row: &mut [f32], scale: f32) {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let mut blocks = row.chunks_exact(8);
    for b in &mut blocks {
        for (l, &v) in lanes.iter_mut().zip(b) {
            *l = if v > *l { v } else { *l };
        }
    }
    let max =
        blocks.remainder().iter().chain(&lanes).fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
    for v in row.iter_mut() {
        *v = exp((*v - max) * scale);
    }
    let mut sums = [0.0f32; 8];
    let mut blocks = row.chunks_exact(8);
    for b in &mut blocks {
        for (s, &v) in sums.iter_mut().zip(b) {
            *s += v;
        }
    }
    let sum: f32 = sums.iter().chain(blocks.remainder()).sum();
    let inv = 1.0 / sum;
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// GELU as BERT defines it, `x · Φ(x)` with the exact normal CDF (not the tanh form).
#[inline]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// The error function, to about 6e-7 in f32 (Abramowitz and Stegun 7.1.26, 1.5e-7 exactly): branch-free, so a
/// loop over a row vectorises, unlike the libm call it replaces.
#[inline]
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly =
        t * (0.254_829_6 + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let y = 1.0 - poly * exp(-a * a);
    y.copysign(x)
}

/// e^x for x ≤ 88 (smaller values underflow to 0), to about 2 ulp: 2^n · e^r with |r| ≤ ln 2 / 2
/// and a degree-6 polynomial for e^r. Branch-free, for the same reason as [`erf`].
#[inline]
fn exp(x: f32) -> f32 {
    // Compares rather than `clamp`, whose NaN handling keeps the loop scalar.
    let x = if x < -87.0 { -87.0 } else { x };
    let x = if x > 88.0 { 88.0 } else { x };
    // Round x / ln 2 to the nearest integer by adding and removing 1.5 · 2^23.
    const ROUND: f32 = 12_582_912.0;
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    // ln 2 split in two, so that x − n·ln 2 stays exact for the n in range.
    let r = (x - n * 0.693_145_75) - n * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let bits = ((n as i32 + 127) as u32) << 23;
    p * f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_erf_match_the_standard_library() {
        let mut worst_exp = 0.0f64;
        let mut worst_erf = 0.0f64;
        for i in -87_000..=88_000 {
            let x = i as f32 / 1000.0;
            let want = (x as f64).exp();
            worst_exp = worst_exp.max(((exp(x) as f64) - want).abs() / want);
        }
        for i in -6_000..=6_000 {
            let x = i as f32 / 1000.0;
            worst_erf = worst_erf.max((erf(x) as f64 - libm_erf(x as f64)).abs());
        }
        assert!(worst_exp < 1e-6, "exp relative error {worst_exp}");
        assert!(worst_erf < 1e-6, "erf error {worst_erf}");
        assert_eq!(exp(-200.0), exp(-87.0));
        assert!(gelu(-10.0).abs() < 1e-6 && (gelu(10.0) - 10.0).abs() < 1e-5);
    }

    /// erf in f64 by its Taylor series (|x| ≤ 3) or continued fraction, as a reference.
    fn libm_erf(x: f64) -> f64 {
        if x.abs() > 3.0 {
            // erfc by the continued fraction, plenty for a 5e-7 check.
            let a = x.abs();
            let mut f = 0.0;
            for k in (1..60).rev() {
                f = (k as f64 / 2.0) / (a + f);
            }
            let erfc = (-a * a).exp() / (std::f64::consts::PI.sqrt() * (a + f));
            return (1.0 - erfc).copysign(x);
        }
        let mut sum = 0.0;
        let mut term = x;
        for n in 0..200 {
            sum += term / (2 * n + 1) as f64;
            term *= -x * x / (n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn transpose_moves_every_element() {
        for (rows, cols) in [(1, 1), (3, 70), (65, 33), (40, 40)] {
            let m: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
            let t = transpose(&m, rows, cols);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(t[c * rows + r], m[r * cols + c], "{rows}×{cols} at ({r}, {c})");
                }
            }
        }
    }

    #[test]
    fn matmul_agrees_with_a_plain_loop_on_strided_views() {
        let (m, n, k) = (5, 7, 3);
        let a: Vec<f32> = (0..m * 4).map(|i| i as f32 * 0.5 - 3.0).collect(); // m × k, row stride 4
        let b: Vec<f32> = (0..n * k).map(|i| (i % 5) as f32 - 1.5).collect(); // k × n, stored transposed
        let mut out = vec![9.0f32; m * 10];
        matmul(
            m,
            n,
            k,
            &mut out,
            10,
            MatRef { data: &a, row_stride: 4, col_stride: 1 },
            MatRef { data: &b, row_stride: 1, col_stride: k },
            false,
        );
        for r in 0..m {
            for c in 0..n {
                let want: f32 = (0..k).map(|i| a[r * 4 + i] * b[c * k + i]).sum();
                assert!((out[r * 10 + c] - want).abs() < 1e-5, "({r}, {c})");
            }
            // Columns past n are untouched.
            assert!(out[r * 10 + n..r * 10 + 10].iter().all(|&v| v == 9.0));
        }
    }
}
