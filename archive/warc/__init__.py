"""The WARC 1.1 format: writing records (`writer`), checking every record's digests (`check`)
and the CDXJ index of a snapshot's responses (`cdxj`).

The only place WARC bytes are written. May import: `archive.formats` and the top-level
`errors`, `models` and `version`.
"""
