"""Inputs and outputs of a request, decoded from the content store for display.

Everything returned here is data, never markup: templates escape it (Jinja2 autoescape), and the
only generated markup, the digit image, is built from integers alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from verinfer.models.errors import InvalidInputError
from verinfer.models.tensor import decode_tensor
from verinfer.storage.base import ContentStore

MAX_SHOW_BYTES = 64 * 1024


@dataclass
class Decoded:
    """One content object as the page shows it."""

    cid: str | None
    ok: bool = False
    error: str | None = None
    size: int = 0
    kind: str = "raw"            # tensor | text | raw
    dtype: str | None = None
    shape: list[int] = field(default_factory=list)
    values: list[int] = field(default_factory=list)
    text: str | None = None      # raw text (escaped by the template) or decoded tokens
    image_svg: str | None = None  # 8x8 digit, built from ints only
    argmax: int | None = None

    def to_json(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d.pop("image_svg")
        return d


def digit_svg(pixels: list[int], cell: int = 12, vmax: int = 16) -> str:
    """An 8x8 grey-level image (0 = white, vmax = black) as inline SVG; only integers go into it."""
    rects = []
    for i, v in enumerate(pixels[:64]):
        level = 255 - int(max(0, min(vmax, int(v))) * 255 / vmax)
        rects.append(f'<rect x="{(i % 8) * cell}" y="{(i // 8) * cell}" width="{cell}" height="{cell}" '
                     f'fill="rgb({level},{level},{level})"/>')
    size = 8 * cell
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 {size} {size}" '
            f'role="img" aria-label="8x8 digit input">{"".join(rects)}</svg>')


def decode(store: ContentStore, cid: str | None, *, vocab: dict[int, str] | None = None) -> Decoded:
    """Fetch `cid` (verified against it by the store) and decode a verinfer tensor, else show text."""
    d = Decoded(cid=cid)
    if not cid:
        d.error = "no CID"
        return d
    try:
        raw = store.cat(cid, max_bytes=16 << 20)
    except Exception as exc:  # not found, CID mismatch (tampered), store down: all shown, none fatal
        d.error = f"{type(exc).__name__}: {exc}"
        return d
    d.ok, d.size = True, len(raw)
    try:
        t = decode_tensor(raw)
    except InvalidInputError as exc:
        d.kind = "text"
        d.text = raw[:MAX_SHOW_BYTES].decode("utf-8", errors="replace")
        d.error = f"not a verinfer tensor: {exc}"
        return d
    d.kind, d.dtype, d.shape, d.values = "tensor", t.dtype, list(t.shape), list(t.data)
    if len(t.data) == 64 and all(0 <= v <= 16 for v in t.data):
        d.image_svg = digit_svg(t.data)
    if t.data and t.dtype == "int32" and len(t.data) <= 1024 and vocab is None:
        d.argmax = max(range(len(t.data)), key=lambda i: t.data[i])
    if vocab is not None:
        d.text = "".join(vocab.get(v, "\N{REPLACEMENT CHARACTER}") for v in t.data)
        d.argmax = None
    return d


def vocabulary(store: ContentStore, weights_cid: str | None) -> dict[int, str] | None:
    """id -> token of a language model whose published spec names a vocabulary CID (else None)."""
    if not weights_cid:
        return None
    try:
        spec = json.loads(store.cat(weights_cid, max_bytes=1 << 20))
        if not isinstance(spec, dict) or not spec.get("vocab_cid"):
            return None
        vocab = json.loads(store.cat(spec["vocab_cid"], max_bytes=4 << 20))
    except Exception:
        return None
    if not isinstance(vocab, dict):
        return None
    out = {int(i): str(tok) for tok, i in vocab.items() if isinstance(i, int)}
    stop = spec.get("stop_token")
    if isinstance(stop, int):
        out.setdefault(stop, "<s>")
    return out
