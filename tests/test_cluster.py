"""A site spread over `cctv serve --node` processes sharing one real PostgreSQL server and one data dir.

Three nodes run the four sample cameras, each camera on exactly one node; one node is SIGKILLed and
its cameras run again on the others within the bound, with nothing lost or twice; it comes back and
the cameras rebalance; every node's events reach one console's stream; a camera's live frames come
from any node. Leases are checked at the store level too, with racing claims."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import yaml
from conftest import FOOTAGE, ROOT, PgCluster, cctv
from harness import Service
from test_faults import _assert_none_lost, _events

from pipeline.bench.live.process import free_port
from pipeline.live.cluster import shares
from pipeline.store import EventStore, NodeInfo, NodeNameTaken

FAILOVER_S = 15.0  # the bound: a dead node's cameras run elsewhere within this
SAMPLES = {"pets": "pets09-s2l1.avi", "oxford": "oxford-town-centre.mp4", "carriageway": "dual-carriageway-cars.mp4",
           "left_bag": "aboda-video4-left-bag.avi"}


def _site(root: Path, database: str) -> Path:
    """The sample site (configs/site.yaml) at 2 fps, its clips from the asset dir, one data dir for all nodes."""
    site = yaml.safe_load((ROOT / "configs" / "site.yaml").read_text())
    site["model"]["path"] = str(ROOT / "models" / "yolo11n_int8_openvino_model")
    for name, cam in site["cameras"].items():
        cam["source"] = str(FOOTAGE / SAMPLES[name])
    site["defaults"]["detect"] = {"fps": 2}  # three nodes' worth of cameras on two cores
    site["service"].update(data=str(root / "data"), database=database, evidence={"pre_roll": 2, "post_roll": 2})
    path = root / "site.yaml"
    path.write_text(yaml.safe_dump(site))
    return path


def _nodes(root: Path, config: Path, names: list[str]) -> dict[str, Service]:
    tokens = {}
    for role in ("viewer", "admin"):
        made = cctv("token", "create", "--role", role, "--name", f"{role}-1", "--config", config)
        assert made.returncode == 0, made.stderr
        tokens[role] = made.stdout.strip()
    nodes = {}
    for name in names:
        (root / name).mkdir()
        node = Service(root / name / "site.yaml", root / "data", free_port(), dict(tokens), args=["--node", name])
        node.config.write_text(config.read_text())
        nodes[name] = node
    return nodes


def _owners(node: Service) -> dict[str, str | None]:
    cluster = node.get("/api/cluster", role="admin")
    assert cluster.status_code == 200, cluster.text
    return {lease["camera"]: lease["node"] for lease in cluster.json()["cameras"]}


def _balanced(node: Service, live: set[str]) -> dict[str, str | None] | None:
    """The owners once every camera runs on one of `live`, as evenly as can be (2, 1, 1 over three nodes)."""
    owners = _owners(node)
    counts = Counter(owners.values())
    even = sorted(counts.values()) == sorted(shares(len(owners), [NodeInfo(n, "", 99, 0, 0) for n in live]).values())
    return owners if set(counts) == live and even else None


def _live_cameras(node: Service, names: set[str] | None = None) -> list[dict[str, object]] | None:
    """The cameras `node` lists once every one (of `names`) is live."""
    cameras = node.get("/api/cameras").json()
    return cameras if all(c["status"] == "live" for c in cameras if names is None or c["id"] in names) else None


def _runs_never_overlap(events: list[dict[str, object]]) -> None:
    """Per camera, the events of one connection (run tag) end before the next run's begin: never two nodes at once."""
    spans: dict[str, dict[str, list[float]]] = defaultdict(dict)
    for e in events:
        _camera, run, _n = str(e["id"]).rsplit("-", 2)
        span = spans[str(e["camera"])].setdefault(run, [float(e["start"]), float(e["start"])])  # type: ignore[arg-type]
        span[0] = min(span[0], float(e["start"]))  # type: ignore[arg-type]
        span[1] = max(span[1], float(e["end"] if e["end"] is not None else e["start"]))  # type: ignore[arg-type]
    for camera, runs in spans.items():
        ordered = sorted(runs.values())
        for (_, end), (start, _) in zip(ordered, ordered[1:]):
            assert end <= start + 0.5, (camera, ordered)


def test_three_nodes_run_each_camera_once_and_take_over_a_killed_node(tmp_path: Path, postgres_server: PgCluster) -> None:
    config = _site(tmp_path, postgres_server.create_database("three"))
    nodes = _nodes(tmp_path, config, ["n1", "n2", "n3"])
    try:
        for node in nodes.values():
            node.start()
        n1, n2, n3 = nodes.values()
        n2.listen()  # one console's event stream, on a node that stays up
        owners = n2.wait_for("the four cameras over three nodes", lambda: _balanced(n2, {"n1", "n2", "n3"}), 60)
        assert isinstance(owners, dict)
        for node in nodes.values():  # every node shows every camera and where it runs
            cameras = node.wait_for("every camera live", lambda node=node: _live_cameras(node), 60)
            assert {c["id"]: c["node"] for c in cameras} == owners  # type: ignore[union-attr]
        remote = next(camera for camera, owner in owners.items() if owner != "n2")
        frame = n2.get(f"/api/cameras/{remote}/view.jpg", params={"width": 320})
        assert frame.status_code == 200 and frame.content[:2] == b"\xff\xd8" and "x-frame-index" in frame.headers
        assert n2.get(f"/api/cameras/{remote}/view.jpg", role=None).status_code == 401

        def streamed_from(node_names: set[str]) -> bool:
            cameras = {str(e["camera"]) for _kind, e in n2.stream}
            return {owners[c] for c in cameras} >= node_names

        n2.wait_for("events of every node in n2's stream", lambda: streamed_from({"n1", "n2", "n3"}), 120)
        victim = max(nodes, key=lambda n: (Counter(owners.values())[n], n == "n1"))  # a node with two cameras
        assert victim != "n2"
        its_cameras = {c for c, owner in owners.items() if owner == victim}
        open_before = {e["id"] for e in _events(n2) if e["camera"] in its_cameras and e["end"] is None}
        nodes[victim].stop(signal.SIGKILL)
        killed = time.time()
        survivors = set(nodes) - {victim}
        n2.wait_for("the killed node's cameras on the others", lambda: _balanced(n2, survivors), FAILOVER_S + 10)
        n2.wait_for("them live again", lambda: _live_cameras(n2, its_cameras), FAILOVER_S + 10)
        failover = time.time() - killed
        assert failover <= FAILOVER_S, failover
        events = _events(n2)
        before = [e for e in events if e["camera"] in its_cameras and float(e["start"]) < killed]  # type: ignore[arg-type]
        assert before and all(e["end"] is not None for e in before), before  # ended by the node that took over
        interrupted = {e["id"] for e in events if e["interrupted"]}  # open at the kill: ended, and said so
        assert open_before and interrupted and interrupted <= {e["id"] for e in before}, (open_before, interrupted)
        assert len({e["id"] for e in events}) == len(events)
        _assert_none_lost(events)

        nodes[victim].start()  # back: the cameras rebalance over three nodes, then stay put
        n2.wait_for("a rebalance over three nodes", lambda: _balanced(n2, set(nodes)), 60)
        settled = _owners(n2)
        time.sleep(6)  # three rounds
        assert _owners(n2) == settled, "cameras moved again after the rebalance (flapping)"
        assert set(settled.values()) == set(nodes)
        n2.wait_for("every camera live", lambda: _live_cameras(n2), 60)
        metrics = n2.get("/metrics").text
        assert "cctv_cluster_nodes 3.0" in metrics and "cctv_cluster_cameras_unassigned 0.0" in metrics
    finally:
        stopped = [(name, node.stop()) for name, node in nodes.items() if node.proc and node.proc.poll() is None]
        for node in nodes.values():
            node.closed.set()
    for name, (code, output) in stopped:
        assert code == 0 and "Traceback" not in output, (name, output[-2000:])
    with EventStore.open(str(yaml.safe_load(config.read_text())["service"]["database"]), tmp_path / "data") as store:
        events, _ = store.query(limit=1000)
        assert events and all(s.event.end is not None for s in events)  # every node ended its own
        assert not store.leases.leases() and not store.leases.nodes()  # each gave its leases back and left
    _runs_never_overlap([{"id": s.event.id, "camera": s.event.camera, "start": s.event.start, "end": s.event.end}
                         for s in events])


def test_leases_go_to_exactly_one_node(tmp_path: Path, postgres_server: PgCluster) -> None:
    """Racing claims on real PostgreSQL: each camera is won once; a lapsed lease is taken over, and its old holder's
    renewal then says it is lost; a node name in use is refused."""
    url = postgres_server.create_database("leases")
    stores = [EventStore.open(url, tmp_path / "data") for _ in range(4)]
    try:
        cameras = [f"cam{i}" for i in range(30)]
        won: dict[str, list[str]] = defaultdict(list)
        start = threading.Barrier(len(stores))

        def race(store: EventStore, node: str) -> None:
            start.wait()
            for k in range(0, len(cameras), 3):  # three at a time, as a node claims what it is short of
                for camera in store.leases.claim(node, cameras[k:k + 3], 30):
                    won[camera].append(node)

        threads = [threading.Thread(target=race, args=(s, f"node{i}")) for i, s in enumerate(stores)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert set(won) == set(cameras) and all(len(w) == 1 for w in won.values()), won
        holder, other = won["cam0"][0], next(f"node{i}" for i in range(4) if f"node{i}" != won["cam0"][0])
        a, b = stores[int(holder[-1])], stores[int(other[-1])]
        assert b.leases.claim(other, ["cam0"], 30) == []
        assert b.leases.renew(other, {"cam0": {}}, 30) == set()
        b.db.clock = lambda: time.time() + 31  # the holder's lease has lapsed by b's reckoning
        assert b.leases.claim(other, ["cam0", "cam-new"], 30) == ["cam0", "cam-new"]
        assert a.leases.renew(holder, {"cam0": {"status": "live"}}, 30) == set()  # lost: it must stop the camera
        owner = {lease.camera: lease.node for lease in a.leases.leases()}
        assert owner["cam0"] == other

        b.db.clock = time.time
        a.leases.join("node-x", "http://127.0.0.1:1", 4, fresh_seconds=8)
        with pytest.raises(NodeNameTaken, match="node 'node-x' is running already"):
            b.leases.join("node-x", "http://127.0.0.1:2", 4, fresh_seconds=8)
    finally:
        for store in stores:
            store.close()


def test_shares_are_even_within_capacity() -> None:
    def node(name: str, capacity: int) -> NodeInfo:
        return NodeInfo(name, "", capacity, 0, 0)

    assert shares(4, [node("a", 9), node("b", 9), node("c", 9)]) == {"a": 2, "b": 1, "c": 1}
    assert shares(10, [node("a", 2), node("b", 9), node("api", 0)]) == {"a": 2, "b": 8, "api": 0}
    assert shares(5, [node("a", 1), node("b", 1)]) == {"a": 1, "b": 1}  # three cameras wait for room
    assert shares(3, []) == {}


def test_cluster_options_are_checked_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "site.yaml"
    config.write_text((ROOT / "configs" / "pets09.yaml").read_text())
    for args, message in (
        (["--node", "n1"], "a cluster node needs a PostgreSQL database"),
        (["--max-cameras", "2"], "--max-cameras is for a cluster node: give --node NAME too"),
        (["--node", "bad name", "--db", "postgresql+psycopg://x@127.0.0.1:9/x"], "node name 'bad name' must be"),
        (["--node", "n1", "--advertise", "ftp://x", "--db", "postgresql+psycopg://x@127.0.0.1:9/x"], "--advertise"),
    ):
        done = cctv("serve", "--config", config, "--data", tmp_path / "data", *args)
        assert done.returncode == 2 and done.stderr.count("\n") == 1 and message in done.stderr, (args, done.stderr)
