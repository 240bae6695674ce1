"""Announcing a Home Assistant link on the LAN, for `wyoming.advertise` and `esphome.advertise`
(off by default: telling the network that a microphone is here is itself a disclosure). Home
Assistant's Wyoming integration discovers `_wyoming._tcp` services by zeroconf (mDNS), its ESPHome
integration `_esphomelib._tcp` ones, and each offers to add what it finds.

python-zeroconf answers queries from its own threads; announcing must never hold up the
daemon, so registering runs on a thread, and a LAN that takes no multicast is logged, not a
fault (the satellite still works when added by host and port).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading

log = logging.getLogger(__name__)

SERVICE = "_wyoming._tcp.local."  # the Wyoming link's (the default)
ESPHOME_SERVICE = "_esphomelib._tcp.local."


def lan_addresses(host: str) -> list[str]:
    """The IPv4 addresses to announce: `host`, or for 0.0.0.0 every non-loopback one."""
    if not ipaddress.ip_address(host).is_unspecified:
        return [host] if ipaddress.ip_address(host).version == 4 else []
    import ifaddr  # (python-zeroconf's own dependency)

    found = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str) and not ipaddress.ip_address(ip.ip).is_loopback:
                found.append(ip.ip)
    return found


class Advertiser:
    def __init__(self, name: str, host: str, port: int, *, service: str = SERVICE, key: str = "wyoming.advertise",
                 properties: dict[str, str] | None = None) -> None:
        self.name = name
        self._service = service
        self._key = key  # the config key, for messages
        self._properties = properties or {}
        self._host = host
        self._port = port
        self._zeroconf = None
        self._info = None
        self._lock = threading.Lock()
        self._stopped = False
        self._thread = threading.Thread(target=self._register, name="guardd-zeroconf", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _register(self) -> None:
        from zeroconf import IPVersion, ServiceInfo, Zeroconf

        addresses = lan_addresses(self._host)
        if not addresses:
            log.warning("%s: no IPv4 address of this device to announce; add the satellite in Home "
                        "Assistant by host and port", self._key)
            return
        info = ServiceInfo(self._service, f"{self.name}.{self._service}", port=self._port, properties=self._properties,
                           parsed_addresses=addresses, server=f"{socket.gethostname()}.local.")
        try:
            interfaces = addresses if not ipaddress.ip_address(self._host).is_unspecified else None
            zc = Zeroconf(interfaces=interfaces, ip_version=IPVersion.V4Only) if interfaces else Zeroconf(
                ip_version=IPVersion.V4Only)
            zc.register_service(info)
        except Exception as exc:  # noqa: BLE001 - a LAN without multicast must not stop guardd
            log.warning("%s: cannot announce the satellite (%s); add it in Home Assistant by host and "
                        "port", self._key, exc)
            return
        with self._lock:
            self._zeroconf, self._info = zc, info
            stopped = self._stopped
        if stopped:
            self.stop()
        else:
            log.info("%s: announced %s on %s", self._key, info.name, ", ".join(addresses))

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            zc, info, self._zeroconf = self._zeroconf, self._info, None
        if zc is not None:
            try:
                zc.unregister_service(info)
            finally:
                zc.close()
