"""Settings: layering (flags > environment > file > defaults) and errors naming file/line/key."""

import ipaddress
import re
import tomllib
from pathlib import Path

import pytest

from resolver.access import Access
from resolver.config import (
    README_ORDER,
    ConfigError,
    Endpoint,
    Settings,
    build_layered_settings,
    build_settings,
    settings_toml,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rootwalk.toml"
    path.write_text(text)
    return path


def test_defaults_listen_on_loopback_port_53() -> None:
    settings = Settings()
    assert settings.listen == (Endpoint("127.0.0.1", 53), Endpoint("::1", 53))
    assert settings.upstream_timeout_s == 1.0
    assert settings.client_deadline_s == 4.0
    assert settings.tcp_idle_timeout_s == 10.0
    assert settings.max_tcp_connections >= 256


def test_endpoint_parsing() -> None:
    assert Endpoint.parse("[::1]:5300") == Endpoint("::1", 5300)
    assert Endpoint.parse("127.0.0.1:53") == Endpoint("127.0.0.1", 53)
    assert str(Endpoint("::1", 5300)) == "[::1]:5300"
    for bad in ["::1:53", "localhost:53", "127.0.0.1:70000", "127.0.0.1"]:
        with pytest.raises(ValueError):
            Endpoint.parse(bad)


def test_file_environment_and_flags_layer_in_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'listen = ["127.0.0.1:5301"]\noutbound_port = 10053\nupstream_timeout_s = 0.5\n'
        'allow_clients = ["10.0.0.0/8 allow_snoop"]\n',
    )
    settings = build_settings(
        config_file=path,
        environ={"ROOTWALK_OUTBOUND_PORT": "20053", "ROOTWALK_LISTEN": "127.0.0.1:5302"},
        flags={"listen": ["[::1]:5303", "127.0.0.1:5304"], "log_level": None},
    )
    assert settings.listen == (Endpoint("::1", 5303), Endpoint("127.0.0.1", 5304))
    assert settings.outbound_port == 20053
    assert settings.upstream_timeout_s == 0.5
    assert settings.allow_clients[0].network == ipaddress.ip_network("10.0.0.0/8")
    assert settings.allow_clients[0].access is Access.ALLOW_SNOOP


def test_relative_hints_path_is_relative_to_the_file(tmp_path: Path) -> None:
    settings = build_settings(config_file=write(tmp_path, 'root_hints = "hints.txt"\n'))
    assert settings.root_hints == tmp_path / "hints.txt"


def test_dnssec_settings_from_the_file(tmp_path: Path) -> None:
    """Trust anchor files are relative to the file, as the hints; negative trust anchors
    are domain names, absolute with or without the final dot."""
    text = (
        'trust_anchors = ["lab.ds", "/etc/root.ds"]\n'
        'negative_trust_anchors = ["broken.example", "other.test."]\n'
        "val_bogus_ttl_s = 5\ndnssec = false\n"
    )
    settings = build_settings(config_file=write(tmp_path, text))
    assert settings.trust_anchors == (tmp_path / "lab.ds", Path("/etc/root.ds"))
    assert [n.to_text() for n in settings.negative_trust_anchors] == [
        "broken.example.",
        "other.test.",
    ]
    assert settings.val_bogus_ttl_s == 5.0
    assert settings.dnssec is False


def test_bad_value_names_file_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, '# settings\nlog_level = "INFO"\nlisten = ["nowhere:53"]\n')
    with pytest.raises(ConfigError) as caught:
        build_settings(config_file=path)
    message = str(caught.value)
    assert str(path) in message
    assert "line 3" in message
    assert "'listen'" in message
    assert "nowhere:53" in message


def test_unknown_key_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"line 1: key 'listen_on': unknown setting"):
        build_settings(config_file=write(tmp_path, 'listen_on = ["127.0.0.1:53"]\n'))


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "outbound_port = 53\nlisten = = 3\n")
    with pytest.raises(ConfigError, match=r"rootwalk.toml: .*line 2"):
        build_settings(config_file=path)


def test_wrong_type_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"key 'outbound_port': expected a whole number"):
        build_settings(config_file=write(tmp_path, 'outbound_port = "fifty"\n'))
    with pytest.raises(ConfigError, match=r"key 'upstream_timeout_s'"):
        build_settings(config_file=write(tmp_path, "upstream_timeout_s = -1\n"))


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="ROOTWALK_OUTBOUND_ALLOW: key 'outbound_allow'"):
        build_settings(environ={"ROOTWALK_OUTBOUND_ALLOW": "not-a-network"})


def test_bad_flag_names_the_flag() -> None:
    with pytest.raises(ConfigError, match="--allow-clients: key 'allow_clients'"):
        build_settings(flags={"allow_clients": ["10.0.0.0/8 sometimes"]})


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        build_settings(config_file=tmp_path / "absent.toml")


def test_ttl_bounds_and_harden_glue(tmp_path: Path) -> None:
    """Unbound's defaults: cache-max-ttl 86400, cache-min-ttl 0, cache-max-negative-ttl 3600,
    harden-glue yes."""
    defaults = Settings()
    assert (defaults.max_ttl, defaults.min_ttl, defaults.max_negative_ttl) == (86400, 0, 3600)
    assert defaults.harden_glue
    path = write(tmp_path, "max_ttl = 600\nmin_ttl = 30\nharden_glue = false\n")
    settings = build_settings(config_file=path, environ={"ROOTWALK_MAX_NEGATIVE_TTL": "60"})
    assert (settings.max_ttl, settings.min_ttl, settings.max_negative_ttl) == (600, 30, 60)
    assert not settings.harden_glue
    with pytest.raises(ConfigError, match=r"line 1: key 'max_ttl'"):
        build_settings(config_file=write(tmp_path, "max_ttl = -1\n"))
    with pytest.raises(ConfigError, match="min_ttl"):
        build_settings(config_file=write(tmp_path, "max_ttl = 10\nmin_ttl = 20\n"))


def test_qname_minimisation_is_on_by_default_and_can_be_turned_off(tmp_path: Path) -> None:
    """Unbound's defaults: qname-minimisation yes (strict no)."""
    assert Settings().qname_minimisation
    assert not build_settings(environ={"ROOTWALK_QNAME_MINIMISATION": "false"}).qname_minimisation
    path = write(tmp_path, "qname_minimisation = false\n")
    assert not build_settings(config_file=path).qname_minimisation
    with pytest.raises(ConfigError, match="ROOTWALK_QNAME_MINIMISATION"):
        build_settings(environ={"ROOTWALK_QNAME_MINIMISATION": "maybe"})


def test_check_config_output_is_toml_that_reads_back_as_the_same_settings(tmp_path: Path) -> None:
    """Issue 14, item 7: valid TOML (no Python reprs), README order, each value's layer."""
    path = write(tmp_path, 'outbound_port = 10053\n\nallow_clients = ["10.0.0.0/8 deny"]\n')
    settings, sources = build_layered_settings(
        config_file=path,
        environ={"ROOTWALK_METRICS": "off", "ROOTWALK_SERVE_STALE": "true"},
        flags={"listen": ["[::1]:5354", "127.0.0.1:5355"], "outbound_allow": ["10.0.0.0/8"]},
    )
    text = settings_toml(settings, sources)
    parsed = tomllib.loads(text)
    assert parsed["listen"] == ["[::1]:5354", "127.0.0.1:5355"]
    assert parsed["outbound_allow"] == ["10.0.0.0/8"]
    assert parsed["serve_stale"] is True
    again = write(tmp_path, text)
    assert build_settings(config_file=again) == settings
    lines = text.splitlines()
    assert 'listen = ["[::1]:5354", "127.0.0.1:5355"]  # flag --listen' in lines
    assert f"outbound_port = 10053  # {path}:1" in lines
    assert f'allow_clients = ["10.0.0.0/8 deny"]  # {path}:3' in lines
    assert 'metrics = "off"  # environment ROOTWALK_METRICS' in lines
    assert "max_ttl = 86400  # default" in lines
    keys = [m.group(1) for m in map(re.compile(r"^(?:# )?(\w+) ").match, lines[1:]) if m]
    assert keys == list(README_ORDER)


def test_readme_order_is_the_readme_configuration_table() -> None:
    """README_ORDER and the README's table list the same keys in the same order."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| `ROOTWALK_(\w+)` \|", readme, re.MULTILINE)
    assert [key for key, _ in rows] == list(README_ORDER)
    assert all(variable == key.upper() for key, variable in rows)


@pytest.mark.parametrize("value", ['"yes"', "1", '"true"', '"on"'])
def test_booleans_in_the_file_are_toml_booleans_only(tmp_path: Path, value: str) -> None:
    """Issue 14, item 8: ``"yes"`` is an error as ``1`` is, naming the file, line and key."""
    path = write(tmp_path, f"max_ttl = 600\nserve_stale = {value}\n")
    with pytest.raises(ConfigError) as caught:
        build_settings(config_file=path)
    assert str(caught.value).startswith(
        f"{path}: line 2: key 'serve_stale': expected true or false"
    )


def test_booleans_from_the_environment_are_spelled_true_or_false() -> None:
    assert build_settings(environ={"ROOTWALK_SERVE_STALE": "true"}).serve_stale
    for spelling in ("yes", "1", "on"):
        with pytest.raises(ConfigError, match="ROOTWALK_SERVE_STALE: key 'serve_stale'"):
            build_settings(environ={"ROOTWALK_SERVE_STALE": spelling})


def test_an_unknown_rootwalk_variable_names_the_closest_setting() -> None:
    with pytest.raises(ConfigError) as caught:
        build_settings(environ={"ROOTWALK_LISTN": "127.0.0.1:53"})
    assert str(caught.value) == (
        "ROOTWALK_LISTN: no such setting (did you mean ROOTWALK_LISTEN, key 'listen'?)"
    )
    with pytest.raises(ConfigError, match=r"^ROOTWALK_NOTHING_LIKE_IT: no such setting$"):
        build_settings(environ={"ROOTWALK_NOTHING_LIKE_IT": "1"})
    assert build_settings(environ={"OTHER_LISTN": "x"}) == Settings()


def test_rootwalk_variables_read_elsewhere_are_allowed() -> None:
    """The variables tests, benchmarks and resolver/paths.py read are not settings, yet allowed:
    every ``ROOTWALK_*`` name in the code is either a setting or listed."""
    from resolver.config import ENV_PREFIX, NON_SETTING_VARIABLES  # noqa: PLC0415

    root = Path(__file__).parents[2]
    used: set[str] = set()
    for folder in ("resolver", "tests", "benchmarks"):
        for source in (root / folder).rglob("*.py"):
            if source == Path(__file__):
                continue  # this file's own wrong names
            used |= set(re.findall(r"\b(ROOTWALK_[A-Z0-9_]+)\b\s*[\"'=]", source.read_text()))
    settings = {ENV_PREFIX + key.upper() for key in README_ORDER}
    assert used - settings - {"ROOTWALK_PORT", "ROOTWALK_PORTS"} <= NON_SETTING_VARIABLES
    assert build_settings(environ=dict.fromkeys(NON_SETTING_VARIABLES, "1")) == Settings()


@pytest.mark.parametrize(
    ("key", "value", "meant"),
    [
        ("outbound_allow", "192.168.1.1/16", "192.168.0.0/16"),
        ("allow_clients", "10.1.2.3/8 allow_snoop", "10.0.0.0/8"),
        ("outbound_allow", "2001:db8::1/32", "2001:db8::/32"),
        ("proxy_protocol_from", "10.0.0.1/8", "10.0.0.0/8"),
    ],
)
def test_a_cidr_with_host_bits_says_the_network_meant(
    tmp_path: Path, key: str, value: str, meant: str
) -> None:
    path = write(tmp_path, f'{key} = ["{value}"]\n')
    with pytest.raises(ConfigError) as caught:
        build_settings(config_file=path)
    message = str(caught.value)
    assert message.startswith(f"{path}: line 1: key '{key}': ")
    assert f"has host bits set: write {meant} for the network" in message


def test_an_error_inside_a_table_names_its_line(tmp_path: Path) -> None:
    """Every key after a ``[table]`` header belongs to it (TOML 1.0): the error names both."""
    path = write(tmp_path, 'max_ttl = 600\n\n[server]\nlog_level = "INFO"\nlisten = ["x"]\n')
    with pytest.raises(ConfigError) as caught:
        build_settings(config_file=path)
    assert str(caught.value).startswith(
        f"{path}: line 3: table [server]: key 'log_level' (line 4) belongs to this table"
    )
    path = write(tmp_path, "max_ttl = 600\n[cache.sizes]\nrrset = 5\n")
    with pytest.raises(ConfigError, match=r"line 2: table \[cache\]: settings are top-level keys"):
        build_settings(config_file=path)


def test_an_unknown_key_names_the_closest_setting(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"key 'max_tll': unknown setting \(did you mean max_ttl\?\)"
    ):
        build_settings(config_file=write(tmp_path, "max_tll = 600\n"))


def test_proxy_protocol_from_is_empty_unless_set(tmp_path: Path) -> None:
    """Empty by default (no PROXY header read from anyone); a list of networks, a bare
    address a /32 or /128."""
    assert Settings().proxy_protocol_from == ()
    path = write(tmp_path, 'proxy_protocol_from = ["127.0.0.1", "2001:db8::/64"]\n')
    assert [str(n) for n in build_settings(config_file=path).proxy_protocol_from] == [
        "127.0.0.1/32",
        "2001:db8::/64",
    ]
    with pytest.raises(ConfigError, match=r"line 1: key 'proxy_protocol_from'"):
        build_settings(config_file=write(tmp_path, 'proxy_protocol_from = ["dnsdist"]\n'))


def test_encrypted_listeners_are_off_by_default_and_take_their_standard_ports(
    tmp_path: Path,
) -> None:
    """DoT on 853 (RFC 7858 §3.1) and DoH on 443 unless a port is given; the certificate
    and key are files relative to the settings file, as the root hints."""
    assert Settings().dot_listen is None and Settings().doh_listen is None
    path = write(
        tmp_path,
        'tls_cert = "lab.crt"\ntls_key = "lab.key"\ndot_listen = "127.0.0.1"\n'
        'doh_listen = "[::1]:8443"\n',
    )
    settings = build_settings(config_file=path)
    assert settings.dot_listen == Endpoint("127.0.0.1", 853)
    assert settings.doh_listen == Endpoint("::1", 8443)
    assert settings.tls_cert == tmp_path / "lab.crt" and settings.tls_key == tmp_path / "lab.key"
    assert build_settings(environ={"ROOTWALK_DOH_LISTEN": "off"}).doh_listen is None


def test_an_encrypted_listener_without_its_certificate_names_what_is_missing(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path, 'listen = ["127.0.0.1:53"]\ntls_cert = "lab.crt"\ndot_listen = "127.0.0.1"\n'
    )
    with pytest.raises(ConfigError, match=rf"{path}:3: key 'dot_listen': needs tls_key"):
        build_settings(config_file=path)
    with pytest.raises(ConfigError, match="ROOTWALK_DOH_LISTEN: key 'doh_listen': needs tls_cert"):
        build_settings(environ={"ROOTWALK_DOH_LISTEN": "127.0.0.1"})
    with pytest.raises(ConfigError, match=r"line 1: key 'dot_listen': expected ADDR\[:PORT\]"):
        build_settings(config_file=write(tmp_path, "dot_listen = 853\n"))
