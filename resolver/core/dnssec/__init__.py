"""DNSSEC validation's pure building blocks (RFC 4033-4035, RFC 5155, RFC 6840).

Sans-IO like the rest of the core: each function takes the RRsets a reply carried, the keys
already trusted, ``now`` (wall-clock seconds) and the client query's
:class:`~resolver.limits.ValidationWork`, and returns a :class:`~.security.Verdict`. The
resolution machine fetches DNSKEY and DS as sub-questions through the mesh and calls these.

- :mod:`.security`: the four states and the verdict with its Extended DNS Error.
- :mod:`.verify`: RRSIG verification (through ``dns.dnssec``) and DS -> DNSKEY matching.
- :mod:`.denial`: NSEC and NSEC3 proofs of non-existence.
- :mod:`.anchor`: trust anchors parsed from DS or DNSKEY text.
- :mod:`.keys`: the validator's settings and its key cache (a verdict per zone).
"""

import warnings

with warnings.catch_warnings():
    # dns.dnssec loads the ``cryptography`` package's DSA module, whose deprecation warning
    # would land on stderr (a JSON log's lines) of every process that validates; loaded
    # once here, before any module of this package imports it.
    warnings.filterwarnings("ignore", message="DSA is deprecated")
    import dns.dnssec  # noqa: F401
