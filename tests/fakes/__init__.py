"""Shared fakes for tests: each says what real part it stands in for and why."""
