@0xa9b374df60a91508;
using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("stamen_schema");
# Wire format of a Stamen message: Flower's Message API. The same bytes travel
# between actors in one process and across the network.

struct Message {
  metadata @0 :Metadata;
  # Exactly one of the two is set; both are plain pointers (not a union) so a
  # malformed message with both can be recognised and rejected.
  content @1 :RecordDict;
  error @2 :Error;
}

struct Metadata {
  runId @0 :UInt64;
  messageId @1 :Text;
  srcNodeId @2 :UInt64;
  dstNodeId @3 :UInt64;
  replyToMessageId @4 :Text;
  groupId @5 :Text;
  createdAt @6 :Float64;
  ttl @7 :Float64;
  messageType @8 :Text;
}

struct Error {
  code @0 :Int64;
  reason @1 :Text;
}

struct RecordDict {
  entries @0 :List(Entry);
  struct Entry {
    name @0 :Text;
    union {
      arrays @1 :ArrayRecord;
      configs @2 :ConfigRecord;
      metrics @3 :MetricRecord;
    }
  }
}

struct ArrayRecord {
  entries @0 :List(Entry);
  struct Entry {
    name @0 :Text;
    array @1 :Array;
  }
}

struct Array {
  dtype @0 :UInt8;
  # A stamen::dtype value; kept numeric so an unknown value is a clear error.
  shape @1 :List(Int64);
  chunks @2 :List(Data);
  # Raw little-endian bytes, split in chunks because one Data blob is limited to
  # 2^29 - 1 bytes. Every chunk but the last has the same size, a multiple of 8.
  byteLength @3 :UInt64;
}

struct ConfigRecord {
  entries @0 :List(Entry);
  struct Entry {
    name @0 :Text;
    value :union {
      int64 @1 :Int64;
      float64 @2 :Float64;
      bool @3 :Bool;
      string @4 :Text;
      bytes @5 :Data;
      int64List @6 :List(Int64);
      float64List @7 :List(Float64);
      boolList @8 :List(Bool);
      stringList @9 :List(Text);
      bytesList @10 :List(Data);
    }
  }
}

struct MetricRecord {
  entries @0 :List(Entry);
  struct Entry {
    name @0 :Text;
    value :union {
      int64 @1 :Int64;
      float64 @2 :Float64;
      int64List @3 :List(Int64);
      float64List @4 :List(Float64);
    }
  }
}
