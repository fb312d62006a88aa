"""Broker edges: the protocol, the simulated broker and Robinhood."""
