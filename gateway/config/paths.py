"""The config side of the canonical-path rule (``tribridge.http.canonical`` is the request
side): a path written in the config must be one a canonical request path can equal. Kept
apart from the HTTP listener so the config model imports nothing of the runtime."""

from __future__ import annotations


def config_path_error(text: str, glob: bool = False) -> str | None:
    """Why a path written in the config (a route, template or rule pattern) could never equal
    a canonical request path, or None. A pattern that can never match is refused at load
    rather than silently never applying."""
    if not text.startswith("/") and not (glob and text.startswith("*")):
        return "expected a path starting with /"
    if len(text) > 1 and text.endswith("/"):
        return "no trailing '/': request paths are matched without it"
    for bad, why in (("\\", "'\\'"), (";", "';'"), ("?", "'?'"), ("#", "'#'"), ("%", "'%'")):
        if bad in text and not (glob and bad == "?"):
            return f"{why} never appears in a canonical request path"
    if any(c < " " or "\x7f" <= c <= "\x9f" for c in text):
        return "a control character"
    for seg in text.split("/")[1:]:
        if seg == "" and text != "/":
            return "an empty segment ('//') never appears in a canonical request path"
        if seg in (".", ".."):
            return "a dot segment never appears in a canonical request path"
    return None
