"""Services that run captures for people: the schedule (`schedule` for the file and its
entries, `timing` for when an entry is due, `runner` for running what is due), and the same
spread over machines with Celery and Redis (`cluster`, `dispatch`, `jobs`, `lease`,
`shared_index`).

May import: `archive.write`, `archive.read`, `archive.snapshot`, `archive.formats` and the
top-level modules.
"""
