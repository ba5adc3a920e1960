"""layerpairs: layers paired by their history entries, and each pair's verdict."""

from __future__ import annotations

from collections.abc import Sequence

from layerbuild.digest import Digest, sha256_bytes
from layerbuild.image.config import History, ImageConfig
from layerbuild.image.layerpairs import (
    INSTRUCTION,
    MTIME_ONLY,
    NOT_REPRODUCIBLE,
    ONLY_A,
    ONLY_B,
    PARENT,
    RECOMPRESSED,
    SAME,
    SOURCES,
    TAR_ONLY,
    FilesDiffer,
    LayerPair,
    judge,
    layer_sides,
    pair_layers,
)
from layerbuild.image.manifest import Layer
from layerbuild.image.mediatypes import OCI_LAYER_GZIP

REAL = FilesDiffer(any=True, beyond_mtime=True)
MTIMES = FilesDiffer(any=True, beyond_mtime=False)
NONE = FilesDiffer(any=False, beyond_mtime=False)


def d(name: str) -> Digest:
    return sha256_bytes(name.encode())


def image(steps: Sequence[tuple[str, str | None]]) -> tuple[ImageConfig, list[Layer]]:
    """History (text, layer name or None for an empty_layer step) -> config and layers."""
    history = tuple(History(text, empty_layer=layer is None) for text, layer in steps)
    layers = [Layer(d(n), d("blob " + n), 1, OCI_LAYER_GZIP) for _, n in steps if n is not None]
    return ImageConfig(history=history), layers


def verdicts(
    a: Sequence[tuple[str, str | None]],
    b: Sequence[tuple[str, str | None]],
    files: dict[int, FilesDiffer] | None = None,
) -> list[tuple[str, ...]]:
    pairs = _judge(a, b, files or {})
    return [(p.verdict, *(s.origin.created_by for s in (p.a, p.b) if s)) for p in pairs]


def _judge(
    a: Sequence[tuple[str, str | None]],
    b: Sequence[tuple[str, str | None]],
    files: dict[int, FilesDiffer],
) -> list[LayerPair]:
    matched = pair_layers(layer_sides(*image(a)), layer_sides(*image(b)))
    return judge(matched, [files.get(i, REAL) for i in range(len(matched))])


BASE = ("base", "base")


def test_a_non_reproducible_run_and_the_step_above_it() -> None:
    a = [BASE, ("RUN date > /stamp", "s1"), ("RUN echo > /done", "d1")]
    b = [BASE, ("RUN date > /stamp", "s2"), ("RUN echo > /done", "d2")]
    assert [v[0] for v in verdicts(a, b)] == [SAME, NOT_REPRODUCIBLE, PARENT]
    pairs = _judge(a, b, {})
    assert pairs[2].reason == "its parent differs: layer 2 (not reproducible)"


def test_a_parent_that_differs_only_in_mtimes_does_not_count() -> None:
    a = [BASE, ("RUN echo hi > /hello", "h1"), ("RUN date > /stamp", "s1")]
    b = [BASE, ("RUN echo hi > /hello", "h2"), ("RUN date > /stamp", "s2")]
    assert [v[0] for v in verdicts(a, b, {1: MTIMES})] == [SAME, MTIME_ONLY, NOT_REPRODUCIBLE]
    assert [v[0] for v in verdicts(a, b, {1: NONE})] == [SAME, TAR_ONLY, NOT_REPRODUCIBLE]


def test_above_an_env_change_whose_layer_only_got_new_mtimes() -> None:
    a = [BASE, ("ENV A=1", None), ("RUN mkdir /app", "m1"), ("RUN date > /app/s", "s1")]
    b = [BASE, ("ENV A=2", None), ("RUN mkdir /app", "m2"), ("RUN date > /app/s", "s2")]
    pairs = _judge(a, b, {1: MTIMES})
    assert [p.verdict for p in pairs] == [SAME, PARENT, PARENT]
    assert pairs[2].reason == "an earlier step differs: `ENV A=1` / `ENV A=2`"


def test_an_instruction_change_then_its_children() -> None:
    a = [BASE, ("COPY a /a", "a1"), ("RUN make", "m1")]
    b = [BASE, ("COPY b /a", "a2"), ("RUN make", "m2")]
    assert [v[0] for v in verdicts(a, b)] == [SAME, INSTRUCTION, PARENT]


def test_an_earlier_step_without_a_layer_is_a_different_parent() -> None:
    a = [BASE, ("ENV A=1", None), ("RUN echo $A > /a", "x1")]
    b = [BASE, ("ENV A=2", None), ("RUN echo $A > /a", "x2")]
    (_, run) = _judge(a, b, {})
    assert run.verdict == PARENT
    assert run.reason == "an earlier step differs: `ENV A=1` / `ENV A=2`"


def test_a_copy_with_the_same_text_names_its_sources() -> None:
    a = [BASE, ("COPY . /app", "c1")]
    b = [BASE, ("COPY . /app", "c2")]
    assert [v[0] for v in verdicts(a, b)] == [SAME, SOURCES]


def test_an_inserted_step_pairs_the_rest_by_history() -> None:
    a = [BASE, ("RUN one", "1"), ("RUN three", "3")]
    b = [BASE, ("RUN one", "1"), ("RUN two", "2"), ("RUN three", "3b")]
    assert verdicts(a, b) == [
        (SAME, "base", "base"),
        (SAME, "RUN one", "RUN one"),
        (ONLY_B, "RUN two"),
        (PARENT, "RUN three", "RUN three"),
    ]
    assert [v[0] for v in verdicts(b, a)][2] == ONLY_A


def test_same_files_in_another_blob() -> None:
    config, layers = image([BASE])
    other = [Layer(layers[0].diff_id, d("zstd blob"), 1, OCI_LAYER_GZIP)]
    (pair,) = judge(pair_layers(layer_sides(config, layers), layer_sides(config, other)), [NONE])
    assert pair.verdict == RECOMPRESSED and not pair.differs


def test_layers_without_history_pair_by_diff_id() -> None:
    layers = image([BASE, ("RUN x", "x")])[1]
    bare = ImageConfig()
    pairs = pair_layers(layer_sides(bare, layers), layer_sides(bare, layers[1:]))
    assert [(x is not None, y is not None) for x, y in pairs] == [(True, False), (True, True)]
