"""``hashbench index|search|serve``: use a trained model from its run folder.

Typed functions: jsonargparse builds each command's options from its signature and docstring. Nothing
heavy (torch, Lightning, FAISS) is imported until a command runs, so ``--help`` is fast.
"""

from __future__ import annotations

import json as json_module
from collections.abc import Callable
from pathlib import Path


def index(run_dir: Path, images: Path | None = None, index: str = "BFlat", out: Path | None = None) -> None:
    """Encode a database with a run's final model and write a searchable index.

    By default the database split of the run's own data (the DataModule of its config.yaml); the index
    (packed codes, ids, labels, a FAISS index, and the checkpoint, bits and config it came from) goes to
    RUN_DIR/index.

    Args:
        run_dir: the run folder (runs/<name>/<timestamp>) that `hashbench fit` wrote.
        images: index these images instead: a folder (searched recursively) or a list file
            (`path [0 1 0 …]` a line, paths relative to the file's folder).
        index: FAISS binary index factory string: BFlat (exact), BHNSW32, BIVF1024, BHash4x16, ….
        out: the index folder (default: RUN_DIR/index).
    """
    from rich.progress import Progress

    from hashbench.retrieval.service import INDEX_FOLDER, build_index

    with Progress(transient=True) as bar:

        def progress(total: int) -> Callable[[int], None]:
            task = bar.add_task("encoding", total=total)
            return lambda done: bar.advance(task, done)

        retriever = build_index(run_dir, images, index, progress)
    folder = retriever.save(out or Path(run_dir) / INDEX_FOLDER)
    print(f"indexed {len(retriever)} images as {retriever.bits}-bit codes ({index}) in {folder}")


def search(
    run_dir: Path,
    images: list[str],
    top_k: int = 10,
    json: bool = False,
    show: Path | None = None,
    index: Path | None = None,
) -> None:
    """Find the nearest indexed images of each query image by Hamming distance.

    Prints a table per query (rank, id, Hamming distance, labels), or JSON with the same fields.

    Args:
        run_dir: the run folder whose model and index (RUN_DIR/index, from `hashbench index`) are used.
        images: query image files (converted as the model's transform does), or ids of items of the
            run's query split (e.g. query/3 for the digits data).
        top_k: results per query.
        json: print JSON instead of tables.
        show: also write a PNG grid: queries in rows, their results to the right, the Hamming distance
            under each, framed green/red (relevant/irrelevant) when labels are known.
        index: the index folder (default: RUN_DIR/index).
    """
    from rich.console import Console
    from rich.table import Table

    from hashbench.errors import UserError
    from hashbench.retrieval.pictures import result_grid, save_figure
    from hashbench.retrieval.service import RunIndex, label_names

    if not images:
        raise UserError("give at least one query image")
    run = RunIndex(run_dir, index)
    queries = [run.query(Path(image)) for image in images]
    result = run.search(queries, top_k)
    answers: list[dict] = []
    for q, query in enumerate(queries):
        rows = [
            {
                "rank": rank + 1,
                "id": result.ids[q][rank],
                "distance": int(result.distances[q, rank]),
                "labels": label_names(None if result.labels is None else result.labels[q, rank]),
            }
            for rank in range(top_k)
            if result.positions[q, rank] >= 0
        ]
        answers.append({"query": query.name, "labels": label_names(query.labels), "results": rows})
    if json:
        print(json_module.dumps(answers, indent=2))
    else:
        console = Console()
        for answer in answers:
            table = Table(title=f"{answer['query']}: top {top_k} of {len(run.retriever)}")
            for column in ("rank", "id", "Hamming distance", "labels"):
                table.add_column(column, justify="left" if column == "id" else "right")
            for row in answer["results"]:
                labels = ",".join(map(str, row["labels"]))
                table.add_row(str(row["rank"]), row["id"], str(row["distance"]), labels)
            console.print(table)
    if show is not None:
        figure = result_grid(run.rows(queries, result), f"top {top_k} by Hamming distance")
        save_figure(figure, show)
        if not json:
            print(f"wrote {show}")


def serve(run_dir: Path, host: str = "127.0.0.1", port: int = 8000, index: Path | None = None) -> None:
    """A search page on localhost: pick a query from the run's query split or upload an image.

    Also a JSON endpoint for programs: POST /api/search with a multipart `image` file or a `query`
    position of the query split, and `k`.

    Args:
        run_dir: the run folder whose model and index (RUN_DIR/index) are served.
        host: address to listen on (127.0.0.1: this machine only).
        port: TCP port.
        index: the index folder (default: RUN_DIR/index).
    """
    from hashbench.retrieval.server import create_app
    from hashbench.retrieval.service import RunIndex

    create_app(RunIndex(run_dir, index)).run(host=host, port=port, threaded=False)
