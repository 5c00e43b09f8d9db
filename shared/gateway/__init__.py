"""The gateway: a customer's call admitted, sent upstream, streamed and settled.

``pipeline`` (ADMIT → upstream → SETTLE), ``streaming`` (the SSE relay), ``request`` (the
normalised request), ``keys`` and ``key_auth`` (Kaixu keys and their roles),
``client_errors`` (error reports from customers' apps).
"""
