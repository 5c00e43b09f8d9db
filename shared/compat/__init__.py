"""The APIs the ecosystem already speaks: OpenAI's Chat Completions (and models, embeddings)
and Anthropic's Messages, so an app moves to the gateway by changing its base URL and key.

Each format has a module that reads its requests into the neutral
:class:`~shared.providers.conversation.Conversation` and writes answers, streams and errors
back in its own shape (``openai_format``, ``anthropic_format``), and a module of endpoints
(``openai_api``, ``anthropic_api``). Admission, caps, seats, rate limits, metering, billing and
the monitor row are the gateway's own (``shared.gateway``): the same for every format.
"""
