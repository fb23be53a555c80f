"""HTTPS_PROXY, HTTP_PROXY and NO_PROXY: which providers go through which proxy."""

from __future__ import annotations

import base64

import pytest
from switchyard_router.egress import Egress
from switchyard_router.envconfig import EnvConfigError

OPENAI = "https://api.openai.com/v1"
LOCAL = "http://127.0.0.1:8000/v1"


def test_no_proxy_variables_mean_direct():
    assert Egress({"PATH": "/usr/bin"}).proxy_for(OPENAI) is None


def test_each_scheme_takes_its_own_variable():
    egress = Egress({"HTTPS_PROXY": "http://secure:3128", "HTTP_PROXY": "http://plain:3128"})
    assert str(egress.proxy_for(OPENAI).url) == "http://secure:3128"
    assert str(egress.proxy_for(LOCAL).url) == "http://plain:3128"
    assert Egress({"HTTP_PROXY": "http://plain:3128"}).proxy_for(OPENAI) is None


def test_lower_case_wins_over_upper_case_as_in_urllib():
    egress = Egress({"https_proxy": "http://lower:1", "HTTPS_PROXY": "http://upper:2"})
    assert str(egress.proxy_for(OPENAI).url) == "http://lower:1"
    egress = Egress({"HTTPS_PROXY": "http://upper:2", "https_proxy": "http://lower:1"})
    assert str(egress.proxy_for(OPENAI).url) == "http://lower:1"


def test_credentials_are_split_off_the_url_that_gets_logged():
    proxy = Egress({"HTTPS_PROXY": "http://svc:pa%40ss@proxy.corp:3128"}).proxy_for(OPENAI)
    assert str(proxy.url) == "http://proxy.corp:3128"
    assert proxy.headers == {"Proxy-Authorization": "Basic " + base64.b64encode(b"svc:pa@ss").decode()}


def test_a_bare_host_and_port_is_an_http_proxy_and_blank_values_are_ignored():
    egress = Egress({"HTTPS_PROXY": "proxy.corp:3128", "HTTP_PROXY": "  "})
    assert str(egress.proxy_for(OPENAI).url) == "http://proxy.corp:3128"
    assert egress.proxy_for(LOCAL) is None


@pytest.mark.parametrize(
    ("no_proxy", "bypassed"),
    [
        ("api.openai.com", True),
        ("openai.com", True),  # a domain covers its subdomains
        (".openai.com", True),
        ("localhost, api.openai.com:443", True),
        ("*", True),
        ("notopenai.com,api.openai.com:8443", False),
        ("", False),
    ],
)
def test_no_proxy_follows_urllibs_rules(no_proxy: str, bypassed: bool):
    egress = Egress({"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": no_proxy})
    assert (egress.proxy_for(OPENAI) is None) is bypassed


def test_other_proxy_variables_are_not_ours():
    egress = Egress({"FTP_PROXY": "ftp://x", "ALL_PROXY": "socks5://x:1080", "PROXY": "nonsense"})
    assert egress.proxies == {}


@pytest.mark.parametrize("value", ["socks5://svc:hunter2@proxy:1080", "http://", "ftp://proxy"])
def test_an_unusable_proxy_stops_start_up_naming_the_variable_and_never_the_password(value: str):
    with pytest.raises(EnvConfigError) as caught:
        Egress({"HTTPS_PROXY": value})
    message = str(caught.value)
    assert message.startswith("HTTPS_PROXY=")
    assert "give an http:// or https:// proxy URL" in message
    assert "hunter2" not in message
