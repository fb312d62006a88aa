"""Broker edges: the protocol, the simulated broker, Robinhood, and the map from the
configured broker's name to the builder of its gateway (`_factory`)."""
