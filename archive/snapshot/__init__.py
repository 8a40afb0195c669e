"""The snapshot and the collection: a snapshot's package files (`package`: pages.jsonl,
datapackage.json and its digest, the snapshot id), reading a snapshot as stored, folder or
.wacz (`reader`), the on-disk collection (`store`, the only module that builds snapshot
paths) and the records a snapshot's revisits refer to (`depends`).

May import: `archive.warc`, `archive.formats` and the top-level modules.
"""
