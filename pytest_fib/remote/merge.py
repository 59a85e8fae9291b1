"""Bring the remote output folders home: one per shard, merged into the user's local paths.

* ``--junitxml``: one ``<testsuites>`` with one ``<testsuite>`` holding every shard's test cases
  (counts summed, time the longest shard's);
* ``--benchmark-json``: the first shard's document, with every shard's ``benchmarks`` list;
* ``--benchmark-save``/``--benchmark-autosave``: the saved runs, merged per name, numbered after
  the last run in the local storage;
* ``--fib-traces``: JSONL lines appended (only lines written remotely: a shipped copy of the local
  index for --fib-resume is not appended twice);
* ``--fib-report``: copied (several shards: ``shard-K/`` folders and an index ``summary.md``);
* ``--fib-pack``: copied;
* pytest's cache (``--lf``/``--ff``/``--sw``): lastfailed merged, node ids united.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .plan import CACHE_KEY, STORAGE_KEY, Artifacts

CACHE_FILES = ("lastfailed", "nodeids", "stepwise")
# pytest-fib's own cache values (settings.SEED_CACHE_KEY): shipped out, and brought home from
# the remote session, so --fib-seed=last and --lf reuse the remote run's seed (issue 18)
FIB_CACHE_VALUES = ("fib/last-seed",)


def merge_junit(files: Sequence[Path], dest: Path) -> None:
    suites = []
    for f in files:
        root = ET.parse(f).getroot()
        suites += [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    if not suites:
        return
    merged = ET.Element("testsuite", dict(suites[0].attrib))
    for key in ("tests", "errors", "failures", "skipped"):
        merged.set(key, str(sum(int(s.get(key, "0")) for s in suites)))
    merged.set("time", f"{max(float(s.get('time', '0')) for s in suites):.3f}")
    merged.set("timestamp", min(s.get("timestamp", "") for s in suites))
    props = suites[0].find("properties")
    if props is not None:
        merged.append(props)
    for s in suites:
        for case in s.findall("testcase"):
            merged.append(case)
    top = ET.Element("testsuites", {"name": "pytest tests"})
    top.append(merged)
    dest.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(top).write(dest, encoding="utf-8", xml_declaration=True)


def merge_benchmark_json(docs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    base = dict(docs[0])
    base["benchmarks"] = [b for d in docs for b in d.get("benchmarks", [])]
    stamps = [d["datetime"] for d in docs if d.get("datetime")]
    if stamps:
        base["datetime"] = min(stamps)
    return base


def append_new(src: Path, dest: Path, already: int) -> None:
    """Append what ``src`` holds past its first ``already`` bytes (the copy shipped out)."""
    data = src.read_bytes()[already:]
    if not data:
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    with dest.open("ab") as fh:
        fh.write(data)


def merge_lastfailed(start: dict[str, Any], results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Each shard started from ``start`` and dropped what passed there, added what failed: an old
    entry stays only if no shard dropped it; a new one comes from the shard that added it."""
    out = {k: v for k, v in start.items() if all(k in r for r in results)}
    for r in results:
        out.update({k: v for k, v in r.items() if k not in start})
    return out


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


class Homecoming:
    """Merge the output folders of every shard into the local artifact paths."""

    def __init__(self, artifacts: Artifacts, shipped: dict[str, int],
                 start_cache: dict[str, Any], *, replayed: bool = False) -> None:
        self.artifacts = artifacts
        # replayed: this side's junit and lastfailed are written by this side's own plugins,
        # from the replayed reports (remote/replay.py); the remote copies are not used
        self.replayed = replayed
        self.cache_files: dict[Path, str] = {}
        self.shipped = shipped  # output-relative path -> bytes shipped out as input
        self.start_cache = start_cache  # cache file name -> value shipped out
        self.written: list[str] = []

    def bring(self, outs: Sequence[Path]) -> list[str]:
        a = self.artifacts.paths
        if "junit.xml" in a and not self.replayed:
            files = [o / "junit.xml" for o in outs if (o / "junit.xml").is_file()]
            if files:
                merge_junit(files, a["junit.xml"])
                self.written.append(f"--junitxml: {a['junit.xml']}")
        if "benchmark.json" in a:
            docs = [_read_json(o / "benchmark.json", None) for o in outs]
            docs = [d for d in docs if d]
            if docs:
                a["benchmark.json"].parent.mkdir(parents=True, exist_ok=True)
                a["benchmark.json"].write_text(json.dumps(merge_benchmark_json(docs), indent=4))
                self.written.append(f"--benchmark-json: {a['benchmark.json']}")
        if "traces" in a:
            self._traces(outs, a["traces"])
        if "report" in a:
            self._report(outs, a["report"])
        if "pack" in a:
            for o in outs:
                if (o / "pack").is_dir():
                    shutil.copytree(o / "pack", a["pack"], dirs_exist_ok=True)
            self.written.append(f"--fib-pack: {a['pack']}")
        if self.artifacts.storage is not None and self.artifacts.saves:
            self._storage(outs, self.artifacts.storage)
        if self.artifacts.cache is not None:
            self._cache(outs, self.artifacts.cache)
        return self.written

    def _traces(self, outs: Sequence[Path], dest: Path) -> None:
        count = 0
        for o in outs:
            src = o / "traces"
            if not src.is_dir():
                continue
            for f in sorted(p for p in src.rglob("*") if p.is_file()):
                rel = f.relative_to(src).as_posix()
                append_new(f, dest / rel, self.shipped.get(f"traces/{rel}", 0))
                count += 1
        if count:
            self.written.append(f"--fib-traces: {dest}")

    def _report(self, outs: Sequence[Path], dest: Path) -> None:
        have = [(k, o / "report") for k, o in enumerate(outs, 1) if (o / "report").is_dir()]
        if not have:
            return
        if len(outs) == 1:
            shutil.copytree(have[0][1], dest, dirs_exist_ok=True)
        else:
            dest.mkdir(parents=True, exist_ok=True)
            index = [f"# pytest-fib report ({len(outs)} shards)\n"]
            for k, src in have:
                shutil.copytree(src, dest / f"shard-{k}", dirs_exist_ok=True)
                summary = src / "summary.md"
                if summary.is_file():
                    index.append(f"\n## Shard {k}/{len(outs)} ([files](shard-{k}/))\n\n")
                    index.append(summary.read_text())
            (dest / "summary.md").write_text("".join(index))
        self.written.append(f"--fib-report: {dest}")

    def _storage(self, outs: Sequence[Path], dest: Path) -> None:
        """New runs saved remotely (one per shard and name) -> one local run per name."""
        runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for o in outs:
            src = o / STORAGE_KEY
            if not src.is_dir():
                continue
            for f in sorted(src.rglob("*.json")):
                rel = f.relative_to(src).as_posix()
                if f"{STORAGE_KEY}/{rel}" in self.shipped:
                    continue  # a local run shipped out for --benchmark-compare
                machine = f.parent.relative_to(src).as_posix()
                name = f.name.split("_", 1)[1] if "_" in f.name else f.name
                doc = _read_json(f, None)
                if doc is not None:
                    runs.setdefault((machine, name), []).append(doc)
        for (machine, name), docs in sorted(runs.items()):
            folder = dest / machine if machine != "." else dest
            folder.mkdir(parents=True, exist_ok=True)
            nums = [int(p.name[:4]) for p in folder.glob("[0-9][0-9][0-9][0-9]_*.json")]
            target = folder / f"{max(nums, default=0) + 1:04d}_{name}"
            target.write_text(json.dumps(merge_benchmark_json(docs), indent=4))
            self.written.append(f"--benchmark-save: {target}")

    def _cache(self, outs: Sequence[Path], dest: Path) -> None:
        got: dict[str, list[Any]] = {}
        for o in outs:
            for name in CACHE_FILES:
                value = _read_json(o / CACHE_KEY / "v" / "cache" / name, None)
                if value is not None:
                    got.setdefault(name, []).append(value)
        for key in FIB_CACHE_VALUES:
            values = [v for v in (_read_json(o / CACHE_KEY / "v" / key, None) for o in outs)
                      if v is not None]
            if values and all(v == values[0] for v in values):  # shards share one seed
                target = dest / "v" / key
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(json.dumps(values[0]))
        if not got:
            return
        folder = dest / "v" / "cache"
        folder.mkdir(parents=True, exist_ok=True)
        if "lastfailed" in got and not self.replayed:
            merged = merge_lastfailed(self.start_cache.get("lastfailed", {}), got["lastfailed"])
            (folder / "lastfailed").write_text(json.dumps(merged, indent=2, sort_keys=True))
        if "nodeids" in got:
            ids = sorted({n for lst in got["nodeids"] for n in lst})
            self._write(folder / "nodeids", json.dumps(ids, indent=2))
        if "stepwise" in got and len(outs) == 1:
            self._write(folder / "stepwise", json.dumps(got["stepwise"][0], indent=2))

    def _write(self, path: Path, text: str) -> None:
        path.write_text(text)
        self.cache_files[path] = text

    def restore_cache(self) -> None:
        """Write the remote node ids and stepwise state again: this side's cache plugins, which
        collected nothing, have just written their stale copies over them at session end."""
        for path, text in self.cache_files.items():
            path.write_text(text)
