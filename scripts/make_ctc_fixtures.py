"""Generate golden fixtures of the CTC ops with real TensorFlow.

Writes ``tests/fixtures/ops/ctc.pb``, ``ctc.npz`` and ``ctc.json`` in the
per-op fixture format of make_op_fixtures.py (see its docstring: case ``i``
under ``c<i>/``, placeholders ``c<i>/in<j>``, the op ``c<i>/op``), whose
helpers it uses; tests/runtime/test_ops_against_tf.py runs the family like
the others.  Run it with the pinned TF environment::

    /work/tfenv/bin/python scripts/make_ctc_fixtures.py

(make_op_fixtures.py run without arguments deletes tests/fixtures/ops/, these
files included: run this script again after it.)  Determinism as there: fixed
numpy seed, single-threaded session, byte-identical files on every run.

Ops: CTCLoss, CTCLossV2, CTCGreedyDecoder, CTCBeamSearchDecoder.

Notes on TF 2.21 CPU behaviour the cases pin down
------------------------------------------------
* CTCLoss: blank = classes - 1; the loss is -log p(labels | logits) and the
  gradient is w.r.t. the logits (softmax - posterior), zero from
  sequence_length on.  Label values >= classes - 1 end a label (a later
  smaller one is an error); the time check compares the raw label count
  (before preprocess_collapse_repeated, not counting the blanks repeats
  need) with sequence_length, so a label whose repeats do not fit has loss
  inf and gradient = softmax.  ignore_longer_outputs_than_inputs (and
  sequence_length 0) give loss 0 and a zero gradient.  A label of blank
  values only gives TF's l' = [blank], whose backward pass starts
  log_beta(0, T-2) at 0 (an out-of-matrix write; T = 1 crashes TF, so no
  case).  TF flushes denormals: a class whose logit is ~87 below the largest
  has probability 0, so a label on it has loss inf.  Empty labels, negative
  labels, unsorted or out-of-range label indices, sequence_length outside
  [0, max_time] raise InvalidArgumentError.
* CTCLossV2 (blank 0, logits in) has no CPU kernel in TF 2.21, only cuDNN's
  (a graph holding one cannot even start a CPU session).  Its cases hold
  what TF's own tf.nn.ctc_loss computes off the GPU: CTCLoss on the logits
  with class 0 moved last and labels - 1, the gradient moved back (computed
  eagerly with CTCLoss).  They are built as CTCLoss nodes, which the written
  GraphDef turns into CTCLossV2 nodes (same inputs and attrs, no ``T``).
* CTCGreedyDecoder: each step's first maximum (a NaN wins only in column 0);
  log_probability = -(sum of the maxima of raw logits); blank_index may be
  negative (counted from the end); a bad one is InvalidArgumentError, a
  sequence_length > max_time a FailedPreconditionError.
* CTCBeamSearchDecoder: blank = classes - 1; log_probability is the beam's
  log probability (not negated); merge_repeated merges equal consecutive
  labels of a beam even where a blank separated them.  Equal probabilities
  (integer or uniform logits) come out in gtl::TopN's (libstdc++ heap and
  sort) order.  top_paths > beam_width, and fewer beam entries than
  top_paths (sequence_length 0), are InvalidArgumentErrors.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_op_fixtures as mof  # noqa: E402
from make_op_fixtures import F32, F64, f32, i32, i64  # noqa: E402

import numpy as np  # noqa: E402

NAN = np.nan


def sparse_labels(labels):
    """[[b, t], ...] int64 indices and int32 values of per-entry label lists."""
    rows = [[b, t] for b, label in enumerate(labels) for t in range(len(label))]
    values = [v for label in labels for v in label]
    return i64(rows).reshape(-1, 2), i32(values)


def random_labels(F, lengths, classes, low=0):
    return [F.ri([n], low, classes).tolist() for n in lengths]


def loss_args(x, labels, seq_len):
    indices, values = sparse_labels(labels)
    return dict(inputs=x, labels_indices=indices, labels_values=values,
                sequence_length=i32(seq_len))


def build_loss(F):
    x = F.n([12, 4, 7], F32, 2.0)
    F.add("CTCLoss", "4 entries: different input and label lengths, zero "
          "gradient past sequence_length",
          **loss_args(x, random_labels(F, [5, 3, 1, 6], 6), [12, 9, 6, 12]))
    F.add("CTCLoss", "double: LogSumExp's correction is float32 in TF",
          **loss_args(F.n([9, 3, 5], F64, 2.0),
                      random_labels(F, [4, 2, 3], 4), [9, 7, 5]))
    repeats = [[1, 1, 2, 2, 2, 3], [0, 0], [2, 3, 3, 1]]
    x = F.n([10, 3, 5], F32, 2.0)
    for collapse, merge in ((False, True), (True, True), (False, False),
                            (True, False)):
        F.add("CTCLoss", "repeated labels",
              **loss_args(x, repeats, [10, 6, 9]),
              preprocess_collapse_repeated=collapse, ctc_merge_repeated=merge)
    F.add("CTCLoss", "no valid path: [1,1,1] needs 5 steps, has 4 (loss inf, "
          "gradient = softmax)",
          **loss_args(F.n([4, 2, 4]), [[1, 1, 1], [2]], [4, 4]))
    F.add("CTCLoss", "labels longer than the input, and an empty input, "
          "ignored: loss 0, zero gradient",
          **loss_args(F.n([6, 3, 5]), [[1, 2], [0, 1, 2, 3, 0], [3]],
                      [6, 3, 0]),
          ignore_longer_outputs_than_inputs=True)
    F.add("CTCLoss", "label values >= classes - 1 end the label",
          **loss_args(F.n([7, 2, 5]), [[2, 0, 4, 4], [1, 9]], [7, 6]))
    F.add("CTCLoss", "a label of blanks only: TF's log_beta(0, T-2) starts "
          "at 0", **loss_args(F.n([6, 2, 5]), [[1, 3], [4]], [6, 5]))
    F.add("CTCLoss", "one time step",
          **loss_args(F.n([1, 2, 4]), [[2], [0]], [1, 1]))
    F.add("CTCLoss", "long sequences",
          **loss_args(F.n([60, 3, 20], F32, 3.0),
                      random_labels(F, [25, 18, 10], 19), [60, 45, 30]))
    far = F.n([5, 2, 6])
    far[:, 0, 0] += 95.0  # other classes of entry 0: probability < 2^-126
    far[:, 1, 1] -= 100.0  # entry 1's label class: probability 0
    F.add("CTCLoss", "denormals flush to zero: entry 1's label has "
          "probability 0 (loss inf)", **loss_args(far, [[0], [1]], [5, 5]))


def build_loss_errors(F):
    x = F.n([5, 2, 4])

    def bad(desc, labels=None, seq_len=(5, 4), indices=None, values=None,
            inputs=x, **attrs):
        args = loss_args(inputs, labels or [[1, 2], [0]], list(seq_len))
        if indices is not None:
            args["labels_indices"] = indices
        if values is not None:
            args["labels_values"] = values
        F.add("CTCLoss", desc, **args, **attrs, _error=True)

    bad("label longer than the input", [[1, 2], [0, 1, 2]], (5, 2))
    bad("empty label", indices=i64([[0, 0], [0, 1]]), values=i32([1, 2]))
    bad("negative label", [[1, -2], [0]])
    bad("label after a blank", [[1, 3, 1], [0]])
    bad("label indices out of order", indices=i64([[1, 0], [0, 0], [0, 1]]),
        values=i32([0, 1, 2]))
    bad("label batch index out of range",
        indices=i64([[0, 0], [0, 1], [2, 0]]), values=i32([1, 2, 0]))
    bad("sequence_length > max_time", seq_len=(5, 6))
    bad("negative sequence_length", seq_len=(5, -1))
    bad("labels_indices with 3 columns",
        indices=i64([[0, 0, 0], [0, 1, 0], [1, 0, 0]]))
    bad("labels_indices and labels_values rows differ", values=i32([1, 2]))
    bad("max_time 0", inputs=np.zeros((0, 2, 4), F32), seq_len=(0, 0))


def build_loss_v2(F):
    def add(desc, x, labels, seq_len):
        args = loss_args(x, labels, seq_len)
        # TF runs CTCLossV2 on cuDNN only; the reference is tf.nn.ctc_loss's
        # CPU path: CTCLoss with the blank (class 0) moved last
        loss, grad = mof.ev("CTCLoss", inputs=np.roll(x, -1, axis=2),
                            labels_indices=args["labels_indices"],
                            labels_values=args["labels_values"] - 1,
                            sequence_length=args["sequence_length"])
        F.add("CTCLoss", desc + "; TF's CPU path of tf.nn.ctc_loss "
              "(CTCLoss with the blank moved last)", **args,
              _v2=[loss, np.roll(grad, 1, axis=2)])

    add("blank 0", F.n([10, 3, 6], F32, 2.0),
        random_labels(F, [4, 2, 5], 6, low=1), [10, 7, 8])
    add("repeated labels, shorter sequences", F.n([8, 2, 4], F32, 2.0),
        [[1, 1, 3], [2, 2]], [8, 5])


def build_greedy(F):
    x = F.n([8, 3, 6], F32, 2.0)
    F.add("CTCGreedyDecoder", "an empty sequence",
          inputs=x, sequence_length=i32([8, 5, 0]), merge_repeated=True)
    F.add("CTCGreedyDecoder", inputs=F.ri([8, 3, 4], 0, 3).astype(F32),
          sequence_length=i32([8, 6, 7]), merge_repeated=False)
    F.add("CTCGreedyDecoder", "blank first", inputs=x,
          sequence_length=i32([8, 8, 4]), merge_repeated=True, blank_index=0)
    F.add("CTCGreedyDecoder", "blank in the middle, from the end",
          inputs=F.ri([8, 2, 5], 0, 4).astype(F32),
          sequence_length=i32([8, 7]), merge_repeated=True, blank_index=-3)
    F.add("CTCGreedyDecoder", inputs=F.n([6, 2, 5], F64),
          sequence_length=i32([6, 3]), merge_repeated=True)
    F.add("CTCGreedyDecoder", "ties: the first maximum; NaN wins only in "
          "column 0", inputs=f32([[[1, 1, 0, 0]], [[NAN, 2, 2, 0]],
                                  [[0, NAN, 3, 3]], [[0, 0, 0, 0]]]),
          sequence_length=i32([4]), merge_repeated=False)
    F.add("CTCGreedyDecoder", "blank_index out of range", inputs=x,
          sequence_length=i32([8, 5, 0]), blank_index=6, _error=True)
    F.add("CTCGreedyDecoder", "sequence_length > max_time", inputs=x,
          sequence_length=i32([8, 9, 0]), _error=True)


def build_beam(F):
    x = F.n([10, 3, 6], F32, 2.0)
    F.add("CTCBeamSearchDecoder", "an empty sequence", inputs=x,
          sequence_length=i32([10, 7, 0]), beam_width=4, top_paths=1)
    x = F.n([12, 2, 5], F32, 2.0)
    for merge in (False, True):
        F.add("CTCBeamSearchDecoder", inputs=x, sequence_length=i32([12, 9]),
              beam_width=8, top_paths=3, merge_repeated=merge)
    F.add("CTCBeamSearchDecoder", inputs=F.n([7, 2, 4], F64, 2.0),
          sequence_length=i32([7, 5]), beam_width=6, top_paths=2)
    F.add("CTCBeamSearchDecoder", "integer logits: many equal probabilities",
          inputs=F.ri([8, 3, 5], 0, 3).astype(F32),
          sequence_length=i32([8, 6, 7]), beam_width=5, top_paths=3)
    F.add("CTCBeamSearchDecoder", "uniform logits: all ties",
          inputs=np.zeros((3, 2, 4), F32), sequence_length=i32([3, 2]),
          beam_width=5, top_paths=3)
    F.add("CTCBeamSearchDecoder", "a wide beam (40 > 16: std::sort's "
          "introsort), rounded logits",
          inputs=np.round(F.n([20, 2, 12], F32, 2.0), 1),
          sequence_length=i32([20, 15]), beam_width=40, top_paths=5,
          merge_repeated=False)
    F.add("CTCBeamSearchDecoder", "beam width 1", inputs=F.n([6, 2, 4]),
          sequence_length=i32([6, 6]), beam_width=1, top_paths=1)
    F.add("CTCBeamSearchDecoder", "top_paths > beam_width",
          inputs=F.n([4, 1, 4]), sequence_length=i32([4]), beam_width=2,
          top_paths=3, _error=True)
    F.add("CTCBeamSearchDecoder", "fewer beam entries than top_paths",
          inputs=F.n([4, 2, 4]), sequence_length=i32([4, 0]), beam_width=4,
          top_paths=2, _error=True)


def build_ctc(F):
    build_loss(F)
    build_loss_errors(F)
    build_loss_v2(F)
    build_greedy(F)
    build_beam(F)


def run_case(sess, built, arrays):
    """make_op_fixtures.run_case, but a CTCLossV2 case (a CTCLoss node until
    the GraphDef is written) records the outputs computed when it was built."""
    case = built.case
    if "v2" not in case.opts:
        return RUN_CASE(sess, built, arrays)
    scope = "c%d" % built.index
    V2_NODES.append(scope + "/op")
    for _, arr, key in built.feeds:
        arrays[key] = arr
    for k, value in enumerate(case.opts["v2"]):
        arrays["%s/out%d" % (scope, k)] = value
    rtol, atol = mof.tolerances([v.dtype for v in case.opts["v2"]])
    return {"case": scope, "op": "CTCLossV2", "desc": mof.auto_desc(case),
            "inputs": len(built.feeds), "outputs": 2, "rtol": rtol,
            "atol": atol, "check": "values"}


RUN_CASE = mof.run_case
V2_NODES = []


def retype_v2_nodes(path):
    """CTCLoss -> CTCLossV2 for the CTCLossV2 cases (V2 has no ``T``)."""
    graph_def = mof.tf.compat.v1.GraphDef()
    graph_def.ParseFromString(path.read_bytes())
    for node in graph_def.node:
        if node.name in V2_NODES:
            node.op = "CTCLossV2"
            del node.attr["T"]
    with mof.tf.Graph().as_default():  # still a valid graph
        mof.tf.graph_util.import_graph_def(graph_def, name="")
    path.write_bytes(graph_def.SerializeToString(deterministic=True))


def main():
    mof.run_case = run_case  # generate() looks it up in its module
    mof.generate_family("ctc", build_ctc, 2121)
    retype_v2_nodes(mof.OUT / "ctc.pb")


if __name__ == "__main__":
    main()
