"""Private, throwaway PostgreSQL and Redis servers for the test suite.

Started from the installed server binaries; as root, PostgreSQL runs as the
`postgres` user (initdb and pg_ctl refuse root). Fault tests start their own
Redis with `RedisServer` so they can kill, pause and restart it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bindir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    if candidates:
        return Path(candidates[-1])
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise RuntimeError("PostgreSQL server binaries not found (install postgresql)")


class PostgresServer:
    """A private PostgreSQL cluster; fast (no fsync) unless `durable`."""

    # What a test server trades for speed: a crash may lose or corrupt its data.
    FAST = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"

    def __init__(self, durable: bool = False) -> None:
        self.durable = durable
        self.bindir = pg_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="ei-pg-"))
        self.datadir = self.root / "data"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        self.user = "postgres"

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> str:
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
        os.chmod(self.root, 0o755)  # noqa: S103  (postgres must reach it)
        self._run(
            "initdb",
            "-D",
            str(self.datadir),
            "-A",
            "trust",
            "-U",
            self.user,
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C",
        )
        self.start_again()
        return self.url("postgres")

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def stop(self, mode: str = "fast") -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "stop")

    def start_again(self) -> None:
        """Start the server on its data directory (first start, or after `stop`)."""
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200"
        if not self.durable:
            opts += f" {self.FAST}"
        log = str(self.root / "server.log")
        self._run(
            "pg_ctl", "-D", str(self.datadir), "-o", opts, "-l", log, "-w", "-t", "60", "start"
        )

    def cleanup(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


class PortTaken(RuntimeError):
    """A RedisServer's start did not give a server of its own on its port: another process
    holds the port, or the one started never answered."""


class RedisServer:
    """A redis-server child process the test owns: it may kill or pause it."""

    def __init__(self, port: int | None = None, args: tuple[str, ...] = ()) -> None:
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="ei-redis-"))
        self.proc: subprocess.Popen | None = None
        self.args = args

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
                "--protected-mode",
                "no",
                "--logfile",
                str(self.log),
                *self.args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                answering = int(client.info("server")["process_id"])
                break
            # Refused, or a listener that is not ours and does not answer (paused, a
            # password): either way none we can use.
            except redis.RedisError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise self._not_started(None) from None
                time.sleep(0.05)
        if answering != self.proc.pid:
            raise self._not_started(answering)
        return self

    def _not_started(self, answering: int | None) -> PortTaken:
        why = self._why_not_ours(answering)
        self.kill()  # no server left behind by a start that failed
        return PortTaken(why)

    @property
    def log(self) -> Path:
        return self.dir / "redis.log"

    def _why_not_ours(self, answering: int | None) -> str:
        """Who holds the port instead of the server just started (a restart on a freed port
        can lose it to another process), with the started server's last log lines."""
        assert self.proc is not None
        tail = self.log.read_text(errors="replace").splitlines()[-3:] if self.log.exists() else []
        who = "nothing answers"
        if answering is not None:
            try:
                cmdline = Path(f"/proc/{answering}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                cmdline = b"?"
            who = f"pid {answering} answers ({cmdline.decode(errors='replace').strip()})"
        return (
            f"redis-server on port {self.port} (pid {self.proc.pid}, exit {self.proc.poll()}) "
            f"is not the one answering: {who}; its log: {' | '.join(tail)}"
        )

    def restart(self) -> RedisServer:
        """Start again on the same address (empty: no persistence), still owned by this object,
        so the fixture that made it stops it."""
        self.kill()
        return self.start()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.resume()
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def free_cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too (so port <= 55535)."""
    for _ in range(200):
        port = free_port()
        if port > 55535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


class RedisClusterServers:
    """Three cluster-enabled redis-server masters on loopback, slots split in three."""

    def __init__(self, size: int = 3) -> None:
        self.nodes = [
            RedisServer(
                free_cluster_port(),
                ("--cluster-enabled", "yes", "--cluster-node-timeout", "1000"),
            )
            for _ in range(size)
        ]

    @property
    def url(self) -> str:
        return ",".join(f"redis://127.0.0.1:{n.port}/0" for n in self.nodes)

    def start(self, timeout: float = 20) -> RedisClusterServers:
        for node in self.nodes:
            node.start()
        clients = [redis.Redis(port=n.port, socket_timeout=2) for n in self.nodes]
        step = 16384 // len(clients)
        for i, client in enumerate(clients):
            last = 16383 if i == len(clients) - 1 else (i + 1) * step - 1
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", i * step, last)
        for node in self.nodes[1:]:
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
        deadline = time.monotonic() + timeout
        while True:
            infos = [c.execute_command("CLUSTER", "INFO") for c in clients]
            if all(b"cluster_state:ok" in i and b"cluster_known_nodes:3" in i for i in infos):
                return self
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster did not form: {infos}")
            time.sleep(0.05)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def quick_client(port: int, timeout: float = 0.5) -> redis.Redis:
    """A client that gives up after one timeout (redis-py's default retries for seconds)."""
    return redis.Redis(
        port=port,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


class SentinelSet:
    """A master, a replica and three sentinels (quorum 2), all on loopback.

    Short timings so that a drill's failover completes within seconds.
    """

    def __init__(self, service: str = "mymaster", down_after_ms: int = 1000) -> None:
        self.service = service
        self.down_after_ms = down_after_ms
        self.master = RedisServer()
        self.replica = RedisServer(args=("--replicaof", "127.0.0.1", str(self.master.port)))
        self.sentinels: list[RedisServer] = []

    @property
    def sentinel_hosts(self) -> str:
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    def _sentinel(self) -> RedisServer:
        server = RedisServer()
        conf = server.dir / "sentinel.conf"
        conf.write_text(
            f"port {server.port}\nbind 127.0.0.1\nprotected-mode no\ndir {server.dir}\n"
            f"sentinel monitor {self.service} 127.0.0.1 {self.master.port} 2\n"
            f"sentinel down-after-milliseconds {self.service} {self.down_after_ms}\n"
            f"sentinel failover-timeout {self.service} 4000\n"
            f"sentinel parallel-syncs {self.service} 1\n"
            f"logfile {server.dir / 'sentinel.log'}\n"
        )
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        server.proc = subprocess.Popen(
            [binary, str(conf), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return server

    def start(self, timeout: float = 20) -> SentinelSet:
        self.master.start()
        self.replica.start()
        self.sentinels = [self._sentinel() for _ in range(3)]
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.replica_synced() and all(self._sees_peers(s) for s in self.sentinels):
                    return self
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("sentinels did not settle")
            time.sleep(0.1)

    def _sees_peers(self, sentinel: RedisServer) -> bool:
        state = quick_client(sentinel.port).sentinel_master(self.service)
        return state["num-other-sentinels"] >= 2 and state["num-slaves"] >= 1

    def replica_synced(self) -> bool:
        info = quick_client(self.replica.port).info("replication")
        return info.get("master_link_status") == "up"

    def master_port(self) -> int:
        """The port the sentinels now name as master (first one that answers)."""
        for s in self.sentinels:
            try:
                client = quick_client(s.port)
                return int(client.sentinel_get_master_addr_by_name(self.service)[1])
            except (redis.RedisError, TypeError):
                continue
        raise RuntimeError("no sentinel answers")

    def events(self, last: int = 25) -> str:
        """The sentinels' latest log lines (+sdown, +switch-master, …): why a drill's topology
        is not the one it waited for."""
        lines = []
        for s in self.sentinels:
            log = s.dir / "sentinel.log"
            tail = log.read_text(errors="replace").splitlines()[-last:] if log.exists() else []
            lines.append(f"sentinel {s.port}:\n" + "\n".join(tail))
        return "\n".join(lines)

    def stop(self) -> None:
        for server in (*self.sentinels, self.replica, self.master):
            server.stop()
