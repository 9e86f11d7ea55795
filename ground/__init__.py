"""The ground floor: what every part of x86lab may import, and which imports none of them.

- ``ground.case``: the case/outcome vocabulary (a ``Case`` goes into a runner, an
  ``Outcome`` comes out), shared by runners, vector files and the conformance matrix.
- ``ground.compare``: the field-by-field state comparison, with the SDM's undefined
  flags and destinations masked.
- ``ground.cache``: the one cache folder and its per-part sub-folders.
- ``ground.assets``: files fetched or built into the cache, recorded with size and sha256
  in a manifest and checked cheaply on later use.
"""
