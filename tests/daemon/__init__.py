"""Tests of the embedded xenstored (xsactor.daemon)."""
