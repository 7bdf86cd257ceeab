"""Generate the per-op fixture family ``strings`` (StringSplit,
StringSplitV2, StringToHashBucketFast, StringToHashBucketStrong, AsString,
RegexReplace, StaticRegexReplace, StringLength, Substr, Bucketize,
SparseReorder) with real TensorFlow.

gpugraph never imports TensorFlow; this script (run in the TF virtualenv)
rewrites only ``tests/fixtures/ops/strings.pb``, ``strings.npz`` and
``strings.json``::

    /work/tfenv/bin/python scripts/make_string_fixtures.py

Format
======

Exactly the format of ``make_lookup_fixtures.py`` (read its docstring; its
case engine builds these cases): case ``i`` is a sub-graph under ``c<i>/``
whose every tensor input is a placeholder ``c<i>/in<j>`` and whose op under
test is ``c<i>/op``; records have ``fetches``/``targets``/``op_types``;
a string output is fetched as its hash and length (``c<i>/hash<k>``,
``c<i>/len<k>``) with TF's exact strings in the record's ``"strings"``;
string inputs are stored as fixed-width ``bytes`` arrays.  Tolerances are
0/0: every op here is exact.

Hash cases.  ``StringToHashBucketFast`` is ``Fingerprint64(s) %
num_buckets`` (farmhash); the big cases hash 1340 byte strings of every
length class farmhash distinguishes (0, 1-3, 4-7, 8-16, 17-32, 33-64,
65-128, 129-300, and ``"a" * n`` for every n < 140) with ``num_buckets``
2**63-1 and 2**62, which together pin the whole 64-bit fingerprint, and six
strings of 1000-5000 bytes.  ``StringToHashBucketStrong`` is SipHash-2-4 keyed
with ``key`` (two int64s, as uint64) modulo ``num_buckets``.

TF 2.21 CPU behaviour the cases show (each is a case below):
* StringSplit splits at ANY byte of ``delimiter``; an empty delimiter splits
  into bytes; an empty string gives no tokens, whatever ``skip_empty``.
  StringSplitV2 is Python's ``str.split`` (empty ``sep``: runs of ASCII
  whitespace, ``\\v`` and ``\\f`` included, ``\\x1c`` and ``\\xa0`` not),
  except that ``maxsplit=0`` keeps the string whole, leading spaces too, and
  reaching ``maxsplit`` always appends the rest as a token, even an empty
  one (``"a "`` with ``maxsplit=1`` gives ``["a", ""]``).
* AsString uses ``%<fill><width>.<precision><f|e|g|d|u|s>``; fill is one of
  `` +-0#``; NaN and inf are space-padded (``-nan`` keeps its sign); float
  subnormals print as (signed) zero (TF's CPU threads flush them);
  half/bfloat16 print as float; complex as ``(re,im)``; bool as
  ``true``/``false`` (width ignored); a string input is passed through
  unless ``width`` > 0 (then padded with spaces, whatever the fill).
* Substr: BYTE positions may be negative (from the end) and must land in
  ``[0, len]``; a negative length takes the rest.  UTF8_CHAR counts
  characters; a negative length gives an empty string.  ``pos``/``len``
  broadcast against the input in 1 or 2 dimensions only.
* StringLength UTF8_CHAR counts the bytes that are not UTF-8 continuation
  bytes.
* RegexReplace is RE2's GlobalReplace: an empty match right after a match
  is skipped (``x*`` on ``abxd`` gives ``-a-b-d-``), ``\\w``, ``\\s``, ``\\b``
  are ASCII, ``\\s`` excludes ``\\v``, ``$`` is the end of the text only,
  ``.`` does not match invalid UTF-8, ``(?i)`` folds Unicode; in the
  rewrite ``\\0``-``\\9`` are groups, ``\\\\`` a backslash; a rewrite naming a
  group the pattern lacks leaves the string unchanged; a bad escape in the
  rewrite ends the replacement text there.
* Bucketize compares in float32 (ints are converted to float32 first:
  16777217 falls in the bucket of 16777216), float64 inputs against the
  float32 boundaries widened to float64; NaN falls in the last bucket.
* SparseReorder: indices in row-major order; nothing checks bounds or the
  shape's signs; a repeated index keeps its entries' input order (only
  checked on small inputs, where TF's sort is an insertion sort).

Determinism: fixed numpy seed, single-threaded session, no graph
optimizations, npz written by ``make_fixtures.save_npz``; running twice gives
byte-identical files.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_lookup_fixtures as mlf  # noqa: E402  (sets env, enables v2 behavior)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

RAW = tf.raw_ops
NAME = "strings"
SEED = 4242

F16, F32, F64, I32, I64 = np.float16, np.float32, np.float64, np.int32, np.int64
strs, strs2 = mlf.strs, mlf.strs2


def i32(x):
    return np.array(x, I32)


def i64(x):
    return np.array(x, I64)


def f32(x):
    return np.array(x, F32)


def f64(x):
    return np.array(x, F64)


def scalar(s):
    return np.array(s.encode() if isinstance(s, str) else s, dtype=object)


def random_strings(rng, count, classes=((0, 0), (1, 3), (4, 7), (8, 16),
                                         (17, 32), (33, 64), (65, 128),
                                         (129, 300))):
    """Random byte strings covering every length class of farmhash; none ends
    in NUL (see the lookup docstring)."""
    out = []
    for k in range(count):
        lo, hi = classes[k % len(classes)]
        n = int(rng.randint(lo, hi + 1))
        data = bytes(rng.randint(0, 256, size=n).astype(np.uint8))
        if data.endswith(b"\0"):
            data = data[:-1] + b"\x01"
        out.append(data)
    return strs(*out)


def build_cases(F):  # noqa: C901  (a flat case table)
    rng = F.rng

    def unary(op, values, **attrs):
        def build(x):
            out = getattr(RAW, op)(input=x.ph("input", values), name="op",
                                   **attrs)
            return x.fetch(out), []
        return build

    def multi(op, **inputs_and_attrs):
        """An op with several inputs (arrays become placeholders)."""
        def build(x):
            kwargs = {k: x.ph(k, v) if isinstance(v, np.ndarray) else v
                      for k, v in inputs_and_attrs.items()}
            out = getattr(RAW, op)(name="op", **kwargs)
            outs = out if isinstance(out, (list, tuple)) else [out]
            return [f for t in outs for f in x.fetch(t)], []
        return build

    # ---- StringToHashBucketFast / Strong -----------------------------------
    many = np.concatenate([random_strings(rng, 1200),
                           strs(*[b"a" * n for n in range(140)])])
    F.add("StringToHashBucketFast", "1340 strings: 1200 random ones of every "
          "length class up to 300 bytes and 'a' * n for n < 140, num_buckets "
          "2**63-1", unary("StringToHashBucketFast", many,
                           num_buckets=2 ** 63 - 1))
    F.add("StringToHashBucketFast", "the same strings, num_buckets 2**62 (the "
          "low 62 bits)", unary("StringToHashBucketFast", many,
                                num_buckets=2 ** 62))
    long = random_strings(rng, 6, [(1000, 5000)])
    F.add("StringToHashBucketFast", "6 random strings of 1000-5000 bytes",
          unary("StringToHashBucketFast", long, num_buckets=2 ** 63 - 1))
    words = strs2([["", "a", "ab", "abc"], ["hello", "hello world",
                                           "\xe9t\xe9", "x" * 70]])
    F.add("StringToHashBucketFast", "[2,4] strings into 1000 buckets",
          unary("StringToHashBucketFast", words, num_buckets=1000))
    F.add("StringToHashBucketFast", "one bucket",
          unary("StringToHashBucketFast", strs("a", "b"), num_buckets=1))
    few = many[:500]
    F.add("StringToHashBucketStrong", "500 random strings, key [1,2], "
          "num_buckets 2**63-1", unary("StringToHashBucketStrong", few,
                                       num_buckets=2 ** 63 - 1, key=[1, 2]))
    F.add("StringToHashBucketStrong", "key with a negative int64 and 2**62, 10 "
          "buckets", unary("StringToHashBucketStrong", words, num_buckets=10,
                           key=[-1, 2 ** 62]))
    F.add("StringToHashBucketStrong", "a key of one element",
          unary("StringToHashBucketStrong", strs("a"), num_buckets=10, key=[1]),
          error=True)

    # ---- StringSplit / StringSplitV2 -------------------------------------------
    def split(values, delimiter, **attrs):
        return multi("StringSplit", input=strs(*values),
                     delimiter=scalar(delimiter), **attrs)

    F.add("StringSplit", "space delimiter, skip_empty default (True)",
          split(["a b  c", "", "x", " lead"], " "))
    F.add("StringSplit", "skip_empty=False keeps empty tokens (an empty "
          "string still gives none)",
          split(["a b  c", "", "x", " lead"], " ", skip_empty=False))
    F.add("StringSplit", "every byte of the delimiter splits",
          split(["a,b;c", ";;", "no-delims"], ",;", skip_empty=False))
    F.add("StringSplit", "empty delimiter: bytes (UTF-8 split too)",
          split(["abc", "", "\xe9"], ""))
    F.add("StringSplit", "empty delimiter with skip_empty=False",
          split(["abc", "", "d"], "", skip_empty=False))
    F.add("StringSplit", "an empty batch", multi(
        "StringSplit", input=np.zeros([0], object), delimiter=scalar(" ")))
    F.add("StringSplit", "input of shape [1,1]", multi(
        "StringSplit", input=strs2([["a b"]]), delimiter=scalar(" ")),
        error=True)
    F.add("StringSplit", "delimiter of shape [1]", multi(
        "StringSplit", input=strs("a b"), delimiter=strs(" ")), error=True)

    def split2(values, sep, **attrs):
        return multi("StringSplitV2", input=strs(*values), sep=scalar(sep),
                     **attrs)

    blanks = ["  a b  c ", "", "   ", "x\ty\x0bz\x0cw\rq\nr", "a\x1cb\xa0c d"]
    F.add("StringSplitV2", "empty sep: runs of ASCII whitespace",
          split2(blanks, ""))
    F.add("StringSplitV2", "empty sep, maxsplit 1", split2(blanks, "",
                                                            maxsplit=1))
    F.add("StringSplitV2", "empty sep, maxsplit 1 with trailing spaces: an "
          "empty last token", split2(["a ", "a", " a  ", "a b"], "",
                                     maxsplit=1))
    F.add("StringSplitV2", "empty sep, maxsplit 2",
          split2(["  a  b  c  ", "a b"], "", maxsplit=2))
    F.add("StringSplitV2", "maxsplit 0 keeps the string whole",
          split2(["  a  b  c  ", "a,b"], "", maxsplit=0))
    F.add("StringSplitV2", "a two-byte sep: consecutive seps delimit empty "
          "tokens", split2(["a<>b<><>c", "", "<>"], "<>"))
    F.add("StringSplitV2", "two-byte sep, maxsplit 1",
          split2(["a<>b<><>c", "", "<>"], "<>", maxsplit=1))
    F.add("StringSplitV2", "sep ',', maxsplit 1 leaves an empty rest",
          split2(["a,", "a", ",", "a,b,c,d"], ",", maxsplit=1))
    F.add("StringSplitV2", "maxsplit -5 (no limit)",
          split2(["a b c"], "", maxsplit=-5))
    F.add("StringSplitV2", "input of shape [1,1]", multi(
        "StringSplitV2", input=strs2([["a b"]]), sep=scalar(" ")), error=True)
    F.add("StringSplitV2", "sep of shape [1]", multi(
        "StringSplitV2", input=strs("a b"), sep=strs(" ")), error=True)

    # ---- StringLength / Substr ----------------------------------------------
    utf = strs2([["h\xe9llo", ""], ["\u20ac", b"\xff\x80\x80"]])
    F.add("StringLength", "bytes", unary("StringLength", utf))
    F.add("StringLength", "UTF8_CHAR: continuation bytes do not count",
          unary("StringLength", utf, unit="UTF8_CHAR"))
    F.add("StringLength", "a scalar", unary("StringLength", scalar("abc")))

    def substr(values, pos, length, dt=I32, **attrs):
        values = values if isinstance(values, np.ndarray) else strs(*values)
        return multi("Substr", input=values, pos=np.array(pos, dt),
                     len=np.array(length, dt), **attrs)

    F.add("Substr", "pos/len per element, negative pos and len",
          substr(["hello", "ab", "xyz", "hello"], [0, -1, -3, 5], [2, 5, -1, 2]))
    F.add("Substr", "scalar pos and len", substr(["hello", "ab", "abc"], 1, 3))
    F.add("Substr", "int64 pos/len", substr(["hello", "abc"], -2, 9, I64))
    F.add("Substr", "a scalar input broadcast against pos [3]",
          substr(scalar("hello"), [0, 1, 2], [1, 2, 3]))
    F.add("Substr", "[2,2] input, pos [2] broadcast",
          substr(strs2([["hello", "ab"], ["xyz", "q"]]), [0, 1], [1, 2]))
    F.add("Substr", "[2] input, pos [2,1] broadcast to [2,2]",
          substr(strs("hello", "ab"), [[0], [1]], [[1], [2]]))
    F.add("Substr", "UTF8_CHAR, positive pos",
          substr(["h\xe9llo\u20ac", "\xe9", "abc"], [1, 0, 3], [3, 5, 1],
                 unit="UTF8_CHAR"))
    F.add("Substr", "UTF8_CHAR, negative pos and a negative len",
          substr(["h\xe9llo\u20ac", "\xe9", "h\xe9llo"], [-2, -1, 1],
                 [1, 5, -1], unit="UTF8_CHAR"))
    F.add("Substr", "empty pos/len broadcast against [1]",
          substr(["abc"], np.zeros([0], I32), np.zeros([0], I32)))
    F.add("Substr", "pos 1 past an empty string", substr(["hello", ""], 1, 3),
          error=True)
    F.add("Substr", "pos -3 before a 2-byte string",
          substr(["hello", "ab"], [1, -3], [1, 1]), error=True)
    F.add("Substr", "broadcast [2,2]: the error names (i, j)",
          substr(strs2([["hello", "ab"], ["xyz", "q"]]), [0, 3], [1, 2]),
          error=True)
    F.add("Substr", "pos and len of different shapes",
          substr(["hello"], [0, 1], [1]), error=True)
    F.add("Substr", "a 3-D broadcast", substr(
        np.array([[[b"h"]]], object), [[[0], [0]]], [[[1], [1]]]), error=True)
    F.add("Substr", "UTF8_CHAR pos past the end",
          substr(["h\xe9llo"], [6], [1], unit="UTF8_CHAR"), error=True)
    F.add("Substr", "UTF8_CHAR negative pos with a negative len",
          substr(["h\xe9llo"], [-2], [-1], unit="UTF8_CHAR"), error=True)

    # ---- AsString ----------------------------------------------------------------
    def as_string(values, **attrs):
        return unary("AsString", values, **attrs)

    specials = f32([1.5, -2.25, 1e10, 1e-7, np.inf, -np.inf, np.nan, -np.nan,
                    0.1, -0.0, 1e-40, 3.4e38])
    F.add("AsString", "float32 defaults (%f); -nan keeps its sign, a subnormal "
          "prints as 0", as_string(specials))
    wide = f64([1.5, -2.25, 1e10, 1e-7, np.inf, np.nan, 0.1, 123.456, 5e-324,
                -0.0, 2.5, 1e300])
    F.add("AsString", "float64 scientific, precision 3",
          as_string(wide, precision=3, scientific=True))
    F.add("AsString", "float64 shortest", as_string(wide, shortest=True))
    F.add("AsString", "float64 shortest, precision 3",
          as_string(wide, shortest=True, precision=3))
    F.add("AsString", "float64 precision 0 (round half to even)",
          as_string(f64([0.5, 1.5, 2.5, -0.5, 1e20]), precision=0))
    for fill in ["0", "-", " ", "+", "#"]:
        F.add("AsString", "float64, width 12, fill %r" % fill,
              as_string(f64([1.5, -2.25, np.inf, -np.nan, 0.0]), width=12,
                        fill=fill))
    F.add("AsString", "int32, width 5", as_string(i32([1, -22, 333, 2 ** 31 - 1]),
                                                  width=5))
    F.add("AsString", "int64, width 5, fill 0",
          as_string(i64([1, -22, 2 ** 40, -2 ** 63]), width=5, fill="0"))
    F.add("AsString", "int8, width 4, fill 0",
          as_string(np.array([3, -4, 127], np.int8), width=4, fill="0"))
    F.add("AsString", "int16, fill -, width 6",
          as_string(np.array([3, -4], np.int16), width=6, fill="-"))
    F.add("AsString", "uint8", as_string(np.array([1, 200, 255], np.uint8)))
    F.add("AsString", "uint64 above 2**63",
          as_string(np.array([1, 2 ** 63 + 5, 2 ** 64 - 1], np.uint64)))
    F.add("AsString", "bool (width ignored)",
          as_string(np.array([[True], [False]]), width=7))
    F.add("AsString", "float16 (printed as float32)",
          as_string(np.array([1.5, -2, 65504, 6e-8], F16), precision=9))
    F.add("AsString", "complex64, precision 2",
          as_string(np.array([1.5 + 2j, -2 - 0.5j], np.complex64), precision=2))
    F.add("AsString", "complex128, width 10",
          as_string(np.array([1.5 + 2j], np.complex128), width=10))
    F.add("AsString", "string input, width 0: passed through",
          as_string(strs("ab", "abcdef"), precision=2))
    F.add("AsString", "string input, width 4, precision 3",
          as_string(strs("ab", "abcdef"), width=4, precision=3))
    F.add("AsString", "string input, width 4, fill 0 (pads with spaces)",
          as_string(strs("ab", "abcdef"), width=4, fill="0"))
    F.add("AsString", "string input, width 4, fill -",
          as_string(strs("ab", "abcdef"), width=4, fill="-"))
    F.add("AsString", "precision for int32", as_string(i32([1]), precision=2),
          error=True)
    F.add("AsString", "scientific for int32",
          as_string(i32([1]), scientific=True), error=True)
    F.add("AsString", "scientific and shortest",
          as_string(f32([1]), scientific=True, shortest=True), error=True)
    F.add("AsString", "a 2-character fill", as_string(f32([1]), fill="ab"),
          error=True)
    F.add("AsString", "fill 'x'", as_string(f32([1]), fill="x", width=3),
          error=True)

    # ---- RegexReplace / StaticRegexReplace ----------------------------------
    def regex(values, pattern, rewrite, **attrs):
        return multi("RegexReplace", input=strs(*values),
                     pattern=scalar(pattern), rewrite=scalar(rewrite), **attrs)

    def static(values, pattern, rewrite, **attrs):
        return multi("StaticRegexReplace", input=strs(*values), pattern=pattern,
                     rewrite=rewrite, **attrs)

    text = ["Hello, World!  The  end. ", "", "  tabs\tand\nlines\n",
            "caf\xe9 na\xefve \u20ac5", "<b>bold</b> and <i>it</i>"]
    rcases = [
        ("empty matches after a match are skipped", ["abxd", "xxx", ""], "x*",
         "-", {}),
        ("groups \\1 and \\0 in the rewrite", ["hello world", "foo"], "(o)",
         "[\\1\\0]", {}),
        ("replace_global=False: the first match", ["hello world", "foo"], "o",
         "0", {"replace_global": False}),
        ("a rewrite naming a missing group: unchanged", ["hello world"], "(o)",
         "\\2", {}),
        ("a bad escape in the rewrite ends the replacement",
         ["hello world"], "(o)", "a\\qb", {}),
        ("\\\\ in the rewrite is a backslash", ["hello world"], "o", "a\\\\b",
         {}),
        ("the empty pattern between UTF-8 characters",
         ["h\xe9llo", "\u20ac\u20ac"], "", "|", {}),
        ("$ is the end of the text only", ["a\nb\n", "ab"], "b$", "X", {}),
        ("(?m)$ at every line end", ["a\nb\n", "ab"], "(?m)b$", "X", {}),
        ("\\w is ASCII", ["Hello World", "h\xe9llo w\xf6rld"], "\\w+",
         "<\\0>", {}),
        (". matches one UTF-8 character", ["h\xe9llo"], ".", ".", {}),
        (". does not match invalid UTF-8", [b"ab\xffcd", b"a\xc3"], "b.c|a.",
         "X", {}),
        ("lazy repetition", ["aaa"], "a*?", "-", {}),
        ("a POSIX class", ["hello, world!"], "[[:punct:]]", "", {}),
        ("a negated POSIX class and a range", ["ab12-CD"], "[[:^alpha:]0-1]",
         "_", {}),
        ("\\Q...\\E quotes", ["a.b*c"], "\\Q.b*\\E", "X", {}),
        ("(?i) folds Unicode", ["AbC", "\xc9t\xe9"], "(?i)b|\xe9", "_", {}),
        ("flags in the middle, then an alternative", ["aBc ABC abc"],
         "a(?i)b|c", "_", {}),
        ("\\s excludes \\v", ["a b\tc\x0bd\x0ce"], "\\s", "_", {}),
        ("^ and \\b", ["abc def"], "^|\\b", "|", {}),
        ("an unmatched optional group is empty", ["abc"], "(a)|b", "[\\1]", {}),
        ("collapse whitespace", text, "\\s+", " ", {}),
        ("strip", text, "^\\s+|\\s+$", "", {}),
        ("tags", text, "<[^>]+>", "", {}),
        ("non-word runs", text, "[^a-zA-Z0-9]+", " ", {}),
        ("octal, hex and \\x{...} escapes", ["a\tb\u20acc"],
         "\\011|\\x{20AC}|\\x62", "_", {}),
        ("counted repetition", ["aaaa aa a"], "a{2,3}", "X", {}),
        ("named group", ["key=value"], "(?P<k>\\w+)=(\\w+)", "\\2=\\1", {}),
        ("invalid UTF-8 passes through", [b"\xff\xfeabc\xff"], "b", "B", {}),
    ]
    for desc, values, pattern, rewrite, attrs in rcases:
        F.add("RegexReplace", desc, regex(values, pattern, rewrite, **attrs))
    for desc, pattern in [("missing )", "("), ("lookahead", "(?=o)"),
                          ("a backreference", "(o)\\1"), ("unexpected )", "a)"),
                          ("bad repetition size", "a{2,1}"),
                          ("nothing to repeat", "*a"), ("missing ]", "["),
                          ("repeated repetition", "a**")]:
        F.add("RegexReplace", "invalid pattern: " + desc,
              regex(["x"], pattern, "y"), error=True)
    F.add("RegexReplace", "a pattern of shape [1]", multi(
        "RegexReplace", input=strs("x"), pattern=strs("x"),
        rewrite=scalar("y")), error=True)
    F.add("RegexReplace", "a rewrite of shape [1]", multi(
        "RegexReplace", input=strs("x"), pattern=scalar("x"),
        rewrite=strs("y")), error=True)
    F.add("StaticRegexReplace", "alternatives with two groups",
          static(["aaa bbb", "ccc"], "(a+)|(c+)", "[\\1|\\2]"))
    F.add("StaticRegexReplace", "lower-case words, first only",
          static(["one two", "x"], "[a-z]+", "<\\0>", replace_global=False))
    F.add("StaticRegexReplace", "an invalid pattern", static(["x"], "[", "y"),
          error=True)

    # ---- scalars -----------------------------------------------------------------
    F.add("AsString", "a scalar", as_string(f64(2.5), precision=1))
    F.add("RegexReplace", "a scalar input", multi(
        "RegexReplace", input=scalar("a-b-c"), pattern=scalar("-"),
        rewrite=scalar("+")))
    F.add("StaticRegexReplace", "a scalar input", multi(
        "StaticRegexReplace", input=scalar("a-b"), pattern="b", rewrite="B"))
    F.add("Substr", "a scalar input, scalar pos and len",
          substr(scalar("hello"), 1, 2))
    F.add("StringToHashBucketFast", "a scalar",
          unary("StringToHashBucketFast", scalar("hello"), num_buckets=97))

    # ---- Bucketize ----------------------------------------------------------------
    def bucketize(values, boundaries):
        return unary("Bucketize", values, boundaries=boundaries)

    F.add("Bucketize", "float32 [2,3] with NaN", bucketize(
        f32([[-1.0, 0.0, 0.5], [1.0, 10.0, np.nan]]), [0.0, 1.0, 5.0]))
    F.add("Bucketize", "int32 compared as float32 (16777217 -> 16777216)",
          bucketize(i32([16777217, 3, 5, -1]), [3.0, 16777216.0]))
    F.add("Bucketize", "int64", bucketize(i64([2 ** 40, 3, -7]),
                                          [-7.0, 3.0, 1e12]))
    F.add("Bucketize", "float64 against the float32 boundary 0.1",
          bucketize(f64([0.1, 0.10000000149011612, 0.1000000015]), [0.1]))
    F.add("Bucketize", "no boundaries", bucketize(f32([1.0, -2.0]), []))
    F.add("Bucketize", "repeated boundaries", bucketize(f32([1.0, 2.0, 0.5]),
                                                        [1.0, 1.0, 2.0]))
    F.add("Bucketize", "random float32 against 20 boundaries", bucketize(
        np.asarray(rng.uniform(-3, 3, [50]), F32),
        sorted(float(v) for v in np.asarray(rng.uniform(-3, 3, [20]), F32))))
    F.add("Bucketize", "unsorted boundaries", bucketize(f32([1.0]), [2.0, 1.0]),
          error=True)

    # ---- SparseReorder ---------------------------------------------------------
    def reorder(indices, values, shape):
        return multi("SparseReorder", input_indices=i64(indices),
                     input_values=values, input_shape=i64(shape))

    F.add("SparseReorder", "rows out of order, a repeated index keeps its "
          "order", reorder([[1, 0], [0, 2], [0, 1], [1, 0]],
                           f32([1, 2, 3, 4]), [2, 3]))
    F.add("SparseReorder", "already ordered", reorder(
        [[0, 1], [1, 0]], f32([1, 2]), [2, 3]))
    F.add("SparseReorder", "out of bounds and negative indices are not "
          "checked", reorder([[1, 0], [0, 5], [0, -2]], f32([1, 2, 3]), [2, 3]))
    F.add("SparseReorder", "string values, rank 3",
          reorder([[1, 0, 3], [0, 2, 1], [0, 2, 0]], strs("a", "b", "c"),
                  [2, 3, 4]))
    F.add("SparseReorder", "no entries", reorder(np.zeros([0, 2]), f32([]),
                                                 [2, 3]))
    F.add("SparseReorder", "rank 0: three entries with no index",
          reorder(np.zeros([3, 0]), f32([1, 2, 3]), []))
    F.add("SparseReorder", "a negative dim and a zero dim are not checked",
          reorder([[1, 0], [0, 2]], i32([1, 2]), [0, -3]))
    cells = rng.choice(4 * 5 * 6, size=60, replace=False)
    F.add("SparseReorder", "60 random distinct indices of a [4,5,6] tensor",
          reorder(np.stack(np.unravel_index(cells, (4, 5, 6)), axis=1),
                  np.asarray(rng.standard_normal(60), F64), [4, 5, 6]))
    F.add("SparseReorder", "values and indices counts differ",
          reorder([[1, 0], [0, 2]], f32([1, 2, 3]), [2, 3]), error=True)
    F.add("SparseReorder", "index rank 2, shape rank 3",
          reorder([[1, 0], [0, 2]], f32([1, 2]), [2, 3, 4]), error=True)
    F.add("SparseReorder", "indices of rank 1",
          reorder([1, 0], f32([[1]]), [[2]]), error=True)
    F.add("SparseReorder", "values of rank 2",
          reorder([[1, 0]], f32([[1]]), [[2]]), error=True)
    F.add("SparseReorder", "shape of rank 2",
          reorder([[1, 0]], f32([1, 2]), [[2]]), error=True)


def main():
    records, results = mlf.generate(NAME, build_cases, seed=SEED)
    mlf.report(NAME, records, results)


if __name__ == "__main__":
    main()
