"""protos/ and the generated descriptor module: up to date, TF-wire-compatible, isolated."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import textwrap

from gpugraph import _proto as pb

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_generated_module_matches_protos():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_field_numbers_match_tf():
    # Spot checks of tf_facts §1 field numbers that a typo would break.
    node = pb.NodeDef.DESCRIPTOR.fields_by_name
    assert node["experimental_debug_info"].number == 6 and node["experimental_type"].number == 7
    assert pb.TensorProto.DESCRIPTOR.fields_by_name["half_val"].number == 13
    assert pb.TensorProto.DESCRIPTOR.fields_by_name["float8_val"].number == 18
    assert pb.BundleEntryProto.DESCRIPTOR.fields_by_name["crc32c"].type == 7  # fixed32
    assert pb.MetaGraphDef.DESCRIPTOR.fields_by_name["object_graph_def"].number == 7
    assert pb.DataType.Value("DT_FLOAT4_E2M1FN") == 33 and pb.DataType.Value("DT_FLOAT_REF") == 101


def test_any_values_keep_tfs_type_urls():
    meta = pb.MetaGraphDef()
    url = "type.googleapis.com/tensorflow.SaverDef"
    meta.collection_def["a"].any_list.value.add(type_url=url, value=b"\x08\x01")
    again = pb.MetaGraphDef.FromString(meta.SerializeToString())
    assert again.collection_def["a"].any_list.value[0].type_url == url


_FAKE_TF = textwrap.dedent('''
    from google.protobuf import descriptor_pb2, descriptor_pool
    # What TF does at import: put tensorflow/core/framework/graph.proto, with package
    # "tensorflow" and a different body, into protobuf's process-wide default pool.
    f = descriptor_pb2.FileDescriptorProto(name="tensorflow/core/framework/graph.proto",
                                           package="tensorflow", syntax="proto3")
    m = f.message_type.add(name="GraphDef")
    m.field.add(name="only_field", number=99, type=9, label=1)
    descriptor_pool.Default().Add(f)
''')
_USE_GG = textwrap.dedent('''
    import gpugraph as gg
    from gpugraph import _proto as pb
    g = gg.Graph()
    with g.as_default():
        gg.placeholder("float32", [2], name="x")
        meta = gg.train.export_meta_graph()
    assert pb.MetaGraphDef.FromString(meta.SerializeToString()).graph_def.node[0].name == "x"
''')


def _run(code: str) -> None:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_coexists_with_tf_style_default_pool_registration_tf_first():
    _run(_FAKE_TF + _USE_GG)


def test_coexists_with_tf_style_default_pool_registration_gpugraph_first():
    _run(_USE_GG + _FAKE_TF + "\nfrom google.protobuf import descriptor_pool\n"
         "assert descriptor_pool.Default().FindMessageTypeByName('tensorflow.GraphDef')\n")
