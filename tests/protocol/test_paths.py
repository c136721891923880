"""Path rules of 4.17 (semantics §3, §4)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xsactor.protocol import paths
from xsactor.protocol.errors import EINVAL

HOME = "/local/domain/5"


@pytest.mark.parametrize("path", ["/", "/a", "/a/b-c_D9", "/@foo", "/a@b", "@releaseDomain"])
def test_valid(path: str) -> None:
    assert paths.validate(path, HOME, allow_special=True) == path


@pytest.mark.parametrize("path", ["/a/", "//", "/a//b", "/a.b", "/a b", "/a:b", "/é", ""])
def test_invalid(path: str) -> None:
    with pytest.raises(EINVAL):
        paths.validate(path, HOME)


def test_special_only_where_allowed() -> None:
    with pytest.raises(EINVAL):
        paths.validate("@foo", HOME)
    assert paths.validate("@foo", HOME, allow_special=True) == "@foo"


def test_relative_goes_under_home() -> None:
    assert paths.validate("data/x", HOME) == "/local/domain/5/data/x"


def test_length_outside_a_domain_home() -> None:
    assert paths.is_valid("/" + "a" * 2047)
    assert not paths.is_valid("/" + "a" * 2048)


def test_length_under_a_domain_home_counts_after_the_prefix() -> None:
    prefix = "/local/domain/7/"
    assert paths.is_valid(prefix + "a" * 2048)
    assert not paths.is_valid(prefix + "a" * 2049)


def test_six_digit_domid_is_no_prefix() -> None:
    path = "/local/domain/123456/" + "a" * 2030
    assert len(path) > 2048
    assert not paths.is_valid(path)


def test_special_length() -> None:
    assert paths.is_valid("@" + "a" * 2047, allow_special=True)
    assert not paths.is_valid("@" + "a" * 2048, allow_special=True)


def test_tree_helpers() -> None:
    assert paths.parent("/a/b") == "/a"
    assert paths.parent("/a") == "/"
    assert paths.ancestors("/a/b/c") == ["/a/b", "/a", "/"]
    assert paths.join("/", "a") == "/a"
    assert paths.basename("/a/b") == "b"
    assert paths.is_within("/w/x", "/w")
    assert not paths.is_within("/wother", "/w")
    assert paths.is_within("/anything", "/")
    assert paths.relative_to("/local/domain/0/relw/q", "/local/domain/0") == "relw/q"
    assert paths.relative_to("/elsewhere", "/local/domain/0") == "/elsewhere"


names = st.text(alphabet="abcXYZ019-_@", min_size=1, max_size=8)


@given(st.lists(names, min_size=1, max_size=6))
def test_built_paths_are_valid_and_walk_back_to_root(parts: list[str]) -> None:
    path = "/" + "/".join(parts)
    assert paths.is_valid(path)
    chain = paths.ancestors(path)
    assert chain[-1] == "/"
    assert all(paths.is_within(path, a) for a in chain)
