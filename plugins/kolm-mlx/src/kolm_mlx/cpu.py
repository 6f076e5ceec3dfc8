"""mlx-lm models on a Linux CPU, made usable: the `mlx[cpu]` wheel sends float32 matmuls to the
reference (netlib) BLAS it bundles (`mlx_cpu.libs/libblas-*.so.3.10.0`), ~2 GFLOP/s here, and its
float16 and quantized kernels are no faster. So each Linear, and each Embedding used as the output
projection, computes `x @ weight.T` through numpy's BLAS (OpenBLAS) on the same float32 weights,
the quantized ones dequantized exactly as mlx's float32 `quantized_matmul` does. Everything else
(attention, norms, RoPE, the KV cache) is mlx-lm's own code and mlx's own kernels. Imported by
`runtime.load_model` only, once mlx is (its classes need mlx at import)."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_map, tree_map_with_path


def blas_matmul(x: mx.array, weight: mx.array) -> mx.array:
    """`x @ weight.T` by numpy's BLAS; `weight` is float32 (out x in), read without a copy."""
    a = np.asarray(x.astype(mx.float32))
    w = np.asarray(weight)
    return mx.array((a.reshape(-1, a.shape[-1]) @ w.T).reshape(*a.shape[:-1], w.shape[0]))


class BlasLinear(nn.Module):
    """nn.Linear's forward, `x @ weight.T + bias`, with the matmul by numpy's BLAS."""

    def __init__(self, weight: mx.array, bias: mx.array | None) -> None:
        super().__init__()
        self.weight = weight
        if bias is not None:
            self.bias = bias

    def __call__(self, x: mx.array) -> mx.array:
        y = blas_matmul(x, self.weight)
        return y + self.bias if "bias" in self else y


class BlasEmbedding(nn.Module):
    """nn.Embedding: a lookup, and `as_linear` (tied output projection) by numpy's BLAS."""

    def __init__(self, weight: mx.array) -> None:
        super().__init__()
        self.weight = weight

    def __call__(self, x: mx.array) -> mx.array:
        return self.weight[x]

    def as_linear(self, x: mx.array) -> mx.array:
        return blas_matmul(x, self.weight)


def float32_weight(module: nn.Module) -> mx.array:
    """The module's weight as float32; a quantized one dequantized with float32 scales and biases."""
    if isinstance(module, nn.QuantizedLinear | nn.QuantizedEmbedding):
        biases = module.get("biases")
        return mx.dequantize(
            module["weight"],
            module["scales"].astype(mx.float32),
            None if biases is None else biases.astype(mx.float32),
            group_size=module.group_size,
            bits=module.bits,
            mode=module.mode,
        )
    return module["weight"].astype(mx.float32)


def on_blas(module: nn.Module) -> nn.Module:
    """The BLAS-backed float32 twin of a Linear or Embedding (quantized or not); others unchanged."""
    if isinstance(module, nn.Linear | nn.QuantizedLinear):
        bias = module.get("bias")
        return BlasLinear(float32_weight(module), None if bias is None else bias.astype(mx.float32))
    if isinstance(module, nn.Embedding | nn.QuantizedEmbedding):
        return BlasEmbedding(float32_weight(module))
    return module


def use_blas(model: nn.Module) -> None:
    """Swap `model`'s Linears and Embeddings for their BLAS-backed twins and make every other
    float16 or bfloat16 parameter float32, in place. numpy's BLAS gets one thread: with two on two
    cores, a SmolLM2-135M decode step took 0.5 s instead of 0.1-0.17 s whenever another process
    was busy, and was no faster when none was."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
    model.update_modules(tree_map_with_path(lambda _, m: on_blas(m), model.leaf_modules(), is_leaf=nn.Module.is_module))
    halves = (mx.float16, mx.bfloat16)
    model.update(tree_map(lambda v: v.astype(mx.float32) if v.dtype in halves else v, model.parameters()))
    mx.eval(model.parameters())
