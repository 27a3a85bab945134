"""Reading a file a user named: only a regular file, only up to a size, and never quoted back.

A path in a scenario or on the command line may point anywhere: ``/dev/zero`` (endless),
a FIFO (blocks forever), a directory, a multi-gigabyte log. Each is refused before a
byte is read, with a message naming the field and the kind of file, and never the
file's contents (an error that quotes "the first line" of ``/etc/shadow`` leaks it).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["MB", "UnreadableFile", "read_bytes", "read_text"]

MB = 1_000_000

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class UnreadableFile(ValueError):
    """A named file that cannot or must not be read; the message names the field and the reason."""


def read_bytes(path: str | os.PathLike[str], *, field: str, max_bytes: int) -> bytes:
    """The bytes of ``path``, a regular file of at most ``max_bytes``.

    Raises
    ------
    UnreadableFile
        Missing, unreadable, not a regular file, or larger than ``max_bytes``.
    """
    path = Path(path)
    try:
        info = path.stat()
    except OSError as exc:
        raise UnreadableFile(f"{field}: cannot read {str(path)!r}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a regular file")
        raise UnreadableFile(f"{field}: {str(path)!r} is {kind}; give the path of a regular file")
    if info.st_size > max_bytes:
        raise UnreadableFile(
            f"{field}: {str(path)!r} is {info.st_size / MB:,.1f} MB, above the {max_bytes / MB:,.0f} MB limit "
            "for this kind of file; is it the right file?"
        )
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)  # a file that grew since stat() is still capped
    except OSError as exc:
        raise UnreadableFile(f"{field}: cannot read {str(path)!r}: {exc.strerror}") from None
    if len(data) > max_bytes:
        raise UnreadableFile(f"{field}: {str(path)!r} is above the {max_bytes / MB:,.0f} MB limit")
    return data


def read_text(path: str | os.PathLike[str], *, field: str, max_bytes: int, encoding: str = "utf-8") -> str:
    """The text of ``path`` (see :func:`read_bytes`), decoded; a decoding error names the byte, not the text."""
    data = read_bytes(path, field=field, max_bytes=max_bytes)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        hint = " (it looks like UTF-16: save it as UTF-8)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise UnreadableFile(f"{field}: {str(path)!r} is not UTF-8 text (byte {exc.start}){hint}") from None
