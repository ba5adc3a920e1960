"""`layerbuild analyze`: what an image's layers waste.

- `source`: the image to read, from the store or from an OCI layout, OCI tarball or
  docker-archive read in place (its layers' entries, its config);
- `report`: the analysis (image/waste, image/wastepaths, image/efficiency, image/layerhistory
  do the counting, purely) and its JSON form;
- `thresholds`: dive's CI rules for `--ci`, from options or pyproject.toml.
"""
