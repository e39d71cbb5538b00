"""The two ways a resource or a selector is refused.

`ResourceError` names the document path of the offending field (`spec.ipipMode`,
`spec.ingress[2].protocol`) and the reason, so `tabbyctl` can print `<path>: <reason>` and a
user can find the line. `SelectorError` points at the character of a selector where parsing
failed, with a caret line under the text, as calicoctl users expect from a compiler-style error.
"""

from __future__ import annotations


class ResourceError(ValueError):
    """A resource document is invalid; `path` is the dotted document path of the field."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}" if path else reason)


class SelectorError(ValueError):
    """A selector failed to parse. `position` is the 0-based index of the offending character."""

    def __init__(self, selector: str, position: int, reason: str) -> None:
        self.selector = selector
        self.position = position
        self.reason = reason
        # One line per selector line would be nicer for multi-line selectors, but selectors are
        # nearly always one line; control characters are shown as spaces so the caret lines up.
        shown = "".join(ch if ch.isprintable() else " " for ch in selector)
        super().__init__(f"{reason} at position {position}\n    {shown}\n    {' ' * position}^")
