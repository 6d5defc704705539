"""Every config group's choices and every key's type, default and description, for ``run --help``
and for "did you mean" on a mistyped key or choice.

Read from the source, never imported: the schema dataclasses (``ast``: fields, annotations,
defaults, the comment beside a field, ``key: ...`` in the class docstring) and the ``conf/`` YAML
(the values a choice sets and their comments). Importing the schemas would import torch, and
``--help`` or a typo would take seconds. The dataclasses stay the single source of truth:
``tests/test_help.py`` checks this catalog against the imported ones.
"""
from __future__ import annotations

import ast
import difflib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent
CONF = ROOT / "conf"
GROUPS = ("algo", "graph", "compressor", "problem", "backend")
PACKAGES = {"algo": "algorithms", "graph": "graphs", "compressor": "compressors", "problem": "problems",
            "backend": "config.py", "run": "config.py"}
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


def _comment(lines: list[str], lineno: int) -> str:
    """The ``# ...`` text at the end of source line ``lineno`` (1-based), without the ``#``."""
    match = re.search(r"#\s*(.*)$", lines[lineno - 1])
    return match.group(1).strip() if match else ""


def _value(node):
    try:
        return ast.literal_eval(node)
    except ValueError:
        return ast.unparse(node)


def _field(stmt: ast.AnnAssign, lines: list[str]) -> Key:
    name, default, help_ = stmt.target.id, None if stmt.value is None else _value(stmt.value), ""
    call = stmt.value
    if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "field":     # field(default=..., metadata=...)
        kw = {k.arg: k.value for k in call.keywords}
        default = _value(kw["default"]) if "default" in kw else None
        meta = _value(kw["metadata"]) if "metadata" in kw else {}
        help_ = meta.get("help", "") if isinstance(meta, dict) else ""
    return Key(name, ast.unparse(stmt.annotation), default, help_ or _comment(lines, stmt.end_lineno))


@lru_cache(maxsize=None)
def _classes(where: str) -> dict[str, _Class]:
    """Every dataclass defined in ``decopt/<where>`` (a package or one module), by class name."""
    path = ROOT / where
    found = {}
    for file in sorted(path.glob("*.py")) if path.is_dir() else [path]:
        source = file.read_text()
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ClassDef) and any("dataclass" in ast.unparse(d) for d in node.decorator_list):
                own = {s.target.id: _field(s, lines) for s in node.body
                       if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)}
                found[node.name] = _Class([ast.unparse(b) for b in node.bases], ast.get_docstring(node) or "", own)
    return found


def _resolved(classes: dict, name: str) -> tuple[dict, str]:
    """A dataclass's fields in dataclass order (bases first, overrides in place) and its docstrings."""
    cls = classes[name]
    keys, docs = {}, ""
    for base in cls.bases:
        if base in classes:
            inherited, doc = _resolved(classes, base)
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
    """The choices of a config group (``algo``, ..., or a nested one: ``compressor/inner``)."""
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@lru_cache(maxsize=None)
def choice(group: str, name: str) -> tuple[str, list[Key]]:
    """``(description, keys)`` of ``group=name``: the schema's fields with the values and comments
    the YAML chain gives them."""
    base = group.split("/")[0]
    defaults, values, comments, head = _yaml(CONF / group / f"{name}.yaml")
    keys, doc, nested = {}, "", []
    for entry in defaults:
        target = entry.split("@")[0]
        if target.startswith(f"/schema/{base}/"):
            classes, schema = _classes(PACKAGES[base]), target.rsplit("/", 1)[1]
            cls, own = schema_class(schema, classes)
            keys, doc = _resolved(classes, cls)
            keys = {k: Key(k, v.type, schema if k == "name" else v.default, v.help or _from_doc(doc, k))
                    for k, v in keys.items()}
            doc = classes[cls].doc if own else ""      # a base's docstring describes no one choice
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


def schema_class(schema: str, classes: dict) -> tuple[str, bool]:
    """The dataclass registered as ``schema/<group>/<schema>`` and whether it is that choice's own:
    the one whose ``name`` defaults to it, else the group's base schema (``graph=path``: GraphConfig)."""
    named = [c for c in classes if _resolved(classes, c)[0].get("name", Key("", "", None)).default == schema]
    if named:
        return named[0], True
    roots = [c for c, info in classes.items() if "name" in info.fields and not set(info.bases) & set(classes)]
    return roots[0], False


def _one_line(text: str, width: int = 110) -> str:
    """The first sentence of ``text`` on one line, at most ``width`` characters."""
    line = " ".join(text.split())
    line = re.split(r"(?<!\bal\.)(?<!\bExp\.)(?<!\beqs\.)(?<!\beq\.)(?<!\be\.g\.)(?<!\bi\.e\.)(?<=\.)\s", line, maxsplit=1)[0]   # not at "et al.", "Exp.", "eqs."
    return line if len(line) <= width else line[:width - 3].rstrip() + "..."


@lru_cache(maxsize=None)
def run_keys() -> list[Key]:
    """The ``run`` keys: RunConfig's fields, described by their comments (or config.yaml's)."""
    classes = _classes(PACKAGES["run"])
    keys, doc = _resolved(classes, "RunConfig")
    _, values, comments, _ = _yaml(CONF / "config.yaml")
    run_comments = _run_comments()
    return [Key(k, v.type, values.get("run", {}).get(k, v.default),
                v.help or run_comments.get(k) or comments.get(k) or _from_doc(doc, k)) for k, v in keys.items()]


def _run_comments() -> dict:
    """Comments beside the ``run:`` keys of config.yaml (indented, continued lines joined)."""
    found, last, inside = {}, None, False
    for line in (CONF / "config.yaml").read_text().splitlines():
        if re.match(r"\S", line):
            inside = line.startswith("run:")
            continue
        key = re.match(r"\s+([A-Za-z_]\w*):.*?#\s*(.*)$", line)
        if inside and key:
            last = key.group(1)
            found[last] = key.group(2).strip()
        elif inside and re.match(r"\s+#", line) and last:
            found[last] += " " + line.strip().lstrip("#").strip()
        elif inside:
            last = None
    return found


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
