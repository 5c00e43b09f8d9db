"""Test doubles that speak real wire protocols (see ``upstreams``)."""
