"""Reading a file a user named: only a regular file, only up to a size, and never quoted back.

A path in a scenario or on the command line may point anywhere: ``/dev/zero`` (endless),
a FIFO (blocks forever), a directory, a multi-gigabyte log. Each is refused before a
byte is read, with a message naming the field and the kind of file, and never the
file's contents (an error that quotes "the first line" of ``/etc/shadow`` leaks it).
"""

from __future__ import annotations

import os
import stat

__all__ = ["MB", "UnreadableFile", "human_size", "open_regular", "read_bytes", "read_text"]

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


def human_size(n_bytes: float) -> str:
    """``1.5 GB``, ``10 MB``, ``1,000 bytes``: sizes in messages."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", MB), ("kB", 1e3)):
        if n_bytes >= size:
            return f"{n_bytes / size:,.3g} {unit}"
    return f"{n_bytes:,.0f} bytes"


def open_regular(path: str | os.PathLike[str], *, field: str, max_bytes: int) -> int:
    """A read-only descriptor of ``path``, checked to be a regular file of at most ``max_bytes``.

    The file is opened first (``O_NONBLOCK``: a FIFO must not wait for a writer) and the
    checks are made on what was opened (``fstat``), so nothing can be swapped in between.

    Raises
    ------
    UnreadableFile
        Missing, unreadable, not a regular file, or larger than ``max_bytes``.
    """
    shown = repr(str(path))
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except IsADirectoryError:  # Windows cannot open a folder
        raise UnreadableFile(f"{field}: {shown} is a directory; give the path of a regular file") from None
    except OSError as exc:
        raise UnreadableFile(f"{field}: cannot read {shown}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a regular file")
            raise UnreadableFile(f"{field}: {shown} is {kind}; give the path of a regular file")
        if info.st_size > max_bytes:
            raise UnreadableFile(
                f"{field}: {shown} is {human_size(info.st_size)}, above the {human_size(max_bytes)} limit "
                "for this kind of file; is it the right file?"
            )
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_bytes(path: str | os.PathLike[str], *, field: str, max_bytes: int) -> bytes:
    """The bytes of ``path``, a regular file of at most ``max_bytes`` (see :func:`open_regular`)."""
    fd = open_regular(path, field=field, max_bytes=max_bytes)
    try:
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(max_bytes + 1)  # a file that grew since it was checked is still capped
    except OSError as exc:
        raise UnreadableFile(f"{field}: cannot read {str(path)!r}: {exc.strerror}") from None
    if len(data) > max_bytes:
        raise UnreadableFile(f"{field}: {str(path)!r} is above the {human_size(max_bytes)} limit")
    return data


def read_text(path: str | os.PathLike[str], *, field: str, max_bytes: int, encoding: str = "utf-8") -> str:
    """The text of ``path`` (see :func:`read_bytes`), decoded; a decoding error names the byte, not the text."""
    data = read_bytes(path, field=field, max_bytes=max_bytes)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        hint = " (it looks like UTF-16: save it as UTF-8)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise UnreadableFile(f"{field}: {str(path)!r} is not UTF-8 text (byte {exc.start}){hint}") from None
