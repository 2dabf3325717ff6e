"""Atomic writes: one implementation for every file aalearn produces.

A reader never sees a half-written file and a failed write leaves any previous file
untouched: the data go to a temporary file in the destination's directory, are
flushed and ``fsync``-ed, and the temporary file is moved into place with
:func:`os.replace` (atomic on POSIX within one file system). The temporary file is
removed on any failure, including ``KeyboardInterrupt``.

Two forms cover every writer in the project:

* :func:`atomic_write` for bytes or text already in memory;
* :func:`atomic_path`, a context manager yielding a temporary path for libraries that
  write by file name (``torch.save``, h5py, pyarrow, safetensors, ``np.savez``).

Example:
    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> atomic_write(d / "a" / "x.txt", "hello").read_text()
    'hello'
    >>> with atomic_path(d / "y.bin") as tmp:
    ...     _ = tmp.write_bytes(b"42")
    >>> (d / "y.bin").read_bytes()
    b'42'
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_write", "fsync_file"]


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Flush a file's data to disk (no-op where the platform refuses ``fsync``)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platform dependent
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems do not support fsync
        pass
    finally:
        os.close(fd)


def _check_destination(dest: Path) -> None:
    if dest.exists() and dest.is_dir():
        raise IsADirectoryError(f"cannot write {dest}: it is a directory; give a file name")


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike[str], *, mode: int = 0o644, fsync: bool = True, suffix: str | None = None
) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place when the block succeeds.

    Args:
        path: Destination file. Its parent directory is created when missing.
        mode: Permission bits of the final file.
        fsync: ``fsync`` the data before the rename (off only for scratch files).
        suffix: Suffix of the temporary name (libraries that infer the format from the
            file name, such as ``np.savez``, need the real one); defaults to ``.tmp``
            after the destination's own name.

    Yields:
        The temporary path (it does not exist yet; the caller creates it).

    Raises:
        IsADirectoryError: If ``path`` is an existing directory.
    """
    dest = Path(path)
    _check_destination(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=suffix or ".tmp", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # libraries that refuse to overwrite (h5py mode "w-") get a fresh name
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"the writer of {dest} did not create its temporary file {tmp}")
        if fsync:
            fsync_file(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(
    path: str | os.PathLike[str], data: bytes | str, *, encoding: str = "utf-8", mode: int = 0o644
) -> Path:
    """Write ``data`` (bytes, or text in ``encoding``) to ``path`` atomically.

    Args:
        path: Destination file; its parent directory is created when missing.
        data: The whole content.
        encoding: Encoding of text data.
        mode: Permission bits of the final file.

    Returns:
        The destination as a :class:`~pathlib.Path`.

    Raises:
        IsADirectoryError: If ``path`` is an existing directory.
        TypeError: If ``data`` is neither bytes nor str.
    """
    if isinstance(data, str):
        payload = data.encode(encoding)
    elif isinstance(data, bytes | bytearray | memoryview):
        payload = bytes(data)
    else:
        raise TypeError(f"atomic_write needs bytes or str, got {type(data).__name__}")
    dest = Path(path)
    with atomic_path(dest, mode=mode) as tmp, open(tmp, "wb") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())
    return dest
