"""The asyncio edge: sockets to clients (listeners) and to upstream servers."""
