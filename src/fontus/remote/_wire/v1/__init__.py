"""Generated protobuf modules. DO NOT EDIT: see scripts/gen_protos.py."""
