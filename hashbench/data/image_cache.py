"""The decoded-image cache: a list's images after their fixed transform, kept on disk in one file.

An image is decoded and given its deterministic transform (resize; for evaluation also the centre crop) the
first time any loader process reads it; from then on every process reads the stored uint8 pixels instead,
and only the random part of the transform (crop, flip) runs per read.

One file a cache, ``<name>-<key>.cache``:

* 8 bytes ``HBIMGC01``; 8 bytes little-endian length ``L``; ``L`` bytes of JSON (``count``, ``description``,
  ``key``);
* ``count × 2`` int64, each image's stored ``(height, width)`` (``0, 0``: never stored);
* ``count`` bytes, 1 once the image is stored;
* from the next multiple of 4096, the images back to back, each ``height × width × 3`` uint8 (HWC).

The file is sparse until filled. The key hashes the description (the transform and the torchvision version)
and every image's absolute path, size and modification time: a changed list, image or transform gets a new
file, and the old one can be deleted. Processes share the file through the page cache: a slot's pixels
are written before its flag, and a loader never reads and writes the same image in one epoch. Two
processes that create the same cache at the same moment each write a whole file and the later replaces
the earlier: the work of the first is lost, its data is never wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hashbench.errors import UserError

MAGIC = b"HBIMGC01"
ALIGN = 4096
CHANNELS = 3


def cache_key(description: str, paths: Sequence[Path]) -> str:
    """Hex SHA-256 of ``description`` and each path's absolute name, size and modification time (ns)."""
    digest = hashlib.sha256(description.encode())
    for path in paths:
        try:
            stat = path.stat()
            size, modified = stat.st_size, stat.st_mtime_ns
        except OSError:
            size, modified = -1, -1
        digest.update(f"\n{path.resolve()}\t{size}\t{modified}".encode())
    return digest.hexdigest()


class ImageCache:
    """uint8 RGB images of one list, by slot, in a file under ``folder`` (the module docstring's layout).

    Args:
        folder: where the file lives (created if needed).
        name: the file name's prefix (e.g. ``train``).
        description: what the stored images are (the fixed transform); part of the key.
        paths: the image files, one a slot.
        shapes: called only when the file is created: ``(count, 2)`` int ``(height, width)`` each slot will
            hold (``0, 0`` for an image that cannot be stored).

    Raises:
        UserError: ``folder`` cannot be written, or has not the free space the filled cache needs.
    """

    def __init__(
        self,
        folder: Path,
        name: str,
        description: str,
        paths: Sequence[Path],
        shapes: Callable[[], np.ndarray],
    ) -> None:
        self.count = len(paths)
        key = cache_key(description, paths)
        self.file = folder / f"{name}-{key[:16]}.cache"
        if not self.file.is_file():
            self._create(folder, {"count": self.count, "description": description, "key": key}, shapes())
        self._header_length, self.shapes, self.offsets, self.size = self._read_layout()
        self._maps: tuple[int, np.ndarray, np.ndarray] | None = None

    def _create(self, folder: Path, header: dict[str, Any], shapes: np.ndarray) -> None:
        shapes = np.asarray(shapes, dtype=np.int64).reshape(self.count, 2)
        _, total = _extent(len(_encoded(header)), shapes)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            free = shutil.disk_usage(folder).free
            if total > free:
                raise UserError(
                    f"image cache: {self.file.name} needs {total / 1e9:.1f} GB once filled, but {folder} has "
                    f"{free / 1e9:.1f} GB free. Set image_cache to a folder on a larger disk, or cache fewer "
                    "splits (image_cache_splits: [train])."
                )
            temporary = self.file.with_name(f"{self.file.name}.{os.getpid()}.tmp")
            with open(temporary, "wb") as file:
                encoded = _encoded(header)
                file.write(MAGIC + struct.pack("<Q", len(encoded)) + encoded)
                file.write(shapes.astype("<i8").tobytes())
                file.truncate(total)
            os.replace(temporary, self.file)
        except OSError as error:
            raise UserError(
                f"image cache: cannot write in the folder {folder} ({error}); set image_cache to a folder "
                "you can write"
            ) from None

    def _read_layout(self) -> tuple[int, np.ndarray, np.ndarray, int]:
        """From the file: the JSON header's length, the shapes ``(count, 2)``, each image's byte offset
        ``(count,)`` and the file's size in bytes."""
        with open(self.file, "rb") as file:
            start = file.read(16)
            valid = len(start) == 16 and start[:8] == MAGIC
            header_length = struct.unpack("<Q", start[8:])[0] if valid else 0
            file.seek(16 + header_length)
            table = file.read(self.count * 16)
        if not valid or len(table) < self.count * 16:
            raise UserError(
                f"image cache: {self.file} is not an image cache file (or is truncated); delete it and it "
                "is built again"
            )
        shapes = np.frombuffer(table, dtype="<i8").reshape(self.count, 2).copy()
        data_start, size = _extent(header_length, shapes)
        offsets = data_start + np.concatenate(([0], np.cumsum(_sizes(shapes))[:-1])).astype(np.int64)
        return header_length, shapes, offsets, size

    def _mapped(self) -> tuple[np.ndarray, np.ndarray]:
        """This process's maps of the flags ``(count,)`` and of the whole file, made on first use in each
        process."""
        if self._maps is None or self._maps[0] != os.getpid():
            flags_at = 16 + self._header_length + self.count * 16
            self._maps = (
                os.getpid(),
                np.memmap(self.file, dtype=np.uint8, mode="r+", offset=flags_at, shape=(self.count,)),
                np.memmap(self.file, dtype=np.uint8, mode="r+", shape=(self.size,)),
            )
        return self._maps[1], self._maps[2]

    def get(self, slot: int) -> Tensor | None:
        """The stored image of ``slot``, uint8 ``(3, H, W)`` (a view of the file, channels-last in
        memory), or ``None`` if not stored yet."""
        flags, data = self._mapped()
        if not flags[slot]:
            return None
        height, width = (int(side) for side in self.shapes[slot])
        start = int(self.offsets[slot])
        pixels = data[start : start + height * width * CHANNELS].reshape(height, width, CHANNELS)
        return torch.from_numpy(pixels).permute(2, 0, 1)

    def put(self, slot: int, image: Tensor) -> None:
        """Store uint8 ``(3, H, W)`` ``image`` in ``slot``; an image of another shape than the slot's (one
        whose header and pixels disagree) is not stored, and is prepared again on every read."""
        flags, data = self._mapped()
        if tuple(image.shape) != (CHANNELS, *(int(side) for side in self.shapes[slot])):
            return
        start = int(self.offsets[slot])
        pixels = image.permute(1, 2, 0).contiguous().numpy().reshape(-1)
        data[start : start + pixels.size] = pixels
        flags[slot] = 1

    def filled(self) -> int:
        """How many slots are stored."""
        flags, _ = self._mapped()
        return int(np.count_nonzero(flags))

    def nbytes(self) -> int:
        """The pixels' bytes once every slot is stored."""
        return int(_sizes(self.shapes).sum())

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the memory maps (e.g. for spawned workers): each process maps the file itself."""
        return {**self.__dict__, "_maps": None}


def _encoded(header: dict[str, Any]) -> bytes:
    return json.dumps(header, sort_keys=True).encode()


def _sizes(shapes: np.ndarray) -> np.ndarray:
    return np.asarray(shapes[:, 0], dtype=np.int64) * np.asarray(shapes[:, 1], dtype=np.int64) * CHANNELS


def _extent(header_length: int, shapes: np.ndarray) -> tuple[int, int]:
    """(byte offset of the first image, file size) for a header of ``header_length`` bytes."""
    end_of_flags = 16 + header_length + len(shapes) * 16 + len(shapes)
    data_start = -(-end_of_flags // ALIGN) * ALIGN
    return data_start, data_start + int(_sizes(shapes).sum())
