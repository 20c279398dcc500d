#!/usr/bin/env python3
"""Records what a real Flower deflates, for Stamen's Fleet API tests.

Run once with Flower 1.23 installed (see ../shared/flower-1.23-from-debian.md;
nothing of Flower is in this repository):

    FLWR_TELEMETRY_ENABLED=0 HOME=$(mktemp -d) $PEER/venv/bin/python \
        tests/interop/record_flower_fixtures.py > tests/messages/flower/flower_fixtures.json

For each message below it writes the message's object id (its message_id),
its object tree, and every object's bytes (hex) except an array chunk over
64 KiB, whose id alone is kept (the test rebuilds its bytes from the same
recipe). tests/messages/flower/flower_objects_test.cpp builds the same
messages in C++ and checks that Stamen deflates them to the same ids and
bytes, and inflates Flower's bytes to the same values.
"""
import json
import sys

import numpy as np

import flwr
from flwr.common import ArrayRecord, ConfigRecord, Error, Message, MetricRecord, RecordDict
from flwr.common.inflatable import get_all_nested_objects, get_object_tree
from flwr.common.message import make_message
from flwr.common.record import Array
from flwr.common import Metadata

assert flwr.__version__ == "1.23.0", flwr.__version__


def meta(**kw):
    base = dict(run_id=1234, message_id="", src_node_id=1, dst_node_id=5678, reply_to_message_id="",
                group_id="", created_at=1750000000.0, ttl=43200.0, message_type="train")
    base.update(kw)
    return Metadata(**base)


def tree(t):
    return {"id": t.object_id, "children": [tree(c) for c in t.children]}


def record(name, msg):
    objects = {}
    for oid, obj in get_all_nested_objects(msg).items():
        content = obj.deflate()
        objects[oid] = None if len(content) > 65536 else content.hex()
    return {"name": name, "message_id": msg.object_id, "tree": tree(get_object_tree(msg)), "objects": objects}


cases = []

# The quickstart's shape of a train reply.
ar = ArrayRecord({"w": Array(np.arange(6, dtype=np.float32).reshape(2, 3))})
cases.append(record("train", make_message(meta(), RecordDict({
    "arrays": ar,
    "metrics": MetricRecord({"num-examples": 100, "train_loss": 0.5}),
    "config": ConfigRecord({"lr": 0.01, "server-round": 1}),
}))))

# Every dtype Stamen shares with NumPy, a scalar, an empty array, a repeated array.
dtypes = ArrayRecord({
    "f32": Array(np.array([1.5, -2.25], dtype=np.float32)),
    "f64": Array(np.array([[1.0], [2.0], [3.0]], dtype=np.float64)),
    "i64": Array(np.array([-(2**62), 7], dtype=np.int64)),
    "i32": Array(np.array([1, 2, 3, 4], dtype=np.int32).reshape(2, 2)),
    "u8": Array(np.array([0, 255, 17], dtype=np.uint8)),
    "bool": Array(np.array([True, False, True], dtype=np.bool_)),
    "f16": Array(np.array([0.5, 1.0], dtype=np.float16)),
    "i8": Array(np.array([-128, 127], dtype=np.int8)),
    "i16": Array(np.array([-300, 300], dtype=np.int16)),
    "scalar": Array(np.array(3.5, dtype=np.float32)),
    "empty": Array(np.zeros((0, 4), dtype=np.float32)),
    "again": Array(np.array([1.5, -2.25], dtype=np.float32)),
    "long-first-axis": Array(np.zeros((1234567, 0), dtype=np.float32)),
})
cases.append(record("dtypes", make_message(meta(message_type="evaluate", group_id="3"), RecordDict({"arrays": dtypes}))))

# Every ConfigRecord and MetricRecord value type, and keys past ASCII.
cases.append(record("values", make_message(meta(message_type="query.custom"), RecordDict({
    "config": ConfigRecord({
        "int": -5, "big": 2**63 - 1, "float": 0.1, "bool": True, "str": "héllo \"q\" \\ \n", "bytes": b"\x00\xff",
        "ints": [1, -2], "floats": [0.5, 1e300], "bools": [True, False], "strs": ["a", ""], "bytess": [b"x", b""],
    }),
    "metrics": MetricRecord({"int": 3, "float": -0.75, "ints": [4, 5], "floats": [0.25]}),
    "clé ☃ 😀": ConfigRecord({"k": 1}),
}))))

# A reply that carries an error, and one with empty content.
cases.append(record("error", make_message(
    meta(src_node_id=5678, dst_node_id=1, reply_to_message_id="ab" * 32, created_at=1750000010.0, ttl=43190.0),
    error=Error(code=2, reason="<class 'ValueError'>:<'boom'>"))))
cases.append(record("empty", make_message(meta(), RecordDict())))

# An array over one 5 MiB chunk: 6 MiB of uint8 i % 251, two chunks.
big = np.arange(6 * 1024 * 1024, dtype=np.int64) % 251
cases.append(record("chunked", make_message(meta(), RecordDict({"arrays": ArrayRecord({"big": Array(big.astype(np.uint8))})}))))

json.dump({"flower": flwr.__version__, "numpy": np.__version__, "cases": cases}, sys.stdout, indent=1)
sys.stdout.write("\n")
