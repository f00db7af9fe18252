"""The search page: a small Flask app over a run's model and index (``hashbench serve RUN_DIR``).

Flask because it is small, has a test client for the HTTP API without sockets and parses multipart
uploads; a synchronous server suits encoding, which is CPU-bound.

Routes: ``GET /`` the page (``?query=N`` searches with item N of the query split, ``&k=``); ``POST /``
an uploaded ``image``; ``POST /api/search`` the same as JSON for programs (form field ``query`` or file
``image``, and ``k``); ``GET /picture/query/N`` and ``/picture/index/N`` the pictures as PNG.
"""

from __future__ import annotations

import base64
import io

from flask import Flask, Response, jsonify, render_template_string, request
from PIL import Image

from hashbench.errors import UserError
from hashbench.retrieval.service import Query, RunIndex, label_names

MAX_UPLOAD_BYTES = 20 * 2**20
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hashbench search: {{ run }}</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
 form { display: inline-block; margin-right: 2em; vertical-align: top; }
 .grid { display: flex; flex-wrap: wrap; gap: 10px; margin-top: 1em; }
 figure { margin: 0; text-align: center; font-size: 12px; }
 figure img { width: 84px; height: 84px; object-fit: contain; image-rendering: pixelated;
   border: 5px solid #bbb; background: #000; }
 figure.query img { border-color: #222; }
 figure.relevant img { border-color: #1a9850; } figure.irrelevant img { border-color: #d73027; }
 .error { color: #d73027; font-weight: bold; }
 .picker a { text-decoration: none; }
 .picker a img { width: 40px; height: 40px; image-rendering: pixelated; margin: 1px; background: #000; }
</style></head><body>
<h2>hashbench search</h2>
<p>{{ run }}: {{ size }} indexed items, {{ bits }}-bit codes, Hamming ranking.</p>
<form method="get" action="/"><label>query split item
 <input type="number" name="query" min="0" max="{{ queries - 1 }}" value="{{ picked }}"></label>
 <label>k <input type="number" name="k" min="1" max="{{ size }}" value="{{ k }}" style="width:4em"></label>
 <button type="submit">search</button></form>
<form method="post" action="/" enctype="multipart/form-data"><label>or upload an image
 <input type="file" name="image" accept="image/*"></label>
 <input type="hidden" name="k" value="{{ k }}"><button type="submit">search</button></form>
<div class="picker">{% for i in range(shown) -%}
<a href="/?query={{ i }}&k={{ k }}" title="query {{ i }}"><img src="/picture/query/{{ i }}" alt="{{ i }}"></a>
{%- endfor %}</div>
{% if error %}<p class="error">{{ error }}</p>{% endif %}
{% if answer %}<div class="grid">
 <figure class="query"><img src="{{ answer.picture }}" alt="query"><figcaption>{{ answer.query }}<br>
 labels {{ answer.labels|join(",") or "?" }}</figcaption></figure>
 {% for row in answer.results %}<figure class="{{ row.frame }}"><img src="/picture/index/{{ row.position }}"
 alt="{{ row.id }}"><figcaption>#{{ row.rank }} d = {{ row.distance }}<br>{{ row.id }}<br>
 labels {{ row.labels|join(",") or "?" }}</figcaption></figure>{% endfor %}</div>{% endif %}
</body></html>"""


def png(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def create_app(run: RunIndex, thumbnails: int = 40) -> Flask:
    """The search page and JSON API over ``run`` (its model and index)."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD_BYTES

    def query_from_request() -> Query | None:
        upload = request.files.get("image")
        if upload is not None and upload.filename:
            try:
                with Image.open(upload.stream) as picture:
                    picture.load()
            except (OSError, SyntaxError, ValueError):
                raise UserError(f"the upload {upload.filename} is not an image") from None
            return run.image_query(picture, upload.filename)
        position = request.values.get("query")
        if position is None or position == "":
            return None
        if not position.isdigit():
            raise UserError(f"query must be a position in the query split, got {position!r}")
        return run.split_query(int(position))

    def answer(query: Query, k: int) -> dict:
        result = run.search([query], k)
        rows = []
        for rank in range(k):
            position = int(result.positions[0, rank])
            if position < 0:
                continue
            labels = None if result.labels is None else result.labels[0, rank]
            relevant = None if query.labels is None or labels is None else bool((query.labels & labels).any())
            rows.append(
                {
                    "rank": rank + 1,
                    "id": result.ids[0][rank],
                    "position": position,
                    "distance": int(result.distances[0, rank]),
                    "labels": label_names(labels),
                    "relevant": relevant,
                    "frame": {True: "relevant", False: "irrelevant", None: ""}[relevant],
                }
            )
        return {"query": query.name, "labels": label_names(query.labels), "k": k, "results": rows}

    def k_from_request() -> int:
        value = request.values.get("k", "10")
        if not value.isdigit():
            raise UserError(f"k must be a whole number, got {value!r}")
        return int(value)

    @app.route("/", methods=["GET", "POST"])
    def page() -> str:
        context = {
            "run": str(run.folder.parent), "size": len(run.retriever), "bits": run.retriever.bits,
            "queries": run.query_size(), "shown": min(thumbnails, run.query_size()),
            "k": request.values.get("k", "10"), "picked": request.values.get("query", ""),
            "answer": None, "error": None,
        }  # fmt: skip
        try:
            query = query_from_request()
            if query is not None:
                found = answer(query, k_from_request())
                found["picture"] = "data:image/png;base64," + base64.b64encode(png(query.picture)).decode()
                context["answer"] = found
        except UserError as error:
            context["error"] = str(error)
        return render_template_string(PAGE, **context)

    @app.post("/api/search")
    def api_search() -> tuple[Response, int]:
        try:
            query = query_from_request()
            if query is None:
                raise UserError(
                    "give a query: form field `query` (a position in the query split) or file `image`"
                )
            return jsonify(answer(query, k_from_request())), 200
        except UserError as error:
            return jsonify({"error": str(error)}), 400

    @app.get("/picture/<role>/<int:position>")
    def picture(role: str, position: int) -> Response | tuple[Response, int]:
        try:
            if role == "query":
                image = run.split_query(position).picture
            elif role == "index" and 0 <= position < len(run.retriever):
                image = run.picture(position)
            else:
                return jsonify({"error": f"no picture {role}/{position}"}), 404
        except UserError as error:
            return jsonify({"error": str(error)}), 404
        return Response(png(image), mimetype="image/png")

    return app
