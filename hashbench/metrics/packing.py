"""Binary codes: sign convention, bit packing, Hamming distance, input normalisation.

Convention: a real-valued code entry ``>= 0`` is bit ``1`` (the ``+1`` code), ``< 0`` is bit ``0``
(``-1``); so ``sign(0) = +1``. Packed codes are ``uint8`` tensors of shape ``(N, ceil(m / 8))``,
8 bits a byte, most significant bit first (the layout of ``numpy.packbits``); the padding bits of the
last byte are zero.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "as_packed",
    "as_pm1",
    "hamming_distance",
    "normalize_labels",
    "pack_codes",
    "popcount_table",
    "unpack_codes",
]

_BIT_WEIGHTS = (128, 64, 32, 16, 8, 4, 2, 1)


def _n_bytes(bits: int) -> int:
    return (bits + 7) // 8


def pack_codes(codes: Tensor) -> Tensor:
    """Pack ``(N, m)`` real codes into ``(N, ceil(m/8))`` uint8 (entries >= 0 are bit 1)."""
    if codes.dim() != 2:
        raise ValueError(f"codes must be 2-D (N, bits), got shape {tuple(codes.shape)}")
    if codes.dtype == torch.bool:
        raise ValueError("codes must be real-valued (±1 or continuous); got a bool tensor")
    n, bits = codes.shape
    b = (codes >= 0).to(torch.uint8)
    pad = _n_bytes(bits) * 8 - bits
    if pad:
        b = torch.nn.functional.pad(b, (0, pad))
    weights = torch.tensor(_BIT_WEIGHTS, dtype=torch.uint8, device=codes.device)
    # each byte is a sum of distinct powers of two, so the uint8 sum cannot overflow
    return (b.view(n, -1, 8) * weights).sum(dim=2, dtype=torch.uint8)


def unpack_codes(packed: Tensor, bits: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Inverse of :func:`pack_codes`: ``(N, ceil(bits/8))`` uint8 -> ``(N, bits)`` ±1 of ``dtype``."""
    _check_packed(packed, bits)
    weights = torch.tensor(_BIT_WEIGHTS, device=packed.device)
    table = torch.where((torch.arange(256, device=packed.device)[:, None] & weights) != 0, 1, -1)
    return table.to(dtype)[packed.long()].view(packed.shape[0], -1)[:, :bits]  # one gather: (N, bytes, 8)


def _check_packed(packed: Tensor, bits: int) -> None:
    if packed.dtype != torch.uint8:
        raise ValueError(f"packed codes must be uint8, got {packed.dtype}")
    if packed.dim() != 2:
        raise ValueError(f"packed codes must be 2-D (N, ceil(bits/8)), got shape {tuple(packed.shape)}")
    if bits is None or bits < 1:
        raise ValueError("packed codes need the number of bits: pass bits=m")
    if packed.shape[1] != _n_bytes(bits):
        raise ValueError(
            f"packed codes have {packed.shape[1]} bytes per code, but bits={bits} needs {_n_bytes(bits)}"
        )


def as_packed(codes: Tensor, bits: int | None = None) -> tuple[Tensor, int]:
    """Normalise codes to ``(packed uint8, bits)``.

    ``codes`` is either real ``(N, m)`` (±1 or continuous, any real dtype) or packed uint8 with
    ``bits`` given. A uint8 tensor is always taken as packed (it cannot hold -1).
    """
    if not isinstance(codes, Tensor):
        codes = torch.as_tensor(codes)
    if codes.dtype == torch.uint8:
        if bits is None:
            raise ValueError("uint8 codes are taken as bit-packed and need bits=m (the code length)")
        _check_packed(codes, bits)
        return codes, int(bits)
    if codes.dim() != 2:
        raise ValueError(f"codes must be 2-D (N, bits), got shape {tuple(codes.shape)}")
    if bits is not None and codes.shape[1] != bits:
        raise ValueError(f"codes have {codes.shape[1]} columns but bits={bits}")
    return pack_codes(codes), int(codes.shape[1])


def as_pm1(codes: Tensor, bits: int | None = None, dtype: torch.dtype = torch.float32) -> tuple[Tensor, int]:
    """Normalise codes (packed or real) to a ``(N, m)`` ±1 tensor of ``dtype``; returns ``(codes, m)``."""
    if not isinstance(codes, Tensor):
        codes = torch.as_tensor(codes)
    if codes.dtype == torch.uint8:
        packed, bits = as_packed(codes, bits)
        return unpack_codes(packed, bits, dtype), bits
    if codes.dim() != 2:
        raise ValueError(f"codes must be 2-D (N, bits), got shape {tuple(codes.shape)}")
    if bits is not None and codes.shape[1] != bits:
        raise ValueError(f"codes have {codes.shape[1]} columns but bits={bits}")
    one = torch.ones((), dtype=dtype, device=codes.device)
    return torch.where(codes >= 0, one, -one), int(codes.shape[1])


def popcount_table(device: torch.device | str | None = None) -> Tensor:
    """``(256,)`` int64 lookup table: number of set bits of each byte value."""
    x = torch.arange(256, device=device)
    return ((x[:, None] >> torch.arange(8, device=device)) & 1).sum(1)


def hamming_distance(
    packed_a: Tensor, packed_b: Tensor, bits: int | None = None, chunk_bytes: int = 1 << 26
) -> Tensor:
    """All-pairs Hamming distances ``(Na, Nb)`` int64 between two sets of codes.

    Computed as popcount(a XOR b) on the packed bytes with a byte lookup table, chunked over the
    rows of ``a`` so that the ``(rows, Nb, n_bytes)`` XOR buffer stays below ``chunk_bytes``.
    Real (±1 / continuous) inputs are packed first, so any mix of packed and real inputs works.
    """
    a, bits_a = as_packed(packed_a, bits)
    b, bits_b = as_packed(packed_b, bits if bits is not None else bits_a)
    if bits_a != bits_b:
        raise ValueError(f"code lengths differ: {bits_a} vs {bits_b}")
    table = popcount_table(a.device).to(torch.int16)
    n_bytes = a.shape[1]
    rows = max(1, chunk_bytes // max(1, b.shape[0] * n_bytes))
    out = torch.empty(a.shape[0], b.shape[0], dtype=torch.int64, device=a.device)
    for s in range(0, a.shape[0], rows):
        x = torch.bitwise_xor(a[s : s + rows, None, :], b[None, :, :])
        out[s : s + rows] = table[x.long()].sum(dim=2)
    return out


def normalize_labels(query_labels: Tensor, database_labels: Tensor) -> tuple[Tensor, Tensor, bool]:
    """Bring query and database labels to a common form.

    Returns ``(yq, yx, single)``: when both are 1-D integer class indices, ``single`` is True and
    ``yq``/``yx`` are int64 class indices; otherwise both are ``(N, C)`` float32 0/1 multi-hot (a 1-D
    side is one-hot encoded with the other side's C). Relevance is ``yq . yx > 0``.
    """
    yq = torch.as_tensor(query_labels)
    yx = torch.as_tensor(database_labels)
    for name, y in (("query_labels", yq), ("database_labels", yx)):
        if y.dim() not in (1, 2):
            raise ValueError(f"{name} must be (N,) class indices or (N, C) multi-hot, got {tuple(y.shape)}")
        if y.dim() == 1 and (y.is_floating_point() or y.is_complex()):
            raise ValueError(f"1-D {name} must be integer class indices, got {y.dtype}")
    if yq.dim() == 1 and yx.dim() == 1:
        return yq.long(), yx.long(), True
    if yq.dim() == 2 and yx.dim() == 2 and yq.shape[1] != yx.shape[1]:
        raise ValueError(f"label widths differ: {yq.shape[1]} vs {yx.shape[1]}")
    c = yq.shape[1] if yq.dim() == 2 else yx.shape[1]
    if yq.dim() == 1:
        yq = torch.nn.functional.one_hot(yq.long(), c)
    if yx.dim() == 1:
        yx = torch.nn.functional.one_hot(yx.long(), c)
    return (yq != 0).float(), (yx != 0).float(), False
