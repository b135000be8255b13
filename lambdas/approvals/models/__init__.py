"""Typed models shared by handlers, domain code and adapters."""
