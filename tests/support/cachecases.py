"""Contexts that more than one cache test builds: the cache rules (test_cache.py) and the dry
run's verdicts on the same rules (test_dry_run.py) must run on the very same files."""

from __future__ import annotations

# two stages the last one copies from: changing a/f misses stage a only
SIBLING_STAGES = {
    "Dockerfile": "FROM busybox AS a\nCOPY a/ /a/\nRUN cat /a/f > /out\n"
    "FROM busybox AS b\nCOPY b/ /b/\nRUN cat /b/f > /out\n"
    "FROM busybox\nCOPY --from=b /out /b.out\nCOPY --from=a /out /a.out\n",
    "a/f": "a\n",
    "b/f": "b\n",
}
