"""The web side: `archive serve`, a Starlette application (`app`, `pages`, `api` over `views`)
on the user's port, with replay by pywb, run as a subprocess from its own environment
(`replay`), behind it on loopback (`proxy`, `server`), on an origin of its own (`origins`);
captures asked for in the browser run as child `archive capture` processes (`jobs`);
and the check of a snapshot's replay against its capture (`qa`, with `qarender`, `evidence`
and `compare`).

May import: `archive.browser`, `archive.read`, `archive.snapshot`, `archive.warc`,
`archive.formats` and the top-level modules; never the write path.
"""
