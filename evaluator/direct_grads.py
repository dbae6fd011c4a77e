"""Autograd writes embedding gradients straight into the shared file, so the worker need not copy them.

On the recall tracks the gradients are mostly three embedding tables (3 x 4160 x 64 floats, 3.2 MB), and
copying them into the shared file each step was a third of what isolation cost. While a candidate's
session runs, aten's CPU kernel for `embedding_dense_backward` is replaced by this one, which does the
native kernel's arithmetic (zero the table, then add each looked-up row's gradient in the order of the
indices) into a gradient slot the session hands out, or into fresh zeros where it has none; autograd then
makes that slot the parameter's `.grad` as it would any fresh gradient. tests/test_direct_grads.py checks
it against the native kernel bit for bit, padding and frequency scaling included, in float32 and float64
(the benchmark's models are float32); aten sums half and bfloat16 tables otherwise, so a model with
parameters of those dtypes keeps the native kernel and has its gradients copied.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator

import torch

# (shape, dtype) -> a tensor of that shape the gradient may be written into, or None
Claim = Callable[[tuple[int, int], torch.dtype], "torch.Tensor | None"]

EXACT_DTYPES = (torch.float32, torch.float64)  # where this kernel's sums are aten's, bit for bit

_claim: Claim | None = None


def embedding_dense_backward(grad_output: torch.Tensor, indices: torch.Tensor, num_weights: int, padding_idx: int,
                             scale_grad_by_freq: bool) -> torch.Tensor:
    rows = grad_output.reshape(-1, grad_output.shape[-1])
    index = indices.reshape(-1)
    shape = (num_weights, rows.shape[1])
    table = _claim(shape, rows.dtype) if _claim is not None else None
    if table is None:
        table = rows.new_zeros(shape)
    else:
        table.zero_()
    if padding_idx >= 0:  # the padding row gets no gradient
        keep = index != padding_idx
        index, rows = index[keep], rows[keep]
    if not scale_grad_by_freq:
        return table.index_add_(0, index, rows)
    # each row's sum scaled by 1/(how often its index occurs): a row's entries share one count, so adding
    # count by count keeps every row's order of additions
    counts = torch.bincount(index, minlength=num_weights)[index]
    for count in counts.unique().tolist():
        pick = counts == count
        table.index_add_(0, index[pick], rows[pick], alpha=1.0 / count)
    return table


@contextlib.contextmanager
def into(claim: Claim) -> Iterator[None]:
    """While open, embedding gradients go where `claim` says (one session at a time per process)."""
    global _claim
    if _claim is not None:
        raise RuntimeError("embedding gradients already go to another session")
    library = torch.library.Library("aten", "IMPL")
    try:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "overriding a registered kernel": the point
                library.impl("embedding_dense_backward", embedding_dense_backward, "CPU")
            _claim = claim
        except Exception:  # noqa: BLE001 - a torch that refuses the override keeps its kernel; gradients are copied
            pass
        yield
    finally:
        _claim = None
        getattr(library, "_destroy", lambda: None)()  # the native kernel is back
