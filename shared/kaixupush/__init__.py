"""KaixuPush: a customer's build tool deploys a static site to Netlify with its Kaixu key.

The flow follows Netlify's file-digest deploy: ``init`` sends the manifest (path -> sha1) and
Netlify answers which digests it does not have yet; those files are uploaded whole
(``uploads.upload_file``) or in parts that a durable job assembles and verifies
(``uploads`` + ``jobs``); ``deploy.complete`` waits for Netlify to publish. One module per
concern: ``paths`` (path rules), ``manifest`` (the init body, checked as it arrives with
``json_stream``), ``netlify_api`` (the HTTP client and the per-token call budget),
``staging`` (parts in PostgreSQL or S3, and the staging quotas), ``jobs`` (the queue and the
upkeep), ``billing`` (events, caps, invoices), ``limits`` (deploy rate limit, concurrent
work per customer), ``pushes`` (the push record, its upload window and cached refreshes),
``deploy``, ``plan`` (a deploy's dry run), ``uploads``, ``projects`` and ``admin`` (the admin
views). ``client`` is the customer's side, a standalone standard-library program that imports
nothing of this package; ``publish`` serves it at ``/kaixupush.py``.
"""
