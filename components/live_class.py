"""A live class's shared state: which step and view the teacher is on, whether a question is revealed, and the
class's answers. In the app's shared state (components/shared_state.py decides where): files in the app's private
folder on one machine, Redis when CACHE_REDIS_URL is set, so every gunicorn worker (and machine) sees one class.

A class is a short code students can type (no account, no name); the teacher's page alone holds a secret that
moves the class, reveals and ends it. Students only ever add an answer: one per page and question, counted
atomically (a Redis script; on files, an fcntl lock held across the read-modify-write, which every worker process
respects). Nothing about a student is kept but an anonymous page id per question, and all of it goes when the
class ends or after IDLE_S without a teacher action.
"""
from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from contextlib import contextmanager
from pathlib import Path

from .i18n import _
from .shared_state import app_folder, private_folder, redis_client

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read off a projector
CODE_LENGTH = 6
CODE_RE = re.compile(f"[{CODE_ALPHABET}]{{{CODE_LENGTH}}}")
IDLE_S = 3 * 3600          # a class nobody moved for this long is gone
MAX_ANSWERS = 1000         # per question: a page forging fresh ids cannot grow a count without bound
MAX_SEARCH = 4000          # the teacher's page state is an address-bar query; longer is refused
MAX_CHOICES = 8
MAX_CLASSES = 500          # live classes at once: a page starting classes in a loop stops here


def normalise_code(code) -> str | None:
    """A typed class code as stored (upper case, spaces and dashes dropped), or None if it cannot be one."""
    if not isinstance(code, str) or len(code) > 40:
        return None
    code = re.sub(r"[\s-]", "", code).upper()
    return code if CODE_RE.fullmatch(code) else None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def voter_id(salt: str) -> str:
    """An anonymous id for one student page, signed with the class's salt: an answer carrying an id the server
    did not hand out is refused."""
    nonce = secrets.token_hex(8)
    return f"{nonce}.{hmac.new(salt.encode(), nonce.encode(), 'sha256').hexdigest()[:16]}"


def _valid_voter(salt: str, voter) -> bool:
    if not isinstance(voter, str) or len(voter) != 33 or voter[16:17] != ".":
        return False
    expected = hmac.new(salt.encode(), voter[:16].encode(), "sha256").hexdigest()[:16]
    return hmac.compare_digest(expected, voter[17:])


class ClassesFull(RuntimeError):
    """No new class now; the message says why."""

    def __init__(self):
        super().__init__(_("{max_classes} classes are running on this server; end one, or wait for an idle one "
                           "to expire.").format(max_classes=MAX_CLASSES))


class ClassStore:
    """The operations; subclasses keep the record {"secret", "salt", "search", "lesson", "revealed", "touched"}
    and the answers."""

    def create(self) -> tuple[str, str]:
        """A new class: (code, teacher secret)."""
        secret = secrets.token_urlsafe(24)
        record = {"secret": _digest(secret), "salt": secrets.token_hex(16), "search": "", "lesson": None,
                  "revealed": None, "version": 0, "touched": time.time()}
        for _unused in range(20):
            code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
            if self._insert(code, record):
                return code, secret
        raise RuntimeError(_("no free class code"))

    def view(self, code) -> dict | None:
        """What a student's page needs: {"search", "lesson", "revealed", "version"}; None for an unknown,
        ended or expired class."""
        record = self._record(code)
        return None if record is None else {k: record[k] for k in ("search", "lesson", "revealed", "version")}

    def join(self, code) -> str | None:
        """A voter id for a new student page, or None if there is no such class."""
        record = self._record(code)
        return None if record is None else voter_id(record["salt"])

    def is_teacher(self, code, secret) -> bool:
        record = self._record(code)
        return (record is not None and isinstance(secret, str)
                and hmac.compare_digest(record["secret"], _digest(secret)))

    def publish(self, code, secret, **changes) -> bool:
        """Set the teacher's page state: any of search (its address-bar query), lesson (the step on screen, or
        None) and revealed (the step whose answer is shown, or None). False if the secret is not this class's or
        a value is malformed."""
        if not changes or set(changes) - {"search", "lesson", "revealed"}:
            raise TypeError(f"publish takes search, lesson and revealed, not {sorted(changes)}")
        if "search" in changes and not (isinstance(changes["search"], str) and len(changes["search"]) <= MAX_SEARCH):
            return False
        if any(not (changes[k] is None or (isinstance(changes[k], int) and not isinstance(changes[k], bool)
                                           and 0 <= changes[k] < 1000)) for k in ("lesson", "revealed") if k in changes):
            return False
        return self._update(code, secret, changes)

    def answer(self, code, voter, lesson, choice) -> str:
        """Count one answer. Returns "counted", "already" (this page answered this question), "closed" (the
        question is not the open one, or revealed), "full", or "unknown" (no class, or a forged page id)."""
        record = self._record(code)
        if record is None or not _valid_voter(record["salt"], voter):
            return "unknown"
        if not (isinstance(lesson, int) and isinstance(choice, int) and not isinstance(choice, bool)
                and 0 <= choice < MAX_CHOICES and lesson == record["lesson"] and record["revealed"] != lesson):
            return "closed"
        return self._count(code, voter, lesson, choice)

    def counts(self, code, lesson) -> list[int]:
        """Answers per choice to question `lesson` (MAX_CHOICES entries)."""
        raise NotImplementedError

    def end(self, code, secret) -> bool:
        raise NotImplementedError

    def _touched(self, record) -> bool:
        return time.time() - record.get("touched", 0) <= IDLE_S


class FileClassStore(ClassStore):
    """One JSON file per class in a private folder; every change holds an exclusive fcntl lock on the class's
    lock file for its read-modify-write, so workers in different processes never lose an answer."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = private_folder(folder)

    def _path(self, code) -> Path | None:
        code = normalise_code(code)
        return None if code is None else self.folder / f"{code}.json"

    @contextmanager
    def _locked(self, code):
        path = self._path(code)
        if path is None:
            yield None
            return
        with open(path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield path
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self, path: Path | None) -> dict | None:
        try:
            record = json.loads(path.read_text())
        except (AttributeError, FileNotFoundError, ValueError):
            return None
        if not self._touched(record):
            self._remove(path)
            return None
        return record

    def _write(self, path: Path, record: dict) -> None:
        temporary = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
        temporary.write_text(json.dumps(record))
        os.replace(temporary, path)  # readers without the lock see the old or the new file, never half of one

    def _remove(self, path: Path) -> None:
        for p in (path, path.with_suffix(".lock")):
            p.unlink(missing_ok=True)

    def _record(self, code):
        return self._read(self._path(code))

    def _insert(self, code, record) -> bool:
        if self._sweep() >= MAX_CLASSES:
            raise ClassesFull()
        with self._locked(code) as path:
            if path.exists():
                return False
            self._write(path, {**record, "answers": {}})
            return True

    def _update(self, code, secret, changes) -> bool:
        with self._locked(code) as path:
            record = self._read(path)
            if record is None or not isinstance(secret, str) or not hmac.compare_digest(record["secret"],
                                                                                         _digest(secret)):
                return False
            record.update(changes, version=record["version"] + 1, touched=time.time())
            self._write(path, record)
            return True

    def _count(self, code, voter, lesson, choice) -> str:
        with self._locked(code) as path:
            record = self._read(path)
            if record is None:
                return "unknown"
            if record["lesson"] != lesson or record["revealed"] == lesson:
                return "closed"
            question = record["answers"].setdefault(str(lesson), {"voters": [], "counts": [0] * MAX_CHOICES})
            if voter in question["voters"]:
                return "already"
            if len(question["voters"]) >= MAX_ANSWERS:
                return "full"
            question["voters"].append(voter)
            question["counts"][choice] += 1
            self._write(path, record)
            return "counted"

    def counts(self, code, lesson) -> list[int]:
        record = self._record(code)
        question = (record or {}).get("answers", {}).get(str(lesson))
        return list(question["counts"]) if question else [0] * MAX_CHOICES

    def end(self, code, secret) -> bool:
        if not self.is_teacher(code, secret):
            return False
        with self._locked(code) as path:
            self._remove(path)
        return True

    def _sweep(self) -> int:
        """Classes left idle (their teacher's tab closed) go when a new one starts; returns how many remain."""
        remaining = 0
        for path in self.folder.glob("*.json"):
            try:
                stale = time.time() - json.loads(path.read_text()).get("touched", 0) > IDLE_S
            except (OSError, ValueError):
                continue
            if stale:
                self._remove(path)
            else:
                remaining += 1
        return remaining


# KEYS: voters set, counts hash, class record; ARGV: voter, choice, max answers, ttl, lesson.
# Answers go in only while the record says this question is open, in one atomic step.
_COUNT_SCRIPT = """
local raw = redis.call('GET', KEYS[3])
if not raw then return 'unknown' end
local record = cjson.decode(raw)
if record['lesson'] ~= tonumber(ARGV[5]) or record['revealed'] == tonumber(ARGV[5]) then return 'closed' end
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 'already' end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 'full' end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 'counted'
"""


# KEYS: class record, index of live classes (code -> last teacher action); ARGV: record, ttl, now, max, code.
# Counting the live classes and adding one is a single step, so concurrent starts cannot pass the cap together.
_INSERT_SCRIPT = """
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[3]) - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then return 'full' end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return 'taken' end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 'added'
"""


class RedisClassStore(ClassStore):
    """The record as JSON under class:CODE, answers as a set of page ids and a hash of counts per question; every
    key expires IDLE_S after the teacher's last action. A sorted set indexes the live classes for the cap."""

    INDEX = "inside-gpt2:classes"

    def __init__(self, url: str):
        import redis
        self._watch_error = redis.WatchError
        self.redis = redis_client(url)
        self._count_script = self.redis.register_script(_COUNT_SCRIPT)
        self._insert_script = self.redis.register_script(_INSERT_SCRIPT)

    @staticmethod
    def _key(code, *parts) -> str | None:
        code = normalise_code(code)
        return None if code is None else ":".join(["inside-gpt2:class", code, *map(str, parts)])

    def _record(self, code):
        key = self._key(code)
        raw = self.redis.get(key) if key else None
        return json.loads(raw) if raw else None

    def _insert(self, code, record) -> bool:
        result = self._insert_script(keys=[self._key(code), self.INDEX],
                                     args=[json.dumps(record), IDLE_S, time.time(), MAX_CLASSES, code])
        result = result.decode() if isinstance(result, bytes) else result
        if result == "full":
            raise ClassesFull()
        return result == "added"

    def _update(self, code, secret, changes) -> bool:
        key = self._key(code)
        if key is None:
            return False
        with self.redis.pipeline() as pipe:  # optimistic: retried if another teacher request wrote meanwhile
            for _unused in range(10):
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    record = json.loads(raw) if raw else None
                    if record is None or not isinstance(secret, str) or not hmac.compare_digest(
                            record["secret"], _digest(secret)):
                        pipe.reset()
                        return False
                    record.update(changes, version=record["version"] + 1, touched=time.time())
                    pipe.multi()
                    pipe.set(key, json.dumps(record), ex=IDLE_S)
                    pipe.zadd(self.INDEX, {normalise_code(code): record["touched"]})
                    pipe.expire(self.INDEX, IDLE_S)
                    pipe.execute()
                    return True
                except self._watch_error:
                    continue
        return False

    def _count(self, code, voter, lesson, choice) -> str:
        keys = [self._key(code, lesson, "voters"), self._key(code, lesson, "counts"), self._key(code)]
        result = self._count_script(keys=keys, args=[voter, choice, MAX_ANSWERS, IDLE_S, lesson])
        return result.decode() if isinstance(result, bytes) else result

    def counts(self, code, lesson) -> list[int]:
        key = self._key(code, lesson, "counts")
        raw = self.redis.hgetall(key) if key else {}
        out = [0] * MAX_CHOICES
        for choice, n in raw.items():
            if int(choice) < MAX_CHOICES:
                out[int(choice)] = int(n)
        return out

    def end(self, code, secret) -> bool:
        if not self.is_teacher(code, secret):
            return False
        keys = [self._key(code)] + list(self.redis.scan_iter(match=self._key(code, "*"), count=100))
        self.redis.delete(*keys)
        self.redis.zrem(self.INDEX, normalise_code(code))
        return True


_store: ClassStore | None = None


def store() -> ClassStore:
    """The process's class store, chosen as the views cache is: Redis when CACHE_REDIS_URL is set, else files in
    the app's private folder (INSIDE_GPT2_CLASS_DIR moves them)."""
    global _store
    if _store is None:
        url = os.environ.get("CACHE_REDIS_URL")
        _store = RedisClassStore(url) if url else FileClassStore(
            os.environ.get("INSIDE_GPT2_CLASS_DIR") or app_folder() / "classes")
    return _store
