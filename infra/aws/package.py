"""`make package STAGE=dev|prod`: the SAM template and the code zip in `dist/<stage>/`.

1. regenerate `.chalice/policy-<stage>.json` and the merge template (`template.py`);
2. `chalice package --merge-template` (needs no AWS account: a region and placeholder
   credentials are set for that step only, in case botocore asks);
3. add precompiled bytecode to the zip. Lambda's code directory is read-only, so without it every
   cold start compiles every imported module; the `.pyc` files use unchecked-hash invalidation,
   so the zip's timestamps do not matter and the sources are never re-read to validate them.

`python -m infra.aws.package dev [--out dist/dev]`
"""
from __future__ import annotations

import argparse
import compileall
import json
import os
import py_compile
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from . import names, policy

ROOT = names.ROOT
RUNTIME = "python3.13"  # Lambda's runtime; the bytecode must come from the same minor version


def build_merge_template(stage: str) -> dict:
    from app import app  # importing the app never needs secrets or AWS

    from . import template

    return template.build(stage, app)


def package(stage: str, out: Path) -> Path:
    if f"python{sys.version_info.major}.{sys.version_info.minor}" != RUNTIME:
        raise SystemExit(f"package from {RUNTIME} (Chalice takes the runtime and the bytecode from this Python)")
    policy.write([stage])
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    merge = out / "merge-template.json"
    merge.write_text(json.dumps(build_merge_template(stage), indent=1) + "\n")
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
           "PYTHONDONTWRITEBYTECODE": "1"}
    if not (os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")):
        env.update(AWS_ACCESS_KEY_ID="packaging-needs-no-account", AWS_SECRET_ACCESS_KEY="unused")
    chalice = Path(sys.executable).with_name("chalice")
    subprocess.run([str(chalice), "package", "--stage", stage, "--merge-template", str(merge), str(out)],
                   cwd=str(ROOT), env=env, check=True)
    add_bytecode(out / "deployment.zip")
    return out


def add_bytecode(zip_path: Path) -> int:
    """Rewrite the zip with a `__pycache__/*.pyc` beside every module. Returns the count."""
    with tempfile.TemporaryDirectory(prefix="package-") as tmp:
        tree = Path(tmp) / "tree"
        with zipfile.ZipFile(zip_path) as source:
            source.extractall(tree)
            modes = {info.filename: info.external_attr for info in source.infolist()}
        compileall.compile_dir(str(tree), quiet=2, workers=1, ddir="/var/task",
                               invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        rebuilt = Path(tmp) / "deployment.zip"
        count = 0
        with zipfile.ZipFile(rebuilt, "w", zipfile.ZIP_DEFLATED) as target:
            for path in sorted(tree.rglob("*")):
                if not path.is_file():
                    continue
                name = path.relative_to(tree).as_posix()
                info = zipfile.ZipInfo.from_file(path, name)
                info.external_attr = modes.get(name, 0o644 << 16)
                info.compress_type = zipfile.ZIP_DEFLATED
                target.writestr(info, path.read_bytes())
                count += name.endswith(".pyc")
        shutil.move(rebuilt, zip_path)
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.aws.package", description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", choices=sorted(s for s in names.chalice_config()["stages"] if s != "local"))
    parser.add_argument("--out", type=Path, default=None, help="default: dist/<stage>")
    args = parser.parse_args(argv)
    out = package(args.stage, args.out or ROOT / "dist" / args.stage)
    print(f"packaged {args.stage}: {out / 'sam.json'} and {out / 'deployment.zip'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
