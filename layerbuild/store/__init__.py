"""The local store: content-addressed blobs, image names, snapshots, locks and gc."""

from layerbuild.store.layout import Store, default_root

__all__ = ["Store", "default_root"]
