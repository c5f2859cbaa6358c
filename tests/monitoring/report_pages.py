"""Reading a rendered report back: the parse that report tests assert on.

The page is parsed with the standard library's HTML parser (what a browser's tokenizer sees),
not searched with regular expressions, so a tag hidden in an attribute or a comment cannot pass
for text and escaped text cannot pass for a tag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

#: Attributes through which a page can make a browser fetch something.
FETCHING = {"src", "href", "xlink:href", "srcset", "action", "data", "poster", "background"}
_EXTERNAL = re.compile(r"^\s*(https?:|//|ftp:|file:)", re.IGNORECASE)


@dataclass
class Tag:
    name: str
    attrs: dict[str, str | None]
    classes: tuple[str, ...]
    section: str | None  # id of the enclosing <section>


@dataclass
class ParsedPage:
    """What a report page holds, as an HTML tokenizer sees it."""

    doctype: list[str] = field(default_factory=list)
    tags: list[Tag] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    section_text: dict[str, list[str]] = field(default_factory=dict)
    style: list[str] = field(default_factory=list)

    def find(self, name: str, css: str | None = None) -> list[Tag]:
        return [t for t in self.tags if t.name == name and (css is None or css in t.classes)]

    def in_section(self, section: str, name: str, css: str | None = None) -> list[Tag]:
        return [t for t in self.find(name, css) if t.section == section]

    def words(self, section: str | None = None) -> str:
        chunks = self.text if section is None else self.section_text.get(section, [])
        return " ".join(" ".join(chunks).split())

    def external_references(self) -> list[tuple[str, str, str]]:
        """(tag, attribute, value) of every attribute that would fetch from elsewhere."""
        found = []
        for tag in self.tags:
            for name, value in tag.attrs.items():
                if name in FETCHING and value is not None and _EXTERNAL.match(value):
                    found.append((tag.name, name, value))
        return found


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = ParsedPage()
        self._sections: list[str | None] = []
        self._open: list[str] = []

    def handle_decl(self, decl: str) -> None:
        self.page.doctype.append(decl)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "section":
            self._sections.append(attributes.get("id"))
        section = next((s for s in reversed(self._sections) if s), None)
        classes = tuple((attributes.get("class") or "").split())
        self.page.tags.append(Tag(tag, attributes, classes, section))
        self._open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        section = next((s for s in reversed(self._sections) if s), None)
        attributes = dict(attrs)
        classes = tuple((attributes.get("class") or "").split())
        self.page.tags.append(Tag(tag, attributes, classes, section))

    def handle_endtag(self, tag: str) -> None:
        if tag == "section" and self._sections:
            self._sections.pop()
        while self._open and self._open.pop() != tag:
            pass

    def handle_data(self, data: str) -> None:
        if self._open and self._open[-1] == "style":
            self.page.style.append(data)
            return
        self.page.text.append(data)
        section = next((s for s in reversed(self._sections) if s), None)
        if section is not None:
            self.page.section_text.setdefault(section, []).append(data)


def parse(page: str) -> ParsedPage:
    """The tags, text and style of ``page``."""
    reader = _Reader()
    reader.feed(page)
    reader.close()
    return reader.page


def assert_self_contained(page: str) -> ParsedPage:
    """Assert ``page`` is one HTML document that fetches nothing from the network; return it
    parsed."""
    parsed = parse(page)
    assert page.startswith("<!DOCTYPE html>"), page[:80]
    assert parsed.doctype == ["DOCTYPE html"], parsed.doctype
    for name in ("html", "head", "body", "title"):
        assert len(parsed.find(name)) == 1, f"{len(parsed.find(name))} <{name}> elements"
    for name in ("script", "link", "img", "iframe", "object", "embed", "base", "meta"):
        tags = parsed.find(name)
        if name == "meta":  # charset and viewport only: no http-equiv refresh
            assert all("http-equiv" not in t.attrs for t in tags), tags
            continue
        assert not tags, f"<{name}> in a self-contained page: {tags[:3]}"
    assert parsed.external_references() == []
    css = "".join(parsed.style)
    assert "@import" not in css and "url(" not in css, "the CSS loads something"
    # Namespaces and DTD URLs are not fetched, but none is needed inline: none should be left.
    assert not re.search(r"https?://", page), re.search(r".{40}https?://.{40}", page)
    return parsed
