"""Transformers: an encoder classifier and a decoder-only language model with a K/V cache.

Attention is ``softmax(Q K^T / sqrt(d_head) + mask) V`` (``cpu_kernels.attention``: on GPUs
``jax.nn.dot_product_attention`` and its fused kernels). Blocks are pre-layer-norm by default:
``x + Attention(LN(x))`` then ``x + MLP(LN(x))``, with dropout on each branch's output; the
encoder classifier also takes BERT's post-layer-norm blocks, ``LN(x + Attention(x))`` then
``LN(x + MLP(x))``, with token-type embeddings, a normalised embedding and BERT's tanh pooler
(``jaxdl.models.pretrained.from_hf_bert`` reads Hugging Face BERT weights into it).
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxdl import _checks
from jaxdl import cpu_kernels as kernels
from jaxdl.models.layers import FeedForward

POSITIONS = ("learned", "sinusoidal")
POOLINGS = ("mean", "first", "none")
NORMS = ("pre", "post")


def _check_sizes(model) -> None:
    """The sizes a token model is built from, named, before any parameter is made."""
    name = type(model).__name__
    for field in ("vocab_size", "num_layers", "d_model", "num_heads", "mlp_dim", "max_len"):
        _checks.check_int(getattr(model, field), f"{name}.{field}")
    if model.d_model % model.num_heads:
        raise ValueError(
            f"{name}: d_model={model.d_model} is not divisible by num_heads={model.num_heads}"
        )
    _checks.check_rate(model.dropout_rate, f"{name}.dropout_rate")
    if model.positions not in POSITIONS:
        raise ValueError(f"{name}.positions: expected one of {POSITIONS}, got {model.positions!r}")


def _check_tokens(tokens, vocab_size: int, name: str = "tokens"):
    """Concrete token ids (outside ``jit``) are checked against the vocabulary; traced ones
    were checked where they entered (``generate``, or the model's eager ``init``)."""
    if _checks.is_concrete(tokens):
        if np.ndim(tokens) != 2:
            raise ValueError(f"{name}: expected token ids (B, T), got shape {np.shape(tokens)}")
        _checks.check_token_ids(tokens, vocab_size, name)


def sinusoidal_positions(max_len: int, d_model: int) -> np.ndarray:
    """(max_len, d_model): sin on even features, cos on odd ones (Vaswani et al., 2017)."""
    position = np.arange(max_len)[:, None]
    rate = np.exp(-np.log(10000.0) * np.arange(0, d_model, 2) / d_model)
    table = np.zeros((max_len, d_model), np.float32)
    table[:, 0::2] = np.sin(position * rate)
    table[:, 1::2] = np.cos(position * rate[: d_model // 2])
    return table


def padding_mask(valid: jax.Array) -> jax.Array:
    """(B, S) booleans, True for real tokens -> (B, 1, 1, S) attention mask."""
    return valid[:, None, None, :]


class MultiHeadAttention(nn.Module):
    """Self-attention over (B, T, D) with ``num_heads`` heads of D / num_heads features.

    ``mask``: booleans broadcastable to (B, heads, T, S), True where a query may attend.
    With ``decode=True`` keys and values are written into a cache of ``max_len`` positions
    (collection "cache"), and the queries attend to every cached position up to their own.
    """

    num_heads: int
    causal: bool = False
    decode: bool = False
    max_len: int = 512

    def __post_init__(self):
        _checks.check_int(self.num_heads, "MultiHeadAttention.num_heads")
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        batch, steps, d_model = x.shape
        if d_model % self.num_heads:
            raise ValueError(f"d_model={d_model} is not divisible by num_heads={self.num_heads}")
        head = d_model // self.num_heads
        qkv = kernels.DenseGeneral((3, self.num_heads, head), name="qkv")(x)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        causal = self.causal
        if self.decode:
            shape = (batch, self.max_len, self.num_heads, head)
            cached_k = self.variable("cache", "key", jnp.zeros, shape, k.dtype)
            cached_v = self.variable("cache", "value", jnp.zeros, shape, v.dtype)
            index = self.variable("cache", "index", lambda: jnp.zeros((), jnp.int32))
            i = index.value
            k = jax.lax.dynamic_update_slice(cached_k.value, k, (0, i, 0, 0))
            v = jax.lax.dynamic_update_slice(cached_v.value, v, (0, i, 0, 0))
            cached_k.value, cached_v.value, index.value = k, v, i + steps
            query_pos = i + jnp.arange(steps)
            seen = jnp.arange(self.max_len)[None, :] <= query_pos[:, None]
            mask = seen[None, None] if mask is None else mask & seen[None, None]
            causal = False
        out = kernels.attention(q, k, v, mask, causal)
        return kernels.DenseGeneral(d_model, axis=(-2, -1), name="out")(out)


def _check_norm(norm, epsilon, name: str) -> None:
    """The block layout and the layer-norm epsilon, named, before any parameter is made."""
    if not isinstance(norm, str) or norm not in NORMS:
        raise ValueError(f"{name}.norm: expected one of {NORMS}, got {norm!r}")
    _checks.check_number(epsilon, f"{name}.epsilon", 0.0, open_min=True)


class TransformerBlock(nn.Module):
    """A transformer block over (B, T, D) -> (B, T, D).

    ``norm="pre"`` (default): ``x + Drop(Attn(LN(x)))``, then ``x + Drop(MLP(LN(x)))``.
    ``norm="post"`` (BERT, the original transformer): ``LN(x + Drop(Attn(x)))``, then
    ``LN(x + Drop(MLP(x)))``. Either way the layer norms are ``norm_0`` and ``norm_1``.

    Attributes:
      num_heads: attention heads; D must be divisible by it.
      mlp_dim: hidden width of the feed-forward network (exact GELU).
      dropout_rate: dropout on each branch's output (and inside the MLP), in training only.
      causal: each position attends to itself and the ones before it only.
      decode: keys and values are cached for step-by-step decoding (``MultiHeadAttention``).
      max_len: positions of the decoding cache.
      norm: "pre" (default) or "post", where the layer norms sit.
      epsilon: added to the variance in every layer norm; 1e-6 (default, Flax's), BERT 1e-12.
    """

    num_heads: int
    mlp_dim: int
    dropout_rate: float = 0.0
    causal: bool = False
    decode: bool = False
    max_len: int = 512
    norm: str = "pre"
    epsilon: float = 1e-6

    def __post_init__(self):
        _check_norm(self.norm, self.epsilon, "TransformerBlock")
        super().__post_init__()

    @nn.compact
    def __call__(self, x, mask=None, train: bool = False):
        attention = MultiHeadAttention(
            self.num_heads, self.causal, self.decode, self.max_len, name="attention"
        )
        mlp = FeedForward(self.mlp_dim, x.shape[-1], self.dropout_rate, name="mlp")
        norm_0 = nn.LayerNorm(epsilon=self.epsilon, name="norm_0")
        norm_1 = nn.LayerNorm(epsilon=self.epsilon, name="norm_1")
        # one dropout module per branch (Dropout_0, Dropout_1): each has its own random stream
        drop_0 = nn.Dropout(self.dropout_rate, deterministic=not train)
        drop_1 = nn.Dropout(self.dropout_rate, deterministic=not train)
        if self.norm == "post":
            x = norm_0(x + drop_0(attention(x, mask)))
            return norm_1(x + drop_1(mlp(x, train)))
        x = x + drop_0(attention(norm_0(x), mask))
        return x + drop_1(mlp(norm_1(x), train))


class _ScannedBlock(nn.Module):
    """A causal ``TransformerBlock`` in the carry form ``nn.scan`` takes: x -> (x, None)."""

    num_heads: int
    mlp_dim: int
    dropout_rate: float
    decode: bool
    max_len: int
    train: bool

    @nn.compact
    def __call__(self, x, _=None):
        block = TransformerBlock(
            self.num_heads, self.mlp_dim, self.dropout_rate, True, self.decode, self.max_len,
            name="block",
        )  # fmt: skip
        return block(x, None, self.train), None


def _block(remat: bool):
    """``TransformerBlock``, or its rematerialised form (``train`` is static)."""
    return nn.remat(TransformerBlock, static_argnums=(3,)) if remat else TransformerBlock


class _Embedding(nn.Module):
    """Token + position (+ token-type) embeddings, optionally layer-normalised: (B, T) ids
    (and (B, T) type ids, zeros when None) -> (B, T, d_model)."""

    vocab_size: int
    d_model: int
    max_len: int
    positions: str = "learned"
    decode: bool = False
    remat: bool = False
    type_vocab_size: int = 0
    norm: bool = False
    epsilon: float = 1e-6

    @nn.compact
    def __call__(self, tokens, token_types=None):
        steps = tokens.shape[1]
        if steps > self.max_len:
            raise ValueError(f"sequence of {steps} tokens is longer than max_len={self.max_len}")
        x = nn.Embed(self.vocab_size, self.d_model, name="tokens")(tokens)
        start = 0
        if self.decode:
            counter = self.variable("cache", "position", lambda: jnp.zeros((), jnp.int32))
            start = counter.value
            counter.value = start + steps
        if self.positions == "learned":
            table = self.param(
                "positions", nn.initializers.normal(0.02), (self.max_len, self.d_model)
            )
        elif self.positions == "sinusoidal":
            table = jnp.asarray(sinusoidal_positions(self.max_len, self.d_model))
        else:
            raise ValueError(f"positions must be 'learned' or 'sinusoidal', got {self.positions!r}")
        x = x + jax.lax.dynamic_slice_in_dim(table, start, steps)[None]
        if self.type_vocab_size:
            types = jnp.zeros_like(tokens) if token_types is None else token_types
            x = x + nn.Embed(self.type_vocab_size, self.d_model, name="token_types")(types)
        if self.norm:
            x = nn.LayerNorm(epsilon=self.epsilon, name="norm")(x)
        return x


class TransformerClassifier(nn.Module):
    """Encoder over token ids (B, T) -> logits (B, num_classes), or per token (B, T, classes).

    Attributes:
      pooling: "mean" over real tokens, "first" token, or "none" for one output per token.
      pad_id: token id of padding; such tokens are masked out of attention and pooling.
      remat: recompute each block's activations in the backward pass (``jax.checkpoint``)
        instead of keeping them: less memory for more compute, the same numbers.
      norm: "pre" (default): pre-layer-norm blocks and a final layer norm ``norm`` before
        the pooling; "post": BERT's post-layer-norm blocks and no final norm
        (``TransformerBlock``).
      epsilon: of every layer norm; 1e-6 (default, Flax's), BERT 1e-12.
      type_vocab_size: 0 (default) for none, or the number of token types (BERT's segments,
        2): an embedding table ``embed/token_types`` added to the token and position ones,
        indexed by the ``token_types`` argument, or by zeros when it is not given.
      embed_norm: layer-normalise the summed embeddings (``embed/norm``), as BERT does.
        Default False.
      pooler: apply BERT's pooler, ``tanh(Dense(d_model))`` (``pooler``), to the pooled
        features before the output layer; needs ``pooling`` "mean" or "first" (BERT's).
        Default False.

    With ``norm="post"``, ``epsilon=1e-12``, ``type_vocab_size=2``, ``embed_norm=True``,
    ``pooling="first"``, ``pooler=True`` and ``pad_id=0`` it is Hugging Face's
    ``BertForSequenceClassification`` (whose usual ``attention_mask`` is ``ids != 0``);
    ``jaxdl.models.pretrained.bert_config`` gives these fields from a ``BertConfig`` and
    ``from_hf_bert`` its weights.

    Example:
      >>> model = jaxdl.models.TransformerClassifier(
      ...     vocab_size=11, num_layers=1, d_model=16, num_heads=2, mlp_dim=32, max_len=8,
      ...     num_classes=3,
      ... )
      >>> tokens = np.zeros((2, 8), np.int32)
      >>> model.apply(model.init(jax.random.key(0), tokens), tokens).shape
      (2, 3)
    """

    vocab_size: int
    num_layers: int = 2
    d_model: int = 128
    num_heads: int = 4
    mlp_dim: int = 256
    max_len: int = 128
    num_classes: int = 2
    dropout_rate: float = 0.0
    positions: str = "learned"
    pooling: str = "mean"
    pad_id: int | None = None
    remat: bool = False
    norm: str = "pre"
    epsilon: float = 1e-6
    type_vocab_size: int = 0
    embed_norm: bool = False
    pooler: bool = False

    def __post_init__(self):
        _check_sizes(self)
        _checks.check_int(self.num_classes, "TransformerClassifier.num_classes")
        if self.pooling not in POOLINGS:
            raise ValueError(
                f"TransformerClassifier.pooling: expected one of {POOLINGS}, got {self.pooling!r}"
            )
        _check_norm(self.norm, self.epsilon, "TransformerClassifier")
        _checks.check_int(self.type_vocab_size, "TransformerClassifier.type_vocab_size", 0)
        for field in ("embed_norm", "pooler"):
            if not isinstance(getattr(self, field), bool):
                raise TypeError(
                    f"TransformerClassifier.{field}: expected a bool, got "
                    f"{type(getattr(self, field)).__name__}: {getattr(self, field)!r}"
                )
        if self.pooler and self.pooling == "none":
            raise ValueError(
                "TransformerClassifier.pooler: the pooler acts on pooled features; expected "
                "pooling 'first' (BERT's) or 'mean', got pooling='none'"
            )
        super().__post_init__()

    @nn.compact
    def __call__(
        self, tokens: jax.Array, train: bool = False, token_types: jax.Array | None = None
    ) -> jax.Array:
        """Token ids (B, T) in [0, vocab_size) -> logits (B, num_classes), or (B, T,
        num_classes) with ``pooling="none"``. ``token_types``: (B, T) ids in
        [0, type_vocab_size) (BERT's ``token_type_ids``), only with ``type_vocab_size`` > 0;
        None (default) reads type 0 everywhere."""
        _check_tokens(tokens, self.vocab_size)
        if token_types is not None:
            self._check_token_types(tokens, token_types)
            token_types = jnp.asarray(token_types).astype(jnp.int32)
        tokens = jnp.asarray(tokens).astype(jnp.int32)
        valid = (tokens != self.pad_id) if self.pad_id is not None else None
        mask = padding_mask(valid) if valid is not None else None
        x = _Embedding(
            self.vocab_size,
            self.d_model,
            self.max_len,
            self.positions,
            type_vocab_size=self.type_vocab_size,
            norm=self.embed_norm,
            epsilon=self.epsilon,
            name="embed",
        )(tokens, token_types)
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        for i in range(self.num_layers):
            x = _block(self.remat)(
                self.num_heads,
                self.mlp_dim,
                self.dropout_rate,
                norm=self.norm,
                epsilon=self.epsilon,
                name=f"block{i}",
            )(x, mask, train)
        if self.norm == "pre":  # post-norm blocks end normalised already
            x = nn.LayerNorm(epsilon=self.epsilon, name="norm")(x)
        if self.pooling == "mean":
            w = jnp.ones(tokens.shape, x.dtype) if valid is None else valid.astype(x.dtype)
            x = (x * w[..., None]).sum(1) / jnp.maximum(w.sum(1, keepdims=True), 1.0)
        elif self.pooling == "first":
            x = x[:, 0]
        elif self.pooling != "none":
            raise ValueError(f"pooling must be 'mean', 'first' or 'none', got {self.pooling!r}")
        if self.pooler:
            x = jnp.tanh(kernels.Dense(self.d_model, name="pooler")(x))
        return kernels.Dense(self.num_classes, name="output")(x)

    @nn.nowrap
    def _check_token_types(self, tokens, token_types) -> None:
        if not self.type_vocab_size:
            raise ValueError(
                "token_types: given, but the model has no token-type embedding "
                "(TransformerClassifier.type_vocab_size=0)"
            )
        if np.shape(token_types) != np.shape(tokens):
            raise ValueError(
                f"token_types: expected the shape of tokens {np.shape(tokens)}, "
                f"got {np.shape(token_types)}"
            )
        if _checks.is_concrete(token_types):
            _checks.check_token_ids(token_types, self.type_vocab_size, "token_types")


class TransformerLM(nn.Module):
    """Decoder-only (causal) language model: token ids (B, T) -> next-token logits (B, T, V).

    ``generate`` continues a prompt with a key/value cache: the prompt is run once, then each
    new token costs one step over a single position. ``remat`` recomputes each block's
    activations in the backward pass (``jax.checkpoint``) instead of keeping them.
    ``scan_layers`` runs the blocks as one ``nn.scan`` over parameters stacked on a leading
    axis (``blocks/...``, (num_layers, ...)): one block to compile, and with ``remat`` only
    each block's input is kept, which is where rematerialisation saves memory on every
    backend (XLA's CPU scheduler does not reorder the recomputation of unrolled blocks).

    Example:
      >>> lm = jaxdl.models.TransformerLM(
      ...     vocab_size=11, num_layers=1, d_model=16, num_heads=2, mlp_dim=32, max_len=8
      ... )
      >>> tokens = np.zeros((2, 8), np.int32)
      >>> variables = lm.init(jax.random.key(0), tokens)
      >>> lm.apply(variables, tokens).shape
      (2, 8, 11)
      >>> lm.generate(variables["params"], [[1, 2]], 3, temperature=0.0).shape  # 2 + 3
      (1, 5)
    """

    vocab_size: int = 1000
    num_layers: int = 4
    d_model: int = 256
    num_heads: int = 4
    mlp_dim: int = 1024
    max_len: int = 128
    dropout_rate: float = 0.0
    positions: str = "learned"
    decode: bool = False
    remat: bool = False
    scan_layers: bool = False

    def __post_init__(self):
        _check_sizes(self)
        super().__post_init__()

    @nn.compact
    def __call__(self, tokens: jax.Array, train: bool = False) -> jax.Array:
        _check_tokens(tokens, self.vocab_size)
        tokens = jnp.asarray(tokens).astype(jnp.int32)
        x = _Embedding(
            self.vocab_size, self.d_model, self.max_len, self.positions, self.decode, name="embed"
        )(tokens)
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        if self.scan_layers:
            block = _ScannedBlock
            if self.remat and not self.decode:
                block = nn.remat(block, prevent_cse=False)
            x, _ = nn.scan(
                block,
                variable_axes={"params": 0, "cache": 0},
                split_rngs={"params": True, "dropout": True},
                length=self.num_layers,
                metadata_params={nn.PARTITION_NAME: None},
            )(
                self.num_heads, self.mlp_dim, self.dropout_rate, self.decode, self.max_len, train,
                name="blocks",
            )(x)  # fmt: skip
            return kernels.Dense(self.vocab_size, name="output")(nn.LayerNorm(name="norm")(x))
        for i in range(self.num_layers):
            x = _block(self.remat and not self.decode)(
                self.num_heads,
                self.mlp_dim,
                self.dropout_rate,
                causal=True,
                decode=self.decode,
                max_len=self.max_len,
                name=f"block{i}",
            )(x, None, train)
        return kernels.Dense(self.vocab_size, name="output")(nn.LayerNorm(name="norm")(x))

    @nn.nowrap
    def generate(
        self,
        params,
        prompt,
        max_new_tokens: int,
        *,
        rng=None,
        temperature: float = 1.0,
        top_k: int | None = None,
    ) -> jax.Array:
        """Continue ``prompt`` (B, P) by ``max_new_tokens`` tokens -> (B, P + max_new_tokens).

        ``temperature=0`` picks the most likely token; otherwise tokens are sampled from
        ``softmax(logits / temperature)``, restricted to the ``top_k`` most likely if given.
        ``prompt`` holds at least one token id in [0, vocab_size) per row; ``temperature``
        is finite and >= 0, ``top_k`` None or an int in [1, vocab_size], and
        ``P + max_new_tokens <= max_len``.
        """
        if not _checks.is_concrete(prompt):
            raise TypeError("prompt: expected concrete token ids, got a traced value")
        ids = _checks.check_token_ids(prompt, self.vocab_size, "prompt")
        if ids.ndim != 2 or 0 in ids.shape:
            raise ValueError(
                f"prompt: expected token ids (B, P) with B, P >= 1, got shape {ids.shape}"
            )
        max_new_tokens = _checks.check_int(max_new_tokens, "max_new_tokens", minimum=0)
        temperature = _checks.check_number(temperature, "temperature", 0.0)
        f32 = np.finfo(np.float32)
        if temperature > 0 and not float(f32.tiny) <= temperature <= float(
            f32.max
        ):  # logits are float32
            raise ValueError(
                f"temperature: expected 0 (greedy) or a number in [{f32.tiny:.3g}, "
                f"{f32.max:.3g}], got {temperature!r}"
            )
        if top_k is not None:
            top_k = _checks.check_int(top_k, "top_k", 1, self.vocab_size)
        prompt = jnp.asarray(ids)
        if prompt.shape[1] + max_new_tokens > self.max_len:
            raise ValueError(
                f"max_new_tokens: a prompt of {prompt.shape[1]} tokens + {max_new_tokens} new "
                f"ones exceeds max_len={self.max_len}"
            )
        if max_new_tokens < 1:
            return prompt
        rng = jax.random.key(0) if rng is None else rng
        return _generate(
            self.clone(decode=True, dropout_rate=0.0),
            params,
            prompt,
            max_new_tokens,
            rng,
            float(temperature),
            top_k,
        )


def _sample(logits, key, temperature: float, top_k: int | None):
    if temperature == 0.0:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    logits = logits / temperature
    if top_k is not None:
        kth = jax.lax.top_k(logits, top_k)[0][..., -1:]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)


@functools.partial(jax.jit, static_argnums=(0, 3, 5, 6))
def _generate(decoder, params, prompt, max_new_tokens, rng, temperature, top_k):
    shapes = jax.eval_shape(decoder.init, jax.random.key(0), prompt[:, :1])["cache"]
    cache = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    keys = jax.random.split(rng, max_new_tokens)
    logits, state = decoder.apply({"params": params, "cache": cache}, prompt, mutable=["cache"])
    first = _sample(logits[:, -1], keys[0], temperature, top_k)

    def step(carry, key):
        cache, token = carry
        logits, state = decoder.apply(
            {"params": params, "cache": cache}, token[:, None], mutable=["cache"]
        )
        return (state["cache"], _sample(logits[:, -1], key, temperature, top_k)), token

    (_, last), tokens = jax.lax.scan(step, (state["cache"], first), keys[1:])
    return jnp.concatenate([prompt, tokens.T, last[:, None]], axis=1)
