"""`layerbuild diff A B`: why two images differ (the pure comparison is image/imagediff.py).

- `targets`: what A and B name (a path to an OCI layout or an archive, or an image of the
  store), each kind of name tried in one list;
- `compare`: reads every layer once (a layer both images share, once for both), hashing file
  contents as the tar streams by, and hands the files to the comparison.
"""
