"""wyoming.advertise: the satellite announced by zeroconf as Home Assistant's integration looks
for it (`_wyoming._tcp`), found by a separate python-zeroconf browser on this machine's LAN
address, and gone once guardd stops announcing it."""

from __future__ import annotations

import pytest
from zeroconf import IPVersion, Zeroconf

from harness import wait_until

from guardd.homeassistant.advertise import SERVICE, Advertiser, lan_addresses

ADDRESSES = lan_addresses("0.0.0.0")
pytestmark = pytest.mark.skipif(not ADDRESSES, reason="this machine has no LAN address to announce on")


def looked_up(name: str, timeout_ms: int = 3000):
    zc = Zeroconf(ip_version=IPVersion.V4Only)
    try:
        return zc.get_service_info(SERVICE, f"{name}.{SERVICE}", timeout=timeout_ms)
    finally:
        zc.close()


def test_the_satellite_is_found_by_name_with_its_address_and_port_then_withdrawn():
    advertiser = Advertiser("guardd-test-kitchen", "0.0.0.0", 10799)
    advertiser.start()
    try:
        wait_until(lambda: advertiser._zeroconf is not None, "the announcement", 15)
        info = looked_up("guardd-test-kitchen")
        assert info is not None
        assert info.port == 10799 and set(info.parsed_addresses()) <= set(ADDRESSES)
    finally:
        advertiser.stop()
    assert looked_up("guardd-test-kitchen", 1500) is None


def test_listening_on_one_address_announces_that_address_alone():
    assert lan_addresses(ADDRESSES[0]) == [ADDRESSES[0]]
    assert lan_addresses("::1") == []  # (IPv4 only: what Home Assistant's discovery uses)
