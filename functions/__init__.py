"""One module per endpoint; ``gateway_chat.py`` serves ``/.netlify/functions/gateway-chat``."""
