"""Who may ask: the client access list, matched by longest prefix (as Unbound's
``access-control``)."""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from resolver.memo import remember

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_network(text: str) -> IPNetwork:
    """A CIDR network; one with host bits set (``192.168.1.1/16``) is an error that says the
    network meant, since Unbound silently masks it and the operator may have meant a host."""
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        if "host bits set" not in str(exc):
            raise
    meant = ipaddress.ip_network(text, strict=False)
    address = text.split("/", 1)[0]
    host = f"{address}/{meant.max_prefixlen}"
    raise ValueError(f"{text} has host bits set: write {meant} for the network (or {host})")


class Access(enum.Enum):
    ALLOW = "allow"  # recursion allowed; RD=0 queries REFUSED
    ALLOW_SNOOP = "allow_snoop"  # as allow, and RD=0 queries answered too
    REFUSE = "refuse"  # answer REFUSED
    DENY = "deny"  # drop silently


@dataclass(frozen=True, slots=True)
class AccessRule:
    network: IPNetwork
    access: Access

    @classmethod
    def parse(cls, text: str) -> AccessRule:
        """``"CIDR"`` (allow) or ``"CIDR ACTION"``, e.g. ``"10.0.0.0/8 allow_snoop"``."""
        parts = text.split()
        if not 1 <= len(parts) <= 2:
            raise ValueError(f"expected 'CIDR [allow|allow_snoop|refuse|deny]', got {text!r}")
        network = parse_network(parts[0])
        try:
            access = Access(parts[1]) if len(parts) == 2 else Access.ALLOW
        except ValueError:
            raise ValueError(
                f"unknown access {parts[1]!r}: one of allow, allow_snoop, refuse, deny"
            ) from None
        return cls(network, access)

    def __str__(self) -> str:
        return f"{self.network} {self.access.value}"


_MAX_REMEMBERED_CLIENTS = 65536

LOOPBACK_RULES = (
    AccessRule(ipaddress.ip_network("127.0.0.0/8"), Access.ALLOW),
    AccessRule(ipaddress.ip_network("::1/128"), Access.ALLOW),
)


class AccessList:
    """The most specific matching rule wins; for the same network the later rule wins (so
    configured rules override the built-in loopback ones); no match is REFUSE (Unbound's
    default)."""

    def __init__(self, rules: Iterable[AccessRule]) -> None:
        by_network = {rule.network: rule for rule in rules}
        self._rules = sorted(by_network.values(), key=lambda r: r.network.prefixlen, reverse=True)
        self._decided: dict[str, Access] = {}
        """Decisions by client address (parsing an address costs more than the lookup);
        forgotten all at once when it holds too many clients."""

    def decide(self, client: str) -> Access:
        access = self._decided.get(client)
        if access is None:
            access = remember(self._decided, client, self._match(client), _MAX_REMEMBERED_CLIENTS)
        return access

    def _match(self, client: str) -> Access:
        try:
            ip = ipaddress.ip_address(client.split("%", 1)[0])
        except ValueError:
            return Access.REFUSE
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        for rule in self._rules:
            if ip.version == rule.network.version and ip in rule.network:
                return rule.access
        return Access.REFUSE
