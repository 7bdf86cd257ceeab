"""Serialized formats: TensorProto <-> ndarray, meta graphs, the checkpoint index and bundle."""
