"""Structural comparison of two XML documents: is every element of IN in OUT, at its place, with equal
attributes and text (whitespace ignored)? What OUT adds is listed; what it changed or dropped is listed too."""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET


@dataclass
class StructuralDiff:
    in_elements: int = 0
    out_elements: int = 0
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    added: list[Element] = field(default_factory=list)


def _text(element: Element) -> str:
    return " ".join((element.text or "").split())


def _label(element: Element, path: str) -> str:
    key = next((f"[{k}={element.get(k)}]" for k in ("id", "name", "ref") if element.get(k)), "")
    return f"{path}/{element.tag}{key}"


def _contains(a: Element, b: Element) -> bool:
    """Every part of `a` is in `b` (same tag, attributes, text; a's children a subsequence of b's)."""
    if a.tag != b.tag or a.attrib != b.attrib or _text(a) != _text(b):
        return False
    children = list(b)
    position = 0
    for child in a:
        while position < len(children) and not _contains(child, children[position]):
            position += 1
        if position == len(children):
            return False
        position += 1
    return True


def _walk(a: Element, b: Element, path: str, diff: StructuralDiff) -> None:
    here = _label(a, path)
    if a.attrib != b.attrib:
        diff.changed.append(f"{here}: attributes {a.attrib} -> {b.attrib}")
    if _text(a) != _text(b):
        diff.changed.append(f"{here}: text {_text(a)!r} -> {_text(b)!r}")
    out_children = list(b)
    used = [False] * len(out_children)
    position = 0
    for child in a:
        match = next((i for i in range(position, len(out_children)) if _contains(child, out_children[i])), None)
        if match is not None:
            used[match] = True
            position = match + 1
            _walk(child, out_children[match], here, diff)  # equal so far: collect what was added inside
            continue
        # not found whole: the first same-tag element at or after here stands for it (a change inside it)
        near = next((i for i in range(position, len(out_children))
                     if not used[i] and out_children[i].tag == child.tag and out_children[i].attrib == child.attrib),
                    None)
        if near is None:
            near = next((i for i in range(position, len(out_children))
                         if out_children[i].tag == child.tag and not used[i]), None)
        if near is None:
            diff.removed.append(_label(child, here))
            continue
        used[near] = True
        position = near + 1
        _walk(child, out_children[near], here, diff)
    diff.added.extend(c for c, u in zip(out_children, used, strict=True) if not u)


def structural_diff(in_bytes: bytes, out_bytes: bytes) -> StructuralDiff:
    a = SafeET.fromstring(in_bytes, forbid_dtd=False)
    b = SafeET.fromstring(out_bytes, forbid_dtd=False)
    diff = StructuralDiff(in_elements=sum(1 for _ in a.iter()), out_elements=sum(1 for _ in b.iter()))
    if a.tag != b.tag:
        diff.changed.append(f"root <{a.tag}> -> <{b.tag}>")
        return diff
    _walk(a, b, "", diff)
    return diff
