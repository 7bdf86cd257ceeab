"""Check gpugraph against real TensorFlow in the same Python process.

gpugraph never imports TensorFlow; this script (like ``make_fixtures.py``) is
run with the TF environment and checks three things:

1. Co-import, both orders: ``import tensorflow; import gpugraph`` and
   ``import gpugraph; import tensorflow``, each in a fresh subprocess, then
   both libraries used together (gpugraph imports TF's MetaGraphDef object,
   TF imports the bytes gpugraph exported).  Descriptor-pool errors are
   printed verbatim.
2. For every fixture case in ``tests/fixtures/meta/``: gpugraph imports the
   case's ``.meta`` and exports it (binary and ``as_text=True``); TF's
   ``tf.compat.v1.train.import_meta_graph`` imports gpugraph's file in a fresh
   ``tf.Graph()`` and must see the same ops (name, type, device, inputs,
   sorted control inputs), the same op attributes and colocation, the same
   collection keys and sizes and the same returned Saver's ``saver_def`` as
   when it imports the original file.
3. ``export_scope``: gpugraph imports each case under ``import_scope="net"``
   and exports with ``export_scope="net"``; TF re-imports that under
   ``import_scope="net2"``.  Op names must be the originals prefixed with
   ``net2/``, and ops, attrs, collections and the Saver must match what TF
   gets from TF's own round trip (TF import under "net", TF export with
   ``export_scope="net"``, TF import under "net2").

Each check prints one ``PASS``/``FAIL`` line (failures are followed by the
exact differences or traceback); the exit status is 1 if any check failed.

Run it from the repository root::

    PYTHONPATH=. /work/tfenv/bin/python scripts/check_with_tf.py

or after regenerating the fixtures::

    /work/tfenv/bin/python scripts/make_fixtures.py --check-gpugraph
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "meta"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MAX_DIFF_LINES = 25
SKIPPED_ATTRS = {"_output_shapes", "_class"}  # shapes are re-inferred; _class is colocation


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------

class Report:
    """Collects check results and prints one PASS/FAIL line per check."""

    def __init__(self):
        self.failures = []
        self.count = 0

    def record(self, name, problems):
        """Prints PASS if ``problems`` (a list of lines) is empty, else FAIL and the lines."""
        self.count += 1
        if not problems:
            print(f"PASS  {name}", flush=True)
            return
        self.failures.append(name)
        print(f"FAIL  {name}", flush=True)
        shown = problems[:MAX_DIFF_LINES]
        for line in shown:
            print("      " + line.replace("\n", "\n      "))
        if len(problems) > len(shown):
            print(f"      ... and {len(problems) - len(shown)} more difference(s)")
        sys.stdout.flush()

    def run(self, name, func, *args):
        """Records ``func(*args)`` (a list of problems); an exception is a failure."""
        try:
            problems = func(*args)
        except Exception:  # report, never abort the remaining checks
            problems = ["exception:\n" + traceback.format_exc().rstrip()]
        self.record(name, problems)

    def summary(self):
        """Prints the summary line and returns the exit status."""
        failed = len(self.failures)
        print(f"\n{self.count - failed}/{self.count} checks passed, {failed} failed.")
        for name in self.failures:
            print(f"  failed: {name}")
        return 1 if failed else 0


# ---------------------------------------------------------------------------
# 1. Co-import in both orders (subprocesses)
# ---------------------------------------------------------------------------

CO_IMPORT_BODY = '''
import tempfile, os
tf1 = tensorflow.compat.v1
gg = gpugraph

graph = tf1.Graph()
with graph.as_default():
    x = tf1.placeholder(tf1.float32, [None, 2], name="x")
    w = tf1.get_variable("w", [2, 1], initializer=tf1.ones_initializer())
    y = tf1.identity(tf1.matmul(x, w), name="y")
    tf1.add_to_collection("outputs", y)
    tf_meta = tf1.train.Saver().export_meta_graph()
tf_ops = sorted(op.name for op in graph.get_operations())
assert type(tf_meta).__module__.startswith("tensorflow"), type(tf_meta)

g = gg.Graph()
with g.as_default():
    saver = gg.train.import_meta_graph(tf_meta)  # TF's own MetaGraphDef object
    gg_ops = sorted(op.name for op in g.get_operations())
    assert gg_ops == tf_ops, ("gpugraph ops differ", gg_ops, tf_ops)
    assert saver is not None, "gpugraph returned no Saver"
    assert len(gg.get_collection("outputs")) == 1
    gg_meta = saver.export_meta_graph()

data = gg_meta.SerializeToString()
for source in ("bytes", "file"):
    tf_graph = tf1.Graph()
    with tf_graph.as_default():
        if source == "bytes":
            tf_saver = tf1.train.import_meta_graph(tf1.MetaGraphDef.FromString(data))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "gg.meta")
                with open(path, "wb") as f:
                    f.write(data)
                tf_saver = tf1.train.import_meta_graph(path)
    back = sorted(op.name for op in tf_graph.get_operations())
    assert back == tf_ops, ("TF re-import differs", source, back, tf_ops)
    assert tf_saver is not None and tf_saver.saver_def == tf_meta.saver_def, source
    assert len(tf_graph.get_collection("outputs")) == 1
print("OK: %d ops both ways" % len(tf_ops))
'''

ORDERS = {
    "tensorflow then gpugraph": "import tensorflow\nimport gpugraph\n",
    "gpugraph then tensorflow": "import gpugraph\nimport tensorflow\n",
}


def subprocess_env():
    """Environment for the co-import subprocesses: gpugraph importable, TF quiet."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def check_co_import(imports):
    """Runs the co-import snippet in a fresh interpreter; problems are its verbatim output."""
    proc = subprocess.run([sys.executable, "-c", imports + CO_IMPORT_BODY],
                          capture_output=True, text=True, env=subprocess_env(),
                          cwd=str(ROOT), timeout=600)
    if proc.returncode == 0 and "OK:" in proc.stdout:
        return []
    output = (proc.stdout + proc.stderr).rstrip()
    problems = [f"exit status {proc.returncode}; output verbatim:\n{output}"]
    if "descriptor" in output.lower() or "pool" in output.lower():
        problems.insert(0, "descriptor-pool error (see output)")
    return problems


# ---------------------------------------------------------------------------
# TF side: import and describe
# ---------------------------------------------------------------------------

def tf_module():
    """``tensorflow.compat.v1`` with v2 behavior off (as in make_fixtures.py)."""
    import tensorflow.compat.v1 as tf
    tf.get_logger().setLevel("ERROR")
    tf.disable_v2_behavior()
    return tf


def tf_import(path, import_scope=None):
    """TF imports ``path`` into a fresh graph: ``(graph, saver)``."""
    tf = tf_module()
    graph = tf.Graph()
    with graph.as_default():
        saver = tf.train.import_meta_graph(str(path), import_scope=import_scope)
    return graph, saver


def describe_ops(graph):
    """{op name: {type, device, inputs, control_inputs}} as TF sees the graph."""
    return {op.name: {"type": op.type,
                      "device": op.device,
                      "inputs": [t.name for t in op.inputs],
                      "control_inputs": sorted(c.name for c in op.control_inputs)}
            for op in graph.get_operations()}


def describe_attrs(graph):
    """{op name: {"colocation": [...], attr: text}} (attrs other than SKIPPED_ATTRS)."""
    out = {}
    for op in graph.get_operations():
        attrs = {k: str(v).strip() for k, v in op.node_def.attr.items()
                 if k not in SKIPPED_ATTRS}
        attrs["colocation"] = [g.decode() for g in op.colocation_groups()]
        out[op.name] = attrs
    return out


def describe_collections(graph):
    """{collection key: number of items}."""
    return {key: len(graph.get_collection(key))
            for key in sorted(graph.get_all_collection_keys())}


def saver_def_text(saver_def):
    """A SaverDef (TF's or gpugraph's class) as TF text, or None."""
    if saver_def is None:
        return None
    tf = tf_module()
    return str(tf.train.SaverDef.FromString(saver_def.SerializeToString())).strip()


def tf_saver_def(saver):
    return None if saver is None else saver.saver_def


# ---------------------------------------------------------------------------
# Diffs
# ---------------------------------------------------------------------------

def diff_maps(label, want, got):
    """Lines describing how ``got`` differs from ``want`` (both dicts keyed by name)."""
    problems = [f"{label} missing in gpugraph's export: {k!r}" for k in want if k not in got]
    problems += [f"{label} extra in gpugraph's export: {k!r}" for k in got if k not in want]
    for key in want:
        if key in got and want[key] != got[key]:
            problems.append(f"{label} {key!r}: {field_diff(want[key], got[key])}")
    return problems


def field_diff(want, got):
    """Field-by-field difference of two values (dicts are compared per key)."""
    if not (isinstance(want, dict) and isinstance(got, dict)):
        return f"TF-ref={want!r} vs via-gpugraph={got!r}"
    parts = []
    for k in sorted(set(want) | set(got)):
        if want.get(k) != got.get(k):
            parts.append(f"{k}: TF-ref={want.get(k, '<absent>')!r} "
                         f"vs via-gpugraph={got.get(k, '<absent>')!r}")
    return "; ".join(parts)


def diff_text(label, want, got):
    """Difference of two texts (or None) as one problem line, or none."""
    if want == got:
        return []
    return [f"{label}:\n--- TF reference\n{want}\n--- via gpugraph\n{got}"]


# ---------------------------------------------------------------------------
# gpugraph side
# ---------------------------------------------------------------------------

def gg_roundtrip(meta_path, out_path, as_text=False, import_scope=None, export_scope=None):
    """gpugraph imports ``meta_path``, exports it to ``out_path``; returns its Saver's SaverDef."""
    import gpugraph as gg
    graph = gg.Graph()
    with graph.as_default():
        saver = gg.train.import_meta_graph(str(meta_path), import_scope=import_scope)
        if saver is not None:
            saver.export_meta_graph(str(out_path), as_text=as_text, export_scope=export_scope)
        else:
            gg.train.export_meta_graph(str(out_path), as_text=as_text,
                                       export_scope=export_scope)
    return None if saver is None else saver.saver_def


def compare_graphs(ref, ref_saver, new, new_saver):
    """{aspect: problems} comparing two TF graphs (TF reference vs via gpugraph)."""
    return {
        "ops (name,type,device,inputs,control_inputs)":
            diff_maps("op", describe_ops(ref), describe_ops(new)),
        "op attrs + colocation":
            diff_maps("op", describe_attrs(ref), describe_attrs(new)),
        "collection keys/sizes":
            diff_maps("collection", describe_collections(ref), describe_collections(new)),
        "returned Saver's saver_def":
            diff_text("saver_def", saver_def_text(tf_saver_def(ref_saver)),
                      saver_def_text(tf_saver_def(new_saver))),
    }


class Roundtrip:
    """One gpugraph export of a case, re-imported by TF; computed once, checked per aspect."""

    def __init__(self, meta_path, out_path, as_text=False, scoped=False):
        self.meta_path, self.out_path = meta_path, out_path
        self.as_text, self.scoped = as_text, scoped
        self.results = None

    def compute(self):
        """Fills ``self.results`` ({aspect: problems}); raises on import/export errors."""
        scope_in, scope_out, tf_scope = ("net", "net", "net2") if self.scoped else (None,) * 3
        gg_saver_def = gg_roundtrip(self.meta_path, self.out_path, self.as_text,
                                    import_scope=scope_in, export_scope=scope_out)
        ref_path = self.meta_path
        if self.scoped:  # TF's own round trip is the reference (see tf_scoped_roundtrip)
            ref_path = tf_scoped_roundtrip(self.meta_path, self.out_path.with_suffix(".tf.meta"))
        ref, ref_saver = tf_import(ref_path, import_scope=tf_scope)
        new, new_saver = tf_import(self.out_path, import_scope=tf_scope)
        self.results = compare_graphs(ref, ref_saver, new, new_saver)
        if self.scoped:
            self.results["op names = originals under net2/"] = scoped_names(self.meta_path, new)
        _, tf_saver = tf_import(self.meta_path, import_scope=scope_in)
        self.results["gpugraph's own Saver.saver_def = TF's"] = diff_text(
            "saver_def (gpugraph's returned Saver vs TF's)",
            saver_def_text(tf_saver_def(tf_saver)), saver_def_text(gg_saver_def))


def tf_scoped_roundtrip(meta_path, out_path):
    """TF does what check 3 asks of gpugraph: import under "net", export with export_scope "net".

    This, not the original file, is the reference for check 3: TF's
    ``Saver.export_meta_graph(export_scope=...)`` keeps the scope in the
    SaverDef, so TF itself re-imports the Saver as ``net2/net/save/...``.
    """
    tf = tf_module()
    graph = tf.Graph()
    with graph.as_default():
        saver = tf.train.import_meta_graph(str(meta_path), import_scope="net")
        if saver is not None:
            saver.export_meta_graph(str(out_path), export_scope="net")
        else:
            tf.train.export_meta_graph(str(out_path), export_scope="net")
    return out_path


def scoped_names(meta_path, new):
    """Problems if ``new``'s op names aren't ``net2/`` + the original names."""
    original, _ = tf_import(meta_path)
    want = sorted("net2/" + op.name for op in original.get_operations())
    got = sorted(op.name for op in new.get_operations())
    problems = [f"missing op {n!r}" for n in sorted(set(want) - set(got))]
    return problems + [f"extra op {n!r}" for n in sorted(set(got) - set(want))]


# ---------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------

def fixture_cases(only=None):
    """{case: .meta path} from ``tests/fixtures/meta/*.json`` (optionally filtered)."""
    cases = {}
    for path in sorted(FIXTURES.glob("*.json")):
        record = json.loads(path.read_text())
        if "meta_file" in record and (not only or record["case"] in only):
            cases[record["case"]] = FIXTURES / record["meta_file"]
    return cases


def check_roundtrip(report, label, roundtrip):
    """Runs one round trip and records one line per aspect (or one failure if it raised)."""
    try:
        roundtrip.compute()
    except Exception:
        report.record(f"{label} gpugraph import/export + TF re-import",
                      ["exception:\n" + traceback.format_exc().rstrip()])
        return
    for aspect, problems in roundtrip.results.items():
        report.record(f"{label} {aspect}", problems)


def check_cases(report, cases, tmp):
    """Checks 2 and 3 for every case."""
    for case, meta_path in cases.items():
        for variant, as_text in (("binary", False), ("text", True)):
            out = tmp / f"{case}.{variant}.meta"
            check_roundtrip(report, f"[export {case} {variant}]",
                            Roundtrip(meta_path, out, as_text=as_text))
        out = tmp / f"{case}.scoped.meta"
        check_roundtrip(report, f"[export_scope {case} net->net2]",
                        Roundtrip(meta_path, out, scoped=True))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", action="append", dest="cases",
                        help="only this fixture case (repeatable); default: all")
    parser.add_argument("--skip-co-import", action="store_true",
                        help="skip check 1 (the co-import subprocesses)")
    parser.add_argument("--keep", metavar="DIR",
                        help="write gpugraph's exports to DIR instead of a temp dir")
    return parser.parse_args(argv)


def main(argv=None):
    """Runs all checks (``argv``: options, default ``sys.argv[1:]``); returns 0 or 1."""
    args = parse_args(argv)
    report = Report()
    print("== 1. co-import, both orders ==")
    if args.skip_co_import:
        print("(skipped)")
    else:
        for order, imports in ORDERS.items():
            report.run(f"[co-import] {order}", check_co_import, imports)
    cases = fixture_cases(args.cases)
    print(f"== 2./3. gpugraph exports re-imported by TF ({len(cases)} cases) ==")
    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=True)
        check_cases(report, cases, Path(args.keep))
    else:
        with tempfile.TemporaryDirectory(prefix="gg_check_") as tmp:
            check_cases(report, cases, Path(tmp))
    return report.summary()


if __name__ == "__main__":
    sys.exit(main())
