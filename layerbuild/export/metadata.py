"""`build --metadata-file` (and `--iidfile`): what a build made, under the keys buildx writes
(BuildKit's exporter response, `exporter/containerimage/exptypes/types.go`, plus buildx's build
ref)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from layerbuild.errors import ExportError

if TYPE_CHECKING:
    from layerbuild.engine.options import BuildResult
    from layerbuild.image.descriptor import Descriptor

BUILDER = "layerbuild/local"  # buildx's BUILDER/NODE: this process is both
_REF_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_REF_LENGTH = 25  # buildx's build refs (BuildKit identity.NewID) are 25 base-36 characters


def build_metadata(result: BuildResult, desc: Descriptor, ref: str | None = None) -> str:
    """The JSON text of --metadata-file. `desc`: the image as the image exporter wrote it (its
    --output options applied), else as stored; `ref`: this build's id (default: a new one)."""
    metadata = {
        "buildx.build.ref": f"{BUILDER}/{ref or new_build_ref()}",
        "containerimage.config.digest": str(result.config.digest),
        "containerimage.descriptor": desc.to_json(),
        "containerimage.digest": str(desc.digest),
        "image.name": ",".join(result.tags),
    }
    return json.dumps(metadata, indent=2) + "\n"


def new_build_ref() -> str:
    return "".join(secrets.choice(_REF_ALPHABET) for _ in range(_REF_LENGTH))


def write_build_file(path: Path, text: str, option: str) -> None:
    """Write `text` to `path` atomically (a reader sees the old file or the whole new one, as
    buildx's atomicwriter); ExportError naming `option` when it cannot be written."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise ExportError(
            f"cannot write {option} {path}: {e.strerror or e}",
            hint="choose a path in an existing, writable directory",
        ) from None
