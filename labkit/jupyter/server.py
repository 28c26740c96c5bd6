"""labkit's jupyter_server extension: the run records under the server's root, as JSON.

Three handlers under ``{base_url}labkit/`` serve the "labkit runs" sidebar:

- ``GET labkit/runs?since=V``: the runs' summaries (``labkit.runs.tail``); only those that
  changed after version ``V``, plus the ids that disappeared (``full`` when ``V`` is 0 or not
  one this server gave out). A response grows with what changed, never with a run's steps.
- ``GET labkit/run?id=ID&offset=N``: one run's record from byte ``N``, as columns
  (``labkit.runs.tail.read_since``), at most ~4 MB a call (``more`` says to ask again).
- ``POST labkit/run/control`` with ``{"id", "action"}``: writes the run's control file
  (``labkit.runs.control.request``); 409 when the run is not running (nothing is written).

Cost: the index (:class:`RunIndex`) lives on one worker thread of its own, so Jupyter's event
loop is never held by a read. A listing stats each known record (plus, for a run that has not
ended, its control file and its process) and reads only new bytes; the root is walked again at
most every 5 s; the registry of this machine's runs is stat'ed at each listing and read again
when it changed, so a run started here is listed at the next poll. Records found but not read
yet are read for at most ~0.5 s per listing (``loading`` counts the rest, which come in later
listings as changed runs).

Security model
--------------
- **Authentication**: every handler is a jupyter_server ``APIHandler`` method under
  ``tornado.web.authenticated``: Jupyter's own identity provider (token, password or whatever
  the server is configured with) decides who the user is; a request without it gets 403.
- **Authorization**: ``jupyter_server.auth.authorized`` with the resource ``"labkit"``
  (:data:`AUTH_RESOURCE`; actions ``read`` for the GETs, ``write`` for the control POST), so a
  server's ``Authorizer`` can allow or refuse labkit's runs like any other resource.
- **XSRF**: the POST is checked by jupyter_server as every POST is (``_xsrf`` cookie and header,
  or a token in the request, which a cross-site page cannot know); GETs change nothing.
- **Root confinement**: the runs shown are those under the server's root (the contents
  manager's ``root_dir``): their id is their folder relative to the root (posix; ``.`` for the
  root itself). An id is refused *before anything is read* when it is absolute, contains
  ``..``, names a hidden folder, or resolves (symlinks followed, ``Path.resolve``) outside the
  root: 403; one whose folder holds no ``events.jsonl`` file: 404.
- **Registry ids**: a run started on this machine outside the root (``labkit.runs.registry``,
  written only by the user's own processes) is shown as ``machine/<16 hex of sha1(folder)>``.
  Such an id is never a path: it is only looked up among the registry's entries, so a client
  cannot name a folder through it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from labkit.runs.record import RECORD
from labkit.runs.tail import READ_LIMIT, RecordTail, read_since

__all__ = ["AUTH_RESOURCE", "BUDGET_S", "DEPTH", "RESCAN_S", "RunIndex", "load", "root_of"]

AUTH_RESOURCE = "labkit"  # the jupyter_server authorization resource of every handler
DEPTH = 4  # folders below the root searched for records
RESCAN_S = 5.0  # the least seconds between two walks of the root (the registry: each listing)
MAX_DIRS = 20_000  # the most folders one walk visits: a huge root costs a bounded scan
BUDGET_S = 0.5  # the most seconds a listing spends reading records it has not read yet
GONE_KEPT = 1_000  # ids of vanished runs remembered for incremental listings
_SKIP = {"node_modules", ".venv", "venv", "site-packages", "__pycache__"}
_SKIP_PREFIXES = ("checkpoint-", ".staging", ".")


class RunRefused(Exception):
    """A request that is not served: ``status`` 403 (outside the root), 404 (no such run), 409
    (the run is not running) or 400 (a bad request), and ``message`` saying why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class _Entry:
    id: str
    where: str  # "root" | "machine"
    path: str | None  # posix, relative to the root (None for a machine run)
    tail: RecordTail
    version: int = 0
    summary: dict[str, Any] | None = None


def _machine_id(folder: str) -> str:
    return "machine/" + hashlib.sha1(os.fsencode(folder)).hexdigest()[:16]


class RunIndex:
    """Every run the server shows: discovery, the id <-> folder mapping, the version counter.

    ``listing(since)`` answers ``GET labkit/runs``; ``resolve(id)`` maps an id to its
    :class:`labkit.runs.tail.RecordTail` (or raises :class:`RunRefused`). Not thread-safe:
    the server calls it from one worker thread of its own (``labkit runs`` from its one thread).

    Versions start at the server's start time in microseconds, so a version from before a
    restart is below every version this server gives out and is answered with a full listing.
    """

    def __init__(self, root: str | os.PathLike[str], *, rescan_s: float = RESCAN_S) -> None:
        self.root = Path(root).expanduser().resolve()
        self.rescan_s = rescan_s
        self.read_limit = READ_LIMIT
        self.budget_s = BUDGET_S
        self._entries: dict[str, _Entry] = {}
        self._by_folder: dict[Path, str] = {}
        self._machine: dict[str, Path] = {}  # registry ids outside the root -> their folders
        self._gone: dict[str, int] = {}  # id -> version at which it vanished
        self._gone_floor = 0  # incremental answers since an older version are not possible
        self._base = time.time_ns() // 1000
        self.version = self._base
        self._scanned = float("-inf")
        self._registry_seen: tuple[int, int, int] | None = None  # the registry file's stat

    # -- ids --------------------------------------------------------------------------------
    def _confined(self, folder: Path) -> Path | None:
        """``folder`` resolved, when it and its record lie inside the root, else None."""
        try:
            real = folder.resolve()
            record = (folder / RECORD).resolve()
        except (OSError, RuntimeError):
            return None
        if not (real == self.root or self.root in real.parents):
            return None
        if record.parent != real:  # events.jsonl is a link to a file elsewhere
            return None
        return real

    def folder_of(self, run_id: str) -> Path:
        """The folder of the run ``run_id`` names, checked before anything is read."""
        if run_id.startswith("machine/"):
            folder = self._machine.get(run_id)
            if folder is None:
                raise RunRefused(404, f"no run on this machine has the id {run_id!r}")
            return folder
        if not run_id or "\\" in run_id or "\0" in run_id or ".." in run_id:
            raise RunRefused(403, "a run id is a folder below the server's root, without '..'")
        rel = PurePosixPath(run_id)
        if rel.is_absolute() or os.path.isabs(run_id):
            raise RunRefused(403, "a run id is relative to the server's root, not absolute")
        parts = [p for p in rel.parts if p != "."]
        if any(p.startswith(".") for p in parts):
            raise RunRefused(403, "hidden folders are not served")
        folder = self.root.joinpath(*parts)
        real = self._confined(folder)
        if real is None:
            raise RunRefused(403, f"{run_id!r} lies outside the server's root")
        if not os.path.isfile(real / RECORD):
            raise RunRefused(404, f"{run_id!r} holds no labkit run record ({RECORD})")
        return real

    def id_of_folder(self, folder: str) -> str:
        """The id of the run in ``folder`` (an absolute path, as a kernel's panel knows its run):
        its root id when it lies inside the root, its registry id when it is a run started on
        this machine; anything else is refused (the same rules as for an id)."""
        if not isinstance(folder, str) or not os.path.isabs(folder) or "\0" in folder:
            raise RunRefused(400, "give the run's folder as an absolute path")
        try:
            real = Path(folder).resolve()
        except (OSError, RuntimeError):
            raise RunRefused(404, "no such run folder") from None
        if real == self.root or self.root in real.parents:
            return self._root_id(real)
        self._scan_if_due()
        for run_id, known in self._machine.items():
            if known == real:
                return run_id
        raise RunRefused(
            404, "the folder is neither under the server's root nor a run of this machine"
        )

    def resolve(self, run_id: str) -> _Entry:
        """The entry of ``run_id`` (found now if discovery has not seen it yet)."""
        self._scan_if_due()
        entry = self._entries.get(run_id)
        if entry is None:
            folder = self.folder_of(run_id)
            entry = self._add(run_id, folder)
        else:  # re-check: a folder may have been replaced by a link since it was found
            self.folder_of(run_id)
        if entry.tail.refresh() or entry.summary is None:
            self._bump(entry)
        if entry.tail.gone:
            raise RunRefused(404, f"{run_id!r} holds no labkit run record ({RECORD})")
        return entry

    def _root_id(self, real: Path) -> str:
        rel = real.relative_to(self.root)
        return rel.as_posix() if rel.parts else "."

    def _add(self, run_id: str, folder: Path) -> _Entry:
        where, path = ("machine", None) if run_id.startswith("machine/") else ("root", run_id)
        entry = _Entry(run_id, where, path, RecordTail(folder))
        self._entries[run_id] = entry
        self._by_folder[folder] = run_id
        self._gone.pop(run_id, None)
        return entry

    def _drop(self, run_id: str) -> None:
        entry = self._entries.pop(run_id, None)
        if entry is None:
            return
        self._by_folder.pop(entry.tail.folder, None)
        self.version += 1
        self._gone[run_id] = self.version
        if len(self._gone) > GONE_KEPT:
            oldest = min(self._gone, key=self._gone.__getitem__)
            self._gone_floor = self._gone.pop(oldest)

    def _bump(self, entry: _Entry) -> None:
        summary = entry.tail.summary()
        if summary == entry.summary:
            return
        self.version += 1
        entry.version = self.version
        entry.summary = summary

    # -- discovery --------------------------------------------------------------------------
    def _walk(self) -> set[Path]:
        """Folders (resolved) holding a record, to ``DEPTH`` below the root."""
        found: set[Path] = set()
        todo = [(self.root, 0)]
        visited = 0
        while todo and visited < MAX_DIRS:
            folder, depth = todo.pop()
            visited += 1
            try:
                with os.scandir(folder) as it:
                    children = list(it)
            except OSError:
                continue
            for child in children:
                name = child.name
                if name == RECORD:
                    if child.is_file(follow_symlinks=False):
                        real = self._confined(Path(folder))
                        if real is not None:
                            found.add(real)
                    continue
                if depth >= DEPTH or name in _SKIP or name.startswith(_SKIP_PREFIXES):
                    continue
                if child.is_dir(follow_symlinks=False):
                    todo.append((Path(child.path), depth + 1))
        return found

    def scan(self) -> None:
        """Walk the root and read the registry: add new runs, drop the vanished."""
        self._scanned = time.monotonic()
        self._registry_changed()  # the registry is read below: note its state
        wanted: dict[str, Path] = {self._root_id(real): real for real in self._walk()}
        self._machine = {}
        for run_id, folder in self._registered():
            wanted.setdefault(run_id, folder)
        for run_id in [r for r in self._entries if r not in wanted]:
            if not self._still_served(run_id):
                self._drop(run_id)
        for run_id, folder in wanted.items():
            if run_id not in self._entries:
                self._add(run_id, folder)

    def _still_served(self, run_id: str) -> bool:
        """A root run asked for by its id (deeper than the walk goes) stays while its record
        does; a registry run goes with its registry entry."""
        if run_id.startswith("machine/"):
            return False
        try:
            self.folder_of(run_id)
        except RunRefused:
            return False
        return True

    def _scan_if_due(self) -> None:
        if time.monotonic() - self._scanned >= self.rescan_s:
            self.scan()
        elif self._registry_changed():
            self._add_registered()

    def _registry_changed(self) -> bool:
        """One stat of the registry file: a run started on this machine appends to it, so a
        new run is listed at the next listing rather than at the next walk of the root (a run
        the registry's compaction dropped at once waits for the walk, if under the root)."""
        from labkit.runs.registry import registry_file

        try:
            st = os.stat(registry_file())
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            stamp = (0, 0, 0)
        if stamp == self._registry_seen:
            return False
        self._registry_seen = stamp
        return True

    def _add_registered(self) -> None:
        """Add the registry's new runs (none is dropped here: the next walk does that)."""
        for run_id, folder in self._registered():
            if run_id not in self._entries:
                self._add(run_id, folder)

    def _registered(self) -> Iterator[tuple[str, Path]]:
        """The registry's runs as (id, folder); a run under the root has its root id (and its
        rules), one elsewhere a machine id, noted in ``_machine``."""
        from labkit.runs.registry import registered

        for raw in registered():
            try:
                real = Path(raw).resolve()
            except (OSError, RuntimeError):
                continue
            if real == self.root or self.root in real.parents:
                run_id = self._root_id(real)
                try:
                    folder = self.folder_of(run_id)
                except RunRefused:
                    continue
                yield run_id, folder
                continue
            run_id = _machine_id(os.fspath(real))
            self._machine[run_id] = real
            yield run_id, real

    def refresh(self) -> None:
        """Rescan when the last walk is ``rescan_s`` old; read what every listed run appended,
        then the records not read yet for at most ``budget_s`` seconds (at least one): a root
        full of long runs is read over several listings, each run appearing when it is read
        whole, rather than in one request that holds the server for seconds."""
        self._scan_if_due()
        fresh = []
        for entry in list(self._entries.values()):
            if entry.summary is None:
                fresh.append(entry)
            elif entry.tail.refresh():
                self._update(entry)
        deadline = time.monotonic() + self.budget_s
        for entry in fresh:
            entry.tail.refresh()
            self._update(entry)
            if time.monotonic() >= deadline:
                break

    def _update(self, entry: _Entry) -> None:
        if entry.tail.gone:
            self._drop(entry.id)
        else:
            self._bump(entry)

    # -- answers ----------------------------------------------------------------------------
    def row(self, entry: _Entry) -> dict[str, Any]:
        assert entry.summary is not None
        return {
            "id": entry.id,
            "path": entry.path,
            "where": entry.where,
            **entry.summary,
            "version": entry.version,
        }

    def listing(self, since: int = 0) -> dict[str, Any]:
        """``GET labkit/runs``: every run (``full``) or those changed after ``since``;
        ``loading`` counts the runs found whose records are still being read (they come in
        later listings, as changed runs)."""
        self.refresh()
        full = not (max(self._base, self._gone_floor) <= since <= self.version) or since == 0
        entries = self._entries.values()
        runs = [self.row(e) for e in entries if e.summary and (full or e.version > since)]
        gone = [] if full else [r for r, v in self._gone.items() if v > since]
        runs.sort(key=lambda r: -(r["started"] or 0.0))
        loading = sum(1 for e in entries if e.summary is None)
        return {
            "version": self.version,
            "full": full,
            "runs": runs,
            "gone": gone,
            "loading": loading,
        }

    def records(self, run_id: str, offset: int) -> dict[str, Any]:
        """``GET labkit/run``: the record of ``run_id`` from byte ``offset`` (at most
        ``read_limit`` bytes)."""
        entry = self.resolve(run_id)
        try:
            out = read_since(entry.tail.record, offset, limit=self.read_limit)
        except FileNotFoundError:
            raise RunRefused(404, f"{run_id!r} holds no labkit run record ({RECORD})") from None
        out.pop("bad", None)
        return {"id": run_id, **out, "summary": self.row(entry)}

    def control_folder(
        self, folder: str, action: str, record_id: str | None = None
    ) -> dict[str, Any]:
        """:meth:`control` of the run in ``folder`` (:meth:`id_of_folder`'s rules). With
        ``record_id`` (a kernel panel's run), 404 when another run has since started in that
        folder: the request is not that run's to take (the panel then asks its kernel)."""
        run_id = self.id_of_folder(folder)
        if record_id is not None and self.resolve(run_id).tail.run_id != record_id:
            raise RunRefused(404, "another run has started in this folder since")
        return {"id": run_id, **self.control(run_id, action)}

    def control(self, run_id: str, action: str) -> dict[str, Any]:
        """``POST labkit/run/control``: ask the run to ``action`` through its control file.

        Raises :class:`RunRefused` with 409 when the run is not running (its end is recorded or
        its process is gone): nothing is written then."""
        from labkit.runs.control import request

        entry = self.resolve(run_id)
        tail = entry.tail
        if not tail.alive:
            status = tail.status
            why = tail.summary()["error"] if status == "failed" else f"it has {status}"
            raise RunRefused(409, f"the run {tail.summary()['name']!r} is not running: {why}")
        request(tail.folder, action, run_id=tail.run_id)
        if tail.refresh():
            self._bump(entry)
        notice = {
            "stop": "stop asked: the run saves a checkpoint and ends at its next step",
            "pause": "pause asked: the run pauses at its next step",
            "resume": "resume asked: the run goes on at its next step",
            "save": "checkpoint asked: the run saves one at its next step",
        }[action]
        return {"status": tail.status, "notice": notice}


def root_of(server_app: Any) -> Path:
    """The folder the server serves: its contents manager's ``root_dir`` (else the app's)."""
    root = getattr(getattr(server_app, "contents_manager", None), "root_dir", None)
    return Path(root or server_app.root_dir).expanduser().resolve()


class _Worker:
    """The one thread that touches the index: the event loop of Jupyter is never held by a
    read (the first listing of a root full of long runs reads them all), and the index needs
    no lock since every call runs here, one after the other."""

    def __init__(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="labkit-runs")

    async def call(self, fn: Any, *args: Any) -> Any:
        import asyncio

        return await asyncio.wrap_future(self._pool.submit(fn, *args))


def _handlers(index: RunIndex, worker: _Worker) -> list[tuple[str, Any]]:
    """The tornado handlers (imported here: the rest of labkit never needs tornado)."""
    from jupyter_server.auth.decorator import authorized
    from jupyter_server.base.handlers import APIHandler
    from tornado import web

    from labkit.runs.control import ACTIONS

    class _Handler(APIHandler):
        auth_resource = AUTH_RESOURCE

        def _int(self, name: str) -> int:
            raw = self.get_query_argument(name, "0")
            try:
                return int(raw)
            except ValueError:
                raise RunRefused(400, f"{name} must be an integer, got {raw[:40]!r}") from None

        def _reply(self, body: dict[str, Any], status: int = 200) -> None:
            self.set_status(status)
            self.set_header("Content-Type", "application/json")
            self.set_header("Cache-Control", "no-store")
            self.finish(json.dumps(body, separators=(",", ":"), allow_nan=False))

        def _refuse(self, exc: RunRefused) -> None:
            # written here, not raised as a tornado HTTPError: the message holds what the
            # client sent, and tornado would use it as a %-format when logging
            self.log.info("labkit: %s %s refused (%d): %s", *self._what(), exc.status, exc.message)
            self._reply({"message": exc.message, "reason": None}, exc.status)

        def _what(self) -> tuple[str, str]:
            return self.request.method or "", self.request.path

    class RunsHandler(_Handler):
        @web.authenticated
        @authorized
        async def get(self) -> None:
            try:
                self._reply(await worker.call(index.listing, self._int("since")))
            except RunRefused as exc:
                self._refuse(exc)

    class RunHandler(_Handler):
        @web.authenticated
        @authorized
        async def get(self) -> None:
            try:
                run_id = self.get_query_argument("id", "")
                offset = max(0, self._int("offset"))
                self._reply(await worker.call(index.records, run_id, offset))
            except RunRefused as exc:
                self._refuse(exc)

    class ControlHandler(_Handler):
        @web.authenticated
        @authorized
        async def post(self) -> None:
            try:
                run_id, folder, action, record_id = self._body()
                if run_id is None:  # a kernel's panel names its run's folder (and its id)
                    answer = await worker.call(index.control_folder, folder, action, record_id)
                else:
                    answer = await worker.call(index.control, run_id, action)
                self._reply(answer)
            except RunRefused as exc:
                self._refuse(exc)

        def _body(self) -> tuple[str | None, str, str, str | None]:
            try:
                body = json.loads(self.request.body or b"{}")
            except ValueError:
                raise RunRefused(400, "the body must be JSON: {id, action}") from None
            if not isinstance(body, dict):
                raise RunRefused(400, "the body must be a JSON object: {id, action}")
            run_id, folder, action = body.get("id"), body.get("folder"), body.get("action")
            named = folder if run_id is None else run_id
            if not isinstance(named, str) or not named:
                raise RunRefused(400, "give the run's id as a string (or its folder)")
            if action not in ACTIONS:
                raise RunRefused(
                    400, f"unknown action {str(action)[:40]!r}: one of {', '.join(ACTIONS)}"
                )
            record_id = body.get("run_id")  # with a folder: the run the panel shows
            if not isinstance(record_id, str) or not record_id:
                record_id = None
            return run_id, str(folder or ""), str(action), record_id

    return [
        ("labkit/runs", RunsHandler),
        ("labkit/run", RunHandler),
        ("labkit/run/control", ControlHandler),
    ]


def load(server_app: Any) -> RunIndex:
    """Register the handlers under ``{base_url}labkit/`` (called by
    ``labkit.jupyter._load_jupyter_server_extension``); returns the server's index."""
    from jupyter_server.utils import url_path_join

    index = RunIndex(root_of(server_app))
    worker = _Worker()
    web_app = server_app.web_app
    base = web_app.settings.get("base_url", "/")
    routes = _handlers(index, worker)
    web_app.add_handlers(".*$", [(url_path_join(base, route), h) for route, h in routes])
    web_app.settings["labkit_runs"] = index
    server_app.log.info("labkit: run records under %s at %slabkit/runs", index.root, base)
    return index
