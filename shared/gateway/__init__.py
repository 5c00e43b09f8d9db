"""The gateway: a customer's call admitted, sent upstream, streamed and settled.

``pipeline`` (ADMIT → upstream → SETTLE), ``admissions`` and ``settlements`` (ADMIT and SETTLE
with ``group_commit``), ``versions`` (the price and sell versions calls are billed at),
``streaming`` (the SSE relay), ``leases`` (a stream's reservation, grown a step at a time while
it streams), ``request`` (the normalised request), ``keys`` and ``key_auth`` (Kaixu keys and
their roles), ``client_errors`` (error reports from customers' apps).
"""
