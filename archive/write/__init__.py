"""The write path: one capture from seeds to a finished snapshot.

`capture` wires the stages: `scope` (what to fetch), `crawl` (the frontier), `fetch` (one
HTTP exchange, through the wiretap `tap` and its `tls` evidence), `extract` (links and
requisites), `dedup` (revisits) and `resume` (an interrupted capture), then hands records to
`archive.warc` and files to `archive.snapshot`. May import: `archive.snapshot`,
`archive.warc`, `archive.formats` and the top-level modules; never the read side.
"""
