"""Stream a large CSV through `POST /v1/ops/imports`, in chunks of at most 1,000 rows.

    python -m tools.import_csv --kind members --file members.csv --url http://127.0.0.1:8000 --token $TOKEN

- A progress bar (tqdm when installed, a plain counter otherwise).
- Resumes after a failure: `<file>.progress.json` holds how many rows the API acknowledged; a
  re-run continues after them. Rows are idempotent per key, so re-sending a chunk whose answer
  was lost is safe.
- Rejected rows go to `<file>.rejected.csv` (the CSV line, the error, the row's columns).
- Members rejected as `referrer_unknown` (their referrer came later in the file) are sent once
  more at the end, when every referrer is in.

Empty cells are left out; `amount_fen` becomes an integer and `vanity`/`apply_rewards`-like
columns booleans. Exit status: 0 done, 1 stopped by a failure (re-run to resume), 2 bad usage.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

MAX_CHUNK = 1000
INTEGERS = {"amount_fen"}
BOOLEANS = {"vanity"}
RETRIES = 4
Post = Callable[[str, str, dict[str, Any]], tuple[int, Any]]


class Stopped(Exception):
    """The API could not take a chunk even after retries: the progress file says where to resume."""


def http_post(url: str, token: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(url.rstrip("/") + "/v1/ops/imports", data=json.dumps(body).encode(),
                                     method="POST", headers={"Content-Type": "application/json",
                                                             "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"null")
        except ValueError:
            return exc.code, None


def cell(name: str, value: str) -> Any:
    if name in INTEGERS:
        try:
            return int(value)
        except ValueError:
            return value  # the API rejects the row and says why
    if name in BOOLEANS:
        return value.strip().lower() in ("1", "true", "yes", "y")
    return value


def to_row(record: dict[str, str]) -> dict[str, Any]:
    return {name: cell(name, value) for name, value in record.items() if name and value not in (None, "")}


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number in the file, the record) for each data row, streamed."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        for record in reader:
            yield reader.line_num, record


class Progress:
    """The resume file: rows acknowledged so far and how long the rejected file was then."""

    def __init__(self, path: Path, kind: str):
        self.path, self.kind = path, kind
        self.done, self.rejected_bytes, self.finished = 0, 0, False
        if path.exists():
            state = json.loads(path.read_text())
            if state.get("kind") != kind:
                raise SystemExit(f"{path} belongs to a {state.get('kind')} import; remove it to start over")
            self.done, self.rejected_bytes = int(state["done"]), int(state["rejected_bytes"])
            self.finished = bool(state.get("finished"))

    def save(self) -> None:
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"kind": self.kind, "done": self.done, "rejected_bytes": self.rejected_bytes,
                                         "finished": self.finished}))
        os.replace(temporary, self.path)  # never a half-written progress file


def bar(total: int | None, initial: int):
    try:
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, unit="row", file=sys.stderr)
    except ImportError:
        return _Counter(total, initial)


class _Counter:
    def __init__(self, total: int | None, initial: int):
        self.total, self.n = total, initial

    def update(self, n: int) -> None:
        self.n += n
        print(f"\r{self.n}/{self.total or '?'} rows", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        print(file=sys.stderr)


def send(post: Post, url: str, token: str, body: dict[str, Any], sleep: Callable[[float], None]) -> dict[str, Any]:
    """One chunk, retried on network errors, 429 and 5xx; a 4xx for the call is a stop."""
    problem = None
    for attempt in range(RETRIES):
        try:
            status, answer = post(url, token, body)
        except (OSError, urllib.error.URLError) as exc:
            problem = str(exc)
        else:
            if status == 200:
                return answer
            problem = f"HTTP {status}: {json.dumps(answer)[:300]}"
            if status != 429 and status < 500:
                break
        sleep(min(30.0, 2 ** attempt))
    raise Stopped(problem)


def run(kind: str, file: Path, url: str, token: str, chunk: int = MAX_CHUNK, apply_rewards: bool = False,
        post: Post = http_post, sleep: Callable[[float], None] = time.sleep) -> dict[str, int]:
    chunk = max(1, min(chunk, MAX_CHUNK))
    progress = Progress(Path(f"{file}.progress.json"), kind)
    rejected_path = Path(f"{file}.rejected.csv")
    total = sum(1 for _ in read_rows(file))
    with open(file, newline="", encoding="utf-8-sig") as handle:
        columns = next(csv.reader(handle), [])
    _trim(rejected_path, progress.rejected_bytes, columns)
    shown = bar(total, progress.done)
    extra = {"apply_rewards": True} if apply_rewards else {}
    try:
        pending: list[tuple[int, dict[str, str]]] = []
        start = 0  # data rows before `pending`
        for line, record in read_rows(file):
            pending.append((line, record))
            if len(pending) == chunk:
                _chunk(pending, start, progress, kind, extra, rejected_path, columns, post, url, token, sleep, shown)
                start, pending = start + len(pending), []
        if pending:
            _chunk(pending, start, progress, kind, extra, rejected_path, columns, post, url, token, sleep, shown)
        if kind == "members" and not progress.finished:
            _second_chance(progress, kind, extra, rejected_path, columns, post, url, token, sleep, chunk)
    finally:
        shown.close()
    rejected = sum(1 for _ in read_rows(rejected_path)) if rejected_path.exists() else 0
    return {"rows": total, "accepted": total - rejected, "rejected": rejected}


def _chunk(pending, start, progress, kind, extra, rejected_path, columns, post, url, token, sleep, shown) -> None:
    # Rows up to `done` were acknowledged by an earlier run: skipped (the file is read again).
    skip = progress.done - start
    if skip >= len(pending):
        return
    pending = pending[max(0, skip):]
    answer = send(post, url, token, {"kind": kind, "rows": [to_row(r) for _, r in pending], **extra}, sleep)
    _append_rejected(rejected_path, columns, [(pending[r["row"]], r["error"]) for r in answer["rejected"]])
    progress.done += len(pending)
    progress.rejected_bytes = rejected_path.stat().st_size if rejected_path.exists() else 0
    progress.save()
    shown.update(len(pending))


def _second_chance(progress, kind, extra, rejected_path, columns, post, url, token, sleep, chunk) -> None:
    """Members whose referrer came later in the file: sent again now that every referrer is in."""
    kept, again = [], []
    for line, record in read_rows(rejected_path):
        (again if record["error_code"] == "referrer_unknown" else kept).append(record)
    for start in range(0, len(again), chunk):
        part = again[start:start + chunk]
        rows = [to_row({c: r.get(c, "") for c in columns}) for r in part]
        answer = send(post, url, token, {"kind": kind, "rows": rows, **extra}, sleep)
        still = {r["row"]: r["error"] for r in answer["rejected"]}
        kept += [{**record, "error_code": still[i]["code"], "error_message": still[i]["message"]}
                 for i, record in enumerate(part) if i in still]
    if again:
        kept.sort(key=lambda r: int(r["line"]))
        rejected_path.unlink()
        _append_rejected(rejected_path, columns, [], records=kept)
    progress.finished = True
    progress.rejected_bytes = rejected_path.stat().st_size if rejected_path.exists() else 0
    progress.save()


def _trim(path: Path, size: int, columns: list[str]) -> None:
    """Forget rejected rows written after the last acknowledged chunk (it will be sent again)."""
    if path.exists() and path.stat().st_size > size:
        with open(path, "r+b") as handle:
            handle.truncate(size)
        if size == 0:
            path.unlink()


def _append_rejected(path: Path, columns: list[str], failures, records: list[dict] | None = None) -> None:
    header = ["line", "error_code", "error_message", *columns]
    if records is None:
        records = [{"line": line, "error_code": error["code"], "error_message": error["message"], **record}
                   for (line, record), error in failures]
    if not records:
        return
    new = not path.exists()
    with open(path, "a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerows(records)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", required=True, choices=("members", "codes", "purchases"))
    parser.add_argument("--file", required=True, type=Path)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--token", default=os.environ.get("TOKEN"), help="an admin token (default: $TOKEN)")
    parser.add_argument("--chunk", type=int, default=MAX_CHUNK, help="rows a call (at most 1000)")
    parser.add_argument("--apply-rewards", action="store_true", help="let this history earn rewards")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("an admin token is needed: --token or $TOKEN")
    try:
        outcome = run(args.kind, args.file, args.url, args.token, args.chunk, args.apply_rewards)
    except Stopped as exc:
        print(f"stopped: {exc}\nre-run the same command to resume", file=sys.stderr)
        return 1
    print(json.dumps(outcome))
    return 0


if __name__ == "__main__":
    sys.exit(main())
