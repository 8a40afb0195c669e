"""The web side: replay of a collection in a browser, with pywb run as a subprocess from its
own environment (`replay`), and the check of a snapshot's replay against its capture (`qa`,
with `render`, `evidence` and `compare`).

May import: `archive.browser`, `archive.read`, `archive.snapshot`, `archive.warc`,
`archive.formats` and the top-level modules; never the write path.
"""
