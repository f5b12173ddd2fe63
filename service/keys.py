"""The service's secret keys: one current key that signs and hashes, older keys kept for
verification after a rotation (no Flask).

``instance/secret_key`` holds the current key; ``instance/secret_key.old`` the retired
ones, one per line, newest first. Query passwords of tickets are stored as an HMAC under
the current key, tagged with the key's id, so a password made before a rotation is still
checked with the key it was made with (and re-hashed under the new key when its owner
next uses it).
"""
from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

CURRENT = "secret_key"
RETIRED = "secret_key.old"


def key_id(key: str | bytes) -> str:
    """A short public fingerprint of a key (never the key)."""
    raw = key.encode() if isinstance(key, str) else key
    return hashlib.sha256(b"key-id:" + raw).hexdigest()[:8]


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, replacing it in one step."""
    partial = path.with_name(path.name + f".{secrets.token_hex(4)}.part")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    partial.replace(path)


def load(instance: Path) -> tuple[str, list[str]]:
    """The current key (made at first start) and the retired ones."""
    if not instance.exists():
        instance.mkdir(parents=True, mode=0o700)  # owner-only from the start
        os.chmod(instance, 0o700)  # whatever the umask
    path = instance / CURRENT
    if not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
    current = path.read_text().strip()
    old_path = instance / RETIRED
    old = [line.strip() for line in old_path.read_text().splitlines()] if old_path.exists() else []
    return current, [k for k in dict.fromkeys(old) if k and k != current]


def rotate(instance: Path) -> tuple[str, str]:
    """Make a new current key and keep the old one for verification; return both ids."""
    current, old = load(instance)
    new = secrets.token_hex(32)
    _write_private(instance / RETIRED, "\n".join([current, *old]) + "\n")
    _write_private(instance / CURRENT, new + "\n")
    return key_id(current), key_id(new)


def export(instance: Path) -> str:
    """Every key, current first, for a backup."""
    current, old = load(instance)
    return "\n".join([current, *old]) + "\n"


def merge(instance: Path, text: str) -> int:
    """Keep the keys of a backup for verification (the current key stays); return how many
    were new."""
    current, old = load(instance)
    known = {current, *old}
    extra = [line.strip() for line in text.splitlines() if line.strip() and line.strip() not in known]
    if extra:
        _write_private(instance / RETIRED, "\n".join([*old, *extra]) + "\n")
    return len(extra)


def write_backup_keys(target: Path, instance: Path) -> Path:
    """Store the keys beside a database backup (``<backup>.keys``, owner-only)."""
    path = target.with_name(target.name + ".keys")
    _write_private(path, export(instance))
    return path
