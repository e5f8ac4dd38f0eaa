"""Opt-in aarch64 emulation check (see README.md here)."""
