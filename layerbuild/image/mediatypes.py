"""Media types of the OCI image spec and their Docker v2 schema 2 counterparts."""

OCI_LAYOUT_VERSION = "1.0.0"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
# containerd's name, which BuildKit writes for zstd layers with oci-mediatypes=false
DOCKER_LAYER_ZSTD = "application/vnd.docker.image.rootfs.diff.tar.zstd"

MANIFESTS = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEXES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
LAYERS = frozenset(
    {OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, DOCKER_LAYER, DOCKER_LAYER_GZIP, DOCKER_LAYER_ZSTD}
)

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
# containerd and nerdctl name the full image reference in this annotation of an index entry
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"


def layer_compression(media_type: str) -> str:
    """'gzip', 'zstd' or 'none' for a layer media type; ValueError for anything else."""
    if media_type in (OCI_LAYER_GZIP, DOCKER_LAYER_GZIP):
        return "gzip"
    if media_type in (OCI_LAYER_ZSTD, DOCKER_LAYER_ZSTD):
        return "zstd"
    if media_type in (OCI_LAYER, DOCKER_LAYER):
        return "none"
    raise ValueError(f"not a layer media type: {media_type}")


def layer_media_type(compression: str, *, oci: bool = True) -> str:
    """The OCI (or with `oci` False, Docker) layer media type for 'gzip', 'zstd' or 'none'."""
    if not oci:
        return {"gzip": DOCKER_LAYER_GZIP, "zstd": DOCKER_LAYER_ZSTD, "none": DOCKER_LAYER}[
            compression
        ]
    return {"gzip": OCI_LAYER_GZIP, "zstd": OCI_LAYER_ZSTD, "none": OCI_LAYER}[compression]
