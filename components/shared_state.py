"""Where state shared by the app's workers lives: files in a private folder on one machine, Redis for many
workers or machines. The one place that decides it, and that checks it.

The views cache holds pickles (flask-caching's FileSystemCache and RedisCache alike), and loading a pickle can
run any code: whoever can write an entry, or swap the folder or the Redis socket for one of their own, runs code
in every worker. So the app uses only a folder that no other account can write to or replace, and only a Redis
that other accounts cannot reach (a unix socket in such a folder) or must authenticate to (a password). Anything
else is refused when the app starts, with a message that says what is wrong and how to fix it."""
from __future__ import annotations

import os
import stat
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

FOLDER_HINT = ("INSIDE_GPT2_CACHE_DIR sets the views cache's folder; INSIDE_GPT2_STATE_DIR the app's base folder "
               "(default ~/.cache/inside-gpt2, or $XDG_CACHE_HOME/inside-gpt2).")


class SharedStateError(ValueError):
    """A folder or Redis URL the app refuses to share state through; the message is for the person starting it."""


def app_folder() -> Path:
    """The app's private base folder: $INSIDE_GPT2_STATE_DIR, else $XDG_CACHE_HOME/inside-gpt2, else
    ~/.cache/inside-gpt2; created 0700 if missing. A home folder, not the shared temporary folder, so no other
    account can create it first."""
    configured = os.environ.get("INSIDE_GPT2_STATE_DIR")
    if configured:
        return private_folder(configured)
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"  # the XDG spec ignores relative paths
    return private_folder(base / "inside-gpt2")


def private_folder(path: str | os.PathLike) -> Path:
    """`path` as a folder only this account can write to: created 0700 (with its missing parents, also 0700)
    if absent, else checked. Several gunicorn workers may create it at once; each then checks what is there.

    Refused (SharedStateError): a symbolic link (even a dangling one: lstat sees it before anything is
    created), anything but a folder, a folder owned by another account, or one writable by its group or by
    others. A folder of ours that others may read but not write (0755) is accepted: reading cached views lets
    nobody run code. Only the folder itself is checked, not the folders above it."""
    folder = Path(path).expanduser().absolute()  # not resolve(): that would follow the link this must refuse
    for level in [*reversed(folder.parents), folder]:
        if not os.path.lexists(level):
            try:
                os.mkdir(level, 0o700)
            except FileExistsError:  # made by another worker meanwhile: checked below like any other
                pass
            except OSError as error:
                raise SharedStateError(f"Cannot create {level}: {error.strerror}. {FOLDER_HINT}") from None
    _check_private(folder, "folder", "the app's shared-state folder", FOLDER_HINT)
    return folder


def _check_private(path: Path, kind: str, role: str, hint: str) -> None:
    """Raise SharedStateError unless `path` is a `kind` ("folder" or "socket") that belongs to this account, is
    not a symbolic link, and is not writable by group or others."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise SharedStateError(f"There is no {kind} at {path} ({role}). {hint}") from None
    writable_by = {0o020: "its group", 0o002: "others", 0o022: "its group and others"}.get(info.st_mode & 0o022)
    if stat.S_ISLNK(info.st_mode):
        why = f"it is a symbolic link (to {os.readlink(path)}), which whoever made it can point anywhere"
        fix = f"Remove the link, or use another {kind}"
    elif not (stat.S_ISDIR if kind == "folder" else stat.S_ISSOCK)(info.st_mode):
        why, fix = f"it is not a {kind}", "Use another path"
    elif info.st_uid != os.geteuid():
        why = (f"it belongs to user id {info.st_uid}, not to this account (user id {os.geteuid()}), so that account "
               f"controls what the app reads through it")
        fix = f"Remove it (as its owner), or use another {kind}"
    elif writable_by:
        why = (f"it is writable by {writable_by} (mode {stat.S_IMODE(info.st_mode):04o}), so other accounts can put "
               f"their own data there")
        fix = f"Run `chmod go-w {path}` (or chmod 700), or use another {kind}"
    else:
        return
    raise SharedStateError(f"Refusing {path} as {role}: {why}; the app loads pickles through it, and loading a "
                           f"pickle can run any code. {fix}. {hint}")


def check_redis_url(url: str) -> str:
    """`url` (CACHE_REDIS_URL, or any Redis the app shares state through) if it is safe, else SharedStateError.
    The messages never repeat the URL whole: it may hold a password.

    Accepted: a `unix://` socket whose folder passes private_folder's checks (so no other account can put a
    socket of its own there, or reach ours through a 0700 folder), and which, if it already exists, is ours and
    not writable by group or others (connecting to a unix socket needs write permission on it), as
    `redis-server --port 0 --unixsocket PATH --unixsocketperm 700` makes it. Or a `redis://` / `rediss://` URL
    with a password (in the URL or as `?password=`): across machines, use `rediss://` (TLS) so the password
    and the pickles are not sent in clear."""
    parts = urlsplit(url)
    how = ("Use unix:///path/to/redis.sock with redis-server --port 0 --unixsocket /path/to/redis.sock "
           "--unixsocketperm 700 (the socket's folder owned by the app's account, mode 700), or a password: "
           "rediss://:PASSWORD@host:6379/0 with requirepass or an ACL user on the server.")
    if parts.scheme == "unix":
        if not parts.path.startswith("/"):
            raise SharedStateError(f"A unix:// Redis URL needs an absolute socket path: unix:///path/to/redis.sock. "
                                   f"{how}")
        socket = Path(parts.path)
        _check_private(socket.parent, "folder", "the Redis socket's folder", how)
        if os.path.lexists(socket):
            _check_private(socket, "socket", "the Redis socket", how)
        return url
    if parts.scheme in ("redis", "rediss"):
        if parts.password or parse_qs(parts.query).get("password"):
            return url
        raise SharedStateError(f"The Redis URL {parts.scheme}://{parts.hostname} has no password, so anyone who can "
                               f"reach that Redis can write the pickles the app loads, and so run code in it. {how}")
    raise SharedStateError(f"A Redis URL must start with unix://, redis:// or rediss://. {how}")


def cache_config() -> dict:
    """flask-caching settings for the views cache every worker shares: Redis when CACHE_REDIS_URL is set, else
    files in a private folder (INSIDE_GPT2_CACHE_DIR, else app_folder()/views)."""
    config = {"CACHE_DEFAULT_TIMEOUT": 3600}
    url = os.environ.get("CACHE_REDIS_URL")
    if url:
        return {**config, "CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": check_redis_url(url)}
    folder = private_folder(os.environ.get("INSIDE_GPT2_CACHE_DIR") or app_folder() / "views")
    return {**config, "CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(folder), "CACHE_THRESHOLD": 2000}


def redis_client(url: str):
    """A redis-py client for `url`, once check_redis_url accepts it: for state shared across workers and
    machines beyond the views cache. redis is imported here, so only deployments that use Redis load it."""
    import redis
    return redis.Redis.from_url(check_redis_url(url))
