"""Similarity losses: each returns named terms (see :class:`HashLoss`).

Pairwise: :class:`DPSH`, :class:`DSH`, :class:`HashNet`, :class:`DSDH`, :class:`DCH`, :class:`DBDH`;
triplet: :class:`DTSH`; pointwise: :class:`GreedyHash`, :class:`CSQ`, :class:`DPN`,
:class:`OrthoHash`, :class:`CE`.
Second round: pairwise :class:`DHN`, :class:`IDHN` (soft multi-label similarity), :class:`LCDSH`,
:class:`DFH` (margin and class centres), :class:`DSHSD` (with a classifier); asymmetric :class:`ADSH`.
"""

from hashbench.losses.adsh import ADSH
from hashbench.losses.base import HashLoss, TrainingContext
from hashbench.losses.centers import hash_centers
from hashbench.losses.classification import CE, GreedyHash
from hashbench.losses.csq import CSQ
from hashbench.losses.dbdh import DBDH
from hashbench.losses.dch import DCH
from hashbench.losses.dfh import DFH
from hashbench.losses.dhd import DHD
from hashbench.losses.dhn import DHN
from hashbench.losses.dpn import DPN
from hashbench.losses.dpsh import DPSH
from hashbench.losses.dsdh import DSDH
from hashbench.losses.dsh import DSH
from hashbench.losses.dshsd import DSHSD
from hashbench.losses.dtsh import DTSH
from hashbench.losses.hashnet import HashNet
from hashbench.losses.hyp2 import HyP2
from hashbench.losses.idhn import IDHN
from hashbench.losses.jmlh import JMLH
from hashbench.losses.lcdsh import LCDSH
from hashbench.losses.mdsh import MDSH
from hashbench.losses.orthohash import OrthoHash
from hashbench.losses.pairwise import CodeBank, PairwiseLoss
from hashbench.losses.psldh import PSLDH
from hashbench.losses.sdhc import SDHC

__all__ = [
    "ADSH",
    "CE",
    "CSQ",
    "DBDH",
    "DCH",
    "DFH",
    "DHD",
    "DHN",
    "DPN",
    "DPSH",
    "DSDH",
    "DSH",
    "DSHSD",
    "DTSH",
    "IDHN",
    "JMLH",
    "LCDSH",
    "MDSH",
    "PSLDH",
    "SDHC",
    "CodeBank",
    "GreedyHash",
    "HashLoss",
    "HashNet",
    "HyP2",
    "OrthoHash",
    "PairwiseLoss",
    "TrainingContext",
    "hash_centers",
]
