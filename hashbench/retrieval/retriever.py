"""``Retriever``: a trained model plus a database of its codes, answering queries by Hamming ranking."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hashbench.errors import UserError
from hashbench.retrieval.codes import DEFAULT_INDEX, CodeIndex, check_packed, pack_signs

if TYPE_CHECKING:  # the model side (torch) is imported when a model is loaded: codes-only use stays light
    from hashbench.retrieval.encoder import Encoder


@dataclass
class SearchResult:
    """Top k per query: ``ids`` (Q lists of k), ``positions`` ``(Q, k)`` int64 (insertion order, -1 where
    an approximate index found fewer), ``distances`` ``(Q, k)`` int32 Hamming distances, and ``labels``
    ``(Q, k, C)`` uint8 of the results (``None`` when the index has none)."""

    ids: list[list[str]]
    positions: np.ndarray
    distances: np.ndarray
    labels: np.ndarray | None


class Retriever:
    """Encode a database once with a trained model, then answer queries by Hamming ranking.

    ``encode(images)`` gives packed codes (uint8, MSB first, sign(0) = +1); ``add`` and ``search`` take
    images (files or PIL images, through the model's evaluation transform) or codes (packed uint8
    ``(N, ceil(bits/8))`` or real ``(N, bits)``, signs taken). Exact search (``BFlat``, the default) ranks
    by ascending distance, ties by insertion order.

    Args:
        encoder: the model side (:class:`~hashbench.retrieval.encoder.Encoder`), or ``None`` for codes only.
        index: the code index; a new empty exact one when ``None`` (needs ``encoder`` for the code length).
        source: what the indexed items are (recorded on save): ``{"kind": "split", "role": "database"}``
            for the run's own data, ``{"kind": "files"}`` for image files.
    """

    def __init__(
        self, encoder: Encoder | None, index: CodeIndex | None = None, source: dict[str, Any] | None = None
    ) -> None:
        if index is None:
            if encoder is None:
                raise ValueError("give an encoder or an index")
            index = CodeIndex(encoder.bits)
        if encoder is not None and encoder.bits != index.bits:
            raise UserError(
                f"the model makes {encoder.bits}-bit codes but the index holds {index.bits}-bit codes"
            )
        self.encoder = encoder
        self.index = index
        self.source = source or {"kind": "files"}

    @classmethod
    def from_run(cls, run_dir: str | Path, index: str = DEFAULT_INDEX) -> Retriever:
        """An empty retriever with the final model of the run folder ``run_dir``."""
        from hashbench.retrieval.encoder import Encoder as ModelEncoder

        encoder = ModelEncoder.from_run(run_dir)
        return cls(encoder, CodeIndex(encoder.bits, index))

    @classmethod
    def from_checkpoint(
        cls, checkpoint: str | Path, config: str | Path, index: str = DEFAULT_INDEX
    ) -> Retriever:
        """An empty retriever with the model of ``checkpoint`` and the data of its resolved ``config``."""
        from hashbench.retrieval.encoder import Encoder as ModelEncoder

        encoder = ModelEncoder.from_checkpoint(checkpoint, config)
        return cls(encoder, CodeIndex(encoder.bits, index))

    @property
    def bits(self) -> int:
        return self.index.bits

    def __len__(self) -> int:
        return len(self.index)

    def encode(self, images: Sequence[Any], progress: Callable | None = None) -> np.ndarray:
        """Images (paths or PIL images) → packed codes ``(N, ceil(bits/8))`` uint8."""
        if self.encoder is None:
            raise UserError("this retriever has no model: give codes, or load it with its model")
        return self.encoder.encode(list(images), progress=progress)

    def _codes(self, images: Sequence[Any] | None, codes: Any) -> np.ndarray:
        if (images is None) == (codes is None):
            raise UserError("give either images or codes")
        if images is not None:
            return self.encode(images)
        array = np.asarray(codes.cpu() if hasattr(codes, "cpu") else codes)
        if array.dtype != np.uint8 and array.ndim == 2 and array.shape[1] == self.bits:
            return pack_signs(array)
        return check_packed(array, self.bits)

    def add(
        self,
        images: Sequence[Any] | None = None,
        codes: Any = None,
        *,
        ids: Sequence[str],
        labels: np.ndarray | None = None,
    ) -> None:
        """Append images or codes with their ``ids`` and optional labels ``(N, C)`` 0/1 (or class indices)."""
        packed = self._codes(images, codes)
        if labels is not None:
            labels = np.asarray(labels)
            if labels.ndim == 1:
                labels = np.eye(int(labels.max()) + 1, dtype=np.uint8)[labels]
        self.index.add(packed, list(ids), labels)

    def search(self, images: Sequence[Any] | None = None, codes: Any = None, k: int = 10) -> SearchResult:
        """The top ``k`` of the index for each query image or code."""
        if not 1 <= k <= len(self):
            raise UserError(f"top k = {k}, but the index holds {len(self)} items: ask for 1 to {len(self)}")
        positions, distances = self.index.search(self._codes(images, codes), k)
        ids = [[self.index.ids[p] if p >= 0 else "" for p in row] for row in positions]
        labels = None if self.index.labels is None else self.index.labels[np.maximum(positions, 0)]
        return SearchResult(ids, positions, distances, labels)

    # ------------------------------------------------------------------------------- files
    def save(self, folder: str | Path) -> Path:
        """Write the index to ``folder`` with the model it came from (checkpoint, its SHA-256, config)."""
        folder = Path(folder)
        metadata: dict[str, Any] = {"source": self.source}
        if self.encoder is not None:
            metadata |= {
                "checkpoint": str(self.encoder.checkpoint.resolve()),
                "checkpoint_sha256": self.encoder.digest,
                "config": str(self.encoder.config.resolve()),
            }
        self.index.save(folder, metadata)
        return folder

    @classmethod
    def load(cls, folder: str | Path, encoder: Encoder | bool | None = True) -> Retriever:
        """The retriever saved in ``folder``.

        ``encoder``: ``True`` loads the model recorded with the index, ``False``/``None`` none (codes
        only), or an :class:`~hashbench.retrieval.encoder.Encoder`, which must be that model.

        Raises:
            UserError: the folder holds no index, or the model does not match it (bits, checkpoint).
        """
        index, meta = CodeIndex.load(Path(folder))
        if encoder is True:
            from hashbench.retrieval.encoder import Encoder as ModelEncoder

            if "checkpoint" not in meta:
                raise UserError(f"the index in {folder} records no model: load it with encoder=False")
            encoder = ModelEncoder.from_checkpoint(meta["checkpoint"], meta["config"])
        if isinstance(encoder, bool) or encoder is None:
            return cls(None, index, meta.get("source"))
        recorded = meta.get("checkpoint_sha256")
        if recorded is not None and encoder.digest != recorded:
            raise UserError(
                f"the index in {folder} was built with the checkpoint {meta.get('checkpoint')}, not with "
                f"{encoder.checkpoint} (their contents differ): rebuild it with `hashbench index RUN_DIR`"
            )
        return cls(encoder, index, meta.get("source"))
