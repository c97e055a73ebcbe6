"""The sans-IO core: iteration, classification, scrubbing, zone cuts, composition.

Nothing here imports asyncio, socket or prometheus_client, or reads a clock: callers pass
``now`` and a seeded ``random.Random``.
"""
