"""Using a trained model: Retriever, the code index, and the index / search commands on a tiny digits run."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import EXPERIMENTS, REPO
from PIL import Image

from hashbench.cli import main
from hashbench.errors import UserError
from hashbench.retrieval import CodeIndex, Retriever
from hashbench.retrieval.codes import check_packed, pack_signs
from hashbench.retrieval.commands import index, search


def stable_topk(queries: np.ndarray, database: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute force: all distances, stable sort (ties by database position)."""
    d = np.unpackbits(queries[:, None, :] ^ database[None, :, :], axis=2).sum(2)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(d, order, 1)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny digits run (1 epoch, 3 batches), indexed once."""
    root = tmp_path_factory.mktemp("runs")
    main(
        ["fit", "--config", str(EXPERIMENTS / "demo.yaml"), "--trainer.max_epochs", "1",
         "--trainer.limit_train_batches", "3", "--trainer.logger", "false",
         "--trainer.enable_progress_bar", "false", "--trainer.callbacks", "[]",
         "--trainer.default_root_dir", str(root)]
    )  # fmt: skip
    (run,) = root.glob("demo/*")
    index(run)
    return run


@pytest.fixture(scope="module")
def retriever(run_dir: Path) -> Retriever:
    return Retriever.load(run_dir / "index")


def test_index_holds_the_database_split_with_its_model(run_dir: Path, retriever: Retriever) -> None:
    meta = json.loads((run_dir / "index" / "index.json").read_text())
    assert meta["bits"] == 32 and meta["count"] == 797 and meta["index"] == "BFlat"
    assert Path(meta["checkpoint"]).parent == run_dir / "checkpoints" and len(meta["checkpoint_sha256"]) == 64
    assert meta["source"] == {"kind": "split", "role": "database", "dataset": "Digits"}
    assert retriever.index.codes.shape == (797, 4) and retriever.index.labels.shape == (797, 10)
    assert retriever.index.ids[:2] == ["database/0", "database/1"]


def test_search_ranks_by_distance_ties_by_insertion_order(retriever: Retriever) -> None:
    """Digits codes tie a lot (few distinct codes): the top k must be a stable sort of all distances."""
    queries, _, _ = retriever.encoder.encode_split("query")
    result = retriever.search(codes=queries, k=50)
    positions, distances = stable_topk(queries, retriever.index.codes, 50)
    np.testing.assert_array_equal(result.positions, positions)
    np.testing.assert_array_equal(result.distances, distances)
    assert result.ids[0][0] == retriever.index.ids[positions[0, 0]]


def test_encode_images_as_the_evaluation_did(retriever: Retriever) -> None:
    """A split item's picture goes through the model's own transform to the split's code."""
    datamodule = retriever.encoder.set_up()
    pictures = [datamodule.picture("database", p) for p in range(20)]
    np.testing.assert_array_equal(retriever.encode(pictures), retriever.index.codes[:20])


def test_digit_png_through_the_transform_matches_the_data(retriever: Retriever, tmp_path: Path) -> None:
    datamodule = retriever.encoder.set_up()
    datamodule.picture("query", 5).save(tmp_path / "digit.png")
    with Image.open(tmp_path / "digit.png") as png:
        assert png.size == (8, 8) and png.mode == "L"
        x = datamodule.image_transform()(png)
    np.testing.assert_allclose(x.numpy(), datamodule.query_dataset[5][0].numpy(), atol=0.01)


def test_twelve_bit_codes_are_padded_with_zero_bits() -> None:
    rng = np.random.default_rng(0)
    real = rng.standard_normal((300, 12))
    real[0, 0] = 0.0  # sign(0) = +1
    codes = pack_signs(real)
    assert codes.shape == (300, 2) and not np.any(codes[:, 1] & 0x0F) and codes[0, 0] & 0x80
    code_index = CodeIndex(12)
    code_index.add(codes, [str(i) for i in range(300)])
    positions, distances = code_index.search(codes[:7], 40)
    reference = np.abs((real[:7, None, :] >= 0).astype(int) - (real[None, :, :] >= 0)).sum(2)
    np.testing.assert_array_equal(distances, np.take_along_axis(reference, positions, 1))
    np.testing.assert_array_equal(positions, np.argsort(reference, axis=1, kind="stable")[:, :40])
    with pytest.raises(UserError, match="padding bits"):
        check_packed(codes | 1, 12)


def test_faiss_flat_ties_by_index_under_heavy_ties() -> None:
    """8-bit codes over 3,000 items: every distance bucket holds hundreds of ties."""
    rng = np.random.default_rng(1)
    database = rng.integers(0, 256, (3000, 1), dtype=np.uint8)
    queries = rng.integers(0, 256, (40, 1), dtype=np.uint8)
    code_index = CodeIndex(8)
    code_index.add(database, [str(i) for i in range(3000)])
    for k in (10, 500):
        positions, distances = code_index.search(queries, k)
        expected_positions, expected_distances = stable_topk(queries, database, k)
        np.testing.assert_array_equal(positions, expected_positions)
        np.testing.assert_array_equal(distances, expected_distances)


def test_approximate_indexes_from_factory_strings() -> None:
    rng = np.random.default_rng(2)
    database = rng.integers(0, 256, (2000, 8), dtype=np.uint8)
    for factory in ("BHNSW16", "BIVF16", "BHash4x16"):
        code_index = CodeIndex(64, factory)
        code_index.add(database, [str(i) for i in range(2000)])
        positions, distances = code_index.search(database[:5], 3)
        assert positions[:, 0].tolist() == list(range(5)) and distances[:, 0].tolist() == [0] * 5, factory
    with pytest.raises(UserError, match="not a FAISS binary index"):
        CodeIndex(64, "BNope")
    with pytest.raises(UserError, match="at least 1024 codes"):
        CodeIndex(64, "BIVF1024").add(database[:500], [str(i) for i in range(500)])


def test_save_load_and_model_mismatch(retriever: Retriever, run_dir: Path, tmp_path: Path) -> None:
    codes = retriever.index.codes[:30]
    retriever.save(tmp_path / "copy")
    loaded = Retriever.load(tmp_path / "copy", encoder=False)
    assert loaded.encoder is None and loaded.source == retriever.source
    first, second = retriever.search(codes=codes, k=5), loaded.search(codes=codes, k=5)
    assert first.ids == second.ids and np.array_equal(first.distances, second.distances)
    meta = json.loads((tmp_path / "copy" / "index.json").read_text())
    (tmp_path / "copy" / "index.json").write_text(json.dumps({**meta, "checkpoint_sha256": "0" * 64}))
    with pytest.raises(UserError, match="rebuild it with `hashbench index RUN_DIR`"):
        Retriever.load(tmp_path / "copy", retriever.encoder)
    with pytest.raises(UserError, match="32-bit codes but the index holds 16-bit"):
        Retriever(retriever.encoder, CodeIndex(16))


def test_search_prints_table_json_and_picture(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    search(run_dir, [Path("query/0"), Path("query/7")], top_k=3, show=tmp_path / "grid.png")
    out = capsys.readouterr().out
    assert "query/0: top 3 of 797" in out and "Hamming distance" in out and "database/" in out
    with Image.open(tmp_path / "grid.png") as picture:
        assert picture.format == "PNG" and picture.width > picture.height > 100
    search(run_dir, [Path("query/0")], top_k=4, json=True)
    (answer,) = json.loads(capsys.readouterr().out)
    assert answer["query"] == "query/0" and len(answer["labels"]) == 1
    assert [row["rank"] for row in answer["results"]] == [1, 2, 3, 4]
    assert {"id", "distance", "labels"} <= set(answer["results"][0])
    assert answer["results"] == sorted(answer["results"], key=lambda row: row["distance"])


def test_index_a_folder_and_search_with_any_image(
    run_dir: Path, retriever: Retriever, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    datamodule = retriever.encoder.set_up()
    for p in range(5):
        datamodule.picture("database", p).save(folder / f"d{p}.png")
    index(run_dir, images=folder, out=tmp_path / "index")
    assert "indexed 5 images as 32-bit codes" in capsys.readouterr().out
    big_rgb = datamodule.picture("database", 3).convert("RGB").resize((40, 40), Image.Resampling.NEAREST)
    big_rgb.save(tmp_path / "query.png")  # another size and mode: converted by the model's transform
    search(run_dir, [folder / "d3.png", tmp_path / "query.png"], top_k=5, json=True, index=tmp_path / "index")
    answers = json.loads(capsys.readouterr().out)
    assert {row["id"] for row in answers[0]["results"] if row["distance"] == 0} >= {"d3.png"}
    assert answers[0]["results"][0]["labels"] == [] and len(answers[1]["results"]) == 5


def test_index_a_list_file_keeps_its_labels(run_dir: Path, retriever: Retriever, tmp_path: Path) -> None:
    datamodule = retriever.encoder.set_up()
    (tmp_path / "pictures").mkdir()
    for p in range(3):
        datamodule.picture("database", p).save(tmp_path / "pictures" / f"{p}.png")
    (tmp_path / "list.txt").write_text("pictures/0.png 1 0\npictures/1.png 0 1\npictures/2.png 1 1\n")
    index(run_dir, images=tmp_path / "list.txt", out=tmp_path / "index")
    loaded = Retriever.load(tmp_path / "index", encoder=False)
    assert loaded.index.ids == ["pictures/0.png", "pictures/1.png", "pictures/2.png"]
    assert loaded.index.labels.tolist() == [[1, 0], [0, 1], [1, 1]]
    assert loaded.source == {"kind": "files", "root": str(tmp_path.resolve())}


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing run", "does not exist"),
        ("not a run", "is not a run folder"),
        ("unreadable image", "cannot read the image"),
        ("missing image", "neither an image file nor an item of the query split"),
        ("k too large", "the index holds 797 items"),
    ],
)
def test_bad_input_is_a_user_error(run_dir: Path, tmp_path: Path, case: str, message: str) -> None:
    broken = tmp_path / "broken.png"
    broken.write_text("not a picture")
    calls = {
        "missing run": lambda: search(tmp_path / "nope", [broken]),
        "not a run": lambda: search(tmp_path, [broken]),
        "unreadable image": lambda: search(run_dir, [broken]),
        "missing image": lambda: search(run_dir, [tmp_path / "nope.png"]),
        "k too large": lambda: search(run_dir, [Path("query/0")], top_k=798),
    }
    with pytest.raises(UserError, match=message):
        calls[case]()


def test_commands_module_imports_nothing_heavy() -> None:
    code = (
        "import sys, hashbench.retrieval.commands as c; print(sorted({'torch', 'faiss'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert result.stdout.strip() == "[]"


def test_test_end_grid_callback_writes_a_picture(run_dir: Path, retriever: Retriever, tmp_path: Path) -> None:
    from lightning import Trainer

    from hashbench.data import Digits
    from hashbench.retrieval import RetrievalGrid

    trainer = Trainer(
        logger=False, callbacks=[RetrievalGrid(queries=3, k=4)], default_root_dir=str(tmp_path),
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
    )  # fmt: skip
    metrics = trainer.test(retriever.encoder.model, datamodule=Digits(), verbose=False)[0]
    with Image.open(tmp_path / "test_retrieval_grid.png") as picture:
        assert picture.width > picture.height > 200
    assert 0 < metrics["test/mAP@all"] <= 1  # the metric was read, not consumed


def test_search_page_and_json_api(run_dir: Path, tmp_path: Path) -> None:
    from hashbench.retrieval.server import create_app
    from hashbench.retrieval.service import RunIndex

    client = create_app(RunIndex(run_dir)).test_client()
    page = client.get("/?query=3&k=5")
    assert page.status_code == 200 and b"797 indexed items" in page.data
    assert page.data.count(b'src="/picture/index/') == 5 and b"d = " in page.data
    found = client.post("/api/search", data={"query": "3", "k": "4"}).get_json()
    assert found["query"] == "query/3" and [row["rank"] for row in found["results"]] == [1, 2, 3, 4]
    assert all(row["relevant"] in (True, False) for row in found["results"])
    buffer = io.BytesIO()
    Image.new("RGB", (30, 20), "white").save(buffer, format="PNG")
    upload = {"image": (io.BytesIO(buffer.getvalue()), "white.png"), "k": "3"}
    found = client.post("/api/search", data=upload, content_type="multipart/form-data").get_json()
    assert found["query"] == "white.png" and len(found["results"]) == 3 and found["labels"] == []
    bad = {"image": (io.BytesIO(b"not an image"), "bad.png")}
    response = client.post("/api/search", data=bad, content_type="multipart/form-data")
    assert response.status_code == 400 and "not an image" in response.get_json()["error"]
    assert client.post("/api/search", data={"query": "1", "k": "9999"}).status_code == 400
    picture = client.get(f"/picture/index/{found['results'][0]['position']}")
    assert picture.status_code == 200 and picture.mimetype == "image/png"
    assert client.get("/picture/index/99999").status_code == 404
