"""Quantization regularizers: ``quantizer(h) -> 0-d tensor`` on a batch of continuous codes h (N, m).

Plug-ins (section 2 of docs/methods.md): :class:`HSWD`, :class:`SWD`, :class:`OT`.
Original terms of the methods (section 3), usable with any loss: :class:`SignL2`, :class:`UnitL1`,
:class:`Cubic`, :class:`Cauchy`, :class:`TanhSquared`, :class:`BitBalance`, :class:`LogCosh`,
:class:`CosineToSign`, :class:`SoftsignUnitL1`, :class:`LocalityConstrained`. All return the *unweighted*
term; the weight λ lives in the config.
"""

from .base import Quantizer, sample_target
from .original import (
    BitBalance,
    Cauchy,
    CosineToSign,
    Cubic,
    LogCosh,
    SignL2,
    TanhSquared,
    UnitL1,
)
from .original_extra import BernoulliKL, GaussianBCE, LocalityConstrained, SoftsignUnitL1, UnitL2
from .wasserstein import (
    HSWD,
    OT,
    SWD,
    hswd_exact,
    hswd_sampled,
    ot_loss,
    random_directions,
    sliced_w2,
    sorted_rows,
    w2_columns,
    w2_columns_to_balanced,
)

__all__ = [
    "HSWD",
    "OT",
    "SWD",
    "BernoulliKL",
    "BitBalance",
    "Cauchy",
    "CosineToSign",
    "Cubic",
    "GaussianBCE",
    "LocalityConstrained",
    "LogCosh",
    "Quantizer",
    "SignL2",
    "SoftsignUnitL1",
    "TanhSquared",
    "UnitL1",
    "UnitL2",
    "hswd_exact",
    "hswd_sampled",
    "ot_loss",
    "random_directions",
    "sample_target",
    "sliced_w2",
    "sorted_rows",
    "w2_columns",
    "w2_columns_to_balanced",
]
