"""pair_history (layers with their non-empty history entries), instruction keywords of the
builders' history texts, and the fix hints."""

from __future__ import annotations

from layerbuild.image.config import History
from layerbuild.image.layerhistory import LayerOrigin, fix_hint, instruction_keyword, pair_history
from layerbuild.image.waste import HiddenBy


def test_layers_pair_with_entries_that_made_one_skipping_empty_ones() -> None:
    history = [
        History(created_by="ADD rootfs.tar /"),
        History(created_by='CMD ["sh"]', empty_layer=True),
        History(created_by="RUN make"),
        History(created_by="ENV A=1", empty_layer=True),
        History(created_by="RUN rm -rf /src"),
    ]
    assert pair_history(history, 3) == [
        LayerOrigin(1, "ADD rootfs.tar /"),
        LayerOrigin(3, "RUN make"),
        LayerOrigin(5, "RUN rm -rf /src"),
    ]


def test_layers_beyond_the_history_have_no_origin() -> None:
    origins = pair_history([History(created_by="RUN a")], 2)
    assert origins[1] == LayerOrigin(0, "")
    assert origins[1].label() == "(no history entry)"


def test_keywords_of_each_builders_history_text() -> None:
    assert instruction_keyword("RUN /bin/sh -c apt-get update # buildkit") == "RUN"
    assert instruction_keyword("COPY --chown=1 . /app") == "COPY"
    assert instruction_keyword("/bin/sh -c #(nop) ADD file:abc in / ") == "ADD"
    assert instruction_keyword("/bin/sh -c apt-get update") == "RUN"
    assert instruction_keyword("fixtures/make_base.py") == ""
    assert instruction_keyword("") == ""


def test_labels_quote_the_step_and_shorten_long_text() -> None:
    origin = LayerOrigin(4, "RUN " + "x" * 100)
    label = origin.label(20)
    assert label.startswith("step 4 `RUN xxx") and label.endswith("…`")
    assert len(label) == len("step 4 ``") + 20


def test_hints_name_the_fix() -> None:
    run_a, run_b = LayerOrigin(2, "RUN a"), LayerOrigin(3, "RUN b")
    copy = LayerOrigin(2, "COPY . /src")
    assert "one RUN" in fix_hint(run_a, run_b, HiddenBy.DELETED)
    assert ".dockerignore" in fix_hint(copy, run_b, HiddenBy.DELETED)
    assert "merge the two RUNs" in fix_hint(run_a, run_b, HiddenBy.REPLACED)
    assert "write it once" in fix_hint(copy, run_b, HiddenBy.REPLACED)
    assert "a later delete only hides it" in fix_hint(LayerOrigin(0, ""), run_b, HiddenBy.OPAQUE)
