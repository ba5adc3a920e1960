"""Lstat: the lstat fields a selected context entry is kept with, compactly.

A COPY of a big context keeps one lstat per entry from its selection until its layer is packed
(SourceFile, then FileSource in each file's Change). An `os.stat_result` is a sequence of 22
slots, six of them floats and nanosecond times no step reads (atime, float m/ctime, blocks),
about 600 bytes an entry: at 100,000 files, 60 MB of the 238 MB the build's objects took at
its peak. This tuple holds the fields the selection, the stat cache, the listing fingerprint
and the tar writer read, under the same names, in a little over half of that (the ints it
keeps are most of it).
"""

from __future__ import annotations

import os
from typing import NamedTuple


class Lstat(NamedTuple):
    st_mode: int
    st_ino: int
    st_dev: int
    st_nlink: int
    st_uid: int
    st_gid: int
    st_size: int
    st_mtime_ns: int
    st_ctime_ns: int
    st_rdev: int


# what code reading a stat accepts: a full os.stat_result or the compact one
Stat = os.stat_result | Lstat

_new = tuple.__new__  # NamedTuple's own __new__ is a Python call: a fifth slower per entry


def compact(st: os.stat_result) -> Lstat:
    """The Lstat of an `os.stat_result`."""
    return _new(
        Lstat,
        (
            st.st_mode,
            st.st_ino,
            st.st_dev,
            st.st_nlink,
            st.st_uid,
            st.st_gid,
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
            st.st_rdev,
        ),
    )
