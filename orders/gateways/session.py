"""Where `send_form` used to live; it moved to `orders.gateways._session` (internal).

Kept only until the live-quotes source imports it from there; nothing else uses this name.
"""

from orders.gateways._session import send_form

__all__ = ["send_form"]
