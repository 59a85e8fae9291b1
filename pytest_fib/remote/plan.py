"""What ``pytest --modal`` ships and runs: pure functions, no modal, no network.

* :func:`ship_list` -- the explicit list of project files that travel (VCS, caches, venvs, build
  output and anything that looks like a secret stay home);
* :func:`parse_args` / :func:`remote_args` -- the user's command line, minus ``--modal*``, with
  artifact paths rewritten into the remote output folder and ``--fib-dataset`` pointing at the
  volume;
* :func:`make_layout` -- where things live in the container (``/fib/...``);
* :func:`remote_env` -- the remote environment: an allowlist, nothing inherited;
* :func:`detect_root` -- the dataset root on a volume (its root, or one sub-folder);
* :func:`combine_exit_codes`.

Both backends (Modal and the local stand-in) run what these functions produce, so the tests of
the local backend exercise the same command lines, files and environment that Modal receives.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import posixpath
import shlex
import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

# Exit code for failures of the infrastructure (image build, scheduling, lost connection, a remote
# process killed from outside): pytest uses 0-5, so 8 cannot be mistaken for a test outcome.
EXIT_INFRA = 8

REMOTE = PurePosixPath("/fib")
SITE = REMOTE / "site"  # pytest_fib itself, first on PYTHONPATH
INPUT = REMOTE / "input"  # files the session reads back (resume index, cache, saved benchmarks)
OUT = REMOTE / "out"  # everything brought home
WORKSPACE = REMOTE / "ws"  # the project (and, mirrored, the dataset) below here
VOLUME = REMOTE / "volume"  # the volume, when it cannot sit where the local dataset sits

# -- files ------------------------------------------------------------------------------------

MAX_SHIP_BYTES = 256 * 2**20

# Directory names never shipped, wherever they are; every hidden directory (.git, .ssh, .aws,
# .config, .venv, ...) stays home too, as does any folder that is a virtual environment.
EXCLUDED_DIRS = frozenset({
    "__pycache__", "venv", "node_modules", "build", "dist", "wheelhouse", "htmlcov",
    "site-packages",
})
# Hidden files are never shipped either, except these (pytest reads .pytest.ini).
HIDDEN_ALLOWED = frozenset({".pytest.ini"})
NOISE_PATTERNS = ("*.pyc", "*.pyo", "*.egg-info", "*.swp", "*~")
# Files that look like credentials: never shipped, and named in a note so nothing vanishes silently.
SECRET_PATTERNS = (
    "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.kdbx", "*.gpg", "*.asc",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", "*.ppk",
    "modal.toml", "*.env", "env", "netrc", "_netrc", "credentials", "credentials.*",
    "*credentials*.json", "*credential*.toml", "client_secret*", "*secret*.json", "*secret*.toml",
    "*secret*.yaml", "*secret*.yml", "*secrets*", "*.secret", "service-account*.json",
    "*service_account*.json", "token.json", "*.token", "*.tfstate", "*.tfstate.*", "*.tfvars",
    "kubeconfig", "htpasswd", ".htpasswd",
)


def _matches(name: str, patterns: Iterable[str]) -> bool:
    lower = name.lower()
    return any(fnmatch.fnmatchcase(lower, p) for p in patterns)


def is_secret(name: str) -> bool:
    return _matches(name, SECRET_PATTERNS)


@dataclasses.dataclass
class ShipList:
    """Relative POSIX paths of the files that travel, and what was left out and why."""

    root: Path
    files: list[str]
    total_bytes: int
    secrets: list[str]  # relative paths of files held back because they look like credentials
    skipped_links: list[str]

    def largest(self, n: int = 5) -> list[tuple[int, str]]:
        sizes = [((self.root / f).stat().st_size, f) for f in self.files]
        return sorted(sizes, reverse=True)[:n]


def _is_env_dir(path: Path) -> bool:
    return (path / "pyvenv.cfg").is_file() or (path / "conda-meta").is_dir()


def ship_list(root: Path, *, skip: Iterable[Path] = (), patterns: Sequence[str] = ()) -> ShipList:
    """Every file below ``root`` that ``--modal`` ships, by the rules above.

    ``skip``: absolute folders or files left out (the local dataset, artifact folders);
    ``patterns``: extra globs relative to ``root`` (ini ``modal_ignore``)."""
    root = root.resolve()
    skipped = {Path(p).resolve() for p in skip}
    files: list[str] = []
    secrets: list[str] = []
    links: list[str] = []
    total = 0

    def ignored(rel: str) -> bool:
        parts = rel.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        return any(fnmatch.fnmatchcase(p, pat.strip("/")) for p in prefixes for pat in patterns)

    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        keep = []
        for d in sorted(dirnames):
            full = here / d
            rel = full.relative_to(root).as_posix()
            if d.startswith(".") or d in EXCLUDED_DIRS or _matches(d, NOISE_PATTERNS):
                continue
            if full.is_symlink():
                links.append(rel + "/")
                continue
            if full.resolve() in skipped or _is_env_dir(full) or ignored(rel):
                continue
            keep.append(d)
        dirnames[:] = keep
        for f in sorted(filenames):
            full = here / f
            rel = full.relative_to(root).as_posix()
            if f.startswith(".") and f not in HIDDEN_ALLOWED:
                if f not in {".gitignore", ".DS_Store"} and (
                        is_secret(f) or f.startswith(".env") or "token" in f.lower()
                        or f in (".netrc", ".pypirc", ".npmrc", ".git-credentials",
                                 ".modal.toml", ".dockercfg")):
                    secrets.append(rel)
                continue
            if is_secret(f):
                secrets.append(rel)
                continue
            if _matches(f, NOISE_PATTERNS) or full.resolve() in skipped or ignored(rel):
                continue
            if full.is_symlink():
                target = full.resolve()
                if not target.is_file() or root not in target.parents:
                    links.append(rel)
                    continue
            if not full.is_file():
                continue
            files.append(rel)
            total += full.stat().st_size
    return ShipList(root, sorted(files), total, sorted(secrets), sorted(links))


def dist_info(version: str) -> dict[str, str]:
    """A minimal .dist-info next to the shipped package: pytest finds the plugin through its
    ``pytest11`` entry point exactly as in a pip install, without installing anything."""
    return {
        "METADATA": f"Metadata-Version: 2.1\nName: pytest-fib\nVersion: {version}\n",
        "entry_points.txt": "[pytest11]\nfib = pytest_fib.plugin\n",
        "top_level.txt": "pytest_fib\n",
    }


def stage(dest: Path, project: ShipList, package: ShipList, version: str,
          inputs: dict[str, Path]) -> None:
    """Copy exactly the shipped files into ``dest/{project,site,input}`` (what Modal uploads and
    what the local backend runs in)."""
    for rel in project.files:
        _copy(project.root / rel, dest / "project" / rel)
    for rel in package.files:
        _copy(package.root / rel, dest / "site" / "pytest_fib" / rel)
    meta = dest / "site" / f"pytest_fib-{version}.dist-info"
    meta.mkdir(parents=True, exist_ok=True)
    for name, text in dist_info(version).items():
        (meta / name).write_text(text)
    (dest / "input").mkdir(parents=True, exist_ok=True)
    for rel, src in inputs.items():
        _copy(src, dest / "input" / rel)
    (dest / "project").mkdir(parents=True, exist_ok=True)


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)


# -- command line -----------------------------------------------------------------------------

Nargs = Any  # 0 (a flag), an int, "?", "+" or "*"


def option_table(config: Any) -> dict[str, Nargs]:
    """Option string -> how many values it takes, from pytest's own argparse parser."""
    table: dict[str, Nargs] = {}
    parser = getattr(config._parser, "optparser", None)
    if parser is None:  # older pytest builds the argparse parser on demand
        parser = config._parser._getparser()
    for name, action in parser._option_string_actions.items():
        nargs = action.nargs
        table[name] = 1 if nargs is None else nargs
    return table


@dataclasses.dataclass
class Arg:
    """One element of a command line: an option with its values, or a positional argument."""

    name: str | None  # "--junitxml", "-k"; None for a positional or a raw token
    values: list[str]
    raw: list[str]  # the tokens as given

    def tokens(self) -> list[str]:
        if self.name is None:
            return list(self.values)
        if not self.values:
            return [self.name]
        if self.name.startswith("--"):
            if len(self.values) == 1:
                return [f"{self.name}={self.values[0]}"]
            return [self.name, *self.values]
        return [self.name + self.values[0], *self.values[1:]]  # -kexpr: safe for any value


def parse_args(args: Sequence[str], table: dict[str, Nargs]) -> list[Arg]:
    """Split a pytest command line the way argparse does, keeping each option with its values."""
    out: list[Arg] = []
    i = 0
    only_positional = False

    def take(nargs: Nargs) -> list[str]:
        nonlocal i
        if nargs == 0:
            return []
        if isinstance(nargs, int):
            got = list(args[i:i + nargs])
            i += len(got)
            return got
        got = []
        while i < len(args) and not (args[i].startswith("-") and args[i] != "-"):
            got.append(args[i])
            i += 1
            if nargs == "?":
                break
        return got

    while i < len(args):
        tok = args[i]
        i += 1
        if only_positional or tok == "-" or not tok.startswith("-"):
            out.append(Arg(None, [tok], [tok]))
            continue
        if tok == "--":
            only_positional = True
            out.append(Arg(None, [tok], [tok]))
            continue
        if tok.startswith("--"):
            name, eq, value = tok.partition("=")
            if eq:
                out.append(Arg(name, [value], [tok]))
                continue
            start = i
            values = take(table.get(name, 0))
            out.append(Arg(name, values, [tok, *args[start:i]]))
            continue
        name, rest = tok[:2], tok[2:]
        nargs = table.get(name, 0)
        if nargs != 0:
            start = i
            values = [rest] if rest else take(nargs)
            out.append(Arg(name, values, [tok, *args[start:i]]))
            continue
        # a cluster of flags (-vx), possibly ending in an option that takes a value (-vk expr)
        for j, ch in enumerate(rest):
            if table.get("-" + ch, 0) != 0:
                flags, value = tok[:2 + j + 1], rest[j + 1:]
                if value:
                    out.append(Arg(None, [tok], [tok]))
                else:
                    start = i
                    got = take(table["-" + ch])
                    out.append(Arg(None, [flags, *got], [tok, *args[start:i]]))
                break
        else:
            out.append(Arg(None, [tok], [tok]))
    return out


# Artifact options: (option strings, key, kind); their values are rewritten into /fib/out/<key>.
ARTIFACTS = (
    (("--junitxml", "--junit-xml"), "junit.xml", "file"),
    (("--benchmark-json",), "benchmark.json", "file"),
    (("--fib-traces",), "traces", "dir"),
    (("--fib-report",), "report", "dir"),
    (("--fib-pack",), "pack", "dir"),
)
ARTIFACT_OPTIONS = {name: (key, kind) for names, key, kind in ARTIFACTS for name in names}
STORAGE_KEY = "benchmarks"
REPORTS_KEY = "reports.jsonl"  # serialised reports, replayed locally (remote/sender.py)
CACHE_KEY = "cache"
DATASET_OPTION = "--fib-dataset"


@dataclasses.dataclass
class Artifacts:
    """Local destinations of what comes home (None: not asked for)."""

    paths: dict[str, Path]  # key ("junit.xml", "traces", ...) -> local path
    storage: Path | None = None  # pytest-benchmark file storage, when runs are saved or compared
    saves: bool = False
    compares: bool = False
    cache: Path | None = None  # pytest's cache folder (--lf/--ff/--sw state), None: disabled


class PlanError(Exception):
    """A problem with the command line under --modal: becomes a pytest usage error."""


def _value_option(args: list[Arg], names: Iterable[str]) -> list[Arg]:
    names = set(names)
    return [a for a in args if a.name in names]


def storage_path(value: str, base: Path) -> Path | None:
    """pytest-benchmark's --benchmark-storage: a file storage's folder, None for elasticsearch."""
    if "://" in value and not value.startswith("file://"):
        return None
    path = value[len("file://"):] if value.startswith("file://") else value
    return (base / os.path.expanduser(path)).resolve()


def find_artifacts(args: list[Arg], invocation_dir: Path, cache_dir: Path | None) -> Artifacts:
    paths: dict[str, Path] = {}
    for a in args:
        if a.name in ARTIFACT_OPTIONS and a.values:
            key, _ = ARTIFACT_OPTIONS[a.name]
            paths[key] = (invocation_dir / os.path.expanduser(a.values[0])).resolve()
    storage_value = "file://./.benchmarks"
    for a in _value_option(args, ["--benchmark-storage"]):
        if a.values:
            storage_value = a.values[0]
    saves = any(a.name in ("--benchmark-save", "--benchmark-autosave") for a in args)
    compares = any(a.name in ("--benchmark-compare", "--benchmark-compare-fail") for a in args)
    storage = storage_path(storage_value, invocation_dir) if (saves or compares) else None
    return Artifacts(paths, storage, saves, compares, cache_dir)


def _rewrite_path(value: str, project: Path, remote_project: str) -> str:
    """An absolute path inside the project becomes the same path in the remote project."""
    head, sep, tail = value.partition("::")
    if not os.path.isabs(head):
        return value
    p = Path(head)
    try:
        rel = p.resolve().relative_to(project)
    except ValueError:
        return value
    remote = posixpath.join(remote_project, rel.as_posix()) if rel.parts else remote_project
    return remote + sep + tail


def remote_args(args: list[Arg], *, project: Path, remote_project: str, out: str,
                dataset: str | None, artifacts: Artifacts, color: bool,
                shard: tuple[int, int] | None = None) -> list[str]:
    """The remote pytest's arguments: the user's, minus --modal*, with artifacts under ``out``
    and the dataset on the volume."""
    result: list[str] = ["-p", "pytest_fib.remote.sender",
                         f"--fib-remote-reports={posixpath.join(out, REPORTS_KEY)}"]
    if shard is not None:
        result += ["-p", "pytest_fib.remote.shard", f"--fib-shard={shard[0]}/{shard[1]}"]
    if dataset is not None:
        result.append(f"{DATASET_OPTION}={dataset}")
    has_color = False
    for a in args:
        if a.name is not None and a.name.startswith("--modal"):
            continue
        if a.name == DATASET_OPTION:
            continue
        if a.name == "--color":
            has_color = True
        if a.name in ARTIFACT_OPTIONS:
            key, _ = ARTIFACT_OPTIONS[a.name]
            result.append(f"{a.name}={posixpath.join(out, key)}")
            continue
        if a.name == "--benchmark-storage" and artifacts.storage is not None:
            continue  # replaced below
        values = [_rewrite_path(v, project, remote_project) for v in a.values]
        result += Arg(a.name, values, a.raw).tokens()
    if artifacts.storage is not None:
        result.append(f"--benchmark-storage=file://{posixpath.join(out, STORAGE_KEY)}")
    if artifacts.cache is not None:
        result += ["-o", f"cache_dir={posixpath.join(out, CACHE_KEY)}"]
    if color and not has_color:
        result.append("--color=yes")
    return result


def check_paths(args: list[Arg], invocation_dir: Path, project: Path) -> None:
    """Paths the remote session reads must lie in the shipped project."""
    for a in args:
        if a.name == "--fib-kernels" and a.values:
            p = (invocation_dir / os.path.expanduser(a.values[0])).resolve()
            if p != project and project not in p.parents:
                raise PlanError(
                    f"--fib-kernels={a.values[0]} is outside the project folder {project}, which "
                    "is what --modal ships. Move the kernels inside it, or run pytest from a "
                    "folder that contains both.")


# -- layout -----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Layout:
    """Absolute POSIX paths in the container; the local backend puts them below a temp root."""

    project: PurePosixPath
    cwd: PurePosixPath
    dataset: PurePosixPath | None  # --fib-dataset value remotely (None: embedded default)
    mount: PurePosixPath | None  # where the volume's dataset folder is mounted (= dataset)
    mount_sub: str  # which folder of the volume is mounted there ("": its root)
    mirrored: bool  # the dataset sits where it sits locally, relative to the rootdir
    site: PurePosixPath = SITE
    input: PurePosixPath = INPUT
    out: PurePosixPath = OUT

    def at(self, path: PurePosixPath | str, root: str = "/") -> str:
        """``path`` below ``root`` (Modal: "/"; the local backend: its temp folder)."""
        p = PurePosixPath(path)
        if root in ("", "/"):
            return str(p)
        return str(Path(root) / p.relative_to("/"))


def make_layout(project: Path, invocation_dir: Path, dataset_local: Path | None,
                volume_sub: str | None) -> Layout:
    """Place the project, and mount the volume's dataset folder, so that the dataset is where it
    is locally relative to the rootdir: node ids of items anchored at the dataset
    (``../flashinfer-trace::def::sol::...``) stay the same. ``volume_sub``: the dataset's folder
    inside the volume ("" = the volume root), None when no volume is used."""
    cwd_rel = invocation_dir.relative_to(project).as_posix() if invocation_dir != project else ""

    def done(remote_project: PurePosixPath, dataset: PurePosixPath | None,
             mirrored: bool) -> Layout:
        cwd = remote_project / cwd_rel if cwd_rel else remote_project
        return Layout(remote_project, cwd, dataset, dataset, volume_sub or "", mirrored)

    default_project = WORKSPACE / project.name
    if volume_sub is None:
        return done(default_project, None, True)
    if dataset_local is None:
        return done(default_project, VOLUME, False)
    try:
        rel = PurePosixPath(Path(os.path.relpath(dataset_local, project)).as_posix())
    except ValueError:  # another drive
        return done(default_project, VOLUME, False)
    ups = 0
    while ups < len(rel.parts) and rel.parts[ups] == "..":
        ups += 1
    rest = rel.parts[ups:]
    if not rest or rest == (".",):  # the dataset is the project or contains it: cannot mirror
        return done(default_project, VOLUME, False)
    remote_project = WORKSPACE.joinpath(*(["_"] * max(ups - 1, 0)), project.name)
    return done(remote_project, PurePosixPath(posixpath.normpath(str(remote_project / rel))),
                True)


# -- environment ------------------------------------------------------------------------------

# pytest-fib settings that the environment may carry (settings.py); nothing else crosses over.
FORWARDED_ENV = ("FIB_SEED", "FIB_DEVICE", "FIB_TIMEOUT", "FIB_CPU_BUDGET")


def remote_env(layout: Layout, local_env: dict[str, str], *, columns: int,
               root: str = "/") -> dict[str, str]:
    """The remote environment, built from an allowlist: no token, key or local setting leaks."""
    env = {
        "PYTHONPATH": layout.at(layout.site, root),
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTEST_FIB_REMOTE": "1",
        "COLUMNS": str(columns),
    }
    for name in FORWARDED_ENV:
        if local_env.get(name):
            env[name] = local_env[name]
    return env


def prep_command(layout: Layout, root: str = "/") -> list[str]:
    """Before the run: the output folder, seeded with the shipped inputs."""
    out, inp = shlex.quote(layout.at(layout.out, root)), shlex.quote(layout.at(layout.input, root))
    return ["sh", "-c", f"mkdir -p {out} && if [ -d {inp} ]; then cp -R {inp}/. {out}/; fi"]


def fetch_command(layout: Layout, root: str = "/") -> list[str]:
    """After the run: the output folder as a gzipped tar on stdout."""
    return ["tar", "-C", layout.at(layout.out, root), "-czf", "-", "."]


# -- the dataset on a volume ------------------------------------------------------------------

class VolumeProblem(Exception):
    """The volume is missing, empty, or holds no (or several) datasets."""


Lister = Callable[[str], list[tuple[str, bool]]]  # path -> [(name, is_dir)]


def detect_root(list_dir: Lister, explicit: str | None = None) -> str:
    """The dataset root inside a volume: "" (its root) or the one sub-folder that holds
    ``definitions/`` (what ``modal volume put VOL ./flashinfer-trace`` without the trailing slash
    produces). ``explicit``: a path given as ``--modal-volume NAME/PATH``."""
    if explicit:
        sub = explicit.strip("/")
        names = {n for n, is_dir in list_dir(sub) if is_dir}
        if "definitions" not in names:
            raise VolumeProblem(f"its folder /{sub} holds no definitions/ folder")
        return sub
    entries = list_dir("")
    if not entries:
        raise VolumeProblem("it is empty")
    dirs = sorted(n for n, is_dir in entries if is_dir)
    if "definitions" in dirs:
        return ""
    found = []
    for d in dirs[:50]:
        if any(n == "definitions" and is_dir for n, is_dir in list_dir(d)):
            found.append(d)
    if len(found) == 1:
        return found[0]
    listing = ", ".join(sorted(n + ("/" if is_dir else "") for n, is_dir in entries)[:12])
    if found:
        raise VolumeProblem(f"it holds several datasets ({', '.join(found)}); pick one with "
                            f"--modal-volume NAME/{found[0]}")
    raise VolumeProblem(f"neither its root nor a sub-folder holds definitions/ (it has: {listing})")


# -- exit codes -------------------------------------------------------------------------------

def combine_exit_codes(codes: Sequence[int]) -> int:
    """One exit code for several shards: an infrastructure failure first, then pytest's internal
    error, usage error, interruption, test failures; 'no tests collected' only if no shard ran
    any."""
    if any(c not in (0, 1, 2, 3, 4, 5) for c in codes):
        return EXIT_INFRA
    for c in (3, 4, 2, 1):
        if c in codes:
            return c
    if codes and all(c == 5 for c in codes):
        return 5
    return 0
