"""The operator's side: admin authentication and every admin resource (customers, keys,
devices, usage, audit, monitor and its live tail, exports, policy, Netlify tokens)."""
