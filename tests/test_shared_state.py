"""Shared state lives only where no other account can write: private folders are made 0700 and reused; a
symlink, another account's folder or a group/world-writable one is refused with a message, as are Redis URLs
that others could reach; the app will not start on them. One test runs the views cache through a real Redis."""
import os
import socket
import stat
import threading

import pytest

from components import shared_state
from components.shared_state import SharedStateError, cache_config, check_redis_url, private_folder


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No setting from the test session or the machine: the default folder goes under tmp_path/home."""
    for name in ("INSIDE_GPT2_CACHE_DIR", "INSIDE_GPT2_STATE_DIR", "XDG_CACHE_HOME", "CACHE_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


def test_default_folder_is_made_private_in_the_home_cache(clean_env, tmp_path):
    config = cache_config()
    views = tmp_path / "home" / ".cache" / "inside-gpt2" / "views"
    assert config["CACHE_TYPE"] == "FileSystemCache" and config["CACHE_DIR"] == str(views)
    for folder in (views, views.parent, views.parent.parent, tmp_path / "home"):  # missing parents too
        assert mode(folder) == 0o700
    clean_env.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert shared_state.app_folder() == tmp_path / "xdg" / "inside-gpt2" and mode(tmp_path / "xdg") == 0o700
    clean_env.setenv("INSIDE_GPT2_STATE_DIR", str(tmp_path / "state"))
    assert cache_config()["CACHE_DIR"] == str(tmp_path / "state" / "views")


def test_our_own_folder_is_reused(tmp_path):
    folder = private_folder(tmp_path / "views")
    (folder / "entry").write_text("kept")
    assert private_folder(folder) == folder and (folder / "entry").read_text() == "kept"
    readable = tmp_path / "readable"
    readable.mkdir()
    readable.chmod(0o755)  # others may read, not write: accepted as it is
    assert private_folder(readable) == readable and mode(readable) == 0o755


def test_workers_creating_the_folder_at_once_all_get_it(tmp_path):
    folder, barrier, results = tmp_path / "a" / "b" / "c" / "views", threading.Barrier(8), []

    def create():
        barrier.wait()
        results.append(private_folder(folder))
    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [folder] * 8 and mode(folder) == 0o700 and mode(tmp_path / "a") == 0o700


def test_a_symlink_is_refused_even_dangling_and_nothing_is_made(tmp_path):
    target = tmp_path / "target"
    target.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(SharedStateError, match=r"link.*symbolic link \(to .*target\).*Remove the link"):
        private_folder(tmp_path / "link")
    (tmp_path / "dangling").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(SharedStateError, match="symbolic link"):
        private_folder(tmp_path / "dangling")
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to another user needs root (CI runs as root)")
def test_a_folder_of_another_user_is_refused(tmp_path):
    folder = tmp_path / "theirs"
    folder.mkdir(mode=0o700)
    os.chown(folder, 65534, 65534)
    with pytest.raises(SharedStateError, match="belongs to user id 65534, not to this account.*Remove it"):
        private_folder(folder)


@pytest.mark.parametrize("bits, who", [(0o777, "its group and others"), (0o1777, "its group and others"),
                                       (0o707, "others"), (0o770, "its group")])
def test_a_folder_others_can_write_is_refused(tmp_path, bits, who):
    folder = tmp_path / "open"
    folder.mkdir()
    folder.chmod(bits)  # the sticky bit (1777, like /tmp) does not stop others adding their own files
    with pytest.raises(SharedStateError, match=f"writable by {who} .*chmod go-w .*open.*INSIDE_GPT2_CACHE_DIR"):
        private_folder(folder)


def test_a_file_is_not_a_folder(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(SharedStateError, match="not a folder"):
        private_folder(tmp_path / "file")


def unix_socket(path, perms):
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    os.chmod(path, perms)
    return server


@pytest.mark.parametrize("url", [
    "redis://:secret@cache.example:6379/0", "rediss://app:secret@cache.example/1",
    "redis://cache.example/0?password=secret",
])
def test_redis_urls_with_a_password_are_accepted(url):
    assert check_redis_url(url) == url


@pytest.mark.parametrize("url, message", [
    ("redis://cache.example:6379/0", "no password"), ("rediss://user@cache.example/0", "no password"),
    ("redis://cache.example/0?password=", "no password"), ("http://:secret@cache.example/", "must start with"),
    ("/run/redis.sock", "must start with"), ("unix://redis.sock", "absolute socket path"),
])
def test_redis_urls_others_could_use_are_refused(url, message):
    with pytest.raises(SharedStateError, match=message) as refused:
        check_redis_url(url)
    assert "secret" not in str(refused.value) and "--unixsocketperm 700" in str(refused.value)


def test_unix_socket_urls_must_be_private(tmp_path):
    private = private_folder(tmp_path / "run")
    assert check_redis_url(f"unix://{private}/redis.sock?db=1")  # not there yet: only ours could make it
    with unix_socket(private / "redis.sock", 0o700):
        assert check_redis_url(f"unix://{private}/redis.sock")
    with unix_socket(private / "open.sock", 0o777), pytest.raises(SharedStateError, match="open.sock.*writable"):
        check_redis_url(f"unix://{private}/open.sock")
    (private / "linked.sock").symlink_to(private / "redis.sock")
    with pytest.raises(SharedStateError, match="symbolic link"):
        check_redis_url(f"unix://{private}/linked.sock")
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # anyone could put their own socket here first
    with pytest.raises(SharedStateError, match="shared as the Redis socket's folder: it is writable"):
        check_redis_url(f"unix://{shared}/redis.sock")
    with pytest.raises(SharedStateError, match="no folder"):
        check_redis_url(f"unix://{tmp_path}/missing/redis.sock")


def test_the_app_refuses_to_start_on_a_hostile_cache_folder(clean_env, tmp_path):
    import app
    hostile = tmp_path / "views"
    hostile.mkdir()
    hostile.chmod(0o777)
    clean_env.setenv("INSIDE_GPT2_CACHE_DIR", str(hostile))
    with pytest.raises(SharedStateError, match="writable by its group and others"):
        app.create_app()
    clean_env.setattr(app.state.model, "settings", dict(app.state.model.settings))  # main() configures it
    with pytest.raises(SystemExit) as exited:  # python app.py: the message on stderr, exit status 1, no traceback
        app.main(["--port", "0"])
    assert "Refusing" in exited.value.code and "chmod go-w" in exited.value.code
    clean_env.setenv("CACHE_REDIS_URL", "redis://localhost:6379/0")
    with pytest.raises(SharedStateError, match="no password"):
        app.create_app()


def test_the_views_cache_round_trips_through_redis_over_a_private_socket(redis_url, monkeypatch):
    from app import create_app
    from components import state
    monkeypatch.setenv("CACHE_REDIS_URL", redis_url)
    server = create_app().server
    value = {"data": [{"type": "heatmap", "z": [[0.5, 1.0]]}], "layout": {"title": "é"}}
    with server.app_context():
        assert type(state.views_cache.cache).__name__ == "RedisCache"
        state.views_cache.set("test-shared-state-view", value)
        assert state.views_cache.get("test-shared-state-view") == value
    client = shared_state.redis_client(redis_url)
    assert client.exists("flask_cache_test-shared-state-view")  # in Redis, not in a folder
    client.close()
