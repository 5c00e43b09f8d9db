"""KaixuPush: a customer's build tool deploys a static site to Netlify with its Kaixu key.

The flow follows Netlify's file-digest deploy: ``init`` sends the manifest (path -> sha1) and
Netlify answers which digests it does not have yet; those files are uploaded whole
(``uploads.upload_file``) or in parts that a durable job assembles and verifies
(``uploads`` + ``jobs``); ``deploy.complete`` waits for Netlify to publish. One module per
concern: ``paths`` (path rules), ``manifest`` (the init body), ``netlify_api`` (the HTTP
client), ``staging`` (parts in PostgreSQL or S3), ``jobs`` (the queue), ``billing`` (events,
caps, invoices), ``limits`` (deploy rate limit), ``pushes`` (the push record), ``deploy``,
``uploads``, ``projects`` and ``admin`` (the admin views).
"""
