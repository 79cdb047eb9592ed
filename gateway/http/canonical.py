"""The one canonical form of a request path and of a header name.

Why: routing, access rules, rate limits, exposure checks, IDL routes, the admin API, metrics
labels and the access log all look at the request path. When two of them read it differently
(``//com.x.Svc/m`` routed as ``/com.x.Svc/m`` but not matched by a ``/com.x.Svc/*`` auth rule)
a rule is skipped. So the HTTP layer computes the path once, here, and every layer reads only
that value (``Request.path``); forms that could be read two ways are refused with a 400
instead of guessed (design principle 8: fail closed).

Canonical path: ``/`` followed by non-empty segments separated by single ``/``; each segment
percent-decoded once and valid UTF-8 text. Normalized (the same request, written another way):

* percent-escapes of ordinary characters, in either hex case (``%63om`` is ``com``);
* one trailing slash (``/a/b/`` is ``/a/b``; ``/`` stays ``/``);
* an absolute-form target ``http(s)://authority/path`` is its path (the server then uses the
  authority as the Host, RFC 9112 3.2.2).

Refused (:class:`PathError`, a 400):

* empty segments (``//``), dot segments (``.``, ``..``, also as ``%2e``/``%2E``);
* an encoded ``/``, ``\\``, ``;``, ``?``, ``#`` or ``%`` (``%2F``, ``%5C``, ``%3B``, ``%3F``,
  ``%23``, ``%25``: double decoding or segment confusion downstream), any control character
  (``%00``, ``%0A``, raw or C1);
* a raw ``\\``, ``;`` (path parameters), ``#`` (fragment), or any byte RFC 3986 does not allow
  raw in a path (non-ASCII, space, ``{}|^`<>"[]``);
* malformed escapes (``%``, ``%4``, ``%zz``) and percent-decoded bytes that are not strict
  UTF-8 (overlong forms such as ``%C0%AF``, surrogates, stray continuation bytes);
* any target that is neither origin-form (``/...``) nor an ``http``/``https`` absolute URL
  without user info: ``*``, CONNECT's ``host:port``, ``ftp://...``.

The query string is not part of the path; no rule looks at it. Names are case-sensitive
(Java names are) and never Unicode-normalized — no layer of tribridge normalizes them either.
"""

from __future__ import annotations

import re

__all__ = [
    "PathError",
    "canonical_header",
    "canonical_path",
    "split_target",
]


class PathError(ValueError):
    """A request target that has no single reading: answered 400, never routed."""


# RFC 3986 pchar minus ";" (path parameters) plus "/" -- everything else raw is refused
_RAW_OK = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,=:@/%"
)
# the fast path: nothing to decode, no dot or empty segment possible to miss
_PLAIN = re.compile(rb"^(?:/[A-Za-z0-9\-_~!$&'()*+,=:@][A-Za-z0-9\-._~!$&'()*+,=:@]*)+/?$")
# host, IP literal and port; no user info ("@"), no escapes
_AUTHORITY_OK = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,=:[]"
)
_HEX = frozenset(b"0123456789abcdefABCDEF")
# decoded from an escape, these would change how a later reader splits or decodes the path
_DECODED_BAD = {
    0x2F: "an encoded '/' (%2F)",
    0x5C: "an encoded '\\' (%5C)",
    0x3B: "an encoded ';' (%3B)",
    0x3F: "an encoded '?' (%3F)",
    0x23: "an encoded '#' (%23)",
    0x25: "an encoded '%' (%25: double encoding)",
}


def canonical_path(raw: bytes) -> str:
    """The canonical form of an origin-form path (bytes before ``?``); PathError if none."""
    if _PLAIN.match(raw) is not None:
        path = raw.decode("ascii")
        return path[:-1] if len(path) > 1 and path.endswith("/") else path
    if raw[:1] != b"/":
        raise PathError("the request path must start with '/'")
    out = bytearray()
    i = 0
    n = len(raw)
    while i < n:
        b = raw[i]
        if b not in _RAW_OK:
            if b == 0x5C:
                raise PathError("a '\\' in the request path")
            if b == 0x3B:
                raise PathError("a ';' (path parameter) in the request path")
            if b == 0x23:
                raise PathError("a fragment ('#') in the request target")
            raise PathError(f"byte 0x{b:02x} is not allowed raw in a request path")
        if b == 0x25:  # %
            hx = raw[i + 1 : i + 3]
            if len(hx) != 2 or hx[0] not in _HEX or hx[1] not in _HEX:
                raise PathError("a malformed percent-escape in the request path")
            d = int(hx, 16)
            why = _DECODED_BAD.get(d)
            if why is not None:
                raise PathError(f"{why} in the request path")
            out.append(d)
            i += 3
        else:
            out.append(b)
            i += 1
    try:
        text = out.decode("utf-8")  # strict: overlong forms and surrogates are errors
    except UnicodeDecodeError:
        raise PathError("the request path is not valid UTF-8 once percent-decoded") from None
    if any(c < " " or "\x7f" <= c <= "\x9f" for c in text):
        raise PathError("a control character in the request path")
    segments = text.split("/")[1:]
    if len(segments) > 1 and segments[-1] == "":
        segments.pop()  # one trailing slash
    if len(segments) == 1 and segments[0] == "":
        return "/"
    for s in segments:
        if s == "":
            raise PathError("an empty path segment ('//') in the request path")
        if s in (".", ".."):
            raise PathError(f"a dot segment ({s!r}) in the request path")
    return "/" + "/".join(segments)


def split_target(target: bytes) -> tuple[str, str, str | None]:
    """Request target -> (canonical path, raw query, authority of an absolute-form target).

    Raises PathError for fragments, asterisk-form, authority-form, other schemes and user
    info; the caller answers 400.
    """
    if b"#" in target:
        raise PathError("a fragment ('#') in the request target")
    authority: str | None = None
    if target[:1] != b"/":
        scheme, sep, rest = target.partition(b"://")
        if not sep or scheme.lower() not in (b"http", b"https"):
            raise PathError("the request target must be a path ('/...') or an http(s) URL")
        cut = len(rest)
        for delim in (b"/", b"?"):
            j = rest.find(delim)
            if j >= 0:
                cut = min(cut, j)
        auth, target = rest[:cut], rest[cut:]
        if not auth or not all(c in _AUTHORITY_OK for c in auth):
            raise PathError("a bad authority in an absolute-form request target")
        authority = auth.decode("ascii")
        if target[:1] == b"?" or not target:
            target = b"/" + target
    raw_path, _, raw_query = target.partition(b"?")
    return canonical_path(raw_path), raw_query.decode("latin-1"), authority


def canonical_header(name: str) -> str:
    """A header or attachment name as every check compares it: lower case, ``_`` as ``-``.

    HTTP servers and proxies disagree on ``X_User`` vs ``x-user`` (nginx drops underscores,
    CGI maps ``-`` to ``_``); judging both spellings as one name means a client cannot slip
    an identity header past a rule by spelling it the other way.
    """
    return name.strip().lower().replace("_", "-")
