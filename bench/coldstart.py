"""Cold start: how long `import app` takes against importing its third-party dependencies
alone, and how big the deployment package is.

- Import time: `python -X importtime -c "import app"`, summed over every module (the "self"
  column), median of several runs; the same for a script that imports exactly the third-party
  modules `import app` loads (found from `sys.modules`), in the same order. What is left is
  our own code, read from bytecode like the dependencies (compiled first). Wall and CPU time of
  each process (minus `python -c pass`) are given too: CPU time is what the load of a shared
  machine inflates least.
- Package: `chalice package --stage dev` into a temporary folder (it downloads Lambda wheels
  from PyPI). If packaging fails, the method falls back to a zip of app.py + chalicelib + the
  installed files of requirements.txt's distributions (and their dependencies) from the venv.
- `--lambda [DIST]`: the import time of the *deployable* package (`make package`'s zip, built
  into a temporary folder unless DIST, e.g. dist/dev, is given) under Lambda-like conditions:
  unpacked into a read-only folder, `PYTHONDONTWRITEBYTECODE=1`, `python -S` (no site-packages:
  only the package and the standard library, as on Lambda), the function's environment from
  the template; with the shipped `.pyc` files and without them; per function (handler).
- `--first-call [TREE]`: routes, stream handlers and schedules import their capability on their
  first call (docs/cold-start.md), so per function: the CPU time of `import app`, then of what
  its first call imports (in-process `time.process_time`, median of fresh interpreters, from
  bytecode). TREE: another checkout of the code (e.g. an older commit, for a before/after).
"""
from __future__ import annotations

import importlib.metadata as md
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "STAGE": "local", "AWS_DEFAULT_REGION": "us-east-1", "PYTHONDONTWRITEBYTECODE": "1"}
OWN = ("app", "chalicelib", "infra", "bench", "tools", "tests")


def _importtime(code: str) -> tuple[float, float, float]:
    """(sum of self import times in ms, process wall time in ms, process CPU time in ms).

    CPU time (user + system) is what a shared machine's load inflates least."""
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=str(ROOT), env=ENV,
                          capture_output=True, text=True, check=True)
    wall = (time.perf_counter() - started) * 1e3
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime + cpu_after.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime) * 1e3
    total = 0
    for line in proc.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|", line)
        if match:
            total += int(match.group(1))
    return total / 1e3, wall, cpu


def third_party_modules() -> list[str]:
    probe = ("import sys; before = set(sys.modules); import app; "
             "own = %r; std = set(sys.stdlib_module_names); "
             "print('\\n'.join(m for m in sys.modules if m not in before and m.split('.')[0] not in own "
             "and m.split('.')[0] not in std and not m.startswith('_')))") % (OWN,)
    out = subprocess.run([sys.executable, "-c", probe], cwd=str(ROOT), env=ENV, capture_output=True, text=True,
                         check=True).stdout.split()
    return out


def import_times(runs: int = 21) -> dict:  # a ~30 ms process: medians of fewer runs moved ×1.07–×1.25
    # Our code from bytecode, like the dependencies (pip compiled theirs): a fresh clone has no
    # __pycache__ and PYTHONDONTWRITEBYTECODE keeps it so, which would time the compiler instead.
    subprocess.run([sys.executable, "-m", "compileall", "-q", "app.py", "chalicelib"], cwd=str(ROOT),
                   check=True, capture_output=True)
    modules = third_party_modules()
    deps_code = "\n".join(f"import {m}" for m in modules)
    tops = sorted({m.split(".")[0] for m in modules})
    samples = {"app": [], "deps": [], "bare": []}
    for _ in range(runs):
        samples["app"].append(_importtime("import app"))
        samples["deps"].append(_importtime(deps_code))
        samples["bare"].append(_importtime("pass"))
    med = {k: tuple(statistics.median(sample[i] for sample in v) for i in range(3)) for k, v in samples.items()}
    return {"runs": runs, "third_party_top_level": tops, "third_party_modules": len(modules),
            "app_import_ms": med["app"][0], "deps_import_ms": med["deps"][0],
            "own_code_ms": med["app"][0] - med["deps"][0],
            "app_process_ms": med["app"][1] - med["bare"][1], "deps_process_ms": med["deps"][1] - med["bare"][1],
            "interpreter_start_ms": med["bare"][1],
            "app_cpu_ms": med["app"][2] - med["bare"][2], "deps_cpu_ms": med["deps"][2] - med["bare"][2],
            "interpreter_start_cpu_ms": med["bare"][2]}


def _zip_size(folder: Path, target: Path) -> int:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, path.relative_to(folder))
    return target.stat().st_size


def _distribution_closure(requirements: list[str]) -> list[md.Distribution]:
    from packaging.requirements import Requirement  # pip's vendored copy is not importable; packaging is in the venv

    seen: dict[str, md.Distribution] = {}
    todo = [Requirement(r).name for r in requirements]
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        seen[key] = dist
        for req in dist.requires or []:
            parsed = Requirement(req)
            if parsed.marker is None or parsed.marker.evaluate({"extra": ""}):
                todo.append(parsed.name)
    return list(seen.values())


def package_size(timeout: int = 150) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-package-"))
    try:
        chalice = Path(sys.executable).with_name("chalice")
        started = time.perf_counter()
        try:
            proc = subprocess.run([str(chalice), "package", "--stage", "dev", str(tmp / "out")], cwd=str(ROOT),
                                  env={**ENV, "STAGE": "dev"},
                                  capture_output=True, text=True, timeout=timeout)
            zipped = tmp / "out" / "deployment.zip"
            if proc.returncode == 0 and zipped.exists():
                size = zipped.stat().st_size
                with zipfile.ZipFile(zipped) as zf:
                    unpacked = sum(i.file_size for i in zf.infolist())
                return {"method": "chalice package --stage dev (Lambda wheels from PyPI)", "zip_bytes": size,
                        "unpacked_bytes": unpacked, "seconds": time.perf_counter() - started}
            reason = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no deployment.zip"]
        except subprocess.TimeoutExpired:
            reason = [f"timed out after {timeout}s"]
        # Fallback, offline: our code + the installed files of the runtime distributions.
        stage = tmp / "fallback"
        stage.mkdir()
        shutil.copy(ROOT / "app.py", stage / "app.py")
        shutil.copytree(ROOT / "chalicelib", stage / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
        requirements = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
        dists = _distribution_closure([r for r in requirements if r])
        for dist in dists:
            for file in dist.files or []:
                source = Path(dist.locate_file(file))
                if source.is_file() and "__pycache__" not in source.parts and not str(file).startswith(".."):
                    dest = stage / file
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(source, dest)
        unpacked = sum(p.stat().st_size for p in stage.rglob("*") if p.is_file())
        size = _zip_size(stage, tmp / "fallback.zip")
        return {"method": "zip of app.py + chalicelib + installed files of requirements.txt's distributions "
                          f"({', '.join(sorted(d.metadata['Name'] for d in dists))}); chalice package failed: "
                          f"{' '.join(reason)[:200]}",
                "zip_bytes": size, "unpacked_bytes": unpacked, "seconds": time.perf_counter() - started}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


LAMBDA_PROBE = ("import sys, time; sys.path.insert(0, sys.argv[1]); started = time.perf_counter(); "
                "import app; getattr(app, sys.argv[2]); print((time.perf_counter() - started) * 1e3)")


def _read_only_tree(zip_path: Path, target: Path, with_bytecode: bool) -> Path:
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            if with_bytecode or "__pycache__/" not in info.filename:
                zf.extract(info, target)
    for path in [target, *target.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)
    return target


def lambda_import_times(dist: Path | None = None, runs: int = 5) -> dict:
    """Median ms of `import app` (+ the handler) per function, with and without shipped bytecode."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-lambda-"))
    try:
        if dist is None:
            dist = tmp / "dist"
            subprocess.run([sys.executable, "-m", "infra.aws.package", "dev", "--out", str(dist)], cwd=str(ROOT),
                           check=True, capture_output=True)
        template = json.loads((dist / "sam.json").read_text())
        defaults = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
        functions = {name: r["Properties"] for name, r in template["Resources"].items()
                     if r["Type"] == "AWS::Serverless::Function"}
        result: dict = {"runs": runs, "functions": {}}
        for variant, with_bytecode in (("with_pyc", True), ("without_pyc", False)):
            tree = _read_only_tree(dist / "deployment.zip", tmp / variant, with_bytecode)
            for name, props in functions.items():
                variables = props.get("Environment", {}).get("Variables", {})
                env = {"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1", "AWS_REGION": "us-east-1",
                       **{k: defaults[v["Ref"]] if isinstance(v, dict) else v for k, v in variables.items()}}
                handler = props["Handler"].split(".", 1)[1]
                samples = [float(subprocess.run([sys.executable, "-S", "-c", LAMBDA_PROBE, str(tree), handler],
                                                env=env, cwd=str(tmp), capture_output=True, text=True,
                                                check=True).stdout) for _ in range(runs)]
                result["functions"].setdefault(name, {})[variant] = statistics.median(samples)
        return result
    finally:
        for path in tmp.rglob("*"):
            path.chmod(path.stat().st_mode | 0o200)
        shutil.rmtree(tmp, ignore_errors=True)


# What each function's first call imports beyond `import app` (app.py's handlers; the API's
# first request imports one routes module: the sign-in, the referral links, or all of them).
FIRST_CALL = {
    "APIHandler (POST /v1/auth/login)": "import chalicelib.members.routes",
    "APIHandler (referral links)": "import chalicelib.referrals.routes",
    "APIHandler (every route: /openapi.json)": ("import importlib.util as u; u.find_spec('chalicelib.core.routing') "
                                                "and __import__('chalicelib.core.routing', fromlist=['_']).load_all()"),
    # (before 06305d0 and 03dca4b `import app` loaded every routes module and stream handler itself)
    "OnMainChange": ("from chalicelib import streams; import chalicelib.store.base; "
                     "getattr(streams, 'load_handlers', lambda table: None)('main')"),
    "OnClick": ("from chalicelib import streams; import chalicelib.store.base; "
                "getattr(streams, 'load_handlers', lambda table: None)('clicks')"),
    "OnStreamFailure": "import chalicelib.stream_failures.service",
    "ReleaseMaturedRewards": "import chalicelib.rewards.sweeps",
    "SettleExpiredRedPackets": "import chalicelib.engagement.red_packets",
    "MoveMembersWithTheClock": "import chalicelib.lifecycle.sweep",
    "ExpirePoints": "import chalicelib.points.expiry",
    "DeliverWebhooks": "import chalicelib.webhooks.delivery",
}
FIRST_CALL_PROBE = ("import sys, time; c = time.process_time; t0 = c(); import app; t1 = c(); exec(sys.argv[1]); "
                    "t2 = c(); print((t1 - t0) * 1e3, (t2 - t1) * 1e3)")


def first_call_times(tree: Path = ROOT, runs: int = 5) -> dict:
    """Median CPU ms of `import app` and of the first call's imports, per function."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", "app.py", "chalicelib"], cwd=str(tree), check=True,
                   capture_output=True)
    env = {**ENV, "PYTHONPATH": str(tree)}
    result: dict = {"runs": runs, "tree": str(tree), "functions": {}}
    for name, code in FIRST_CALL.items():
        samples = [tuple(map(float, subprocess.run([sys.executable, "-c", FIRST_CALL_PROBE, code], cwd=str(tree),
                                                   env=env, capture_output=True, text=True, check=True).stdout.split()))
                   for _ in range(runs)]
        imported, first = statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)
        result["functions"][name] = {"import_app_cpu_ms": imported, "first_call_imports_cpu_ms": first}
    return result


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--first-call":
        result = first_call_times(Path(sys.argv[2]).resolve() if len(sys.argv) > 2 else ROOT)
        print(json.dumps(result, indent=1))
        print("\n| function | `import app` (CPU) | + its first call's imports | total |\n|---|---|---|---|")
        for name, times in result["functions"].items():
            a, b = times["import_app_cpu_ms"], times["first_call_imports_cpu_ms"]
            print(f"| {name} | {a:.0f} ms | {b:.0f} ms | {a + b:.0f} ms |")
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "--lambda":
        dist = Path(sys.argv[2]) if len(sys.argv) > 2 else None
        result = lambda_import_times(dist)
        print(json.dumps(result, indent=1))
        print("\n| function | import with shipped .pyc | without .pyc (compiled at every cold start) |\n|---|---|---|")
        for name, times in result["functions"].items():
            print(f"| {name} | {times['with_pyc']:.0f} ms | {times['without_pyc']:.0f} ms |")
        return 0
    result = {"imports": import_times(), "package": package_size()}
    print(json.dumps(result, indent=1))
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
