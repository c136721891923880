"""Interop: unmodified libxenstore clients against the embedded daemon."""
