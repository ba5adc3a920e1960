"""What every command gets from the group's options: the store's root and --debug."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from layerbuild.store.layout import Store


class Context:
    def __init__(self, root: Path | None, debug: bool) -> None:
        self.root = root
        self.debug = debug

    def store(self) -> Store:
        from layerbuild.store.layout import Store  # not for --help, login or logout

        return Store.open(self.root)

    def store_root(self) -> str:
        from layerbuild.store.layout import default_root

        return str((self.root if self.root is not None else default_root()).absolute())
