"""``python -m fuzz``: run the parser fuzz targets for long, and say so.

With atheris installed (the ``fuzz`` extra), libFuzzer drives the targets,
coverage guided, in a child process whose raw output goes to a log file
while this prints a progress line every few seconds. Without atheris, the
same targets run as hypothesis properties in batches. Either way it says up
front what it will do and ends with one line: runs, crashes, corpus size.
"""

import argparse
import hashlib
import importlib.util
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from fuzz.targets import BEACONS, FRAMES, NAMES, check_beacon, check_input, check_stream

HERE = Path(__file__).resolve().parent
PROGRESS_EVERY = 5.0
"""Seconds between progress lines."""
BATCH = 500
"""Hypothesis examples per batch (one seed each) between progress checks."""
CRASH_PREFIXES = ("crash-", "leak-", "timeout-", "oom-", "slow-unit-", "hypothesis-")

_STATS = re.compile(
    rb"^#(\d+)\s+(\w+)\s+cov: (\d+) ft: (\d+) corp: (\d+)/\S+.*?exec/s: (\d+)", re.MULTILINE
)
_DONE = re.compile(rb"Done (\d+) runs in (\d+) second")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fuzz",
        description="Fuzz bluetrace's frame decoder and beacon parser: "
        "coverage guided under atheris when it is installed, otherwise as "
        "hypothesis properties. Prints what it runs, progress every few "
        "seconds, and a closing summary; exits 1 if any input fails.",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=100_000,
        metavar="N",
        help="inputs to try in all, both targets together (default: 100,000)",
    )
    parser.add_argument(
        "--seconds",
        type=int,
        default=0,
        metavar="S",
        help="stop after this many seconds even if runs remain (default: no limit)",
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        default=Path(".bluetrace/fuzz-corpus"),
        metavar="DIR",
        help="folder the corpus grows in under atheris; replayed first under hypothesis "
        "(default: .bluetrace/fuzz-corpus)",
    )
    parser.add_argument(
        "--seeds",
        type=Path,
        default=HERE / "corpus",
        metavar="DIR",
        help="folder of seed inputs, read only (default: fuzz/corpus)",
    )
    parser.add_argument(
        "--crashes",
        type=Path,
        default=Path("fuzz/crashes"),
        metavar="DIR",
        help="folder failing inputs are written to (default: fuzz/crashes)",
    )
    parser.add_argument(
        "--log",
        type=Path,
        default=Path(".bluetrace/fuzz.log"),
        metavar="PATH",
        help="libFuzzer's full output, under atheris (default: .bluetrace/fuzz.log)",
    )
    parser.add_argument(
        "--engine",
        choices=("auto", "atheris", "hypothesis"),
        default="auto",
        help="atheris if installed (auto, the default), or force one",
    )
    return parser


def say(text: str) -> None:
    print(f"fuzz: {text}", flush=True)


def files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def crash_files(folder: Path) -> set[Path]:
    return {p for p in files_in(folder) if p.name.startswith(CRASH_PREFIXES)}


# -- atheris --------------------------------------------------------------------


WORKER = [sys.executable, "-m", "fuzz.atheris_worker"]


def run_atheris(args: argparse.Namespace, worker: list[str] = WORKER) -> tuple[int, int]:
    """libFuzzer in a child process; its stats condensed to a line every few
    seconds, everything it prints kept in the log. Its exit status and runs."""
    args.log.parent.mkdir(parents=True, exist_ok=True)
    command = [
        *worker,
        f"-runs={args.runs}",
        "-rss_limit_mb=2048",
        f"-artifact_prefix={args.crashes}/",
        *([f"-max_total_time={args.seconds}"] if args.seconds else []),
        str(args.corpus),
        str(args.seeds),
    ]
    say("instrumenting bluetrace's parsing modules, then loading the corpus")
    began = last = time.monotonic()
    runs = 0
    exception = ""
    with (
        args.log.open("wb") as log,
        subprocess.Popen(  # noqa: S603  our own worker, no shell
            command, stdout=log, stderr=subprocess.PIPE, cwd=HERE.parent, stdin=subprocess.DEVNULL
        ) as child,
    ):
        assert child.stderr is not None
        previous = b""
        for line in child.stderr:
            log.write(line)
            if b"Uncaught Python exception" in previous:
                exception = line.decode("utf-8", "replace").strip()
            previous = line
            done = _DONE.search(line)
            if done:
                runs = int(done.group(1))
            stats = _STATS.search(line)
            if stats is None:
                continue
            runs = int(stats.group(1))
            now = time.monotonic()
            if stats.group(2) == b"INITED":
                say(
                    f"fuzzing from {now - began:.1f} s; "
                    f"{int(stats.group(5)):,} interesting inputs loaded from corpus and seeds"
                )
            elif now - last >= PROGRESS_EVERY:
                last = now
                say(
                    f"{runs:,}/{args.runs:,} runs, {int(stats.group(6)):,}/s, "
                    f"coverage {int(stats.group(3)):,} edges, corpus {int(stats.group(5)):,}"
                )
        status = child.wait()
    if exception:
        say(f"a target raised {exception}")
    return status, runs


# -- hypothesis -----------------------------------------------------------------


def hypothesis_target(target: int, failure: list[bytes]) -> Callable[[], None]:
    """A property over one target that records the input it last failed on
    (hypothesis replays the shrunk example last, so that is the minimal one)."""
    if target == FRAMES:

        @given(st.binary(max_size=8192), st.lists(st.integers(0, 2**16), max_size=16))
        def frames(data: bytes, cuts: list[int]) -> None:
            try:
                check_stream(data, cuts)
            except Exception:
                failure[:] = [bytes([FRAMES]) + data]
                raise

        return frames

    @given(st.binary(max_size=80))
    def beacons(data: bytes) -> None:
        try:
            check_beacon(data)
        except Exception:
            failure[:] = [bytes([BEACONS]) + data]
            raise

    return beacons


def save_crash(folder: Path, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"hypothesis-{hashlib.sha1(data).hexdigest()}"  # noqa: S324  a name
    path.write_bytes(data)
    return path


def replay(folders: list[Path]) -> tuple[int, list[tuple[Path, str]]]:
    """Every stored input (seeds, corpus, earlier crashes) through the targets."""
    count, failed = 0, []
    for folder in folders:
        for path in files_in(folder):
            count += 1
            try:
                check_input(path.read_bytes())
            except Exception as exc:  # a failing input is the finding, reported below
                failed.append((path, f"{type(exc).__name__}: {exc}"))
    return count, failed


def run_hypothesis(args: argparse.Namespace) -> tuple[int, int]:
    count, failed = replay([args.seeds, args.corpus, args.crashes])
    say(f"replayed {count} stored inputs: {len(failed)} failed")
    for path, text in failed:
        say(f"FAILED on {path}: {text}")
    if failed:
        return 1, count
    began = time.monotonic()
    last = began
    per_target = max(1, args.runs // 2)
    runs = count
    for target in (FRAMES, BEACONS):
        done = 0
        batch_seed = 0
        while done < per_target:
            if args.seconds and time.monotonic() - began >= args.seconds:
                say(f"time limit of {args.seconds} s reached")
                return 0, runs
            size = min(BATCH, per_target - done)
            failure: list[bytes] = []
            test = hypothesis_target(target, failure)
            many = settings(
                max_examples=size,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            try:
                seed(batch_seed)(many(test))()
            except Exception as exc:  # the finding: reported in one line, input saved
                where = save_crash(args.crashes, failure[0]) if failure else None
                say(
                    f"{NAMES[target]} FAILED: {type(exc).__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else ''}"
                )
                if where is not None:
                    say(f"the failing input is saved as {where}")
                return 1, runs + done
            done += size
            batch_seed += 1
            now = time.monotonic()
            if now - last >= PROGRESS_EVERY or done == per_target:
                last = now
                rate = (runs + done - count) / max(now - began, 1e-9)
                say(f"{NAMES[target]}: {done:,}/{per_target:,} examples ({rate:,.0f}/s overall)")
        runs += done
    return 0, runs


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.runs <= 0:
        build_parser().error("--runs must be positive")
    has_atheris = importlib.util.find_spec("atheris") is not None
    engine = args.engine
    if engine == "auto":
        engine = "atheris" if has_atheris else "hypothesis"
    if engine == "atheris" and not has_atheris:
        print("fuzz: atheris is not installed (pip install -e '.[fuzz]')", file=sys.stderr)
        return 2
    args.corpus.mkdir(parents=True, exist_ok=True)
    args.crashes.mkdir(parents=True, exist_ok=True)
    before = crash_files(args.crashes)
    limit = f", at most {args.seconds} s" if args.seconds else ""
    say(f"targets: {NAMES[FRAMES]} (bluetrace.protocol.framing), {NAMES[BEACONS]} (decode_beacon)")
    say(f"engine: {engine}" + ("" if has_atheris else " (atheris is not installed)"))
    say(f"runs: {args.runs:,} in all{limit}")
    say(
        f"seeds: {args.seeds} ({len(files_in(args.seeds))} files); corpus: {args.corpus} "
        f"({len(files_in(args.corpus))} files); failing inputs go to {args.crashes}/"
    )
    if engine == "atheris":
        say(f"libFuzzer's own output goes to {args.log}")
    began = time.monotonic()
    try:
        status, runs = run_atheris(args) if engine == "atheris" else run_hypothesis(args)
    except KeyboardInterrupt:
        print("\nfuzz: interrupted", file=sys.stderr)
        return 130
    new = sorted(crash_files(args.crashes) - before)
    took = time.monotonic() - began
    say(
        f"{runs:,} runs in {took:.0f} s, {len(new)} new failing "
        f"{'input' if len(new) == 1 else 'inputs'}, corpus {len(files_in(args.corpus))} files"
    )
    for path in new:
        say(f"failing input: {path} (see why: python -m fuzz.replay {path})")
    if status != 0 and engine == "atheris" and not new:
        say(f"libFuzzer exited with status {status}; see {args.log}")
    return 1 if new or status != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
