"""The porter's parts: pure window arithmetic and merging (``windows``,
``merge``), its durable state (``state``, ``seen``) and its jobs (``jobs``).
``helios.services.porter`` composes them into the service."""
