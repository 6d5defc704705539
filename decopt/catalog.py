"""Every config group's choices and every key's type, default and description, for ``run --help``
and for "did you mean" on a mistyped key or choice.

Read from the source, never imported: the registrations (``decopt.registry``: an algorithm class's
``name`` / ``config`` attributes, a ``register("group", "name", Schema, ...)`` line) of every
component module and plugin, their schema dataclasses (``ast``: fields, annotations, defaults, the
comment beside a field, ``key: ...`` in the class docstring) and the preset YAML in ``conf/``.
Importing the components would import torch, and ``--help`` or a typo would take seconds.
``tests/test_help.py`` checks this view against the imported registry.
"""
from __future__ import annotations

import ast
import difflib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .registry import GROUPS, plugin_modules

ROOT = Path(__file__).resolve().parent
CONF = ROOT / "conf"
SOURCES = ("algorithms", "compressors", "graphs", "problems", "config.py")
NESTED = {"compressor/inner": "compressor.inner"}       # nested groups: group path -> key prefix


@dataclass
class Key:
    name: str
    type: str
    default: object
    help: str = ""


@dataclass
class _Class:
    bases: list
    doc: str
    fields: dict            # name -> Key (this class's own annotations)
    file: Path = None       # where it is defined


def _comment(lines: list[str], lineno: int) -> str:
    """The ``# ...`` text at the end of source line ``lineno`` (1-based), without the ``#``."""
    match = re.search(r"#\s*(.*)$", lines[lineno - 1])
    return match.group(1).strip() if match else ""


class _Expr(str):
    """A default that is no literal (``datasets.LEAF_SYNTHETIC_FILE``): its source text."""


def _value(node):
    try:
        return ast.literal_eval(node)
    except ValueError:
        return _Expr(ast.unparse(node))


def _field(stmt: ast.AnnAssign, lines: list[str]) -> Key:
    name, default, help_ = stmt.target.id, None if stmt.value is None else _value(stmt.value), ""
    call = stmt.value
    if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "field":     # field(default=..., metadata=...)
        kw = {k.arg: k.value for k in call.keywords}
        default = _value(kw["default"]) if "default" in kw else None
        meta = _value(kw["metadata"]) if "metadata" in kw else {}
        help_ = meta.get("help", "") if isinstance(meta, dict) else ""
    return Key(name, ast.unparse(stmt.annotation), default, help_ or _comment(lines, stmt.end_lineno))


def _plugin_files() -> list[Path]:
    """The source files of the plugin modules (found, not imported)."""
    from importlib.util import find_spec

    files = []
    for module in plugin_modules():
        spec = find_spec(module)
        if spec is not None and spec.origin and spec.origin.endswith(".py"):
            files.append(Path(spec.origin))
    return files


@dataclass
class _Index:
    classes: dict           # class name -> _Class (every dataclass of the sources)
    registered: dict        # group -> {choice: schema class name}


def _registration(node) -> tuple | None:
    """``(group, name, schema)`` of ``register("group", "name", Schema, ...)`` or of a class whose
    body sets ``name = "..."`` and ``config = Schema`` (an Algorithm)."""
    if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "register":
        args = node.args
        if len(args) >= 3 and all(isinstance(a, ast.Constant) for a in args[:2]) and isinstance(args[2], ast.Name):
            return args[0].value, args[1].value, args[2].id
    if isinstance(node, ast.ClassDef):
        attrs = {t.id: s.value for s in node.body if isinstance(s, ast.Assign) for t in s.targets
                 if isinstance(t, ast.Name)}
        name, config = attrs.get("name"), attrs.get("config")
        if isinstance(name, ast.Constant) and isinstance(name.value, str) and isinstance(config, ast.Name):
            return "algo", name.value, config.id
    return None


@lru_cache(maxsize=None)
def index() -> _Index:
    """Every dataclass and every registration in decopt's component modules and the plugins'."""
    files = [f for where in SOURCES for f in (sorted((ROOT / where).glob("*.py")) if (ROOT / where).is_dir()
                                                else [ROOT / where])] + _plugin_files()
    found, registered = {}, {group: {} for group in GROUPS}
    for file in files:
        source = file.read_text()
        if not re.search(r"@dataclass|register\(|^    config = ", source, re.M):
            continue                                                # neither schema nor registration: not parsed
        lines = source.splitlines()
        for node in ast.parse(source).body:                         # registrations and schemas are top level
            node = node.value if isinstance(node, ast.Expr) else node
            reg = _registration(node)
            if reg and reg[0] in registered:
                registered[reg[0]][reg[1]] = reg[2]
            if isinstance(node, ast.ClassDef) and any("dataclass" in ast.unparse(d) for d in node.decorator_list):
                own = {s.target.id: _field(s, lines) for s in node.body
                       if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)}
                found[node.name] = _Class([ast.unparse(b) for b in node.bases], ast.get_docstring(node) or "", own,
                                          file)
    for cls in found.values():
        for key in cls.fields.values():
            if isinstance(key.default, _Expr):
                key.default = _constant(cls.file, key.default)
    return _Index(found, registered)


def _constant(file: Path, name: str):
    """The literal value of a default written as a module constant, ``NAME`` (of ``file``) or
    ``module.NAME`` (a sibling module), or ``name`` itself."""
    module, _, attr = name.rpartition(".")
    path = file.parent / f"{module}.py" if module else file
    match = re.search(rf"^{re.escape(attr)}\s*=\s*(.+)$", path.read_text(), re.M) if path.exists() else None
    try:
        return ast.literal_eval(match.group(1).split("  #")[0].strip()) if match else name
    except (ValueError, SyntaxError):
        return name


@lru_cache(maxsize=None)
def _resolved(name: str) -> tuple[dict, str]:
    """A dataclass's fields in dataclass order (bases first, overrides in place) and its docstrings."""
    classes = index().classes
    cls = classes[name]
    keys, docs = {}, ""
    for base in cls.bases:
        if base in classes:
            inherited, doc = _resolved(base)
            keys.update(inherited)
            docs += doc + "\n"
    for key, own in cls.fields.items():
        keys[key] = Key(key, own.type, own.default, own.help or (keys[key].help if key in keys else ""))
    return keys, docs + cls.doc


def _from_doc(doc: str, key: str) -> str:
    """``key: what it is`` in a docstring (up to the next ``;`` or sentence end)."""
    match = re.search(rf"(?<![\w.`]){re.escape(key)}`{{0,2}}: (.+?)(?:;|\.\s|\.$|$)", " ".join(doc.split()))
    return match.group(1).strip() if match else ""


def _yaml(path: Path) -> tuple[list[str], dict, dict, str]:
    """A config file's defaults list, values, per-key comments and leading comment."""
    import yaml

    text = path.read_text()
    data = yaml.safe_load(text) or {}
    comments, head, last = {}, [], None
    for line in text.splitlines():
        top = re.match(r"([A-Za-z_]\w*):.*?#\s*(.*)$", line)
        if top and "'" not in line.split("#")[0] and '"' not in line.split("#")[0]:
            last = top.group(1)
            comments[last] = top.group(2).strip()
        elif re.match(r"\s+#", line) and last in comments:        # a comment continued on the next line
            comments[last] += " " + line.strip().lstrip("#").strip()
        elif line.startswith("#") and not comments and last is None:
            head.append(line.lstrip("#").strip())
        elif re.match(r"[A-Za-z_]\w*:", line):
            last = None
    defaults = [d if isinstance(d, str) else next(iter(d)) + "=" + str(next(iter(d.values())))
                for d in data.pop("defaults", [])]
    return defaults, data, comments, " ".join(head)


def choices(group: str) -> list[str]:
    """The choices of a config group (``algo``, ..., or a nested one: ``compressor/inner``, every
    compressor that wraps no other): the registered ones and the presets in ``conf/<group>/``."""
    if group in NESTED:
        base = group.split("/")[0]
        return sorted(n for n, cls in index().registered[base].items() if "inner" not in _resolved(cls)[0])
    return sorted(set(index().registered.get(group, {})) | {p.stem for p in (CONF / group).glob("*.yaml")})


@lru_cache(maxsize=None)
def choice(group: str, name: str) -> tuple[str, list[Key]]:
    """``(description, keys)`` of ``group=name``: its schema's fields with their defaults and
    descriptions, and the values and comments a preset YAML gives them."""
    base = group.split("/")[0]
    if group in NESTED:
        return choice(base, name)
    path = CONF / group / f"{name}.yaml"
    defaults, values, comments, head = _yaml(path) if path.exists() else ([f"/schema/{base}/{name}"], {}, {}, "")
    keys, doc, nested = {}, "", []
    for entry in defaults:
        target = entry.split("@")[0]
        if target.startswith(f"/schema/{base}/"):
            schema = target.rsplit("/", 1)[1]
            cls = index().registered[base][schema]
            keys, docs = _resolved(cls)
            keys = {k: Key(k, v.type, schema if k == "name" else v.default, v.help or _from_doc(docs, k))
                    for k, v in keys.items()}
            shared = list(index().registered[base].values()).count(cls) > 1
            doc = _from_doc(docs, f"``{schema}``") if shared else index().classes[cls].doc   # ``ring``: a cycle
        elif target.startswith(f"/{base}/"):                              # another choice's file (qsgd8: qsgd)
            parent_head, parent = choice(base, target.rsplit("/", 1)[1])
            keys, head = {k.name: k for k in parent}, head or parent_head
        elif "=" in entry:
            nested.append(entry)                                          # inner=none
    for k, v in values.items():
        old = keys.get(k, Key(k, type(v).__name__, v))
        keys[k] = Key(k, old.type, v, comments.get(k) or old.help)
    for entry in nested:
        sub, pick = entry.split("=")
        old = keys.get(sub, Key(sub, "", None))
        keys[sub] = Key(sub, f"group {base}/{sub}", pick, old.help or f"choose with {base}/{sub}=...")
    return _one_line(head or doc), list(keys.values())


def _one_line(text: str, width: int = 110) -> str:
    """The first sentence of ``text`` on one line, at most ``width`` characters."""
    line = " ".join(text.split())
    line = re.split(r"(?<!\bal\.)(?<!\bExp\.)(?<!\beqs\.)(?<!\beq\.)(?<!\be\.g\.)(?<!\bi\.e\.)(?<=\.)\s", line, maxsplit=1)[0]   # not at "et al.", "Exp.", "eqs."
    return line if len(line) <= width else line[:width - 3].rstrip() + "..."


@lru_cache(maxsize=None)
def run_keys() -> list[Key]:
    """The ``run`` keys: RunConfig's fields, described by their comments."""
    keys, doc = _resolved("RunConfig")
    return [Key(k, v.type, v.default, v.help or _from_doc(doc, k)) for k, v in keys.items()]


def default_choices() -> dict:
    """``{group: choice}`` of config.yaml's defaults list."""
    defaults, _, _, _ = _yaml(CONF / "config.yaml")
    return dict(d.split("=", 1) for d in defaults if "=" in d and d.split("=")[0] in GROUPS)


def suggest(word: str, options) -> str:
    """``; did you mean X?`` for the closest of ``options``, or ``''``."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


HELP = """decopt: decentralized optimization with compressed messages, stacked or over MPI.

  python -m decopt run [group=choice ...] [key=value ...]     one job
  python -m decopt run -m algo=dsgd,choco run.seed=0,1,2      a sweep (prints its directory)
  python -m decopt resume RUN_DIR [run.iterations=N ...]      continue an interrupted run in place
  python -m decopt run algo=choco --help                      only the keys of the choices given
  mpirun -n 4 python -m decopt run graph.n=16 ...             MPI ranks hold blocks of agents

Keys are written key=value (run.iterations=500), never --iterations 500. Types: X | None accepts null.
"""


def _key_line(prefix: str, key: Key) -> str:
    shown = "null" if key.default is None else str(key.default).lower() if isinstance(key.default, bool) \
        else key.default
    return f"    {prefix}{key.name}: {key.type} = {shown}" + (f"  # {key.help}" if key.help else "")


def help_text(picked: dict | None = None) -> str:
    """The ``run --help`` page: every group's choices (each with its description) and every key with its
    type, default and description; ``picked`` (``{group: choice}``) narrows a group to one choice."""
    picked = picked or {}
    out = [HELP]
    defaults = default_choices()
    for group in GROUPS + tuple(NESTED):
        names = [picked[group]] if group in picked else choices(group)
        prefix = NESTED.get(group, group) + "."
        default = f", default {defaults[group]}" if group in defaults else ""
        out.append(f"== {group}=CHOICE ({', '.join(choices(group))}{default}) ==")
        parts = {name: choice(group, name) for name in names}
        shared = [k.name for k in next(iter(parts.values()))[1] if k.name != "name" and len(parts) > 1 and
                  all(any((o.name, o.type, o.default) == (k.name, k.type, k.default) for o in keys)
                      for _, keys in parts.values())]
        if shared:
            out.append(f"  every {group}:")
            everywhere = [o for _, keys in parts.values() for o in keys if o.name in shared]
            out.extend(_key_line(prefix, max((o for o in everywhere if o.name == name), key=lambda o: len(o.help)))
                       for name in shared)
        for name, (about, keys) in parts.items():
            out.append(f"  {name}: {about}" if about else f"  {name}")
            out.extend(_key_line(prefix, k) for k in keys if k.name != "name" and k.name not in shared)
        out.append("")
    out.append("== run (the loop) ==")
    out.extend(_key_line("run.", k) for k in run_keys())
    out.append("\nHydra's own options: --hydra-help; the composed config: --cfg job")
    return "\n".join(out) + "\n"
