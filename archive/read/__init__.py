"""The read side: what is done with snapshots once written.

`verify` (every digest, every place a reader reads), `cite` with the page's own `metadata`,
`find` (the collection's list, a URL's TimeMap, one snapshot's details), `diff`, `export`,
`ingest` (import of a .wacz or WARC made elsewhere) and `audit` (fixity over a collection).
May import: `archive.proofs`, `archive.snapshot`, `archive.warc`, `archive.formats` and the
top-level modules; never the write path (`archive.write`).
"""
