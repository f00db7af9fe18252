"""Quantization regularizers: ``quantizer(h) -> 0-d tensor`` on a batch of continuous codes h (N, m).

Plug-ins (section 2 of docs/methods.md): :class:`HSWD`, :class:`SWD`, :class:`OT`.
Original terms of the methods (section 3), usable with any loss: :class:`SignL2`, :class:`UnitL1`,
:class:`Cubic`, :class:`Cauchy`, :class:`TanhSquared`, :class:`BitBalance`, :class:`LogCosh`,
:class:`CosineToSign`, :class:`SoftsignUnitL1`, :class:`LocalityConstrained`. All return the *unweighted*
term; the weight λ lives in the config.
"""

from .base import Quantizer, compute_dtype, no_autocast, sample_target, sign_pm1
from .losses_b_terms import LocalityConstrained, SoftsignUnitL1
from .original import (
    BitBalance,
    Cauchy,
    CosineToSign,
    Cubic,
    LogCosh,
    SignL2,
    TanhSquared,
    UnitL1,
    cosine_to_ones,
)
from .wasserstein import (
    HSWD,
    OT,
    SWD,
    hswd_exact,
    hswd_sampled,
    ot_loss,
    random_directions,
    sliced_w2,
    w2_columns,
    w2_columns_to_balanced,
)

__all__ = [
    "HSWD",
    "OT",
    "SWD",
    "BitBalance",
    "Cauchy",
    "CosineToSign",
    "Cubic",
    "LocalityConstrained",
    "LogCosh",
    "Quantizer",
    "SignL2",
    "SoftsignUnitL1",
    "TanhSquared",
    "UnitL1",
    "compute_dtype",
    "cosine_to_ones",
    "hswd_exact",
    "hswd_sampled",
    "no_autocast",
    "ot_loss",
    "random_directions",
    "sample_target",
    "sign_pm1",
    "sliced_w2",
    "w2_columns",
    "w2_columns_to_balanced",
]
