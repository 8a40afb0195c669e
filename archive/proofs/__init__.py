"""Proofs over a snapshot id: the digest document that holds them (`digest`), WACZ signatures
(`signing`), RFC 3161 timestamps (`timestamping`, with the CMS checks in `tsacheck`) and
their offline check for verify (`checks`).

The crypto libraries (cryptography, asn1crypto) are imported only here. May import:
`archive.snapshot`, `archive.warc`, `archive.formats` and the top-level modules.
"""
