"""Serve the inquiry desk with a production WSGI server.

    python run.py [--host 127.0.0.1] [--port 5000] [--db PATH] [--workers N]

Creates and seeds the database on first start. Uses gunicorn (several worker
processes) where the platform has it, and waitress (threads, portable) elsewhere.
"""
from __future__ import annotations

import argparse
import os
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command-line flags."""
    parser = argparse.ArgumentParser(description="政务公开智能问答服务")
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    parser.add_argument("--db", help="SQLite database file (default: instance/inquiry.db; or $INQUIRY_DB)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                        help="worker processes (default: the number of cores)")
    parser.add_argument("--server", choices=["auto", "gunicorn", "waitress"], default="auto",
                        help="WSGI server (default: gunicorn where available, else waitress)")
    return parser.parse_args(argv)


# A worker's private memory, in MB, past which it is replaced by a fresh fork from the master
# (INQUIRY_WORKER_MEMORY_MB; only where the master follows the knowledge, see serve_gunicorn;
# the guard's other conditions are in service/worker_memory.py). At 100,000 entries a fresh
# worker holds about 50 MB of its own after its first few hundred distinct questions and
# 80 MB after 6,000: at 100 MB, a worker asked nothing but new questions at full speed lives
# for minutes; at 50 MB, about 20 s, the guard's earliest (README, "Memory under use").
WORKER_MEMORY_MB = 100.0

# What gunicorn answers itself, before the app sees a request (a malformed request line,
# headers too long), in plain Chinese like every page of the service.
GUNICORN_ERRORS = {
    400: "请求格式不正确。",
    414: "请求的网址过长。",
    431: "请求头过大。",
    500: "服务暂时出现问题，请稍后再试。",
    501: "不支持该请求方式。",
}


def quiet_gunicorn() -> None:
    """Responses do not name the server software (``Server: gunicorn``), and gunicorn's own
    error pages are in Chinese, not its English HTML."""
    import html

    from gunicorn import util
    from gunicorn.http import wsgi

    plain_headers = wsgi.Response.default_headers

    def default_headers(self):  # type: ignore[no-untyped-def]
        return [line for line in plain_headers(self) if not line.startswith("Server:")]

    def write_error(sock, status_int, reason, mesg):  # type: ignore[no-untyped-def]
        message = GUNICORN_ERRORS.get(int(status_int), GUNICORN_ERRORS[400 if int(status_int) < 500 else 500])
        body = ("<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>政务公开智能问答</title>"
                f"</head><body><h1>{html.escape(message)}</h1></body></html>").encode("utf-8")
        head = (f"HTTP/1.1 {int(status_int)} {reason}\r\nConnection: close\r\n"
                f"Content-Type: text/html; charset=utf-8\r\nContent-Length: {len(body)}\r\n\r\n").encode("latin-1")
        util.write_nonblock(sock, head + body)

    wsgi.Response.default_headers = default_headers  # type: ignore[method-assign]
    util.write_error = write_error


def serve_gunicorn(app, host: str, port: int, workers: int) -> None:  # type: ignore[no-untyped-def]
    """Run under gunicorn with the app preloaded, so workers share the loaded dictionary and
    index. With a large knowledge base the master keeps the index current and forks fresh
    workers one at a time (service/refork.py) when it has a newer one, so that it stays shared."""
    import signal
    import threading

    from gunicorn.app.base import BaseApplication

    from service.db import follow_knowledge, follows_knowledge, keeper, warm_worker
    from service.refork import ReadyPipe, rolling

    quiet_gunicorn()

    following = {"on": False}
    # A fresh worker says here when it can answer, so that a re-fork lets an old worker go
    # only then (service/refork.py).
    ready = ReadyPipe()
    master = os.getpid()
    arbiters: list = []  # type: ignore[type-arg]

    def refork() -> str | None:
        arbiter = arbiters[0]
        # To the master's main thread, where gunicorn's arbiter waits: a signal sent to the
        # process may reach this thread instead, and the arbiter then sees it only when its
        # wait of up to a second ends.
        main = threading.main_thread().ident or 0
        in_time, size = rolling(lambda: signal.pthread_kill(main, signal.SIGTTIN),
                                lambda: signal.pthread_kill(main, signal.SIGTTOU),
                                ready, count=lambda: arbiter.num_workers, age=lambda: arbiter.worker_age)
        if in_time < size:
            return f"重新派生工作进程：{size} 个中 {in_time} 个在限定时间内就绪"
        return None

    def when_ready(arbiter):  # type: ignore[no-untyped-def]
        arbiters.append(arbiter)
        if follows_knowledge(app):
            following["on"] = True
            follow_knowledge(app, refork, settle=float(app.config.get("INDEX_REFORK_SETTLE", 60)))

    def post_worker_init(worker):  # type: ignore[no-untyped-def]
        # Before it accepts: what a worker does once, at its first request, is done now,
        # while the workers it replaces still answer; then it says it is ready.
        try:
            warm_worker(app)
        except Exception:
            app.logger.exception("工作进程预热失败")
        ready.tell(worker.age)

    def post_fork(_arbiter, _worker):  # type: ignore[no-untyped-def]
        ready.in_worker()
        # Where the master holds the current index, a worker that has made too much of it
        # its own (service/worker_memory.py) is replaced by a fresh fork, as gunicorn's
        # max_requests would, but only when its memory says so.
        budget = float(app.config.get("WORKER_MEMORY_MB", WORKER_MEMORY_MB))
        if following["on"] and budget > 0:
            from service.worker_memory import MemoryGuard

            state = keeper(app)
            since_fork = state.replaceable()

            # SIGTERM is a worker's graceful stop: it finishes the request in hand, and an
            # idle worker wakes from its wait for connections rather than linger there.
            MemoryGuard(budget, lambda: os.kill(os.getpid(), signal.SIGTERM), logger=app.logger,
                        interval=float(app.config.get("WORKER_MEMORY_INTERVAL", 10.0)), may_stop=since_fork).start()

    def worker_exit(_arbiter, _worker):  # type: ignore[no-untyped-def]
        # A worker leaving in the ordinary way (replaced, re-forked, stopped) skips the
        # interpreter's teardown: tearing down the index drops a reference to each of its
        # millions of objects, which writes to every shared page, so a leaving worker at
        # 100,000 entries copied 100 MB and more and held a core for a moment. What
        # atexit holds (the analytics rows still buffered, the logs) is done first. A boot
        # error or a crash exits as gunicorn has it, with its status.
        leaving = sys.exc_info()[1]
        if isinstance(leaving, SystemExit) and leaving.code in (0, None):
            import atexit

            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)

    if workers > 1:
        # One cache of replies for all the workers forked below (service/shared_replies.py),
        # in a private temporary folder that the master removes when it stops.
        import atexit

        from service.shared_replies import SharedReplies

        shared = app.extensions["shared_replies"] = SharedReplies.create()
        atexit.register(lambda: shared.remove() if os.getpid() == master else None)

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in {"bind": f"{host}:{port}", "workers": workers, "preload_app": True,
                               "accesslog": None, "timeout": 60, "graceful_timeout": 10,
                               "when_ready": when_ready, "post_fork": post_fork,
                               "post_worker_init": post_worker_init, "worker_exit": worker_exit}.items():
                self.cfg.set(key, value)
            # gunicorn's control socket (25.1 and later; on by default in the 27 that CI
            # installed): one more thread in the master, stopped and restarted around every
            # fork, and one socket path per user ($XDG_RUNTIME_DIR or ~/.gunicorn) that every
            # instance on the host shares. Nothing here uses it.
            if "control_socket_disable" in self.cfg.settings:
                self.cfg.set("control_socket_disable", True)

        def load(self):  # type: ignore[no-untyped-def]
            return app

    Server().run()


def main(argv: list[str] | None = None) -> None:
    """Parse the flags, build the app, warm it up and serve."""
    args = parse_args(argv)
    if args.db:
        os.environ["INQUIRY_DB"] = os.path.abspath(args.db)
    from service import create_app
    from service.db import get_desk, warm_before_fork

    app = create_app()
    server = args.server
    if server == "auto":
        server = "gunicorn" if sys.platform != "win32" else "waitress"
    with app.app_context():
        get_desk()  # build the index before the first citizen waits for it
        if server == "gunicorn":
            warm_before_fork(app)  # what the master's workers share from the start
    os.umask(0o077)  # what the service writes (database, WAL, backups, keys) is its own
    if not app.config.get("PROXY_COUNT"):
        print("提示：未设置 INQUIRY_PROXY_COUNT，按直接连接的地址计算频率限制。若服务在反向代理（如 nginx）之后，"
              "请设置 INQUIRY_PROXY_COUNT=代理层数，否则所有访问者共用代理的地址。", flush=True)
    print(f"政务公开智能问答已启动：http://{args.host}:{args.port}/ （数据库：{app.config['DATABASE']}，"
          f"{server}，{args.workers if server == 'gunicorn' else 1} 个进程）", flush=True)
    if server == "gunicorn":
        serve_gunicorn(app, args.host, args.port, args.workers)
    else:
        from waitress import serve

        serve(app, host=args.host, port=args.port, threads=max(4, args.workers * 2))


if __name__ == "__main__":
    main()
