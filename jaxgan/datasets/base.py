"""What jaxgan's dataset builders and its data preparation share: whether the download host
can be reached (one function, so that tests can replace it). Imports nothing of the package.
"""

import socket
import threading
import urllib.parse
import urllib.request

# Seconds to wait for the download host before calling the machine offline.
NETWORK_TIMEOUT = 3.0


def network_available(url: str, timeout: float = NETWORK_TIMEOUT) -> bool:
  """Whether `url`'s host (or the proxy that requests would use) accepts TCP in `timeout` s.
  The builders and `preparation` ask it through this module (tests replace it)."""
  parts = urllib.parse.urlsplit(url)
  proxy = urllib.request.getproxies().get(parts.scheme)
  if proxy and not urllib.request.proxy_bypass(parts.hostname):
    parts = urllib.parse.urlsplit(proxy if "//" in proxy else f"http://{proxy}")
  port = parts.port or (443 if parts.scheme == "https" else 80)
  connected = []

  def connect():
    try:
      socket.create_connection((parts.hostname, port), timeout=timeout).close()
      connected.append(True)
    except OSError:
      pass

  # A thread bounds the DNS lookup too, which create_connection's timeout does not cover;
  # a refused connection or unknown host still answers at once.
  thread = threading.Thread(target=connect, daemon=True)
  thread.start()
  thread.join(timeout)
  return bool(connected)
