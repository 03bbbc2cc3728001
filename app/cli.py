"""`cvprep` command line: serve, worker, check-content, db upgrade, sweep-guests, train, data
fetch, weights fetch."""

from __future__ import annotations

import argparse
import sys

from app.cli_train import add_commands as add_training_commands
from app.content import ContentError, load_questions
from app.settings import get_settings


def check_content(_: argparse.Namespace) -> int:
    settings = get_settings()
    try:
        bank = load_questions(settings.questions_dir)
    except ContentError as error:
        sys.stderr.write(f"{error}\n")
        return 1
    items = sum(len(q.meta.quiz) for q in bank)
    sys.stdout.write(f"{len(bank)} questions and {items} quiz items are valid.\n")
    return 0


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = get_settings()
    try:
        # Fail here, with every problem listed, rather than half-way through a server start.
        load_questions(settings.questions_dir)
    except ContentError as error:
        sys.stderr.write(f"{error}\n")
        return 1
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Migrate once here, before the worker starts (create_app would otherwise do it itself).
    from app.migrate import upgrade

    upgrade(settings.sqlalchemy_url)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        reload=args.reload,
        reload_includes=["*.py", "*.html", "*.md", "*.css", "*.js"] if args.reload else None,
        proxy_headers=True,
        log_level=args.log_level,
    )
    return 0


def gpu_ids(text: str) -> str:
    """`--gpu`: a GPU index or comma-separated indices ("0", "2,3"), as CUDA_VISIBLE_DEVICES
    takes them."""
    parts = text.split(",")
    if not all(part.isascii() and part.isdigit() for part in parts):
        raise argparse.ArgumentTypeError(f"expected a GPU index such as 0 or 2,3, got {text!r}")
    return ",".join(str(int(part)) for part in parts)


def worker(args: argparse.Namespace) -> int:
    # CUDA_VISIBLE_DEVICES is set inside run_worker before anything imports torch.
    from app.runs.celery_worker import run_worker

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return run_worker(settings, concurrency=args.concurrency, gpu=args.gpu)


def db_upgrade(_: argparse.Namespace) -> int:
    from app.migrate import upgrade

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.sqlalchemy_url)
    sys.stdout.write("Database is at the latest revision.\n")
    return 0


def sweep_guests(args: argparse.Namespace) -> int:
    from app.db import make_engine
    from app.guest_sweep import sweep_guests as sweep
    from app.migrate import upgrade

    settings = get_settings()
    if args.retention_hours is not None:
        settings = settings.model_copy(update={"guest_retention_hours": args.retention_hours})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.sqlalchemy_url)
    engine = make_engine(
        settings.sqlalchemy_url, busy_timeout_ms=int(settings.database_busy_timeout * 1000)
    )
    try:
        swept = sweep(engine, settings)
    finally:
        engine.dispose()
    sys.stdout.write(
        f"Deleted {swept.guests} guest{'s' if swept.guests != 1 else ''} left behind "
        f"({swept.datasets} data sets, {swept.runs} runs).\n"
    )
    return 0


def retention_hours(text: str) -> float:
    """`--retention-hours`: a number of hours, 0 or more."""
    try:
        hours = float(text)
    except ValueError:
        hours = -1.0
    if not 0 <= hours <= 100_000:
        raise argparse.ArgumentTypeError(f"expected hours from 0 to 100000, got {text!r}")
    return hours


def db_revision(args: argparse.Namespace) -> int:
    from app.migrate import revision

    revision(get_settings().sqlalchemy_url, args.message)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cvprep", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve_parser = commands.add_parser("serve", help="serve the web app")
    serve_parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    serve_parser.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    serve_parser.add_argument("--reload", action="store_true", help="restart on code changes")
    serve_parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    serve_parser.set_defaults(handler=serve)

    worker_parser = commands.add_parser(
        "worker",
        help="train runs sent through Redis (JOBS_BACKEND=celery); one per GPU",
        description="A Celery worker for CELERY_QUEUE on REDIS_URL, writing to DATABASE_URL. "
        "Each run trains in a fresh child process; CUDA is initialised only there.",
    )
    worker_parser.add_argument(
        "--gpu",
        metavar="N",
        type=gpu_ids,
        help="train on GPU N only (sets CUDA_VISIBLE_DEVICES); start one worker per GPU",
    )
    worker_parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        choices=range(1, 65),
        metavar="{1..64}",
        help="runs trained at once by this worker (default: %(default)s; keep 1 with --gpu)",
    )
    worker_parser.set_defaults(handler=worker)

    check_parser = commands.add_parser("check-content", help="validate every question file")
    check_parser.set_defaults(handler=check_content)
    db_parser = commands.add_parser("db", help="database migrations (Alembic)")
    db_commands = db_parser.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="migrate to the latest revision").set_defaults(
        handler=db_upgrade
    )
    revision_parser = db_commands.add_parser(
        "revision", help="autogenerate a migration from app.models"
    )
    revision_parser.add_argument(
        "-m", "--message", required=True, help="what the migration changes"
    )
    revision_parser.set_defaults(handler=db_revision)
    sweep_parser = commands.add_parser(
        "sweep-guests",
        help="delete guests left behind, with their data sets and runs",
        description="Delete every guest with no session live for GUEST_RETENTION_HOURS and no "
        "run queued or running, with its data sets, runs and experiments (files too). The "
        "server also does it when it starts and every hour.",
    )
    sweep_parser.add_argument(
        "--retention-hours",
        type=retention_hours,
        metavar="H",
        help="hours without a live session before a guest goes (default: GUEST_RETENTION_HOURS)",
    )
    sweep_parser.set_defaults(handler=sweep_guests)
    add_training_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
