"""labkit's jupyter_server extension (labkit.jupyter.server): listing, records, control, and
what it refuses (no token, no XSRF, paths out of the root)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from labkit.events import EvalEnd, Saved, StepEnd, TrainEnd
from labkit.runs import registry
from labkit.runs import tail as tail_mod
from labkit.runs.record import RecordWriter
from labkit.runs.tail import Spark

# jupyter_server's own test fixtures (jp_fetch, jp_serverapp, ...): tests/conftest.py loads the
# plugin and gives its event loop to the tests marked jupyter_server alone
pytestmark = pytest.mark.jupyter_server


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"labkit.jupyter": True}}}


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A registry of this test's own."""
    folder = tmp_path / "state"
    monkeypatch.setenv("LABKIT_STATE_DIR", str(folder))
    return folder


@pytest.fixture
def index(jp_serverapp: Any) -> Any:
    """The server's RunIndex, rescanning at every request (the tests add runs as they go) and
    reading every new record in the listing that finds it."""
    found = jp_serverapp.web_app.settings["labkit_runs"]
    found.rescan_s = 0.0
    found.budget_s = 60.0
    return found


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def write_run(
    folder: Path,
    steps: int = 3,
    *,
    name: str | None = None,
    live: bool = True,
    end: str | None = None,
    start: int = 1,
) -> RecordWriter:
    """A record as finetune writes it: a header (this process when ``live``, an exited one
    otherwise), ``steps`` StepEnd lines, an evaluation, and an end when ``end`` is given."""
    header = {
        "kind": "Run",
        "labkit": "test",
        "run_id": f"id-{folder.name}-{time.time_ns()}",
        "name": name or folder.name,
        "model": "tiny",
        "task": "classification",
        "pid": os.getpid() if live else _dead_pid(),
        "host": socket.gethostname(),
        "started": time.time(),
        "config": {"lr": 0.001},
    }
    writer = RecordWriter(folder, header)
    add_steps(writer, steps, start=start)
    writer.event(EvalEnd(step=start + steps - 1, metrics={"accuracy": 0.75}, time=time.time()))
    if end:
        writer.event(TrainEnd(status=end, step=start + steps - 1, time=time.time()))  # type: ignore[arg-type]
    return writer


def add_steps(writer: RecordWriter, n: int, *, start: int) -> None:
    for step in range(start, start + n):
        writer.event(
            StepEnd(
                step=step,
                epoch=step / 100,
                loss=1.0 / step,
                lr=1e-3,
                total_steps=100,
                time=time.time(),
            )
        )


async def get(jp_fetch: Any, route: str, **params: Any) -> dict[str, Any]:
    response = await jp_fetch("labkit", route, params=params)
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.body)


async def refused(call: Any) -> int:
    with pytest.raises(HTTPClientError) as info:
        await call
    return info.value.code


async def post(jp_fetch: Any, body: Any) -> dict[str, Any]:
    response = await jp_fetch("labkit", "run", "control", method="POST", body=json.dumps(body))
    return json.loads(response.body)


# -- authentication and XSRF ----------------------------------------------------------------


async def test_requests_without_the_token_are_refused(jp_fetch, jp_root_dir, index):
    write_run(jp_root_dir / "a").close()
    no_token = {"Authorization": ""}
    for route, params in (("runs", {}), ("run", {"id": "a"})):
        call = jp_fetch("labkit", route, params=params, headers=no_token)
        assert await refused(call) == 403
    call = jp_fetch(
        "labkit",
        "run",
        "control",
        method="POST",
        headers=no_token,
        body=json.dumps({"id": "a", "action": "stop"}),
    )
    assert await refused(call) == 403
    assert not (jp_root_dir / "a" / "control.json").exists()
    # the same requests with the token pass
    assert (await get(jp_fetch, "runs"))["runs"][0]["id"] == "a"


async def test_a_cookie_session_must_send_the_xsrf_token_to_post(
    jp_fetch, jp_root_dir, jp_serverapp, index
):
    write_run(jp_root_dir / "a").close()
    token = jp_serverapp.identity_provider.token
    # a browser session: the token in the URL once sets the login cookie
    first = await jp_fetch("labkit", "runs", params={"token": token}, headers={"Authorization": ""})
    cookies = "; ".join(c.split(";", 1)[0] for c in first.headers.get_list("Set-Cookie"))
    assert cookies, "the token in the URL should have set a login cookie"
    no_xsrf = {"Authorization": "", "Cookie": cookies}
    body = json.dumps({"id": "a", "action": "stop"})
    call = jp_fetch("labkit", "run", "control", method="POST", headers=no_xsrf, body=body)
    assert await refused(call) == 403
    assert not (jp_root_dir / "a" / "control.json").exists()
    # with the cookie and its XSRF token (as JupyterLab sends them) the POST passes
    xsrf = "labkit-test-xsrf"
    with_xsrf = {"Authorization": "", "Cookie": f"{cookies}; _xsrf={xsrf}", "X-XSRFToken": xsrf}
    answer = await jp_fetch("labkit", "run", "control", method="POST", headers=with_xsrf, body=body)
    assert answer.code == 200
    assert json.loads((jp_root_dir / "a" / "control.json").read_text())["stop"] is True


# -- root confinement ---------------------------------------------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A run folder outside the server's root."""
    folder = tmp_path / "outside"
    write_run(folder, name="secret").close()
    return folder


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every record the server reads, in order."""
    seen: list[Path] = []
    original = tail_mod.read_chunk

    def spy(path: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(Path(path).resolve())
        return original(path, *args, **kwargs)

    monkeypatch.setattr(tail_mod, "read_chunk", spy)
    return seen


async def test_ids_that_leave_the_root_are_refused_and_nothing_is_read(
    jp_fetch,
    jp_root_dir,
    http_server_client,
    jp_base_url,
    jp_auth_header,
    outside,
    reads,
    index,
):
    (jp_root_dir / "link").symlink_to(outside, target_is_directory=True)
    fake = jp_root_dir / "fake"
    fake.mkdir()
    (fake / "events.jsonl").symlink_to(outside / "events.jsonl")
    (jp_root_dir / "empty").mkdir()
    rel = os.path.relpath(outside, jp_root_dir)  # "../outside"
    assert rel.startswith("..")
    cases = {
        rel: 403,
        f"root_dir/../{rel}": 403,
        "./" + rel: 403,
        str(outside): 403,  # absolute
        "/etc": 403,
        "link": 403,  # a symlink to a folder outside
        "fake": 403,  # a record that is a link to one outside
        "empty": 404,  # a folder without a record
        "nothing": 404,
        "machine/0123456789abcdef": 404,  # not in the registry
    }
    for run_id, code in cases.items():
        call = jp_fetch("labkit", "run", params={"id": run_id, "offset": 0})
        assert await refused(call) == code, run_id
        call = jp_fetch(
            "labkit",
            "run",
            "control",
            method="POST",
            body=json.dumps({"id": run_id, "action": "stop"}),
        )
        assert await refused(call) == code, run_id
    assert await refused(jp_fetch("labkit", "run", params={"id": ""})) == 403
    # percent-encoded dots, sent as they are in the URL: tornado decodes them to ".."
    base = f"{jp_base_url}labkit/run?"
    for raw in ("%2e%2e/outside", "%2E%2E%2Foutside", "..%2foutside", "%252e%252e/outside"):
        call = http_server_client.fetch(base + "id=" + raw, headers=jp_auth_header)
        assert await refused(call) in (403, 404), raw
    listing = await get(jp_fetch, "runs")
    assert listing["runs"] == []  # neither the link nor the linked record is listed
    assert outside.resolve() / "events.jsonl" not in reads
    assert not (outside / "control.json").exists()


# -- discovery ------------------------------------------------------------------------------------


async def test_the_listing_finds_nested_runs_and_registry_runs(
    jp_fetch, jp_root_dir, tmp_path, index
):
    write_run(jp_root_dir / "top", name="<img src=x onerror=alert(1)>").close()
    write_run(jp_root_dir / "a" / "b" / "c" / "deep", steps=5).close()
    write_run(jp_root_dir / "a" / "b" / "c" / "d" / "too-deep").close()
    for skipped in (".hidden/run", "node_modules/run", ".venv/run", "x/checkpoint-4/run"):
        write_run(jp_root_dir / skipped).close()
    elsewhere = tmp_path / "elsewhere" / "run"
    write_run(elsewhere, name="from a terminal", end="finished").close()
    registry.register(elsewhere)
    registry.register(jp_root_dir / "top")  # registered and under the root: listed once
    listing = await get(jp_fetch, "runs", since=0)
    assert listing["full"] is True
    rows = {r["id"]: r for r in listing["runs"]}
    machine = [i for i in rows if i.startswith("machine/")]
    assert sorted(rows) == sorted(["top", "a/b/c/deep", *machine]) and len(machine) == 1
    assert len(machine[0]) == len("machine/") + 16
    top, deep, far = rows["top"], rows["a/b/c/deep"], rows[machine[0]]
    assert (top["where"], top["path"]) == ("root", "top")
    assert top["name"] == "<img src=x onerror=alert(1)>"  # data as it is: the client escapes
    assert (far["where"], far["path"], far["name"]) == ("machine", None, "from a terminal")
    assert far["status"] == "finished"
    assert deep["status"] == "running" and deep["step"] == 5 and deep["total_steps"] == 100
    assert deep["loss"] == pytest.approx(1 / 5)
    assert deep["metrics"] == {"accuracy": 0.75}
    assert deep["spark"] == pytest.approx([1 / s for s in range(1, 6)])
    assert deep["error"] is None and deep["checkpoints"] == 0
    assert deep["model"] == "tiny" and deep["task"] == "classification"
    assert deep["started"] <= deep["updated"]
    assert all(r["version"] <= listing["version"] for r in rows.values())
    # the registry run's record is served by its id
    record = await get(jp_fetch, "run", id=machine[0], offset=0)
    assert record["header"]["name"] == "from a terminal" and record["end"]["status"] == "finished"


async def test_since_returns_only_the_runs_that_changed(jp_fetch, jp_root_dir, index):
    writers = {name: write_run(jp_root_dir / name) for name in ("a", "b", "c")}
    first = await get(jp_fetch, "runs", since=0)
    assert first["full"] and len(first["runs"]) == 3
    v = first["version"]
    idle = await get(jp_fetch, "runs", since=v)
    assert idle == {"version": v, "full": False, "runs": [], "gone": [], "loading": 0}
    add_steps(writers["b"], 1, start=4)
    changed = await get(jp_fetch, "runs", since=v)
    assert not changed["full"] and [r["id"] for r in changed["runs"]] == ["b"]
    assert changed["runs"][0]["step"] == 4 and changed["version"] > v
    assert changed["runs"][0]["version"] == changed["version"]
    # a request to stop changes the status without a new line
    (jp_root_dir / "c" / "control.json").write_text(json.dumps({"stop": True}))
    stopping = await get(jp_fetch, "runs", since=changed["version"])
    assert [(r["id"], r["status"]) for r in stopping["runs"]] == [("c", "stopping")]
    # a vanished run is named in "gone"; a new one appears
    for w in writers.values():
        w.close()
    (jp_root_dir / "a" / "events.jsonl").unlink()
    write_run(jp_root_dir / "d").close()
    after = await get(jp_fetch, "runs", since=stopping["version"])
    assert after["gone"] == ["a"] and [r["id"] for r in after["runs"]] == ["d"]
    # versions this server never gave out (from before a restart, or ahead) get everything
    for unknown in (1, after["version"] + 1, -5):
        again = await get(jp_fetch, "runs", since=unknown)
        assert again["full"] and sorted(r["id"] for r in again["runs"]) == ["b", "c", "d"]


async def test_a_listing_does_not_grow_with_the_steps(jp_fetch, jp_root_dir, index):
    short = write_run(jp_root_dir / "short", steps=10)
    long = write_run(jp_root_dir / "long", steps=5_000)
    listing = await get(jp_fetch, "runs")
    rows = {r["id"]: r for r in listing["runs"]}
    assert len(rows["long"]["spark"]) <= 64 and rows["long"]["step"] == 5_000
    sizes = {k: len(json.dumps(r)) for k, r in rows.items()}
    assert sizes["long"] < sizes["short"] + 64 * 24  # only the spark's points differ
    add_steps(long, 1, start=5_001)
    add_steps(short, 1, start=11)
    one = await get(jp_fetch, "runs", since=listing["version"])
    delta = {r["id"]: len(json.dumps(r)) for r in one["runs"]}
    assert delta["long"] < sizes["short"] + 64 * 24
    short.close()
    long.close()


async def test_records_not_read_yet_come_in_later_listings(jp_fetch, jp_root_dir, index):
    for name in ("a", "b", "c"):
        write_run(jp_root_dir / name).close()
    index.budget_s = 0.0  # one record read per listing
    first = await get(jp_fetch, "runs", since=0)
    assert first["full"] and len(first["runs"]) == 1 and first["loading"] == 2
    seen, version = {r["id"] for r in first["runs"]}, first["version"]
    for left in (1, 0):
        more = await get(jp_fetch, "runs", since=version)
        assert not more["full"] and len(more["runs"]) == 1 and more["loading"] == left
        seen |= {r["id"] for r in more["runs"]}
        version = more["version"]
    assert seen == {"a", "b", "c"}


# -- the record from an offset ---------------------------------------------------------------------


async def test_run_offset_returns_only_new_lines_and_says_when_to_reset(
    jp_fetch, jp_root_dir, index
):
    writer = write_run(jp_root_dir / "r", steps=3)
    first = await get(jp_fetch, "run", id="r", offset=0)
    assert first["reset"] is True and first["header"]["name"] == "r"
    assert first["steps"]["step"] == [1, 2, 3]
    assert first["steps"]["loss"] == pytest.approx([1, 1 / 2, 1 / 3])
    assert set(first["steps"]) == {"step", "epoch", "loss", "lr", "time"}
    assert first["evals"] == [[3, {"accuracy": 0.75}]]
    assert first["more"] is False and first["end"] is None
    assert first["summary"]["id"] == "r" and first["summary"]["step"] == 3
    size = (jp_root_dir / "r" / "events.jsonl").stat().st_size
    assert first["offset"] == size
    # nothing new: nothing sent, no reset
    idle = await get(jp_fetch, "run", id="r", offset=first["offset"])
    assert idle["reset"] is False and idle["header"] is None and idle["steps"]["step"] == []
    # two new steps, a checkpoint and the end: only those
    add_steps(writer, 2, start=4)
    writer.event(Saved(step=5, path=str(jp_root_dir / "r" / "checkpoint-5"), time=time.time()))
    writer.event(TrainEnd(status="finished", step=5, time=time.time()))
    new = await get(jp_fetch, "run", id="r", offset=first["offset"])
    assert new["reset"] is False and new["header"] is None
    assert new["steps"]["step"] == [4, 5] and new["evals"] == []
    assert new["saves"] == [[5, str(jp_root_dir / "r" / "checkpoint-5")]]
    assert new["end"]["status"] == "finished" and new["summary"]["status"] == "finished"
    # an offset past the end, or inside a line: start again from 0
    for bad in (new["offset"] + 1000, 7):
        again = await get(jp_fetch, "run", id="r", offset=bad)
        assert again["reset"] is True and again["header"]["name"] == "r"
        assert again["steps"]["step"] == [1, 2, 3, 4, 5]
    # a run resumed in the same folder: a new header -> reset, only the new run's lines
    writer.close()
    resumed = write_run(jp_root_dir / "r", steps=2, start=6, name="resumed")
    latest = await get(jp_fetch, "run", id="r", offset=new["offset"])
    assert latest["reset"] is True and latest["header"]["name"] == "resumed"
    assert latest["steps"]["step"] == [6, 7] and latest["end"] is None
    assert latest["summary"]["name"] == "resumed" and latest["summary"]["status"] == "running"
    resumed.close()


async def test_a_long_record_comes_in_bounded_pieces(jp_fetch, jp_root_dir, index):
    index.read_limit = 4096
    write_run(jp_root_dir / "r", steps=400).close()
    offset, steps, calls = 0, [], 0
    while True:
        got = await get(jp_fetch, "run", id="r", offset=offset)
        calls += 1
        assert (got["reset"] is True) == (offset == 0)
        steps += got["steps"]["step"]
        offset = got["offset"]
        if not got["more"]:
            break
    assert steps == list(range(1, 401)) and calls > 5


async def test_corrupt_lines_are_skipped(jp_fetch, jp_root_dir, index):
    writer = write_run(jp_root_dir / "r", steps=2)
    with open(jp_root_dir / "r" / "events.jsonl", "a") as f:
        f.write('{"kind": "StepEnd", "step": \n')
        f.write("not json at all\n")
        f.write('{"kind": "StepEnd", "step": 9, "loss": NaN, "epoch": 1, "lr": 1}\n')
        f.write('{"kind": "FromTheFuture", "step": 3}\n')
        f.write('{"kind": "StepEnd", "step": "x", "epoch": 1, "loss": 1, "lr": 1}\n')
    add_steps(writer, 1, start=3)
    got = await get(jp_fetch, "run", id="r", offset=0)
    assert got["steps"]["step"] == [1, 2, 9, 3]
    assert got["steps"]["loss"][2] is None  # NaN read back as JSON null
    listing = await get(jp_fetch, "runs")
    assert listing["runs"][0]["step"] == 3 and listing["runs"][0]["spark"][2] is None
    writer.close()


# -- control --------------------------------------------------------------------------------------


async def test_control_writes_the_control_file_of_a_live_run(jp_fetch, jp_root_dir, index):
    writer = write_run(jp_root_dir / "live")
    answer = await post(jp_fetch, {"id": "live", "action": "pause"})
    assert answer["status"] == "pausing" and "pause" in answer["notice"]
    wish = json.loads((jp_root_dir / "live" / "control.json").read_text())
    assert wish["pause"] is True and wish["stop"] is False
    assert wish["run_id"] == writer.header["run_id"]
    answer = await post(jp_fetch, {"id": "live", "action": "save"})
    answer = await post(jp_fetch, {"id": "live", "action": "stop"})
    assert answer["status"] == "stopping"
    wish = json.loads((jp_root_dir / "live" / "control.json").read_text())
    assert (wish["stop"], wish["pause"], wish["save"]) == (True, False, 1)
    listing = await get(jp_fetch, "runs")
    assert listing["runs"][0]["status"] == "stopping"
    writer.close()


async def test_control_of_a_run_that_is_not_running_is_409_and_writes_nothing(
    jp_fetch, jp_root_dir, index
):
    write_run(jp_root_dir / "dead", live=False).close()
    write_run(jp_root_dir / "done", end="finished").close()
    for run_id, why in (("dead", "killed or crashed"), ("done", "finished")):
        call = jp_fetch(
            "labkit",
            "run",
            "control",
            method="POST",
            body=json.dumps({"id": run_id, "action": "stop"}),
        )
        with pytest.raises(HTTPClientError) as info:
            await call
        assert info.value.code == 409
        assert why in json.loads(info.value.response.body)["message"]
        assert not (jp_root_dir / run_id / "control.json").exists()
    listing = await get(jp_fetch, "runs")
    rows = {r["id"]: r for r in listing["runs"]}
    assert rows["dead"]["status"] == "failed" and "killed" in rows["dead"]["error"]


async def test_control_refuses_bad_bodies(jp_fetch, jp_root_dir, index):
    write_run(jp_root_dir / "live").close()
    for body in (
        "not json",
        "[1]",
        json.dumps({"id": "live", "action": "explode %s"}),
        json.dumps({"action": "stop"}),
        json.dumps({"id": 3, "action": "stop"}),
    ):
        call = jp_fetch("labkit", "run", "control", method="POST", body=body)
        assert await refused(call) == 400
    assert not (jp_root_dir / "live" / "control.json").exists()
    assert await refused(jp_fetch("labkit", "runs", params={"since": "abc"})) == 400


# -- a real run ------------------------------------------------------------------------------------


@pytest.mark.slow
async def test_a_real_run_appears_and_a_post_stops_it(
    jp_fetch, jp_root_dir, index, tiny_model, toy_data
):
    import labkit

    run = labkit.finetune(
        tiny_model,
        toy_data,
        max_steps=200,
        batch_size=8,
        progress=False,
        eval_every=10_000,
        output_dir=jp_root_dir / "runs" / "live",
    )
    row: dict[str, Any] = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rows = {r["id"]: r for r in (await get(jp_fetch, "runs"))["runs"]}
        row = rows.get("runs/live", {})
        if row.get("step", 0) >= 2:
            break
        await asyncio.sleep(0.1)
    assert row["status"] == "running" and row["total_steps"] == 200, row
    answer = await post(jp_fetch, {"id": "runs/live", "action": "stop"})
    assert answer["status"] == "stopping"
    await asyncio.get_running_loop().run_in_executor(None, run.wait, 60)
    assert run.status == "stopped" and run.step < 200
    assert run.checkpoints and run.checkpoints[-1].endswith(f"checkpoint-{run.step}")
    row = (await get(jp_fetch, "runs"))["runs"][0]
    assert (row["status"], row["step"], row["checkpoints"]) == ("stopped", run.step, 1)
    call = jp_fetch(
        "labkit",
        "run",
        "control",
        method="POST",
        body=json.dumps({"id": "runs/live", "action": "stop"}),
    )
    assert await refused(call) == 409


# -- the sparkline ---------------------------------------------------------------------------------


def test_the_spark_keeps_the_whole_run_in_64_means():
    spark = Spark()
    for i in range(10_000):
        spark.add(float(i))
    values = spark.values()
    assert 32 < len(values) <= 64
    width = spark.width
    assert values[0] == pytest.approx((width - 1) / 2)  # the mean of the first bucket
    assert values[-1] <= 9_999 and values[-1] > 9_999 - width
    assert values == sorted(values)
    gaps = Spark(4)
    for v in (1.0, None, None, None, 3.0):
        gaps.add(v)
    assert gaps.values() == [1.0, None, 3.0]
    huge = Spark(2)
    for _ in range(3):
        huge.add(1e308)  # the sum of a bucket overflows: read as missing, never inf
    json.dumps(huge.values(), allow_nan=False)


# -- immediate discovery and the folder POST ------------------------------------------------------


async def test_a_run_registered_after_a_listing_is_in_the_next_one(jp_fetch, tmp_path, index):
    index.rescan_s = 3600.0  # no walk, no timed re-read: only the registry's stat finds it
    first = await get(jp_fetch, "runs", since=0)
    elsewhere = tmp_path / "elsewhere" / "new"
    write_run(elsewhere, name="just started").close()
    registry.register(elsewhere)
    nxt = await get(jp_fetch, "runs", since=first["version"])
    assert not nxt["full"] and [r["name"] for r in nxt["runs"]] == ["just started"]
    assert nxt["runs"][0]["where"] == "machine"


async def test_the_folder_post_refuses_what_is_not_the_panels_run(
    jp_fetch, jp_root_dir, tmp_path, index
):
    writer = write_run(jp_root_dir / "live")
    outside = tmp_path / "out"
    write_run(outside).close()
    (jp_root_dir / "link").symlink_to(outside, target_is_directory=True)
    good = writer.header["run_id"]
    cases = [
        ({"folder": "live", "run_id": good}, 400),  # relative
        ({"folder": str(outside), "run_id": good}, 404),  # outside, not registered
        ({"folder": str(jp_root_dir / "link"), "run_id": good}, 404),  # a link out
        ({"folder": str(jp_root_dir / "live"), "run_id": "another"}, 404),  # another run
    ]
    for body, code in cases:
        call = jp_fetch(
            "labkit", "run", "control", method="POST", body=json.dumps({**body, "action": "stop"})
        )
        assert await refused(call) == code, body
    assert not (jp_root_dir / "live" / "control.json").exists()
    assert not (outside / "control.json").exists()
    answer = await post(
        jp_fetch, {"folder": str(jp_root_dir / "live"), "run_id": good, "action": "stop"}
    )
    assert answer["id"] == "live" and answer["status"] == "stopping"
    assert json.loads((jp_root_dir / "live" / "control.json").read_text())["stop"] is True
    writer.close()
