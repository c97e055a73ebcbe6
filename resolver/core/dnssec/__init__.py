"""DNSSEC validation's pure building blocks (RFC 4033-4035, RFC 5155, RFC 6840).

Sans-IO like the rest of the core: each function takes the RRsets a reply carried, the keys
already trusted, ``now`` (wall-clock seconds) and the client query's
:class:`~resolver.limits.ValidationWork`, and returns a :class:`~.security.Verdict`. The
resolution machine fetches DNSKEY and DS as sub-questions through the mesh and calls these.

- :mod:`.security`: the four states and the verdict with its Extended DNS Error.
- :mod:`.verify`: RRSIG verification (through ``dns.dnssec``) and DS -> DNSKEY matching.
- :mod:`.denial`: NSEC and NSEC3 proofs of non-existence.
- :mod:`.anchor`: trust anchors parsed from DS or DNSKEY text.
"""
