"""Errors are typed exceptions named after XenStore's wire names."""

from __future__ import annotations

import errno

import pytest

from xsactor.protocol import errors
from xsactor.protocol.errors import ERROR_NAMES, XenStoreError, error_class, error_from_payload


@pytest.mark.parametrize("name", ERROR_NAMES)
def test_every_wire_name_has_its_class(name: str) -> None:
    cls = error_class(name.encode() + b"\0")
    assert cls.__name__ == name
    assert issubclass(cls, XenStoreError)
    assert cls().errno == getattr(errno, name)
    assert cls().wire == name.encode() + b"\0"
    assert getattr(errors, name) is cls


def test_unknown_names_are_einval_as_libxenstore_does() -> None:
    assert error_class(b"EQUOTA\0") is errors.EINVAL


def test_builtin_bases_let_callers_catch_naturally() -> None:
    with pytest.raises(FileNotFoundError):
        raise error_from_payload(b"ENOENT\0", path="/x")
    with pytest.raises(PermissionError):
        raise errors.EACCES()
    assert "/x" in str(errors.ENOENT(path="/x"))
