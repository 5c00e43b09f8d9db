"""The gateway: admission, calls, streams, settlement, keys and their limits."""
