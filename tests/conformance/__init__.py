"""Conformance: the embedded daemon and the C xenstored 4.17 answer alike."""
