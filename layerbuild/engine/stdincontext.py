"""`layerbuild build -`: the build context, or a lone Dockerfile, read from standard input.

As docker build does (cli/command/image/build/context.go GetContextFromReader): a stream that
starts with a compression magic (gzip, bzip2, xz, zstd) or a tar header is the context as a tar
archive; anything else is a Dockerfile, built with an empty context (as buildx does). The
archive is unpacked by the store's secure unpacker (store/unpack.py: no entry leaves the root,
links are checked) into a temporary directory removed when the build ends; `-f NAME` then names
a file in it. As in a layer, a `.wh.NAME` entry is taken as a whiteout and not kept.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from layerbuild.errors import ContextError, LayerbuildError
from layerbuild.image.archive import SNIFF_SIZE, is_archive
from layerbuild.image.decompress import detect_compression, open_layer
from layerbuild.store.layers import remove_tree


@contextlib.contextmanager
def stdin_context(stream: BinaryIO, dockerfile: str | None) -> Iterator[tuple[Path, str | None]]:
    """(context directory, Dockerfile text or None) made from `stream`; `dockerfile` is the
    -f value, which must not be "-" too."""
    if dockerfile == "-":
        raise ContextError(
            "cannot read both the context and the Dockerfile from standard input",
            hint="give the Dockerfile with -f PATH (a path inside the archive), or the "
            "context as a directory",
        )
    directory = Path(tempfile.mkdtemp(prefix="layerbuild-context-"))
    try:
        root = directory / "context"
        root.mkdir()
        with tempfile.TemporaryFile(dir=directory) as spool:
            shutil.copyfileobj(stream, spool)
            spool.seek(0)
            head = spool.read(SNIFF_SIZE)
            spool.seek(0)
            compression = detect_compression(head)
            text = None
            if compression != "none" or is_archive(head):
                _unpack(spool, compression, root)
            else:
                text = spool.read().decode("utf-8", "surrogateescape")
                if dockerfile:
                    raise ContextError(
                        f"standard input holds a Dockerfile, and -f names another: {dockerfile}",
                        hint="drop -f, or pipe a tar archive of the context",
                    )
        yield root, text
    finally:
        remove_tree(directory)


def _unpack(spool: BinaryIO, compression: str, root: Path) -> None:
    from layerbuild.store.unpack import apply_layer

    try:
        apply_layer(open_layer(spool, compression), root)
    except (LayerbuildError, OSError, EOFError) as e:
        raise ContextError(
            f"cannot unpack the context archive read from standard input: {e}",
            hint="pipe a tar archive (plain, gzip, bzip2, xz or zstd) or a Dockerfile",
        ) from None


def inner_path(root: Path, name: str) -> str:
    """`-f NAME` with a context from stdin: NAME inside that context, never outside it."""
    from layerbuild.sandbox.securejoin import secure_join

    return secure_join(str(root), name)
