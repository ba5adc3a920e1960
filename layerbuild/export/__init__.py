"""Exporters (one module per format) and `load`, which imports the same formats back.

- `oci_layout.write_oci_layout`: an OCI image layout directory (added to when it exists);
- `oci_tar.write_oci_tar`: the same layout as a deterministic tar (file or stream);
- `docker_tar.write_docker_tar`: a docker-archive in the Docker >= 25 shape;
- `rootfs.write_rootfs`: the image's merged filesystem in a new directory;
- `load.load`: an OCI layout directory or tarball, or a docker-archive (old or new shape).

Imported from their modules: a build that writes no export does not load them.
"""
