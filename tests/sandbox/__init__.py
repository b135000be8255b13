"""Tests of the local stand-ins under sandbox/."""
