"""Formats: what a record holds, parsed by pure functions that both sides share.

URLs and SURT keys (`urls`), HTTP/1.x messages as bytes on the wire (`wire`), and the text of
an HTML document (`html`: its encoding and what a reader sees). The write side parses what it
fetches with them and the read side what it reads back, so both agree on every byte.
May import: `archive.errors`, `archive.models`, `archive.version`; nothing else of the package.
"""
