"""Syslog over the network for the relay: framing (pure), events (pure), server (sockets)."""
