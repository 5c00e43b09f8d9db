"""What the tests share: helpers, fixtures re-bound by the modules that use them, and the
loopback fakes (``fakes/``). No test module imports another."""
