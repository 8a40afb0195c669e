"""The web side: replay of a collection in a browser, with pywb run as a subprocess from its
own environment (`replay`).

May import: `archive.read`, `archive.snapshot`, `archive.warc`, `archive.formats` and the
top-level modules; never the write path.
"""
