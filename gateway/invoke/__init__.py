"""One call: JSON <-> Java/protobuf types, the attempt loop, result rendering."""
