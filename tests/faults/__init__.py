"""Fault injection: what the gateway guarantees when a process, the database, a provider or a
client breaks mid-call."""
