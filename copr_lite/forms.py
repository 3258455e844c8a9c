"""Reading API request bodies and validating their fields (spec A4, A16, A18, A19, A21).

A body is urlencoded, multipart or a flat JSON object; all become a `Form` of strings.
Field checks raise BadRequest (or PayloadTooLarge for sizes) with a message naming the field.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import orjson
from aiohttp import BodyPartReader, hdrs, web
from aiohttp.helpers import parse_mimetype
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from .errors import BadRequest, PayloadTooLarge

BODY_LIMIT = 1024 * 1024  # form and JSON bodies (the SRPM file part has its own limit)
# Multipart boundaries and part headers, on top of the field and file limits.
FRAMING_LIMIT = 1024 * 1024
TEXT_LIMIT = 64 * 1024  # description, instructions
BUILDROOT_PKGS_LIMIT = 4 * 1024
MAX_REPOS = 50
MAX_PKGS = 100
MAX_PAGE = 1000
MEMORY_RANGE = (2048, 4096)
DEFAULT_MEMORY = 2048
MAX_TIMEOUT = 86400
NAME_RE = re.compile(r"^(?!\.)(?![0-9]+$)[A-Za-z0-9_.-]{1,100}$")
SRPM_SUFFIXES = (".src.rpm", ".nosrc.rpm")
MAX_FILE_NAME = 200  # an uploaded SRPM's name; file systems stop at 255 bytes
# First path segments under /api/coprs/ that are API calls, so never user names.
RESERVED_USER_NAMES = frozenset({"search", "build", "build_status", "build_detail", "cancel_build"})
_CHUNK = 64 * 1024


@dataclass
class Form:
    """Posted fields (first value of a repeated key; `repos` values joined by spaces) and,
    for an upload, the stored file."""

    fields: dict[str, str] = field(default_factory=dict)
    upload: Path | None = None
    upload_name: str | None = None

    def get(self, key: str) -> str | None:
        return self.fields.get(key)

    def __contains__(self, key: str) -> bool:
        return key in self.fields

    def checkbox(self, key: str, default: bool = False) -> bool:
        """WTForms checkbox rules: absent -> default, "" or "false" -> False, else True."""
        value = self.fields.get(key)
        if value is None:
            return default
        return value not in ("", "false")

    def refuse_unknown(self, known: frozenset[str] | set[str]) -> None:
        unknown = [key for key in self.fields if key not in known]
        if unknown:
            raise BadRequest(
                f"Unknown arguments passed: {', '.join(sorted(unknown))} "
                "(non-existing chroot probably)"
            )


def _add(fields: dict[str, str], key: str, value: str) -> None:
    if key in fields:
        if key == "repos":  # copr-cli --repo A --repo B repeats the key
            fields[key] = f"{fields[key]} {value}".strip()
        return
    fields[key] = value


async def _read_limited(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"Request body too large: at most {limit} bytes.")
    data = bytearray()
    while chunk := await request.content.read(_CHUNK):
        data += chunk
        if len(data) > limit:
            raise PayloadTooLarge(f"Request body too large: at most {limit} bytes.")
    return bytes(data)


async def read_body(request: web.Request) -> bytes:
    """The raw body, as sent (a webhook's: its signature covers these bytes); refused over
    `declared_limit()` or when compressed."""
    check_body_headers(request)
    return await _read_limited(request, declared_limit())


def declared_limit(file_limit: int = 0) -> int:
    """The largest Content-Length a body may declare: fields, multipart framing and, for a
    route that takes a file, the file."""
    return BODY_LIMIT + FRAMING_LIMIT + file_limit


def check_body_headers(request: web.Request, file_limit: int = 0) -> None:
    """Refuse, before reading anything, a body this server cannot or will not read."""
    codings = ",".join(request.headers.getall(hdrs.CONTENT_ENCODING, ())).lower()
    if any(c.strip() not in ("", "identity") for c in codings.split(",")):
        # The app decodes nothing itself (aiohttp's decoding is off, see app.py), and no
        # client of this API compresses what it sends.
        raise BadRequest(
            f"Content-Encoding {codings[:40]!r} is not accepted: send the body uncompressed."
        )
    if request.content_length is not None and request.content_length > declared_limit(file_limit):
        raise PayloadTooLarge(
            f"Request body too large: at most {declared_limit(file_limit)} bytes."
        )


def text_codec(charset: str | None, what: str) -> str:
    """The codec for a declared charset: bodies are UTF-8, or US-ASCII (a part of it) when
    declared so; any other charset is refused rather than misread."""
    codec = _CODECS.get((charset or "utf-8").strip().lower())
    if codec is None:
        raise BadRequest(f"Unsupported charset {str(charset)[:40]!r} in {what}: send UTF-8.")
    return codec


_CODECS = {"utf-8": "utf-8", "utf8": "utf-8", "us-ascii": "ascii", "ascii": "ascii"}


def _decode(data: bytes, what: str, codec: str = "utf-8") -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError:
        raise BadRequest(f"{what} is not valid {codec.upper()}.") from None


async def read_form(
    request: web.Request,
    *,
    file_field: str | None = None,
    upload_dir: Path | None = None,
    file_limit: int = 0,
    optional_file: bool = False,
) -> Form:
    """Read the body as a Form. With `file_field`, a multipart file part of that name is
    streamed into `upload_dir` (at most `file_limit` bytes). `optional_file` skips the empty,
    unnamed file part a browser sends for a file input left empty."""
    check_body_headers(request, file_limit if file_field else 0)
    codec = text_codec(request.charset, "the request")
    ctype = request.content_type
    form = Form()
    if ctype == "multipart/form-data":
        try:
            await _read_multipart(request, form, file_field, upload_dir, file_limit, optional_file)
        except (ValueError, AssertionError, KeyError, HttpProcessingError, RequestPayloadError):
            # aiohttp's multipart parser reports a malformed body (bad part headers, a
            # NUL in a file name, a missing boundary) with these.
            discard_upload(form)
            raise BadRequest("The multipart body could not be read.") from None
        except BaseException:
            # Refused, or the client went away mid-upload: keep nothing of it.
            discard_upload(form)
            raise
        return form
    body = await _read_limited(request, BODY_LIMIT)
    if ctype == "application/json":
        _read_json(body, form)
    elif ctype == "application/x-www-form-urlencoded" or not body.strip():
        text = _decode(body, "The form", codec)
        for key, value in parse_qsl(text, keep_blank_values=True):
            _add(form.fields, key, value)
    else:
        raise BadRequest(
            f"Unsupported Content-Type {ctype!r}: send a form (urlencoded or multipart) "
            "or a JSON object."
        )
    return form


def _read_json(body: bytes, form: Form) -> None:
    try:
        data = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError:
        raise BadRequest("The JSON body could not be parsed.") from None
    if not isinstance(data, dict):
        raise BadRequest("The JSON body must be an object.")
    for key, value in data.items():
        if isinstance(value, bool):
            form.fields[key] = "y" if value else ""
        elif isinstance(value, str | int | float):
            form.fields[key] = str(value)
        elif value is None:
            continue
        else:
            raise BadRequest(f"{key}: JSON values must be strings, numbers or booleans.")


async def _read_multipart(
    request: web.Request,
    form: Form,
    file_field: str | None,
    upload_dir: Path | None,
    file_limit: int,
    optional_file: bool = False,
) -> None:
    reader = await request.multipart()
    total = 0
    while True:
        part = await reader.next()
        if part is None:
            return
        if not isinstance(part, BodyPartReader):
            raise BadRequest("Nested multipart bodies are not accepted.")
        name = part.name or ""
        if optional_file and part.filename == "" and name == file_field:
            if await part.read_chunk(_CHUNK):
                raise BadRequest(f"{file_field}: a file without a name.")
            continue
        if part.filename is not None and file_field is not None and name == file_field:
            if form.upload is not None:
                raise BadRequest(f"{file_field}: send one file per request.")
            assert upload_dir is not None
            await _store_upload(part, form, upload_dir, file_limit)
            continue
        charset = parse_mimetype(part.headers.get(hdrs.CONTENT_TYPE, "")).parameters.get("charset")
        codec = text_codec(charset, f"field {name[:40]!r}")
        data = bytearray()
        while chunk := await part.read_chunk(_CHUNK):
            data += chunk
            total += len(chunk)
            if total > BODY_LIMIT:
                raise PayloadTooLarge(f"Form fields too large: at most {BODY_LIMIT} bytes.")
        _add(form.fields, name, _decode(bytes(data), f"Field {name!r}", codec))


async def _store_upload(part: BodyPartReader, form: Form, upload_dir: Path, limit: int) -> None:
    filename = Path((part.filename or "").replace("\\", "/")).name
    if not filename.endswith(SRPM_SUFFIXES) or not re.match(r"^[A-Za-z0-9_.+~^-]+$", filename):
        raise BadRequest("pkgs: You can upload only .src.rpm and .nosrc.rpm files.")
    if len(filename) > MAX_FILE_NAME:
        raise BadRequest(f"pkgs: the file name is longer than {MAX_FILE_NAME} characters.")
    target_dir = upload_dir / secrets.token_hex(8)
    target_dir.mkdir(parents=True)
    target = target_dir / filename
    form.upload, form.upload_name = target, filename
    size = 0
    # Chunks go to the page cache; a blocking write of 64 KiB costs microseconds.
    with target.open("wb") as fh:
        while chunk := await part.read_chunk(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(
                    f"pkgs: the SRPM is larger than the upload limit of {limit // 2**20} MiB."
                )
            fh.write(chunk)
    if size == 0:
        raise BadRequest("pkgs: the uploaded file is empty.")


def discard_upload(form: Form) -> None:
    """Remove an upload that will not be used (partial, or its request failed)."""
    if form.upload is not None:
        remove_upload(form.upload)
        form.upload = None


def remove_upload(upload: Path) -> None:
    """Remove a stored upload and the directory made for it (blocking: two quick calls)."""
    upload.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        upload.parent.rmdir()


# ---------------------------------------------------------------- field validators


class ValidationError(BadRequest):
    """A BadRequest about one field: the API shows `message`, the web UI `text` beside it."""

    def __init__(self, field_name: str, text: str) -> None:
        super().__init__(f"Validation error\n- {field_name}: {text}\n")
        self.field = field_name
        self.text = text
        # Every field's error when several were checked at once (operations.Operation.parse).
        self.errors = {field_name: text}


def validation_error(field_name: str, message: str) -> ValidationError:
    return ValidationError(field_name, message)


def check_name(value: str | None, field_name: str = "name") -> str:
    name = (value or "").strip()
    if not name:
        raise validation_error(field_name, "This field is required.")
    if not NAME_RE.match(name):
        if name.isdigit():
            raise validation_error(field_name, "Project's name can not be just number.")
        raise validation_error(
            field_name,
            "Name must contain only letters, digits, underscores, dashes and dots, "
            "must not start with a dot, and have at most 100 characters.",
        )
    return name


def check_text(form: Form, key: str, limit: int = TEXT_LIMIT) -> str | None:
    value = form.get(key)
    if value is not None and len(value.encode()) > limit:
        raise PayloadTooLarge(f"{key}: at most {limit // 1024} KiB.")
    return value


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def check_repos(value: str | None) -> str:
    """Whitespace-separated http(s) or copr://owner/project URLs, stored space-joined."""
    urls = (value or "").split()
    if len(urls) > MAX_REPOS:
        raise validation_error("repos", f"At most {MAX_REPOS} repositories.")
    for url in urls:
        if not (_is_http_url(url) or re.match(r"^copr://[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/?$", url)):
            raise validation_error(
                "repos",
                "A list of http[s] URLs separated by whitespace characters is needed "
                f"('{url}' doesn't seem to be a valid URL).",
            )
    return " ".join(urls)


def check_srpm_urls(value: str | None, key: str, allowed: tuple[str, ...]) -> list[str]:
    urls = (value or "").split()
    if len(urls) > MAX_PKGS:
        raise validation_error(key, f"At most {MAX_PKGS} URLs per request.")
    for url in urls:
        if not _is_http_url(url):
            raise validation_error(
                key,
                "A list of http[s] URLs separated by whitespace characters is needed "
                f"('{url}' doesn't seem to be a valid URL).",
            )
        if not urlsplit(url).path.endswith(SRPM_SUFFIXES):
            raise validation_error(
                key, f"URLs must end with .src.rpm ('{url}' doesn't seem to be a valid SRPM URL)."
            )
        reason = refused_address(urlsplit(url).hostname or "", allowed)
        if reason:
            raise validation_error(key, f"'{url}' is not allowed: {reason}.")
    return urls


def literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host name spells literally, in any form the resolver would accept
    (dotted, decimal, octal, hex, IPv4-mapped IPv6), or None for a real name."""
    host = host.strip("[]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except (OSError, ValueError):
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def refused_address(host: str, allowed: tuple[str, ...]) -> str | None:
    """Why an SRPM host that is a literal address (or localhost) is refused, else None.

    Names are resolved and checked again when the SRPM is fetched.
    """
    if host.lower().rstrip(".") in ("localhost", "localhost.localdomain"):
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.IPv4Address(
            "127.0.0.1"
        )
    else:
        address = literal_address(host)
    if address is None:
        return None
    return address_policy(address, allowed)


def address_policy(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, allowed: tuple[str, ...]
) -> str | None:
    if (
        address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address == ipaddress.IPv4Address("255.255.255.255")
    ):
        return f"{address} is a link-local, multicast, unspecified or broadcast address"
    if address.is_loopback or address.is_private or address.is_reserved:
        for net in allowed:
            if address in ipaddress.ip_network(net, strict=False):
                return None
        return f"{address} is a loopback or private address"
    return None


_PKG_NAME = re.compile(r"^[A-Za-z0-9_+][A-Za-z0-9_.+()-]*$")
_PKG_VERSION = re.compile(r"^[A-Za-z0-9_.+~^:-]+$")
_OPERATORS = frozenset({"=", "==", "<", "<=", ">", ">="})


def check_buildroot_pkgs(value: str | None) -> str:
    """Package names, each optionally followed by an operator and a version."""
    text = value or ""
    if len(text.encode()) > BUILDROOT_PKGS_LIMIT:
        raise PayloadTooLarge(f"buildroot_pkgs: at most {BUILDROOT_PKGS_LIMIT // 1024} KiB.")
    tokens = text.split()
    items, i = [], 0
    while i < len(tokens):
        name = tokens[i]
        if not _PKG_NAME.match(name):
            raise validation_error("buildroot_pkgs", f"'{name}' is not a package name.")
        if i + 1 < len(tokens) and tokens[i + 1] in _OPERATORS:
            if i + 2 >= len(tokens) or not _PKG_VERSION.match(tokens[i + 2]):
                raise validation_error(
                    "buildroot_pkgs", f"'{name} {tokens[i + 1]}' needs a version after it."
                )
            items.append(f"{name} {tokens[i + 1]} {tokens[i + 2]}")
            i += 3
        else:
            items.append(name)
            i += 1
    return " ".join(items)


def split_packages(text: str) -> list[str]:
    """'gcc make >= 4.0' -> ['gcc', 'make >= 4.0'] (a constraint stays with its name)."""
    tokens, items, i = text.split(), [], 0
    while i < len(tokens):
        if i + 2 < len(tokens) and tokens[i + 1] in _OPERATORS:
            items.append(" ".join(tokens[i : i + 3]))
            i += 3
        else:
            items.append(tokens[i])
            i += 1
    return items


def check_int(value: str | None, key: str, default: int, low: int, high: int) -> int:
    """An integer field; empty or absent means `default` (python copr sends empty ones)."""
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise validation_error(key, "Must be a whole number.") from None
    if not low <= number <= high:
        raise validation_error(key, f"Must be between {low} and {high}.")
    return number


# Retention settings of projects and packages: (lowest, highest) of each (README "Retention").
RETENTION_LIMITS: dict[str, tuple[int, int]] = {
    "prune_days": (0, 3650),
    "keep_last": (0, 10000),
    "failed_log_days": (0, 3650),
}


def check_retention(form: Form) -> dict[str, int]:
    """The retention numbers present (and not empty) in the form, range-checked."""
    values = {}
    for key, (low, high) in RETENTION_LIMITS.items():
        raw = form.get(key)
        if raw is not None and raw.strip():
            values[key] = check_int(raw, key, 0, low, high)
    return values


def check_page(query: dict[str, str] | web.Request, default_limit: int = 100) -> tuple[int, int]:
    """`offset` and `limit` query parameters (limit at most MAX_PAGE)."""
    params = query.query if isinstance(query, web.Request) else query
    offset = check_int(params.get("offset"), "offset", 0, 0, 2**62)
    limit = check_int(params.get("limit"), "limit", default_limit, 1, MAX_PAGE)
    return offset, limit


async def read_json_object(
    request: web.Request,
    *,
    file_field: str | None = None,
    upload_dir: Path | None = None,
    file_limit: int = 0,
) -> tuple[dict[str, object], Form]:
    """An API v3 body: a JSON object, or multipart with the object in its `json` part (and,
    with `file_field`, a file streamed into `upload_dir`). An empty body is an empty object.
    Returns the object and the Form (which holds any upload)."""
    if request.content_type == "multipart/form-data":
        form = await read_form(
            request, file_field=file_field, upload_dir=upload_dir, file_limit=file_limit
        )
        try:
            return _json_object(form.get("json") or ""), form
        except BaseException:
            discard_upload(form)
            raise
    check_body_headers(request)
    text_codec(request.charset, "the request")
    body = await _read_limited(request, BODY_LIMIT)
    if body.strip() and request.content_type not in (
        "application/json",
        "application/octet-stream",
    ):
        raise BadRequest(f"Unsupported Content-Type {request.content_type!r}: send a JSON object.")
    return _json_object(body.decode("utf-8", "replace") if body else ""), Form()


def _json_object(text: str) -> dict[str, object]:
    try:
        data = orjson.loads(text) if text.strip() else {}
    except orjson.JSONDecodeError:
        raise BadRequest("The JSON body could not be parsed.") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BadRequest("The JSON body must be an object.")
    return data
