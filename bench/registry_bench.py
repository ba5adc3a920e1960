"""Push and pull of a ~500 MB image to a local Distribution registry, next to skopeo copy.

    python bench/registry_bench.py [--mb 500] [--layers 5] [--runs 1]

Generates an image of random (incompressible) uncompressed layers in a scratch store, then,
each against its own fresh docker-registry on 127.0.0.1 (so no blob is already there):

- `layerbuild push` and `layerbuild pull` (the CLI in a subprocess, as a user runs it);
- `skopeo copy oci:<store>:bench:1 docker://...` and `skopeo copy docker://... oci:<dir>`
  (the store root is an OCI layout, so skopeo reads the very same blobs).

Prints MB/s and the ratio layerbuild/skopeo (>1: layerbuild is faster). Figures only: this
never asserts.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from layerbuild.image.config import ImageConfig
from layerbuild.store.images import write_image
from layerbuild.store.layout import Store
from tests.integration.registry.images import layer_tar, put_layer
from tests.support.registry import RegistryCLI, RegistryServer


def make_image(root: Path, total_mb: int, layers: int) -> int:
    """Tag bench:1 in a new store at `root`; returns the bytes of its layers."""
    store = Store.open(root)
    per_layer = total_mb * (1 << 20) // layers
    made = [put_layer(store, layer_tar(f"blob{i}", os.urandom(per_layer))) for i in range(layers)]
    config = ImageConfig(diff_ids=tuple(layer.diff_id for layer in made))
    store.refs.set("bench:1", write_image(store, config, made))
    return sum(layer.size for layer in made)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def skopeo(*args: str) -> None:
    subprocess.run(["skopeo", *args], check=True, capture_output=True)


def one_run(work: Path, source: Path, nbytes: int) -> dict[str, float]:
    ours = RegistryServer(work / "reg-layerbuild").start()
    theirs = RegistryServer(work / "reg-skopeo").start()
    try:
        (work / "dc").mkdir(exist_ok=True)
        cli = RegistryCLI(source, work / "dc")
        ref = f"{ours.host}/bench/app:1"
        t = {"layerbuild push": timed(lambda: cli.ok("push", "-q", "bench:1", ref))}
        t["layerbuild pull"] = timed(lambda: cli.with_store(work / "pulled").ok("pull", "-q", ref))
        dest = f"docker://{theirs.host}/bench/app:1"
        t["skopeo push"] = timed(
            lambda: skopeo("copy", "--dest-tls-verify=false", f"oci:{source}:bench:1", dest)
        )
        t["skopeo pull"] = timed(
            lambda: skopeo("copy", "--src-tls-verify=false", dest, f"oci:{work / 'sk'}:1")
        )
    finally:
        ours.kill()
        theirs.kill()
    return {k: nbytes / v / 1e6 for k, v in t.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=500)
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--dir", type=Path, default=None, help="scratch directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="registry-bench-", dir=args.dir) as tmp:
        source = Path(tmp) / "source"
        nbytes = make_image(source, args.mb, args.layers)
        print(f"image: {args.layers} layers, {nbytes / 1e6:.0f} MB (random, uncompressed)")
        best: dict[str, float] = {}
        for i in range(args.runs):
            rates = one_run(Path(tmp) / f"run{i}", source, nbytes)
            best = {k: max(v, best.get(k, 0.0)) for k, v in rates.items()}
    for key, rate in best.items():
        print(f"{key:16} {rate:8.1f} MB/s")
    for verb in ("push", "pull"):
        ratio = best[f"layerbuild {verb}"] / best[f"skopeo {verb}"]
        print(f"{verb} ratio layerbuild/skopeo: {ratio:.2f}")


if __name__ == "__main__":
    main()
