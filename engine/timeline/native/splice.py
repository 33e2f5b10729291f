"""An XML document as its original bytes plus a light element tree with byte offsets, so writers can insert
new elements (and, where documented, replace one element's text) and leave every other byte as it was.

Parsing is expat with no DTD or entity processing (the caller has already refused entity declarations with
`check_xml_safe`); nothing is read from disk or network. Declaration, DOCTYPE, comments, attribute order,
quoting, whitespace and encoding survive because they are never re-serialised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from xml.parsers import expat
from xml.sax.saxutils import escape

from ...errors import BadInputError

_ENCODING = re.compile(rb"""^(?:\xef\xbb\xbf)?<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


@dataclass(eq=False)
class Node:
    """One element: its tag, attributes (in document order), children, text and where it sits in the bytes."""

    tag: str
    attrib: dict[str, str]
    parent: Node | None = None
    children: list[Node] = field(default_factory=list)
    text: str = ""
    #: Offset of its '<', just after its start tag's '>', of its end tag's '</' (None: self-closing), after it.
    start: int = 0
    open_end: int = 0
    close_start: int | None = None
    end: int = 0

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.attrib.get(name, default)

    def find(self, tag: str) -> Node | None:
        return next((c for c in self.children if c.tag == tag), None)

    def findall(self, tag: str) -> list[Node]:
        return [c for c in self.children if c.tag == tag]

    def findtext(self, tag: str, default: str = "") -> str:
        child = self.find(tag)
        return child.text.strip() if child is not None else default

    def path(self, *tags: str) -> Node | None:
        node: Node | None = self
        for tag in tags:
            node = node.find(tag) if node is not None else None
        return node

    def iter(self, tag: str | None = None):
        if tag is None or self.tag == tag:
            yield self
        for child in self.children:
            yield from child.iter(tag)


def _tag_end(data: bytes, start: int) -> int:
    """Offset just after the '>' closing the tag that starts at `start` (quotes respected)."""
    quote = 0
    i = start + 1
    while i < len(data):
        ch = data[i]
        if quote:
            if ch == quote:
                quote = 0
        elif ch in (0x22, 0x27):
            quote = ch
        elif ch == 0x3E:
            return i + 1
        i += 1
    raise BadInputError("unterminated tag in XML")


class Document:
    """Original bytes + element tree; `insert_*` and `set_text` collect edits, `to_bytes` applies them."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        match = _ENCODING.match(data)
        self.encoding = match.group(1).decode("ascii") if match else "utf-8"
        if self.encoding.lower().replace("-", "") in ("utf16", "utf32", "ucs2", "ucs4"):
            raise BadInputError(f"XML in {self.encoding} cannot be added to byte-faithfully; save it as UTF-8")
        self._edits: list[tuple[int, int, int, bytes]] = []  # (offset, order, end, replacement)
        self.newline = "\r\n" if b"\r\n" in data[:65536] else "\n"
        self.root = self._parse()
        self.step = indent_step(self)

    def _parse(self) -> Node:
        parser = expat.ParserCreate()
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.buffer_text = True

        def refuse(*_args) -> None:
            raise BadInputError("refused XML entity declaration")

        parser.EntityDeclHandler = refuse
        stack: list[Node] = []
        roots: list[Node] = []
        data = self.data

        def start(tag: str, attrib: dict[str, str]) -> None:
            offset = parser.CurrentByteIndex
            node = Node(tag, dict(attrib), parent=stack[-1] if stack else None, start=offset)
            node.open_end = _tag_end(data, offset)
            if node.parent is not None:
                node.parent.children.append(node)
            else:
                roots.append(node)
            stack.append(node)

        def end(_tag: str) -> None:
            node = stack.pop()
            if data[node.open_end - 2:node.open_end] == b"/>":
                node.close_start, node.end = None, node.open_end
            else:
                node.close_start = parser.CurrentByteIndex
                node.end = _tag_end(data, node.close_start)

        def chars(text: str) -> None:
            if stack and not stack[-1].children:
                stack[-1].text += text

        parser.StartElementHandler = start
        parser.EndElementHandler = end
        parser.CharacterDataHandler = chars
        try:
            parser.Parse(data, True)
        except expat.ExpatError as exc:
            raise BadInputError(f"XML is not well-formed ({exc})") from None
        return roots[0]

    # -- edits ------------------------------------------------------------------------------------------------
    def _encode(self, text: str) -> bytes:
        """New markup in the document's encoding and line ending (a CRLF file stays CRLF)."""
        return text.replace("\n", self.newline).encode(self.encoding, "xmlcharrefreplace")

    def indent_of(self, node: Node) -> str:
        """The whitespace in front of `node` on its line (how this document indents that level)."""
        line_start = self.data.rfind(b"\n", 0, node.start) + 1
        lead = self.data[line_start:node.start]
        return lead.decode("ascii") if lead.strip() == b"" else ""

    def child_indent(self, parent: Node) -> str:
        """The indentation of `parent`'s children (its last child's, else one step deeper than `parent`)."""
        if parent.children:
            return self.indent_of(parent.children[-1])
        return self.indent_of(parent) + self.step

    def insert_after(self, node: Node, text: str) -> None:
        """New markup right after `node` (on its own line, at `node`'s indentation)."""
        self._edits.append((node.end, len(self._edits), node.end, self._encode(text)))

    def insert_before(self, node: Node, text: str) -> None:
        """New markup right before `node` (the markup should end with a newline + `node`'s indentation)."""
        self._edits.append((node.start, len(self._edits), node.start, self._encode(text)))

    def append_child(self, parent: Node, text: str) -> None:
        """New markup as the last child of `parent` (a self-closing `<x/>` is opened to `<x>…</x>`)."""
        if parent.children:
            self.insert_after(parent.children[-1], text)
            return
        closing = "\n" + self.indent_of(parent)
        if parent.close_start is None:
            head = self.data[parent.start:parent.open_end - 2].rstrip()
            replacement = head + b">" + self._encode(text + closing) + b"</" + self._encode(parent.tag) + b">"
            self._edits.append((parent.start, len(self._edits), parent.end, replacement))
        else:
            self._edits.append((parent.close_start, len(self._edits), parent.close_start,
                                self._encode(text + closing)))

    def set_text(self, node: Node, text: str) -> None:
        """Replace a leaf element's text (only for documented container totals such as a track count)."""
        if node.children or node.close_start is None:
            raise ValueError(f"<{node.tag}> is not a leaf element with text")
        self._edits.append((node.open_end, len(self._edits), node.close_start, self._encode(escape(text))))

    def to_bytes(self) -> bytes:
        out = bytearray()
        position = 0
        for offset, _order, end, replacement in sorted(self._edits):
            if offset < position:
                raise ValueError("overlapping XML edits")
            out += self.data[position:offset]
            out += replacement
            position = end
        out += self.data[position:]
        return bytes(out)


def element(tag: str, attrib: dict[str, object] | None = None, children: list[str] | None = None,
            text: str | None = None, indent: str = "", step: str = "  ") -> str:
    """Serialise one new element (attributes in the given order) at `indent`, children one level deeper.

    `children` are builder callables' results made with `indent + step`; they start with a newline."""
    attrs = "".join(f' {k}="{escape(str(v), {chr(34): "&quot;"})}"' for k, v in (attrib or {}).items()
                    if v is not None)
    head = f"\n{indent}<{tag}{attrs}"
    if children:
        return f"{head}>{''.join(children)}\n{indent}</{tag}>"
    if text is not None:
        return f"{head}>{escape(text)}</{tag}>"
    return f"{head}/>"


def indent_step(document: Document) -> str:
    """The document's indentation unit (a tab, or N spaces), from its first indented line."""
    match = re.search(rb"\n([ \t]+)<", document.data)
    if not match:
        return "  "
    lead = match.group(1).decode("ascii")
    return "\t" if lead.startswith("\t") else lead
