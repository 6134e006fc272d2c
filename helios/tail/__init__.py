"""Following log files: discovery, identity, reading complete lines."""
