"""The provider adapters and the HTTP/1.1 client, against the loopback fakes."""
