"""A trained hashing model with the transform it was evaluated with: images → packed codes."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader

from hashbench.data.base import EvalRole, RetrievalDataModule
from hashbench.data.listfile import IMAGE_ERRORS
from hashbench.errors import UserError
from hashbench.metrics import pack_codes
from hashbench.module import HashingModule
from hashbench.retrieval.runfolder import run_files

ImageLike = str | Path | Image.Image
"""A query or database image: a file or a PIL image of any size and mode."""


def file_digest(path: Path) -> str:
    """SHA-256 of a file, hex: identifies a checkpoint wherever it is moved."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def open_image(path: str | Path) -> Image.Image:
    """The decoded image at ``path``, or a UserError naming it."""
    try:
        with Image.open(path) as file:
            file.load()
            return file
    except FileNotFoundError:
        raise UserError(f"the image {path} does not exist") from None
    except IMAGE_ERRORS as error:
        raise UserError(f"cannot read the image {path} ({type(error).__name__}: {error})") from None


def load_datamodule(config: Path) -> RetrievalDataModule:
    """The ``data`` section of a run's resolved config, instantiated (not set up)."""
    from jsonargparse import ArgumentParser

    section = (yaml.safe_load(config.read_text()) or {}).get("data")
    if section is None:
        raise UserError(f"{config} has no data section: is it a hashbench config?")
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(RetrievalDataModule, "data")
    try:
        return parser.instantiate_classes(parser.parse_object({"data": section})).data
    except Exception as error:  # jsonargparse reports a bad section in many types
        raise UserError(f"the data section of {config} is invalid: {error}") from None


class Encoder:
    """Images → packed codes ``sign(h)`` (sign(0) = +1), uint8 ``(N, ceil(bits/8))`` MSB first, on the CPU.

    Args:
        model: the trained module (put in eval mode here).
        datamodule: its DataModule (not set up): gives the evaluation transform, and the splits on setup.
        checkpoint: the checkpoint file the weights came from (recorded with an index).
        config: the resolved config the DataModule came from.
    """

    def __init__(
        self, model: HashingModule, datamodule: RetrievalDataModule, checkpoint: Path, config: Path
    ) -> None:
        self.model = model.eval().cpu()
        self.datamodule = datamodule
        self.checkpoint = Path(checkpoint)
        self.config = Path(config)
        self._digest: str | None = None
        self._transform: Callable[[Image.Image], Tensor] | None = None
        self._set_up = False

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path, config: str | Path) -> Encoder:
        """The model of ``checkpoint`` with the DataModule of the resolved ``config`` (``config.yaml``)."""
        checkpoint, config = Path(checkpoint), Path(config)
        for path in (checkpoint, config):
            if not path.is_file():
                raise UserError(f"{path} does not exist")
        try:
            with warnings.catch_warnings():  # the module keeps its parts as hyper-parameters on purpose
                warnings.filterwarnings("ignore", message=r"Attribute '\w+' is an instance of `nn.Module`")
                model = HashingModule.load_from_checkpoint(checkpoint, map_location="cpu")
        except (RuntimeError, KeyError, OSError) as error:
            raise UserError(f"cannot load the checkpoint {checkpoint} ({error})") from None
        return cls(model, load_datamodule(config), checkpoint, config)

    @classmethod
    def from_run(cls, run_dir: str | Path) -> Encoder:
        """The final checkpoint of the run folder ``run_dir`` with its config."""
        config, checkpoint = run_files(run_dir)
        return cls.from_checkpoint(checkpoint, config)

    @property
    def bits(self) -> int:
        return self.model.bits

    @property
    def digest(self) -> str:
        if self._digest is None:
            self._digest = file_digest(self.checkpoint)
        return self._digest

    def transform(self, image: Image.Image) -> Tensor:
        """A PIL image of any size and mode → the model's input, as the run's query/database items."""
        if self._transform is None:
            try:
                self._transform = self.datamodule.image_transform()
            except NotImplementedError as error:
                raise UserError(f"this run's data cannot take image files: {error}") from None
        return self._transform(image)

    def set_up(self) -> RetrievalDataModule:
        """The DataModule with its splits ready."""
        if not self._set_up:
            self.datamodule.setup("predict")
            self._set_up = True
        return self.datamodule

    @torch.inference_mode()
    def encode_inputs(self, inputs: Tensor) -> np.ndarray:
        """Model inputs ``(N, C, H, W)`` → packed codes."""
        return pack_codes(self.model.loss.codes(*self.model(inputs))).numpy()

    def encode(
        self, images: Sequence[ImageLike], batch_size: int = 256, progress: Callable | None = None
    ) -> np.ndarray:
        """Images (files or PIL images) → packed codes ``(N, ceil(bits/8))`` uint8.

        ``progress``, if given, is called with the number of images done after each batch.
        """
        parts = [np.zeros((0, (self.bits + 7) // 8), dtype=np.uint8)]
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            pictures = [item if isinstance(item, Image.Image) else open_image(item) for item in batch]
            parts.append(self.encode_inputs(torch.stack([self.transform(p) for p in pictures])))
            if progress is not None:
                progress(len(batch))
        return np.concatenate(parts)

    def encode_split(
        self, role: EvalRole, progress: Callable | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The query or database split of the run's data → packed codes, positions in the split ``(N,)``
        and multi-hot labels ``(N, C)`` uint8, through the DataModule's own loader."""
        datamodule = self.set_up()
        loader: DataLoader = datamodule.predict_dataloader()[0 if role == "query" else 1]
        codes, positions, labels = [], [], []
        batch: Iterable[Any]
        for batch in loader:
            inputs, batch_labels, indices = batch
            codes.append(self.encode_inputs(datamodule.model_input(inputs)))
            labels.append((batch_labels != 0).to(torch.uint8).numpy())
            positions.append(torch.as_tensor(indices).numpy())
            if progress is not None:
                progress(len(inputs))
        return np.concatenate(codes), np.concatenate(positions), np.concatenate(labels)
