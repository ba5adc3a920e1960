"""Remote build cache: export the cache records of a build, import them into another store.

`--cache-to type=local,dest=DIR[,mode=max]` / `--cache-from type=local,src=DIR` and
`--cache-to type=registry,ref=REPO:TAG[,mode=max]` / `--cache-from type=registry,ref=...`.

One module per concept: `spec` (what a --cache-to/--cache-from says, and what became of it),
`records` (the cache image: its config of CacheRecords and its manifest, written and read back),
`exporter` (--cache-to), `importer` (--cache-from), `faultplace` (whose fault a failure is).

The exported cache is an OCI image manifest whose layers are the cached layer blobs and whose
config (media type `application/vnd.layerbuild.cache.config.v1+json`) lists the CacheRecords;
docs/cache-format.md describes it. Locally it is an OCI layout directory, in a registry a
tagged manifest, so any OCI tool can copy it around.

Import happens before the build's first step: the records go into the local CacheIndex and
their layer blobs into the store (eagerly; every blob is verified against its digest on the
way in), so lookups hit exactly as if this store had built the steps. Each record keeps its
parent link (the result it was made on, engine/stepcache.py), so records of several builders
never combine into an image none of them built: a record is only taken on top of the very
result it was made on. A record whose key digest does not match its own inputs, that has no
parent link or whose config does not end with its layer, or whose layer the manifest does not
carry, is skipped. A cache that does not exist yet (first CI run), or one of format 1 (records
without parent links), is a note, not an error.

A source that fails — a registry that cannot be reached or refuses, a blob or manifest that does
not verify, a manifest or config that does not parse, a damaged cache directory — is a warning
and a miss, as in BuildKit (moby/buildkit#2836): a cache only makes a build faster, so losing
it must not stop one. A source's records are installed only once all of its blobs are in the
store and verified, so a failed source leaves no record behind. Faults of this store (a full
disk, a read-only file system) are not the source's and stay errors. An export fails the build
unless its spec says `ignore-error=true` (BuildKit's option, moby/buildkit PR #3430); the image
is tagged before the export either way.

This file imports nothing: `engine/events` and the build options take `spec` alone.
"""
